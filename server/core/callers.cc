#include "server/core/callers.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/memory/memory.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/error.h"
#include "base/status_macros.h"
#include "token/base64url.h"
#include "token/crypto.h"

namespace ta::core {
namespace {

absl::Status Unauthenticated(absl::string_view reason) {
  return Error(absl::StatusCode::kUnauthenticated, reason, "caller credentials not accepted");
}

absl::StatusOr<Role> ParseRole(absl::string_view name) {
  if (name == "issuer") return Role::kIssuer;
  if (name == "client") return Role::kClient;
  if (name == "resource") return Role::kResource;
  if (name == "admin") return Role::kAdmin;
  return absl::InvalidArgumentError(absl::StrCat("unknown role '", name, "'"));
}

bool IsHex64(absl::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f');
         });
}

constexpr absl::string_view kCertTypes[] = {"cert-uri:", "cert-dns:", "cert-email:", "cert-ip:",
                                             "cert-cn:"};

// The credential as it is keyed in the registry, or why it is refused.
absl::StatusOr<std::string> NormalizeCredential(absl::string_view credential) {
  absl::string_view rest = credential;
  if (absl::ConsumePrefix(&rest, "key-sha256:")) {
    if (IsHex64(rest)) return std::string(credential);
    return absl::InvalidArgumentError("key-sha256: needs 64 lowercase hex digits");
  }
  if (absl::StartsWith(credential, "cert:")) {
    return absl::InvalidArgumentError(
        "'cert:' is ambiguous (it would match a name of any type); write cert-uri:, cert-dns:, "
        "cert-email:, cert-ip: or cert-cn:");
  }
  for (absl::string_view type : kCertTypes) {
    if (!absl::ConsumePrefix(&rest, type)) continue;
    if (rest.empty()) return absl::InvalidArgumentError(absl::StrCat(type, " needs a name"));
    // DNS names compare case-insensitively (RFC 6125 §6.4.1).
    return type == "cert-dns:" ? absl::AsciiStrToLower(credential) : std::string(credential);
  }
  return absl::InvalidArgumentError(
      "credential must be key-sha256:<hex> or cert-uri:/cert-dns:/cert-email:/cert-ip:/cert-cn:"
      "<name>");
}

// Strips a comment: '#' at the start or after white space. A '#' inside a word stays.
absl::string_view StripComment(absl::string_view line) {
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '#' && (i == 0 || absl::ascii_isspace(static_cast<unsigned char>(line[i - 1])))) {
      return line.substr(0, i);
    }
  }
  return line;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

bool Caller::Has(Role role) const {
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

bool Caller::MayActFor(absl::string_view client_id) const {
  if (Has(Role::kAdmin) || client_ids.empty()) return true;
  return std::find(client_ids.begin(), client_ids.end(), client_id) != client_ids.end();
}

std::string CallerRegistry::KeyCredential(absl::string_view api_key) {
  return absl::StrCat("key-sha256:", absl::BytesToHexString(token::Sha256(api_key)));
}

absl::Status CallerRegistry::Add(absl::string_view line, absl::string_view where) {
  std::vector<absl::string_view> fields =
      absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  auto fail = [&](absl::string_view why) {
    return InvalidField("callers_file", absl::StrCat(where, ": ", why));
  };
  if (fields.size() < 3) return fail("expected NAME ROLES CREDENTIAL [options]");
  Entry entry;
  entry.caller.name = std::string(fields[0]);
  for (absl::string_view role : absl::StrSplit(fields[1], ',')) {
    absl::StatusOr<Role> parsed = ParseRole(role);
    if (!parsed.ok()) return fail(parsed.status().message());
    entry.caller.roles.push_back(*parsed);
  }
  absl::StatusOr<std::string> credential = NormalizeCredential(fields[2]);
  if (!credential.ok()) return fail(credential.status().message());
  for (size_t i = 3; i < fields.size(); ++i) {
    absl::string_view option = fields[i];
    if (option == "revoked") {
      entry.revoked = true;
    } else if (absl::ConsumePrefix(&option, "clients=")) {
      // An empty list would mean "any client": fail closed instead.
      std::vector<std::string> ids = absl::StrSplit(option, ',');
      if (std::any_of(ids.begin(), ids.end(), [](const std::string& id) { return id.empty(); })) {
        return fail("clients= needs a comma-separated list of client_ids (none may be empty)");
      }
      entry.caller.client_ids = std::move(ids);
    } else {
      return fail(absl::StrCat("unknown option '", option, "'"));
    }
  }
  if (!by_credential_.emplace(*std::move(credential), std::move(entry)).second) {
    return fail("credential listed twice");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<CallerRegistry>> CallerRegistry::Parse(absl::string_view text,
                                                                      absl::string_view origin) {
  auto registry = absl::WrapUnique(new CallerRegistry());
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    line = absl::StripAsciiWhitespace(StripComment(line));
    if (line.empty()) continue;
    RETURN_IF_ERROR(registry->Add(line, absl::StrCat(origin, ":", number)));
  }
  if (registry->by_credential_.empty()) {
    return InvalidField("callers_file", absl::StrCat(origin, ": no callers"));
  }
  return registry;
}

absl::StatusOr<std::unique_ptr<CallerRegistry>> CallerRegistry::Load(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return InvalidField("callers_file", text.status().message());
  return Parse(*text, path);
}

absl::StatusOr<std::unique_ptr<CallerRegistry>> CallerRegistry::LocalAdmin(
    const std::string& key_path) {
  absl::StatusOr<std::string> existing = ReadFile(key_path);
  std::string key;
  if (existing.ok()) {
    key = std::string(absl::StripAsciiWhitespace(*existing));
  } else {
    key = token::Base64UrlEncode(token::RandomBytes(32));
    int fd = open(key_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot create ", key_path));
    std::string line = key + "\n";
    bool written =
        write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && fsync(fd) == 0;
    close(fd);
    if (!written) return absl::UnavailableError(absl::StrCat("cannot write ", key_path));
  }
  if (key.empty()) return absl::FailedPreconditionError(absl::StrCat(key_path, " is empty"));
  return Parse(absl::StrCat("local-admin admin ", KeyCredential(key)), key_path);
}

absl::StatusOr<Caller> CallerRegistry::ByApiKey(absl::string_view api_key) const {
  auto it = by_credential_.find(KeyCredential(api_key));
  if (it == by_credential_.end()) return Unauthenticated("unauthenticated");
  if (it->second.revoked) return Unauthenticated("caller_revoked");
  return it->second.caller;
}

absl::StatusOr<Caller> CallerRegistry::ByCertificate(const PeerCertificate& peer) const {
  std::vector<std::string> keys;
  for (const std::string& v : peer.uris) keys.push_back(absl::StrCat("cert-uri:", v));
  for (const std::string& v : peer.dns_names) {
    keys.push_back(absl::StrCat("cert-dns:", absl::AsciiStrToLower(v)));
  }
  for (const std::string& v : peer.emails) keys.push_back(absl::StrCat("cert-email:", v));
  for (const std::string& v : peer.ips) keys.push_back(absl::StrCat("cert-ip:", v));
  // RFC 6125 §6.4.4: the CN is a fallback only when there is no subjectAltName at all.
  if (!peer.HasSan() && !peer.common_name.empty()) {
    keys.push_back(absl::StrCat("cert-cn:", peer.common_name));
  }
  const Entry* found = nullptr;
  for (const std::string& key : keys) {
    auto it = by_credential_.find(key);
    if (it == by_credential_.end()) continue;
    if (it->second.revoked) return Unauthenticated("caller_revoked");
    // Names of two different callers in one certificate: refuse rather than pick one.
    if (found != nullptr && found->caller.name != it->second.caller.name) {
      return Unauthenticated("unauthenticated");
    }
    found = &it->second;
  }
  if (found == nullptr) return Unauthenticated("unauthenticated");
  return found->caller;
}

}  // namespace ta::core

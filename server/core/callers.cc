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
#include "server/base/error.h"
#include "server/base/status_macros.h"
#include "server/token/base64url.h"
#include "server/token/crypto.h"

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

absl::Status CheckCredential(absl::string_view credential) {
  absl::string_view rest = credential;
  if (absl::ConsumePrefix(&rest, "key-sha256:")) {
    if (IsHex64(rest)) return absl::OkStatus();
    return absl::InvalidArgumentError("key-sha256: needs 64 lowercase hex digits");
  }
  if (absl::ConsumePrefix(&rest, "cert:") && !rest.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError("credential must be key-sha256:<hex> or cert:<name>");
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
  std::string credential(fields[2]);
  if (absl::Status s = CheckCredential(credential); !s.ok()) return fail(s.message());
  for (size_t i = 3; i < fields.size(); ++i) {
    absl::string_view option = fields[i];
    if (option == "revoked") {
      entry.revoked = true;
    } else if (absl::ConsumePrefix(&option, "clients=")) {
      entry.caller.client_ids = absl::StrSplit(option, ',', absl::SkipEmpty());
    } else {
      return fail(absl::StrCat("unknown option '", option, "'"));
    }
  }
  if (!by_credential_.emplace(credential, std::move(entry)).second) {
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
    line = absl::StripAsciiWhitespace(line.substr(0, line.find('#')));
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

absl::StatusOr<Caller> CallerRegistry::ByCertificate(const std::vector<std::string>& names) const {
  for (const std::string& name : names) {
    auto it = by_credential_.find(absl::StrCat("cert:", name));
    if (it == by_credential_.end()) continue;
    if (it->second.revoked) return Unauthenticated("caller_revoked");
    return it->second.caller;
  }
  return Unauthenticated("unauthenticated");
}

}  // namespace ta::core

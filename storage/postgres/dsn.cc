#include "storage/postgres/dsn.h"

#include <libpq-fe.h>

#include <algorithm>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "base/error.h"

namespace ta::storage {
namespace {

struct OptionsDeleter {
  void operator()(PQconninfoOption* o) const { PQconninfoFree(o); }
};
using OptionsPtr = std::unique_ptr<PQconninfoOption, OptionsDeleter>;

struct ErrmsgDeleter {
  void operator()(char* m) const { PQfreemem(m); }
};

// libpq's parse errors quote pieces of the DSN, and a piece may be (part of) the password,
// which may itself hold '"'. So the message is never scanned for quotes: it is matched against
// libpq's own templates (fe-connect.c), the piece they quote is cut out by position, and only
// an option name that is no part of any password is shown (issue 22 #8; issue 23 #7 wants the
// option named). Anything else is replaced by "...", an unknown message by its first words.
struct Template {
  absl::string_view head;  // the message up to the quoted piece
  absl::string_view tail;  // after it (message minus trailing newline)
  bool names_option;       // the piece is an option name (shown when safe)
};
constexpr Template kTemplates[] = {
    {"missing \"=\" after \"", "\" in connection info string", true},
    {"invalid connection option \"", "\"", true},
    {"invalid URI query parameter: \"", "\"", true},
    {"extra key/value separator \"=\" in URI query parameter: \"", "\"", false},
    {"missing key/value separator \"=\" in URI query parameter: \"", "\"", false},
    {"invalid percent-encoded token: \"", "\"", false},
    {"forbidden value %00 in percent-encoded value: \"", "\"", false},
    {"invalid URI propagated to internal parser routine: \"", "\"", false},
    {"end of string reached when looking for matching \"]\" in IPv6 host address in URI: \"", "\"",
     false},
    {"IPv6 host address may not be empty in URI: \"", "\"", false},
};

bool IsKnownOption(const std::string& name) {
  OptionsPtr defaults(PQconndefaults());
  for (const PQconninfoOption* o = defaults.get(); o != nullptr && o->keyword != nullptr; ++o) {
    if (name == o->keyword) return true;
  }
  return false;
}

bool IsOptionName(absl::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

// Every stretch of `dsn` that may hold a password, generously: in a URI the whole userinfo
// (up to the last '@') and the value of any "password=" query parameter; in keyword=value
// form everything after "password=" up to the next known keyword (an unquoted password
// with spaces is a parse error whose pieces are password bytes).
std::vector<absl::string_view> SecretStretches(absl::string_view dsn) {
  std::vector<absl::string_view> out;
  const bool uri = absl::StartsWith(dsn, "postgresql://") || absl::StartsWith(dsn, "postgres://");
  if (uri) {
    const size_t start = dsn.find("://") + 3;
    const size_t at = dsn.rfind('@');
    if (at != absl::string_view::npos && at > start) out.push_back(dsn.substr(start, at - start));
  }
  size_t pos = 0;
  while ((pos = dsn.find("password", pos)) != absl::string_view::npos) {
    pos += 8;
    size_t value = pos;
    while (value < dsn.size() && (dsn[value] == ' ' || dsn[value] == '=')) ++value;
    size_t end = uri ? dsn.find('&', value) : absl::string_view::npos;
    if (!uri && value < dsn.size() && dsn[value] == '\'') {
      // A quoted value ends at its closing quote (backslash escapes), as libpq reads it.
      for (size_t i = value + 1; i < dsn.size(); ++i) {
        if (dsn[i] == '\\') {
          ++i;
        } else if (dsn[i] == '\'') {
          end = i + 1;
          break;
        }
      }
    } else if (!uri) {
      // Up to " keyword=" for a keyword libpq knows; else to the end.
      for (size_t i = value; i < dsn.size(); ++i) {
        if (dsn[i] != ' ') continue;
        size_t k = i + 1;
        while (k < dsn.size() && IsOptionName(dsn.substr(k, 1))) ++k;
        if (k < dsn.size() && dsn[k] == '=' && k > i + 1 &&
            IsKnownOption(std::string(dsn.substr(i + 1, k - i - 1)))) {
          end = i;
          break;
        }
      }
    }
    out.push_back(dsn.substr(value, end == absl::string_view::npos ? end : end - value));
  }
  return out;
}

std::string Redacted(const std::string& message, absl::string_view dsn) {
  absl::string_view m = absl::StripTrailingAsciiWhitespace(message);
  for (const Template& t : kTemplates) {
    if (m.size() < t.head.size() + t.tail.size() || !absl::StartsWith(m, t.head) ||
        !absl::EndsWith(m, t.tail)) {
      continue;
    }
    absl::string_view piece = m.substr(t.head.size(), m.size() - t.head.size() - t.tail.size());
    bool show = t.names_option && IsOptionName(piece);
    for (absl::string_view secret : SecretStretches(dsn)) {
      if (show && absl::StrContains(secret, piece)) show = false;
    }
    return absl::StrCat(t.head, show ? piece : "...", t.tail);
  }
  if (m == "unterminated quoted string in connection info string") return std::string(m);
  // Not a template we know (another libpq version or language): its opening words only.
  absl::string_view head = m.substr(0, std::min(m.find('"'), m.find(':')));
  return absl::StrCat(absl::StripTrailingAsciiWhitespace(head), " (details withheld)");
}

absl::StatusOr<OptionsPtr> Parse(const std::string& dsn) {
  if (dsn.empty()) {
    return ta::InvalidField("postgres_dsn", "--postgres_dsn: required with --store=postgres");
  }
  char* raw_error = nullptr;
  OptionsPtr options(PQconninfoParse(dsn.c_str(), &raw_error));
  std::unique_ptr<char, ErrmsgDeleter> error(raw_error);
  if (options == nullptr) {
    return ta::InvalidField(
        "postgres_dsn",
        absl::StrCat("--postgres_dsn: not a libpq connection string or URI: ",
                     error != nullptr ? Redacted(error.get(), dsn) : "out of memory"));
  }
  return options;
}

}  // namespace

absl::Status ValidatePostgresDsn(const std::string& dsn) { return Parse(dsn).status(); }

std::string RedactedPostgresDsn(const std::string& dsn) {
  absl::StatusOr<OptionsPtr> options = Parse(dsn);
  if (!options.ok()) return "(invalid)";
  std::vector<std::string> parts;
  for (const PQconninfoOption* o = options->get(); o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const bool secret = std::string(o->dispchar) == "*";  // libpq marks the password so
    parts.push_back(absl::StrCat(o->keyword, "=", secret ? "****" : o->val));
  }
  return absl::StrJoin(parts, " ");
}

namespace pg {

absl::StatusOr<ConnectParams> ConnectParamsFor(const std::string& dsn,
                                               absl::Duration connect_timeout) {
  absl::StatusOr<OptionsPtr> options = Parse(dsn);
  if (!options.ok()) return options.status();
  ConnectParams out;
  auto has = [&out](const std::string& key) {
    return std::any_of(out.params.begin(), out.params.end(),
                       [&key](const auto& p) { return p.first == key; });
  };
  for (const PQconninfoOption* o = options->get(); o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    out.params.emplace_back(o->keyword, o->val);
    if (std::string(o->keyword) == "password") out.password = o->val;
  }
  const int64_t seconds = std::max<int64_t>(2, absl::ToInt64Seconds(connect_timeout));
  const std::pair<const char*, std::string> defaults[] = {
      {"connect_timeout", absl::StrCat(seconds)},
      {"application_name", "token-authority"},
      {"keepalives", "1"},
      {"keepalives_idle", "10"},
      {"keepalives_interval", "5"},
      {"keepalives_count", "3"},
      {"tcp_user_timeout", "10000"},  // ms: unacknowledged data on a dead link fails the call
  };
  for (const auto& [key, value] : defaults) {
    if (!has(key)) out.params.emplace_back(key, value);
  }
  return out;
}

}  // namespace pg
}  // namespace ta::storage

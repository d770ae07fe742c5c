#include "storage/postgres/dsn.h"

#include <libpq-fe.h>

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/base/error.h"

namespace ta::storage {
namespace {

struct OptionsDeleter {
  void operator()(PQconninfoOption* o) const { PQconninfoFree(o); }
};
using OptionsPtr = std::unique_ptr<PQconninfoOption, OptionsDeleter>;

struct ErrmsgDeleter {
  void operator()(char* m) const { PQfreemem(m); }
};

// libpq's parse errors quote the offending piece of the string, which may be a password:
// keep the explanation, drop whatever it quotes.
std::string Unquoted(const std::string& message) {
  std::string out;
  bool quoted = false;
  for (char c : message) {
    if (c == '"') {
      quoted = !quoted;
      out += quoted ? "\"" : "...\"";
      continue;
    }
    if (!quoted && c != '\n') out += c;
  }
  return out;
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
                     error != nullptr ? Unquoted(error.get()) : "out of memory"));
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

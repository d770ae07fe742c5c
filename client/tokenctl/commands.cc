#include "client/tokenctl/commands.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <iostream>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "server/base/error.h"

namespace ta::tokenctl {
namespace {

namespace v1 = ::tokenauthority::v1;
using google::protobuf::util::TimeUtil;

struct Output {
  std::ostream& out;
  std::ostream& err;
  bool json;
};

// A local mistake in the command line: exit 2, nothing sent.
int UsageError(Output& o, absl::string_view message) {
  o.err << "tokenctl: " << message << "\n";
  return kExitUsage;
}

// "error: <reason>: <message>". The server's message already starts with "<reason>: ";
// print it once. Without a server reason (e.g. connection refused) the code stands in.
int CallError(Output& o, const absl::Status& status) {
  std::string reason = ReasonOf(status);
  if (reason.empty()) reason = absl::AsciiStrToLower(absl::StatusCodeToString(status.code()));
  absl::string_view message = status.message();
  absl::ConsumePrefix(&message, absl::StrCat(reason, ": "));
  o.err << "error: " << reason << ": " << message << "\n";
  return ExitCodeFor(status);
}

// Prints `result` as JSON or through `print`, or reports its error.
template <typename Response, typename Print>
int Finish(const absl::StatusOr<Response>& result, Output& o, Print print) {
  if (!result.ok()) return CallError(o, result.status());
  if (o.json) {
    google::protobuf::util::JsonPrintOptions options;
    // Scripts read `active: false` and zero counts; proto3 JSON would omit them.
    options.always_print_primitive_fields = true;
    std::string json;
    if (!google::protobuf::util::MessageToJsonString(*result, &json, options).ok()) {
      o.err << "error: internal: cannot print the response as JSON\n";
      return kExitRefused;
    }
    o.out << json << "\n";
    return kExitOk;
  }
  print(*result, o.out);
  return kExitOk;
}

// Seconds are enough for people and keep the tables aligned; --json has the full value.
std::string Time(int64_t unix_seconds) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(unix_seconds),
                          absl::UTCTimeZone());
}

std::string Time(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "-";
  return Time(t.seconds());
}

// A positional token argument; "-" reads it from stdin so it stays out of shell history.
std::string TokenArg(const std::string& arg) {
  if (arg != "-") return arg;
  std::string line;
  std::getline(std::cin, line);
  return std::string(absl::StripAsciiWhitespace(line));
}

void PrintPair(const v1::TokenPair& p, std::ostream& out) {
  out << "family_id:          " << p.family_id() << "\n"
      << "access_token:       " << p.access_token() << "\n"
      << "refresh_token:      " << p.refresh_token() << "\n"
      << "expires_in:         " << p.expires_in() << "s\n"
      << "refresh_expires_in: " << p.refresh_expires_in() << "s\n";
}

int Issue(const CommandInput& in, client::Client& c, Output& o) {
  v1::IssueTokensRequest req;
  req.set_subject(in.args[0]);
  req.set_client_id(in.client_id);
  req.set_scope(in.scope);
  for (const std::string& aud : in.audience) req.add_audience(aud);
  for (const std::string& entry : in.metadata) {
    std::pair<std::string, std::string> kv = absl::StrSplit(entry, absl::MaxSplits('=', 1));
    if (kv.first.empty() || !absl::StrContains(entry, '=')) {
      return UsageError(o, absl::StrCat("--metadata: want key=value, got \"", entry, "\""));
    }
    (*req.mutable_session_metadata())[kv.first] = kv.second;
  }
  if (!in.extra_claims.empty() &&
      !google::protobuf::util::JsonStringToMessage(in.extra_claims, req.mutable_extra_claims())
           .ok()) {
    return UsageError(o, "--extra_claims: want a JSON object");
  }
  return Finish(c.IssueTokens(req), o, PrintPair);
}

int Refresh(const CommandInput& in, client::Client& c, Output& o) {
  v1::RefreshTokensRequest req;
  req.set_refresh_token(TokenArg(in.args[0]));
  req.set_scope(in.scope);
  return Finish(c.RefreshTokens(req), o, PrintPair);
}

void PrintIntrospection(const v1::IntrospectResponse& r, std::ostream& out) {
  out << "active:     " << (r.active() ? "true" : "false") << "\n";
  if (!r.active()) {
    if (!r.inactive_reason().empty()) out << "reason:     " << r.inactive_reason() << "\n";
    return;
  }
  out << "token_type: " << r.token_type() << "\n"
      << "subject:    " << r.subject() << "\n"
      << "client_id:  " << r.client_id() << "\n"
      << "scope:      " << r.scope() << "\n"
      << "audience:   " << absl::StrJoin(r.audience(), ",") << "\n"
      << "family_id:  " << r.family_id() << "\n";
  if (!r.jti().empty()) out << "jti:        " << r.jti() << "\n";
  out << "issued_at:  " << Time(r.issued_at()) << "\n"
      << "expires_at: " << Time(r.expires_at()) << "\n";
}

int Introspect(const CommandInput& in, client::Client& c, Output& o) {
  v1::IntrospectRequest req;
  req.set_token(TokenArg(in.args[0]));
  if (!in.audience.empty()) req.set_audience(in.audience.front());
  req.set_include_reason(in.include_reason);
  return Finish(c.Introspect(req), o, PrintIntrospection);
}

int Revoke(const CommandInput& in, client::Client& c, Output& o) {
  v1::RevokeTokenRequest req;
  req.set_token(TokenArg(in.args[0]));
  // RFC 7009: an unknown token is answered OK too, so "ok" promises only that it is not usable.
  return Finish(c.RevokeToken(req), o,
                [](const v1::RevokeTokenResponse&, std::ostream& out) { out << "ok\n"; });
}

int RevokeFamily(const CommandInput& in, client::Client& c, Output& o) {
  v1::RevokeFamilyRequest req;
  if (in.args.empty() == in.token.empty()) {
    return UsageError(o, "revoke-family: give a FAMILY_ID or --token, not both");
  }
  if (!in.args.empty()) req.set_family_id(in.args[0]);
  req.set_token(TokenArg(in.token));
  req.set_reason(in.reason);
  return Finish(c.RevokeFamily(req), o, [](const v1::RevokeFamilyResponse& r, std::ostream& out) {
    out << (r.changed() ? "revoked\n" : "already revoked\n");
  });
}

constexpr absl::string_view kTimeHint = ": want RFC 3339, e.g. 2030-01-01T00:00:00Z";

int RevokeSubject(const CommandInput& in, client::Client& c, Output& o) {
  v1::RevokeSubjectRequest req;
  req.set_subject(in.args[0]);
  req.set_reason(in.reason);
  if (!in.not_before.empty() && !TimeUtil::FromString(in.not_before, req.mutable_not_before())) {
    return UsageError(o, absl::StrCat("--not_before", kTimeHint));
  }
  if (!in.block_until.empty() && !TimeUtil::FromString(in.block_until, req.mutable_block_until())) {
    return UsageError(o, absl::StrCat("--block_until", kTimeHint));
  }
  return Finish(c.RevokeSubject(req), o, [](const v1::RevokeSubjectResponse& r, std::ostream& out) {
    out << "not_before:  " << Time(r.not_before()) << "\n"
        << "block_until: " << Time(r.block_until()) << "\n";
  });
}

std::string Metadata(const v1::Family& f) {
  std::map<std::string, std::string> sorted(f.session_metadata().begin(),
                                            f.session_metadata().end());
  return absl::StrJoin(sorted, ",", absl::PairFormatter("="));
}

void PrintFamilies(const v1::ListFamiliesResponse& r, std::ostream& out) {
  out << absl::StrFormat("%-24s %-16s %-20s %5s %-8s %s\n", "FAMILY_ID", "CLIENT_ID", "CREATED",
                         "GEN", "STATE", "METADATA");
  for (const v1::Family& f : r.families()) {
    out << absl::StrFormat("%-24s %-16s %-20s %5d %-8s %s\n", f.family_id(), f.client_id(),
                           Time(f.created_at()), f.generation(), f.revoked() ? "revoked" : "active",
                           Metadata(f));
  }
  if (!r.next_page_token().empty()) out << "next_page_token: " << r.next_page_token() << "\n";
}

int Sessions(const CommandInput& in, client::Client& c, Output& o) {
  v1::ListFamiliesRequest req;
  req.set_subject(in.args[0]);
  req.set_include_revoked(in.include_revoked);
  req.set_page_size(in.page_size);
  req.set_page_token(in.page_token);
  return Finish(c.ListFamilies(req), o, PrintFamilies);
}

void PrintFamily(const v1::Family& f, std::ostream& out) {
  out << "family_id:         " << f.family_id() << "\n"
      << "subject:           " << f.subject() << "\n"
      << "client_id:         " << f.client_id() << "\n"
      << "audience:          " << absl::StrJoin(f.audience(), ",") << "\n"
      << "scope:             " << f.scope() << "\n"
      << "metadata:          " << Metadata(f) << "\n"
      << "created_at:        " << Time(f.created_at()) << "\n"
      << "expires_at:        " << Time(f.expires_at()) << "\n"
      << "generation:        " << f.generation() << "\n"
      << "last_refreshed_at: " << Time(f.last_refreshed_at()) << "\n"
      << "revoked:           " << (f.revoked() ? "true" : "false") << "\n";
  if (f.revoked()) {
    out << "revoked_at:        " << Time(f.revoked_at()) << "\n"
        << "revoke_reason:     " << f.revoke_reason() << "\n";
  }
}

int Family(const CommandInput& in, client::Client& c, Output& o) {
  v1::GetFamilyRequest req;
  req.set_family_id(in.args[0]);
  return Finish(c.GetFamily(req), o, PrintFamily);
}

void PrintJwks(const v1::GetJwksResponse& r, std::ostream& out) {
  out << absl::StrFormat("%-44s %-6s %-7s %-20s %s\n", "KID", "ALG", "ACTIVE", "CREATED",
                         "RETIRE_AT");
  for (const v1::KeyInfo& k : r.keys()) {
    out << absl::StrFormat("%-44s %-6s %-7s %-20s %s\n", k.kid(), k.alg(),
                           k.active() ? "yes" : "no", Time(k.created_at()), Time(k.retire_at()));
  }
}

int Jwks(const CommandInput&, client::Client& c, Output& o) {
  return Finish(c.GetJwks(v1::GetJwksRequest()), o, PrintJwks);
}

int RotateKey(const CommandInput& in, client::Client& c, Output& o) {
  v1::RotateSigningKeyRequest req;
  req.set_alg(in.alg);
  return Finish(c.RotateSigningKey(req), o,
                [](const v1::RotateSigningKeyResponse& r, std::ostream& out) {
                  out << "kid: " << r.kid() << "\n";
                });
}

int Purge(const CommandInput&, client::Client& c, Output& o) {
  return Finish(c.PurgeExpired(v1::PurgeExpiredRequest()), o,
                [](const v1::PurgeExpiredResponse&, std::ostream& out) { out << "ok\n"; });
}

void PrintStats(const v1::GetStatsResponse& r, std::ostream& out) {
  out << "families:        " << r.families() << "\n"
      << "refresh_records: " << r.refresh_records() << "\n"
      << "denied_jtis:     " << r.denied_jtis() << "\n"
      << "subjects:        " << r.subjects() << "\n"
      << "disk_bytes:      " << r.disk_bytes() << "\n"
      << "signing_keys:    " << r.signing_keys() << "\n";
}

int Stats(const CommandInput&, client::Client& c, Output& o) {
  return Finish(c.GetStats(v1::GetStatsRequest()), o, PrintStats);
}

struct Command {
  absl::string_view name;
  absl::string_view usage;
  size_t min_args;
  size_t max_args;
  int (*run)(const CommandInput&, client::Client&, Output&);
};

constexpr Command kCommands[] = {
    {"issue",
     "issue SUBJECT --client_id=ID [--scope=S] [--audience=A,B] [--metadata=k=v,..] "
     "[--extra_claims=JSON]",
     1, 1, Issue},
    {"refresh", "refresh REFRESH_TOKEN|- [--scope=S]", 1, 1, Refresh},
    {"introspect", "introspect TOKEN|- [--audience=A] [--include_reason]", 1, 1, Introspect},
    {"revoke", "revoke TOKEN|-", 1, 1, Revoke},
    {"revoke-family", "revoke-family FAMILY_ID | --token=TOKEN  [--reason=R]", 0, 1, RevokeFamily},
    {"revoke-subject", "revoke-subject SUBJECT [--reason=R] [--not_before=T] [--block_until=T]", 1,
     1, RevokeSubject},
    {"sessions", "sessions SUBJECT [--include_revoked] [--page_size=N] [--page_token=P]", 1, 1,
     Sessions},
    {"family", "family FAMILY_ID", 1, 1, Family},
    {"jwks", "jwks", 0, 0, Jwks},
    {"rotate-key", "rotate-key [--alg=ES256|EdDSA|RS256|PS256]", 0, 0, RotateKey},
    {"purge-expired", "purge-expired", 0, 0, Purge},
    {"stats", "stats", 0, 0, Stats},
};

const Command* Find(absl::string_view name) {
  for (const Command& c : kCommands) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

}  // namespace

std::string CommandsHelp() {
  std::string help;
  for (const Command& c : kCommands) absl::StrAppend(&help, "  tokenctl ", c.usage, "\n");
  return help;
}

bool IsCommand(absl::string_view name) { return Find(name) != nullptr; }

int ExitCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kExitUnreachable;
    default:
      return kExitRefused;
  }
}

int RunCommand(absl::string_view name, const CommandInput& input, client::Client& client,
               std::ostream& out, std::ostream& err) {
  Output o{out, err, input.json};
  const Command* command = Find(name);
  if (command == nullptr) return UsageError(o, absl::StrCat("unknown subcommand \"", name, "\""));
  if (input.args.size() < command->min_args || input.args.size() > command->max_args) {
    return UsageError(o, absl::StrCat("usage: tokenctl ", command->usage));
  }
  return command->run(input, client, o);
}

}  // namespace ta::tokenctl

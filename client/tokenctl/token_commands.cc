// The subcommands about one session or token: issue, refresh, introspect, revoke,
// revoke-family, family. Each prints short "name: value" lines, or --json.
#include <google/protobuf/util/json_util.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/tokenctl/subcommands.h"

namespace ta::tokenctl::internal {
namespace {

namespace v1 = ::tokenauthority::v1;

void PrintPair(const v1::TokenPair& p, Io& io) {
  io.out << "family_id:          " << p.family_id() << "\n"
         << "access_token:       " << p.access_token() << "\n"
         << "refresh_token:      " << p.refresh_token() << "\n"
         << "expires_in:         " << p.expires_in() << "s\n"
         << "refresh_expires_in: " << p.refresh_expires_in() << "s\n";
}

void PrintIntrospection(const v1::IntrospectResponse& r, Io& io) {
  io.out << "active:     " << (r.active() ? "true" : "false") << "\n";
  if (!r.active()) {
    if (!r.inactive_reason().empty()) io.out << "reason:     " << r.inactive_reason() << "\n";
    return;
  }
  io.out << "token_type: " << r.token_type() << "\n"
         << "subject:    " << r.subject() << "\n"
         << "client_id:  " << r.client_id() << "\n"
         << "scope:      " << r.scope() << "\n"
         << "audience:   " << absl::StrJoin(r.audience(), ",") << "\n"
         << "family_id:  " << r.family_id() << "\n";
  if (!r.jti().empty()) io.out << "jti:        " << r.jti() << "\n";
  io.out << "issued_at:  " << Time(r.issued_at()) << "\n"
         << "expires_at: " << Time(r.expires_at()) << "\n";
}

void PrintFamily(const v1::Family& f, Io& io) {
  io.out << "family_id:         " << f.family_id() << "\n"
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
    io.out << "revoked_at:        " << Time(f.revoked_at()) << "\n"
           << "revoke_reason:     " << f.revoke_reason() << "\n";
  }
}

}  // namespace

int Issue(const CommandInput& in, client::Client& c, Io& io) {
  v1::IssueTokensRequest req;
  req.set_subject(in.args[0]);
  req.set_client_id(in.client_id);
  req.set_scope(in.scope);
  for (const std::string& aud : in.audience) req.add_audience(aud);
  for (const std::string& entry : in.metadata) {
    std::pair<std::string, std::string> kv = absl::StrSplit(entry, absl::MaxSplits('=', 1));
    if (kv.first.empty() || !absl::StrContains(entry, '=')) {
      return UsageError(io, absl::StrCat("--metadata: want key=value, got \"", entry, "\""));
    }
    (*req.mutable_session_metadata())[kv.first] = kv.second;
  }
  if (!in.extra_claims.empty() &&
      !google::protobuf::util::JsonStringToMessage(in.extra_claims, req.mutable_extra_claims())
           .ok()) {
    return UsageError(io, "--extra_claims: want a JSON object");
  }
  if (in.client_id.empty()) return UsageError(io, "issue: --client_id is required");
  return Finish(c.IssueTokens(req), in, io, PrintPair);
}

int Refresh(const CommandInput& in, client::Client& c, Io& io) {
  absl::StatusOr<std::string> token = TokenArg(in.args[0], io);
  if (!token.ok()) return UsageError(io, absl::StrCat("refresh: ", token.status().message()));
  v1::RefreshTokensRequest req;
  req.set_refresh_token(*token);
  req.set_scope(in.scope);
  return Finish(c.RefreshTokens(req), in, io, PrintPair);
}

int Introspect(const CommandInput& in, client::Client& c, Io& io) {
  absl::StatusOr<std::string> token = TokenArg(in.args[0], io);
  if (!token.ok()) return UsageError(io, absl::StrCat("introspect: ", token.status().message()));
  v1::IntrospectRequest req;
  req.set_token(*token);
  if (!in.audience.empty()) req.set_audience(in.audience.front());
  req.set_include_reason(in.include_reason);
  return Finish(c.Introspect(req), in, io, PrintIntrospection);
}

int Revoke(const CommandInput& in, client::Client& c, Io& io) {
  absl::StatusOr<std::string> token = TokenArg(in.args[0], io);
  if (!token.ok()) return UsageError(io, absl::StrCat("revoke: ", token.status().message()));
  v1::RevokeTokenRequest req;
  req.set_token(*token);
  // RFC 7009: an unknown token is answered OK too, so "ok" promises only that it is not usable.
  return Finish(c.RevokeToken(req), in, io,
                [](const v1::RevokeTokenResponse&, Io& io) { io.out << "ok\n"; });
}

int RevokeFamily(const CommandInput& in, client::Client& c, Io& io) {
  if (in.args.empty() == in.token.empty()) {
    return UsageError(io, "revoke-family: give a FAMILY_ID or --token, not both");
  }
  v1::RevokeFamilyRequest req;
  if (!in.args.empty()) req.set_family_id(in.args[0]);
  if (!in.token.empty()) {
    absl::StatusOr<std::string> token = TokenArg(in.token, io);
    if (!token.ok()) {
      return UsageError(io, absl::StrCat("revoke-family --token: ", token.status().message()));
    }
    req.set_token(*token);
  }
  req.set_reason(in.reason);
  return Finish(c.RevokeFamily(req), in, io, [](const v1::RevokeFamilyResponse& r, Io& io) {
    io.out << (r.changed() ? "revoked\n" : "already revoked\n");
  });
}

int Family(const CommandInput& in, client::Client& c, Io& io) {
  v1::GetFamilyRequest req;
  req.set_family_id(in.args[0]);
  return Finish(c.GetFamily(req), in, io, PrintFamily);
}

}  // namespace ta::tokenctl::internal

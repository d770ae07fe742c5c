// Who may call what (issue 6, DESIGN §7) over a real channel: the full role x RPC matrix,
// missing, wrong and revoked credentials, and client_id ownership.
#include <catch2/catch.hpp>
#include <fstream>

#include "server/core/callers.h"
#include "tests/support/test_server.h"

namespace ta::testing {
namespace {

struct Identity {
  std::string label;
  std::string key;
};

// Writes a caller file with one key per role, a restricted client and a revoked admin.
std::string WriteCallers(const std::string& dir) {
  const std::string path = dir + "/callers.txt";
  std::ofstream out(path);
  out << "# test callers\n"
      << "login   issuer   " << core::CallerRegistry::KeyCredential("issuer-key") << "\n"
      << "webauth issuer   " << core::CallerRegistry::KeyCredential("web-issuer-key")
      << " clients=web\n"
      << "webapp  client   " << core::CallerRegistry::KeyCredential("client-key")
      << " clients=web\n"
      << "api     resource " << core::CallerRegistry::KeyCredential("resource-key") << "\n"
      << "ops     admin    " << core::CallerRegistry::KeyCredential("admin-key") << "\n"
      << "gone    admin    " << core::CallerRegistry::KeyCredential("revoked-key") << " revoked\n";
  return path;
}

TestServer AuthServer() {
  return TestServer([](ServerOptions& o) {
    o.callers_file = WriteCallers(o.data_dir.substr(0, o.data_dir.rfind('/')));
  });
}

// One RPC of the matrix: how to call it as `key`, and which roles may.
struct RpcCase {
  std::string name;
  std::set<std::string> roles;  // besides admin
  std::function<CallResult(TestServer&, const std::string&)> call;
};

template <typename Req, typename Resp, typename Stub>
std::function<CallResult(TestServer&, const std::string&)> Make(
    Stub& (TestServer::*stub)(),
    grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*), Req req) {
  return [=](TestServer& s, const std::string& key) {
    Resp resp;
    return CallAs(key, (s.*stub)(), method, req, &resp);
  };
}

// The streaming RPC: allowed when its first message (the reset) arrives.
CallResult Watch(TestServer& s, const std::string& key) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, key);
  std::unique_ptr<grpc::ClientReader<v1::WatchRevocationsResponse>> reader =
      s.api().WatchRevocations(&ctx, v1::WatchRevocationsRequest());
  v1::WatchRevocationsResponse first;
  const bool opened = reader->Read(&first);
  if (opened) ctx.TryCancel();
  while (reader->Read(&first)) {
  }
  grpc::Status status = reader->Finish();
  return opened ? CallResult{grpc::Status::OK, ""} : CallResult{status, ReasonOf(ctx)};
}

std::vector<RpcCase> Matrix(const v1::TokenPair& pair) {
  using A = v1::TokenAuthority::Stub;
  using D = v1::TokenAdmin::Stub;
  v1::IssueTokensRequest issue;
  issue.set_subject("carol");
  issue.set_client_id("web");
  v1::RefreshTokensRequest refresh;
  refresh.set_refresh_token("tar_not-a-real-token");
  v1::IntrospectRequest intro;
  intro.set_token(pair.access_token());
  v1::IntrospectBatchRequest batch;
  *batch.add_requests() = intro;
  v1::RevokeTokenRequest revoke;
  revoke.set_token("not-a-token");
  v1::RevokeFamilyRequest revoke_family;
  revoke_family.set_family_id("AAAAAAAAAAAAAAAAAAAAAA");
  v1::RevokeSubjectRequest subject;
  subject.set_subject("nobody");
  v1::ListFamiliesRequest list;
  list.set_subject("nobody");
  v1::GetFamilyRequest get;
  get.set_family_id(pair.family_id());
  v1::CreateBackupRequest backup;
  backup.set_backup_dir("relative/so/nothing/is/written");
  return {
      {"IssueTokens", {"issuer"}, Make(&TestServer::api, &A::IssueTokens, issue)},
      {"RefreshTokens", {"client"}, Make(&TestServer::api, &A::RefreshTokens, refresh)},
      {"Introspect", {"resource"}, Make(&TestServer::api, &A::Introspect, intro)},
      {"IntrospectBatch", {"resource"}, Make(&TestServer::api, &A::IntrospectBatch, batch)},
      {"RevokeToken", {"client"}, Make(&TestServer::api, &A::RevokeToken, revoke)},
      {"RevokeFamily", {"client"}, Make(&TestServer::api, &A::RevokeFamily, revoke_family)},
      {"GetJwks",
       {"issuer", "client", "resource"},
       Make(&TestServer::api, &A::GetJwks, v1::GetJwksRequest())},
      {"RevokeSubject", {}, Make(&TestServer::admin, &D::RevokeSubject, subject)},
      {"ListFamilies", {}, Make(&TestServer::admin, &D::ListFamilies, list)},
      {"GetFamily", {}, Make(&TestServer::admin, &D::GetFamily, get)},
      {"RotateSigningKey",
       {},
       Make(&TestServer::admin, &D::RotateSigningKey, v1::RotateSigningKeyRequest())},
      {"PurgeExpired", {}, Make(&TestServer::admin, &D::PurgeExpired, v1::PurgeExpiredRequest())},
      {"GetStats", {}, Make(&TestServer::admin, &D::GetStats, v1::GetStatsRequest())},
      {"CreateBackup", {}, Make(&TestServer::admin, &D::CreateBackup, backup)},
      {"WatchRevocations", {"resource"}, Watch},
  };
}

TEST_CASE("Auth: every RPC x every role, no key, wrong key and a revoked caller", "[auth]") {
  TestServer s = AuthServer();
  v1::IssueTokensRequest issue;
  issue.set_subject("alice");
  issue.set_client_id("web");
  v1::TokenPair pair;
  REQUIRE(CallAs("issuer-key", s.api(), &v1::TokenAuthority::Stub::IssueTokens, issue, &pair).ok());

  const std::vector<Identity> roles = {{"issuer", "issuer-key"},
                                       {"client", "client-key"},
                                       {"resource", "resource-key"},
                                       {"admin", "admin-key"}};
  for (const RpcCase& rpc : Matrix(pair)) {
    for (const Identity& who : roles) {
      CallResult r = rpc.call(s, who.key);
      const bool allowed = who.label == "admin" || rpc.roles.count(who.label) > 0;
      INFO(rpc.name << " as " << who.label << ": " << r.status.error_message());
      if (allowed) {  // it may still fail on its arguments, but not on who is calling
        CHECK(r.reason != "permission_denied");
        CHECK(r.reason != "unauthenticated");
        CHECK(r.reason != "caller_revoked");
      } else {
        CHECK(r.status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
        CHECK(r.reason == "permission_denied");
      }
    }
    for (const auto& [label, key, reason] :
         std::vector<std::tuple<std::string, std::string, std::string>>{
             {"no key", "", "unauthenticated"},
             {"wrong key", "guess", "unauthenticated"},
             {"revoked caller", "revoked-key", "caller_revoked"}}) {
      CallResult r = rpc.call(s, key);
      INFO(rpc.name << " with " << label);
      CHECK(r.status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
      CHECK(r.reason == reason);
    }
  }
}

TEST_CASE("Auth: refused callers touch nothing", "[auth]") {
  TestServer s = AuthServer();
  v1::IssueTokensRequest issue;
  issue.set_subject("alice");
  issue.set_client_id("web");
  v1::TokenPair pair;
  for (const char* key : {"", "guess", "resource-key", "client-key", "revoked-key"}) {
    CHECK_FALSE(CallAs(key, s.api(), &v1::TokenAuthority::Stub::IssueTokens, issue, &pair).ok());
  }
  v1::GetStatsResponse stats;
  REQUIRE(
      CallAs("admin-key", s.admin(), &v1::TokenAdmin::Stub::GetStats, v1::GetStatsRequest(), &stats)
          .ok());
  CHECK(stats.families() == 0);
}

TEST_CASE("Auth: a client may refresh and revoke only tokens of its own client_id", "[auth]") {
  TestServer s = AuthServer();
  auto issue_for = [&](const std::string& client_id) {
    v1::IssueTokensRequest issue;
    issue.set_subject("alice");
    issue.set_client_id(client_id);
    v1::TokenPair pair;
    REQUIRE(
        CallAs("issuer-key", s.api(), &v1::TokenAuthority::Stub::IssueTokens, issue, &pair).ok());
    return pair;
  };
  v1::TokenPair mine = issue_for("web");
  v1::TokenPair theirs = issue_for("mobile");

  v1::RefreshTokensRequest refresh;
  v1::TokenPair out;
  refresh.set_refresh_token(theirs.refresh_token());
  CallResult r =
      CallAs("client-key", s.api(), &v1::TokenAuthority::Stub::RefreshTokens, refresh, &out);
  CHECK(r.status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  refresh.set_refresh_token(mine.refresh_token());
  CHECK(
      CallAs("client-key", s.api(), &v1::TokenAuthority::Stub::RefreshTokens, refresh, &out).ok());

  v1::RevokeTokenRequest revoke;
  v1::RevokeTokenResponse revoked;
  revoke.set_token(theirs.access_token());
  r = CallAs("client-key", s.api(), &v1::TokenAuthority::Stub::RevokeToken, revoke, &revoked);
  CHECK(r.status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  v1::RevokeFamilyRequest family;
  v1::RevokeFamilyResponse changed;
  family.set_family_id(theirs.family_id());
  r = CallAs("client-key", s.api(), &v1::TokenAuthority::Stub::RevokeFamily, family, &changed);
  CHECK(r.status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  v1::IntrospectRequest intro;
  intro.set_token(theirs.access_token());
  v1::IntrospectResponse info;
  REQUIRE(CallAs("admin-key", s.api(), &v1::TokenAuthority::Stub::Introspect, intro, &info).ok());
  CHECK(info.active());  // untouched

  // Who revoked what is recorded.
  family.set_family_id(mine.family_id());
  REQUIRE(CallAs("client-key", s.api(), &v1::TokenAuthority::Stub::RevokeFamily, family, &changed)
              .ok());
  v1::GetFamilyRequest get;
  get.set_family_id(mine.family_id());
  v1::Family record;
  REQUIRE(CallAs("admin-key", s.admin(), &v1::TokenAdmin::Stub::GetFamily, get, &record).ok());
  CHECK(record.revoked_by() == "webapp");
  CHECK(record.issued_by() == "login");
}

TEST_CASE("Auth: an issuer listed with clients= starts sessions only for those clients",
          "[auth]") {
  TestServer s = AuthServer();
  v1::IssueTokensRequest req;
  req.set_subject("dora");
  req.set_client_id("web");
  v1::TokenPair pair;
  CHECK(CallAs("web-issuer-key", s.api(), &v1::TokenAuthority::Stub::IssueTokens, req, &pair).ok());
  req.set_client_id("mobile");
  CallResult other = CallAs("web-issuer-key", s.api(), &v1::TokenAuthority::Stub::IssueTokens, req, &pair);
  CHECK(other.status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(other.reason == "permission_denied");
  CHECK(CallAs("issuer-key", s.api(), &v1::TokenAuthority::Stub::IssueTokens, req, &pair).ok());
}

TEST_CASE("Auth: inactive reasons are for admins only", "[auth]") {
  TestServer s = AuthServer();
  v1::IntrospectRequest req;
  req.set_token("a.b.c");
  req.set_include_reason(true);
  v1::IntrospectResponse resp;
  REQUIRE(CallAs("resource-key", s.api(), &v1::TokenAuthority::Stub::Introspect, req, &resp).ok());
  CHECK_FALSE(resp.active());
  CHECK(resp.inactive_reason().empty());
  REQUIRE(CallAs("admin-key", s.api(), &v1::TokenAuthority::Stub::Introspect, req, &resp).ok());
  CHECK(resp.inactive_reason() == "malformed_token");
}

TEST_CASE("Auth: a malformed caller file stops the server naming the line", "[auth]") {
  TempDir dir;
  const std::string path = dir.path() + "/callers.txt";
  std::ofstream(path) << "ok admin " << core::CallerRegistry::KeyCredential("k") << "\n"
                      << "bad wizard key-sha256:00\n";
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.data_dir = dir.path() + "/data";
  options.callers_file = path;
  REQUIRE(ValidateServerOptions(options).ok());
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
  REQUIRE_FALSE(server.ok());
  CHECK(server.status().message().find("callers.txt:2") != std::string::npos);
}

}  // namespace
}  // namespace ta::testing

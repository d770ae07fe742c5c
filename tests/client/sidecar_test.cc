// The verifier sidecar (client/sidecar/, issue 25 item 3) against a real server in this process
// (tests/support/test_server.h: RocksDB, port 0), both on the real clock so the staleness bound
// is measured in real time: Introspect at the sidecar answers as the authority, a revocation
// reaches it within 1 s, writes are refused with sidecar_read_only, and a stopped authority
// turns it UNAVAILABLE revocations_stale and NOT_SERVING within about 1 s, then it recovers.
#include "client/sidecar/sidecar.h"

#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/support/test_server.h"

namespace ta::testing {
namespace {

namespace health = ::grpc::health::v1;
using client::VerifierSidecar;

void UseRealClock(ServerOptions& o) { o.authority.clock = Clock::Real(); }

std::unique_ptr<VerifierSidecar> StartSidecar(TestServer& server) {
  client::SidecarOptions o;
  o.listen = "127.0.0.1:0";
  o.verifier.server.target = server.address();
  o.verifier.server.api_key = server.admin_key();
  o.verifier.issuer = server.options().authority.issuer;
  o.verifier.audience = "api";
  o.verifier.max_staleness = absl::Seconds(1);
  o.verifier.initial_backoff = absl::Milliseconds(20);
  o.verifier.max_backoff = absl::Milliseconds(200);
  absl::StatusOr<std::unique_ptr<VerifierSidecar>> sidecar = VerifierSidecar::Start(std::move(o));
  INFO(sidecar.status().ToString());
  REQUIRE(sidecar.ok());
  return *std::move(sidecar);
}

class SidecarClient {
 public:
  explicit SidecarClient(const std::string& address)
      : channel_(grpc::CreateChannel(address, grpc::InsecureChannelCredentials())),
        api_(v1::TokenAuthority::NewStub(channel_)),
        health_(health::Health::NewStub(channel_)) {}

  v1::TokenAuthority::Stub& api() { return *api_; }

  // "active", the inactive reason, or "error:<reason>".
  std::string Answer(const std::string& token, v1::IntrospectResponse* out = nullptr) {
    v1::IntrospectRequest req;
    req.set_token(token);
    req.set_include_reason(true);
    v1::IntrospectResponse resp;
    CallResult r = CallAs("", *api_, &v1::TokenAuthority::Stub::Introspect, req, &resp);
    if (out != nullptr) *out = resp;
    if (!r.ok()) return "error:" + r.reason;
    return resp.active() ? "active" : resp.inactive_reason();
  }

  bool Serving() {
    health::HealthCheckRequest req;
    req.set_service("tokenauthority.v1.TokenAuthority");
    health::HealthCheckResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    grpc::Status status = health_->Check(&ctx, req, &resp);
    return status.ok() && resp.status() == health::HealthCheckResponse::SERVING;
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TokenAuthority::Stub> api_;
  std::unique_ptr<health::Health::Stub> health_;
};

// Polls (real time, up to 5 s) until `done`; the time it took, or InfiniteDuration.
template <typename F>
absl::Duration TimeUntil(F done) {
  const absl::Time start = absl::Now();
  while (absl::Now() - start < absl::Seconds(5)) {
    if (done()) return absl::Now() - start;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return absl::InfiniteDuration();
}

v1::TokenPair Issue(TestServer& server, const std::string& subject) {
  v1::TokenPair pair;
  CallResult r = server.Issue(subject, &pair);
  INFO(r.reason);
  REQUIRE(r.ok());
  return pair;
}

void RevokeFamily(TestServer& server, const std::string& family_id) {
  v1::RevokeFamilyRequest req;
  req.set_family_id(family_id);
  v1::RevokeFamilyResponse resp;
  REQUIRE(server.Call(server.api(), &v1::TokenAuthority::Stub::RevokeFamily, req, &resp).ok());
}

TEST_CASE("Sidecar: Introspect answers as the authority, revocations arrive within 1 s",
          "[client][sidecar]") {
  TestServer server(UseRealClock);
  std::unique_ptr<VerifierSidecar> sidecar = StartSidecar(server);
  SidecarClient local(sidecar->address());
  CHECK(TimeUntil([&] { return local.Serving(); }) < absl::Seconds(5));

  const v1::TokenPair pair = Issue(server, "alice");
  v1::IntrospectResponse at_sidecar;
  REQUIRE(local.Answer(pair.access_token(), &at_sidecar) == "active");
  const v1::IntrospectResponse at_authority = server.Introspect(pair.access_token(), "api");
  REQUIRE(at_authority.active());
  CHECK(at_sidecar.token_type() == "access_token");
  CHECK(at_sidecar.subject() == at_authority.subject());
  CHECK(at_sidecar.family_id() == at_authority.family_id());
  CHECK(at_sidecar.jti() == at_authority.jti());
  CHECK(at_sidecar.client_id() == at_authority.client_id());
  CHECK(at_sidecar.scope() == at_authority.scope());
  CHECK(at_sidecar.audience_size() == at_authority.audience_size());
  CHECK(at_sidecar.issued_at() == at_authority.issued_at());
  CHECK(at_sidecar.expires_at() == at_authority.expires_at());
  CHECK(at_sidecar.claims().fields().at("sub").string_value() == "alice");
  // The claims, rendered once per claims set: equal to the authority's, the first time and
  // from the sidecar's rendered bytes again.
  CHECK(google::protobuf::util::MessageDifferencer::Equals(at_sidecar.claims(),
                                                           at_authority.claims()));
  v1::IntrospectResponse again;
  REQUIRE(local.Answer(pair.access_token(), &again) == "active");
  CHECK(google::protobuf::util::MessageDifferencer::Equals(again.claims(), at_authority.claims()));

  // A wrong audience, a refresh token and garbage are inactive with the authority's reasons.
  {
    v1::IntrospectRequest req;
    req.set_token(pair.access_token());
    req.set_audience("other");
    req.set_include_reason(true);
    v1::IntrospectResponse resp;
    REQUIRE(CallAs("", local.api(), &v1::TokenAuthority::Stub::Introspect, req, &resp).ok());
    CHECK(!resp.active());
    CHECK(resp.inactive_reason() == "audience_mismatch");
  }
  CHECK(local.Answer(pair.refresh_token()) == "not_an_access_token");
  CHECK(local.Answer("not.a.jwt") == "malformed_token");
  CHECK(local.Answer("") == "error:invalid_argument:token");

  // IntrospectBatch: one answer per request, in order.
  {
    const v1::TokenPair other = Issue(server, "bob");
    v1::IntrospectBatchRequest req;
    req.add_requests()->set_token(other.access_token());
    req.add_requests()->set_token("not.a.jwt");
    v1::IntrospectBatchResponse resp;
    REQUIRE(CallAs("", local.api(), &v1::TokenAuthority::Stub::IntrospectBatch, req, &resp).ok());
    REQUIRE(resp.responses_size() == 2);
    CHECK(resp.responses(0).active());
    CHECK(resp.responses(0).subject() == "bob");
    CHECK(!resp.responses(1).active());
    CHECK(CallAs("", local.api(), &v1::TokenAuthority::Stub::IntrospectBatch,
                 v1::IntrospectBatchRequest(), &resp)
              .reason == "invalid_argument:requests");
  }

  // GetJwks: the authority's key set.
  {
    v1::GetJwksResponse local_jwks, authority_jwks;
    REQUIRE(CallAs("", local.api(), &v1::TokenAuthority::Stub::GetJwks, v1::GetJwksRequest(),
                   &local_jwks)
                .ok());
    REQUIRE(server
                .Call(server.api(), &v1::TokenAuthority::Stub::GetJwks, v1::GetJwksRequest(),
                      &authority_jwks)
                .ok());
    CHECK(local_jwks.jwks_json() == authority_jwks.jwks_json());
  }

  // Revoked at the authority: inactive at the sidecar within 1 s (measured, incl. the RPC).
  const absl::Time start = absl::Now();
  RevokeFamily(server, pair.family_id());
  const absl::Duration took =
      TimeUntil([&] { return local.Answer(pair.access_token()) == "family_revoked"; });
  std::printf("revocation at the authority -> inactive at the sidecar: %.2f ms\n",
              absl::ToDoubleMilliseconds(absl::Now() - start));
  CHECK(took <= absl::Seconds(1));
}

TEST_CASE("Sidecar: write RPCs are refused with sidecar_read_only", "[client][sidecar]") {
  TestServer server(UseRealClock);
  std::unique_ptr<VerifierSidecar> sidecar = StartSidecar(server);
  SidecarClient local(sidecar->address());
  v1::IssueTokensRequest issue;
  issue.set_subject("mallory");
  v1::TokenPair pair;
  CallResult r =
      CallAs(server.admin_key(), local.api(), &v1::TokenAuthority::Stub::IssueTokens, issue, &pair);
  CHECK(r.status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(r.reason == "sidecar_read_only");
  v1::RevokeFamilyRequest revoke;
  revoke.set_family_id("x");
  v1::RevokeFamilyResponse revoked;
  r = CallAs("", local.api(), &v1::TokenAuthority::Stub::RevokeFamily, revoke, &revoked);
  CHECK(r.status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(r.reason == "sidecar_read_only");
  v1::RefreshTokensRequest refresh;
  refresh.set_refresh_token("tar_x");
  r = CallAs("", local.api(), &v1::TokenAuthority::Stub::RefreshTokens, refresh, &pair);
  CHECK(r.reason == "sidecar_read_only");
  v1::RevokeTokenRequest revoke_token;
  revoke_token.set_token("x");
  v1::RevokeTokenResponse revoke_token_resp;
  r = CallAs("", local.api(), &v1::TokenAuthority::Stub::RevokeToken, revoke_token,
             &revoke_token_resp);
  CHECK(r.reason == "sidecar_read_only");
}

TEST_CASE(
    "Sidecar: a stopped authority turns it revocations_stale and NOT_SERVING within about "
    "1 s, and recovers when the authority is back",
    "[client][sidecar]") {
  TestServer server(UseRealClock);
  std::unique_ptr<VerifierSidecar> sidecar = StartSidecar(server);
  SidecarClient local(sidecar->address());
  REQUIRE(TimeUntil([&] { return local.Serving(); }) < absl::Seconds(5));
  const v1::TokenPair alive = Issue(server, "alice");
  const v1::TokenPair dead = Issue(server, "bob");
  RevokeFamily(server, dead.family_id());
  REQUIRE(TimeUntil([&] { return local.Answer(dead.access_token()) == "family_revoked"; }) <
          absl::Seconds(1));
  REQUIRE(local.Answer(alive.access_token()) == "active");
  const std::string address = server.address();

  server.Restart([&](ServerOptions& o) {
    o.listen = address;  // while it is down (Restart's tweak), the sidecar is judged
    const absl::Duration stale =
        TimeUntil([&] { return local.Answer(alive.access_token()) == "error:revocations_stale"; });
    const absl::Duration not_serving = TimeUntil([&] { return !local.Serving(); });
    std::printf("authority stopped -> revocations_stale after %.0f ms, NOT_SERVING %.0f ms later\n",
                absl::ToDoubleMilliseconds(stale), absl::ToDoubleMilliseconds(not_serving));
    CHECK(stale <= absl::Milliseconds(1500));
    CHECK(not_serving <= absl::Milliseconds(200));
    v1::IntrospectRequest req;
    req.set_token(alive.access_token());
    v1::IntrospectResponse resp;
    CallResult r = CallAs("", local.api(), &v1::TokenAuthority::Stub::Introspect, req, &resp);
    CHECK(r.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(r.reason == "revocations_stale");
    CHECK(local.Answer("not.a.jwt") == "malformed_token");  // a bad token is still inactive
  });
  REQUIRE(server.address() == address);
  const absl::Duration recovered = TimeUntil([&] { return local.Serving(); });
  std::printf("authority back -> SERVING after %.0f ms\n", absl::ToDoubleMilliseconds(recovered));
  CHECK(recovered < absl::Seconds(5));
  CHECK(local.Answer(alive.access_token()) == "active");
  CHECK(local.Answer(dead.access_token()) == "family_revoked");
  RevokeFamily(server, alive.family_id());
  CHECK(TimeUntil([&] { return local.Answer(alive.access_token()) == "family_revoked"; }) <=
        absl::Seconds(1));
}

}  // namespace
}  // namespace ta::testing

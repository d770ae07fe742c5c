// ta::client::Client end to end against the real server binary: every method, and the
// server's reason reaching the caller through ta::ReasonOf.
#include "client/client.h"

#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/match.h"
#include "base/error.h"
#include "tests/client/client_test_util.h"

namespace ta::testing {
namespace {

namespace v1 = ::tokenauthority::v1;

v1::TokenPair Issue(client::Client& c, const std::string& subject,
                    const std::string& device = "laptop") {
  v1::IssueTokensRequest req;
  req.set_subject(subject);
  req.set_client_id("web");
  req.set_scope("read write");
  (*req.mutable_session_metadata())["device"] = device;
  absl::StatusOr<v1::TokenPair> pair = c.IssueTokens(req);
  INFO(pair.status().ToString());
  REQUIRE(pair.ok());
  return *pair;
}

bool Active(client::Client& c, const std::string& token) {
  v1::IntrospectRequest req;
  req.set_token(token);
  absl::StatusOr<v1::IntrospectResponse> r = c.Introspect(req);
  INFO(r.status().ToString());
  REQUIRE(r.ok());
  return r->active();
}

TEST_CASE("Client: issue, introspect, refresh, then reuse is refused with its reason", "[client]") {
  LiveServer server;
  std::unique_ptr<client::Client> c = server.NewClient();
  v1::TokenPair first = Issue(*c, "alice");
  CHECK(first.token_type() == "Bearer");
  CHECK(!first.family_id().empty());

  v1::IntrospectRequest introspect;
  introspect.set_token(first.access_token());
  absl::StatusOr<v1::IntrospectResponse> info = c->Introspect(introspect);
  REQUIRE(info.ok());
  CHECK(info->active());
  CHECK(info->subject() == "alice");
  CHECK(info->client_id() == "web");
  CHECK(info->family_id() == first.family_id());
  REQUIRE(info->audience_size() == 1);
  CHECK(info->audience(0) == "api");

  v1::RefreshTokensRequest refresh;
  refresh.set_refresh_token(first.refresh_token());
  absl::StatusOr<v1::TokenPair> second = c->RefreshTokens(refresh);
  REQUIRE(second.ok());
  CHECK(second->family_id() == first.family_id());
  CHECK(second->refresh_token() != first.refresh_token());

  absl::StatusOr<v1::TokenPair> reused = c->RefreshTokens(refresh);
  REQUIRE(!reused.ok());
  CHECK(reused.status().code() == absl::StatusCode::kUnauthenticated);
  CHECK(ReasonOf(reused.status()) == "refresh_token_reused");
  CHECK_FALSE(Active(*c, second->access_token()));
}

TEST_CASE("Client: IntrospectBatch answers in request order", "[client]") {
  LiveServer server;
  std::unique_ptr<client::Client> c = server.NewClient();
  v1::TokenPair pair = Issue(*c, "alice");
  v1::IntrospectBatchRequest req;
  req.add_requests()->set_token(pair.access_token());
  req.add_requests()->set_token("not-a-token");
  req.add_requests()->set_token(pair.refresh_token());
  absl::StatusOr<v1::IntrospectBatchResponse> r = c->IntrospectBatch(req);
  REQUIRE(r.ok());
  REQUIRE(r->responses_size() == 3);
  CHECK(r->responses(0).active());
  CHECK(r->responses(0).token_type() == "access_token");
  CHECK_FALSE(r->responses(1).active());
  CHECK(r->responses(2).active());
  CHECK(r->responses(2).token_type() == "refresh_token");
}

TEST_CASE("Client: RevokeToken denylists an access token and accepts garbage", "[client]") {
  LiveServer server;
  std::unique_ptr<client::Client> c = server.NewClient();
  v1::TokenPair pair = Issue(*c, "alice");
  v1::RevokeTokenRequest req;
  req.set_token(pair.access_token());
  REQUIRE(c->RevokeToken(req).ok());
  CHECK_FALSE(Active(*c, pair.access_token()));
  req.set_token("garbage");
  CHECK(c->RevokeToken(req).ok());  // RFC 7009: unknown tokens are answered OK
}

TEST_CASE("Client: RevokeFamily revokes once, GetFamily shows it, unknown is NOT_FOUND",
          "[client]") {
  LiveServer server;
  std::unique_ptr<client::Client> c = server.NewClient();
  v1::TokenPair pair = Issue(*c, "alice");
  v1::RevokeFamilyRequest revoke;
  revoke.set_family_id(pair.family_id());
  revoke.set_reason("logout");
  absl::StatusOr<v1::RevokeFamilyResponse> first = c->RevokeFamily(revoke);
  REQUIRE(first.ok());
  CHECK(first->changed());
  absl::StatusOr<v1::RevokeFamilyResponse> again = c->RevokeFamily(revoke);
  REQUIRE(again.ok());
  CHECK_FALSE(again->changed());
  CHECK_FALSE(Active(*c, pair.access_token()));

  v1::GetFamilyRequest get;
  get.set_family_id(pair.family_id());
  absl::StatusOr<v1::Family> family = c->GetFamily(get);
  REQUIRE(family.ok());
  CHECK(family->revoked());
  CHECK(family->revoke_reason() == "logout");
  CHECK(family->session_metadata().at("device") == "laptop");

  get.set_family_id("AAAAAAAAAAAAAAAAAAAAAA");  // well-formed, never issued
  absl::StatusOr<v1::Family> unknown = c->GetFamily(get);
  REQUIRE(!unknown.ok());
  CHECK(unknown.status().code() == absl::StatusCode::kNotFound);
  CHECK(ReasonOf(unknown.status()) == "family_not_found");
}

TEST_CASE("Client: RevokeSubject kills sessions and blocks new ones", "[client]") {
  LiveServer server;
  std::unique_ptr<client::Client> c = server.NewClient();
  v1::TokenPair pair = Issue(*c, "alice");
  v1::RevokeSubjectRequest req;
  req.set_subject("alice");
  req.set_reason("password_change");
  req.mutable_block_until()->set_seconds(1893456000);  // 2030-01-01T00:00:00Z
  absl::StatusOr<v1::RevokeSubjectResponse> r = c->RevokeSubject(req);
  REQUIRE(r.ok());
  CHECK(r->block_until().seconds() == 1893456000);
  CHECK(r->not_before().seconds() > 0);
  CHECK_FALSE(Active(*c, pair.access_token()));

  v1::IssueTokensRequest issue;
  issue.set_subject("alice");
  issue.set_client_id("web");
  absl::StatusOr<v1::TokenPair> blocked = c->IssueTokens(issue);
  REQUIRE(!blocked.ok());
  CHECK(blocked.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(ReasonOf(blocked.status()) == "subject_blocked");
}

TEST_CASE("Client: ListFamilies lists a subject's sessions newest first", "[client]") {
  LiveServer server;
  std::unique_ptr<client::Client> c = server.NewClient();
  v1::TokenPair older = Issue(*c, "alice", "laptop");
  v1::TokenPair newer = Issue(*c, "alice", "phone");
  Issue(*c, "bob");
  v1::ListFamiliesRequest req;
  req.set_subject("alice");
  absl::StatusOr<v1::ListFamiliesResponse> r = c->ListFamilies(req);
  REQUIRE(r.ok());
  REQUIRE(r->families_size() == 2);
  CHECK(r->families(0).family_id() == newer.family_id());
  CHECK(r->families(0).session_metadata().at("device") == "phone");
  CHECK(r->families(1).family_id() == older.family_id());
  CHECK(r->next_page_token().empty());
}

TEST_CASE("Client: RotateSigningKey adds an active key that GetJwks publishes", "[client]") {
  LiveServer server;
  std::unique_ptr<client::Client> c = server.NewClient();
  absl::StatusOr<v1::GetJwksResponse> before = c->GetJwks(v1::GetJwksRequest());
  REQUIRE(before.ok());
  REQUIRE(before->keys_size() == 1);
  CHECK(before->keys(0).active());
  CHECK(before->jwks_json().find(before->keys(0).kid()) != std::string::npos);
  v1::TokenPair old_pair = Issue(*c, "alice");

  absl::StatusOr<v1::RotateSigningKeyResponse> rotated =
      c->RotateSigningKey(v1::RotateSigningKeyRequest());
  REQUIRE(rotated.ok());
  CHECK(rotated->kid() != before->keys(0).kid());
  absl::StatusOr<v1::GetJwksResponse> after = c->GetJwks(v1::GetJwksRequest());
  REQUIRE(after.ok());
  REQUIRE(after->keys_size() == 2);
  for (const v1::KeyInfo& key : after->keys()) CHECK(key.active() == (key.kid() == rotated->kid()));
  CHECK(Active(*c, old_pair.access_token()));  // the retired key still verifies
  CHECK(Active(*c, Issue(*c, "bob").access_token()));
}

TEST_CASE("Client: GetStats counts records and PurgeExpired succeeds", "[client]") {
  LiveServer server;
  std::unique_ptr<client::Client> c = server.NewClient();
  Issue(*c, "alice");
  Issue(*c, "bob");
  REQUIRE(c->PurgeExpired(v1::PurgeExpiredRequest()).ok());
  absl::StatusOr<v1::GetStatsResponse> stats = c->GetStats(v1::GetStatsRequest());
  REQUIRE(stats.ok());
  CHECK(stats->families() >= 2);
  CHECK(stats->signing_keys() == 1);
}

TEST_CASE("Client: a bad request carries invalid_argument:<field>", "[client]") {
  LiveServer server;
  std::unique_ptr<client::Client> c = server.NewClient();
  v1::IssueTokensRequest req;
  req.set_client_id("web");  // no subject
  absl::StatusOr<v1::TokenPair> r = c->IssueTokens(req);
  REQUIRE(!r.ok());
  CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(ReasonOf(r.status()) == "invalid_argument:subject");
}

TEST_CASE("Client: sends the API key, and a wrong or missing key is refused", "[client]") {
  LiveServer server;
  if (server.api_key().empty()) {
    WARN("the server wrote no admin.key (no authentication yet); nothing to check");
    return;
  }
  client::ClientOptions options = server.Options();
  for (std::string key : {std::string("wrong-key"), std::string()}) {
    options.api_key = key;
    absl::StatusOr<std::unique_ptr<client::Client>> c = client::Client::Create(options);
    REQUIRE(c.ok());
    absl::StatusOr<v1::GetStatsResponse> r = (*c)->GetStats(v1::GetStatsRequest());
    REQUIRE(!r.ok());
    CHECK(r.status().code() == absl::StatusCode::kUnauthenticated);
    CHECK(absl::StartsWith(ReasonOf(r.status()), "unauthenticated"));
  }
  CHECK(server.NewClient()->GetStats(v1::GetStatsRequest()).ok());
}

}  // namespace
}  // namespace ta::testing

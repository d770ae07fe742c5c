// Bad input over a real channel (issue 5, DESIGN §8): every RPC with empty, oversized and
// malformed fields answers INVALID_ARGUMENT naming the field, and writes nothing.
#include <catch2/catch.hpp>

#include "tests/support/test_server.h"

namespace ta::testing {
namespace {

void ExpectInvalid(const CallResult& r, const std::string& field) {
  INFO(r.status.error_message());
  CHECK(r.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(r.reason == "invalid_argument:" + field);
}

uint64_t Families(TestServer& s) {
  v1::GetStatsResponse stats;
  REQUIRE(s.Call(s.admin(), &v1::TokenAdmin::Stub::GetStats, v1::GetStatsRequest(), &stats).ok());
  return stats.families();
}

v1::IssueTokensRequest GoodIssue() {
  v1::IssueTokensRequest req;
  req.set_subject("alice");
  req.set_client_id("web");
  req.set_scope("read");
  return req;
}

TEST_CASE("Validation: IssueTokens names the bad field and writes nothing", "[validation]") {
  TestServer s;
  const std::string big(300, 'x');
  struct Case {
    std::string field;
    std::function<void(v1::IssueTokensRequest&)> spoil;
  };
  std::vector<Case> cases = {
      {"subject", [](auto& r) { r.clear_subject(); }},
      {"subject", [&](auto& r) { r.set_subject(big); }},
      {"subject", [](auto& r) { r.set_subject("bad\nname"); }},
      {"client_id", [](auto& r) { r.clear_client_id(); }},
      {"client_id", [&](auto& r) { r.set_client_id(big); }},
      {"audience", [](auto& r) { r.add_audience(""); }},
      {"audience",
       [](auto& r) {
         for (int i = 0; i < 17; ++i) r.add_audience("a");
       }},
      {"scope", [](auto& r) { r.set_scope("read  write"); }},
      {"scope", [](auto& r) { r.set_scope("quote\"d"); }},
      {"scope", [](auto& r) { r.set_scope(std::string(2000, 'a')); }},
      {"session_metadata", [](auto& r) { (*r.mutable_session_metadata())[""] = "x"; }},
      {"session_metadata",
       [](auto& r) { (*r.mutable_session_metadata())["k"] = std::string(600, 'v'); }},
      {"session_metadata",
       [](auto& r) {
         for (int i = 0; i < 33; ++i)
           (*r.mutable_session_metadata())["k" + std::to_string(i)] = "v";
       }},
      {"extra_claims",
       [](auto& r) { (*r.mutable_extra_claims()->mutable_fields())["sub"].set_string_value("x"); }},
      {"extra_claims",
       [](auto& r) { (*r.mutable_extra_claims()->mutable_fields())["exp"].set_number_value(1); }},
      {"extra_claims",
       [](auto& r) {
         for (int i = 0; i < 65; ++i) {
           (*r.mutable_extra_claims()->mutable_fields())["c" + std::to_string(i)].set_bool_value(
               true);
         }
       }},
  };
  for (const Case& c : cases) {
    v1::IssueTokensRequest req = GoodIssue();
    c.spoil(req);
    v1::TokenPair out;
    INFO("field " << c.field);
    ExpectInvalid(s.Issue(req, &out), c.field);
  }
  CHECK(Families(s) == 0);
  v1::TokenPair ok;
  CHECK(s.Issue(GoodIssue(), &ok).ok());  // the good request itself is fine
}

TEST_CASE("Validation: extra claims are carried into every access token of the family",
          "[validation]") {
  TestServer s;
  v1::IssueTokensRequest req = GoodIssue();
  (*req.mutable_extra_claims()->mutable_fields())["tenant"].set_string_value("acme");
  (*req.mutable_extra_claims()->mutable_fields())["level"].set_number_value(3);
  v1::TokenPair out;
  REQUIRE(s.Issue(req, &out).ok());
  v1::TokenPair next;
  REQUIRE(s.Refresh(out.refresh_token(), &next).ok());
  for (const std::string& token : {out.access_token(), next.access_token()}) {
    v1::IntrospectResponse info = s.Introspect(token);
    CHECK(info.claims().fields().at("tenant").string_value() == "acme");
    CHECK(info.claims().fields().at("level").number_value() == 3);
  }
}

TEST_CASE("Validation: extra claims that would make the token exceed 8 KiB are refused",
          "[validation]") {
  TestServer s;
  v1::IssueTokensRequest req = GoodIssue();
  for (int i = 0; i < 40; ++i) {  // ~10 KiB of claims: under their own 16 KiB cap
    (*req.mutable_extra_claims()->mutable_fields())["c" + std::to_string(i)].set_string_value(
        std::string(250, 'x'));
  }
  v1::TokenPair out;
  ExpectInvalid(s.Issue(req, &out), "extra_claims");
  CHECK(Families(s) == 0);
}

TEST_CASE("Validation: token-taking RPCs refuse empty and oversized tokens", "[validation]") {
  TestServer s;
  const std::string huge(9000, 'a');
  for (const std::string& token : {std::string(), huge}) {
    v1::TokenPair pair;
    ExpectInvalid(s.Refresh(token, &pair), "refresh_token");

    v1::IntrospectRequest intro;
    intro.set_token(token);
    v1::IntrospectResponse intro_resp;
    ExpectInvalid(s.Call(s.api(), &v1::TokenAuthority::Stub::Introspect, intro, &intro_resp),
                  "token");

    v1::RevokeTokenRequest revoke;
    revoke.set_token(token);
    v1::RevokeTokenResponse revoke_resp;
    ExpectInvalid(s.Call(s.api(), &v1::TokenAuthority::Stub::RevokeToken, revoke, &revoke_resp),
                  "token");
  }
  v1::TokenPair pair;
  ExpectInvalid(s.Refresh("tar_x", &pair, "bad  scope"), "scope");
}

TEST_CASE("Validation: malformed tokens are inactive or unauthenticated, never a crash",
          "[validation]") {
  TestServer s;
  for (const std::string& token :
       {std::string("a.b.c"), std::string("tar_"), std::string("tar_!!!!"), std::string("...."),
        std::string("eyJhbGciOiJub25lIn0.e30."), std::string(8192, '.')}) {
    CHECK_FALSE(s.Introspect(token).active());
    v1::TokenPair pair;
    CallResult r = s.Refresh(token, &pair);
    CHECK(r.status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
    CHECK(r.reason == "invalid_refresh_token");
  }
}

TEST_CASE("Validation: IntrospectBatch takes 1..100 requests", "[validation]") {
  TestServer s;
  v1::IntrospectBatchRequest req;
  v1::IntrospectBatchResponse resp;
  ExpectInvalid(s.Call(s.api(), &v1::TokenAuthority::Stub::IntrospectBatch, req, &resp),
                "requests");
  v1::TokenPair pair;
  REQUIRE(s.Issue(GoodIssue(), &pair).ok());
  for (int i = 0; i < 100; ++i) req.add_requests()->set_token(i % 2 ? pair.access_token() : "x");
  REQUIRE(s.Call(s.api(), &v1::TokenAuthority::Stub::IntrospectBatch, req, &resp).ok());
  REQUIRE(resp.responses_size() == 100);
  CHECK(resp.responses(1).active());
  CHECK_FALSE(resp.responses(0).active());
  req.add_requests()->set_token("x");
  ExpectInvalid(s.Call(s.api(), &v1::TokenAuthority::Stub::IntrospectBatch, req, &resp),
                "requests");
}

TEST_CASE("Validation: admin RPCs name their bad fields", "[validation]") {
  TestServer s;
  v1::RevokeSubjectRequest subject;
  v1::RevokeSubjectResponse subject_resp;
  ExpectInvalid(s.Call(s.admin(), &v1::TokenAdmin::Stub::RevokeSubject, subject, &subject_resp),
                "subject");
  subject.set_subject("alice");
  subject.mutable_not_before()->set_seconds(absl::ToUnixSeconds(s.clock().Now()) + 3600);
  ExpectInvalid(s.Call(s.admin(), &v1::TokenAdmin::Stub::RevokeSubject, subject, &subject_resp),
                "not_before");
  subject.clear_not_before();
  subject.set_reason(std::string(300, 'r'));
  ExpectInvalid(s.Call(s.admin(), &v1::TokenAdmin::Stub::RevokeSubject, subject, &subject_resp),
                "reason");

  v1::ListFamiliesRequest list;
  v1::ListFamiliesResponse list_resp;
  ExpectInvalid(s.Call(s.admin(), &v1::TokenAdmin::Stub::ListFamilies, list, &list_resp),
                "subject");
  list.set_subject("alice");
  list.set_page_size(501);
  ExpectInvalid(s.Call(s.admin(), &v1::TokenAdmin::Stub::ListFamilies, list, &list_resp),
                "page_size");
  list.set_page_size(10);
  list.set_page_token("not-a-token");
  ExpectInvalid(s.Call(s.admin(), &v1::TokenAdmin::Stub::ListFamilies, list, &list_resp),
                "page_token");

  v1::GetFamilyRequest get;
  v1::Family family;
  for (const char* id : {"", "short", "!!!!!!!!!!!!!!!!!!!!!!"}) {
    get.set_family_id(id);
    ExpectInvalid(s.Call(s.admin(), &v1::TokenAdmin::Stub::GetFamily, get, &family), "family_id");
  }

  v1::RevokeFamilyRequest revoke;
  v1::RevokeFamilyResponse revoke_resp;
  ExpectInvalid(s.Call(s.api(), &v1::TokenAuthority::Stub::RevokeFamily, revoke, &revoke_resp),
                "family_id");
  revoke.set_token("a.b.c");
  ExpectInvalid(s.Call(s.api(), &v1::TokenAuthority::Stub::RevokeFamily, revoke, &revoke_resp),
                "token");

  v1::RotateSigningKeyRequest rotate;
  rotate.set_alg("none");
  v1::RotateSigningKeyResponse rotate_resp;
  ExpectInvalid(s.Call(s.admin(), &v1::TokenAdmin::Stub::RotateSigningKey, rotate, &rotate_resp),
                "alg");
  rotate.set_alg("HS256");
  ExpectInvalid(s.Call(s.admin(), &v1::TokenAdmin::Stub::RotateSigningKey, rotate, &rotate_resp),
                "alg");
  CHECK(Families(s) == 0);
}

TEST_CASE("Validation: a message over 64 KiB is refused", "[validation]") {
  TestServer s;
  v1::IssueTokensRequest req = GoodIssue();
  (*req.mutable_session_metadata())["blob"] = std::string(70 * 1024, 'x');
  v1::TokenPair out;
  CallResult r = s.Issue(req, &out);
  CHECK(r.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(Families(s) == 0);
}

TEST_CASE("Validation: an expired deadline is answered DEADLINE_EXCEEDED", "[validation]") {
  TestServer s;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() - std::chrono::seconds(1));
  ctx.AddMetadata("authorization", "Bearer " + s.admin_key());
  v1::TokenPair out;
  grpc::Status status = s.api().IssueTokens(&ctx, GoodIssue(), &out);
  CHECK(status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
  CHECK(Families(s) == 0);
}

}  // namespace
}  // namespace ta::testing

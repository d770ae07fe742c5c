// Token life cycle end to end (issue 5): issue, rotate with reuse detection, grace window,
// introspection, revocation at three widths, expiry. A real server over a real channel,
// with a fake clock so expiry is exercised without sleeping.
#include <atomic>
#include <catch2/catch.hpp>
#include <set>
#include <thread>

#include "tests/support/test_server.h"

namespace ta::testing {
namespace {

using v1::TokenPair;

TokenPair MustIssue(TestServer& s, const std::string& subject = "alice") {
  TokenPair pair;
  CallResult r = s.Issue(subject, &pair);
  INFO(r.status.error_message());
  REQUIRE(r.ok());
  return pair;
}

TokenPair MustRefresh(TestServer& s, const std::string& refresh_token) {
  TokenPair pair;
  CallResult r = s.Refresh(refresh_token, &pair);
  INFO(r.status.error_message());
  REQUIRE(r.ok());
  return pair;
}

bool Active(TestServer& s, const std::string& token) { return s.Introspect(token).active(); }

CallResult RevokeSubject(TestServer& s, const std::string& subject,
                         std::optional<absl::Time> block_until = std::nullopt) {
  v1::RevokeSubjectRequest req;
  req.set_subject(subject);
  req.set_reason("password_change");
  if (block_until) {
    req.mutable_block_until()->set_seconds(absl::ToUnixSeconds(*block_until));
  }
  v1::RevokeSubjectResponse resp;
  return s.Call(s.admin(), &v1::TokenAdmin::Stub::RevokeSubject, req, &resp);
}

TEST_CASE("Lifecycle: issue, introspect, refresh, and the old access token lives until exp",
          "[lifecycle]") {
  TestServer s;
  TokenPair a = MustIssue(s);
  CHECK(a.token_type() == "Bearer");
  CHECK(a.expires_in() == 300);
  CHECK(a.refresh_expires_in() == 24 * 3600);

  v1::IntrospectResponse info = s.Introspect(a.access_token());
  REQUIRE(info.active());
  CHECK(info.token_type() == "access_token");
  CHECK(info.subject() == "alice");
  CHECK(info.client_id() == "web");
  CHECK(info.scope() == "read write");
  CHECK(info.family_id() == a.family_id());
  CHECK(info.audience_size() == 1);
  CHECK(info.claims().fields().at("sid").string_value() == a.family_id());
  CHECK(s.Introspect(a.refresh_token()).token_type() == "refresh_token");

  s.clock().Advance(absl::Minutes(1));
  TokenPair b = MustRefresh(s, a.refresh_token());
  CHECK(b.family_id() == a.family_id());
  CHECK(b.refresh_token() != a.refresh_token());
  CHECK(Active(s, a.access_token()));  // still within its own exp
  CHECK(Active(s, b.access_token()));
  CHECK(Active(s, b.refresh_token()));
  CHECK(s.Introspect(a.refresh_token()).inactive_reason() == "refresh_token_spent");

  s.clock().Advance(absl::Minutes(4) + absl::Seconds(31));  // past a's exp + leeway
  CHECK(s.Introspect(a.access_token()).inactive_reason() == "token_expired");
  CHECK(Active(s, b.access_token()));
}

TEST_CASE("Lifecycle: reuse of a spent refresh token revokes the whole family", "[lifecycle]") {
  TestServer s;
  TokenPair a = MustIssue(s);
  TokenPair other = MustIssue(s);  // another session of the same subject
  TokenPair b = MustRefresh(s, a.refresh_token());

  TokenPair c;
  CallResult reuse = s.Refresh(a.refresh_token(), &c);
  CHECK(reuse.status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(reuse.reason == "refresh_token_reused");

  for (const std::string& t : {a.access_token(), b.access_token(), b.refresh_token()}) {
    CHECK(s.Introspect(t).inactive_reason() == "family_revoked");
  }
  CallResult after = s.Refresh(b.refresh_token(), &c);
  CHECK(after.reason == "family_revoked");
  CHECK(Active(s, other.access_token()));
  CHECK(Active(s, other.refresh_token()));

  v1::GetFamilyRequest get;
  get.set_family_id(a.family_id());
  v1::Family family;
  REQUIRE(s.Call(s.admin(), &v1::TokenAdmin::Stub::GetFamily, get, &family).ok());
  CHECK(family.revoked());
  CHECK(family.revoke_reason() == "refresh_token_reuse");
  CHECK(family.revoked_at().seconds() > 0);
}

TEST_CASE("Lifecycle: within the grace window the predecessor returns the same successor",
          "[lifecycle]") {
  TestServer s([](ServerOptions& o) { o.authority.reuse_grace = absl::Seconds(10); });
  TokenPair a = MustIssue(s);
  TokenPair b = MustRefresh(s, a.refresh_token());
  s.clock().Advance(absl::Seconds(5));
  TokenPair again = MustRefresh(s, a.refresh_token());
  CHECK(again.refresh_token() == b.refresh_token());
  CHECK(again.access_token() != b.access_token());  // a fresh access token
  CHECK(Active(s, b.refresh_token()));

  s.clock().Advance(absl::Seconds(6));  // 11 s after the rotation
  TokenPair late;
  CHECK(s.Refresh(a.refresh_token(), &late).reason == "refresh_token_reused");
  CHECK(s.Introspect(b.refresh_token()).inactive_reason() == "family_revoked");
}

TEST_CASE("Lifecycle: an expired refresh token is refused even inside the grace window",
          "[lifecycle]") {
  TestServer s([](ServerOptions& o) {
    o.authority.reuse_grace = absl::Seconds(10);
    o.authority.refresh_idle_ttl = absl::Minutes(1);
  });
  TokenPair a = MustIssue(s);
  s.clock().Advance(absl::Seconds(55));
  TokenPair b = MustRefresh(s, a.refresh_token());
  s.clock().Advance(absl::Seconds(6));  // a expired 1 s ago; rotation was 6 s ago
  TokenPair again;
  CHECK(s.Refresh(a.refresh_token(), &again).reason == "refresh_token_expired");
  CHECK(Active(s, b.refresh_token()));  // expiry is not reuse: the family lives
}

TEST_CASE("Lifecycle: four generations, only the last is active, reuse of any kills all",
          "[lifecycle]") {
  for (int reused = 0; reused < 3; ++reused) {
    TestServer s;
    std::vector<TokenPair> gens = {MustIssue(s)};
    for (int i = 1; i < 4; ++i) gens.push_back(MustRefresh(s, gens.back().refresh_token()));
    for (int i = 0; i < 3; ++i) {
      CHECK(s.Introspect(gens[i].refresh_token()).inactive_reason() == "refresh_token_spent");
    }
    CHECK(Active(s, gens[3].refresh_token()));

    TokenPair out;
    CHECK(s.Refresh(gens[reused].refresh_token(), &out).reason == "refresh_token_reused");
    for (const TokenPair& g : gens) {
      CHECK_FALSE(Active(s, g.refresh_token()));
      CHECK_FALSE(Active(s, g.access_token()));
    }
  }
}

// 50 concurrent refreshes of one token: how many successes, and how many distinct tokens.
std::pair<int, std::set<std::string>> RaceRefresh(TestServer& s, const std::string& token) {
  std::atomic<int> successes{0};
  std::mutex mu;
  std::set<std::string> tokens;
  std::vector<std::thread> threads;
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&] {
      TokenPair out;
      if (s.Refresh(token, &out).ok()) {
        ++successes;
        std::lock_guard<std::mutex> lock(mu);
        tokens.insert(out.refresh_token());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return {successes.load(), tokens};
}

TEST_CASE("Lifecycle: concurrent refreshes of one token mint exactly one successor",
          "[lifecycle]") {
  SECTION("grace off: one success, the family is then revoked as reused") {
    TestServer s;
    TokenPair a = MustIssue(s);
    auto [successes, tokens] = RaceRefresh(s, a.refresh_token());
    CHECK(successes == 1);
    CHECK(tokens.size() == 1);
  }
  SECTION("grace on: every success returns the same successor") {
    TestServer s([](ServerOptions& o) { o.authority.reuse_grace = absl::Seconds(30); });
    TokenPair a = MustIssue(s);
    auto [successes, tokens] = RaceRefresh(s, a.refresh_token());
    CHECK(successes == 50);
    CHECK(tokens.size() == 1);
    CHECK(Active(s, *tokens.begin()));
  }
}

TEST_CASE("Lifecycle: a subject cutoff kills older sessions, not newer ones", "[lifecycle]") {
  TestServer s;
  TokenPair before = MustIssue(s);
  TokenPair bob = MustIssue(s, "bob");
  s.clock().Advance(absl::Milliseconds(300));
  REQUIRE(RevokeSubject(s, "alice").ok());
  s.clock().Advance(absl::Milliseconds(300));  // same second as the cutoff, but later
  TokenPair after = MustIssue(s);

  CHECK(s.Introspect(before.access_token()).inactive_reason() == "subject_revoked");
  CHECK(s.Introspect(before.refresh_token()).inactive_reason() == "subject_revoked");
  TokenPair out;
  CHECK(s.Refresh(before.refresh_token(), &out).reason == "subject_revoked");
  CHECK(Active(s, after.access_token()));
  CHECK(Active(s, bob.access_token()));
  MustRefresh(s, after.refresh_token());
}

TEST_CASE("Lifecycle: a subject block refuses issue and refresh until it ends", "[lifecycle]") {
  TestServer s;
  TokenPair a = MustIssue(s);
  REQUIRE(RevokeSubject(s, "alice", s.clock().Now() + absl::Hours(1)).ok());
  TokenPair out;
  CallResult issue = s.Issue("alice", &out);
  CHECK(issue.status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
  CHECK(issue.reason == "subject_blocked");

  s.clock().Advance(absl::Seconds(1));
  TokenPair fresh_before_unblock;
  CHECK_FALSE(s.Issue("alice", &fresh_before_unblock).ok());
  s.clock().Advance(absl::Hours(1));
  TokenPair later = MustIssue(s);
  CHECK(Active(s, later.access_token()));
  CHECK(s.Refresh(a.refresh_token(), &out).reason == "subject_revoked");
}

TEST_CASE("Lifecycle: a refresh during a block is refused with subject_blocked", "[lifecycle]") {
  TestServer s;
  s.clock().Advance(absl::Seconds(5));
  TokenPair a = MustIssue(s);
  // A block with a cutoff in the past keeps today's sessions alive but frozen.
  v1::RevokeSubjectRequest req;
  req.set_subject("alice");
  req.mutable_not_before()->set_seconds(absl::ToUnixSeconds(s.clock().Now()) - 5);
  req.mutable_block_until()->set_seconds(absl::ToUnixSeconds(s.clock().Now()) + 600);
  v1::RevokeSubjectResponse resp;
  REQUIRE(s.Call(s.admin(), &v1::TokenAdmin::Stub::RevokeSubject, req, &resp).ok());
  TokenPair out;
  CHECK(s.Refresh(a.refresh_token(), &out).reason == "subject_blocked");
  CHECK(Active(s, a.access_token()));
}

TEST_CASE("Lifecycle: a denylisted access token is inactive, its siblings are not", "[lifecycle]") {
  TestServer s;
  TokenPair a = MustIssue(s);
  TokenPair b = MustRefresh(s, a.refresh_token());
  v1::RevokeTokenRequest req;
  req.set_token(a.access_token());
  v1::RevokeTokenResponse resp;
  REQUIRE(s.Call(s.api(), &v1::TokenAuthority::Stub::RevokeToken, req, &resp).ok());
  CHECK(s.Introspect(a.access_token()).inactive_reason() == "token_revoked");
  CHECK(Active(s, b.access_token()));
  CHECK(Active(s, b.refresh_token()));

  v1::GetStatsResponse stats;
  REQUIRE(s.Call(s.admin(), &v1::TokenAdmin::Stub::GetStats, v1::GetStatsRequest(), &stats).ok());
  CHECK(stats.denied_jtis() >= 1);
  // Past exp + leeway (5.5 min) and the purge margin (--max_clock_offset + 1 min, issue 22).
  s.clock().Advance(absl::Minutes(8));
  v1::PurgeExpiredResponse purged;
  REQUIRE(s.Call(s.admin(), &v1::TokenAdmin::Stub::PurgeExpired, v1::PurgeExpiredRequest(), &purged)
              .ok());
  REQUIRE(s.Call(s.admin(), &v1::TokenAdmin::Stub::GetStats, v1::GetStatsRequest(), &stats).ok());
  CHECK(stats.denied_jtis() == 0);
}

TEST_CASE("Lifecycle: revoking with a refresh token, unknown tokens and garbage answer OK",
          "[lifecycle]") {
  TestServer s;
  TokenPair a = MustIssue(s);
  for (const std::string& t :
       {std::string("garbage"), std::string("tar_AAAA"), std::string("a.b.c"), a.refresh_token()}) {
    v1::RevokeTokenRequest req;
    req.set_token(t);
    v1::RevokeTokenResponse resp;
    CHECK(s.Call(s.api(), &v1::TokenAuthority::Stub::RevokeToken, req, &resp).ok());
  }
  CHECK(s.Introspect(a.access_token()).inactive_reason() == "family_revoked");
}

TEST_CASE("Lifecycle: RevokeFamily by id or by token is idempotent", "[lifecycle]") {
  TestServer s;
  TokenPair a = MustIssue(s);
  TokenPair b = MustIssue(s);
  v1::RevokeFamilyRequest by_id;
  by_id.set_family_id(a.family_id());
  by_id.set_reason("logout");
  v1::RevokeFamilyResponse resp;
  REQUIRE(s.Call(s.api(), &v1::TokenAuthority::Stub::RevokeFamily, by_id, &resp).ok());
  CHECK(resp.changed());
  REQUIRE(s.Call(s.api(), &v1::TokenAuthority::Stub::RevokeFamily, by_id, &resp).ok());
  CHECK_FALSE(resp.changed());
  CHECK(s.Introspect(a.refresh_token()).inactive_reason() == "family_revoked");

  v1::RevokeFamilyRequest by_token;
  by_token.set_token(b.access_token());
  REQUIRE(s.Call(s.api(), &v1::TokenAuthority::Stub::RevokeFamily, by_token, &resp).ok());
  CHECK(resp.changed());
  CHECK_FALSE(Active(s, b.refresh_token()));

  v1::RevokeFamilyRequest unknown;
  unknown.set_family_id("AAAAAAAAAAAAAAAAAAAAAA");
  CallResult r = s.Call(s.api(), &v1::TokenAuthority::Stub::RevokeFamily, unknown, &resp);
  CHECK(r.status.error_code() == grpc::StatusCode::NOT_FOUND);
  CHECK(r.reason == "family_not_found");
}

TEST_CASE("Lifecycle: the family's absolute expiry beats the idle lifetime", "[lifecycle]") {
  TestServer s([](ServerOptions& o) {
    o.authority.family_ttl = absl::Hours(2);
    o.authority.refresh_idle_ttl = absl::Hours(1);
  });
  TokenPair t = MustIssue(s);
  for (int i = 0; i < 2; ++i) {
    s.clock().Advance(absl::Minutes(50));
    t = MustRefresh(s, t.refresh_token());
  }
  CHECK(t.refresh_expires_in() == 20 * 60);  // capped by the family's end, not 1 h
  s.clock().Advance(absl::Minutes(21));
  TokenPair out;
  CallResult r = s.Refresh(t.refresh_token(), &out);
  CHECK((r.reason == "family_expired" || r.reason == "refresh_token_expired"));
  CHECK_FALSE(Active(s, t.refresh_token()));
}

TEST_CASE("Lifecycle: idle expiry refuses the refresh but does not revoke the family",
          "[lifecycle]") {
  TestServer s;
  TokenPair a = MustIssue(s);
  s.clock().Advance(absl::Hours(24) + absl::Seconds(1));
  TokenPair out;
  CHECK(s.Refresh(a.refresh_token(), &out).reason == "refresh_token_expired");
  v1::GetFamilyRequest get;
  get.set_family_id(a.family_id());
  v1::Family family;
  REQUIRE(s.Call(s.admin(), &v1::TokenAdmin::Stub::GetFamily, get, &family).ok());
  CHECK_FALSE(family.revoked());
}

TEST_CASE("Lifecycle: scope may narrow on refresh, never widen", "[lifecycle]") {
  TestServer s;
  TokenPair a = MustIssue(s);
  TokenPair out;
  CallResult wider = s.Refresh(a.refresh_token(), &out, "read write admin");
  CHECK(wider.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(wider.reason == "invalid_scope");
  TokenPair narrow;
  REQUIRE(s.Refresh(a.refresh_token(), &narrow, "read").ok());
  CHECK(s.Introspect(narrow.access_token()).scope() == "read");
  CHECK(s.Refresh(narrow.refresh_token(), &out, "read write").reason == "invalid_scope");
}

TEST_CASE("Lifecycle: sessions are listed newest first, paginated, with metadata", "[lifecycle]") {
  TestServer s;
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(MustIssue(s).family_id());
    s.clock().Advance(absl::Seconds(1));
  }
  v1::ListFamiliesRequest req;
  req.set_subject("alice");
  req.set_page_size(2);
  std::vector<std::string> listed;
  do {
    v1::ListFamiliesResponse resp;
    REQUIRE(s.Call(s.admin(), &v1::TokenAdmin::Stub::ListFamilies, req, &resp).ok());
    for (const v1::Family& f : resp.families()) {
      listed.push_back(f.family_id());
      CHECK(f.session_metadata().at("device") == "test");
    }
    req.set_page_token(resp.next_page_token());
  } while (!req.page_token().empty());
  std::vector<std::string> newest_first(ids.rbegin(), ids.rend());
  CHECK(listed == newest_first);
}

TEST_CASE("Lifecycle: sessions a subject revocation killed are listed as revoked", "[lifecycle]") {
  TestServer s;
  TokenPair old1 = MustIssue(s), old2 = MustIssue(s);
  s.clock().Advance(absl::Seconds(1));
  REQUIRE(RevokeSubject(s, "alice").ok());
  s.clock().Advance(absl::Seconds(1));
  TokenPair fresh = MustIssue(s);
  auto list = [&](bool include_revoked) {
    v1::ListFamiliesRequest req;
    req.set_subject("alice");
    req.set_include_revoked(include_revoked);
    v1::ListFamiliesResponse resp;
    REQUIRE(s.Call(s.admin(), &v1::TokenAdmin::Stub::ListFamilies, req, &resp).ok());
    return resp;
  };
  v1::ListFamiliesResponse live = list(false);
  REQUIRE(live.families_size() == 1);
  CHECK(live.families(0).family_id() == fresh.family_id());
  CHECK_FALSE(live.families(0).revoked());
  v1::ListFamiliesResponse all = list(true);
  REQUIRE(all.families_size() == 3);
  for (const v1::Family& f : all.families()) {
    const bool killed = f.family_id() != fresh.family_id();
    CHECK(f.revoked() == killed);
    if (killed) CHECK(f.revoke_reason() == "subject_revoked");
  }
  (void)old1;
  (void)old2;
}

TEST_CASE("Lifecycle: state survives a restart", "[lifecycle]") {
  TestServer s;
  TokenPair a = MustIssue(s);
  TokenPair b = MustRefresh(s, a.refresh_token());
  s.Restart();
  CHECK(Active(s, b.access_token()));
  TokenPair out;
  CHECK(s.Refresh(a.refresh_token(), &out).reason == "refresh_token_reused");
}

TEST_CASE("Lifecycle: JWKS publishes the signing key and rotation keeps old tokens valid",
          "[lifecycle]") {
  TestServer s;
  TokenPair a = MustIssue(s);
  v1::GetJwksResponse jwks;
  REQUIRE(s.Call(s.api(), &v1::TokenAuthority::Stub::GetJwks, v1::GetJwksRequest(), &jwks).ok());
  REQUIRE(jwks.keys_size() == 1);
  CHECK(jwks.keys(0).alg() == "ES256");
  CHECK(jwks.jwks_json().find("\"d\"") == std::string::npos);

  v1::RotateSigningKeyRequest rotate;
  rotate.set_alg("EdDSA");
  v1::RotateSigningKeyResponse rotated;
  REQUIRE(s.Call(s.admin(), &v1::TokenAdmin::Stub::RotateSigningKey, rotate, &rotated).ok());
  CHECK(rotated.kid() != jwks.keys(0).kid());
  TokenPair b = MustIssue(s);
  CHECK(Active(s, a.access_token()));
  CHECK(Active(s, b.access_token()));
  REQUIRE(s.Call(s.api(), &v1::TokenAuthority::Stub::GetJwks, v1::GetJwksRequest(), &jwks).ok());
  CHECK(jwks.keys_size() == 2);
}

TEST_CASE("Lifecycle: a cached token stops verifying when its key retires", "[lifecycle]") {
  TestServer s([](ServerOptions& o) { o.retired_key_window = absl::Minutes(2); });
  TokenPair a = MustIssue(s);
  REQUIRE(Active(s, a.access_token()));  // now in the verification cache
  v1::RotateSigningKeyResponse rotated;
  REQUIRE(s.Call(s.admin(), &v1::TokenAdmin::Stub::RotateSigningKey,
                 v1::RotateSigningKeyRequest(), &rotated)
              .ok());
  s.clock().Advance(absl::Minutes(1));
  CHECK(Active(s, a.access_token()));  // still within the retirement window
  s.clock().Advance(absl::Minutes(1) + absl::Seconds(1));
  CHECK(s.Introspect(a.access_token()).inactive_reason() == "unknown_kid");
}

TEST_CASE("Lifecycle: a cached token is still checked for audience on every call",
          "[lifecycle]") {
  TestServer s;
  TokenPair a = MustIssue(s);
  CHECK(s.Introspect(a.access_token(), "api").active());
  CHECK(s.Introspect(a.access_token(), "billing").inactive_reason() == "audience_mismatch");
  CHECK(s.Introspect(a.access_token(), "api").active());
}

}  // namespace
}  // namespace ta::testing

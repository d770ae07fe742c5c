// POST /oauth2/token (issue 26 item 5) over the real listener: the refresh_token grant of
// RFC 6749 §6 through TokenAuthority::RefreshTokens and its RFC 6749 §5.1/§5.2 answers, and
// what an unauthenticated caller can make it cost: no store write (nor read) for a malformed
// or forged token, a per-peer rate limit, the worker pool. DPoP: token_endpoint_dpop_test.cc.
#include <catch2/catch.hpp>

#include "absl/synchronization/notification.h"
#include "server/core/refresh_token.h"
#include "tests/http/token_fixture.h"
#include "token/crypto.h"

namespace ta::http::token_test {
namespace {

TEST_CASE("TokenEndpoint: the refresh_token grant rotates a bearer session (RFC 6749 5.1)",
          "[http][token]") {
  Fixture f;
  core::TokenPair pair = f.Issue();
  HttpAnswer a = f.Refresh(pair.refresh_token, "&client_id=spa");
  INFO(a.body);
  REQUIRE(a.status == 200);
  CHECK(a.Header("content-type") == "application/json");
  CHECK(a.Header("cache-control") == "no-store");
  CHECK(a.Header("pragma") == "no-cache");
  CHECK(a.Header("dpop-nonce").empty());
  rapidjson::Document doc = Json(a.body);
  CHECK(Str(doc["token_type"]) == "Bearer");
  CHECK(doc["expires_in"].GetInt64() > 0);
  CHECK(Str(doc["scope"]) == "read write");
  const std::string next = Str(doc["refresh_token"]);
  CHECK(next != pair.refresh_token);
  CHECK(Active(f, Str(doc["access_token"])));
  // The successor works the same way, without client_id.
  CHECK(f.Refresh(next).status == 200);
}

TEST_CASE("TokenEndpoint: scope narrows as on gRPC, never widens", "[http][token]") {
  Fixture f;
  core::TokenPair pair = f.Issue();
  CheckError(f.Refresh(pair.refresh_token, "&scope=read+admin"), 400, "invalid_scope",
             "invalid_scope");
  HttpAnswer a = f.Refresh(pair.refresh_token, "&scope=read");
  REQUIRE(a.status == 200);
  rapidjson::Document doc = Json(a.body);
  CHECK(Str(doc["scope"]) == "read");
  core::IntrospectRequest in;
  in.token = Str(doc["access_token"]);
  CHECK(f.authority->Introspect(in)->scope == "read");
}

TEST_CASE("TokenEndpoint: malformed requests are invalid_request, nothing spent", "[http][token]") {
  Fixture f;
  core::TokenPair pair = f.Issue();
  const std::string rt = "refresh_token=" + pair.refresh_token;
  CheckError(f.Post(rt), 400, "invalid_request", "invalid_request");  // no grant_type
  CheckError(f.Post("grant_type=refresh_token"), 400, "invalid_request", "invalid_request");
  CheckError(f.Post("grant_type=refresh_token&" + rt + "&" + rt), 400, "invalid_request",
             "invalid_request");  // a parameter twice (RFC 6749 3.2)
  CheckError(f.Post("grant_type=refresh_token&grant_type=refresh_token&" + rt), 400,
             "invalid_request", "invalid_request");
  CheckError(f.Post("grant_type=refresh_token&" + rt, "Content-Type: application/json\r\n"), 400,
             "invalid_request", "invalid_request");
  CheckError(f.Post("grant_type=refresh_token&" + rt + "&client_secret=x"), 400, "invalid_request",
             "invalid_request");
  CheckError(f.Post("grant_type=refresh_token&" + rt,
                    absl::StrCat(kForm, "Authorization: Basic c3BhOng=\r\n")),
             400, "invalid_request", "invalid_request");
  CheckError(f.Post("grant_type=password&username=a&password=b"), 400, "unsupported_grant_type",
             "unsupported_grant_type");
  CheckError(f.Post("grant_type=authorization_code&code=x&" + rt), 400, "unsupported_grant_type",
             "unsupported_grant_type");
  // Over the listener's body limit (16 KiB here): 413 before any handler runs.
  HttpAnswer huge = f.Post("grant_type=refresh_token&" + rt + "&pad=" + std::string(20000, 'a'));
  CHECK(huge.status == 413);
  CHECK(Str(Json(huge.body)["error"]) == "invalid_request");
  absl::StatusOr<HttpAnswer> get = Fetch(f.address, "GET", "/oauth2/token");
  REQUIRE(get.ok());
  CHECK(get->status == 405);
  CHECK(get->Header("allow") == "POST");
  // None of these spent the token.
  CHECK(f.Refresh(pair.refresh_token).status == 200);
}

TEST_CASE("TokenEndpoint: invalid, reused and revoked refresh tokens are invalid_grant",
          "[http][token]") {
  Fixture f;
  core::TokenPair pair = f.Issue();
  CheckError(f.Refresh("tar_not-a-token"), 400, "invalid_grant", "invalid_refresh_token");
  CheckError(f.Refresh("x"), 400, "invalid_grant", "invalid_refresh_token");
  HttpAnswer first = f.Refresh(pair.refresh_token);
  REQUIRE(first.status == 200);
  const std::string successor = Str(Json(first.body)["refresh_token"]);
  const std::string access = Str(Json(first.body)["access_token"]);
  REQUIRE(Active(f, access));
  // Reuse of the spent token through the endpoint revokes the family, as over gRPC.
  CheckError(f.Refresh(pair.refresh_token), 400, "invalid_grant", "refresh_token_reused");
  CheckError(f.Refresh(successor), 400, "invalid_grant", "family_revoked");
  CHECK_FALSE(Active(f, access));
  CHECK_FALSE(Active(f, pair.access_token));
}

TEST_CASE("TokenEndpoint: a malformed or forged refresh token costs no store write or read",
          "[http][token]") {
  Fixture f;
  core::TokenPair pair = f.Issue();
  absl::StatusOr<core::RefreshTokenParts> parts = core::ParseRefreshToken(pair.refresh_token);
  REQUIRE(parts.ok());
  // Our format, a real family and generation, a made-up secret: what a thief who knows a
  // session id (the access token's sid) can send.
  core::RefreshTokenParts forged = *parts;
  forged.secret = token::RandomBytes(core::kRefreshSecretBytes);
  core::RefreshTokenParts next = forged;
  next.generation = 1;
  const std::vector<std::string> tokens = {core::FormatRefreshToken(forged),
                                           core::FormatRefreshToken(next),
                                           "tar_AAAA",
                                           "tar_" + std::string(100, 'A'),
                                           "eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
                                           "tar_" + std::string(9000, 'a')};
  // Also with a valid proof: a proof is not even looked at before the token's secret.
  std::unique_ptr<token::Key> key = *token::Key::Generate(token::Algorithm::kES256);
  const int writes = f.store->writes, reads = f.store->reads;
  for (const std::string& t : tokens) {
    HttpAnswer a = f.Refresh(t);
    HttpAnswer with_proof = f.RefreshWithProof(t, f.Proof(*key));
    CHECK(with_proof.status == 400);
    INFO(a.body);
    CHECK(a.status == 400);
    const std::string error = Str(Json(a.body)["error"]);
    CHECK((error == "invalid_grant" || error == "invalid_request"));
  }
  CHECK(f.store->writes == writes);
  CHECK(f.store->reads == reads);
  // The decorator does see a real refresh.
  REQUIRE(f.Refresh(pair.refresh_token).status == 200);
  CHECK(f.store->writes > writes);
}

TEST_CASE("TokenEndpoint: store down is 503 temporarily_unavailable, then works", "[http][token]") {
  Fixture f;
  core::TokenPair pair = f.Issue();
  f.store->down = true;
  HttpAnswer a = f.Refresh(pair.refresh_token);
  CheckError(a, 503, "temporarily_unavailable", "store_unavailable");
  CHECK(a.Header("retry-after") == "1");
  f.store->down = false;
  CHECK(f.Refresh(pair.refresh_token).status == 200);
}

TEST_CASE("TokenEndpoint: refreshes run on the worker pool (503 overloaded when it is full)",
          "[http][token]") {
  Fixture f;
  core::TokenPair pair = f.Issue();
  absl::Notification release;
  std::atomic<int> running{0};
  for (int i = 0; i < 4; ++i) {
    REQUIRE(f.pool.Schedule([&] {
      ++running;
      release.WaitForNotification();
    }));
  }
  while (running < 4) absl::SleepFor(absl::Milliseconds(1));
  while (f.pool.Schedule([&release] { release.WaitForNotification(); })) {
  }
  CheckError(f.Refresh(pair.refresh_token), 503, "temporarily_unavailable", "overloaded");
  release.Notify();
  // Once the queue drains, the same token refreshes: nothing was spent.
  int status = 503;
  for (int i = 0; i < 500 && status == 503; ++i) {
    status = f.Refresh(pair.refresh_token).status;
    if (status == 503) absl::SleepFor(absl::Milliseconds(10));
  }
  CHECK(status == 200);
}

TEST_CASE("TokenEndpoint: each peer address has its own rate limit (429, Retry-After)",
          "[http][token]") {
  Fixture f(PeerRateOptions{/*rate=*/0.5, /*burst=*/3, /*max_peers=*/64});
  core::TokenPair pair = f.Issue();
  const std::string bad = "grant_type=refresh_token&refresh_token=x";
  for (int i = 0; i < 3; ++i) CHECK(f.Post(bad, kForm, "127.0.0.2").status == 400);
  HttpAnswer limited = f.Post(bad, kForm, "127.0.0.2");
  CheckError(limited, 429, "temporarily_unavailable", "rate_limited");
  CHECK(limited.Header("retry-after") == "2");  // one request per 2 s
  // Even a good request from that address waits; other addresses do not.
  CHECK(f.Post("grant_type=refresh_token&refresh_token=" + pair.refresh_token, kForm, "127.0.0.2")
            .status == 429);
  CHECK(f.Post(bad, kForm, "127.0.0.3").status == 400);
  f.limiter_clock.Advance(absl::Seconds(2));
  CHECK(f.Post("grant_type=refresh_token&refresh_token=" + pair.refresh_token, kForm, "127.0.0.2")
            .status == 200);
  CHECK(f.Post(bad, kForm, "127.0.0.2").status == 429);
}

TEST_CASE("PeerRateLimiter: the table stays bounded; untracked peers share one bucket",
          "[http][token]") {
  FakeClock clock;
  PeerRateLimiter limiter(PeerRateOptions{/*rate=*/1, /*burst=*/2, /*max_peers=*/4}, &clock);
  for (int i = 0; i < 4; ++i)
    CHECK(limiter.Admit(absl::StrCat("10.0.0.", i)) == absl::ZeroDuration());
  // A flood of new addresses: none is tracked, together they get one bucket of 2.
  int admitted = 0;
  for (int i = 0; i < 1000; ++i) {
    if (limiter.Admit(absl::StrCat("10.1.", i / 256, ".", i % 256)) == absl::ZeroDuration()) {
      ++admitted;
    }
  }
  CHECK(admitted == 2);
  CHECK(limiter.tracked() == 4);
  // The tracked peers kept their buckets (one request left each).
  CHECK(limiter.Admit("10.0.0.1") == absl::ZeroDuration());
  CHECK(limiter.Admit("10.0.0.1") > absl::ZeroDuration());
  // Once the tracked peers have been idle long enough to refill, their places are reused.
  clock.Advance(absl::Seconds(2));
  CHECK(limiter.Admit("10.2.0.1") == absl::ZeroDuration());
  CHECK(limiter.tracked() == 1);
  // rate 0: no limit at all.
  PeerRateLimiter off(PeerRateOptions{0, 1, 1}, &clock);
  for (int i = 0; i < 100; ++i) CHECK(off.Admit("p") == absl::ZeroDuration());
}

TEST_CASE(
    "TokenEndpoint: a refused refresh is audited with the peer's address, so the trail "
    "collapses it per address",
    "[http][token]") {
  Fixture f;
  core::TokenPair pair = f.Issue();
  CHECK(f.Post("grant_type=refresh_token&refresh_token=" + pair.refresh_token + "x", kForm,
               "127.0.0.5")
            .status == 400);
  std::vector<core::AuditEvent> events = f.audit.events();
  REQUIRE(!events.empty());
  const core::AuditEvent& refused = events.back();
  CHECK(refused.action == "session.refresh");
  CHECK(refused.outcome == "refused");
  CHECK(refused.caller == "public-client");
  CHECK(refused.peer == "127.0.0.5");
  CHECK(core::IsCollapsibleRefusal(refused));
  // The login service's IssueTokens (an authenticated caller) carries no peer: written whole.
  CHECK(events.front().peer.empty());
  CHECK_FALSE(core::IsCollapsibleRefusal(events.front()));
}

TEST_CASE("PeerKey: IPv6 peers are budgeted per /64, IPv4-mapped ones as IPv4",
          "[http][token]") {
  CHECK(PeerKey("192.0.2.7") == "192.0.2.7");
  CHECK(PeerKey("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == "2001:db8:1:2::/64");
  CHECK(PeerKey("2001:db8:1:2::1") == PeerKey("2001:db8:1:2:ffff::9"));
  CHECK(PeerKey("2001:db8:1:2::1") != PeerKey("2001:db8:1:3::1"));
  CHECK(PeerKey("::1") == "::/64");
  CHECK(PeerKey("::ffff:192.0.2.7") == "192.0.2.7");
  CHECK(PeerKey("not an address") == "not an address");
  CHECK(PeerKey("") == "");
  // One limiter, one /64: a client rotating through its addresses shares one bucket.
  FakeClock clock;
  PeerRateLimiter limiter(PeerRateOptions{/*rate=*/1, /*burst=*/2, /*max_peers=*/16}, &clock);
  int admitted = 0;
  for (int i = 1; i <= 10; ++i) {
    if (limiter.Admit(PeerKey(absl::StrCat("2001:db8:1:2::", i))) == absl::ZeroDuration()) {
      ++admitted;
    }
  }
  CHECK(admitted == 2);
  CHECK(limiter.tracked() == 1);
}

TEST_CASE("TokenEndpoint: CORS preflight and headers for browser apps", "[http][token]") {
  Fixture f;
  absl::StatusOr<HttpAnswer> pre =
      Fetch(f.address, "OPTIONS", "/oauth2/token",
            "Origin: https://app.example\r\nAccess-Control-Request-Method: POST\r\n"
            "Access-Control-Request-Headers: dpop, content-type\r\n");
  REQUIRE(pre.ok());
  CHECK(pre->status == 204);
  CHECK(pre->Header("access-control-allow-origin") == "*");
  CHECK(pre->Header("access-control-allow-methods") == "POST");
  CHECK(absl::StrContains(pre->Header("access-control-allow-headers"), "DPoP"));
  HttpAnswer a = f.Refresh(f.Issue().refresh_token);
  CHECK(a.Header("access-control-allow-origin") == "*");
  CHECK(absl::StrContains(a.Header("access-control-expose-headers"), "DPoP-Nonce"));
}

}  // namespace
}  // namespace ta::http::token_test

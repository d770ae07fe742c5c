// POST /oauth2/token (issue 26 item 5) over the real listener: the refresh_token grant of
// RFC 6749 §6 through TokenAuthority::RefreshTokens, its RFC 6749 §5.1/§5.2 answers, the DPoP
// header's handling (RFC 9449 §5), and what an unauthenticated caller can make it cost: no
// store write (nor read) for a malformed or forged token, and a per-peer rate limit.
#include <rapidjson/document.h>

#include <catch2/catch.hpp>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "base/error.h"
#include "server/core/refresh_token.h"
#include "server/http/endpoints.h"
#include "server/http/errors.h"
#include "server/http/listener.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "tests/http/http_client.h"
#include "tests/support/forwarding_store.h"
#include "tests/support/temp_dir.h"
#include "token/crypto.h"

namespace ta::http {
namespace {

using ta::testing::Fetch;
using ta::testing::HttpAnswer;

// Counts the store's writes and reads; answers UNAVAILABLE to everything while `down`.
class CountingStore final : public ta::testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  std::atomic<int> writes{0}, reads{0};
  std::atomic<bool> down{false};

  absl::Status CreateFamily(const storage::FamilyRecord& f,
                            const storage::RefreshRecord& r) override {
    ++writes;
    return down ? Down() : ForwardingStore::CreateFamily(f, r);
  }
  absl::StatusOr<storage::RotateOutcome> Rotate(const storage::RotateRequest& r) override {
    ++writes;
    if (down) return Down();
    return ForwardingStore::Rotate(r);
  }
  absl::StatusOr<bool> RevokeFamily(absl::string_view id, absl::string_view reason,
                                    absl::string_view by, absl::Time now) override {
    ++writes;
    if (down) return Down();
    return ForwardingStore::RevokeFamily(id, reason, by, now);
  }
  absl::Status DenyJti(absl::string_view jti, absl::Time exp) override {
    ++writes;
    return down ? Down() : ForwardingStore::DenyJti(jti, exp);
  }
  // The DPoP replay cache: a write per proof.
  absl::StatusOr<bool> RecordProofJti(absl::string_view key, absl::Time keep_until,
                                      absl::Time now) override {
    ++writes;
    if (down) return Down();
    return ForwardingStore::RecordProofJti(key, keep_until, now);
  }
  absl::StatusOr<storage::SubjectRecord> UpdateSubject(const storage::SubjectUpdate& u) override {
    ++writes;
    if (down) return Down();
    return ForwardingStore::UpdateSubject(u);
  }
  absl::StatusOr<storage::FamilyRecord> GetFamily(absl::string_view id, absl::Time now) override {
    ++reads;
    if (down) return Down();
    return ForwardingStore::GetFamily(id, now);
  }
  absl::StatusOr<storage::RefreshRecord> GetRefresh(absl::string_view id, uint64_t g,
                                                    absl::Time now) override {
    ++reads;
    if (down) return Down();
    return ForwardingStore::GetRefresh(id, g, now);
  }
  absl::StatusOr<std::optional<storage::SubjectRecord>> GetSubject(absl::string_view s,
                                                                   absl::Time now) override {
    ++reads;
    if (down) return Down();
    return ForwardingStore::GetSubject(s, now);
  }

 private:
  static absl::Status Down() {
    return Error(absl::StatusCode::kUnavailable, "store_unavailable", "disk gone");
  }
};

constexpr char kForm[] = "Content-Type: application/x-www-form-urlencoded\r\n";

// Endpoints over a counting RocksDB store, served by a real listener on 127.0.0.1:0. The rate
// limit's clock is a FakeClock the test moves.
struct Fixture {
  ta::testing::TempDir dir;
  CountingStore* store = nullptr;
  std::unique_ptr<storage::TokenStore> owned_store;
  std::unique_ptr<token::KeyRing> keys;
  std::unique_ptr<core::TokenAuthority> authority;
  std::unique_ptr<core::CallerRegistry> callers;
  runtime::CallGate gate;
  FakeClock limiter_clock;
  std::unique_ptr<Endpoints> endpoints;
  std::unique_ptr<Listener> listener;
  std::string address;
  runtime::WorkerPool pool{4, 16};

  explicit Fixture(PeerRateOptions rate = {}) {
    storage::RocksDbStoreOptions so;
    so.path = dir.Sub("db");
    auto counting = std::make_unique<CountingStore>(*storage::OpenRocksDbStore(so));
    store = counting.get();
    owned_store = std::move(counting);
    token::KeyRingOptions ko;
    ko.key_dir = dir.Sub("keys");
    keys = *token::KeyRing::Open(ko);
    core::AuthorityOptions ao;
    ao.default_audience = {"api"};
    authority = *core::TokenAuthority::Create(ao, owned_store.get(), keys.get());
    callers = *core::CallerRegistry::Parse(
        "ops admin " + core::CallerRegistry::KeyCredential("admin-key-0123456789") + "\n", "test");
    EndpointsOptions eo{"http://127.0.0.1:9", "http://127.0.0.1:9"};
    eo.token_rate = rate;
    eo.clock = &limiter_clock;
    endpoints = std::make_unique<Endpoints>(
        eo, EndpointsDeps{authority.get(), callers.get(), &pool, &gate});
    ListenerOptions lo;
    lo.threads = 1;
    lo.body_limit = 16 * 1024;
    listener = *Listener::Bind(lo);
    listener->Serve(endpoints.get());
    address = absl::StrCat("127.0.0.1:", listener->port());
  }
  ~Fixture() { listener->Stop(absl::Seconds(1)); }

  core::TokenPair Issue(const std::string& client_id = "spa") {
    core::IssueRequest req{"alice", client_id, {}, "read write", "", {}};
    absl::StatusOr<core::TokenPair> pair =
        authority->IssueTokens(req, core::Caller{"login", {core::Role::kIssuer}, {}});
    REQUIRE(pair.ok());
    return *pair;
  }

  HttpAnswer Post(const std::string& body, const std::string& headers = kForm,
                  const std::string& source_ip = "") {
    absl::StatusOr<HttpAnswer> a =
        Fetch(address, "POST", "/oauth2/token", headers, body, source_ip);
    INFO(a.status().ToString());
    REQUIRE(a.ok());
    return *a;
  }
  HttpAnswer Refresh(const std::string& refresh_token, const std::string& extra = "") {
    return Post("grant_type=refresh_token&refresh_token=" + refresh_token + extra);
  }
};

rapidjson::Document Json(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  INFO(text);
  REQUIRE_FALSE(doc.HasParseError());
  REQUIRE(doc.IsObject());
  return doc;
}

std::string Str(const rapidjson::Value& v) {
  return std::string(v.GetString(), v.GetStringLength());
}

// An RFC 6749 §5.2 error answer: status, error, and the core's reason first in the
// description.
void CheckError(const HttpAnswer& a, int status, const std::string& error,
                const std::string& reason) {
  INFO(a.body);
  CHECK(a.status == status);
  CHECK(a.Header("content-type") == "application/json");
  CHECK(a.Header("cache-control") == "no-store");
  CHECK(a.Header("pragma") == "no-cache");
  rapidjson::Document doc = Json(a.body);
  CHECK(Str(doc["error"]) == error);
  CHECK(absl::StartsWith(Str(doc["error_description"]), reason + ":"));
}

bool Active(Fixture& f, const std::string& token) {
  core::IntrospectRequest in;
  in.token = token;
  absl::StatusOr<core::Introspection> out = f.authority->Introspect(in);
  REQUIRE(out.ok());
  return out->active;
}

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
  const int writes = f.store->writes, reads = f.store->reads;
  for (const std::string& t : tokens) {
    HttpAnswer a = f.Refresh(t);
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

TEST_CASE("TokenEndpoint: DPoP header handling (RFC 9449 5)", "[http][token][dpop]") {
  Fixture f;
  core::TokenPair pair = f.Issue();
  // Two DPoP headers: refused as invalid_dpop_proof before the core, nothing spent.
  HttpAnswer two = f.Post("grant_type=refresh_token&refresh_token=" + pair.refresh_token,
                          absl::StrCat(kForm, "DPoP: a.b.c\r\nDPoP: d.e.f\r\n"));
  CheckError(two, 400, "invalid_dpop_proof", "dpop_malformed");
  CHECK(absl::StartsWith(two.Header("www-authenticate"), "DPoP error=\"invalid_dpop_proof\""));
  CHECK(f.Refresh(pair.refresh_token).status == 200);
}

TEST_CASE("TokenErrorResponse: core reasons become RFC 6749 / RFC 9449 errors", "[http][token]") {
  struct Case {
    absl::StatusCode code;
    const char* reason;
    int status;
    const char* error;
  };
  const Case cases[] = {
      {absl::StatusCode::kUnauthenticated, "invalid_refresh_token", 400, "invalid_grant"},
      {absl::StatusCode::kUnauthenticated, "refresh_token_expired", 400, "invalid_grant"},
      {absl::StatusCode::kUnauthenticated, "refresh_token_reused", 400, "invalid_grant"},
      {absl::StatusCode::kUnauthenticated, "family_revoked", 400, "invalid_grant"},
      {absl::StatusCode::kUnauthenticated, "subject_blocked", 400, "invalid_grant"},
      {absl::StatusCode::kUnauthenticated, "client_mismatch", 400, "invalid_grant"},
      {absl::StatusCode::kPermissionDenied, "permission_denied", 400, "invalid_grant"},
      {absl::StatusCode::kInvalidArgument, "invalid_scope", 400, "invalid_scope"},
      {absl::StatusCode::kInvalidArgument, "invalid_argument:scope", 400, "invalid_request"},
      {absl::StatusCode::kUnauthenticated, "dpop_bad_signature", 400, "invalid_dpop_proof"},
      {absl::StatusCode::kUnauthenticated, "dpop_htu_mismatch", 400, "invalid_dpop_proof"},
      {absl::StatusCode::kUnauthenticated, "dpop_replayed", 400, "invalid_dpop_proof"},
      {absl::StatusCode::kInvalidArgument, "dpop_proof_too_large", 400, "invalid_dpop_proof"},
      {absl::StatusCode::kUnauthenticated, "proof_required", 400, "invalid_dpop_proof"},
      {absl::StatusCode::kUnauthenticated, "proof_key_mismatch", 400, "invalid_dpop_proof"},
      {absl::StatusCode::kUnauthenticated, "use_dpop_nonce", 400, "use_dpop_nonce"},
      {absl::StatusCode::kUnavailable, "store_unavailable", 503, "temporarily_unavailable"},
      {absl::StatusCode::kResourceExhausted, "overloaded", 503, "temporarily_unavailable"},
      {absl::StatusCode::kResourceExhausted, "rate_limited", 429, "temporarily_unavailable"},
      {absl::StatusCode::kInternal, "internal", 500, "server_error"},
  };
  for (const Case& c : cases) {
    INFO(c.reason);
    HttpResponse r = TokenErrorResponse(Error(c.code, c.reason, "why"), "n-1");
    CHECK(r.status == c.status);
    rapidjson::Document doc = Json(r.body);
    CHECK(Str(doc["error"]) == c.error);
    CHECK(Str(doc["error_description"]) == absl::StrCat(c.reason, ": why"));
    std::map<std::string, std::string> headers(r.headers.begin(), r.headers.end());
    const bool dpop_error = absl::string_view(c.error) == "invalid_dpop_proof" ||
                            absl::string_view(c.error) == "use_dpop_nonce";
    CHECK(headers.count("WWW-Authenticate") == (dpop_error ? 1 : 0));
    if (dpop_error) {
      CHECK(headers["WWW-Authenticate"] ==
            absl::StrCat("DPoP error=\"", c.error, "\", algs=\"ES256 EdDSA Ed25519 RS256 PS256\""));
    }
    CHECK(headers.count("DPoP-Nonce") == (c.error == std::string("use_dpop_nonce") ? 1 : 0));
    if (headers.count("DPoP-Nonce")) CHECK(headers["DPoP-Nonce"] == "n-1");
    CHECK(headers.count("Retry-After") == (c.status == 503 ? 1 : 0));
  }
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
}  // namespace ta::http

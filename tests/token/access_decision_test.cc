// The access-token decision (token/access_decision.h) through the function itself, with a
// KeySet and a RevocationView and no server: each inactive reason, the stale-view error and
// its order relative to the token's own checks. The server's Introspect answers through the
// same function (tests/core, tests/rpc, tests/http, tests/integration check it end to end).
#include "token/access_decision.h"

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/revocation.h"
#include "tests/token/test_util.h"
#include "token/base64url.h"
#include "token/jws.h"
#include "token/jwt.h"
#include "token/key.h"
#include "token/verification_keys.h"

namespace ta::token {
namespace {

using testing::kAudience;
using testing::kIssuer;

const std::string kFamily(16, '\x07');  // a raw family id

struct Fixture {
  Fixture() {
    key = std::shared_ptr<const Key>(Key::Generate(Algorithm::kES256).value());
    keys = std::make_unique<KeySet>(std::vector<KeySet::Entry>{{key, retire_at}});
    policy.issuer = kIssuer;
    policy.audience = kAudience;
  }

  JwtClaims Claims() const {
    JwtClaims c = testing::MakeClaims(clock.Now());
    c.sid = Base64UrlEncode(kFamily);
    return c;
  }
  std::string Sign(const JwtClaims& claims, absl::string_view typ = "at+jwt") const {
    return SignCompactJws(EncodeJwsHeader(key->alg(), key->kid(), typ),
                          EncodeClaims(claims).value(), *key)
        .value();
  }
  void Revoke(RevocationEntry::Kind kind, std::string id) {
    RevocationEntry e;
    e.seq = ++seq;
    e.kind = kind;
    e.id = std::move(id);
    e.revoked_at = clock.Now();
    e.live_until = clock.Now() + absl::Hours(1);
    view.Apply(e);
  }
  // The decision's reason, "active", or the error's reason.
  std::string Decide(absl::string_view token) const {
    absl::StatusOr<AccessDecision> d = DecideAccessToken(token, *keys, view, policy, clock.Now());
    if (!d.ok()) return absl::StrCat("error:", ReasonOf(d.status()));
    return d->active ? "active" : d->inactive_reason;
  }

  FakeClock clock;
  absl::Time retire_at = absl::InfiniteFuture();
  std::shared_ptr<const Key> key;
  std::unique_ptr<KeySet> keys;
  RevocationView view{/*follows_shared_log=*/false, absl::Seconds(1), &clock};
  AccessPolicy policy;
  uint64_t seq = 0;
};

TEST_CASE("DecideAccessToken: a good token is active and carries its claims", "[token]") {
  Fixture f;
  const JwtClaims claims = f.Claims();
  absl::StatusOr<AccessDecision> d =
      DecideAccessToken(f.Sign(claims), *f.keys, f.view, f.policy, f.clock.Now());
  REQUIRE(d.ok());
  REQUIRE(d->active);
  CHECK(d->inactive_reason.empty());
  REQUIRE(d->jwt != nullptr);
  CHECK(d->jwt->kid == f.key->kid());
  CHECK(d->jwt->claims.sub == claims.sub);
  CHECK(d->jwt->claims.jti == claims.jti);
  CHECK(d->jwt->claims.sid == claims.sid);
  CHECK(d->jwt->claims_json == EncodeClaims(claims).value());
}

TEST_CASE("DecideAccessToken: a token that does not verify is inactive with the reason why",
          "[token]") {
  Fixture f;
  const std::string good = f.Sign(f.Claims());
  const std::string payload = EncodeClaims(f.Claims()).value();
  auto signed_with_header = [&](const std::string& header_json) {
    return SignCompactJws(header_json, payload, *f.key).value();
  };
  auto raw_header = [&](absl::string_view json) {
    return absl::StrCat(Base64UrlEncode(json), ".", Base64UrlEncode(payload), ".AAAA");
  };

  f.policy.max_token_bytes = 64;
  CHECK(f.Decide(good) == "token_too_large");
  f.policy.max_token_bytes = 8192;
  CHECK(f.Decide("only.two") == "malformed_token");
  CHECK(f.Decide(raw_header(R"({"alg":"none","kid":"k"})")) == "alg_none");
  CHECK(f.Decide(raw_header(R"({"alg":"HS512","kid":"k"})")) == "unsupported_alg");
  CHECK(f.Decide(raw_header(absl::StrCat(R"({"alg":"ES256","kid":")", f.key->kid(),
                                         R"(","jku":"https://evil.example/jwks"})"))) ==
        "forbidden_header");
  CHECK(f.Decide(f.Sign(f.Claims(), "JWT")) == "wrong_typ");
  CHECK(f.Decide(signed_with_header(EncodeJwsHeader(f.key->alg(), "someone-else", "at+jwt"))) ==
        "unknown_kid");
  CHECK(f.Decide(signed_with_header(EncodeJwsHeader(Algorithm::kRS256, f.key->kid(), "at+jwt"))) ==
        "alg_mismatch");
  std::string tampered = good;
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  CHECK(f.Decide(tampered) == "bad_signature");
}

TEST_CASE("DecideAccessToken: issuer, audience and the time window with its leeway", "[token]") {
  Fixture f;
  JwtClaims claims = f.Claims();
  claims.iss = "https://other.example";
  CHECK(f.Decide(f.Sign(claims)) == "wrong_issuer");

  claims = f.Claims();
  claims.aud = {"api://elsewhere"};
  CHECK(f.Decide(f.Sign(claims)) == "audience_mismatch");
  f.policy.audience.clear();  // the caller names no audience: any is fine
  CHECK(f.Decide(f.Sign(claims)) == "active");
  f.policy.audience = kAudience;

  const std::string token = f.Sign(f.Claims());  // exp = now + 5 min, leeway 30 s
  f.clock.Advance(absl::Minutes(5) + absl::Seconds(29));
  CHECK(f.Decide(token) == "active");
  f.clock.Advance(absl::Seconds(2));
  CHECK(f.Decide(token) == "token_expired");

  Fixture g;
  claims = g.Claims();
  claims.nbf = g.clock.Now() + absl::Minutes(1);
  CHECK(g.Decide(g.Sign(claims)) == "token_not_yet_valid");
  claims = g.Claims();
  claims.iat = g.clock.Now() + absl::Minutes(1);
  CHECK(g.Decide(g.Sign(claims)) == "iat_in_future");
}

TEST_CASE("DecideAccessToken: a sid that is no family id is a missing claim", "[token]") {
  Fixture f;
  JwtClaims claims = f.Claims();
  claims.sid = "";
  CHECK(f.Decide(f.Sign(claims)) == "missing_claim");
  claims.sid = Base64UrlEncode("too short");
  CHECK(f.Decide(f.Sign(claims)) == "missing_claim");
  claims.sid = "not base64url!";
  CHECK(f.Decide(f.Sign(claims)) == "missing_claim");
}

TEST_CASE("DecideAccessToken: a retired key no longer verifies", "[token]") {
  Fixture f;
  f.keys = std::make_unique<KeySet>(
      std::vector<KeySet::Entry>{{f.key, f.clock.Now() + absl::Minutes(1)}});
  const std::string token = f.Sign(f.Claims());
  CHECK(f.Decide(token) == "active");
  f.clock.Advance(absl::Minutes(1));
  CHECK(f.Decide(token) == "unknown_kid");
}

TEST_CASE("DecideAccessToken: a denylisted jti, a revoked family and a subject cutoff make it "
          "inactive",
          "[token]") {
  Fixture f;
  const JwtClaims claims = f.Claims();
  const std::string token = f.Sign(claims);
  {
    Fixture g;
    g.keys = std::make_unique<KeySet>(std::vector<KeySet::Entry>{{f.key, absl::InfiniteFuture()}});
    g.Revoke(RevocationEntry::Kind::kJti, claims.jti);
    CHECK(g.Decide(token) == "token_revoked");
  }
  {
    Fixture g;
    g.keys = std::make_unique<KeySet>(std::vector<KeySet::Entry>{{f.key, absl::InfiniteFuture()}});
    g.Revoke(RevocationEntry::Kind::kFamily, kFamily);
    CHECK(g.Decide(token) == "family_revoked");
  }
  {
    Fixture g;
    g.keys = std::make_unique<KeySet>(std::vector<KeySet::Entry>{{f.key, absl::InfiniteFuture()}});
    g.Revoke(RevocationEntry::Kind::kSubject, kFamily);
    CHECK(g.Decide(token) == "subject_revoked");
  }
  f.Revoke(RevocationEntry::Kind::kJti, "another-jti");
  f.Revoke(RevocationEntry::Kind::kFamily, std::string(16, '\x08'));
  CHECK(f.Decide(token) == "active");
}

TEST_CASE("DecideAccessToken: a stale view is an error for a good token, never a guess",
          "[token]") {
  Fixture f;
  RevocationView stale(/*follows_shared_log=*/true, absl::Seconds(1), &f.clock);
  const std::string token = f.Sign(f.Claims());
  const absl::Time now = f.clock.Now();

  absl::StatusOr<AccessDecision> d = DecideAccessToken(token, *f.keys, stale, f.policy, now);
  CHECK(d.status().code() == absl::StatusCode::kUnavailable);
  CHECK(ReasonOf(d.status()) == "revocations_stale");

  // A bad token is inactive whatever the view's state: the view is consulted last.
  d = DecideAccessToken("only.two", *f.keys, stale, f.policy, now);
  REQUIRE(d.ok());
  CHECK(d->inactive_reason == "malformed_token");

  // catch_up is asked once; when it brings the view current, the decision goes on.
  int asked = 0;
  d = DecideAccessToken(token, *f.keys, stale, f.policy, now, [&](absl::Time t) {
    ++asked;
    stale.MarkCurrent(t);
    return stale.IsCurrent(t);
  });
  REQUIRE(d.ok());
  CHECK(d->active);
  CHECK(asked == 1);
  d = DecideAccessToken(token, *f.keys, stale, f.policy, now, [&](absl::Time) {
    ++asked;
    return false;
  });
  CHECK(d.ok());  // current now: catch_up is not asked
  CHECK(asked == 1);
}

}  // namespace
}  // namespace ta::token

namespace ta::token {
namespace {

// A JWKS as the server's KeyRing::JwksJson writes it, for `keys` plus `extra` raw members.
std::string JwksOf(const std::vector<std::shared_ptr<const Key>>& keys,
                   const std::string& extra_keys = "") {
  std::string out = "{\"keys\":[";
  bool first = true;
  for (const auto& k : keys) {
    if (!first) out += ",";
    first = false;
    out += "{";
    for (const auto& [name, value] : k->PublicJwkMembers()) {
      absl::StrAppend(&out, "\"", name, "\":\"", value, "\",");
    }
    absl::StrAppend(&out, "\"use\":\"sig\",\"alg\":\"", AlgorithmName(k->alg()), "\",\"kid\":\"",
                    k->kid(), "\"}");
  }
  if (!extra_keys.empty()) absl::StrAppend(&out, first ? "" : ",", extra_keys);
  return out + "]}";
}

TEST_CASE("KeySet::FromJwks: a served JWKS verifies its keys' tokens and skips what it cannot hold",
          "[token]") {
  Fixture f;
  std::shared_ptr<const Key> ed(Key::Generate(Algorithm::kEdDSA).value());
  std::shared_ptr<const Key> rsa(Key::Generate(Algorithm::kRS256).value());
  const std::string good = f.Sign(f.Claims());
  // Unusable entries: another kty, an unknown alg, a wrong kid, use=enc: skipped, not errors.
  const std::string junk =
      "{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\",\"alg\":\"ES384\","
      "\"kid\":\"x\"},"
      "{\"kty\":\"oct\",\"k\":\"AAAA\",\"alg\":\"HS256\",\"kid\":\"y\"},"
      "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"" +
      ed->PublicJwkMembers()[2].second + "\",\"alg\":\"EdDSA\",\"kid\":\"not-its-thumbprint\"}";
  absl::StatusOr<std::shared_ptr<const KeySet>> set =
      KeySet::FromJwks(JwksOf({f.key, ed, rsa}, junk));
  REQUIRE(set.ok());
  CHECK((*set)->size() == 3);
  absl::StatusOr<AccessDecision> d =
      DecideAccessToken(good, **set, f.view, f.policy, f.clock.Now());
  REQUIRE(d.ok());
  CHECK(d->active);

  // Without the signing key: unknown_kid, as the server answers.
  set = KeySet::FromJwks(JwksOf({ed}));
  REQUIRE(set.ok());
  d = DecideAccessToken(good, **set, f.view, f.policy, f.clock.Now());
  REQUIRE(d.ok());
  CHECK(d->inactive_reason == "unknown_kid");

  for (const char* bad : {"", "[]", "{\"keys\":{}}", "{\"keys\":[1]}", "{\"nokeys\":[]}"}) {
    absl::StatusOr<std::shared_ptr<const KeySet>> r = KeySet::FromJwks(bad);
    INFO(bad);
    CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace ta::token

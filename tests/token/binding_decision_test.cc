// Sender-constrained tokens in the token library (issue 26): the cnf claim (RFC 7800) as we
// sign and read it, the binding step of the access-token decision that Introspect and the
// local verifier share (access_decision.h step 5), and the local verifier's bounded replay
// cache (proof_replay_cache.h).
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/error.h"
#include "tests/support/dpop_proofs.h"
#include "tests/token/test_util.h"
#include "token/access_decision.h"
#include "token/base64url.h"
#include "token/crypto.h"
#include "token/jws.h"
#include "token/jwt.h"
#include "token/key.h"
#include "token/proof_check.h"
#include "token/proof_replay_cache.h"

namespace ta::token {
namespace {

constexpr char kUrl[] = "https://api.example.com/orders";

TEST_CASE("Jwt: cnf encodes as RFC 7800 jkt or x5t#S256 and round-trips", "[token][dpop]") {
  JwtClaims claims = testing::MakeClaims(absl::FromUnixSeconds(1'800'000'000));
  claims.cnf.jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
  std::string json = EncodeClaims(claims).value();
  CHECK(json.find("\"cnf\":{\"jkt\":\"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I\"}") !=
        std::string::npos);
  CHECK(DecodeClaims(json)->cnf == claims.cnf);
  CHECK(DecodeClaims(json)->extra_json.empty());  // a standard claim, not an extra one
  claims.cnf = Confirmation{"", "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"};
  json = EncodeClaims(claims).value();
  CHECK(json.find("\"cnf\":{\"x5t#S256\":") != std::string::npos);
  CHECK(DecodeClaims(json)->cnf == claims.cnf);
  claims.cnf = Confirmation{"a", "b"};
  CHECK(ReasonOf(EncodeClaims(claims).status()) == "invalid_argument:cnf");
  claims.cnf = Confirmation();
  CHECK(EncodeClaims(claims)->find("cnf") == std::string::npos);
  // cnf is not an extra claim a caller may set.
  CHECK(ReasonOf(ValidateExtraClaims(R"({"cnf":{"jkt":"x"}})")) == "invalid_argument:extra_claims");
  // A cnf we did not write is malformed.
  const std::string base = EncodeClaims(testing::MakeClaims(absl::FromUnixSeconds(1))).value();
  for (const char* cnf : {R"("x")", R"({})", R"({"jkt":1})", R"({"jkt":""})", R"({"jwk":{}})",
                          R"({"jkt":"a","x5t#S256":"b"})"}) {
    INFO(cnf);
    std::string bad = base;
    bad.insert(bad.size() - 1, absl::StrCat(",\"cnf\":", cnf));
    CHECK(ReasonOf(DecodeClaims(bad).status()) == "malformed_token");
  }
}

struct Fixture {
  Fixture() {
    key = std::shared_ptr<const Key>(Key::Generate(Algorithm::kES256).value());
    keys = std::make_unique<KeySet>(std::vector<KeySet::Entry>{{key, absl::InfiniteFuture()}});
    policy.issuer = testing::kIssuer;
    client = Key::Generate(Algorithm::kES256).value();
  }
  std::string Token(const Confirmation& cnf) const {
    JwtClaims c = testing::MakeClaims(clock.Now());
    c.sid = Base64UrlEncode(std::string(16, '\x07'));
    c.cnf = cnf;
    return SignCompactJws(EncodeJwsHeader(key->alg(), key->kid(), "at+jwt"),
                          EncodeClaims(c).value(), *key)
        .value();
  }
  PresentedProof ProofFor(const std::string& token, const Key* by = nullptr) const {
    ::ta::testing::DpopSpec spec;
    spec.htm = "GET";
    spec.htu = kUrl;
    spec.ath = AccessTokenHash(token);
    return ::ta::testing::Presented(
        ::ta::testing::MakeDpopProof(by ? *by : *client, spec, clock.Now()), "GET", kUrl);
  }
  // "active", the inactive reason, or "error:<reason>".
  std::string Decide(const std::string& token, const PresentedProof& proof) {
    auto record = [this](const DpopProof& p) {
      return replays.Record(p.replay_key, p.iat + absl::Minutes(5), clock.Now());
    };
    absl::StatusOr<AccessDecision> d = DecideAccessToken(
        token, *keys, view, policy, clock.Now(), [](absl::Time) { return false; }, proof, record);
    if (!d.ok()) return absl::StrCat("error:", ReasonOf(d.status()));
    return d->active ? "active" : d->inactive_reason;
  }

  FakeClock clock;
  std::shared_ptr<const Key> key;
  std::unique_ptr<KeySet> keys;
  RevocationView view{/*follows_shared_log=*/false, absl::Seconds(1), &clock};
  AccessPolicy policy;
  std::unique_ptr<Key> client;
  ProofReplayCache replays{1000};
};

TEST_CASE("DecideAccessToken: a bound token needs a proof by its key, once", "[token][dpop]") {
  Fixture f;
  const Confirmation cnf{JwkThumbprint(f.client->PublicJwkMembers()), ""};
  const std::string token = f.Token(cnf);
  const PresentedProof proof = f.ProofFor(token);
  CHECK(f.Decide(token, proof) == "active");
  CHECK(f.Decide(token, proof) == "dpop_replayed");
  CHECK(f.Decide(token, {}) == "proof_required");
  CHECK(f.Decide(token, f.ProofFor(f.Token(cnf))) == "dpop_ath_mismatch");  // another token's
  std::unique_ptr<Key> thief = Key::Generate(Algorithm::kEdDSA).value();
  CHECK(f.Decide(token, f.ProofFor(token, thief.get())) == "proof_key_mismatch");
  PresentedProof cert;
  cert.certificate_thumbprint = Base64UrlEncode(Sha256("cert"));
  CHECK(f.Decide(token, cert) == "proof_key_mismatch");
  // The old overload: no proof, so a bound token is a bearer token presented.
  CHECK(DecideAccessToken(token, *f.keys, f.view, f.policy, f.clock.Now())->inactive_reason ==
        "proof_required");
  f.policy.binding_checked_by_caller = true;
  absl::StatusOr<AccessDecision> checked =
      DecideAccessToken(token, *f.keys, f.view, f.policy, f.clock.Now());
  REQUIRE(checked.ok());
  CHECK(checked->active);
  CHECK(checked->jwt->claims.cnf == cnf);
  // ...but a proof given is still checked.
  CHECK(f.Decide(token, f.ProofFor(token, thief.get())) == "proof_key_mismatch");
  // A bearer token ignores a proof.
  CHECK(f.Decide(f.Token({}), f.ProofFor(token, thief.get())) == "active");
  // The replay cache's error is the decision's error, never a verdict.
  ProofReplayCache full(0);
  auto failing = [&](const DpopProof& p) {
    return full.Record(p.replay_key, p.iat, f.clock.Now());
  };
  f.policy.binding_checked_by_caller = false;
  absl::StatusOr<AccessDecision> d = DecideAccessToken(
      token, *f.keys, f.view, f.policy, f.clock.Now(), [](absl::Time) { return false; },
      f.ProofFor(token), failing);
  CHECK(ReasonOf(d.status()) == "dpop_replay_cache_full");
}

TEST_CASE("DecideAccessToken: a certificate-bound token needs its thumbprint", "[token][dpop]") {
  Fixture f;
  PresentedProof cert;
  cert.certificate_thumbprint = Base64UrlEncode(Sha256("client cert"));
  const std::string token = f.Token(Confirmation{"", cert.certificate_thumbprint});
  CHECK(f.Decide(token, cert) == "active");
  CHECK(f.Decide(token, cert) == "active");  // no replay rule for a TLS connection's cert
  PresentedProof other;
  other.certificate_thumbprint = Base64UrlEncode(Sha256("other"));
  CHECK(f.Decide(token, other) == "proof_key_mismatch");
  CHECK(f.Decide(token, {}) == "proof_required");
  CHECK(f.Decide(token, f.ProofFor(token)) == "proof_key_mismatch");
}

TEST_CASE("ProofReplayCache: once per key while live, bounded, fails closed when full",
          "[token][dpop]") {
  const absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  ProofReplayCache cache(3);
  CHECK(*cache.Record("a", now + absl::Minutes(5), now));
  CHECK_FALSE(*cache.Record("a", now + absl::Minutes(5), now + absl::Minutes(4)));
  CHECK(*cache.Record("b", now + absl::Minutes(1), now));
  CHECK(*cache.Record("c", now + absl::Minutes(5), now));
  // Full of live keys: refused, never forgetting one.
  CHECK(ReasonOf(cache.Record("d", now + absl::Minutes(5), now).status()) ==
        "dpop_replay_cache_full");
  CHECK_FALSE(*cache.Record("a", now + absl::Minutes(5), now));
  // Once they have expired the sweep drops them (oldest first) and there is room again.
  const absl::Time later = now + absl::Minutes(6);
  CHECK(*cache.Record("d", later + absl::Minutes(5), later));  // a, b, c all expired
  CHECK(cache.size() == 1);
  CHECK(*cache.Record("a", later + absl::Minutes(5), later));  // expired: recorded again
  CHECK_FALSE(*cache.Record("a", later + absl::Minutes(5), later));
}

TEST_CASE("proof_check: request shape and certificate thumbprints", "[token][dpop]") {
  CHECK(IsCertificateThumbprint(Base64UrlEncode(Sha256("x"))));
  CHECK_FALSE(IsCertificateThumbprint(Base64UrlEncode(Sha256("x")) + "A"));
  CHECK_FALSE(IsCertificateThumbprint(std::string(43, '/')));
  PresentedProof both;
  both.dpop_proof = "a.b.c";
  both.http_method = "POST";
  both.http_url = kUrl;
  both.certificate_thumbprint = Base64UrlEncode(Sha256("x"));
  CHECK(ReasonOf(CheckPresentedProof(both)) == "invalid_argument:proof");
  CHECK(CheckPresentedProof({}).ok());
}

}  // namespace
}  // namespace ta::token

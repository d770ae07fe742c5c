// DpopKeyCache (token/dpop.h): a cached proof key gives the answers an imported one gives,
// a jwk that differs in any member never reuses another's key, a full cache still answers,
// and concurrent checks through one cache agree with each other. dpop_test.cc runs every
// RFC 9449 check through the default (process-wide) cache.
#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/error.h"
#include "tests/support/dpop_proofs.h"
#include "token/dpop.h"
#include "token/key.h"

namespace ta::token {
namespace {

constexpr char kUrl[] = "https://as.example.com/oauth2/token";

// "ok:<jkt>" or the refusal's reason.
std::string Outcome(const std::string& proof, DpopKeyCache* cache, absl::Time now) {
  DpopRequest request;
  request.proof = proof;
  request.method = "POST";
  request.url = kUrl;
  DpopPolicy policy;
  policy.key_cache = cache;
  absl::StatusOr<DpopProof> out = VerifyDpopProof(request, policy, now);
  return out.ok() ? absl::StrCat("ok:", out->jkt) : ReasonOf(out.status());
}

std::string Proof(const Key& key, absl::Time now, std::string jwk = "", std::string alg = "") {
  testing::DpopSpec spec;
  spec.htu = kUrl;
  spec.jwk = std::move(jwk);
  spec.alg = std::move(alg);
  return testing::MakeDpopProof(key, spec, now);
}

// The public JWK of `key` with member `name`'s value replaced by `value`.
std::string JwkWith(const Key& key, absl::string_view name, absl::string_view value) {
  std::string out = "{";
  for (const JwkMember& m : key.PublicJwkMembers()) {
    absl::StrAppend(&out, out.size() > 1 ? "," : "", "\"", m.first, "\":\"",
                    m.first == name ? value : m.second, "\"");
  }
  return absl::StrCat(out, "}");
}

std::string MemberOf(const Key& key, absl::string_view name) {
  for (const JwkMember& m : key.PublicJwkMembers()) {
    if (m.first == name) return m.second;
  }
  return "";
}

TEST_CASE("DpopKeyCache: a cached key gives the answers an imported one gives") {
  const absl::Time now = absl::Now();
  std::vector<std::string> proofs;
  for (Algorithm alg :
       {Algorithm::kES256, Algorithm::kEdDSA, Algorithm::kRS256, Algorithm::kPS256}) {
    std::unique_ptr<Key> key = Key::Generate(alg).value();
    std::unique_ptr<Key> other = Key::Generate(alg).value();
    proofs.push_back(Proof(*key, now));                                // valid
    proofs.push_back(Proof(*key, now));                                // again, warm
    proofs.push_back(Proof(*key, now, testing::DpopJwkJson(*other)));  // wrong signer
    proofs.push_back(Proof(*key, now, testing::DpopJwkJson(*key, ",\"d\":\"AAAA\"")));
    proofs.push_back(Proof(*key, now, testing::DpopJwkJson(*key, ",\"alg\":\"HS256\"")));
    proofs.push_back(Proof(*key, now - absl::Hours(1)));  // too old
  }
  DpopKeyCache cache(DpopKeyCache::kDefaultBytes);
  for (int pass = 0; pass < 2; ++pass) {  // cold, then every usable key cached
    for (size_t i = 0; i < proofs.size(); ++i) {
      INFO("pass " << pass << " proof " << i);
      CHECK(Outcome(proofs[i], &cache, now) == Outcome(proofs[i], nullptr, now));
    }
  }
  CHECK(cache.bytes() > 0);
}

TEST_CASE("DpopKeyCache: a jwk that differs in any member or alg is imported afresh") {
  const absl::Time now = absl::Now();
  DpopKeyCache cache(DpopKeyCache::kDefaultBytes);
  std::unique_ptr<Key> a = Key::Generate(Algorithm::kES256).value();
  std::unique_ptr<Key> b = Key::Generate(Algorithm::kES256).value();
  REQUIRE(Outcome(Proof(*a, now), &cache, now) == absl::StrCat("ok:", a->kid()));
  REQUIRE(Outcome(Proof(*b, now), &cache, now) == absl::StrCat("ok:", b->kid()));
  // Signed by a, under a jwk that is a's but for one member: not a point of P-256 (or not
  // P-256 at all), so unusable, whatever a cached entry for a's jwk holds.
  CHECK(Outcome(Proof(*a, now, JwkWith(*a, "y", MemberOf(*b, "y"))), &cache, now) ==
        "dpop_bad_jwk");
  CHECK(Outcome(Proof(*a, now, JwkWith(*a, "crv", "P-384")), &cache, now) == "dpop_bad_jwk");
  // a's exact jwk under another accepted alg: FromJwk refuses an EC key for PS256.
  CHECK(Outcome(Proof(*a, now, "", "PS256"), &cache, now) == "dpop_bad_jwk");
  // And the cached keys still answer as before.
  CHECK(Outcome(Proof(*a, now), &cache, now) == absl::StrCat("ok:", a->kid()));
  CHECK(Outcome(Proof(*b, now), &cache, now) == absl::StrCat("ok:", b->kid()));
}

TEST_CASE("DpopKeyCache: a cache fuller than its capacity still answers every proof") {
  const absl::Time now = absl::Now();
  // About two keys per shard: most of 120 keys are dropped again and again.
  constexpr size_t kCapacity = 16 * 3000;
  DpopKeyCache cache(kCapacity);
  std::vector<std::unique_ptr<Key>> keys;
  for (int i = 0; i < 120; ++i) {
    keys.push_back(Key::Generate(i % 2 ? Algorithm::kEdDSA : Algorithm::kES256).value());
  }
  for (int pass = 0; pass < 2; ++pass) {
    for (const std::unique_ptr<Key>& key : keys) {
      REQUIRE(Outcome(Proof(*key, now), &cache, now) == absl::StrCat("ok:", key->kid()));
      REQUIRE(cache.bytes() <= kCapacity);
    }
  }
  CHECK(cache.bytes() > 0);
}

TEST_CASE("DpopKeyCache: concurrent checks through one cache give each key its own answer") {
  const absl::Time now = absl::Now();
  constexpr int kThreads = 4;
  constexpr int kRounds = 300;
  constexpr int kKeys = 12;
  DpopKeyCache cache(16 * 3000);  // small: entries are dropped while others read them
  std::vector<std::unique_ptr<Key>> keys;
  for (int i = 0; i < kKeys; ++i) {
    keys.push_back(Key::Generate(i % 3 == 2 ? Algorithm::kEdDSA : Algorithm::kES256).value());
  }
  // Per thread and round: a valid proof, or (every fifth) one signed by the key under a jwk
  // that differs from its own in y, which must never pass.
  std::vector<std::vector<std::string>> proofs(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    for (int r = 0; r < kRounds; ++r) {
      const Key& key = *keys[(t + r) % kKeys];
      const Key& other = *keys[(t + r + 3) % kKeys];
      const bool forged =
          r % 5 == 4 && key.alg() == Algorithm::kES256 && other.alg() == Algorithm::kES256;
      proofs[t].push_back(forged ? Proof(key, now, JwkWith(key, "y", MemberOf(other, "y")))
                                 : Proof(key, now));
    }
  }
  std::vector<std::vector<std::string>> outcomes(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (const std::string& proof : proofs[t]) outcomes[t].push_back(Outcome(proof, &cache, now));
    });
  }
  for (std::thread& thread : threads) thread.join();
  int forged_refused = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (int r = 0; r < kRounds; ++r) {
      INFO("thread " << t << " round " << r);
      const std::string expected = Outcome(proofs[t][r], nullptr, now);
      CHECK(outcomes[t][r] == expected);
      if (expected == "dpop_bad_jwk")
        ++forged_refused;
      else
        CHECK(expected == absl::StrCat("ok:", keys[(t + r) % kKeys]->kid()));
    }
  }
  CHECK(forged_refused > 0);
}

}  // namespace
}  // namespace ta::token

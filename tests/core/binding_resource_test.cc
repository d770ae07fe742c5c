// Sender-constrained sessions at the core, continued (issue 26 items 1, 3, 4): Introspect of a
// bound token with the proof the resource server received (ath, key, replay), server nonces,
// replays across two PostgreSQL replicas, and racing refreshes of one bound family.
#include <atomic>
#include <catch2/catch.hpp>
#include <latch>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/core/binding_env.h"
#include "token/base64url.h"
#include "token/crypto.h"

namespace ta::core {
namespace {

using ::ta::testing::DpopSpec;
using ::ta::testing::Presented;

TEST_CASE("Binding: Introspect of a DPoP-bound token checks the resource's proof") {
  BindingEnv env(Engine::kRocksDb);
  absl::StatusOr<TokenPair> issued = env.Issue(env.ForTokenUrl());
  REQUIRE(issued.ok());
  const std::string token = issued->access_token;

  Introspection ok = env.Introspect(token, env.ForResource(token));
  CHECK(ok.active);
  CHECK(ok.cnf.jkt == env.jkt);
  // Presented as a bearer token: inactive, unless the caller checks the binding itself.
  CHECK(env.Introspect(token, {}).inactive_reason == "proof_required");
  Introspection checked = env.Introspect(token, {}, /*checked_by_caller=*/true);
  CHECK(checked.active);
  CHECK(checked.cnf.jkt == env.jkt);

  // ath: missing, or the hash of another token.
  DpopSpec no_ath;
  no_ath.htm = "GET";
  no_ath.htu = kResourceUrl;
  CHECK(env.Introspect(token, Presented(env.Proof(no_ath), "GET", kResourceUrl)).inactive_reason ==
        "dpop_missing_claim");
  DpopSpec wrong_ath = no_ath;
  wrong_ath.ath = token::AccessTokenHash(issued->refresh_token);
  CHECK(
      env.Introspect(token, Presented(env.Proof(wrong_ath), "GET", kResourceUrl)).inactive_reason ==
      "dpop_ath_mismatch");
  // Another key, a certificate, another method or URL than the resource's request.
  std::unique_ptr<token::Key> thief = token::Key::Generate(token::Algorithm::kEdDSA).value();
  CHECK(env.Introspect(token, env.ForResource(token, thief.get())).inactive_reason ==
        "proof_key_mismatch");
  token::PresentedProof cert;
  cert.certificate_thumbprint = token::Base64UrlEncode(token::Sha256("cert"));
  CHECK(env.Introspect(token, cert).inactive_reason == "proof_key_mismatch");
  token::PresentedProof moved = env.ForResource(token);
  moved.http_url = "https://api.example.com/admin";
  CHECK(env.Introspect(token, moved).inactive_reason == "dpop_htu_mismatch");
  moved = env.ForResource(token);
  moved.http_method = "DELETE";
  CHECK(env.Introspect(token, moved).inactive_reason == "dpop_htm_mismatch");
  // A replayed resource proof (the store's replay cache).
  const token::PresentedProof once = env.ForResource(token);
  CHECK(env.Introspect(token, once).active);
  CHECK(env.Introspect(token, once).inactive_reason == "dpop_replayed");
  // A bearer token ignores a proof; a revoked bound token is revoked whatever the proof.
  absl::StatusOr<TokenPair> bearer = env.Issue({}, 0, "bob");
  REQUIRE(bearer.ok());
  CHECK(env.Introspect(bearer->access_token, env.ForResource(bearer->access_token)).active);
  REQUIRE(env.authority().RevokeToken(token, env.admin).ok());
  CHECK(env.Introspect(token, env.ForResource(token)).inactive_reason == "token_revoked");
}

TEST_CASE("Binding: Introspect of a certificate-bound token compares the thumbprint") {
  BindingEnv env(Engine::kRocksDb);
  token::PresentedProof cert;
  cert.certificate_thumbprint = token::Base64UrlEncode(token::Sha256("client cert"));
  absl::StatusOr<TokenPair> issued = env.Issue(cert);
  REQUIRE(issued.ok());
  Introspection ok = env.Introspect(issued->access_token, cert);
  CHECK(ok.active);
  CHECK(ok.cnf.x5t_s256 == cert.certificate_thumbprint);
  token::PresentedProof other;
  other.certificate_thumbprint = token::Base64UrlEncode(token::Sha256("other cert"));
  CHECK(env.Introspect(issued->access_token, other).inactive_reason == "proof_key_mismatch");
  CHECK(env.Introspect(issued->access_token, {}).inactive_reason == "proof_required");
  CHECK(
      env.Introspect(issued->access_token, env.ForResource(issued->access_token)).inactive_reason ==
      "proof_key_mismatch");
  // The refresh token's introspection shows the family's binding too.
  Introspection refresh = env.Introspect(issued->refresh_token, {});
  CHECK(refresh.active);
  CHECK(refresh.cnf.x5t_s256 == cert.certificate_thumbprint);
}

TEST_CASE("Binding: with --dpop_nonce a proof needs the current nonce (or the previous one)") {
  AuthorityOptions options;
  options.dpop_nonce = true;
  options.dpop_nonce_window = absl::Minutes(1);
  BindingEnv env(Engine::kRocksDb, 1, options);
  const std::string nonce = env.authority().CurrentDpopNonce();
  REQUIRE(nonce.size() >= 16);
  CHECK(ReasonOrOk(env.Issue(env.ForTokenUrl())) == "use_dpop_nonce");
  DpopSpec spec;
  spec.htu = kTokenUrl;
  spec.nonce = "made-up";
  CHECK(ReasonOrOk(env.Issue(Presented(env.Proof(spec), "POST", kTokenUrl))) == "use_dpop_nonce");
  spec.nonce = nonce;
  absl::StatusOr<TokenPair> issued = env.Issue(Presented(env.Proof(spec), "POST", kTokenUrl));
  REQUIRE(issued.ok());
  // The next window: a new nonce; the previous one still passes; two windows on it does not.
  env.clock.Advance(absl::Minutes(1));
  CHECK(env.authority().CurrentDpopNonce() != nonce);
  CHECK(ReasonOrOk(env.Refresh(issued->refresh_token,
                               Presented(env.Proof(spec), "POST", kTokenUrl))) == "ok");
  env.clock.Advance(absl::Minutes(1));
  CHECK(ReasonOrOk(env.Issue(Presented(env.Proof(spec), "POST", kTokenUrl))) == "use_dpop_nonce");
  // Nonces off: none is offered and none is asked for.
  BindingEnv off(Engine::kRocksDb);
  CHECK(off.authority().CurrentDpopNonce().empty());
}

TEST_CASE("Binding: two PostgreSQL replicas share the replay cache and agree on nonces") {
  AuthorityOptions options;
  options.dpop_nonce = true;
  BindingEnv env(Engine::kPostgres, 2, options);
  const std::string nonce = env.authority(0).CurrentDpopNonce();
  CHECK(env.authority(1).CurrentDpopNonce() == nonce);  // no coordination needed
  DpopSpec spec;
  spec.htu = kTokenUrl;
  spec.nonce = nonce;
  const token::PresentedProof login = Presented(env.Proof(spec), "POST", kTokenUrl);
  absl::StatusOr<TokenPair> issued = env.Issue(login, 0);
  INFO(issued.status().ToString());
  REQUIRE(issued.ok());
  CHECK(ReasonOrOk(env.Issue(login, 1)) == "dpop_replayed");  // the other replica
  // A refresh proof used on replica 1, replayed on replica 0: refused, nothing spent.
  const token::PresentedProof refresh = Presented(env.Proof(spec), "POST", kTokenUrl);
  absl::StatusOr<TokenPair> next = env.Refresh(issued->refresh_token, refresh, 1);
  INFO(next.status().ToString());
  REQUIRE(next.ok());
  CHECK(ReasonOrOk(env.Refresh(next->refresh_token, refresh, 0)) == "dpop_replayed");
  // A resource proof introspected on one replica, then on the other.
  const token::PresentedProof resource = env.ForResource(next->access_token);
  CHECK(env.Introspect(next->access_token, resource, false, 0).active);
  CHECK(env.Introspect(next->access_token, resource, false, 1).inactive_reason == "dpop_replayed");
  // The legitimate client goes on, on either replica.
  CHECK(ReasonOrOk(env.Refresh(next->refresh_token, Presented(env.Proof(spec), "POST", kTokenUrl),
                               0)) == "ok");
}

// Reuse rules are unchanged by binding: racing refreshes of one generation, each with its own
// valid proof, give one rotation; with a grace window the others get the same successor.
void RaceRefreshes(Engine engine) {
  AuthorityOptions options;
  options.reuse_grace = absl::Seconds(30);
  BindingEnv env(engine, 1, options);
  absl::StatusOr<TokenPair> issued = env.Issue(env.ForTokenUrl());
  REQUIRE(issued.ok());
  std::string current = issued->refresh_token;
  constexpr int kGenerations = 60;
  constexpr int kThreads = 5;  // 300 racing refreshes
  for (int generation = 0; generation < kGenerations; ++generation) {
    std::vector<token::PresentedProof> proofs;
    for (int t = 0; t < kThreads; ++t) proofs.push_back(env.ForTokenUrl());
    std::vector<absl::StatusOr<TokenPair>> results(kThreads, absl::UnknownError("not run"));
    std::latch start(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        start.arrive_and_wait();
        results[t] = env.Refresh(current, proofs[t]);
      });
    }
    for (std::thread& t : threads) t.join();
    std::set<std::string> successors;
    for (const absl::StatusOr<TokenPair>& r : results) {
      INFO("generation " << generation << ": " << r.status().ToString());
      REQUIRE(r.ok());
      CHECK(r->token_type == "DPoP");
      successors.insert(r->refresh_token);
    }
    REQUIRE(successors.size() == 1);  // one winner; the others replayed within grace
    REQUIRE(env.Family(issued->family_id).generation == static_cast<uint64_t>(generation + 1));
    current = *successors.begin();
  }
  CHECK_FALSE(env.Family(issued->family_id).revoked);
}

TEST_CASE(
    "Binding: racing refreshes with valid proofs give one rotation per generation - RocksDb") {
  RaceRefreshes(Engine::kRocksDb);
}

TEST_CASE(
    "Binding: racing refreshes with valid proofs give one rotation per generation - Postgres") {
  RaceRefreshes(Engine::kPostgres);
}

TEST_CASE("Binding: without grace, racing proofs still find one winner and reuse kills the rest") {
  BindingEnv env(Engine::kRocksDb);
  absl::StatusOr<TokenPair> issued = env.Issue(env.ForTokenUrl());
  REQUIRE(issued.ok());
  constexpr int kThreads = 8;
  std::vector<token::PresentedProof> proofs;
  for (int t = 0; t < kThreads; ++t) proofs.push_back(env.ForTokenUrl());
  std::vector<std::string> outcomes(kThreads);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      outcomes[t] = ReasonOrOk(env.Refresh(issued->refresh_token, proofs[t]));
    });
  }
  for (std::thread& t : threads) t.join();
  int winners = 0;
  for (const std::string& o : outcomes) {
    if (o == "ok") ++winners;
    if (o != "ok") CHECK((o == "refresh_token_reused" || o == "family_revoked"));
  }
  CHECK(winners == 1);
}

}  // namespace
}  // namespace ta::core

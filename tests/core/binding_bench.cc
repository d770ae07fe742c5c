// What binding a session to a DPoP key (issue 26 #6) costs the core, against the same calls
// on a bearer session in the same run: IssueTokens, RefreshTokens and Introspect, each with a
// proof and without. The core over a real RocksDB store with sync off (as core_bench.cc), no
// gRPC. Proofs are made before the timed loop (the client makes them, not the server), one
// per call, each with its own jti: what the server does per call is verify the proof
// (RFC 9449 §4.3), record its jti in the store's replay cache, and compare the key with the
// family's. Arguments: the proof key's algorithm (0 ES256, 1 EdDSA, 2 RS256), and for the
// bound calls whether imported proof keys are cached (token::DpopKeyCache, 1, the default)
// or each proof's jwk is imported afresh (0, the code before the cache), in the same run.
//
//   build/release/tests/core/binding_bench --benchmark_repetitions=3
//       --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/core/authority.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "tests/support/dpop_proofs.h"
#include "tests/support/temp_dir.h"
#include "token/dpop.h"
#include "token/jws.h"
#include "token/key.h"

namespace ta::core {
namespace {

constexpr int kCalls = 2000;  // iterations of every benchmark, so proofs can be made up front
constexpr char kLoginUrl[] = "https://login.example.com/session";
constexpr char kTokenUrl[] = "https://auth.example.com/oauth2/token";
constexpr char kApiUrl[] = "https://api.example.com/orders";

// A valid proof by `key` for (method, url) at `now`, with `ath` when not empty, and a jti of
// its own.
std::string MakeProof(const token::Key& key, const std::string& method, const std::string& url,
                      const std::string& ath, absl::Time now) {
  testing::DpopSpec spec;
  spec.htm = method;
  spec.htu = url;
  if (!ath.empty()) spec.ath = ath;
  return testing::MakeDpopProof(key, spec, now);
}

struct Fixture {
  explicit Fixture(token::Algorithm alg, bool key_cache = true) {
    storage::RocksDbStoreOptions store_options;
    store_options.path = dir.Sub("db");
    store_options.sync_writes = false;
    store = storage::OpenRocksDbStore(store_options).value();
    token::KeyRingOptions key_options;
    key_options.key_dir = dir.Sub("keys");
    keys = token::KeyRing::Open(key_options).value();
    AuthorityOptions options;
    options.default_audience = {"api"};
    // A cache of this fixture's own, so one benchmark's keys never warm another's.
    options.dpop.key_cache = key_cache ? &cache : nullptr;
    authority = TokenAuthority::Create(options, store.get(), keys.get()).value();
    caller.name = "bench";
    caller.roles = {Role::kIssuer, Role::kClient, Role::kResource};
    client_key = token::Key::Generate(alg).value();
  }

  // kCalls proofs by the client's key for (method, url), with ath when `access_token` is set.
  std::vector<token::PresentedProof> Proofs(const std::string& method, const std::string& url,
                                            const std::string& access_token = "") {
    std::vector<token::PresentedProof> out(kCalls + 1);
    const std::string ath = access_token.empty() ? "" : token::AccessTokenHash(access_token);
    for (token::PresentedProof& p : out) {
      p.dpop_proof = MakeProof(*client_key, method, url, ath, absl::Now());
      p.http_method = method;
      p.http_url = url;
    }
    return out;
  }

  IssueRequest Login(int64_t i, token::PresentedProof proof = {}) const {
    IssueRequest request;
    request.subject = absl::StrCat("user-", i);
    request.client_id = "bench";
    request.scope = "read write";
    request.proof = std::move(proof);
    return request;
  }

  testing::TempDir dir;
  token::DpopKeyCache cache{token::DpopKeyCache::kDefaultBytes};
  std::unique_ptr<storage::TokenStore> store;
  std::unique_ptr<token::KeyRing> keys;
  std::unique_ptr<TokenAuthority> authority;
  std::unique_ptr<token::Key> client_key;
  Caller caller;
};

token::Algorithm AlgOf(const benchmark::State& state) {
  switch (state.range(0)) {
    case 1:
      return token::Algorithm::kEdDSA;
    case 2:
      return token::Algorithm::kRS256;
    default:
      return token::Algorithm::kES256;
  }
}

// The key cache argument (bearer benchmarks pass 0: they have no proof key to cache).
bool CacheOf(const benchmark::State& state) { return state.range(1) != 0; }

void BM_IssueTokens(benchmark::State& state, bool bound) {
  Fixture f(AlgOf(state), bound && CacheOf(state));
  std::vector<token::PresentedProof> proofs;
  if (bound) proofs = f.Proofs("POST", kLoginUrl);
  int64_t i = 0;
  for (auto _ : state) {
    absl::StatusOr<TokenPair> pair =
        f.authority->IssueTokens(f.Login(i, bound ? proofs[i] : token::PresentedProof()), f.caller);
    if (!pair.ok()) state.SkipWithError(std::string(pair.status().message()).c_str());
    ++i;
  }
}

void BM_RefreshTokens(benchmark::State& state, bool bound) {
  Fixture f(AlgOf(state), bound && CacheOf(state));
  std::vector<token::PresentedProof> proofs;
  if (bound) proofs = f.Proofs("POST", kTokenUrl);
  token::PresentedProof login;
  if (bound) login = f.Proofs("POST", kLoginUrl)[0];
  std::string refresh = f.authority->IssueTokens(f.Login(0, login), f.caller)->refresh_token;
  size_t i = 0;
  for (auto _ : state) {
    RefreshRequest request{refresh, ""};
    if (bound) request.proof = proofs[i++];
    absl::StatusOr<TokenPair> next = f.authority->RefreshTokens(request, f.caller);
    if (!next.ok()) {
      state.SkipWithError(std::string(next.status().message()).c_str());
      break;
    }
    refresh = next->refresh_token;
  }
}

// The same access token every call (verification cached, as for a busy resource server);
// for the bound session, a fresh proof with its ath every call.
void BM_Introspect(benchmark::State& state, bool bound) {
  Fixture f(AlgOf(state), bound && CacheOf(state));
  token::PresentedProof login;
  if (bound) login = f.Proofs("POST", kLoginUrl)[0];
  const std::string token = f.authority->IssueTokens(f.Login(0, login), f.caller)->access_token;
  std::vector<token::PresentedProof> proofs;
  if (bound) proofs = f.Proofs("GET", kApiUrl, token);
  size_t i = 0;
  for (auto _ : state) {
    IntrospectRequest request{token, ""};
    if (bound) request.proof = proofs[i++];
    absl::StatusOr<Introspection> out = f.authority->Introspect(request);
    if (!out.ok() || !out->active) {
      state.SkipWithError(out.ok() ? out->inactive_reason.c_str() : "introspect failed");
      break;
    }
  }
}

// Where a proof's cost goes, without the core or the store: the whole RFC 9449 §4.3 check
// (token::VerifyDpopProof), and two of its parts alone, importing the header's jwk as a key
// and checking one signature with it.
void BM_ProofCheckOnly(benchmark::State& state) {
  Fixture f(AlgOf(state));
  std::vector<token::PresentedProof> proofs = f.Proofs("POST", kTokenUrl);
  token::DpopPolicy policy;
  policy.key_cache = CacheOf(state) ? &f.cache : nullptr;
  size_t i = 0;
  for (auto _ : state) {
    token::DpopRequest request;
    request.proof = proofs[i++].dpop_proof;
    request.method = "POST";
    request.url = kTokenUrl;
    absl::StatusOr<token::DpopProof> out = token::VerifyDpopProof(request, policy, absl::Now());
    if (!out.ok()) state.SkipWithError(std::string(out.status().message()).c_str());
  }
}
BENCHMARK(BM_ProofCheckOnly)
    ->ArgsProduct({{0, 1, 2}, {0, 1}})
    ->Iterations(kCalls)
    ->Unit(benchmark::kMicrosecond);

void BM_JwkImportOnly(benchmark::State& state) {
  Fixture f(AlgOf(state));
  std::string jwk = "{";
  for (const token::JwkMember& m : f.client_key->PublicJwkMembers()) {
    absl::StrAppend(&jwk, jwk.size() > 1 ? "," : "", "\"", m.first, "\":\"", m.second, "\"");
  }
  jwk += "}";
  for (auto _ : state) {
    absl::StatusOr<std::unique_ptr<token::Key>> key = token::Key::FromJwk(jwk, f.client_key->alg());
    if (!key.ok()) state.SkipWithError(std::string(key.status().message()).c_str());
  }
}
BENCHMARK(BM_JwkImportOnly)
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Iterations(kCalls)
    ->Unit(benchmark::kMicrosecond);

void BM_SignatureOnly(benchmark::State& state) {
  Fixture f(AlgOf(state));
  const std::string input = "eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJ4In0";
  const std::string signature = *f.client_key->Sign(input);
  for (auto _ : state) {
    if (!f.client_key->Verify(input, signature)) state.SkipWithError("bad signature");
  }
}
BENCHMARK(BM_SignatureOnly)
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Iterations(kCalls)
    ->Unit(benchmark::kMicrosecond);

#define TA_PAIR(name)                    \
  BENCHMARK_CAPTURE(name, bearer, false) \
      ->Args({0, 0})                     \
      ->Iterations(kCalls)               \
      ->Unit(benchmark::kMicrosecond);   \
  BENCHMARK_CAPTURE(name, dpop, true)    \
      ->ArgsProduct({{0, 1, 2}, {0, 1}}) \
      ->Iterations(kCalls)               \
      ->Unit(benchmark::kMicrosecond)

TA_PAIR(BM_IssueTokens);
TA_PAIR(BM_RefreshTokens);
TA_PAIR(BM_Introspect);

}  // namespace
}  // namespace ta::core

BENCHMARK_MAIN();

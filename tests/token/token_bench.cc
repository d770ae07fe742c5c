// Sign and Verify cost per algorithm through the KeyRing (claims encoding, JSON, base64url
// and the signature included), i.e. what IssueTokens and an uncached Introspect pay.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "tests/token/test_util.h"

namespace ta::token {
namespace {

using testing::MakeClaims;
using testing::MakePolicy;
using testing::RingFixture;

void BM_Sign(benchmark::State& state) {
  RingFixture f(static_cast<Algorithm>(state.range(0)));
  JwtClaims claims = MakeClaims(f.clock.Now());
  for (auto _ : state) {
    auto token = f.ring->Sign(claims, "at+jwt");
    benchmark::DoNotOptimize(token);
  }
  state.SetLabel(std::string(AlgorithmName(f.key->alg())));
}

void BM_Verify(benchmark::State& state) {
  RingFixture f(static_cast<Algorithm>(state.range(0)));
  std::string token = f.ring->Sign(MakeClaims(f.clock.Now()), "at+jwt").value();
  VerifyPolicy policy = MakePolicy();
  for (auto _ : state) {
    auto verified = f.ring->Verify(token, policy);
    if (!verified.ok()) state.SkipWithError("verify failed");
    benchmark::DoNotOptimize(verified);
  }
  state.SetLabel(std::string(AlgorithmName(f.key->alg())));
}

void AllAlgorithms(benchmark::internal::Benchmark* b) {
  for (Algorithm alg : testing::kAllAlgorithms) b->Arg(static_cast<int>(alg));
  b->Unit(benchmark::kMicrosecond);
}

BENCHMARK(BM_Sign)->Apply(AllAlgorithms);
BENCHMARK(BM_Verify)->Apply(AllAlgorithms);

}  // namespace
}  // namespace ta::token

BENCHMARK_MAIN();

// The local verifier's cost (issue 25 item 7), in one run against one real server in this
// process (tests/support/test_server.h, as tests/client/verifier_test.cc: RocksDB, port 0, a
// FakeClock shared with the verifier, so the view stays current however long the run takes):
//   BM_VerifySeen       LocalVerifier::Verify of a token it verified before (its token cache);
//   BM_VerifyDistinct   Verify of a token it has not seen (signature checked): it walks 5,000
//                       pre-issued tokens, more than the verifier's cache holds (4,096, cleared
//                       when full), so every call misses;
//   BM_Introspect       one gRPC TokenAuthority/Introspect round trip to the same server (a token
//                       it has seen: its own cache skips the signature);
//   BM_IntrospectUnseen the same for 3,000 tokens it has not introspected (signature checked);
//   BM_Es256Verify      the ES256 signature check alone (token::Key::Verify), the primitive
//                       `openssl speed ecdsap256` measures;
//   BM_ViewMemory       a token::RevocationView made as the verifier makes its views, fed 1 M
//                       live entries (half jtis, half families): bytes per entry, the view's
//                       own accounting and the process's resident growth.
// The Verify benchmarks also run with 2 threads. Not a test (not in ctest):
//   build/test/tests/client/verifier_bench --benchmark_min_time=1
//
// TestServer reports a failed setup through Catch2's REQUIRE, so the benchmarks run inside one
// Catch2 test case (main below); a setup failure is a Catch2 failure and a non-zero exit.
#define CATCH_CONFIG_RUNNER
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "client/verifier.h"
#include "tests/support/test_server.h"
#include "token/key.h"
#include "token/revocation_view.h"

namespace ta::testing {
namespace {

using client::LocalVerifier;
using client::LocalVerifierOptions;

constexpr char kAudience[] = "api";
constexpr int kDistinctTokens = 5000;
constexpr int kIntrospectTokens = 3000;

// The server, the verifier following it and the tokens, made once by the Catch2 test case.
struct World {
  TestServer server;
  std::unique_ptr<LocalVerifier> verifier;
  std::vector<std::string> tokens;             // for the verifier
  std::vector<std::string> introspect_tokens;  // for BM_IntrospectUnseen only
};
World* world = nullptr;

std::unique_ptr<LocalVerifier> MakeVerifier(TestServer& server) {
  LocalVerifierOptions o;
  o.server.target = server.address();
  o.server.api_key = server.admin_key();
  o.issuer = server.options().authority.issuer;
  o.audience = kAudience;
  o.leeway = server.options().authority.leeway;
  o.clock = &server.clock();
  absl::StatusOr<std::unique_ptr<LocalVerifier>> v = LocalVerifier::Create(std::move(o));
  INFO(v.status().ToString());
  REQUIRE(v.ok());
  return *std::move(v);
}

void CheckActive(benchmark::State& state, const absl::StatusOr<token::AccessDecision>& d) {
  if (!d.ok() || !d->active) state.SkipWithError("a token was not active");
}

void BM_VerifySeen(benchmark::State& state) {
  const std::string& token = world->tokens[0];
  CheckActive(state, world->verifier->Verify(token));
  for (auto _ : state) {
    absl::StatusOr<token::AccessDecision> d = world->verifier->Verify(token);
    benchmark::DoNotOptimize(d);
  }
  CheckActive(state, world->verifier->Verify(token));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerifySeen)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_VerifySeen)->Unit(benchmark::kMicrosecond)->UseRealTime()->Threads(2);

void BM_VerifyDistinct(benchmark::State& state) {
  const std::vector<std::string>& tokens = world->tokens;
  // Each thread starts elsewhere in the ring; a token comes back only after more than the
  // cache's 4,096 other tokens were verified, so the cache has been cleared since.
  size_t i = static_cast<size_t>(state.thread_index()) * tokens.size() / 2;
  for (auto _ : state) {
    absl::StatusOr<token::AccessDecision> d = world->verifier->Verify(tokens[i % tokens.size()]);
    if (!d.ok() || !d->active) {
      state.SkipWithError("a token was not active");
      break;
    }
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerifyDistinct)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_VerifyDistinct)->Unit(benchmark::kMicrosecond)->UseRealTime()->Threads(2);

void BM_Introspect(benchmark::State& state) {
  v1::IntrospectRequest req;
  req.set_token(world->tokens[0]);
  req.set_audience(kAudience);
  for (auto _ : state) {
    v1::IntrospectResponse resp;
    CallResult r = world->server.Call(world->server.api(),
                                      &v1::TokenAuthority::Stub::Introspect, req, &resp);
    if (!r.ok() || !resp.active()) {
      state.SkipWithError("Introspect failed or inactive");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Introspect)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Introspect of tokens the server has not introspected (its signature checked there): one pass
// over a pool of its own, in exactly that many iterations (the server's cache keeps them all).
void BM_IntrospectUnseen(benchmark::State& state) {
  const std::vector<std::string>& tokens = world->introspect_tokens;
  size_t i = 0;
  v1::IntrospectRequest req;
  req.set_audience(kAudience);
  for (auto _ : state) {
    if (i == tokens.size()) {
      state.SkipWithError("more iterations than unseen tokens");
      break;
    }
    req.set_token(tokens[i++]);
    v1::IntrospectResponse resp;
    CallResult r = world->server.Call(world->server.api(),
                                      &v1::TokenAuthority::Stub::Introspect, req, &resp);
    if (!r.ok() || !resp.active()) {
      state.SkipWithError("Introspect failed or inactive");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_IntrospectUnseen)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime()
    ->Iterations(kIntrospectTokens);

void BM_Es256Verify(benchmark::State& state) {
  std::unique_ptr<token::Key> key = std::move(token::Key::Generate(token::Algorithm::kES256)).value();
  // The signing input of a real access token: the same bytes hashed.
  const std::string& jwt = world->tokens[0];
  const std::string input = jwt.substr(0, jwt.rfind('.'));
  const std::string signature = key->Sign(input).value();
  for (auto _ : state) {
    if (!key->Verify(input, signature)) {
      state.SkipWithError("verify failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Es256Verify)->Unit(benchmark::kMicrosecond)->UseRealTime();

long ResidentBytes() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * sysconf(_SC_PAGESIZE);
}

// 1 M live revocations in a view made as LocalVerifier makes its views (follows a shared log,
// max_lag = the default max_staleness of 1 s), applied one by one as the stream's entries are.
// The ids are as the server writes them: a 22-character jti, a 16-byte raw family id.
void BM_ViewMemory(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  const absl::Time now = world->server.clock().Now();
  std::mt19937_64 rng(7);
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::vector<RevocationEntry> entries(n);
  for (size_t i = 0; i < n; ++i) {
    RevocationEntry& e = entries[i];
    e.seq = i + 1;
    e.kind = i % 2 ? RevocationEntry::Kind::kJti : RevocationEntry::Kind::kFamily;
    e.id.assign(i % 2 ? 22 : 16, 'A');
    for (char& c : e.id) c = i % 2 ? kAlphabet[rng() % 64] : static_cast<char>(rng() & 0xff);
    e.revoked_at = now;
    e.live_until = now + absl::Hours(1);
  }
  double view_bytes = 0, rss_bytes = 0;
  for (auto _ : state) {
    const long before = ResidentBytes();
    auto view = std::make_unique<token::RevocationView>(/*follows_shared_log=*/true,
                                                        absl::Seconds(1), &world->server.clock());
    for (const RevocationEntry& e : entries) view->Apply(e);
    rss_bytes = static_cast<double>(ResidentBytes() - before);
    view_bytes = static_cast<double>(view->ApproximateMemoryBytes());
    if (view->size() != n) state.SkipWithError("the view lost entries");
  }
  state.counters["view_B_per_entry"] = view_bytes / static_cast<double>(n);
  state.counters["rss_B_per_entry"] = rss_bytes / static_cast<double>(n);
  state.counters["view_MiB"] = view_bytes / (1 << 20);
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(n));
}
BENCHMARK(BM_ViewMemory)->Arg(1'000'000)->Iterations(1)->Unit(benchmark::kMillisecond);

TEST_CASE("verifier_bench", "[bench]") {
  World w;
  w.verifier = MakeVerifier(w.server);
  REQUIRE(w.verifier->WaitUntilCurrent(absl::Seconds(10)));
  for (int i = 0; i < kDistinctTokens + kIntrospectTokens; ++i) {
    v1::TokenPair pair;
    CallResult r = w.server.Issue("user-" + std::to_string(i % 100), &pair);
    INFO(r.reason);
    REQUIRE(r.ok());
    (i < kDistinctTokens ? w.tokens : w.introspect_tokens).push_back(pair.access_token());
  }
  w.server.clock().Advance(absl::Milliseconds(1));  // a bookmark past the last issue
  REQUIRE(w.verifier->WaitUntilCurrent(absl::Seconds(10)));
  world = &w;
  benchmark::RunSpecifiedBenchmarks();
  world = nullptr;
}

}  // namespace
}  // namespace ta::testing

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);  // takes its --benchmark_* flags out of argv
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  char* catch_argv[] = {argv[0], nullptr};
  return Catch::Session().run(1, catch_argv);
}

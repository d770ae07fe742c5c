// binding_bench.cc end to end (issue 26 #6): IssueTokens, RefreshTokens and Introspect over
// a real gRPC channel to an in-process server (tests/support/test_server.h: RocksDB, loopback
// TCP, one call at a time), on a bearer session and on a DPoP-bound one, in the same run, so
// the round trip is part of both figures. Arguments: the proof key's algorithm (0 ES256,
// 1 EdDSA, 2 RS256), and whether the server caches imported proof keys (1, the default) or
// imports every proof's jwk (0). Wall time per call (the client waits on the server). The
// server syncs its writes (its default) unless --no_sync is given.
//
//   build/tests/integration/binding_grpc_bench --benchmark_repetitions=3
//       --benchmark_report_aggregates_only=true
// test_server.cc uses Catch2's assertions, which need a running Catch session: main (below)
// runs the benchmarks inside one Catch test case.
#define CATCH_CONFIG_RUNNER
#include <benchmark/benchmark.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/support/dpop_proofs.h"
#include "tests/support/test_server.h"
#include "token/dpop.h"
#include "token/key.h"

namespace ta::testing {
namespace {

constexpr int kCalls = 1000;
constexpr char kLoginUrl[] = "https://login.example.com/session";
constexpr char kTokenUrl[] = "https://auth.example.com/oauth2/token";
constexpr char kApiUrl[] = "https://api.example.com/orders";
// --no_sync (ours, not Google Benchmark's): the store does not fsync its WAL before
// answering (ServerOptions::sync_writes; the server's default is to sync).
bool sync_writes = true;

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

struct Fixture {
  explicit Fixture(const benchmark::State& state, bool bound)
      : server([&](ServerOptions& o) {
          if (bound && state.range(1) == 0) o.authority.dpop.key_cache = nullptr;
          o.sync_writes = sync_writes;
        }),
        bound(bound),
        key(token::Key::Generate(AlgOf(state)).value()) {}

  // A proof for (method, url) at the server's clock, with ath when `access_token` is set;
  // unset for a bearer session.
  void Prove(v1::ProofOfPossession* out, const std::string& method, const std::string& url,
             const std::string& access_token = "") {
    if (!bound) return;
    DpopSpec spec;
    spec.htm = method;
    spec.htu = url;
    if (!access_token.empty()) spec.ath = token::AccessTokenHash(access_token);
    out->set_dpop_proof(MakeDpopProof(*key, spec, server.clock().Now()));
    out->set_http_method(method);
    out->set_http_url(url);
  }

  v1::IssueTokensRequest Login(int64_t i) {
    v1::IssueTokensRequest request;
    request.set_subject(absl::StrCat("user-", i));
    request.set_client_id("bench");
    Prove(request.mutable_proof(), "POST", kLoginUrl);
    return request;
  }

  TestServer server;
  bool bound;
  std::unique_ptr<token::Key> key;
};

void BM_IssueTokens(benchmark::State& state, bool bound) {
  Fixture f(state, bound);
  std::vector<v1::IssueTokensRequest> requests;
  for (int i = 0; i <= kCalls; ++i) requests.push_back(f.Login(i));
  size_t i = 0;
  for (auto _ : state) {
    v1::TokenPair pair;
    CallResult r = f.server.Issue(requests[i++], &pair);
    if (!r.ok()) state.SkipWithError(r.reason.c_str());
  }
}

void BM_RefreshTokens(benchmark::State& state, bool bound) {
  Fixture f(state, bound);
  v1::TokenPair pair;
  if (!f.server.Issue(f.Login(0), &pair).ok()) return state.SkipWithError("login failed");
  std::vector<v1::RefreshTokensRequest> requests(kCalls + 1);
  for (v1::RefreshTokensRequest& r : requests) f.Prove(r.mutable_proof(), "POST", kTokenUrl);
  size_t i = 0;
  for (auto _ : state) {
    v1::RefreshTokensRequest& request = requests[i++];
    request.set_refresh_token(pair.refresh_token());
    CallResult r =
        f.server.Call(f.server.api(), &v1::TokenAuthority::Stub::RefreshTokens, request, &pair);
    if (!r.ok()) return state.SkipWithError(r.reason.c_str());
  }
}

// The same access token every call; for the bound session a fresh proof with its ath.
void BM_Introspect(benchmark::State& state, bool bound) {
  Fixture f(state, bound);
  v1::TokenPair pair;
  if (!f.server.Issue(f.Login(0), &pair).ok()) return state.SkipWithError("login failed");
  std::vector<v1::IntrospectRequest> requests(kCalls + 1);
  for (v1::IntrospectRequest& r : requests) {
    r.set_token(pair.access_token());
    r.set_include_reason(true);
    f.Prove(r.mutable_proof(), "GET", kApiUrl, pair.access_token());
  }
  size_t i = 0;
  for (auto _ : state) {
    v1::IntrospectResponse out;
    CallResult r =
        f.server.Call(f.server.api(), &v1::TokenAuthority::Stub::Introspect, requests[i++], &out);
    if (!r.ok() || !out.active()) {
      return state.SkipWithError(r.ok() ? out.inactive_reason().c_str() : "introspect failed");
    }
  }
}

#define TA_PAIR(name)                    \
  BENCHMARK_CAPTURE(name, bearer, false) \
      ->Args({0, 0})                     \
      ->Iterations(kCalls)               \
      ->UseRealTime()                    \
      ->Unit(benchmark::kMicrosecond);   \
  BENCHMARK_CAPTURE(name, dpop, true)    \
      ->ArgsProduct({{0, 1, 2}, {0, 1}}) \
      ->Iterations(kCalls)               \
      ->UseRealTime()                    \
      ->Unit(benchmark::kMicrosecond)

TA_PAIR(BM_IssueTokens);
TA_PAIR(BM_RefreshTokens);
TA_PAIR(BM_Introspect);

TEST_CASE("binding_grpc_bench") { benchmark::RunSpecifiedBenchmarks(); }

}  // namespace
}  // namespace ta::testing

int main(int argc, char** argv) {
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::string(argv[i]) == "--no_sync") {
      ta::testing::sync_writes = false;
    } else {
      args.push_back(argv[i]);
    }
  }
  argc = static_cast<int>(args.size());
  argv = args.data();
  benchmark::Initialize(&argc, argv);  // takes the --benchmark_* flags
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  return Catch::Session().run(1, argv);  // Catch sees no arguments
}

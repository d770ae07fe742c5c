// The server's per-call work without gRPC: what one Introspect, RefreshTokens or IssueTokens
// costs in the core and in the rpc layer's message conversion, over a real RocksDB store.
// End-to-end figures (with gRPC) come from ta-loadgen; this splits out our own share and is
// the target for `valgrind --tool=callgrind` (instruction counts are repeatable on a busy
// machine). Writes run with sync off: fsync cost is the disk's, measured end to end.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/core/authority.h"
#include "server/rpc/convert.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "tests/support/temp_dir.h"
#include "tokenauthority/v1/token_authority.pb.h"

namespace ta::core {
namespace {

namespace v1 = ::tokenauthority::v1;

struct Fixture {
  explicit Fixture(size_t verify_cache_bytes = 64 << 20) {
    storage::RocksDbStoreOptions store_options;
    store_options.path = dir.Sub("db");
    store_options.sync_writes = false;
    store = storage::OpenRocksDbStore(store_options).value();
    token::KeyRingOptions key_options;
    key_options.key_dir = dir.Sub("keys");
    keys = token::KeyRing::Open(key_options).value();
    AuthorityOptions options;
    options.default_audience = {"api"};
    options.verify_cache_bytes = verify_cache_bytes;
    authority = TokenAuthority::Create(options, store.get(), keys.get()).value();
    issuer.name = "bench";
    issuer.roles = {Role::kIssuer, Role::kClient};
  }

  TokenPair Issue(int64_t i) {
    IssueRequest request;
    request.subject = absl::StrCat("user-", i);
    request.client_id = "bench";
    request.scope = "read write";
    return authority->IssueTokens(request, issuer).value();
  }

  testing::TempDir dir;
  std::unique_ptr<storage::TokenStore> store;
  std::unique_ptr<token::KeyRing> keys;
  std::unique_ptr<TokenAuthority> authority;
  Caller issuer;
};

// Introspect of one token, verification cached: the store reads and checks only.
void BM_IntrospectCached(benchmark::State& state) {
  Fixture f;
  IntrospectRequest request{f.Issue(0).access_token, ""};
  for (auto _ : state) {
    absl::StatusOr<Introspection> out = f.authority->Introspect(request);
    if (!out.ok() || !out->active) state.SkipWithError("not active");
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_IntrospectCached);

// The same plus what the rpc layer adds: request decode, answer -> IntrospectResponse
// (claims as a Struct) and its serialization, as the server does per call.
void BM_IntrospectCachedWire(benchmark::State& state) {
  Fixture f;
  v1::IntrospectRequest wire_request;
  wire_request.set_token(f.Issue(0).access_token);
  const std::string request_bytes = wire_request.SerializeAsString();
  std::string response_bytes;
  rpc::ClaimsCache claims(16384);
  for (auto _ : state) {
    v1::IntrospectRequest in;
    in.ParseFromString(request_bytes);
    absl::StatusOr<Introspection> out = f.authority->Introspect(rpc::FromProto(in));
    v1::IntrospectResponse response;
    if (!out.ok() || !rpc::ToProto(*out, false, claims, &response).ok() || !response.active()) {
      state.SkipWithError("not active");
    }
    response.SerializeToString(&response_bytes);
    benchmark::DoNotOptimize(response_bytes);
  }
}
BENCHMARK(BM_IntrospectCachedWire);

// Every call a token not seen before (cache off): signature verification included.
void BM_IntrospectUncached(benchmark::State& state) {
  Fixture f(/*verify_cache_bytes=*/0);
  std::vector<std::string> tokens;
  for (int i = 0; i < 64; ++i) tokens.push_back(f.Issue(i).access_token);
  size_t i = 0;
  for (auto _ : state) {
    absl::StatusOr<Introspection> out =
        f.authority->Introspect(IntrospectRequest{tokens[i++ % tokens.size()], ""});
    if (!out.ok() || !out->active) state.SkipWithError("not active");
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_IntrospectUncached);

void BM_RefreshTokens(benchmark::State& state) {
  Fixture f;
  std::string refresh = f.Issue(0).refresh_token;
  for (auto _ : state) {
    absl::StatusOr<TokenPair> next = f.authority->RefreshTokens(RefreshRequest{refresh, ""}, f.issuer);
    if (!next.ok()) {
      state.SkipWithError("refresh failed");
      break;
    }
    refresh = next->refresh_token;
  }
}
BENCHMARK(BM_RefreshTokens);

void BM_IssueTokens(benchmark::State& state) {
  Fixture f;
  int64_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(f.Issue(i++));
}
BENCHMARK(BM_IssueTokens);

}  // namespace
}  // namespace ta::core

BENCHMARK_MAIN();

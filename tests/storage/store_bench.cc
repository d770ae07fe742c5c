// Google Benchmark for RocksDbStore: point reads (hit/miss), Rotate with sync on/off, DenyJti,
// at 10k and 1M stored families (each with one refresh record and one denied jti).
//
// Run from a Release build:  build-storage-release/tests/storage/store_bench
// Databases are seeded once per size (sync off) into a temp dir and removed at exit.
#include <benchmark/benchmark.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "tests/storage/test_util.h"

namespace ta::storage::bench {

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

std::string JtiFor(uint64_t n) { return absl::StrCat("jti-", n * 0x9E3779B97F4A7C15ull); }

// One seeded database per size, each kept open; a store is reopened only when a benchmark
// needs the other sync mode (RocksDB allows one open per path).
class Stores {
 public:
  TokenStore* Get(int64_t size, bool sync) {
    Open& open = open_[size];
    if (open.store == nullptr) {
      open.store = OpenStore(size, /*sync=*/false);
      Seed(open.store.get(), size);
      generations_[size] = std::make_unique<std::vector<std::atomic<uint64_t>>>(size);
    }
    if (open.sync != sync) {
      open.store.reset();
      open.store = OpenStore(size, sync);
      open.sync = sync;
    }
    return open.store.get();
  }
  // Per-size current generation of each family, so Rotate always presents the current token.
  std::vector<std::atomic<uint64_t>>& Generations(int64_t size) { return *generations_[size]; }

 private:
  struct Open {
    std::unique_ptr<TokenStore> store;
    bool sync = false;
  };
  std::unique_ptr<TokenStore> OpenStore(int64_t size, bool sync) {
    RocksDbStoreOptions o;
    o.path = absl::StrCat(dir_.path(), "/", size);
    o.sync_writes = sync;
    absl::StatusOr<std::unique_ptr<TokenStore>> store = OpenRocksDbStore(o);
    if (!store.ok()) abort();
    return *std::move(store);
  }
  // Sync off, two writer threads: RocksDB batches concurrent writers into one WAL write.
  static void Seed(TokenStore* store, int64_t size) {
    auto seed_range = [store](int64_t begin, int64_t end) {
      for (int64_t n = begin; n < end; ++n) {
        std::string id = testing::FamilyIdFor(n);
        FamilyRecord f = testing::MakeFamily(id, absl::StrCat("user-", n % 100000), kNow);
        if (!store->CreateFamily(f, testing::MakeRefresh(id, 0, kNow), std::nullopt).ok()) abort();
        if (!store->DenyJti(JtiFor(n), kNow + absl::Hours(1)).ok()) abort();
      }
    };
    std::thread other(seed_range, 0, size / 2);
    seed_range(size / 2, size);
    other.join();
  }

  testing::TempDir dir_;  // declared first: destroyed after every store is closed
  std::map<int64_t, std::unique_ptr<std::vector<std::atomic<uint64_t>>>> generations_;
  std::map<int64_t, Open> open_;
};

// Owned by main(), so every store closes before static destruction (RocksDB's own statics may
// already be gone by then).
Stores* g_stores = nullptr;
Stores& TheStores() { return *g_stores; }

uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  return x ^ (x >> 33);
}

void BM_GetFamilyHit(benchmark::State& state) {
  TokenStore* store = TheStores().Get(state.range(0), false);
  uint64_t i = state.thread_index() * 7919;
  for (auto _ : state) {
    auto f = store->GetFamily(testing::FamilyIdFor(Mix(++i) % state.range(0)), kNow);
    if (!f.ok()) state.SkipWithError("miss on a seeded family");
  }
}

void BM_GetFamilyMiss(benchmark::State& state) {
  TokenStore* store = TheStores().Get(state.range(0), false);
  uint64_t i = 0;
  for (auto _ : state) {
    auto f = store->GetFamily(testing::FamilyIdFor((uint64_t{1} << 40) + Mix(++i) % (1 << 30)), kNow);
    benchmark::DoNotOptimize(f);
  }
}

void BM_IsJtiDeniedHit(benchmark::State& state) {
  TokenStore* store = TheStores().Get(state.range(0), false);
  uint64_t i = 0;
  for (auto _ : state) {
    auto denied = store->IsJtiDenied(JtiFor(Mix(++i) % state.range(0)), kNow);
    if (!denied.ok() || !*denied) state.SkipWithError("seeded jti not denied");
  }
}

void BM_IsJtiDeniedMiss(benchmark::State& state) {
  TokenStore* store = TheStores().Get(state.range(0), false);
  uint64_t i = 0;
  for (auto _ : state) {
    auto denied = store->IsJtiDenied(absl::StrCat("unknown-", Mix(++i)), kNow);
    benchmark::DoNotOptimize(denied);
  }
}

// Each thread rotates its own slice of families, always presenting the current generation.
void BM_Rotate(benchmark::State& state) {
  const int64_t size = state.range(0);
  const bool sync = state.range(1) != 0;
  TokenStore* store = TheStores().Get(size, sync);
  auto& generations = TheStores().Generations(size);
  const int64_t slice = size / state.threads();
  uint64_t i = 0;
  for (auto _ : state) {
    int64_t n = state.thread_index() * slice + static_cast<int64_t>(Mix(++i) % slice);
    uint64_t gen = generations[n].load();
    auto out = store->Rotate(testing::MakeRotate(testing::FamilyIdFor(n), gen, kNow,
                                                 absl::ZeroDuration(), absl::StrCat("user-", n % 100000)));
    if (!out.ok() || out->result != RotateResult::kRotated) {
      state.SkipWithError("rotate failed");
      break;
    }
    generations[n].store(gen + 1);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_DenyJti(benchmark::State& state) {
  TokenStore* store = TheStores().Get(state.range(0), state.range(1) != 0);
  static std::atomic<uint64_t> next{uint64_t{1} << 50};
  for (auto _ : state) {
    if (!store->DenyJti(absl::StrCat("new-", next++), kNow + absl::Minutes(5)).ok()) {
      state.SkipWithError("deny failed");
    }
  }
  state.SetItemsProcessed(state.iterations());
}

// Sync-off benchmarks run before sync-on ones, so each store is reopened once.
void Sizes(benchmark::internal::Benchmark* b) { b->Arg(10'000)->Arg(1'000'000); }

BENCHMARK(BM_GetFamilyHit)->Apply(Sizes);
BENCHMARK(BM_GetFamilyMiss)->Apply(Sizes);
BENCHMARK(BM_IsJtiDeniedHit)->Apply(Sizes);
BENCHMARK(BM_IsJtiDeniedMiss)->Apply(Sizes);
BENCHMARK(BM_GetFamilyHit)->Arg(1'000'000)->Threads(2)->UseRealTime();
BENCHMARK(BM_Rotate)->ArgsProduct({{10'000, 1'000'000}, {0}})->UseRealTime();
BENCHMARK(BM_Rotate)->ArgsProduct({{10'000, 1'000'000}, {0}})->Threads(2)->UseRealTime();
BENCHMARK(BM_DenyJti)->ArgsProduct({{10'000, 1'000'000}, {0}})->UseRealTime();
BENCHMARK(BM_Rotate)->ArgsProduct({{10'000, 1'000'000}, {1}})->UseRealTime();
BENCHMARK(BM_Rotate)->ArgsProduct({{10'000, 1'000'000}, {1}})->Threads(8)->UseRealTime();
BENCHMARK(BM_DenyJti)->ArgsProduct({{10'000, 1'000'000}, {1}})->UseRealTime();

}  // namespace ta::storage::bench

int main(int argc, char** argv) {
  ta::storage::bench::Stores stores;
  ta::storage::bench::g_stores = &stores;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

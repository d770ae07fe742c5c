// RevocationView at scale (issue 27 item 1): Check on a view of 10 k vs 1 M live entries (a
// token nothing revoked, the common case, and a revoked jti), Apply throughput, and the memory
// per entry: the view's own accounting (ApproximateMemoryBytes) and the process's resident
// growth while the view was built (/proc/self/statm), as counters.
//   build/test/tests/core/revocation_view_bench --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "token/revocation_view.h"

namespace ta::token {
namespace {

using Kind = RevocationEntry::Kind;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

long ResidentBytes() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return resident * sysconf(_SC_PAGESIZE);
}

std::string Raw16(std::mt19937_64& rng) {
  std::string out(16, '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}
// A jti as the server writes it: 22 characters (base64url of 16 random bytes).
std::string Jti(std::mt19937_64& rng) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out(22, 'A');
  for (char& c : out) c = kAlphabet[rng() % 64];
  return out;
}

RevocationEntry Entry(uint64_t seq, Kind kind, std::string id) {
  RevocationEntry e;
  e.seq = seq;
  e.kind = kind;
  e.id = std::move(id);
  e.revoked_at = kNow;
  e.live_until = kNow + absl::Hours(1);
  return e;
}

// A view of `n` live entries, half revoked jtis, half families; the jtis it holds.
struct Built {
  FakeClock clock{kNow};
  std::unique_ptr<RevocationView> view;
  std::vector<std::string> jtis;
  double view_bytes_per_entry = 0, rss_bytes_per_entry = 0;
};

std::unique_ptr<Built> Build(size_t n) {
  auto built = std::make_unique<Built>();
  std::mt19937_64 rng(n);
  std::vector<RevocationEntry> entries;
  entries.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (i % 2) {
      entries.push_back(Entry(i + 1, Kind::kJti, Jti(rng)));
      if (built->jtis.size() < 4096) built->jtis.push_back(entries.back().id);
    } else {
      entries.push_back(Entry(i + 1, Kind::kFamily, Raw16(rng)));
    }
  }
  const long before = ResidentBytes();
  built->view = std::make_unique<RevocationView>(false, absl::Seconds(1), &built->clock);
  for (const RevocationEntry& e : entries) built->view->Apply(e);
  built->rss_bytes_per_entry = static_cast<double>(ResidentBytes() - before) / n;
  built->view_bytes_per_entry = static_cast<double>(built->view->ApproximateMemoryBytes()) / n;
  return built;
}

void Report(benchmark::State& state, const Built& built) {
  state.counters["view_B_per_entry"] = built.view_bytes_per_entry;
  state.counters["rss_B_per_entry"] = built.rss_bytes_per_entry;
}

// Introspection's lookups for a token nothing revoked: a jti miss and a family miss.
void BM_ViewCheckNotRevoked(benchmark::State& state) {
  const std::unique_ptr<Built> built = Build(static_cast<size_t>(state.range(0)));
  std::mt19937_64 rng(99);
  std::vector<std::string> jtis, families;
  for (int i = 0; i < 4096; ++i) jtis.push_back(Jti(rng)), families.push_back(Raw16(rng));
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(built->view->Check(jtis[i % 4096], families[i % 4096], kNow));
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
  Report(state, *built);
}
BENCHMARK(BM_ViewCheckNotRevoked)->Arg(10'000)->Arg(1'000'000)->Unit(benchmark::kNanosecond);

// A revoked jti: found in the first lookup.
void BM_ViewCheckRevokedJti(benchmark::State& state) {
  const std::unique_ptr<Built> built = Build(static_cast<size_t>(state.range(0)));
  const std::string family(16, 'f');
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        built->view->Check(built->jtis[i % built->jtis.size()], family, kNow));
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ViewCheckRevokedJti)->Arg(10'000)->Arg(1'000'000)->Unit(benchmark::kNanosecond);

// Apply of new entries (a burst of revocations) into a view that grows to range(0) entries.
void BM_ViewApply(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  std::mt19937_64 rng(5);
  std::vector<RevocationEntry> entries;
  for (size_t i = 0; i < n; ++i) {
    entries.push_back(i % 2 ? Entry(i + 1, Kind::kJti, Jti(rng))
                            : Entry(i + 1, Kind::kFamily, Raw16(rng)));
  }
  FakeClock clock(kNow);
  for (auto _ : state) {
    RevocationView view(false, absl::Seconds(1), &clock);
    for (const RevocationEntry& e : entries) view.Apply(e);
    benchmark::DoNotOptimize(view.size());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(n));
}
BENCHMARK(BM_ViewApply)->Arg(10'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace ta::token

BENCHMARK_MAIN();

// ta-seed: bulk-loads a store with synthetic families and denylisted jtis, for the
// "cost does not grow with the number of records" benchmark (issue 7). Writes through the
// TokenStore interface with sync off (a bulk load, not acknowledged revocations).
// Usage: ta-seed --path=DATA/db --families=10000000 --jtis=10000000
#include <iostream>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "storage/rocksdb/rocksdb_store.h"

ABSL_FLAG(std::string, path, "", "store directory (the server's <data_dir>/db)");
ABSL_FLAG(int64_t, families, 1'000'000, "families to create");
ABSL_FLAG(int64_t, jtis, 1'000'000, "denylist entries to create");
ABSL_FLAG(int, threads, 2, "writer threads");

namespace {

std::string Id(uint64_t n, char tag) {
  std::string id(16, tag);
  for (int i = 0; i < 8; ++i) id[15 - i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return id;
}

void SeedRange(ta::storage::TokenStore* store, int64_t begin, int64_t end, bool families,
               absl::Time now) {
  for (int64_t i = begin; i < end; ++i) {
    absl::Status s;
    if (families) {
      ta::storage::FamilyRecord f;
      f.family_id = Id(i, 'F');
      f.subject = absl::StrCat("seed-user-", i % 1'000'000);
      f.client_id = "seed";
      f.audience = {"api"};
      f.scope = "read";
      f.created_at = f.rotated_at = now;
      f.expires_at = now + absl::Hours(24 * 30);
      ta::storage::RefreshRecord r;
      r.family_id = f.family_id;
      r.secret_hash = std::string(32, 'h');
      r.scope = "read";
      r.issued_at = now;
      r.expires_at = now + absl::Hours(24);
      s = store->CreateFamily(f, r, std::nullopt);
    } else {
      s = store->DenyJti(absl::StrCat("seed-jti-", i), now + absl::Hours(1));
    }
    if (!s.ok()) {
      std::cerr << "seed failed: " << s << "\n";
      std::exit(1);
    }
  }
}

void Seed(ta::storage::TokenStore* store, int64_t n, bool families, int threads) {
  absl::Time now = absl::Now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back(SeedRange, store, n * t / threads, n * (t + 1) / threads, families, now);
  }
  for (std::thread& w : workers) w.join();
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  ta::storage::RocksDbStoreOptions options;
  options.path = absl::GetFlag(FLAGS_path);
  options.sync_writes = false;
  absl::StatusOr<std::unique_ptr<ta::storage::TokenStore>> store =
      ta::storage::OpenRocksDbStore(options);
  if (!store.ok()) {
    std::cerr << "cannot open store: " << store.status() << "\n";
    return 1;
  }
  absl::Time start = absl::Now();
  Seed(store->get(), absl::GetFlag(FLAGS_families), /*families=*/true, absl::GetFlag(FLAGS_threads));
  Seed(store->get(), absl::GetFlag(FLAGS_jtis), /*families=*/false, absl::GetFlag(FLAGS_threads));
  absl::Duration seeding = absl::Now() - start;
  // Compact now, so the measured server does not share the CPU with the bulk load's
  // background compactions (a steady-state store, which is what the benchmark is about).
  if (absl::Status s = (*store)->PurgeExpired(); !s.ok()) {
    std::cerr << "compaction failed: " << s << "\n";
    return 1;
  }
  std::cout << "seeded " << absl::GetFlag(FLAGS_families) << " families and "
            << absl::GetFlag(FLAGS_jtis) << " jtis in " << seeding << ", compacted in "
            << absl::Now() - start - seeding << std::endl;
  return 0;
}

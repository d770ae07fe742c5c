// The storage conformance suite's harness (the model: Dex's storage/conformance): one
// TokenStore under test, a FakeClock, and the few things the contract tests need beyond the
// interface (a restart, physical record counts, planting an undecodable record). Each
// store kind differs only in how its harness opens the store.
//
// Contract tests are Catch2 TEMPLATE_TEST_CASEs over the kinds below, so every one runs on
// every store (test names end in " - RocksDb" / " - Postgres"):
//
//   TEMPLATE_TEST_CASE("Store: ...", "[storage]", ta::storage::testing::RocksDb,
//                      ta::storage::testing::Postgres) {
//     auto h = TestType::Make();
//     ...
//   }
//
// Each harness works on a fresh store (a temp dir; a fresh PostgreSQL database in the run's
// test cluster, tests/support/pg_cluster.h). Single-threaded use of the harness itself; the
// store may be called from many threads.
#ifndef TA_TESTS_STORAGE_STORE_HARNESS_H_
#define TA_TESTS_STORAGE_STORE_HARNESS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "storage/token_store.h"

namespace ta::storage::testing {

// What PhysicalCount counts.
enum class Records {
  kFamilies,
  kRefresh,
  kDenylist,
  kSubjects,
  kSubjectIndex,
  kRevocations,
  kProofJtis,
};

class StoreHarness {
 public:
  virtual ~StoreHarness() = default;

  TokenStore& store() { return *store_; }
  FakeClock& clock() { return clock_; }
  absl::Time Now() const { return clock_.Now(); }

  // Closes the store and opens it again on the same data, as a restarted server would.
  virtual void Reopen() = 0;
  // Records physically present in the engine, expired or not (an engine-level count).
  virtual size_t PhysicalCount(Records records) = 0;
  // The denylist as the engine holds it, expired rows included: jti -> its expires_at.
  virtual std::map<std::string, absl::Time> DenylistRows() = 0;
  // Overwrites a stored family's encoded data with bytes no decoder accepts.
  virtual void CorruptFamily(const std::string& family_id) = 0;
  // A second store on the same data, as another replica would open it (same clock); nullptr
  // for an engine only one process opens (RocksDB).
  virtual std::unique_ptr<TokenStore> OpenReplica() { return nullptr; }

  // Creates family FamilyIdFor(n) of `subject` at Now() with its generation-0 record.
  FamilyRecord Create(uint64_t n, absl::string_view subject = "alice");

 protected:
  FakeClock clock_;
  std::unique_ptr<TokenStore> store_;
};

// The store kinds, as template arguments.
struct RocksDb {
  static std::unique_ptr<StoreHarness> Make();
};
struct Postgres {
  static std::unique_ptr<StoreHarness> Make();
};

// For test files inside namespace ta::storage (test names end in " - testing::Postgres").
#define TA_EVERY_STORE testing::RocksDb, testing::Postgres

}  // namespace ta::storage::testing

#endif  // TA_TESTS_STORAGE_STORE_HARNESS_H_

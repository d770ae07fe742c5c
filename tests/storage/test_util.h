// Helpers shared by the storage tests: a fresh temp dir per test, record builders, and RawDb,
// direct RocksDB access for checks the TokenStore interface deliberately does not offer
// (physical record counts, planting corrupt values). Single-threaded use only.
#ifndef TA_TESTS_STORAGE_TEST_UTIL_H_
#define TA_TESTS_STORAGE_TEST_UTIL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "storage/codec.h"
#include "storage/token_store.h"
#include "tests/support/temp_dir.h"

namespace ta::storage::testing {

using TempDir = ::ta::testing::TempDir;

// 16 bytes derived from `n`: distinct n give distinct ids.
std::string FamilyIdFor(uint64_t n);

// A live family created at `now`, expiring in 30 days, generation 0.
FamilyRecord MakeFamily(absl::string_view id, absl::string_view subject, absl::Time now);
// The family's refresh record of `generation`, idle-expiring in 1 day.
RefreshRecord MakeRefresh(absl::string_view id, uint64_t generation, absl::Time now);
// A RotateRequest presenting `generation` with a prepared successor; `subject` must be the
// family's (MakeFamily's callers mostly use "alice").
RotateRequest MakeRotate(absl::string_view id, uint64_t generation, absl::Time now,
                         absl::Duration grace = absl::ZeroDuration(),
                         absl::string_view subject = "alice");

// A RevokeSubject for the store: cutoff `not_before` (nullopt: now), optional block.
SubjectUpdate MakeSubjectUpdate(absl::string_view subject, absl::Time now,
                                std::optional<absl::Time> not_before = std::nullopt,
                                std::optional<absl::Time> block_until = std::nullopt);
ListFamiliesQuery MakeQuery(absl::string_view subject, absl::Time now,
                            bool include_revoked = false);

// Opens the database directly with RocksDB (the store must be closed).
class RawDb {
 public:
  static std::unique_ptr<RawDb> Open(const std::string& path);
  virtual ~RawDb() = default;
  virtual void Put(Cf cf, const std::string& key, const std::string& value) = 0;
  virtual void Delete(Cf cf, const std::string& key) = 0;
  virtual std::optional<std::string> Get(Cf cf, const std::string& key) = 0;
  // Exact number of keys, by iteration.
  virtual size_t Count(Cf cf) = 0;
  // Every key and value, in key order.
  virtual std::vector<std::pair<std::string, std::string>> Scan(Cf cf) = 0;
};

}  // namespace ta::storage::testing

#endif  // TA_TESTS_STORAGE_TEST_UTIL_H_

// RocksDB backups (TokenStore::CreateBackup, RestoreRocksDbBackup): a restored copy holds
// what was written before the backup, a second backup into the same directory copies only
// what changed, and a restore never writes over a used or live directory.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "base/clock.h"
#include "base/error.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "tests/storage/test_util.h"

namespace ta::storage {
namespace {

using testing::FamilyIdFor;
using testing::MakeFamily;
using testing::MakeRefresh;
using testing::TempDir;

struct Fixture {
  TempDir dir;
  FakeClock clock;
  std::unique_ptr<TokenStore> store = Open(dir.Sub("db"));

  std::unique_ptr<TokenStore> Open(const std::string& path) {
    RocksDbStoreOptions o;
    o.path = path;
    o.clock = &clock;
    o.block_cache_bytes = 8 << 20;
    absl::StatusOr<std::unique_ptr<TokenStore>> opened = OpenRocksDbStore(o);
    INFO(opened.status().ToString());
    REQUIRE(opened.ok());
    return *std::move(opened);
  }
  void Create(uint64_t n) {
    FamilyRecord f = MakeFamily(FamilyIdFor(n), "alice", clock.Now());
    REQUIRE(store->CreateFamily(f, MakeRefresh(f.family_id, 0, clock.Now()), std::nullopt).ok());
  }
  BackupResult Backup() {
    absl::StatusOr<BackupResult> made = store->CreateBackup({dir.Sub("backup")});
    INFO(made.status().ToString());
    REQUIRE(made.ok());
    return *made;
  }
};

TEST_CASE("RocksDbBackup: a restored copy holds every record written before the backup",
          "[storage][backup]") {
  Fixture fx;
  for (uint64_t n = 1; n <= 20; ++n) fx.Create(n);
  REQUIRE(fx.store->RevokeFamily(FamilyIdFor(3), "logout", "ops", fx.clock.Now()).ok());
  REQUIRE(fx.store->DenyJti("jti-1", fx.clock.Now() + absl::Minutes(5)).ok());
  BackupResult made = fx.Backup();
  CHECK(made.backup_id == 1);
  CHECK(made.file_count > 0);
  CHECK(made.new_files == made.file_count);
  CHECK(made.engine_dir == fx.dir.Sub("backup/rocksdb"));
  fx.Create(21);  // after the backup: not in it

  absl::StatusOr<RestoredBackup> restored =
      RestoreRocksDbBackup(fx.dir.Sub("backup"), fx.dir.Sub("copy"));
  INFO(restored.status().ToString());
  REQUIRE(restored.ok());
  CHECK(restored->backup_id == 1);
  CHECK(restored->file_count == made.file_count);
  std::unique_ptr<TokenStore> copy = fx.Open(fx.dir.Sub("copy"));
  for (uint64_t n = 1; n <= 20; ++n) CHECK(copy->GetFamily(FamilyIdFor(n), fx.clock.Now()).ok());
  CHECK(copy->GetFamily(FamilyIdFor(3), fx.clock.Now())->revoked);
  CHECK(*copy->IsJtiDenied("jti-1", fx.clock.Now()));
  CHECK(absl::IsNotFound(copy->GetFamily(FamilyIdFor(21), fx.clock.Now()).status()));
  // The revocation log came along: a server on the copy rebuilds its view from it.
  CHECK(copy->ReadRevocations(0, fx.clock.Now(), 100)->size() == 2);
}

TEST_CASE("RocksDbBackup: a second backup copies only the new files", "[storage][backup]") {
  Fixture fx;
  for (uint64_t n = 1; n <= 50; ++n) fx.Create(n);
  BackupResult first = fx.Backup();
  fx.Create(51);
  BackupResult second = fx.Backup();
  CHECK(second.backup_id == 2);
  // Every table file of the first backup is still live and shared, not copied again; what is
  // new is the table flushed for family 51 and the backup's own MANIFEST, CURRENT, OPTIONS.
  INFO("first " << first.file_count << " files, second " << second.file_count << " files, "
                << second.new_files << " new");
  CHECK(second.file_count > first.file_count);
  CHECK(second.new_files < second.file_count);
  CHECK(second.file_count - second.new_files >= first.file_count - 3);
  CHECK(second.new_bytes < second.size_bytes);
  // Nothing changed: only the three private files of a backup.
  BackupResult third = fx.Backup();
  CHECK(third.new_files == 3);
  CHECK(third.backups_kept == 3);
}

TEST_CASE("RocksDbBackup: keep_last deletes older backups and the kept one still restores",
          "[storage][backup]") {
  Fixture fx;
  for (uint64_t n = 1; n <= 3; ++n) {
    fx.Create(n);
    fx.Backup();
  }
  fx.Create(4);
  absl::StatusOr<BackupResult> last = fx.store->CreateBackup({fx.dir.Sub("backup"), 1});
  REQUIRE(last.ok());
  CHECK(last->backup_id == 4);
  CHECK(last->backups_kept == 1);
  CHECK_FALSE(std::filesystem::exists(fx.dir.Sub("backup/rocksdb/meta/1")));
  REQUIRE(RestoreRocksDbBackup(fx.dir.Sub("backup"), fx.dir.Sub("copy")).ok());
  std::unique_ptr<TokenStore> copy = fx.Open(fx.dir.Sub("copy"));
  for (uint64_t n = 1; n <= 4; ++n) CHECK(copy->GetFamily(FamilyIdFor(n), fx.clock.Now()).ok());
}

TEST_CASE("RocksDbBackup: the directory must be absolute and outside the store",
          "[storage][backup]") {
  Fixture fx;
  for (const std::string& dir : {std::string("relative/dir"), std::string(""),
                                 fx.dir.Sub("db"), fx.dir.Sub("db/backups"), fx.dir.path()}) {
    absl::StatusOr<BackupResult> made = fx.store->CreateBackup({dir});
    INFO(dir << ": " << made.status());
    CHECK(made.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(ReasonOf(made.status()) == "invalid_argument:backup_dir");
  }
  absl::StatusOr<BackupResult> orphan = fx.store->CreateBackup({fx.dir.Sub("no/such/parent")});
  CHECK(ReasonOf(orphan.status()) == "backup_failed");
  CHECK(absl::StrContains(orphan.status().message(), "parent must exist"));
}

TEST_CASE("RocksDbBackup: restore refuses a used directory, a live one, and no backup",
          "[storage][backup]") {
  Fixture fx;
  fx.Create(1);
  fx.Backup();
  // Live: the fixture's store holds the LOCK of its directory.
  CHECK(RocksDbPathInUse(fx.dir.Sub("db")));
  absl::StatusOr<RestoredBackup> live = RestoreRocksDbBackup(fx.dir.Sub("backup"), fx.dir.Sub("db"));
  CHECK(ReasonOf(live.status()) == "data_dir_in_use");
  std::filesystem::create_directory(fx.dir.Sub("used"));
  std::ofstream(fx.dir.Sub("used/notes.txt")) << "keep me";
  absl::StatusOr<RestoredBackup> used = RestoreRocksDbBackup(fx.dir.Sub("backup"), fx.dir.Sub("used"));
  CHECK(ReasonOf(used.status()) == "data_dir_not_empty");
  CHECK(absl::StrContains(used.status().message(), fx.dir.Sub("used")));
  CHECK(std::filesystem::exists(fx.dir.Sub("used/notes.txt")));
  absl::StatusOr<RestoredBackup> none = RestoreRocksDbBackup(fx.dir.Sub("nothing"), fx.dir.Sub("new"));
  CHECK(ReasonOf(none.status()) == "backup_not_found");
  fx.store.reset();
  CHECK_FALSE(RocksDbPathInUse(fx.dir.Sub("db")));
}

TEST_CASE("RocksDbBackup: a second backup while one runs is refused", "[storage][backup]") {
  // Two threads racing CreateBackup: each call either makes a backup or is refused with
  // backup_in_progress, never anything else, and the directory stays restorable.
  Fixture fx;
  for (uint64_t n = 1; n <= 20; ++n) fx.Create(n);
  absl::Status results[2];
  std::thread racer([&] { results[0] = fx.store->CreateBackup({fx.dir.Sub("backup")}).status(); });
  results[1] = fx.store->CreateBackup({fx.dir.Sub("backup")}).status();
  racer.join();
  for (const absl::Status& s : results) {
    INFO(s);
    CHECK((s.ok() || ReasonOf(s) == "backup_in_progress"));
  }
  CHECK(RestoreRocksDbBackup(fx.dir.Sub("backup"), fx.dir.Sub("copy")).ok());
}

}  // namespace
}  // namespace ta::storage

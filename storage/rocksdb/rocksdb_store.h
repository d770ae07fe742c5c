// The RocksDB implementation of TokenStore (DESIGN §6).
//
// One database, one column family per record kind (registry in storage/codec.h). Writes that
// acknowledge a rotation or revocation are one WriteBatch with the WAL fsynced before the
// call returns; concurrent writers share the fsync through RocksDB's group commit.
// Read-check-write operations (Rotate, RevokeFamily, CreateFamily) are serialised per family
// by a striped mutex; plain reads take no lock. Expired records are hidden by every reader at
// once and physically dropped later by a compaction filter (plus periodic compaction, so
// cold files are visited too).
//
// RocksDB headers stay inside storage/rocksdb_store.cc; nothing here exposes them.
//
// Thread-safety: the returned store is thread-safe. Only one process may open a path at a
// time (RocksDB's LOCK file); a second open fails with UNAVAILABLE.
#ifndef TA_STORAGE_ROCKSDB_ROCKSDB_STORE_H_
#define TA_STORAGE_ROCKSDB_ROCKSDB_STORE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "storage/token_store.h"

namespace ta::storage {

struct RocksDbStoreOptions {
  // Directory of the database. Required; created if missing (its parent must exist).
  std::string path;

  // LRU block cache shared by every column family. Default 256 MiB. Bloom filters and
  // index blocks are kept outside it (always in memory), so a lookup miss never reads disk;
  // raise this when the hot working set of records exceeds it.
  size_t block_cache_bytes = 256 << 20;

  // Default true: fsync the WAL before acknowledging any write (revocations, rotations,
  // new families). false only for benchmarks and bulk seeding: a machine crash may then lose
  // acknowledged writes (a process crash does not). RecordProofJti (a bound Introspect's
  // replay record) is never synced, whatever this says (storage/token_store.h).
  bool sync_writes = true;

  // Default true: LZ4-compress SST blocks when this RocksDB build supports LZ4 (otherwise
  // none). Turn off only to trade disk for a little CPU.
  bool compression = true;

  // Default 24 h. A family record (and its subject-index entry) outlives its expires_at this
  // long, so "family_expired" can still be told apart from an unknown family.
  absl::Duration family_retention = absl::Hours(24);

  // Default 24 h. A refresh record outlives its own expires_at this long, so
  // "refresh_token_expired" can still be told apart from an unknown token.
  absl::Duration refresh_retention = absl::Hours(24);

  // Default 1 day. SST files older than this are rewritten, so the expiry filter also visits
  // files no ordinary compaction touches. 0 disables (expired records then linger on disk
  // until compaction reaches them; readers hide them either way).
  uint64_t periodic_compaction_seconds = 24 * 3600;

  // Default the wall clock. Read by the compaction filter to decide what has expired; tests
  // inject a ta::FakeClock. Must outlive the store.
  const ta::Clock* clock = ta::Clock::Real();

  // Default 1 min. The compaction filter drops a record (denylisted jtis and revocation-log
  // entries included) only once it has been dead this long by `clock`. One node has one
  // clock, so no other clock's offset applies here; the margin is kept anyway so the rule is
  // the same on both stores and a clock stepped back (NTP) after a compaction still finds
  // every revocation it needs. Must be >= 0.
  absl::Duration purge_margin = absl::Minutes(1);

  // Default 1024. Number of mutexes serialising per-family read-check-write; more stripes,
  // fewer unrelated families waiting on each other. Must be >= 1.
  int lock_stripes = 1024;
};

// Opens (creating if missing) the store at options.path. Fails with INVALID_ARGUMENT
// (reason "invalid_argument:<field>") for bad options, FAILED_PRECONDITION (reason
// "store_format_too_new") when the database was written by a newer format than this binary
// knows (nothing is written then), UNAVAILABLE ("store_unavailable") for I/O errors or a
// path locked by another process, DATA_LOSS ("store_corrupt") for a corrupt database.
absl::StatusOr<std::unique_ptr<TokenStore>> OpenRocksDbStore(const RocksDbStoreOptions& options);

// Backups (TokenStore::CreateBackup on this store): RocksDB's BackupEngine in
// <BackupRequest::dir>/rocksdb, incremental (table files are shared between backups, named by
// their checksum), every file checksummed and verified after the copy. The memtables are
// flushed first, so every write acknowledged before the backup began is in a table file of
// the backup; the live WAL is copied too, with what was written while the backup ran.

// The engine directory inside a backup directory made by CreateBackup.
std::string RocksDbBackupEngineDir(const std::string& backup_dir);

// What RestoreRocksDbBackup restored.
struct RestoredBackup {
  uint32_t backup_id = 0;
  absl::Time created_at;
  uint64_t size_bytes = 0;
  uint32_t file_count = 0;
};

// Restores the latest backup of `backup_dir` (a directory CreateBackup wrote) into the new
// database directory `db_path`, after verifying the backup's checksums. `db_path` must not
// exist or be empty (FAILED_PRECONDITION "data_dir_not_empty"; "data_dir_in_use" when a
// running store holds its LOCK). FAILED_PRECONDITION "backup_not_found" when `backup_dir`
// holds no backup, DATA_LOSS "backup_corrupt" when it does not verify, UNAVAILABLE
// "store_unavailable" for I/O errors.
absl::StatusOr<RestoredBackup> RestoreRocksDbBackup(const std::string& backup_dir,
                                                    const std::string& db_path);

// Whether a store is open on `db_path` (in this or another process): its LOCK file exists
// and cannot be locked. false for a path without a LOCK file.
bool RocksDbPathInUse(const std::string& db_path);

}  // namespace ta::storage

#endif  // TA_STORAGE_ROCKSDB_ROCKSDB_STORE_H_

// Restoring a backup made by TokenAdmin/CreateBackup into a new data directory, for
// `token-authority --restore_from=BACKUP_DIR --data_dir=NEW` (main.cc), which restores and
// exits, and `tokenctl restore`, which runs that.
//
// The latest backup of BACKUP_DIR is verified against its checksums, restored into
// <data_dir>/db, opened once to prove the store opens cleanly, and its key files copied into
// key_dir (files 0600, directory 0700) -- unless the backup has none because the server kept
// a shared ring (--key_encryption_key_file): that ring is in the restored store, sealed, and
// the server started on it needs the same KEK file. A live or used directory is never overwritten: the
// data directory (and a key_dir outside it) must not exist or be empty, and one whose store
// is held open by a running server is named as such. On failure, what the restore created is
// removed again.
//
// Thread-safety: a plain function; not meant to run twice at once on one directory.
#ifndef TA_SERVER_RESTORE_H_
#define TA_SERVER_RESTORE_H_

#include <string>

#include "absl/status/statusor.h"
#include "storage/rocksdb/rocksdb_store.h"

namespace ta {

struct RestoreOptions {
  // A directory CreateBackup wrote (<backup_dir>/rocksdb and <backup_dir>/keys). Required.
  std::string backup_dir;
  // The new data directory (--data_dir): must not exist, or be empty. Required. Its parent
  // must exist.
  std::string data_dir;
  // Where the keys go (--key_dir). Default <data_dir>/keys; when outside data_dir it must
  // not exist, or be empty, too.
  std::string key_dir;
};

struct RestoreReport {
  storage::RestoredBackup store;
  std::string db_dir;   // <data_dir>/db
  // Where the key ring went; empty when the backup holds no key files (a server with a
  // shared ring, --key_encryption_key_file: the ring is in the store, sealed).
  std::string key_dir;
  int key_files = 0;
};

// Errors (FAILED_PRECONDITION unless said): "invalid_argument:restore_from" /
// "invalid_argument:data_dir" (INVALID_ARGUMENT) for a missing path; "data_dir_in_use" (a
// running server holds the store in data_dir), "data_dir_not_empty", "key_dir_not_empty",
// "backup_not_found"; DATA_LOSS "backup_corrupt"; UNAVAILABLE "store_unavailable" for I/O.
absl::StatusOr<RestoreReport> RestoreBackup(RestoreOptions options);

// Whether a failed restore was refused (exit 2: nothing was touched) rather than failed.
bool RestoreRefused(const absl::Status& status);

// The report for people (several lines) and as one JSON object on one line, its members
// named like tokenctl --json's (backupId, createdAt, sizeBytes, fileCount, dbDir, keyDir,
// keyFiles).
std::string RestoreReportText(const RestoreReport& report, const RestoreOptions& options);
std::string RestoreReportJson(const RestoreReport& report);

}  // namespace ta

#endif  // TA_SERVER_RESTORE_H_

// RocksDbStore: online backup with RocksDB's BackupEngine, and restoring one into a new
// directory (rocksdb_store.h).
#include <errno.h>
#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/status_macros.h"
#include "rocksdb/env.h"
#include "rocksdb/utilities/backup_engine.h"
#include "storage/rocksdb/store.h"

namespace ta::storage {
namespace rocksdb_store {
namespace {

namespace fs = std::filesystem;

absl::Status BackupFailed(absl::string_view what, const rocksdb::Status& s) {
  if (s.IsCorruption()) return FromRocks(s, what);  // the store's own files: store_corrupt
  return ta::Error(absl::StatusCode::kFailedPrecondition, "backup_failed",
                   absl::StrCat("backup: ", what, ": ", s.ToString()));
}

absl::Status BadDir(absl::string_view why) { return ta::InvalidField("backup_dir", why); }

// `path` made absolute and normal, following the symlinks that exist.
std::string Resolved(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
  return (ec ? fs::path(path).lexically_normal() : p).string();
}

bool Inside(const std::string& inner, const std::string& outer) {
  return inner == outer || absl::StartsWith(inner, absl::StrCat(outer, "/")) || outer == "/";
}

// The backup directory made (0700) when absent; its parent must exist.
absl::Status MakeBackupDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) == 0) return absl::OkStatus();
  const int error = errno;
  struct stat st;
  if (error == EEXIST && ::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return absl::OkStatus();
  }
  return ta::Error(absl::StatusCode::kFailedPrecondition, "backup_failed",
                   absl::StrCat("backup: cannot create the backup directory ", dir, ": ",
                                error == EEXIST ? "exists and is not a directory"
                                                : std::generic_category().message(error),
                                error == ENOENT ? " (its parent must exist)" : ""));
}

rocksdb::BackupEngineOptions EngineOptions(const std::string& engine_dir, rocksdb::Logger* log) {
  rocksdb::BackupEngineOptions o(engine_dir);
  o.share_table_files = true;          // incremental: a table file is copied once
  o.share_files_with_checksum = true;  // ... and named by its checksum, so never confused
  o.sync = true;                       // a backup that returned survives a power cut
  o.backup_log_files = true;           // the live WAL too (writes made during the backup)
  o.max_background_operations = 2;
  o.info_log = log;
  return o;
}

// Every file of every backup in the engine, by its path inside the engine directory
// ("shared_checksum/<number>_s<checksum>_<size>.sst", "private/<id>/MANIFEST-...").
std::set<std::string> FilesOf(const std::vector<rocksdb::BackupInfo>& backups) {
  std::set<std::string> files;
  for (const rocksdb::BackupInfo& b : backups) {
    for (const rocksdb::BackupFileInfo& f : b.file_details) {
      files.insert(f.relative_filename);
    }
  }
  return files;
}

bool IsEmptyOrMissing(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return true;
  return fs::is_directory(dir, ec) && fs::is_empty(dir, ec) && !ec;
}

}  // namespace

absl::StatusOr<BackupResult> RocksDbStore::CreateBackup(const BackupRequest& request) {
  if (request.dir.empty() || request.dir[0] != '/') {
    return BadDir("the backup directory must be an absolute path on the server's machine");
  }
  if (absl::StrContains(request.dir, '\0')) return BadDir("the backup directory has a NUL byte");
  const std::string dir = Resolved(request.dir), store = Resolved(options_.path);
  if (Inside(dir, store) || Inside(store, dir)) {
    return BadDir(absl::StrCat("the backup directory ", request.dir,
                               " must be outside the store's directory ", options_.path));
  }
  if (!backup_mu_.TryLock()) {
    return ta::Error(absl::StatusCode::kAborted, "backup_in_progress",
                     "another backup of this store is running; try again when it has finished");
  }
  absl::Cleanup unlock = [this] { backup_mu_.Unlock(); };
  RETURN_IF_ERROR(MakeBackupDir(request.dir));

  BackupResult result;
  result.engine_dir = RocksDbBackupEngineDir(request.dir);
  rocksdb::BackupEngine* raw = nullptr;
  rocksdb::IOStatus s = rocksdb::BackupEngine::Open(
      db_->GetEnv(), EngineOptions(result.engine_dir, db_->GetDBOptions().info_log.get()), &raw);
  if (!s.ok()) return BackupFailed(absl::StrCat("open ", result.engine_dir), s);
  std::unique_ptr<rocksdb::BackupEngine> engine(raw);
  std::vector<rocksdb::BackupInfo> earlier;
  engine->GetBackupInfo(&earlier, /*include_file_details=*/true);
  const std::set<std::string> had = FilesOf(earlier);

  rocksdb::CreateBackupOptions create;
  // Every acknowledged write is in a table file of the backup, whatever the WAL holds.
  create.flush_before_backup = true;
  rocksdb::BackupID id = 0;
  s = engine->CreateNewBackupWithMetadata(
      create, db_.get(), absl::StrCat("token-authority store format ", kStoreFormatVersion), &id);
  if (!s.ok()) {
    engine->GarbageCollect().PermitUncheckedError();  // the partial copy
    return BackupFailed("copy", s);
  }
  s = engine->VerifyBackup(id, /*verify_with_checksum=*/true);
  if (!s.ok()) {
    engine->DeleteBackup(id).PermitUncheckedError();
    return ta::Error(absl::StatusCode::kDataLoss, "backup_corrupt",
                     absl::StrCat("backup: the copy did not verify (deleted): ", s.ToString()));
  }
  if (request.keep_last > 0) {
    s = engine->PurgeOldBackups(request.keep_last);
    if (!s.ok()) {
      return BackupFailed(absl::StrCat("backup ", id, " was made and verified, but deleting the "
                                       "older ones (keep_last) failed"),
                          s);
    }
  }
  std::vector<rocksdb::BackupInfo> kept;
  engine->GetBackupInfo(&kept);
  result.backups_kept = static_cast<uint32_t>(kept.size());
  rocksdb::BackupInfo info;
  rocksdb::Status got = engine->GetBackupInfo(id, &info, /*include_file_details=*/true);
  if (!got.ok()) return BackupFailed("read the new backup's details", got);
  result.backup_id = id;
  result.created_at = absl::FromUnixSeconds(info.timestamp);
  result.size_bytes = info.size;
  result.file_count = info.number_files;
  for (const rocksdb::BackupFileInfo& f : info.file_details) {
    if (had.count(f.relative_filename) != 0) continue;
    ++result.new_files;
    result.new_bytes += f.size;
  }
  return result;
}

}  // namespace rocksdb_store

std::string RocksDbBackupEngineDir(const std::string& backup_dir) {
  return absl::StrCat(backup_dir, "/rocksdb");
}

bool RocksDbPathInUse(const std::string& db_path) {
  rocksdb::Env* env = rocksdb::Env::Default();
  const std::string lock_path = db_path + "/LOCK";
  if (!env->FileExists(lock_path).ok()) return false;
  rocksdb::FileLock* lock = nullptr;
  if (!env->LockFile(lock_path, &lock).ok()) return true;
  env->UnlockFile(lock).PermitUncheckedError();
  return false;
}

absl::StatusOr<RestoredBackup> RestoreRocksDbBackup(const std::string& backup_dir,
                                                    const std::string& db_path) {
  using rocksdb_store::FromRocks;
  if (RocksDbPathInUse(db_path)) {
    return ta::Error(absl::StatusCode::kFailedPrecondition, "data_dir_in_use",
                     absl::StrCat(db_path, " is in use by a running server (its LOCK is held)"));
  }
  if (!rocksdb_store::IsEmptyOrMissing(db_path)) {
    return ta::Error(absl::StatusCode::kFailedPrecondition, "data_dir_not_empty",
                     absl::StrCat(db_path, " exists and is not empty; restore into a new one"));
  }
  const std::string engine_dir = RocksDbBackupEngineDir(backup_dir);
  rocksdb::Env* env = rocksdb::Env::Default();
  auto not_found = [&] {
    return ta::Error(absl::StatusCode::kFailedPrecondition, "backup_not_found",
                     absl::StrCat(backup_dir, " holds no backup (no ", engine_dir, "/meta)"));
  };
  if (!env->FileExists(engine_dir + "/meta").ok()) return not_found();
  rocksdb::BackupEngineReadOnly* raw = nullptr;
  rocksdb::IOStatus s = rocksdb::BackupEngineReadOnly::Open(
      env, rocksdb_store::EngineOptions(engine_dir, nullptr), &raw);
  if (!s.ok()) return FromRocks(s, absl::StrCat("open the backup ", engine_dir));
  std::unique_ptr<rocksdb::BackupEngineReadOnly> engine(raw);
  rocksdb::BackupInfo info;
  if (!engine->GetLatestBackupInfo(&info).ok()) return not_found();
  s = engine->VerifyBackup(info.backup_id, /*verify_with_checksum=*/true);
  if (!s.ok()) {
    return ta::Error(absl::StatusCode::kDataLoss, "backup_corrupt",
                     absl::StrCat("backup ", info.backup_id, " in ", backup_dir,
                                  " does not verify: ", s.ToString()));
  }
  s = engine->RestoreDBFromBackup(rocksdb::RestoreOptions(), info.backup_id, db_path, db_path);
  if (!s.ok()) return FromRocks(s, absl::StrCat("restore into ", db_path));
  return RestoredBackup{info.backup_id, absl::FromUnixSeconds(info.timestamp), info.size,
                        info.number_files};
}

}  // namespace ta::storage

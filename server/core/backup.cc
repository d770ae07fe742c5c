// Online backup (DESIGN §6 storage, issue 16): the store's copy, then the key ring's files
// beside it, so that a restored directory verifies every token the copied store knows.
#include <filesystem>
#include <system_error>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/base/error.h"
#include "server/base/status_macros.h"
#include "server/core/authority.h"

namespace ta::core {
namespace {

constexpr size_t kMaxPathBytes = 4096;

absl::Status BadDir(absl::string_view why) { return InvalidField("backup_dir", why); }

std::string Resolved(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::weakly_canonical(path, ec);
  return (ec ? std::filesystem::path(path).lexically_normal() : p).string();
}

// `inner` is `outer` or below it.
bool Within(const std::string& inner, const std::string& outer) {
  return inner == outer || outer == "/" || absl::StartsWith(inner, absl::StrCat(outer, "/"));
}

absl::Status CheckBackupDir(absl::string_view dir, const std::string& key_dir) {
  if (dir.empty()) return BadDir("backup_dir is required");
  if (dir.size() > kMaxPathBytes) return BadDir("backup_dir is longer than 4096 bytes");
  if (absl::StrContains(dir, '\0')) return BadDir("backup_dir contains a NUL byte");
  if (dir[0] != '/') {
    return BadDir("backup_dir must be an absolute path (it names a directory on the server's "
                  "machine)");
  }
  const std::string backup = Resolved(std::string(dir)), keys = Resolved(key_dir);
  if (Within(backup, keys) || Within(keys, backup)) {
    return BadDir(absl::StrCat("backup_dir ", dir, " overlaps the key directory ", key_dir));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<BackupReport> TokenAuthority::CreateBackup(absl::string_view backup_dir,
                                                          uint32_t keep_last,
                                                          const Caller& caller) {
  absl::StatusOr<BackupReport> report = Backup(backup_dir, keep_last);
  AuditEvent event{.action = "admin.backup", .rpc = "CreateBackup"};
  event.note = std::string(backup_dir.substr(0, 256));  // where the copy (with keys) went
  Audit(std::move(event), report.status(), caller);
  return report;
}

absl::StatusOr<BackupReport> TokenAuthority::Backup(absl::string_view backup_dir,
                                                    uint32_t keep_last) {
  RETURN_IF_ERROR(CheckBackupDir(backup_dir, keys_->key_dir()));
  if (!backup_mu_.TryLock()) {
    return Error(absl::StatusCode::kAborted, "backup_in_progress",
                 "another backup is running; try again when it has finished");
  }
  absl::Cleanup unlock = [this] { backup_mu_.Unlock(); };
  const absl::Time start = absl::Now();
  BackupReport report;
  report.backup_dir = std::string(backup_dir);
  // The store first: a store that cannot make backups (PostgreSQL) refuses before any key
  // is written anywhere. A shared ring is one of the store's records, sealed: the copy has
  // it. Otherwise the key directory's files: every key that signed an access token the copy's
  // sessions may still hold is in the ring now (keys leave it only past their retire window,
  // when their tokens have long expired); refresh tokens derive from refresh.secret, which
  // never changes.
  ASSIGN_OR_RETURN(report.store,
                   store_->CreateBackup(storage::BackupRequest{report.backup_dir, keep_last}));
  if (keys_->shared()) {
    report.keys_sealed_in_store = true;
    report.took = absl::Now() - start;
    return report;
  }
  report.key_dir = absl::StrCat(report.backup_dir, "/keys");
  absl::StatusOr<int> copied = keys_->ExportFiles(report.key_dir);
  if (!copied.ok()) {
    return Error(absl::StatusCode::kFailedPrecondition, "backup_failed",
                 absl::StrCat("backup: the store was copied (backup ", report.store.backup_id,
                              ") but the key ring could not be copied to ", report.key_dir,
                              ", which may now be older than the store's copy: do not restore "
                              "from this directory before a backup succeeds: ",
                              copied.status().message()));
  }
  report.key_files = *copied;
  report.took = absl::Now() - start;
  return report;
}

}  // namespace ta::core

// Online backup (DESIGN §6 storage, issue 16): the store's copy, then the key ring's files
// beside it, so that a restored directory verifies every token the copied store knows.
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "base/status_macros.h"
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

// Issue 22 #7: a backup into another server's data directory replaced its key files. So a
// backup goes only into a new or empty directory, or one an earlier backup made: that one
// holds this marker (or, made before the marker, only "rocksdb" with its "meta" and "keys").
constexpr char kMarkerFile[] = "TOKEN-AUTHORITY-BACKUP";
constexpr absl::string_view kMarkerText =
    "token-authority backup directory (format 1), made by TokenAdmin/CreateBackup.\n"
    "Restore with: tokenctl restore THIS_DIR NEW_DATA_DIR\n";

enum class Target { kNew, kEmpty, kOurs };

absl::Status NotABackup(absl::string_view dir, absl::string_view why) {
  return Error(absl::StatusCode::kFailedPrecondition, "backup_dir_not_a_backup",
               absl::StrCat("backup_dir ", dir, " ", why,
                            ": nothing was written. Give a new or empty directory, or one an "
                            "earlier backup made (it holds ",
                            kMarkerFile, ")"));
}

bool IsOurMarker(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > 4096) return false;
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  char buffer[64] = {};
  const ssize_t n = ::read(fd, buffer, sizeof(buffer));
  ::close(fd);
  return n > 0 && absl::StartsWith(absl::string_view(buffer, static_cast<size_t>(n)),
                                   kMarkerText.substr(0, 32));
}

absl::StatusOr<Target> Classify(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status status = fs::symlink_status(dir, ec);
  if (status.type() == fs::file_type::not_found) return Target::kNew;
  if (ec) return NotABackup(dir, absl::StrCat("cannot be read (", ec.message(), ")"));
  if (!fs::is_directory(fs::status(dir, ec))) return NotABackup(dir, "is not a directory");
  std::vector<std::string> names;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  if (ec) return NotABackup(dir, absl::StrCat("cannot be listed (", ec.message(), ")"));
  if (names.empty()) return Target::kEmpty;
  if (IsOurMarker(absl::StrCat(dir, "/", kMarkerFile))) return Target::kOurs;
  const bool legacy = fs::is_directory(absl::StrCat(dir, "/rocksdb/meta"), ec) &&
                      std::all_of(names.begin(), names.end(), [](const std::string& n) {
                        return n == "rocksdb" || n == "keys";
                      });
  if (legacy) return Target::kOurs;
  return NotABackup(dir, "exists, is not empty and is not a backup directory made by CreateBackup");
}

// Creates `dir` (0700) when new and writes the marker (0600, never over an existing file).
absl::Status Claim(const std::string& dir, Target target) {
  if (target == Target::kNew && ::mkdir(dir.c_str(), 0700) != 0) {
    const int error = errno;
    return Error(
        absl::StatusCode::kFailedPrecondition, "backup_failed",
        absl::StrCat("backup: cannot create the backup directory ", dir, ": ", std::strerror(error),
                     error == ENOENT ? " (its parent must exist)" : ""));
  }
  if (target == Target::kOurs && IsOurMarker(absl::StrCat(dir, "/", kMarkerFile))) {
    return absl::OkStatus();
  }
  const std::string path = absl::StrCat(dir, "/", kMarkerFile);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  bool ok = fd >= 0;
  if (ok) {
    ok = ::write(fd, kMarkerText.data(), kMarkerText.size()) ==
             static_cast<ssize_t>(kMarkerText.size()) &&
         ::fsync(fd) == 0;
    ::close(fd);
  }
  if (!ok) {
    return Error(absl::StatusCode::kFailedPrecondition, "backup_failed",
                 absl::StrCat("backup: cannot write ", path, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

// Undoes Claim after the store refused or failed: what this call created goes again.
void Unclaim(const std::string& dir, Target target) {
  if (target == Target::kOurs) return;
  ::unlink(absl::StrCat(dir, "/", kMarkerFile).c_str());
  if (target == Target::kNew) ::rmdir(dir.c_str());  // only if nothing else is in it
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
  ASSIGN_OR_RETURN(Target target, Classify(report.backup_dir));
  RETURN_IF_ERROR(Claim(report.backup_dir, target));
  absl::StatusOr<storage::BackupResult> store =
      store_->CreateBackup(storage::BackupRequest{report.backup_dir, keep_last});
  if (!store.ok()) {
    Unclaim(report.backup_dir, target);
    return store.status();
  }
  report.store = *std::move(store);
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

#include "server/restore.h"

#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "base/error.h"
#include "base/status_macros.h"
#include "server/token/key_ring.h"

namespace ta {
namespace {

namespace fs = std::filesystem;

absl::Status Refuse(absl::string_view reason, absl::string_view message) {
  return Error(absl::StatusCode::kFailedPrecondition, reason, message);
}

bool Exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

bool EmptyOrMissing(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return true;
  return fs::is_directory(dir, ec) && fs::is_empty(dir, ec) && !ec;
}

bool Within(const fs::path& inner, const fs::path& outer) {
  auto [o, i] = std::mismatch(outer.begin(), outer.end(), inner.begin(), inner.end());
  return o == outer.end();
}

// Removes what a failed restore made: the directory itself when it did not exist before,
// else only its contents (it was empty).
class Undo {
 public:
  void Track(const std::string& dir) { dirs_.push_back({dir, Exists(dir)}); }
  void Commit() { dirs_.clear(); }
  ~Undo() {
    for (const auto& [dir, existed] : dirs_) {
      std::error_code ec;
      if (!existed) {
        fs::remove_all(dir, ec);
        continue;
      }
      for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) fs::remove_all(e, ec);
    }
  }

 private:
  std::vector<std::pair<std::string, bool>> dirs_;
};

absl::Status CheckTargets(const RestoreOptions& o) {
  if (storage::RocksDbPathInUse(o.data_dir + "/db")) {
    return Refuse("data_dir_in_use",
                  absl::StrCat("--data_dir ", o.data_dir,
                               " is in use by a running server (its store's LOCK is held); "
                               "restore into a new directory"));
  }
  if (!EmptyOrMissing(o.data_dir)) {
    return Refuse("data_dir_not_empty",
                  absl::StrCat("--data_dir ", o.data_dir,
                               " exists and is not empty; restore into a new directory"));
  }
  if (!EmptyOrMissing(o.key_dir)) {
    return Refuse("key_dir_not_empty",
                  absl::StrCat("--key_dir ", o.key_dir,
                               " exists and is not empty; restore into a new directory"));
  }
  if (!Exists(storage::RocksDbBackupEngineDir(o.backup_dir) + "/meta")) {
    return Refuse("backup_not_found",
                  absl::StrCat("--restore_from ", o.backup_dir, " is not a backup directory (no ",
                               storage::RocksDbBackupEngineDir(o.backup_dir), "/meta)"));
  }
  return absl::OkStatus();
}

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      absl::StrAppend(&out, "\\", std::string(1, c));
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

}  // namespace

absl::StatusOr<RestoreReport> RestoreBackup(RestoreOptions o) {
  if (o.backup_dir.empty()) return InvalidField("restore_from", "--restore_from: a backup dir");
  if (o.data_dir.empty()) return InvalidField("data_dir", "--data_dir: the new data directory");
  if (o.key_dir.empty()) o.key_dir = o.data_dir + "/keys";
  RETURN_IF_ERROR(CheckTargets(o));

  Undo undo;
  undo.Track(o.data_dir);
  const bool keys_inside = Within(fs::absolute(o.key_dir).lexically_normal(),
                                  fs::absolute(o.data_dir).lexically_normal());
  if (!keys_inside) undo.Track(o.key_dir);
  std::error_code ec;
  fs::create_directory(o.data_dir, ec);
  if (ec) {
    return Error(absl::StatusCode::kUnavailable, "store_unavailable",
                 absl::StrCat("cannot create --data_dir ", o.data_dir, ": ", ec.message()));
  }
  RestoreReport report;
  report.db_dir = o.data_dir + "/db";
  report.key_dir = o.key_dir;
  ASSIGN_OR_RETURN(report.store, storage::RestoreRocksDbBackup(o.backup_dir, report.db_dir));
  {
    // Opened once, as the server will: format version checked, WAL replayed, LOCK released.
    storage::RocksDbStoreOptions store;
    store.path = report.db_dir;
    store.block_cache_bytes = 8 << 20;
    ASSIGN_OR_RETURN(std::unique_ptr<storage::TokenStore> opened, storage::OpenRocksDbStore(store));
  }
  // No keys/ in a backup of a server with a shared ring: the ring is in the store, sealed.
  if (Exists(o.backup_dir + "/keys/keyring.json")) {
    ASSIGN_OR_RETURN(report.key_files, token::CopyKeyDirectory(o.backup_dir + "/keys", o.key_dir));
  } else {
    report.key_dir.clear();
  }
  undo.Commit();
  return report;
}

bool RestoreRefused(const absl::Status& status) {
  const std::string reason = ReasonOf(status);
  return status.code() == absl::StatusCode::kInvalidArgument || reason == "data_dir_in_use" ||
         reason == "data_dir_not_empty" || reason == "key_dir_not_empty" ||
         reason == "backup_not_found";
}

std::string RestoreReportText(const RestoreReport& r, const RestoreOptions& o) {
  const bool default_keys = o.key_dir.empty() || o.key_dir == o.data_dir + "/keys";
  return absl::StrCat(
      "restored backup ", r.store.backup_id, " (made ", Rfc3339(r.store.created_at), ", ",
      r.store.file_count, " files, ", r.store.size_bytes, " bytes, checksums verified) into ",
      r.db_dir, "\n",
      r.key_dir.empty()
          ? "keys: none in the backup: the key ring is in the store, sealed under its "
            "key-encryption key\n"
          : absl::StrCat("keys: ", r.key_files, " files into ", r.key_dir,
                         " (mode 0600, directory 0700)\n"),
      "the store opens cleanly; serve it with: token-authority --data_dir=", o.data_dir,
      default_keys ? "" : absl::StrCat(" --key_dir=", o.key_dir),
      r.key_dir.empty() ? " --key_encryption_key_file=<the same KEK file>" : "", "\n");
}

std::string RestoreReportJson(const RestoreReport& r) {
  // Named like tokenctl's --json output of the API's messages (proto JSON: lowerCamelCase).
  return absl::StrCat("{\"backupId\":", r.store.backup_id, ",\"createdAt\":",
                      JsonString(Rfc3339(r.store.created_at)), ",\"sizeBytes\":",
                      r.store.size_bytes, ",\"fileCount\":", r.store.file_count,
                      ",\"dbDir\":", JsonString(r.db_dir), ",\"keyDir\":", JsonString(r.key_dir),
                      ",\"keyFiles\":", r.key_files, "}\n");
}

}  // namespace ta

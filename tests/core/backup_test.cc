// TokenAuthority::CreateBackup: one at a time, the path checked before anything is written,
// the key ring copied beside the store's copy with private modes, and one audit event each.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "base/clock.h"
#include "base/error.h"
#include "server/core/authority.h"
#include "server/token/key_ring.h"
#include "tests/core/test_authority.h"
#include "tests/support/forwarding_store.h"

namespace ta::core {
namespace {

// The RocksDB store, whose CreateBackup waits for `release` once `entered` is notified.
class SlowBackups final : public ta::testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  absl::StatusOr<storage::BackupResult> CreateBackup(const storage::BackupRequest& r) override {
    if (!entered.HasBeenNotified()) entered.Notify();
    release.WaitForNotification();
    return ForwardingStore::CreateBackup(r);
  }
  absl::Notification entered, release;
};

class Events final : public AuditSink {
 public:
  void Record(const AuditEvent& e) override {
    absl::MutexLock lock(&mu_);
    events_.push_back(e);
  }
  std::vector<AuditEvent> Of(const std::string& action) {
    absl::MutexLock lock(&mu_);
    std::vector<AuditEvent> out;
    for (const AuditEvent& e : events_) {
      if (e.action == action) out.push_back(e);
    }
    return out;
  }

 private:
  absl::Mutex mu_;
  std::vector<AuditEvent> events_;
};

struct Fixture : TestAuthority<SlowBackups> {
  // slow_backups: the store's CreateBackup waits for store->release.
  explicit Fixture(bool slow_backups = false) {
    if (!slow_backups) store->release.Notify();
    AuthorityOptions options;
    options.audit = &audit;
    Start(options);
  }
  ~Fixture() { authority.reset(); }  // before `audit`, which it records to
  int Mode(const std::string& path) {
    struct stat st;
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 0777;
  }

  Events audit;
};

TEST_CASE("CreateBackup: a second backup while one runs is refused (backup_in_progress)",
          "[backup]") {
  Fixture slow(/*slow_backups=*/true);
  absl::StatusOr<BackupReport> first;
  std::thread running([&] { first = slow.authority->CreateBackup(slow.dir.Sub("b1"), 0, slow.admin); });
  slow.store->entered.WaitForNotification();
  absl::StatusOr<BackupReport> second = slow.authority->CreateBackup(slow.dir.Sub("b2"), 0, slow.admin);
  CHECK(second.status().code() == absl::StatusCode::kAborted);
  CHECK(ReasonOf(second.status()) == "backup_in_progress");
  slow.store->release.Notify();
  running.join();
  INFO(first.status());
  REQUIRE(first.ok());
  CHECK(first->store.backup_id == 1);
  CHECK_FALSE(std::filesystem::exists(slow.dir.Sub("b2")));  // refused before any write
  // Both are audited, once each.
  std::vector<AuditEvent> events = slow.audit.Of("admin.backup");
  REQUIRE(events.size() == 2);
  CHECK(events[0].outcome == "refused");
  CHECK(events[0].reason == "backup_in_progress");
  CHECK(events[1].outcome == "ok");
  CHECK(events[1].note == slow.dir.Sub("b1"));
  // And the next one runs.
  CHECK(slow.authority->CreateBackup(slow.dir.Sub("b1"), 0, slow.admin).ok());
}

TEST_CASE("CreateBackup: the key ring is copied beside the store's copy, private", "[backup]") {
  Fixture fx;
  REQUIRE(fx.keys->Rotate().ok());  // two keys: both must come along
  absl::StatusOr<BackupReport> report = fx.authority->CreateBackup(fx.dir.Sub("b"), 0, fx.admin);
  INFO(report.status());
  REQUIRE(report.ok());
  CHECK(report->key_dir == fx.dir.Sub("b/keys"));
  CHECK(report->key_files == 4);  // keyring.json, refresh.secret, two keys
  CHECK(fx.Mode(fx.dir.Sub("b")) == 0700);
  CHECK(fx.Mode(fx.dir.Sub("b/keys")) == 0700);
  for (const auto& file : std::filesystem::directory_iterator(fx.dir.Sub("b/keys"))) {
    INFO(file.path());
    CHECK(fx.Mode(file.path()) == 0600);
  }
  // The copy is a key directory the ring opens, with the same keys.
  token::KeyRingOptions copy_options;
  copy_options.key_dir = fx.dir.Sub("b/keys");
  copy_options.clock = &fx.clock;
  std::unique_ptr<token::KeyRing> copy = token::KeyRing::Open(copy_options).value();
  REQUIRE(copy->Keys().size() == 2);
  CHECK(copy->Keys()[0].kid == fx.keys->Keys()[0].kid);
  CHECK(copy->DeriveRefreshSecret("x") == fx.keys->DeriveRefreshSecret("x"));
  // A later backup after another rotation replaces the copy: the new key is in it.
  REQUIRE(fx.keys->Rotate().ok());
  REQUIRE(fx.authority->CreateBackup(fx.dir.Sub("b"), 0, fx.admin).ok());
  copy = token::KeyRing::Open(copy_options).value();
  CHECK(copy->Keys()[0].kid == fx.keys->Keys()[0].kid);
}

TEST_CASE("CreateBackup: a relative path or one overlapping the key directory is refused",
          "[backup]") {
  Fixture fx;
  for (const std::string& dir : {std::string(""), std::string("backups"),
                                 std::string("./backups"), fx.dir.Sub("keys"),
                                 fx.dir.Sub("keys/inside"), fx.dir.path()}) {
    absl::StatusOr<BackupReport> report = fx.authority->CreateBackup(dir, 0, fx.admin);
    INFO(dir << ": " << report.status());
    CHECK(report.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(ReasonOf(report.status()) == "invalid_argument:backup_dir");
  }
  CHECK_FALSE(std::filesystem::exists(fx.dir.Sub("keys/inside")));
  CHECK(fx.audit.Of("admin.backup").size() == 6);
}

}  // namespace
}  // namespace ta::core

namespace ta::core {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Issue 22 #7: pointed at another server's data directory, CreateBackup replaced its
// keyring.json, refresh.secret and key files (and deleted its other .pem files).
TEST_CASE(
    "CreateBackup: a directory that is neither new, empty nor a backup is refused and "
    "left untouched",
    "[backup]") {
  Fixture fx;
  const std::string other = fx.dir.Sub("other-server");
  std::filesystem::create_directories(other + "/keys");
  std::filesystem::create_directories(other + "/db");
  for (const char* name :
       {"keys/keyring.json", "keys/refresh.secret", "keys/theirs.pem", "admin.key"}) {
    std::ofstream(other + "/" + name) << "theirs:" << name;
  }
  absl::StatusOr<BackupReport> report = fx.authority->CreateBackup(other, 0, fx.admin);
  INFO(report.status());
  CHECK(report.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(ReasonOf(report.status()) == "backup_dir_not_a_backup");
  CHECK(absl::StrContains(report.status().message(), "TOKEN-AUTHORITY-BACKUP"));
  for (const char* name :
       {"keys/keyring.json", "keys/refresh.secret", "keys/theirs.pem", "admin.key"}) {
    CHECK(Slurp(other + "/" + name) == std::string("theirs:") + name);
  }
  CHECK_FALSE(std::filesystem::exists(other + "/rocksdb"));
  CHECK_FALSE(std::filesystem::exists(other + "/TOKEN-AUTHORITY-BACKUP"));
  // A plain file is refused too.
  std::ofstream(fx.dir.Sub("a-file")) << "x";
  CHECK(ReasonOf(fx.authority->CreateBackup(fx.dir.Sub("a-file"), 0, fx.admin).status()) ==
        "backup_dir_not_a_backup");
}

TEST_CASE(
    "CreateBackup: an empty directory and its own backup directory are accepted; files it "
    "did not write are never removed",
    "[backup]") {
  Fixture fx;
  const std::string empty = fx.dir.Sub("empty");
  std::filesystem::create_directories(empty);
  REQUIRE(fx.authority->CreateBackup(empty, 0, fx.admin).ok());
  CHECK(std::filesystem::exists(empty + "/TOKEN-AUTHORITY-BACKUP"));
  // Someone's file in the copy's key directory survives later backups.
  std::ofstream(empty + "/keys/someone-elses.pem") << "not ours";
  REQUIRE(fx.keys->Rotate().ok());
  REQUIRE(fx.authority->CreateBackup(empty, 0, fx.admin).ok());
  CHECK(Slurp(empty + "/keys/someone-elses.pem") == "not ours");
  // A backup directory made before the marker existed (only rocksdb/ and keys/) is accepted.
  std::filesystem::remove(empty + "/TOKEN-AUTHORITY-BACKUP");
  absl::StatusOr<BackupReport> legacy = fx.authority->CreateBackup(empty, 0, fx.admin);
  INFO(legacy.status());
  CHECK(legacy.ok());
  CHECK(std::filesystem::exists(empty + "/TOKEN-AUTHORITY-BACKUP"));
}

}  // namespace
}  // namespace ta::core

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
#include "storage/rocksdb/rocksdb_store.h"
#include "tests/support/temp_dir.h"

namespace ta::core {
namespace {

// The RocksDB store, whose CreateBackup waits for `release` once `entered` is notified.
class SlowBackups final : public storage::TokenStore {
 public:
  explicit SlowBackups(std::unique_ptr<storage::TokenStore> inner) : inner_(std::move(inner)) {}
  absl::StatusOr<storage::BackupResult> CreateBackup(const storage::BackupRequest& r) override {
    if (!entered.HasBeenNotified()) entered.Notify();
    release.WaitForNotification();
    return inner_->CreateBackup(r);
  }
  absl::Notification entered, release;

  void SetRevocationListener(storage::RevocationListener l) override {
    inner_->SetRevocationListener(std::move(l));
  }
  absl::StatusOr<std::vector<storage::RevocationEntry>> ReadRevocations(uint64_t after,
                                                                        absl::Time now,
                                                                        size_t limit) override {
    return inner_->ReadRevocations(after, now, limit);
  }
  absl::Status CreateFamily(const storage::FamilyRecord& f,
                            const storage::RefreshRecord& r) override {
    return inner_->CreateFamily(f, r);
  }
  absl::StatusOr<storage::FamilyRecord> GetFamily(absl::string_view id, absl::Time now) override {
    return inner_->GetFamily(id, now);
  }
  absl::StatusOr<storage::RefreshRecord> GetRefresh(absl::string_view id, uint64_t gen,
                                                    absl::Time now) override {
    return inner_->GetRefresh(id, gen, now);
  }
  absl::StatusOr<storage::RotateOutcome> Rotate(const storage::RotateRequest& r) override {
    return inner_->Rotate(r);
  }
  absl::StatusOr<bool> RevokeFamily(absl::string_view id, absl::string_view reason,
                                    absl::string_view by, absl::Time now) override {
    return inner_->RevokeFamily(id, reason, by, now);
  }
  absl::Status DenyJti(absl::string_view jti, absl::Time exp) override {
    return inner_->DenyJti(jti, exp);
  }
  absl::StatusOr<bool> IsJtiDenied(absl::string_view jti, absl::Time now) override {
    return inner_->IsJtiDenied(jti, now);
  }
  absl::StatusOr<storage::SubjectRecord> UpdateSubject(const storage::SubjectUpdate& u) override {
    return inner_->UpdateSubject(u);
  }
  absl::StatusOr<std::optional<storage::SubjectRecord>> GetSubject(absl::string_view s,
                                                                   absl::Time now) override {
    return inner_->GetSubject(s, now);
  }
  absl::StatusOr<storage::FamilyPage> ListFamilies(const storage::ListFamiliesQuery& q) override {
    return inner_->ListFamilies(q);
  }
  absl::Status PurgeExpired() override { return inner_->PurgeExpired(); }
  absl::StatusOr<storage::StoreStats> GetStats() override { return inner_->GetStats(); }
  absl::StatusOr<storage::KeyRingBlob> GetKeyRing(uint64_t if_newer_than) override {
    return inner_->GetKeyRing(if_newer_than);
  }
  absl::Status CompareAndSetKeyRing(uint64_t expected, absl::string_view document) override {
    return inner_->CompareAndSetKeyRing(expected, document);
  }
  absl::StatusOr<absl::Time> ClockNow() override { return inner_->ClockNow(); }

 private:
  std::unique_ptr<storage::TokenStore> inner_;
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

struct Fixture {
  // slow_backups: the store's CreateBackup waits for store->release.
  explicit Fixture(bool slow_backups = false) {
    storage::RocksDbStoreOptions store_options;
    store_options.path = dir.Sub("db");
    store_options.clock = &clock;
    store_options.block_cache_bytes = 8 << 20;
    store = std::make_unique<SlowBackups>(storage::OpenRocksDbStore(store_options).value());
    if (!slow_backups) store->release.Notify();
    token::KeyRingOptions key_options;
    key_options.key_dir = dir.Sub("keys");
    key_options.clock = &clock;
    keys = token::KeyRing::Open(key_options).value();
    AuthorityOptions options;
    options.default_audience = {"api"};
    options.clock = &clock;
    options.audit = &audit;
    authority = TokenAuthority::Create(options, store.get(), keys.get()).value();
    admin.name = "ops";
    admin.roles = {Role::kAdmin};
  }
  int Mode(const std::string& path) {
    struct stat st;
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 0777;
  }

  ta::testing::TempDir dir;
  FakeClock clock;
  Events audit;
  std::unique_ptr<SlowBackups> store;
  std::unique_ptr<token::KeyRing> keys;
  std::unique_ptr<TokenAuthority> authority;
  Caller admin;
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

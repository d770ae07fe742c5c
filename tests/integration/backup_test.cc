// Online backup and restore (issue 16, item 1) over the real gRPC API: a backup taken while
// writers issue, refresh and revoke holds every write acknowledged before it began; a server
// started on the restored copy verifies the old tokens, rotates the old refresh tokens and
// still refuses what was revoked. Plus the refusals: relative path, non-admin caller, a used or
// live data directory, and PostgreSQL (which its own tools back up).
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "base/error.h"
#include "server/restore.h"
#include "tests/support/test_server.h"

namespace ta::testing {
namespace {

using D = v1::TokenAdmin::Stub;
using A = v1::TokenAuthority::Stub;

bool OnPostgres() {
  const char* store = std::getenv("TA_TEST_STORE");
  return store != nullptr && std::string(store) == "postgres";
}

CallResult Backup(TestServer& s, const std::string& dir, v1::CreateBackupResponse* out,
                  const std::string& key = "") {
  v1::CreateBackupRequest req;
  req.set_backup_dir(dir);
  return CallAs(key.empty() ? s.admin_key() : key, s.admin(), &D::CreateBackup, req, out);
}

// One session as a writer left it. `certain`: every operation on it was acknowledged before
// the backup began, so the copy must show exactly this state.
struct Session {
  std::string family_id;
  std::string access_token;   // the latest one
  std::string refresh_token;  // the current one
  bool revoked = false;        // its family was revoked (RevokeFamily)
  std::string denied_access;   // an access token revoked alone (RevokeToken), if any
  bool certain = true;
};

// Issues, refreshes and revokes on its own sessions until stopped; `started` is set just
// before CreateBackup is sent, so an operation acknowledged while it reads false was
// acknowledged before the backup began.
class Writer {
 public:
  Writer(TestServer& s, int id, const std::atomic<bool>& started, const std::atomic<bool>& stop)
      : s_(s), id_(id), started_(started), stop_(stop), random_(id) {}

  void Run() {
    while (!stop_.load()) {
      const int op = Pick(10);
      if (sessions_.empty() || op < 3) {
        Issue();
      } else if (op < 8) {
        Refresh(sessions_[Pick(sessions_.size())]);
      } else if (op < 9) {
        RevokeFamily(sessions_[Pick(sessions_.size())]);
      } else {
        RevokeAccess(sessions_[Pick(sessions_.size())]);
      }
    }
  }
  std::vector<Session>& sessions() { return sessions_; }
  int acknowledged_before() const { return before_; }

 private:
  size_t Pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(random_); }
  // After an acknowledged write: was it before the backup began?
  bool Before() {
    bool before = !started_.load();
    before_ += before;
    return before;
  }
  void Issue() {
    v1::TokenPair pair;
    if (!s_.Issue("user-" + std::to_string(id_) + "-" + std::to_string(sessions_.size()), &pair)
             .ok()) {
      return;
    }
    Session session;
    session.family_id = pair.family_id();
    session.access_token = pair.access_token();
    session.refresh_token = pair.refresh_token();
    session.certain = Before();
    if (session.certain) sessions_.push_back(session);  // later ones are not in the backup
  }
  void Refresh(Session& session) {
    if (session.revoked || !session.certain) return;
    v1::TokenPair next;
    CallResult r = s_.Refresh(session.refresh_token, &next);
    if (!r.ok()) {
      session.certain = false;  // unexpected; not a state the test can predict
      return;
    }
    if (!Before()) {
      session.certain = false;
      return;
    }
    session.access_token = next.access_token();
    session.refresh_token = next.refresh_token();
  }
  void RevokeFamily(Session& session) {
    if (session.revoked || !session.certain) return;
    v1::RevokeFamilyRequest req;
    req.set_family_id(session.family_id);
    req.set_reason("logout");
    v1::RevokeFamilyResponse resp;
    if (!s_.Call(s_.api(), &A::RevokeFamily, req, &resp).ok()) return;
    session.revoked = true;
    session.certain = Before();
  }
  void RevokeAccess(Session& session) {
    if (session.revoked || !session.certain || !session.denied_access.empty()) return;
    v1::RevokeTokenRequest req;
    req.set_token(session.access_token);
    v1::RevokeTokenResponse resp;
    if (!s_.Call(s_.api(), &A::RevokeToken, req, &resp).ok()) return;
    session.denied_access = session.access_token;
    session.certain = Before();
  }

  TestServer& s_;
  const int id_;
  const std::atomic<bool>& started_;
  const std::atomic<bool>& stop_;
  std::mt19937 random_;
  std::vector<Session> sessions_;
  int before_ = 0;
};

// The restored server's view of one certain session.
void CheckRestored(TestServer& copy, const Session& session) {
  INFO("family " << session.family_id << (session.revoked ? " (revoked)" : ""));
  v1::GetFamilyRequest get;
  get.set_family_id(session.family_id);
  v1::Family family;
  REQUIRE(copy.Call(copy.admin(), &D::GetFamily, get, &family).ok());
  CHECK(family.revoked() == session.revoked);
  v1::IntrospectResponse access = copy.Introspect(session.access_token);
  if (session.revoked) {
    CHECK_FALSE(access.active());
    CHECK(access.inactive_reason() ==
          (session.denied_access == session.access_token ? "token_revoked" : "family_revoked"));
    v1::TokenPair next;
    CHECK(copy.Refresh(session.refresh_token, &next).reason == "family_revoked");
    return;
  }
  if (!session.denied_access.empty()) {
    CHECK(copy.Introspect(session.denied_access).inactive_reason() == "token_revoked");
  }
  if (session.denied_access != session.access_token) {
    CHECK(access.active());
  }
  v1::TokenPair next;
  CallResult rotated = copy.Refresh(session.refresh_token, &next);
  INFO(rotated.status.error_message());
  CHECK(rotated.ok());
  if (rotated.ok()) CHECK(copy.Introspect(next.access_token()).active());
}

TEST_CASE("Backup: under mixed write load, a restored copy holds every acknowledged write",
          "[backup]") {
  if (OnPostgres()) {
    SUCCEED("PostgreSQL is backed up with its own tools (see the backup_not_supported case)");
    return;
  }
  TestServer s;
  std::atomic<bool> started{false}, stop{false};
  std::vector<std::unique_ptr<Writer>> writers;
  for (int i = 0; i < 4; ++i) writers.push_back(std::make_unique<Writer>(s, i, started, stop));
  std::vector<std::thread> threads;
  for (auto& w : writers) threads.emplace_back([&w] { w->Run(); });
  absl::SleepFor(absl::Milliseconds(1500));

  started.store(true);
  TempDir backups;
  v1::CreateBackupResponse made;
  CallResult backup = Backup(s, backups.Sub("b"), &made);
  absl::SleepFor(absl::Milliseconds(300));  // writes go on after it, too
  stop.store(true);
  for (std::thread& t : threads) t.join();
  INFO(backup.status.error_message());
  REQUIRE(backup.ok());
  CHECK(made.backup_id() == 1);
  CHECK(made.key_files() == 3);

  RestoreOptions restore;
  restore.backup_dir = backups.Sub("b");
  restore.data_dir = backups.Sub("restored");
  absl::StatusOr<RestoreReport> restored = RestoreBackup(restore);
  INFO(restored.status());
  REQUIRE(restored.ok());
  TestServer copy([&](ServerOptions& o) { o.data_dir = restore.data_dir; });
  copy.clock().Set(s.clock().Now());

  int certain = 0, acknowledged = 0;
  for (auto& w : writers) {
    acknowledged += w->acknowledged_before();
    for (const Session& session : w->sessions()) {
      if (!session.certain) continue;
      ++certain;
      CheckRestored(copy, session);
    }
  }
  WARN(acknowledged << " writes acknowledged before the backup began; " << certain
                    << " sessions checked on the copy");
  CHECK(certain >= 20);
}

TEST_CASE("Backup: a relative path and a non-admin caller are refused, and PostgreSQL says "
          "backup_not_supported",
          "[backup]") {
  const std::string resource_key = "resource-key-0123456789", admin_key = "admin-key-0123456789";
  TestServer s([&](ServerOptions& o) {
    UseCallers(o, {{"ops", "admin", admin_key}, {"api", "resource", resource_key}});
  });
  TempDir dir;
  v1::CreateBackupResponse made;
  CallResult relative = Backup(s, "backups/today", &made, admin_key);
  CHECK(relative.status.error_code() == grpc::StatusCode::INVALID_ARGUMENT);
  CHECK(relative.reason == "invalid_argument:backup_dir");
  CallResult resource = Backup(s, dir.Sub("b"), &made, resource_key);
  CHECK(resource.status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  CHECK(resource.reason == "permission_denied");
  CallResult nobody = Backup(s, dir.Sub("b"), &made, "wrong-key");
  CHECK(nobody.status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK_FALSE(std::filesystem::exists(dir.Sub("b")));

  CallResult admin = Backup(s, dir.Sub("b"), &made, admin_key);
  if (OnPostgres()) {
    CHECK(admin.status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
    CHECK(admin.reason == "backup_not_supported");
    CHECK(admin.status.error_message().find("pg_basebackup") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(dir.Sub("b")));  // no key was written anywhere
  } else {
    INFO(admin.status.error_message());
    CHECK(admin.ok());
  }
}

TEST_CASE("Restore: a non-empty or live data directory is refused and left alone", "[backup]") {
  if (OnPostgres()) {
    SUCCEED("restore is for the RocksDB store");
    return;
  }
  TestServer s;
  v1::TokenPair pair;
  REQUIRE(s.Issue("alice", &pair).ok());
  TempDir dir;
  v1::CreateBackupResponse made;
  REQUIRE(Backup(s, dir.Sub("b"), &made).ok());

  RestoreOptions live{dir.Sub("b"), s.data_dir(), ""};
  absl::StatusOr<RestoreReport> over_live = RestoreBackup(live);
  CHECK(ta::ReasonOf(over_live.status()) == "data_dir_in_use");
  CHECK(over_live.status().message().find(s.data_dir()) != std::string::npos);
  CHECK(RestoreRefused(over_live.status()));

  std::filesystem::create_directory(dir.Sub("used"));
  std::ofstream(dir.Sub("used/notes.txt")) << "keep me";
  absl::StatusOr<RestoreReport> over_used = RestoreBackup({dir.Sub("b"), dir.Sub("used"), ""});
  CHECK(ta::ReasonOf(over_used.status()) == "data_dir_not_empty");
  CHECK(RestoreRefused(over_used.status()));
  CHECK(std::filesystem::exists(dir.Sub("used/notes.txt")));
  CHECK_FALSE(std::filesystem::exists(dir.Sub("used/db")));

  // An empty directory is fine, and --key_dir elsewhere must be new too.
  std::filesystem::create_directory(dir.Sub("empty"));
  std::filesystem::create_directory(dir.Sub("keys-used"));
  std::ofstream(dir.Sub("keys-used/old.pem")) << "x";
  CHECK(ta::ReasonOf(RestoreBackup({dir.Sub("b"), dir.Sub("empty"), dir.Sub("keys-used")}).status()) ==
        "key_dir_not_empty");
  absl::StatusOr<RestoreReport> fine = RestoreBackup({dir.Sub("b"), dir.Sub("empty"), ""});
  INFO(fine.status());
  REQUIRE(fine.ok());
  CHECK(fine->key_dir == dir.Sub("empty/keys"));
}

TEST_CASE("Backup: a shared key ring stays sealed in the store's copy and needs the same KEK",
          "[backup]") {
  if (OnPostgres()) {
    SUCCEED("restore is for the RocksDB store");
    return;
  }
  TempDir dir;
  const std::string kek = dir.Sub("kek");
  std::ofstream(kek) << "q83vEjRWeJq8vMrU3u/wEjRWeJq8vMrU3u/wEjRWeJo=\n";
  std::filesystem::permissions(kek, std::filesystem::perms::owner_read |
                                        std::filesystem::perms::owner_write,
                               std::filesystem::perm_options::replace);
  auto with_kek = [&](ServerOptions& o) {
    o.key_encryption_key_file = kek;
    o.key_publish_delay = absl::ZeroDuration();
  };
  TestServer s(with_kek);
  v1::TokenPair pair;
  REQUIRE(s.Issue("alice", &pair).ok());
  v1::CreateBackupResponse made;
  CallResult backup = Backup(s, dir.Sub("b"), &made);
  INFO(backup.status.error_message());
  REQUIRE(backup.ok());
  CHECK(made.keys_sealed_in_store());
  CHECK(made.key_files() == 0);
  CHECK(made.key_dir().empty());
  CHECK_FALSE(std::filesystem::exists(dir.Sub("b/keys")));  // no private key in the clear

  absl::StatusOr<RestoreReport> restored = RestoreBackup({dir.Sub("b"), dir.Sub("copy"), ""});
  INFO(restored.status());
  REQUIRE(restored.ok());
  CHECK(restored->key_dir.empty());
  CHECK(restored->key_files == 0);
  TestServer copy([&](ServerOptions& o) {
    with_kek(o);
    o.data_dir = dir.Sub("copy");
  });
  copy.clock().Set(s.clock().Now());
  CHECK(copy.Introspect(pair.access_token()).active());
  v1::TokenPair next;
  CHECK(copy.Refresh(pair.refresh_token(), &next).ok());
}

}  // namespace
}  // namespace ta::testing

// The revocation view's checkpoint (issue 27 item 2): a restart loads it and replays only the
// log after it, with the same answers as a full load of the log; a file that is torn, corrupt,
// of another format version, readable by others, newer than the store's log (a restored
// store) or written by a clock ahead of this one is not used and the whole log is read; a
// crash between the temp file and the rename leaves the previous checkpoint in use. On the
// RocksDB store and on PostgreSQL (a replica following the shared log).
#include "server/core/view_checkpoint.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/error.h"
#include "server/core/authority.h"
#include "token/revocation_view.h"
#include "server/token/key_ring.h"
#include "storage/postgres/postgres_store.h"
#include "storage/postgres/sql_session.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "tests/storage/test_util.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/forwarding_store.h"
#include "tests/support/temp_dir.h"

namespace ta::core {
namespace {

using storage::testing::MakeFamily;
using storage::testing::MakeRefresh;
using storage::testing::MakeSubjectUpdate;

enum class Engine { kRocksDb, kPostgres };

const char* Name(Engine e) { return e == Engine::kRocksDb ? "rocksdb" : "postgres"; }

// Counts the log entries a store hands out (ReadRevocations); forwards everything.
class CountingStore final : public ta::testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  std::atomic<size_t> entries_read{0};

  absl::StatusOr<std::vector<storage::RevocationEntry>> ReadRevocations(uint64_t after,
                                                                        absl::Time now,
                                                                        size_t limit) override {
    auto read = ForwardingStore::ReadRevocations(after, now, limit);
    if (read.ok()) entries_read += read->size();
    return read;
  }
};

// The ids the workload revoked, to ask every one of them afterwards.
struct Ids {
  std::vector<std::string> jtis, families;
};

std::string RandomId(std::mt19937_64& rng) {
  std::string id(16, '\0');
  for (char& c : id) c = static_cast<char>(rng() & 0xff);
  return id;
}

// A store (RocksDB in a temp dir, or a fresh PostgreSQL database), a fake clock, and the
// checkpoint's path.
struct Env {
  explicit Env(Engine engine) : engine(engine) {
    if (engine == Engine::kPostgres) {
      absl::StatusOr<std::unique_ptr<ta::testing::TestDatabase>> created =
          ta::testing::TestDatabase::Create();
      INFO(created.status().ToString());
      REQUIRE(created.ok());
      db = *std::move(created);
    }
    Reopen();
  }
  // Closes and opens the store again (a process restart, as far as the store goes).
  void Reopen() {
    store.reset();
    absl::StatusOr<std::unique_ptr<storage::TokenStore>> opened;
    if (engine == Engine::kPostgres) {
      storage::PostgresStoreOptions o;
      o.dsn = db->dsn();
      o.clock = &clock;
      o.database_clock = &clock;
      o.reap_interval = absl::ZeroDuration();
      opened = storage::OpenPostgresStore(o);
    } else {
      storage::RocksDbStoreOptions o;
      o.path = dir.Sub("db");
      o.clock = &clock;
      opened = storage::OpenRocksDbStore(o);
    }
    INFO(opened.status().ToString());
    REQUIRE(opened.ok());
    store = std::make_unique<CountingStore>(*std::move(opened));
  }
  std::string path() const { return dir.Sub("revocation_view.ckpt"); }

  // Appends `n` revocations of every kind (jtis, some denied again; families revoked;
  // families killed by their subject's cutoff), live for 1 s .. 10 min, the clock moving.
  void Revoke(int n) {
    for (int i = 0; i < n; ++i) {
      const absl::Time now = clock.Now();
      const absl::Duration life = absl::Seconds(1 + static_cast<int64_t>(rng() % 600));
      switch (rng() % 4) {
        case 0:
        case 1: {
          std::string jti = !ids.jtis.empty() && rng() % 5 == 0
                                ? ids.jtis[rng() % ids.jtis.size()]
                                : absl::StrCat("jti-", ids.jtis.size(), "-", rng() % 1000000);
          REQUIRE(store->DenyJti(jti, now + life).ok());
          ids.jtis.push_back(std::move(jti));
          break;
        }
        case 2: {
          const std::string id = NewFamily("someone", life);
          REQUIRE(store->RevokeFamily(id, "logout", "tests", now).ok());
          break;
        }
        default: {
          const std::string subject = absl::StrCat("subject-", ++subjects);
          NewFamily(subject, life);
          NewFamily(subject, life / 2);
          clock.Advance(absl::Milliseconds(1));
          REQUIRE(store->UpdateSubject(MakeSubjectUpdate(subject, clock.Now())).ok());
        }
      }
      clock.Advance(absl::Milliseconds(static_cast<int64_t>(rng() % 50)));
    }
  }
  std::string NewFamily(const std::string& subject, absl::Duration access_life) {
    const std::string id = RandomId(rng);
    storage::FamilyRecord f = MakeFamily(id, subject, clock.Now());
    f.access_live_until = clock.Now() + access_life;
    REQUIRE(store->CreateFamily(f, MakeRefresh(id, 0, clock.Now())).ok());
    ids.families.push_back(id);
    return id;
  }

  ViewSettings Settings() const { return ViewSettings{false, absl::Seconds(1), &clock}; }
  // What a start does without a checkpoint: the reference.
  std::unique_ptr<RevocationView> FullLoad() {
    auto view = std::make_unique<RevocationView>(false, absl::Seconds(1), &clock);
    REQUIRE(ReplayRevocationLog(*store, *view, {}, clock.Now()).ok());
    return view;
  }
  // A start from the checkpoint: restore, then replay the log after it.
  std::unique_ptr<RevocationView> RestoreAndReplay(LogPosition* covered = nullptr) {
    absl::StatusOr<RestoredView> restored =
        RestoreViewCheckpoint(path(), Settings(), *store, clock.Now(), 2);
    INFO(restored.status().ToString());
    REQUIRE(restored.ok());
    REQUIRE(ReplayRevocationLog(*store, *restored->view, restored->covered, clock.Now()).ok());
    if (covered != nullptr) *covered = restored->covered;
    return std::move(restored->view);
  }
  // Writes a checkpoint of `view` (which holds the log up to `loaded`).
  absl::Status Write(RevocationView& view, LogPosition loaded, bool fail_before_rename = false) {
    ViewCheckpointOptions o;
    o.path = path();
    o.clock = &clock;
    o.fail_before_rename_for_testing = fail_before_rename;
    ViewCheckpointer writer(o, store.get(), &view, loaded);
    return writer.WriteNow();
  }
  // A view loaded in full now, checkpointed; returns the position the checkpoint covers.
  LogPosition FullLoadAndWrite() {
    auto view = std::make_unique<RevocationView>(false, absl::Seconds(1), &clock);
    absl::StatusOr<LogPosition> loaded = ReplayRevocationLog(*store, *view, {}, clock.Now());
    REQUIRE(loaded.ok());
    REQUIRE(Write(*view, *loaded).ok());
    return *loaded;
  }

  Engine engine;
  ta::testing::TempDir dir;
  FakeClock clock;
  std::mt19937_64 rng{27};
  int subjects = 0;
  Ids ids;
  std::unique_ptr<ta::testing::TestDatabase> db;
  std::unique_ptr<CountingStore> store;
};

// How many (id, instant) questions `got` answers differently from `want`, over every id the
// workload revoked (and ids it did not) at instants from now to past every entry's end.
// `revoked`: how many of `want`'s answers at now were "revoked" (so the comparison is not
// vacuous).
size_t Mismatches(const RevocationView& got, const RevocationView& want, const Ids& ids,
                  absl::Time now, size_t* revoked = nullptr) {
  size_t wrong = 0;
  const std::string no_family(16, '\x01');
  for (absl::Duration ahead : {absl::ZeroDuration(), absl::Seconds(1), absl::Seconds(30),
                               absl::Minutes(3), absl::Minutes(7), absl::Minutes(11)}) {
    const absl::Time t = now + ahead;
    for (const std::string& jti : ids.jtis) {
      const absl::string_view answer = want.Check(jti, no_family, t);
      wrong += got.Check(jti, no_family, t) != answer;
      if (revoked != nullptr && ahead == absl::ZeroDuration()) *revoked += !answer.empty();
    }
    for (const std::string& family : ids.families) {
      const absl::string_view answer = want.Check("never-revoked", family, t);
      wrong += got.Check("never-revoked", family, t) != answer;
      if (revoked != nullptr && ahead == absl::ZeroDuration()) *revoked += !answer.empty();
    }
    wrong += !got.Check("never-revoked", no_family, t).empty();
  }
  return wrong;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  ::chmod(path.c_str(), 0600);
}

Caller Admin() {
  Caller admin;
  admin.name = "ops";
  admin.roles = {Role::kAdmin};
  return admin;
}

IssueRequest Alice() {
  IssueRequest issue;
  issue.subject = "alice";
  issue.client_id = "web";
  return issue;
}

std::string ReasonOfRestore(Env& env) {
  absl::StatusOr<RestoredView> restored =
      RestoreViewCheckpoint(env.path(), env.Settings(), *env.store, env.clock.Now(), 2);
  return restored.ok() ? "used" : ReasonOf(restored.status());
}

TEST_CASE(
    "ViewCheckpoint: a restart from a checkpoint answers as a full load of the log, "
    "entries appended after the checkpoint included",
    "[core][view][checkpoint][pg]") {
  for (Engine engine : {Engine::kRocksDb, Engine::kPostgres}) {
    INFO(Name(engine));
    Env env(engine);
    env.Revoke(400);
    const LogPosition written = env.FullLoadAndWrite();
    CHECK(written.seq > 0);
    env.Revoke(200);  // after the checkpoint: only the replay brings these
    env.clock.Advance(absl::Seconds(20));
    env.Reopen();

    env.store->entries_read = 0;
    LogPosition covered;
    std::unique_ptr<RevocationView> restarted = env.RestoreAndReplay(&covered);
    CHECK(covered.seq == written.seq);
    CHECK(restarted->last_seq() >= written.seq);
    // The anchor (1 entry) and the entries after the checkpoint: never the whole log again.
    const size_t read_by_restart = env.store->entries_read;
    std::unique_ptr<RevocationView> reference = env.FullLoad();
    const size_t whole_log = env.store->entries_read - read_by_restart;
    CHECK(read_by_restart < whole_log);
    CHECK(read_by_restart <= 1 + 200 * 3);  // a subject update appends up to 2 entries
    size_t revoked = 0;
    CHECK(Mismatches(*restarted, *reference, env.ids, env.clock.Now(), &revoked) == 0);
    CHECK(revoked > 100);
  }
}

TEST_CASE(
    "ViewCheckpoint: a torn, corrupt or foreign-version checkpoint is not used, and the "
    "full load answers the same",
    "[core][view][checkpoint]") {
  Env env(Engine::kRocksDb);
  env.Revoke(300);
  env.FullLoadAndWrite();
  const std::string good = ReadFile(env.path());
  REQUIRE(good.size() > 352 + 16 * 32);
  REQUIRE(ReasonOfRestore(env) == "used");
  struct Damage {
    std::string what, bytes, reason;
  };
  std::string flipped_header = good, flipped_entry = good, flipped_digest = good;
  std::string other_version = good;
  flipped_header[20] ^= 0x01;               // the covered seq
  flipped_entry[good.size() / 2] ^= 0x40;   // inside some section's entries
  flipped_digest[good.size() - 1] ^= 0x01;  // the last section's SHA-256
  other_version[8] = 2;                     // format version 2
  const std::vector<Damage> damages = {
      {"empty", "", "checkpoint_corrupt"},
      {"torn in the header", good.substr(0, 100), "checkpoint_corrupt"},
      {"only the header", good.substr(0, 352), "checkpoint_corrupt"},
      {"torn in a section", good.substr(0, good.size() / 2), "checkpoint_corrupt"},
      {"one byte short", good.substr(0, good.size() - 1), "checkpoint_corrupt"},
      {"one byte more", good + "x", "checkpoint_corrupt"},
      {"a header bit flipped", flipped_header, "checkpoint_corrupt"},
      {"an entry bit flipped", flipped_entry, "checkpoint_corrupt"},
      {"a digest bit flipped", flipped_digest, "checkpoint_corrupt"},
      {"another format version", other_version, "checkpoint_version"},
      {"not a checkpoint", std::string(good.size(), 'z'), "checkpoint_corrupt"},
  };
  for (const Damage& d : damages) {
    INFO(d.what);
    WriteFile(env.path(), d.bytes);
    CHECK(ReasonOfRestore(env) == d.reason);
  }

  // The authority then loads the whole log, and a later checkpoint replaces the bad file.
  WriteFile(env.path(), flipped_entry);
  token::KeyRingOptions key_options;
  key_options.key_dir = env.dir.Sub("keys");
  key_options.clock = &env.clock;
  std::unique_ptr<token::KeyRing> keys = token::KeyRing::Open(key_options).value();
  AuthorityOptions options;
  options.default_audience = {"api"};
  options.clock = &env.clock;
  options.view_checkpoint_path = env.path();
  std::unique_ptr<TokenAuthority> authority =
      TokenAuthority::Create(options, env.store.get(), keys.get()).value();
  CHECK(Mismatches(authority->view(), *env.FullLoad(), env.ids, env.clock.Now()) == 0);
  REQUIRE(authority->SaveViewCheckpoint().ok());
  CHECK(ReasonOfRestore(env) == "used");
}

TEST_CASE(
    "ViewCheckpoint: a checkpoint newer than the store's log (a restored store) is not "
    "used, and the full load answers the same",
    "[core][view][checkpoint][pg]") {
  for (Engine engine : {Engine::kRocksDb, Engine::kPostgres}) {
    INFO(Name(engine));
    Env env(engine);
    env.Revoke(100);
    const LogPosition backup_point = env.FullLoadAndWrite();
    // The backup: the store as it is now.
    const std::string backup = env.dir.Sub("backup");
    if (engine == Engine::kRocksDb) {
      env.store.reset();
      std::filesystem::copy(env.dir.Sub("db"), backup, std::filesystem::copy_options::recursive);
      env.Reopen();
    }
    const Ids ids_at_backup = env.ids;
    env.Revoke(100);
    const LogPosition written = env.FullLoadAndWrite();
    REQUIRE(written.seq > backup_point.seq);

    // Restored: the log ends before the checkpoint's entry ...
    if (engine == Engine::kRocksDb) {
      env.store.reset();
      std::filesystem::remove_all(env.dir.Sub("db"));
      std::filesystem::copy(backup, env.dir.Sub("db"), std::filesystem::copy_options::recursive);
      env.Reopen();
    } else {
      // ... as a point-in-time recovery of the database would leave it.
      auto sql = storage::SqlSession::Connect(env.db->dsn()).value();
      REQUIRE(sql->Execute(absl::StrCat("DELETE FROM ta_revocations WHERE seq > ", backup_point.seq,
                                        "; UPDATE ta_meta SET value = ", backup_point.seq,
                                        " WHERE name = 'revocation_seq'"))
                  .ok());
      env.Reopen();
    }
    CHECK(ReasonOfRestore(env) == "checkpoint_other_log");
    // ... and then new revocations take the numbers the checkpoint covered, with other ids.
    env.ids = ids_at_backup;
    while (env.store->ReadRevocations(written.seq - 1, absl::InfinitePast(), 1)->empty()) {
      env.Revoke(20);
    }
    CHECK(ReasonOfRestore(env) == "checkpoint_other_log");

    token::KeyRingOptions key_options;
    key_options.key_dir = env.dir.Sub("keys");
    key_options.clock = &env.clock;
    std::unique_ptr<token::KeyRing> keys = token::KeyRing::Open(key_options).value();
    AuthorityOptions options;
    options.default_audience = {"api"};
    options.clock = &env.clock;
    options.view_checkpoint_path = env.path();
    std::unique_ptr<TokenAuthority> authority =
        TokenAuthority::Create(options, env.store.get(), keys.get()).value();
    size_t revoked = 0;
    CHECK(Mismatches(authority->view(), *env.FullLoad(), env.ids, env.clock.Now(), &revoked) == 0);
    CHECK(revoked > 50);
  }
}

TEST_CASE(
    "ViewCheckpoint: a crash between the temp file and the rename leaves the previous "
    "checkpoint in use",
    "[core][view][checkpoint]") {
  Env env(Engine::kRocksDb);
  env.Revoke(200);
  const LogPosition first = env.FullLoadAndWrite();
  const std::string first_bytes = ReadFile(env.path());
  env.Revoke(100);

  auto view = std::make_unique<RevocationView>(false, absl::Seconds(1), &env.clock);
  const LogPosition loaded = ReplayRevocationLog(*env.store, *view, {}, env.clock.Now()).value();
  REQUIRE(loaded.seq > first.seq);
  const absl::Status crashed = env.Write(*view, loaded, /*fail_before_rename=*/true);
  REQUIRE(crashed.code() == absl::StatusCode::kInternal);
  // The new file is complete in <path>.tmp, the old one untouched at <path>.
  CHECK(std::filesystem::exists(env.path() + ".tmp"));
  CHECK(ReadFile(env.path()) == first_bytes);

  for (bool torn_tmp : {false, true}) {
    INFO("temp file torn: " << torn_tmp);
    if (torn_tmp) {
      const std::string tmp = ReadFile(env.path() + ".tmp");
      WriteFile(env.path() + ".tmp", tmp.substr(0, tmp.size() / 3));
    }
    LogPosition covered;
    std::unique_ptr<RevocationView> restarted = env.RestoreAndReplay(&covered);
    CHECK(covered.seq == first.seq);  // the previous checkpoint, then the log after it
    CHECK(Mismatches(*restarted, *env.FullLoad(), env.ids, env.clock.Now()) == 0);
  }
  // The next write replaces both.
  REQUIRE(env.Write(*view, loaded).ok());
  CHECK_FALSE(std::filesystem::exists(env.path() + ".tmp"));
  LogPosition covered;
  env.RestoreAndReplay(&covered);
  CHECK(covered.seq == loaded.seq);
}

TEST_CASE(
    "ViewCheckpoint: the file is 0600, and one others may read (it holds the SipHash "
    "key) or a symbolic link is not used",
    "[core][view][checkpoint]") {
  Env env(Engine::kRocksDb);
  env.Revoke(50);
  env.FullLoadAndWrite();
  struct stat st;
  REQUIRE(::stat(env.path().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  ::chmod(env.path().c_str(), 0644);
  CHECK(ReasonOfRestore(env) == "checkpoint_permissions");
  ::chmod(env.path().c_str(), 0600);
  CHECK(ReasonOfRestore(env) == "used");
  std::filesystem::rename(env.path(), env.path() + ".real");
  std::filesystem::create_symlink(env.path() + ".real", env.path());
  CHECK(ReasonOfRestore(env) == "checkpoint_permissions");
}

TEST_CASE(
    "ViewCheckpoint: a clock before the instant the checkpoint was written reads the "
    "whole log (entries it left out as dead may live again)",
    "[core][view][checkpoint]") {
  Env env(Engine::kRocksDb);
  env.Revoke(50);
  env.FullLoadAndWrite();
  env.clock.Advance(absl::Seconds(-5));
  CHECK(ReasonOfRestore(env) == "checkpoint_clock");
  env.clock.Advance(absl::Seconds(10));
  CHECK(ReasonOfRestore(env) == "used");
}

TEST_CASE(
    "ViewCheckpointer: writes only when the log moved, and keeps the view's SipHash key "
    "across a restart",
    "[core][view][checkpoint]") {
  Env env(Engine::kRocksDb);
  token::KeyRingOptions key_options;
  key_options.key_dir = env.dir.Sub("keys");
  key_options.clock = &env.clock;
  std::unique_ptr<token::KeyRing> keys = token::KeyRing::Open(key_options).value();
  AuthorityOptions options;
  options.default_audience = {"api"};
  options.clock = &env.clock;
  options.view_checkpoint_path = env.path();
  auto authority = TokenAuthority::Create(options, env.store.get(), keys.get()).value();
  // An empty log: nothing to write.
  REQUIRE(authority->SaveViewCheckpoint().ok());
  CHECK_FALSE(std::filesystem::exists(env.path()));

  const Caller admin = Admin();
  const IssueRequest issue = Alice();
  TokenPair denied = authority->IssueTokens(issue, admin).value();
  TokenPair logged_out = authority->IssueTokens(issue, admin).value();
  TokenPair good = authority->IssueTokens(issue, admin).value();
  REQUIRE(authority->RevokeToken(denied.access_token, admin).ok());
  REQUIRE(authority->SaveViewCheckpoint().ok());
  REQUIRE(std::filesystem::exists(env.path()));
  const auto key = authority->view().sip_key();
  const auto written_at = std::filesystem::last_write_time(env.path());
  REQUIRE(authority->SaveViewCheckpoint().ok());  // nothing new: not rewritten
  CHECK(std::filesystem::last_write_time(env.path()) == written_at);
  // Revoked after the last checkpoint: the restart replays it.
  REQUIRE(authority->RevokeFamily(logged_out.family_id, "", "logout", admin).ok());

  authority.reset();
  env.Reopen();
  env.store->entries_read = 0;
  authority = TokenAuthority::Create(options, env.store.get(), keys.get()).value();
  CHECK(authority->view().sip_key() == key);  // the checkpoint's view, not a fresh one
  CHECK(env.store->entries_read <= 2);        // the anchor and the family revoked after it
  auto answer = [&](const std::string& token) {
    return authority->Introspect(IntrospectRequest{token, ""})->inactive_reason;
  };
  CHECK(answer(denied.access_token) == "token_revoked");
  CHECK(answer(logged_out.access_token) == "family_revoked");
  CHECK(answer(good.access_token).empty());
}

TEST_CASE(
    "ViewCheckpoint: a replica over PostgreSQL restarts from its checkpoint and follows "
    "the shared log from there",
    "[core][view][checkpoint][pg]") {
  Env env(Engine::kPostgres);
  token::KeyRingOptions key_options;
  key_options.key_dir = env.dir.Sub("keys");
  key_options.clock = &env.clock;
  std::unique_ptr<token::KeyRing> keys = token::KeyRing::Open(key_options).value();
  AuthorityOptions options;
  options.default_audience = {"api"};
  options.clock = &env.clock;
  options.shared_store = true;
  options.max_revocation_lag = absl::Minutes(1);  // the fake clock does not move by itself
  options.view_checkpoint_path = env.path();
  // Another replica on the same database (no checkpoint of its own here).
  std::unique_ptr<storage::TokenStore> other_store;
  {
    storage::PostgresStoreOptions o;
    o.dsn = env.db->dsn();
    o.clock = &env.clock;
    o.database_clock = &env.clock;
    o.reap_interval = absl::ZeroDuration();
    other_store = storage::OpenPostgresStore(o).value();
  }
  AuthorityOptions other_options = options;
  other_options.view_checkpoint_path = "";
  auto other = TokenAuthority::Create(other_options, other_store.get(), keys.get()).value();
  const Caller admin = Admin();
  const IssueRequest issue = Alice();
  std::vector<TokenPair> before, after;
  for (int i = 0; i < 20; ++i) before.push_back(other->IssueTokens(issue, admin).value());
  for (int i = 0; i < 20; ++i) after.push_back(other->IssueTokens(issue, admin).value());
  TokenPair good = other->IssueTokens(issue, admin).value();
  for (int i = 0; i < 20; i += 2) {
    REQUIRE(other->RevokeToken(before[i].access_token, admin).ok());
    REQUIRE(other->RevokeFamily(before[i + 1].family_id, "", "logout", admin).ok());
  }
  env.Revoke(300);  // more entries, so that reading the whole log again would show

  auto replica = TokenAuthority::Create(options, env.store.get(), keys.get()).value();
  REQUIRE(replica->SaveViewCheckpoint().ok());
  replica.reset();
  // While it is down, the other replica revokes more.
  for (int i = 0; i < 20; i += 2) {
    REQUIRE(other->RevokeToken(after[i].access_token, admin).ok());
    REQUIRE(other->RevokeFamily(after[i + 1].family_id, "", "logout", admin).ok());
  }
  env.Reopen();
  env.store->entries_read = 0;
  replica = TokenAuthority::Create(options, env.store.get(), keys.get()).value();
  // The anchor and the 20 entries after the checkpoint; the follower resumes after them.
  CHECK(env.store->entries_read <= 1 + 20);
  auto answer = [&](const std::string& token) {
    absl::StatusOr<Introspection> r = replica->Introspect(IntrospectRequest{token, ""});
    REQUIRE(r.ok());
    return r->inactive_reason;
  };
  for (const std::vector<TokenPair>* pairs : {&before, &after}) {
    for (int i = 0; i < 20; i += 2) {
      CHECK(answer((*pairs)[i].access_token) == "token_revoked");
      CHECK(answer((*pairs)[i + 1].access_token) == "family_revoked");
    }
  }
  CHECK(answer(good.access_token).empty());
  // And it still follows: a revocation by the other replica now reaches it.
  REQUIRE(other->RevokeFamily(good.family_id, "", "logout", admin).ok());
  env.clock.Advance(absl::Milliseconds(1));
  REQUIRE(replica->Introspect(IntrospectRequest{good.access_token, ""}).ok());
  bool seen = false;
  for (int i = 0; i < 500 && !seen; ++i) {
    seen = answer(good.access_token) == "family_revoked";
    if (!seen) absl::SleepFor(absl::Milliseconds(10));
  }
  CHECK(seen);
  CHECK(Mismatches(replica->view(), *env.FullLoad(), env.ids, env.clock.Now()) == 0);
}

}  // namespace
}  // namespace ta::core

// PostgresStore beyond the shared contract: schema versions and migrations, the DSN and its
// password, a lost server, the reaper thread, and two stores (replicas) on one database.
#include "storage/postgres/postgres_store.h"

#include <atomic>
#include <catch2/catch.hpp>

#include <latch>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/error.h"
#include "storage/postgres/sql_session.h"
#include "tests/storage/test_util.h"
#include "tests/support/pg_cluster.h"

namespace ta::storage {
namespace {

using ::ta::testing::PgCluster;
using ::ta::testing::TestDatabase;
using testing::FamilyIdFor;
using testing::MakeFamily;
using testing::MakeRefresh;
using testing::MakeRotate;

std::unique_ptr<TestDatabase> FreshDatabase() {
  absl::StatusOr<std::unique_ptr<TestDatabase>> db = TestDatabase::Create();
  INFO(db.status().ToString());
  REQUIRE(db.ok());
  return *std::move(db);
}

PostgresStoreOptions OptionsFor(const std::string& dsn, const Clock* clock) {
  PostgresStoreOptions o;
  o.dsn = dsn;
  o.clock = clock;
  o.database_clock = clock;  // the fake clock stands for the database's too
  o.reap_interval = absl::ZeroDuration();
  return o;
}

std::unique_ptr<TokenStore> Open(const PostgresStoreOptions& o) {
  absl::StatusOr<std::unique_ptr<TokenStore>> store = OpenPostgresStore(o);
  INFO(store.status().ToString());
  REQUIRE(store.ok());
  return *std::move(store);
}

std::vector<std::vector<std::string>> Sql(const std::string& dsn, const std::string& sql) {
  absl::StatusOr<std::unique_ptr<SqlSession>> session = SqlSession::Connect(dsn);
  REQUIRE(session.ok());
  absl::StatusOr<std::vector<std::vector<std::string>>> rows = (*session)->Query(sql);
  INFO(rows.status().ToString());
  REQUIRE(rows.ok());
  return *std::move(rows);
}

TEST_CASE("PostgresStore: a database of a newer schema is refused and nothing is written",
          "[storage][postgres]") {
  auto db = FreshDatabase();
  Sql(db->dsn(), "CREATE TABLE ta_meta (name text PRIMARY KEY, value bigint NOT NULL);"
                 "INSERT INTO ta_meta VALUES ('schema_version', 99)");
  FakeClock clock;
  absl::StatusOr<std::unique_ptr<TokenStore>> opened = OpenPostgresStore(OptionsFor(db->dsn(), &clock));
  REQUIRE(opened.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(ReasonOf(opened.status()) == "store_format_too_new");
  CHECK(absl::StrContains(opened.status().message(), "version 99"));
  CHECK(absl::StrContains(opened.status().message(), absl::StrCat("up to ", kPostgresSchemaVersion)));
  CHECK(Sql(db->dsn(), "SELECT to_regclass('ta_families') IS NULL")[0][0] == "t");
  CHECK(Sql(db->dsn(), "SELECT value FROM ta_meta")[0][0] == "99");
}

TEST_CASE("PostgresStore: CreateBackup points at PostgreSQL's own tools", "[storage][postgres]") {
  auto db = FreshDatabase();
  FakeClock clock;
  std::unique_ptr<TokenStore> store = Open(OptionsFor(db->dsn(), &clock));
  absl::StatusOr<BackupResult> made = store->CreateBackup({"/tmp/never-written"});
  CHECK(made.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(ReasonOf(made.status()) == "backup_not_supported");
  CHECK(absl::StrContains(made.status().message(), "pg_basebackup"));
  CHECK(absl::StrContains(made.status().message(), "point-in-time"));
}

TEST_CASE("PostgresStore: replicas starting together migrate once", "[storage][postgres]") {
  auto db = FreshDatabase();
  FakeClock clock;
  constexpr int kReplicas = 4;
  std::vector<absl::Status> results(kReplicas);
  std::latch start(kReplicas);
  std::vector<std::thread> threads;
  for (int i = 0; i < kReplicas; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      results[i] = OpenPostgresStore(OptionsFor(db->dsn(), &clock)).status();
    });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : results) CHECK(s.ok());
  CHECK(Sql(db->dsn(), "SELECT value FROM ta_meta WHERE name = 'schema_version'")[0][0] ==
        absl::StrCat(kPostgresSchemaVersion));
  Open(OptionsFor(db->dsn(), &clock));  // and a restart migrates nothing
}

TEST_CASE("PostgresStore: a version-1 or version-2 database upgrades in place and keeps its rows",
          "[storage][postgres]") {
  const int version = GENERATE(1, 2);
  INFO("from schema version " << version);
  auto db = FreshDatabase();
  FakeClock clock;
  FamilyRecord f = MakeFamily(FamilyIdFor(7), "alice", clock.Now());
  {
    std::unique_ptr<TokenStore> store = Open(OptionsFor(db->dsn(), &clock));
    REQUIRE(store->CreateFamily(f, MakeRefresh(f.family_id, 0, clock.Now()), std::nullopt).ok());
  }
  // What an older binary left: schema 2 had no binding columns and no DPoP replay cache
  // (issue 26); schema 1 (session 3) no key ring table either.
  Sql(db->dsn(), "DROP TABLE ta_dpop_jtis; ALTER TABLE ta_families DROP COLUMN cnf_jkt, "
                 "DROP COLUMN cnf_x5t_s256");
  if (version == 1) Sql(db->dsn(), "DROP TABLE ta_keyring");
  Sql(db->dsn(), absl::StrCat("UPDATE ta_meta SET value = ", version,
                              " WHERE name = 'schema_version'"));
  std::unique_ptr<TokenStore> store = Open(OptionsFor(db->dsn(), &clock));
  absl::StatusOr<FamilyRecord> kept = store->GetFamily(f.family_id, clock.Now());
  REQUIRE(kept.ok());
  CHECK(kept->cnf_jkt.empty());  // a bearer session, as it was
  CHECK(store->RecordProofJti("key", clock.Now() + absl::Minutes(5), clock.Now()).value());
  CHECK(store->GetKeyRing(0)->version == 0);
  CHECK(store->CompareAndSetKeyRing(0, "ring").ok());
  CHECK(Sql(db->dsn(), "SELECT value FROM ta_meta WHERE name = 'schema_version'")[0][0] ==
        absl::StrCat(kPostgresSchemaVersion));
}

TEST_CASE("PostgresStore: a commit the synchronous standby never confirmed is not acknowledged",
          "[storage][postgres]") {
  absl::StatusOr<std::unique_ptr<PgCluster>> cluster = PgCluster::Start(/*watchdog=*/true);
  INFO(cluster.status().ToString());
  REQUIRE(cluster.ok());
  const std::string dsn = (*cluster)->dsn();
  FakeClock clock;
  PostgresStoreOptions o = OptionsFor(dsn, &clock);
  o.statement_timeout = absl::Seconds(1);
  std::unique_ptr<TokenStore> store = Open(o);
  // From now on every commit waits for a standby that is not there.
  Sql(dsn, "ALTER SYSTEM SET synchronous_standby_names = 'absent_standby'");
  Sql(dsn, "SELECT pg_reload_conf()");
  absl::SleepFor(absl::Milliseconds(300));

  // Nobody interrupts the wait: PostgreSQL waits for ever (statement_timeout does not reach
  // a commit's wait), the reply timeout gives up, and the write is not acknowledged.
  absl::Status waited = store->DenyJti("jti-0", clock.Now() + absl::Minutes(5));
  CHECK(waited.code() == absl::StatusCode::kUnavailable);
  CHECK(ReasonOf(waited) == "store_unavailable");

  // A cancel (pg_cancel_backend, a pooler's or an operator's) ends the wait and PostgreSQL
  // reports the commit as done, with only a WARNING: it must not be acknowledged either.
  for (int round = 0; round < 2; ++round) {
    std::atomic<bool> done{false};
    std::thread canceller([&] {
      while (!done) {
        Sql(dsn, "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'");
        absl::SleepFor(absl::Milliseconds(20));
      }
    });
    absl::Status s;
    if (round == 0) {
      s = store->DenyJti("jti-1", clock.Now() + absl::Minutes(5));  // a statement of its own
    } else {
      FamilyRecord f = MakeFamily(FamilyIdFor(1), "alice", clock.Now());
      s = store->CreateFamily(f, MakeRefresh(f.family_id, 0, clock.Now()),
                              std::nullopt);  // a COMMIT
    }
    done = true;
    canceller.join();
    INFO("round " << round << ": " << s.ToString());
    CHECK(s.code() == absl::StatusCode::kUnavailable);
    CHECK(ReasonOf(s) == "commit_not_replicated");
  }
  CHECK(store->GetStats().ok());  // reads are unaffected
  Sql(dsn, "ALTER SYSTEM RESET synchronous_standby_names");
  Sql(dsn, "SELECT pg_reload_conf()");
}

TEST_CASE("PostgresStore: a bad DSN names postgres_dsn and never echoes the password",
          "[storage][postgres]") {
  const std::string secret = "Zq9-very-secret";
  for (const std::string& dsn : {absl::StrCat("host=/tmp password=", secret, " no_such_option=1"),
                                 absl::StrCat("host=/tmp password ", secret),
                                 absl::StrCat("postgresql://u:", secret, "@[bad")}) {
    INFO(dsn);
    absl::Status s = ValidatePostgresDsn(dsn);
    CHECK(ReasonOf(s) == "invalid_argument:postgres_dsn");
    CHECK(absl::StrContains(s.message(), "--postgres_dsn"));
    CHECK_FALSE(absl::StrContains(s.message(), secret));
    FakeClock clock;
    absl::Status open = OpenPostgresStore(OptionsFor(dsn, &clock)).status();
    CHECK(ReasonOf(open) == "invalid_argument:postgres_dsn");
    CHECK_FALSE(absl::StrContains(open.message(), secret));
  }
  CHECK(ReasonOf(ValidatePostgresDsn("")) == "invalid_argument:postgres_dsn");
  const std::string redacted =
      RedactedPostgresDsn(absl::StrCat("postgresql://app:", secret, "@db1,db2/tokens"));
  CHECK_FALSE(absl::StrContains(redacted, secret));
  CHECK(absl::StrContains(redacted, "password=****"));
  CHECK(absl::StrContains(redacted, "host=db1,db2"));
}

// Issue 22 #8: the old redaction toggled on '"', so a password holding one printed its tail.
TEST_CASE("PostgresStore: a DSN parse error shows no piece of a password, whatever it holds",
          "[storage][postgres][dsn]") {
  const std::vector<std::string> passwords = {"Kq\"Wx tail-Vz", "Kq'Wx\"Vz",    "Kq\\\"Wx\\Vz",
                                              "Kq%\"Wx%zzVz",   "\"KqWxVz",     "KqWxVz\"",
                                              "Kq Wx\" Vz\"Jy", "Kq\"\"Wx'' Vz"};
  for (const std::string& pw : passwords) {
    std::string quoted;  // keyword=value quoting: backslash before ' and \ .
    for (char c : pw) {
      if (c == '\'' || c == '\\') quoted += '\\';
      quoted += c;
    }
    for (const std::string& dsn : {
             absl::StrCat("postgresql://u:", pw, "@[bad"),
             absl::StrCat("postgresql://u:", pw, "@h/db?no_such_param=1"),
             absl::StrCat("postgresql://u:", pw, "%zz@h/db"),
             absl::StrCat("postgresql://u@h/db?password=", pw, "%zz"),
             absl::StrCat("postgresql://u@h/db?password=", pw, "&x"),
             absl::StrCat("host=/tmp password=", pw, " no_such_option=1"),
             absl::StrCat("host=/tmp password=", pw),
             absl::StrCat("host=/tmp password='", quoted, "' no_such_option=1"),
             absl::StrCat("host=/tmp password='", quoted),
         }) {
      INFO(dsn);
      absl::Status s = ValidatePostgresDsn(dsn);
      if (s.ok()) continue;  // libpq found nothing wrong with this one
      INFO(s.message());
      CHECK(ReasonOf(s) == "invalid_argument:postgres_dsn");
      for (size_t i = 0; i + 3 <= pw.size(); ++i) {
        const std::string piece = pw.substr(i, 3);
        INFO(piece);
        CHECK_FALSE(absl::StrContains(s.message(), piece));
      }
    }
  }
  // Option names stay visible when they are no part of a password (issue 23 #7).
  absl::Status s = ValidatePostgresDsn("host=/tmp no_such_option=1 password=Kq\"Wx");
  CHECK(absl::StrContains(s.message(), "invalid connection option \"no_such_option\""));
  s = ValidatePostgresDsn("host=/tmp password='Kq\"Wx' no_such_option=1");
  CHECK(absl::StrContains(s.message(), "no_such_option"));
  s = ValidatePostgresDsn("postgresql://u:Kq\"Wx@h/db?no_such_param=1");
  CHECK(absl::StrContains(s.message(), "invalid URI query parameter: \"no_such_param\""));
}

TEST_CASE("PostgresStore: an unreachable server is UNAVAILABLE at start, without the password",
          "[storage][postgres]") {
  ::ta::testing::TempDir empty;  // a socket directory with no server in it
  FakeClock clock;
  PostgresStoreOptions o = OptionsFor(
      absl::StrCat("host=", empty.path(), " port=1 user=app password=Zq9-secret"), &clock);
  absl::Time before = absl::Now();
  absl::Status s = OpenPostgresStore(o).status();
  CHECK(absl::Now() - before < absl::Seconds(3));
  CHECK(s.code() == absl::StatusCode::kUnavailable);
  CHECK(ReasonOf(s) == "store_unavailable");
  CHECK_FALSE(absl::StrContains(s.message(), "Zq9-secret"));
}

TEST_CASE("PostgresStore: a multi-host DSN falls through to the host that answers",
          "[storage][postgres]") {
  auto db = FreshDatabase();
  std::map<std::string, std::string> parts;  // host, port, user, dbname of the test database
  for (absl::string_view piece : absl::StrSplit(db->dsn(), ' ')) {
    std::pair<std::string, std::string> kv = absl::StrSplit(piece, absl::MaxSplits('=', 1));
    parts[kv.first] = kv.second;  // a later dbname wins, as in libpq
  }
  ::ta::testing::TempDir dead;  // no server listens there
  const std::string dsn = absl::StrCat(
      "host=", dead.path(), ",", parts["host"], " port=", parts["port"], ",", parts["port"],
      " user=", parts["user"], " dbname=", parts["dbname"], " target_session_attrs=read-write");
  FakeClock clock;
  std::unique_ptr<TokenStore> store = Open(OptionsFor(dsn, &clock));
  FamilyRecord f = MakeFamily(FamilyIdFor(1), "alice", clock.Now());
  CHECK(store->CreateFamily(f, MakeRefresh(f.family_id, 0, clock.Now()), std::nullopt).ok());
}

TEST_CASE("PostgresStore: a lost server is UNAVAILABLE at once and the store reconnects later",
          "[storage][postgres]") {
  absl::StatusOr<std::unique_ptr<PgCluster>> cluster = PgCluster::Start(/*watchdog=*/true);
  INFO(cluster.status().ToString());
  REQUIRE(cluster.ok());
  absl::StatusOr<std::unique_ptr<TestDatabase>> db = TestDatabase::CreateIn((*cluster)->dsn());
  REQUIRE(db.ok());
  FakeClock clock;
  PostgresStoreOptions o = OptionsFor((*db)->dsn(), &clock);
  o.pool_size = 4;
  std::unique_ptr<TokenStore> store = Open(o);
  FamilyRecord f = MakeFamily(FamilyIdFor(1), "alice", clock.Now());
  REQUIRE(store->CreateFamily(f, MakeRefresh(f.family_id, 0, clock.Now()), std::nullopt).ok());

  REQUIRE((*cluster)->Kill().ok());
  for (int i = 0; i < 3; ++i) {
    absl::Time before = absl::Now();
    absl::Status s = store->GetFamily(f.family_id, clock.Now()).status();
    CHECK(absl::Now() - before < absl::Seconds(3));
    CHECK(s.code() == absl::StatusCode::kUnavailable);
    CHECK(ReasonOf(s) == "store_unavailable");
    s = store->Rotate(MakeRotate(f.family_id, 0, clock.Now())).status();
    CHECK(ReasonOf(s) == "store_unavailable");
  }

  REQUIRE((*cluster)->Restart().ok());
  absl::Status s;
  for (int attempt = 0; attempt < 100; ++attempt) {  // the pool's backoff is at most 5 s
    s = store->GetFamily(f.family_id, clock.Now()).status();
    if (s.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  INFO(s.ToString());
  CHECK(s.ok());
  CHECK(store->Rotate(MakeRotate(f.family_id, 0, clock.Now()))->result == RotateResult::kRotated);
  store.reset();
  db->reset();
}

TEST_CASE("PostgresStore: the reaper deletes expired rows by itself", "[storage][postgres]") {
  auto db = FreshDatabase();
  FakeClock clock;
  PostgresStoreOptions o = OptionsFor(db->dsn(), &clock);
  o.reap_interval = absl::Milliseconds(20);
  o.reap_batch = 2;  // several batches
  std::unique_ptr<TokenStore> store = Open(o);
  for (uint64_t n = 0; n < 5; ++n) {
    FamilyRecord f = MakeFamily(FamilyIdFor(n), "alice", clock.Now());
    REQUIRE(store->CreateFamily(f, MakeRefresh(f.family_id, 0, clock.Now()), std::nullopt).ok());
    REQUIRE(store->DenyJti(absl::StrCat("jti-", n), clock.Now() + absl::Minutes(5)).ok());
  }
  clock.Advance(absl::Hours(24 * 40));
  std::string left;
  for (int i = 0; i < 250; ++i) {
    left = Sql(db->dsn(), "SELECT (SELECT count(*) FROM ta_families) + "
                          "(SELECT count(*) FROM ta_refresh) + (SELECT count(*) FROM ta_denylist)")[0][0];
    if (left == "0") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(left == "0");
}

TEST_CASE("PostgresStore: ClockNow reads the database server's clock", "[storage][postgres]") {
  auto db = FreshDatabase();
  PostgresStoreOptions o = OptionsFor(db->dsn(), Clock::Real());
  o.database_clock = nullptr;  // the real one: clock_timestamp()
  std::unique_ptr<TokenStore> store = Open(o);
  const absl::Time before = absl::Now();
  absl::StatusOr<absl::Time> now = store->ClockNow();
  const absl::Time after = absl::Now();
  REQUIRE(now.ok());
  // The test cluster runs on this machine: one clock, read between the two.
  CHECK(*now >= before - absl::Milliseconds(1));
  CHECK(*now <= after + absl::Milliseconds(1));
}

// Issue 22: the reaper on a replica whose clock ran 6 minutes ahead deleted revocations the
// other replicas still needed (a replica that started later loaded a log without them).
TEST_CASE("PostgresStore: a replica whose clock runs ahead of the database's purges nothing early",
          "[storage][postgres]") {
  auto db = FreshDatabase();
  OffsetClock ahead(absl::Minutes(6));
  PostgresStoreOptions o = OptionsFor(db->dsn(), &ahead);
  o.database_clock = nullptr;  // the real one: clock_timestamp()
  std::unique_ptr<TokenStore> fast = Open(o);
  const absl::Time now = absl::Now();  // the database's time, and a correct replica's
  for (int i = 0; i < 20; ++i) {
    REQUIRE(fast->DenyJti(absl::StrCat("jti-", i), now + absl::Minutes(2)).ok());
  }
  REQUIRE(fast->PurgeExpired().ok());
  CHECK(Sql(db->dsn(), "SELECT count(*) FROM ta_revocations")[0][0] == "20");
  CHECK(Sql(db->dsn(), "SELECT count(*) FROM ta_denylist")[0][0] == "20");
  // A replica with a correct clock starting now still finds every one.
  std::unique_ptr<TokenStore> later = Open(OptionsFor(db->dsn(), Clock::Real()));
  absl::StatusOr<std::vector<RevocationEntry>> log = later->ReadRevocations(0, absl::Now(), 100);
  REQUIRE(log.ok());
  CHECK(log->size() == 20);
}

TEST_CASE("PostgresStore: two stores on one database share one rotation race",
          "[storage][postgres][concurrency]") {
  auto db = FreshDatabase();
  FakeClock clock;
  std::unique_ptr<TokenStore> replicas[2] = {Open(OptionsFor(db->dsn(), &clock)),
                                             Open(OptionsFor(db->dsn(), &clock))};
  FamilyRecord f = MakeFamily(FamilyIdFor(1), "alice", clock.Now());
  REQUIRE(
      replicas[0]->CreateFamily(f, MakeRefresh(f.family_id, 0, clock.Now()), std::nullopt).ok());
  constexpr int kThreads = 32;
  std::vector<RotateResult> results(kThreads);
  std::vector<char> ok(kThreads, 0);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      RotateRequest req = MakeRotate(f.family_id, 0, clock.Now());
      start.arrive_and_wait();
      absl::StatusOr<RotateOutcome> out = replicas[t % 2]->Rotate(req);
      ok[t] = out.ok();
      if (out.ok()) results[t] = out->result;
    });
  }
  for (std::thread& t : threads) t.join();
  std::map<RotateResult, int> counts;
  for (int t = 0; t < kThreads; ++t) {
    REQUIRE(ok[t]);
    ++counts[results[t]];
  }
  CHECK(counts[RotateResult::kRotated] == 1);
  CHECK(counts[RotateResult::kReuseDetected] == 1);
  CHECK(counts[RotateResult::kFamilyRevoked] == kThreads - 2);
}

TEST_CASE("PostgresStore: GetStats reports the database's bytes", "[storage][postgres]") {
  auto db = FreshDatabase();
  FakeClock clock;
  std::unique_ptr<TokenStore> store = Open(OptionsFor(db->dsn(), &clock));
  absl::StatusOr<StoreStats> stats = store->GetStats();
  REQUIRE(stats.ok());
  CHECK(stats->disk_bytes > 0);
}

}  // namespace
}  // namespace ta::storage

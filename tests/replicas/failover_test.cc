// Failover with nothing lost (issue 14 item 5): a primary and a synchronous standby
// (pg_basebackup -R, synchronous_standby_names = '*', the store commits with
// synchronous_commit = on); three replicas with a multi-host DSN (both sockets,
// target_session_attrs=read-write) under a mixed write load; each round SIGKILLs every process
// of the primary (a machine that died), promotes the standby, waits until every replica
// writes again, then checks that every acknowledged issue, rotation and revocation is on the
// new primary: directly in ta_families (generation, revoked) and through a replica
// (GetFamily, every remembered token introspected). The old primary then comes back as the
// new standby (rebuilt from a base backup) for the next round.
//   CI: 2 rounds; replica_tests "[failover]" --failover_rounds N (--long: 25).
#include <atomic>
#include <catch2/catch.hpp>
#include <iostream>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "storage/postgres/sql_session.h"
#include "tests/replicas/flags.h"
#include "tests/replicas/replica_set.h"
#include "tests/replicas/workload.h"

namespace ta::testing {
namespace {

constexpr int kWorkers = 4;

absl::StatusOr<std::vector<std::vector<std::string>>> Sql(const std::string& dsn,
                                                          const std::string& query) {
  absl::StatusOr<std::unique_ptr<storage::SqlSession>> session =
      storage::SqlSession::Connect(dsn);
  if (!session.ok()) return session.status();
  return (*session)->Query(query);
}

void SetSynchronousStandby(const PgCluster& cluster, bool on) {
  absl::Status s = Sql(cluster.dsn(), absl::StrCat("ALTER SYSTEM SET synchronous_standby_names = '",
                                                   on ? "*" : "", "'"))
                       .status();
  INFO(s.ToString());
  REQUIRE(s.ok());
  REQUIRE(Sql(cluster.dsn(), "SELECT pg_reload_conf()").ok());
}

// Waits until `primary` has a synchronous standby that has flushed everything written so far:
// from then on every acknowledged commit is on both.
void AwaitSynchronousStandby(const PgCluster& primary) {
  absl::StatusOr<std::vector<std::vector<std::string>>> lsn =
      Sql(primary.dsn(), "SELECT pg_current_wal_lsn()");
  REQUIRE(lsn.ok());
  const std::string query = absl::StrCat(
      "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync' AND flush_lsn >= '",
      (*lsn)[0][0], "'::pg_lsn");
  const bool synced = PollUntil(absl::Seconds(60), [&] {
    absl::StatusOr<std::vector<std::vector<std::string>>> rows = Sql(primary.dsn(), query);
    return rows.ok() && (*rows)[0][0] == "1";
  });
  REQUIRE(synced);
}

std::string MultiHostDsn(const PgCluster& a, const PgCluster& b, const std::string& dbname) {
  return absl::StrCat("host=", a.dir(), ",", b.dir(), " port=", a.port(), ",", b.port(),
                      " user=postgres dbname=", dbname, " target_session_attrs=read-write");
}

TEST_CASE("Replicas: failover to a synchronous standby under write load loses nothing "
          "acknowledged",
          "[replicas][failover]") {
  absl::StatusOr<std::unique_ptr<PgCluster>> first = PgCluster::Start(/*watchdog=*/true);
  INFO(first.status().ToString());
  REQUIRE(first.ok());
  absl::StatusOr<std::unique_ptr<PgCluster>> second =
      PgCluster::StartStandby(**first, /*watchdog=*/true);
  INFO(second.status().ToString());
  REQUIRE(second.ok());
  PgCluster* primary = first->get();
  PgCluster* standby = second->get();
  const std::string dbname = "ta_failover";
  REQUIRE(Sql(primary->dsn(), "CREATE DATABASE " + dbname).ok());
  SetSynchronousStandby(*primary, true);
  AwaitSynchronousStandby(*primary);

  ReplicaSetOptions options;
  options.dsn = MultiHostDsn(*primary, *standby, dbname);
  absl::StatusOr<std::unique_ptr<ReplicaSet>> started = ReplicaSet::Start(options);
  INFO(started.status().ToString());
  REQUIRE(started.ok());
  ReplicaSet& replicas = **started;

  // A call that fails UNAVAILABLE (or times out) may have committed or not: its outcome is
  // learnt from the store afterwards. Anything else is an error.
  std::atomic<int64_t> unavailable{0};
  Excuse excuse = [&](int, const Outcome& o) {
    const bool fault = o.status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                       o.status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
    if (fault) ++unavailable;
    return fault;
  };
  std::mt19937_64 rng(std::random_device{}());
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < kWorkers; ++i) {
    workers.push_back(std::make_unique<Worker>(i, rng(), replicas.all(), nullptr, excuse));
  }

  int64_t facts = 0, rows = 0, lost = 0;
  absl::Duration slowest_recovery;
  for (int round = 1; round <= g_failover_rounds; ++round) {
    INFO("round " << round << " (primary " << primary->dir() << ")\n" << replicas.Logs());
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (auto& w : workers) threads.emplace_back([&, w = w.get()] { w->Run(stop); });
    absl::SleepFor(absl::Milliseconds(std::uniform_int_distribution<int>(500, 1500)(rng)));

    const absl::Time killed = absl::Now();
    REQUIRE(primary->KillHard().ok());
    // One standby only: once promoted it has none, so it must not wait for one (it is
    // rebuilt below, and made synchronous again before the next kill).
    SetSynchronousStandby(*standby, false);
    REQUIRE(standby->Promote().ok());
    const absl::Time promoted = absl::Now();
    for (int i = 0; i < replicas.size(); ++i) {
      INFO("replica " << i << " never wrote again");
      REQUIRE(PollUntil(absl::Seconds(30), [&] {
        v1::TokenPair pair;
        return replicas.at(i).Issue("probe", &pair).ok();
      }));
    }
    const absl::Duration recovery = absl::Now() - killed;
    slowest_recovery = std::max(slowest_recovery, recovery);
    absl::SleepFor(absl::Milliseconds(500));  // load on the new primary
    stop = true;
    for (std::thread& t : threads) t.join();
    const absl::Time last_ack = absl::Now();

    std::vector<FamilyFacts*> families;
    for (auto& w : workers) {
      for (const std::string& e : w->errors()) FAIL_CHECK("round " << round << ": " << e);
      w->errors().clear();
      for (FamilyFacts& f : w->families()) families.push_back(&f);
    }
    absl::SleepFor(last_ack + kMaxLag + absl::Milliseconds(100) - absl::Now());
    facts += VerifyThrough(replicas.at(round % replicas.size()), families);
    rows += VerifyInDatabase(standby->dsn() + " dbname=" + dbname, families, &lost);
    std::cout << "failover round " << round << ": promoted " << promoted - killed
              << " after the kill; all 3 replicas writing " << recovery << " after it; "
              << families.size() << " families checked on the new primary" << std::endl;

    REQUIRE(primary->RebuildAsStandbyOf(*standby).ok());
    SetSynchronousStandby(*standby, true);
    AwaitSynchronousStandby(*standby);
    std::swap(primary, standby);
  }
  WorkloadTally total;
  for (auto& w : workers) total.Add(w->tally());
  std::cout << "failover: " << g_failover_rounds << " rounds (SIGKILL primary, promote standby) "
            << "under load; acknowledged " << total.ToString() << " ("
            << total.writes_acked() << " acknowledged writes); calls UNAVAILABLE during "
            << "failovers " << unavailable.load() << "; facts checked through replicas " << facts
            << ", family rows compared in SQL " << rows << "; lost " << lost << "; "
            << "slowest recovery " << slowest_recovery << std::endl;
  CHECK(lost == 0);
  CHECK(total.acked["refresh"] > 0);
  CHECK(total.acked["revoke_family"] + total.acked["revoke_access_token"] > 0);
}

}  // namespace
}  // namespace ta::testing

// A throwaway PostgreSQL 15 cluster for tests, and a fresh database per test case.
//
// PgCluster::Start runs initdb (as the `postgres` user when we are root: initdb refuses
// root) into a new temp dir, and pg_ctl start with a free port, the Unix socket in that dir
// and no TCP listener (listen_addresses = ''), fsync off. It never touches a system
// cluster. The binaries come from /usr/lib/postgresql/15/bin, not PATH. When PostgreSQL is
// missing the start fails loudly (scripts/setup.sh installs it); tests never skip.
//
// One cluster per ctest run: the CTest fixture (tests/support/CMakeLists.txt) starts it with
// `ta_test_pg_cluster start FILE`, the tests find its DSN through the environment variable
// TA_TEST_PG_CLUSTER_FILE, and `ta_test_pg_cluster stop FILE` removes it. A test binary run
// by hand, without that variable, starts its own cluster on first use; a watchdog child
// process stops and removes it when the test process ends, however it ends.
//
// Thread-safety: TestDatabase::Create and SharedTestClusterDsn are thread-safe.
#ifndef TA_TESTS_SUPPORT_PG_CLUSTER_H_
#define TA_TESTS_SUPPORT_PG_CLUSTER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace ta::testing {

class PgCluster {
 public:
  // `watchdog`: also fork a process that removes the cluster when this process exits.
  // `extra_conf`: lines appended to postgresql.conf before the first start.
  static absl::StatusOr<std::unique_ptr<PgCluster>> Start(bool watchdog,
                                                          const std::string& extra_conf = "");
  // A streaming standby of `primary` in a directory of its own (pg_basebackup -R over the
  // primary's socket, its own port), started and replicating. With synchronous_standby_names
  // set on the primary it is the synchronous standby (walreceiver name: any, so use '*').
  static absl::StatusOr<std::unique_ptr<PgCluster>> StartStandby(const PgCluster& primary,
                                                                 bool watchdog);
  // Stops the cluster and removes its directory.
  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  // Connection string of the `postgres` database as superuser `postgres`.
  const std::string& dsn() const { return dsn_; }
  const std::string& dir() const { return dir_; }  // also the Unix socket directory
  int port() const { return port_; }
  // Stops the server at once (pg_ctl stop -m immediate), keeping its data; Restart brings
  // it back on the same socket. For connection-loss tests.
  absl::Status Kill();
  absl::Status Restart();
  // SIGKILLs the postmaster and every backend at once (a machine that died): no shutdown
  // checkpoint, sockets left behind. Waits until they are gone.
  absl::Status KillHard();
  // SIGSTOP / SIGCONT of the postmaster and all its children: a server that hangs without
  // closing a connection.
  absl::Status Pause();
  absl::Status Resume();
  // pg_ctl promote (a standby becomes a primary); waits until it accepts writes.
  absl::Status Promote();
  // Throws this cluster's data away and makes it, on the same port and socket, a streaming
  // standby of `primary` (after a failover: the old primary comes back as the standby).
  absl::Status RebuildAsStandbyOf(const PgCluster& primary);
  // Leaves the cluster running when this object goes (the fixture's start command).
  void Detach() { detached_ = true; }
  // Stops and removes the cluster described by (dir) — the fixture's stop command.
  static void Remove(const std::string& dir);

 private:
  PgCluster() = default;
  void StartWatchdog();
  absl::Status BaseBackupFrom(const PgCluster& primary);
  absl::Status Signal(int signal);
  std::string dir_, dsn_;
  int port_ = 0;
  bool detached_ = false;
  int watchdog_pipe_ = -1;
  int watchdog_pid_ = -1;
};

// The DSN of this run's cluster: the fixture's (TA_TEST_PG_CLUSTER_FILE) or, without the
// fixture, one started for this process on first use (and kept until the process exits).
absl::StatusOr<std::string> SharedTestClusterDsn();

// A database of its own for one test case, dropped (WITH FORCE) on destruction.
class TestDatabase {
 public:
  // In SharedTestClusterDsn()'s cluster.
  static absl::StatusOr<std::unique_ptr<TestDatabase>> Create();
  // In a given cluster.
  static absl::StatusOr<std::unique_ptr<TestDatabase>> CreateIn(const std::string& cluster_dsn);
  ~TestDatabase();

  const std::string& dsn() const { return dsn_; }

 private:
  TestDatabase() = default;
  std::string cluster_dsn_, name_, dsn_;
};

}  // namespace ta::testing

#endif  // TA_TESTS_SUPPORT_PG_CLUSTER_H_

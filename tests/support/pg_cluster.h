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
  static absl::StatusOr<std::unique_ptr<PgCluster>> Start(bool watchdog);
  // Stops the cluster and removes its directory.
  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  // Connection string of the `postgres` database as superuser `postgres`.
  const std::string& dsn() const { return dsn_; }
  const std::string& dir() const { return dir_; }
  // Stops the server at once (pg_ctl stop -m immediate), keeping its data; Restart brings
  // it back on the same socket. For connection-loss tests.
  absl::Status Kill();
  absl::Status Restart();
  // Leaves the cluster running when this object goes (the fixture's start command).
  void Detach() { detached_ = true; }
  // Stops and removes the cluster described by (dir) — the fixture's stop command.
  static void Remove(const std::string& dir);

 private:
  PgCluster() = default;
  void StartWatchdog();
  std::string dir_, dsn_;
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

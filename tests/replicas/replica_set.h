// Replicas for tests: a throwaway PostgreSQL of the test's own and N real token-authority
// processes over one database in it (DESIGN §11), each on 127.0.0.1 port 0 with a data
// directory of its own and the same admin API key, signing keys and flags.
//
// ReplicaFlags() is the one place that says how a replica is configured (store, the shared
// key-encryption key, lag bound); every case and the failover test start their servers
// through it.
//
// Not thread-safe: one thread starts, restarts and stops replicas; the RemoteServer stubs
// may be used from any thread while the replica set does not change.
#ifndef TA_TESTS_REPLICAS_REPLICA_SET_H_
#define TA_TESTS_REPLICAS_REPLICA_SET_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/reliability/remote.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/temp_dir.h"

namespace ta::testing {

// The lag bound every replica runs with (--max_revocation_lag), and so what tests wait for.
inline constexpr absl::Duration kMaxLag = absl::Seconds(1);

// A PostgreSQL cluster of the test's own (stopped and removed with it) and a fresh database.
struct PgEnv {
  std::unique_ptr<PgCluster> cluster;
  std::unique_ptr<TestDatabase> db;
};
absl::StatusOr<PgEnv> StartPg();

struct ReplicaSetOptions {
  // The database every replica uses (--postgres_dsn); may be multi-host.
  std::string dsn;
  int replicas = 3;
  // Extra flags for every replica (e.g. --reuse_grace=10s).
  std::vector<std::string> flags;
  // Extra flags for replica i only, after `flags` (e.g. {2, {"--testing_clock_offset=6m"}}).
  std::map<int, std::vector<std::string>> replica_flags;
};

// The flags of every replica but --listen and --data_dir (RemoteServer adds those):
// the store, the KEK file and the lag bound. `shared_dir` holds what all replicas share.
std::vector<std::string> ReplicaFlags(const ReplicaSetOptions& options,
                                      const std::string& shared_dir);

class ReplicaSet {
 public:
  // Starts the replicas one after the other (the first creates the key ring in the store).
  static absl::StatusOr<std::unique_ptr<ReplicaSet>> Start(ReplicaSetOptions options);
  ~ReplicaSet() = default;  // the RemoteServers SIGKILL what still runs

  int size() const { return static_cast<int>(servers_.size()); }
  RemoteServer& at(int i) { return *servers_[i]; }
  std::vector<RemoteServer*> all();
  // Starts replica `i` again (same data dir, same flags) after it stopped or was killed.
  absl::Status Restart(int i);
  // Every replica's stderr, for INFO on a failure.
  std::string Logs() const;

 private:
  ReplicaSet() = default;
  ReplicaSetOptions options_;
  TempDir dir_;
  std::vector<std::unique_ptr<RemoteServer>> servers_;
};

// grpc.health.v1 Check("") on a fresh channel: SERVING, NOT_SERVING, or UNKNOWN when the call
// itself failed.
enum class Health { kServing, kNotServing, kUnknown };
Health CheckHealth(const RemoteServer& server, absl::Duration deadline = absl::Seconds(2));

// Calls `done` every `every` until it returns true or `timeout` passes; whether it did.
bool PollUntil(absl::Duration timeout, const std::function<bool()>& done,
               absl::Duration every = absl::Milliseconds(20));

// Introspect as the admin with the reason; one word for assertions: "active", the inactive
// reason, or "error:<ta-reason>" when the call failed (e.g. error:revocations_stale).
std::string IntrospectWord(RemoteServer& server, const std::string& token);

// p-th percentile (0..100) of `values` (sorted in place); 0 for none.
absl::Duration Percentile(std::vector<absl::Duration>& values, double p);

// A PostgreSQL of the case's own and three replicas over it with `flags` added, each one
// SERVING on gRPC health when `wait_serving` (Catch2: REQUIREs that all of it starts).
struct Fixture {
  PgEnv pg;
  std::unique_ptr<ReplicaSet> replicas;
};
Fixture StartFixture(std::vector<std::string> flags = {}, bool wait_serving = false);

}  // namespace ta::testing

#endif  // TA_TESTS_REPLICAS_REPLICA_SET_H_

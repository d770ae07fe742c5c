// A mixed write workload spread over replicas that remembers every acknowledged fact, and
// the checks of those facts afterwards, through any replica and directly in PostgreSQL.
//
// Each Worker owns its families (nothing is shared while it runs) and sends every call to a
// replica picked at random. Operations: issue, refresh, revoke an access token, revoke a
// family (by id, or by its refresh token), replay a spent refresh token (reuse: the family
// dies), introspect the current refresh token. A call that fails where the test caused a
// fault (the `excused` predicate: the replica was killed, PostgreSQL failed over) has an
// unknown outcome: the family is set aside and the check later learns from the store what
// happened. Any other failure is an error.
//
// Thread-safety: a Worker is used by one thread; Verify* from one thread after workers stop.
#ifndef TA_TESTS_REPLICAS_WORKLOAD_H_
#define TA_TESTS_REPLICAS_WORKLOAD_H_

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/reliability/remote.h"

namespace ta::testing {

struct FamilyFacts {
  std::string id;
  std::string current;  // acknowledged current refresh token; "" once unknown
  uint64_t generation = 0;
  std::vector<std::string> spent;          // acknowledged spent refresh tokens (latest few)
  std::vector<std::string> access;         // acknowledged access tokens, not revoked (latest few)
  std::vector<std::string> denied_access;  // acknowledged RevokeToken of an access token
  bool revoked = false;                    // an acknowledged revocation covers the family
  bool uncertain_refresh = false;          // a refresh's outcome is unknown
  bool maybe_revoked = false;              // a revocation's outcome is unknown
};

struct WorkloadTally {
  std::map<std::string, int64_t> acked;  // operation -> acknowledged calls
  int64_t uncertain = 0;                 // calls whose outcome a fault hid
  int64_t writes_acked() const;          // issue, refresh and every kind of revocation
  void Add(const WorkloadTally& other);
  std::string ToString() const;
};

// Whether a failed call to replica `replica` is explained by a fault the test caused.
using Excuse = std::function<bool(int replica, const Outcome& outcome)>;

class Worker {
 public:
  // `replicas`: where calls go; `skip`: a replica index not to call (-1: none), read per call.
  Worker(int index, uint64_t seed, std::vector<RemoteServer*> replicas,
         const std::atomic<int>* skip, Excuse excused);

  // Runs operations until `stop` is set.
  void Run(const std::atomic<bool>& stop);
  // One operation.
  void Step();

  std::vector<FamilyFacts>& families() { return families_; }
  std::vector<std::string>& errors() { return errors_; }
  const WorkloadTally& tally() const { return tally_; }
  // Calls answered OK by replica `i` so far (may be read while the worker runs).
  int64_t ok_by_replica(int i) const { return ok_by_replica_[i].load(); }

 private:
  int Pick();
  FamilyFacts* PickLive();
  // Records a failed call: excused (unknown outcome, returns true) or an error.
  bool Failed(int replica, const Outcome& r, const std::string& what);
  void Ok(int replica) { ++ok_by_replica_[replica]; }
  static constexpr int kMaxReplicas = 8;
  void Issue();
  void Refresh(FamilyFacts& f);
  void RevokeAccess(FamilyFacts& f);
  void RevokeFamily(FamilyFacts& f, bool by_refresh_token);
  void Replay(FamilyFacts& f);
  void IntrospectCurrent(FamilyFacts& f);

  const int index_;
  std::mt19937_64 rng_;
  std::vector<RemoteServer*> replicas_;
  const std::atomic<int>* skip_;
  Excuse excused_;
  std::vector<FamilyFacts> families_;
  std::vector<std::string> errors_;
  WorkloadTally tally_;
  std::array<std::atomic<int64_t>, kMaxReplicas> ok_by_replica_{};
  int64_t issued_ = 0;
};

// A mixed load of `workers` Workers over `servers`, each in a thread of its own, from
// construction until Stop (or destruction). Worker i has index first_index + i and seed
// first_seed + i, or a random seed when first_seed is nullopt; `skip` and `excused` as
// Worker's. Not thread-safe: one thread starts and stops it.
class BackgroundLoad {
 public:
  BackgroundLoad(int workers, int first_index, std::optional<uint64_t> first_seed,
                 const std::vector<RemoteServer*>& servers, const std::atomic<int>* skip = nullptr,
                 const Excuse& excused = nullptr);
  ~BackgroundLoad() { Stop(); }
  BackgroundLoad(const BackgroundLoad&) = delete;
  BackgroundLoad& operator=(const BackgroundLoad&) = delete;

  // Stops the workers and joins their threads (again: nothing).
  void Stop();
  // Read after Stop.
  std::vector<std::unique_ptr<Worker>>& workers() { return workers_; }
  WorkloadTally Tally() const;
  // Acknowledged writes and introspections a second, from construction to Stop.
  double calls_per_second() const;
  absl::Duration duration() const { return stopped_ - started_; }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  absl::Time started_, stopped_;
};

// Checks every fact of `families` through `via` (GetFamily and IntrospectBatch), after first
// learning from the store the outcome of what a fault hid. Records failures with Catch2
// CHECKs; returns the number of facts checked. Call it when every acknowledged write is older
// than the lag bound, so a replica's view must hold them all.
int64_t VerifyThrough(RemoteServer& via, const std::vector<FamilyFacts*>& families);

// Checks the families' generation and revoked flag against ta_families directly over `dsn`
// (the new primary after a failover). Returns the number of families compared; adds those
// whose row is missing or disagrees to `*lost` (each also a failed CHECK).
int64_t VerifyInDatabase(const std::string& dsn, const std::vector<FamilyFacts*>& families,
                         int64_t* lost);

}  // namespace ta::testing

#endif  // TA_TESTS_REPLICAS_WORKLOAD_H_

// An in-process DPoP replay cache (RFC 9449 §11.1) for a verifier without a shared store: the
// client's LocalVerifier (client/verifier.h) and so the sidecar. The server's replay cache is
// its store's (TokenStore::RecordProofJti), shared by replicas; this one is per process, so
// several processes of one resource server each accept a proof once (the README says so).
//
// Bounded: at most `capacity` live keys. Expired keys are dropped as new ones arrive (oldest
// first); when every slot holds a live key, Record fails closed (RESOURCE_EXHAUSTED
// "dpop_replay_cache_full") rather than forget a key a replay could still use.
// Thread-safety: thread-safe.
#ifndef TA_TOKEN_PROOF_REPLAY_CACHE_H_
#define TA_TOKEN_PROOF_REPLAY_CACHE_H_

#include <cstddef>
#include <deque>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ta::token {

class ProofReplayCache {
 public:
  explicit ProofReplayCache(size_t capacity) : capacity_(capacity) {}

  // Records `replay_key` until `keep_until`: true when it was not held (or had expired by
  // `now`), false when it is held and live.
  absl::StatusOr<bool> Record(absl::string_view replay_key, absl::Time keep_until, absl::Time now);

  size_t size() const;

 private:
  // Drops expired keys from the front of the insertion order (keys are kept for one window,
  // so the order of insertion is nearly that of expiry; a live key stops the sweep).
  void SweepLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t capacity_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, absl::Time> keys_ ABSL_GUARDED_BY(mu_);
  std::deque<std::pair<std::string, absl::Time>> order_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ta::token

#endif  // TA_TOKEN_PROOF_REPLAY_CACHE_H_

// Remembers access tokens whose signature already verified, so the hot path (Introspect of
// a token seen before) skips the ~80 µs ES256 verification (DESIGN §9).
//
// Keyed by the whole token text (a hit is an exact match, not a hash that could collide).
// An entry lives until min(exp + leeway, its key's retire time); everything that can change
// per call (audience, time window, denylist, family, subject) is still checked by the
// caller on every hit. Bounded: at most `capacity` entries; a full shard first drops its
// expired entries, then is cleared (the cheapest bound that never blocks for long).
// Thread-safe: sharded, one mutex per shard.
#ifndef TA_SERVER_CORE_VERIFY_CACHE_H_
#define TA_SERVER_CORE_VERIFY_CACHE_H_

#include <array>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/token/jwt.h"

namespace ta::core {

class VerifyCache {
 public:
  // capacity 0 disables the cache.
  explicit VerifyCache(size_t capacity);

  // The verified token, or null when absent or past its entry's end.
  std::shared_ptr<const token::VerifiedJwt> Find(absl::string_view token, absl::Time now);
  void Insert(absl::string_view token, std::shared_ptr<const token::VerifiedJwt> verified,
              absl::Time until, absl::Time now);
  // Forgets everything: after a key rotation every entry's end must be recomputed.
  void Clear();

 private:
  static constexpr size_t kShards = 16;
  struct Entry {
    std::shared_ptr<const token::VerifiedJwt> verified;
    absl::Time until;
  };
  struct Shard {
    absl::Mutex mu;
    absl::flat_hash_map<std::string, Entry> entries ABSL_GUARDED_BY(mu);
  };
  Shard& ShardFor(absl::string_view token);

  const size_t per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace ta::core

#endif  // TA_SERVER_CORE_VERIFY_CACHE_H_

// Remembers access tokens whose signature already verified, so the hot path (Introspect of
// a token seen before) skips the ~80 µs ES256 verification (DESIGN §9).
//
// Keyed by the whole token text (a hit is an exact match, not a hash that could collide).
// An entry lives until min(exp + leeway, its key's retire time); everything that can change
// per call (audience, time window, denylist, family, subject) is still checked by the
// caller on every hit. Bounded by bytes (base/sharded_cache.h): an entry is charged
// its token, its claims (text and parsed) and a fixed overhead, so tokens with large extra
// claims cannot multiply the memory. Thread-safe.
#ifndef TA_SERVER_CORE_VERIFY_CACHE_H_
#define TA_SERVER_CORE_VERIFY_CACHE_H_

#include <memory>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/sharded_cache.h"
#include "token/jwt.h"

namespace ta::core {

class VerifyCache {
 public:
  // capacity_bytes 0 disables the cache.
  explicit VerifyCache(size_t capacity_bytes) : cache_(capacity_bytes) {}

  // The verified token, or null when absent or past its entry's end.
  std::shared_ptr<const token::VerifiedJwt> Find(absl::string_view token, absl::Time now) {
    return cache_.Find(token, now);
  }
  void Insert(absl::string_view token, std::shared_ptr<const token::VerifiedJwt> verified,
              absl::Time until, absl::Time now) {
    const size_t value_bytes = ChargeOf(*verified);
    cache_.Insert(token, std::move(verified), value_bytes, until, now);
  }
  // Forgets everything: after a key rotation every entry's end must be recomputed.
  void Clear() { cache_.Clear(); }
  // Bytes charged to the entries held now.
  size_t bytes() { return cache_.bytes(); }

  // What a verified token holds: its claims text, and the parsed claims (about as much again).
  static size_t ChargeOf(const token::VerifiedJwt& verified) {
    return sizeof(token::VerifiedJwt) + 2 * verified.claims_json.size();
  }

 private:
  ShardedCache<token::VerifiedJwt> cache_;
};

}  // namespace ta::core

#endif  // TA_SERVER_CORE_VERIFY_CACHE_H_

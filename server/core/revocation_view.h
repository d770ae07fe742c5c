// RevocationView: the revocations that can still matter, held in memory (DESIGN §10), so
// introspecting an access token reads no store at all: signature (cached), claims, and two
// lookups here (the token's jti, its family).
//
// Built from the store's revocation log (storage/token_store.h): loaded at start, then kept
// current by the store's listener (this server's own writes, applied before they are
// acknowledged) and, where other processes write the same store (replicas), by a follower
// that reads the log and calls MarkCurrent. An entry is dropped once its live_until has
// passed: no token it kills can verify after that, so the view holds only recent
// revocations however many sessions exist. "Passed" by this server's clock only (DESIGN §13):
// never by another replica's, whose clock may run ahead (an entry's revoked_at is the
// writer's clock).
//
// Clock offset: where the store has a clock of its own (PostgreSQL), the follower measures
// this server's offset to it at every poll (SetClockOffset). Past the bound the view is not
// current, and callers refuse with "clock_offset_exceeded": this server's idea of which
// tokens are alive cannot be trusted.
//
// Currency: a view that follows a shared log is trusted only while the follower has proved
// it current within `max_lag`; otherwise IsCurrent is false and callers refuse to call a
// token active ("revocations_stale") rather than guess. A view whose store has no other
// writer is always current.
//
// Thread-safe: sharded; lookups take a shard's reader lock.
#ifndef TA_SERVER_CORE_REVOCATION_VIEW_H_
#define TA_SERVER_CORE_REVOCATION_VIEW_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "storage/token_store.h"

namespace ta::core {

class RevocationView {
 public:
  // follows_shared_log: other processes write the store, so the view is current only as far
  // as MarkCurrent says. max_lag: how old that proof may be before IsCurrent turns false.
  // clock: judges which entries are dead (borrowed; must outlive the view).
  RevocationView(bool follows_shared_log, absl::Duration max_lag, const Clock* clock);

  // Adds `entry` (idempotent: the same revocation applied twice is one).
  void Apply(const storage::RevocationEntry& entry);
  // Reads the whole live log from `store` and applies it.
  absl::Status Load(storage::TokenStore& store, absl::Time now);

  // What kills an access token with this jti and family (raw id) at `now`: "token_revoked",
  // "family_revoked", "subject_revoked", or "" when nothing does.
  absl::string_view Check(absl::string_view jti, absl::string_view family_id,
                          absl::Time now) const;

  // Everything committed to the log before `as_of` has been applied.
  void MarkCurrent(absl::Time as_of);
  // Whether lookups can be trusted at `now` (see the header comment).
  bool IsCurrent(absl::Time now) const;
  // The instant the view is proved current to (InfiniteFuture when it has no other writer).
  absl::Time current_as_of() const;

  // The follower's latest measurement of this server's clock minus the store's, and whether
  // it is within the allowed offset. While it is not, IsCurrent is false.
  void SetClockOffset(absl::Duration offset, bool within_bound);
  // Whether the latest measurement was past the bound (false until one is made).
  bool clock_offset_exceeded() const {
    return clock_offset_exceeded_.load(std::memory_order_acquire);
  }
  // The latest measurement; nullopt until one is made.
  std::optional<absl::Duration> clock_offset() const;

  // The highest sequence number applied (followers resume after it).
  uint64_t last_seq() const { return last_seq_.load(std::memory_order_acquire); }
  // Live and not-yet-swept entries (for tests and stats).
  size_t size() const;

 private:
  static constexpr size_t kShards = 16;
  struct Entry {
    absl::Time live_until;
    storage::RevocationEntry::Kind kind;
  };
  using Map = absl::flat_hash_map<std::string, Entry>;
  struct Shard {
    mutable absl::Mutex mu;
    Map jtis ABSL_GUARDED_BY(mu);
    Map families ABSL_GUARDED_BY(mu);  // revoked, or killed by the subject's cutoff
    size_t swept_size ABSL_GUARDED_BY(mu) = 0;  // entries after the last sweep
  };
  Shard& ShardFor(absl::string_view id) const;
  // The entry for `id` in `map` still live at `now`, if any.
  static const Entry* Find(const Map& map, absl::string_view id, absl::Time now);

  const bool follows_shared_log_;
  const absl::Duration max_lag_;
  const Clock* const clock_;
  mutable std::array<Shard, kShards> shards_;
  std::atomic<uint64_t> last_seq_{0};
  std::atomic<int64_t> current_as_of_micros_;
  std::atomic<bool> clock_offset_exceeded_{false};
  std::atomic<bool> clock_offset_measured_{false};
  std::atomic<int64_t> clock_offset_micros_{0};
};

}  // namespace ta::core

#endif  // TA_SERVER_CORE_REVOCATION_VIEW_H_

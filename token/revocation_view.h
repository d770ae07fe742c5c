// RevocationView: the revocations that can still matter, held in memory (DESIGN §10), so
// introspecting an access token reads no store at all: signature (cached), claims, and two
// lookups here (the token's jti, its family).
//
// Built from the store's revocation log (entries: base/revocation.h): loaded at start (by the
// server: ReplayRevocationLog in server/core/view_checkpoint.h, after the view's checkpoint
// when there is one), then kept current by the store's listener (this
// server's own writes, applied before they are acknowledged) and, where other processes write
// the same store (replicas), by a follower that reads the log and calls MarkCurrent. An entry is
// dropped once its live_until has passed: no token it kills can verify after that, so the view
// holds only recent revocations however many sessions exist. "Passed" by this server's clock
// only (DESIGN §13): never by another replica's, whose clock may run ahead (an entry's
// revoked_at is the writer's clock).
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
// Compact entries (issue 27 item 1): a live entry is a fixed-size 16-byte key and an 8-byte
// value in a flat table, no heap string: ≤ 64 bytes of memory each (ApproximateMemoryBytes:
// 25 bytes per slot with its control byte, a table at least 7/16 full after it doubles, and
// shrunk to fit when a sweep leaves it emptier; dead entries not yet swept count too, as
// before). A family id of 16 bytes (every id the server makes) is its own key. Any other id
// — every jti — is keyed by SipHash-2-4-128 of it under a key drawn at random for each view
// (or kept from the view's checkpoint, a 0600 file of the data directory: view_checkpoint.h),
// so nobody outside this process can aim two ids at one key.
// What a collision does: an id is always stored under its own key, so a revoked id is always
// found — a collision can never make a revoked token look active. It can only make an
// unrevoked token whose key equals a live entry's look revoked (falsely *inactive*), with
// probability ~2^-128 per pair of ids; the reason then names the other entry's kind.
// live_until is kept in microseconds rounded up (the stores keep microseconds, so this is
// exact for every entry of a log; otherwise an entry lives < 1 µs longer, never shorter).
//
// Thread-safe: sharded; lookups take a shard's reader lock.
#ifndef TA_TOKEN_REVOCATION_VIEW_H_
#define TA_TOKEN_REVOCATION_VIEW_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "base/clock.h"
#include "base/revocation.h"

namespace ta::token {

class RevocationView {
 public:
  // follows_shared_log: other processes write the store, so the view is current only as far
  // as MarkCurrent says. max_lag: how old that proof may be before IsCurrent turns false.
  // clock: judges which entries are dead (borrowed; must outlive the view).
  RevocationView(bool follows_shared_log, absl::Duration max_lag, const Clock* clock);

  // Adds `entry` (idempotent: the same revocation applied twice is one).
  void Apply(const RevocationEntry& entry);

  // An entry by reference (the stream's parsed message holds its id): as RevocationEntry, with
  // `id` the jti or the raw family id. No copy of the id is made.
  struct EntryRef {
    uint64_t seq = 0;
    RevocationEntry::Kind kind = RevocationEntry::Kind::kJti;
    absl::string_view id;
    absl::Time live_until;
  };
  // As Apply for each of `entries`, in one pass: keys hashed outside the locks, then each
  // shard locked once for its share of the batch (a stream's batch of 4096 entries takes 16
  // locks, not 4096), no heap allocation per entry.
  void ApplyBatch(absl::Span<const EntryRef> entries);

  // Sizes the tables for about `jtis` jtis and `families` families (a snapshot's size hint),
  // so filling them never rehashes. Only a hint: whatever it says, the entries are those
  // applied (a hint too small: the tables grow as without one; too large: memory held until a
  // sweep shrinks them). Each count is capped at kMaxReserve. Entries already held stay.
  void Reserve(size_t jtis, size_t families);
  static constexpr size_t kMaxReserve = size_t{16} << 20;

  // What kills an access token with this jti and family (raw id) at `now`: "token_revoked",
  // "family_revoked", "subject_revoked", or "" when nothing does.
  absl::string_view Check(absl::string_view jti, absl::string_view family_id, absl::Time now) const;

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
  // The same, by table: jtis, and families (revoked or killed by their subject's cutoff).
  struct Counts {
    size_t jtis = 0, families = 0;
  };
  Counts counts() const;
  // Memory the view holds for its entries: every table's capacity × (slot + control byte),
  // plus the object itself (tests and stats: bytes per entry).
  size_t ApproximateMemoryBytes() const;

  // --- For a checkpoint of the view (server/core/view_checkpoint.h) ---
  // A view whose jti keys are made under `sip_key` (a checkpoint's) instead of a fresh random
  // key, so the entries it imports from that checkpoint are found.
  RevocationView(bool follows_shared_log, absl::Duration max_lag, const Clock* clock,
                 const std::array<uint64_t, 2>& sip_key);
  // One entry as the tables hold it: its 16-byte key (the raw family id, or the SipHash-128 of
  // the id under sip_key(), as two little-endian words) and live_until in microseconds
  // (rounded up; clamped to ±2^62).
  struct RawEntry {
    uint64_t key_lo = 0, key_hi = 0;
    int64_t live_until_micros = 0;
    bool by_subject = false;  // a family killed by its subject's cutoff (families only)
  };
  // The key jtis are hashed under: a secret of this process. Only a checkpoint file (mode
  // 0600, like the other secrets of the data directory) may hold it; never log it.
  const std::array<uint64_t, 2>& sip_key() const { return sip_key_; }
  // Export works shard by shard, so a copy never holds more than one shard's entries.
  static constexpr size_t shard_count() { return kShards; }
  // Appends shard `shard`'s entries still live at `now`: jtis and families. Holds the shard's
  // reader lock while it copies (a few ms for 600 k entries: the shard's Apply waits).
  void ExportShard(size_t shard, absl::Time now, std::vector<RawEntry>* jtis,
                   std::vector<RawEntry>* families) const;
  // A checkpoint's record of one entry, kRecordBytes each: the key's low and high words, then
  // live_until_micros × 2 + 1 for a family killed by its subject's cutoff (+ 0 otherwise), all
  // little-endian 64-bit words.
  static constexpr size_t kRecordBytes = 24;
  // Adds shard `shard`'s records as a view with the same sip_key() exported them (jtis, then
  // families; sizes multiples of kRecordBytes), skipping those dead at `now` (an entry already
  // held keeps the later live_until, as Apply does). Straight from the bytes, into tables
  // sized once. Returns false when a record's key belongs to another shard (a file of another
  // layout): the view is then incomplete, and the caller must discard it. Thread-safe;
  // imports of different shards run in parallel.
  bool ImportShard(size_t shard, absl::string_view jti_records, absl::string_view family_records,
                   absl::Time now);
  // Raises last_seq() to `seq` (what an imported checkpoint covers).
  void AdvanceLastSeq(uint64_t seq);

 private:
  static constexpr size_t kShards = 16;
  // A fixed-size key: the raw 16-byte family id, or the SipHash-128 of any other id.
  struct Key {
    uint64_t lo = 0, hi = 0;
    friend bool operator==(const Key& a, const Key& b) { return a.lo == b.lo && a.hi == b.hi; }
    template <typename H>
    friend H AbslHashValue(H h, const Key& k) {
      return H::combine(std::move(h), k.lo, k.hi);
    }
  };
  // Value: live_until in microseconds (rounded up, clamped to 62 bits) times two, plus 1 when
  // the family was killed by its subject's cutoff (kSubject).
  using Table = absl::flat_hash_map<Key, int64_t>;
  struct Shard {
    mutable absl::Mutex mu;
    Table jtis ABSL_GUARDED_BY(mu);
    Table families ABSL_GUARDED_BY(mu);         // revoked, or killed by the subject's cutoff
    size_t swept_size ABSL_GUARDED_BY(mu) = 0;  // entries after the last sweep
  };
  Key JtiKey(absl::string_view jti) const;
  Key FamilyKey(absl::string_view family_id) const;
  static size_t ShardIndex(const Key& key);
  Shard& ShardFor(const Key& key) const { return shards_[ShardIndex(key)]; }
  // The table's value for `key` becomes `packed` (the later live_until wins, the first kind
  // stays).
  static void Upsert(Table& table, const Key& key, int64_t packed);
  // The amortised sweep of dead entries (see Apply).
  void MaybeSweepLocked(Shard& shard) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // The value for `key` in `table` still live at `now_micros`, if any.
  static const int64_t* Find(const Table& table, const Key& key, int64_t now_micros);
  // ImportShard's inserts of `records` into `table` of `shard` (its mu held); false when one
  // belongs to another shard.
  bool ImportRecords(Table& table, const Shard& shard, absl::string_view records, bool is_jti,
                     int64_t now_micros) const;

  // Random (or a checkpoint's); leaves the process only into the checkpoint file (0600).
  const std::array<uint64_t, 2> sip_key_;
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

namespace revocation_view_internal {
// SipHash-2-4 (Aumasson & Bernstein; OpenSSL's EVP_MAC "SIPHASH") of `data` under `key` (k0,
// k1 as little-endian words of the 16-byte key): the 128-bit and the 64-bit tag. Exposed for
// the reference-vector test, which holds our key and tag layout to the published vectors.
std::array<uint64_t, 2> SipHash128(const std::array<uint64_t, 2>& key, absl::string_view data);
uint64_t SipHash64(const std::array<uint64_t, 2>& key, absl::string_view data);
}  // namespace revocation_view_internal

}  // namespace ta::token

#endif  // TA_TOKEN_REVOCATION_VIEW_H_

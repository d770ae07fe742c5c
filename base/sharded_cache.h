// ShardedCache: a concurrent map from string keys to shared, immutable values, bounded by
// bytes, with an optional end time per entry. What the verification cache (server/core) and
// the rendered-claims cache (server/rpc) are built on.
//
// Bounded by bytes, not entries: an entry is charged its key, the size its owner reports for
// the value, and a fixed overhead, so large tokens or claims cannot multiply the memory a
// count would allow. A shard that would exceed its share first drops its expired entries,
// then is cleared (the cheapest bound that never blocks for long); an entry larger than a
// shard's share is not kept at all. Thread-safe: 16 shards, one mutex each.
#ifndef TA_BASE_SHARDED_CACHE_H_
#define TA_BASE_SHARDED_CACHE_H_

#include <array>
#include <cstddef>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ta {

template <typename Value>
class ShardedCache {
 public:
  // Per entry, besides its key and value: the map slot, the shared_ptr control block, the
  // entry's own fields.
  static constexpr size_t kEntryOverhead = 128;

  // capacity_bytes 0 disables the cache (Find never hits, Insert keeps nothing).
  explicit ShardedCache(size_t capacity_bytes) : per_shard_(capacity_bytes / kShards) {}

  // The value, or null when absent or at/after its entry's `until`.
  std::shared_ptr<const Value> Find(absl::string_view key, absl::Time now) {
    if (per_shard_ == 0) return nullptr;
    Shard& shard = ShardFor(key);
    absl::MutexLock lock(&shard.mu);
    auto it = shard.entries.find(key);
    if (it == shard.entries.end()) return nullptr;
    if (now >= it->second.until) {
      shard.bytes -= it->second.charge;
      shard.entries.erase(it);
      return nullptr;
    }
    return it->second.value;
  }

  // Remembers `value` for `key` until `until`; `value_bytes` is what the value holds.
  void Insert(absl::string_view key, std::shared_ptr<const Value> value, size_t value_bytes,
              absl::Time until, absl::Time now) {
    const size_t charge = key.size() + value_bytes + kEntryOverhead;
    if (per_shard_ == 0 || now >= until || charge > per_shard_) return;
    Shard& shard = ShardFor(key);
    absl::MutexLock lock(&shard.mu);
    if (auto it = shard.entries.find(key); it != shard.entries.end()) {
      shard.bytes -= it->second.charge;
      shard.entries.erase(it);
    }
    if (shard.bytes + charge > per_shard_) {
      absl::erase_if(shard.entries, [&shard, now](const auto& kv) {
        if (now < kv.second.until) return false;
        shard.bytes -= kv.second.charge;
        return true;
      });
      if (shard.bytes + charge > per_shard_) {
        shard.entries.clear();
        shard.bytes = 0;
      }
    }
    shard.entries.emplace(std::string(key), Entry{std::move(value), until, charge});
    shard.bytes += charge;
  }

  void Clear() {
    for (Shard& shard : shards_) {
      absl::MutexLock lock(&shard.mu);
      shard.entries.clear();
      shard.bytes = 0;
    }
  }

  // Bytes charged to the entries held now (never more than the capacity).
  size_t bytes() {
    size_t total = 0;
    for (Shard& shard : shards_) {
      absl::MutexLock lock(&shard.mu);
      total += shard.bytes;
    }
    return total;
  }

 private:
  static constexpr size_t kShards = 16;
  struct Entry {
    std::shared_ptr<const Value> value;
    absl::Time until;
    size_t charge;
  };
  struct Shard {
    absl::Mutex mu;
    absl::flat_hash_map<std::string, Entry> entries ABSL_GUARDED_BY(mu);
    size_t bytes ABSL_GUARDED_BY(mu) = 0;
  };
  Shard& ShardFor(absl::string_view key) { return shards_[absl::HashOf(key) % kShards]; }

  const size_t per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace ta

#endif  // TA_BASE_SHARDED_CACHE_H_

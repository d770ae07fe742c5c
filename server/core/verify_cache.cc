#include "server/core/verify_cache.h"

#include "absl/hash/hash.h"

namespace ta::core {

VerifyCache::VerifyCache(size_t capacity) : per_shard_((capacity + kShards - 1) / kShards) {}

VerifyCache::Shard& VerifyCache::ShardFor(absl::string_view token) {
  return shards_[absl::HashOf(token) % kShards];
}

std::shared_ptr<const token::VerifiedJwt> VerifyCache::Find(absl::string_view token,
                                                           absl::Time now) {
  if (per_shard_ == 0) return nullptr;
  Shard& shard = ShardFor(token);
  absl::MutexLock lock(&shard.mu);
  auto it = shard.entries.find(token);
  if (it == shard.entries.end()) return nullptr;
  if (now >= it->second.until) {
    shard.entries.erase(it);
    return nullptr;
  }
  return it->second.verified;
}

void VerifyCache::Insert(absl::string_view token,
                         std::shared_ptr<const token::VerifiedJwt> verified, absl::Time until,
                         absl::Time now) {
  if (per_shard_ == 0 || now >= until) return;
  Shard& shard = ShardFor(token);
  absl::MutexLock lock(&shard.mu);
  if (shard.entries.size() >= per_shard_) {
    absl::erase_if(shard.entries, [now](const auto& kv) { return now >= kv.second.until; });
    if (shard.entries.size() >= per_shard_) shard.entries.clear();
  }
  shard.entries.insert_or_assign(std::string(token), Entry{std::move(verified), until});
}

void VerifyCache::Clear() {
  for (Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    shard.entries.clear();
  }
}

}  // namespace ta::core

#include "token/proof_replay_cache.h"

#include "base/error.h"

namespace ta::token {

void ProofReplayCache::SweepLocked(absl::Time now) {
  while (!order_.empty() && order_.front().second < now) {
    auto it = keys_.find(order_.front().first);
    // A key recorded again after it expired has a newer entry further back: keep it.
    if (it != keys_.end() && it->second == order_.front().second) keys_.erase(it);
    order_.pop_front();
  }
}

absl::StatusOr<bool> ProofReplayCache::Record(absl::string_view replay_key, absl::Time keep_until,
                                              absl::Time now) {
  absl::MutexLock lock(&mu_);
  SweepLocked(now);
  auto it = keys_.find(replay_key);
  if (it != keys_.end() && now <= it->second) return false;
  if (it == keys_.end() && keys_.size() >= capacity_) {
    return Error(absl::StatusCode::kResourceExhausted, "dpop_replay_cache_full",
                 "too many DPoP proofs within their window to remember; retry later");
  }
  keys_[std::string(replay_key)] = keep_until;
  order_.emplace_back(std::string(replay_key), keep_until);
  return true;
}

size_t ProofReplayCache::size() const {
  absl::MutexLock lock(&mu_);
  return keys_.size();
}

}  // namespace ta::token

#include "server/http/peer_limiter.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace ta::http {

std::string PeerKey(absl::string_view address) {
  const std::string text(address);
  in6_addr v6;
  if (inet_pton(AF_INET6, text.c_str(), &v6) != 1) return text;  // IPv4, or not an address
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    char v4[INET_ADDRSTRLEN];
    if (inet_ntop(AF_INET, &v6.s6_addr[12], v4, sizeof(v4)) != nullptr) return v4;
    return text;
  }
  std::memset(&v6.s6_addr[8], 0, 8);  // keep the /64 prefix
  char prefix[INET6_ADDRSTRLEN];
  if (inet_ntop(AF_INET6, &v6, prefix, sizeof(prefix)) == nullptr) return text;
  return std::string(prefix) + "/64";
}

PeerRateLimiter::PeerRateLimiter(PeerRateOptions options, const Clock* clock)
    : options_(options), clock_(clock) {
  overflow_.tokens = options_.burst;
  overflow_.updated = clock_->Now();
}

size_t PeerRateLimiter::tracked() const {
  absl::MutexLock lock(&mu_);
  return buckets_.size();
}

absl::Duration PeerRateLimiter::Take(Bucket& bucket, absl::Time now) const {
  const double elapsed = std::max(0.0, absl::ToDoubleSeconds(now - bucket.updated));
  bucket.tokens = std::min(options_.burst, bucket.tokens + elapsed * options_.rate);
  bucket.updated = std::max(bucket.updated, now);
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return absl::ZeroDuration();
  }
  return absl::Seconds((1 - bucket.tokens) / options_.rate);
}

void PeerRateLimiter::DropFull(absl::Time now) {
  const absl::Duration refill = absl::Seconds(options_.burst / options_.rate);
  if (now - last_drop_ < refill) return;  // nothing idle that long yet since the last pass
  last_drop_ = now;
  absl::erase_if(buckets_, [&](const auto& entry) {
    const Bucket& b = entry.second;
    return b.tokens + absl::ToDoubleSeconds(now - b.updated) * options_.rate >= options_.burst;
  });
}

absl::Duration PeerRateLimiter::Admit(absl::string_view peer) {
  if (options_.rate <= 0) return absl::ZeroDuration();
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  auto it = buckets_.find(peer);
  if (it == buckets_.end()) {
    if (buckets_.size() >= options_.max_peers) DropFull(now);
    if (buckets_.size() >= options_.max_peers) return Take(overflow_, now);
    it = buckets_.emplace(std::string(peer), Bucket{options_.burst, now}).first;
  }
  return Take(it->second, now);
}

}  // namespace ta::http

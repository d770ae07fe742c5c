// PeerRateLimiter: a token bucket per peer address, for the one route an unauthenticated
// caller can make the server work for (POST /oauth2/token: a refresh reads the store and may
// write it). The listener already caps the connections of one address
// (ListenerOptions::max_connections_per_peer, issue 22 #6); this caps its requests over time,
// whatever connections they come on.
//
// Each address gets a bucket of `burst` requests that refills at `rate` per second; a request
// takes one, and one that finds the bucket empty is refused with the time until it refills
// (the endpoint answers 429 with Retry-After). Memory is bounded: at most `max_peers` buckets.
// A bucket left alone for burst / rate seconds is full again, the same as none, so when the
// table is full those are dropped (at most once per burst / rate); a peer that still finds
// no place shares one overflow bucket with every other such peer, so a flood from many
// addresses cannot push out the buckets of the peers already tracked, nor grow the table.
//
// Behind a proxy every client has the proxy's address: raise the limits or turn them off
// (rate 0). Time comes from `clock` (a wall clock that jumps back refills nothing).
// Thread-safe.
#ifndef TA_SERVER_HTTP_PEER_LIMITER_H_
#define TA_SERVER_HTTP_PEER_LIMITER_H_

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/clock.h"

namespace ta::http {

struct PeerRateOptions {
  // Requests per second one address may make on average. 0: no limit. Default 10.
  double rate = 10;
  // Requests one address may make at once after a quiet spell (the bucket's size); >= 1.
  // Default 50.
  double burst = 50;
  // Addresses tracked at most (about 100 bytes each). Default 65536.
  size_t max_peers = 65536;
};

// The key one peer's budgets are kept under (this limiter's buckets and the listener's
// connections per peer), from its address as text: an IPv4 address itself; an IPv6 address
// its /64 prefix ("2001:db8:1:2::/64"), since one host or subscriber is normally given a
// whole /64 and could otherwise take a fresh address for every connection; an IPv4-mapped
// IPv6 address ("::ffff:192.0.2.1") its IPv4 address. Text that is not an address is
// returned as it is.
std::string PeerKey(absl::string_view address);

class PeerRateLimiter {
 public:
  // `clock` is borrowed; never null.
  PeerRateLimiter(PeerRateOptions options, const Clock* clock);

  // Zero when `peer` may make a request now (and counts it), else how long until it may.
  absl::Duration Admit(absl::string_view peer);

  // Addresses tracked now (for tests).
  size_t tracked() const;

 private:
  struct Bucket {
    double tokens = 0;
    absl::Time updated;
  };
  // Refills `bucket` to `now` and takes one request from it, or says how long to wait.
  absl::Duration Take(Bucket& bucket, absl::Time now) const;
  // Drops the buckets that are full again (idle for burst / rate).
  void DropFull(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const PeerRateOptions options_;
  const Clock* const clock_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
  Bucket overflow_ ABSL_GUARDED_BY(mu_);
  absl::Time last_drop_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace ta::http

#endif  // TA_SERVER_HTTP_PEER_LIMITER_H_

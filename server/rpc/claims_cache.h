// Verified claims rendered as the wire bytes of a google.protobuf.Struct, once per claims set.
//
// An active Introspect answer carries the token's claims as a Struct. Building that Struct
// (JSON parse, one map entry and Value per claim) and serializing it was about a fifth of
// the server's instructions per cached Introspect call (callgrind, BENCHMARKS.md). The same
// token introspected again has the same claims text, so the rendered bytes are remembered,
// keyed by the exact claims JSON (a pure function of it: never stale), and placed into the
// answer as the claims field's wire bytes (see AttachClaims in convert.cc).
//
// Bounded by bytes (base/sharded_cache.h): each entry is charged its claims text, the
// rendered bytes and a fixed overhead. Thread-safe.
#ifndef TA_SERVER_RPC_CLAIMS_CACHE_H_
#define TA_SERVER_RPC_CLAIMS_CACHE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/sharded_cache.h"

namespace ta::rpc {

class ClaimsCache {
 public:
  // capacity_bytes 0: render every time, remember nothing.
  explicit ClaimsCache(size_t capacity_bytes) : cache_(capacity_bytes) {}

  // The serialized Struct for `claims_json` (a JSON object from a verified token).
  // INTERNAL when it is not one: verified claims always are.
  absl::StatusOr<std::shared_ptr<const std::string>> Render(absl::string_view claims_json);

  // Renders without the cache (tests compare the two paths).
  static absl::StatusOr<std::string> RenderUncached(absl::string_view claims_json);

  // Bytes charged to the entries held now.
  size_t bytes() { return cache_.bytes(); }

 private:
  ShardedCache<std::string> cache_;
};

}  // namespace ta::rpc

#endif  // TA_SERVER_RPC_CLAIMS_CACHE_H_

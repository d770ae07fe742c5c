// Verified claims rendered as the wire bytes of a google.protobuf.Struct, once per claims set.
//
// An active Introspect answer carries the token's claims as a Struct. Building that Struct
// (JSON parse, one map entry and Value per claim) and serializing it was about a fifth of
// the server's instructions per cached Introspect call (callgrind, BENCHMARKS.md). The same
// token introspected again has the same claims text, so the rendered bytes are remembered,
// keyed by the exact claims JSON (a pure function of it: never stale), and placed into the
// answer as the claims field's wire bytes (see AttachClaims in convert.cc).
//
// Bounded: at most `capacity` entries; a full shard is cleared (the cheapest bound that
// never blocks for long). Thread-safe: sharded, one mutex per shard.
#ifndef TA_SERVER_RPC_CLAIMS_CACHE_H_
#define TA_SERVER_RPC_CLAIMS_CACHE_H_

#include <array>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace ta::rpc {

class ClaimsCache {
 public:
  // capacity 0: render every time, remember nothing.
  explicit ClaimsCache(size_t capacity);

  // The serialized Struct for `claims_json` (a JSON object from a verified token).
  // INTERNAL when it is not one: verified claims always are.
  absl::StatusOr<std::shared_ptr<const std::string>> Render(absl::string_view claims_json);

  // Renders without the cache (tests compare the two paths).
  static absl::StatusOr<std::string> RenderUncached(absl::string_view claims_json);

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    absl::Mutex mu;
    absl::flat_hash_map<std::string, std::shared_ptr<const std::string>> entries
        ABSL_GUARDED_BY(mu);
  };

  const size_t per_shard_;
  std::array<Shard, kShards> shards_;
};

}  // namespace ta::rpc

#endif  // TA_SERVER_RPC_CLAIMS_CACHE_H_

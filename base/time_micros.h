// absl::Time <-> microseconds since the Unix epoch, the one form our times take when stored or
// sent as integers (storage/codec, PostgreSQL's int8 columns, the revocation view).
// InfinitePast/InfiniteFuture map to INT64_MIN/INT64_MAX and back, so they round-trip exactly;
// any other time is truncated to its microsecond (absl::ToUnixMicros). Header-only; stateless.
#ifndef TA_BASE_TIME_MICROS_H_
#define TA_BASE_TIME_MICROS_H_

#include <cstdint>
#include <limits>

#include "absl/time/time.h"

namespace ta {

inline int64_t TimeToMicros(absl::Time t) {
  if (t == absl::InfinitePast()) return std::numeric_limits<int64_t>::min();
  if (t == absl::InfiniteFuture()) return std::numeric_limits<int64_t>::max();
  return absl::ToUnixMicros(t);
}

inline absl::Time MicrosToTime(int64_t micros) {
  if (micros == std::numeric_limits<int64_t>::min()) return absl::InfinitePast();
  if (micros == std::numeric_limits<int64_t>::max()) return absl::InfiniteFuture();
  return absl::FromUnixMicros(micros);
}

}  // namespace ta

#endif  // TA_BASE_TIME_MICROS_H_

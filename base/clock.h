// Time source injected into every layer that reads the clock (STYLE practice 9).
//
// Production code uses Clock::Real(); tests use FakeClock so expiry, leeway and grace
// windows are exercised without sleeping. Both are thread-safe.
#ifndef TA_BASE_CLOCK_H_
#define TA_BASE_CLOCK_H_

#include <atomic>
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ta {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;

  // Process-wide wall clock. Never null; never destroyed.
  static const Clock* Real();
};

// Wall clock shifted by a fixed offset: lets an end-to-end test move a real server
// forward in time (flag --testing_clock_offset) without a fake clock inside it.
class OffsetClock final : public Clock {
 public:
  explicit OffsetClock(absl::Duration offset) : offset_(offset) {}
  absl::Time Now() const override { return absl::Now() + offset_; }

 private:
  const absl::Duration offset_;
};

// A clock that only moves when told to. Starts at a fixed, realistic instant.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'800'000'000))
      : micros_(absl::ToUnixMicros(start)) {}
  absl::Time Now() const override { return absl::FromUnixMicros(micros_.load()); }
  void Advance(absl::Duration d) { micros_ += absl::ToInt64Microseconds(d); }
  void Set(absl::Time t) { micros_ = absl::ToUnixMicros(t); }

 private:
  std::atomic<int64_t> micros_;
};

inline const Clock* Clock::Real() {
  static const OffsetClock kReal(absl::ZeroDuration());
  return &kReal;
}

}  // namespace ta

#endif  // TA_BASE_CLOCK_H_

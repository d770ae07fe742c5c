// CallGate: counts the calls being served and, at shutdown, refuses new ones and waits for
// those inside to finish.
//
// Why: gRPC 1.51's Server::Shutdown(deadline) cancels callback-API calls still running when it
// starts, whatever the deadline (the sync API waited), and those it had read but not yet
// handed to a method. So Server::Shutdown first closes the gate (new calls are answered
// UNAVAILABLE "shutting_down"), waits up to the grace for the accepted ones to finish and for
// gRPC's backlog to be refused, and only then shuts gRPC down. Issue 8, found by the reliability
// test "Shutdown: SIGTERM with 1000 calls in flight" (hundreds of calls were CANCELLED, exit after
// ~50 ms). Thread-safe.
#ifndef TA_SERVER_RUNTIME_CALL_GATE_H_
#define TA_SERVER_RUNTIME_CALL_GATE_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ta::runtime {

class CallGate {
 public:
  // False once closed: the call must be refused. Each true is paired with one Leave().
  bool Enter() {
    absl::MutexLock lock(&mu_);
    last_call_ = absl::Now();
    if (closed_) return false;
    ++inside_;
    return true;
  }
  void Leave() {
    absl::MutexLock lock(&mu_);
    last_call_ = absl::Now();
    --inside_;
  }
  // Refuses new calls, then waits until none is inside and none has knocked for `quiet` (so
  // gRPC has handed over, and we have refused, the calls it had already read), or until
  // `deadline`. True if it got quiet in time.
  bool CloseAndWait(absl::Time deadline, absl::Duration quiet = absl::Milliseconds(100)) {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    auto drained = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return inside_ == 0; };
    auto never = []() { return false; };
    while (mu_.AwaitWithDeadline(absl::Condition(&drained), deadline)) {
      const absl::Time quiet_at = last_call_ + quiet;
      if (absl::Now() >= quiet_at) return true;
      if (quiet_at > deadline) return false;
      mu_.AwaitWithDeadline(absl::Condition(&never), quiet_at);  // sleeps, lock released
    }
    return false;
  }

 private:
  absl::Mutex mu_;
  int inside_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_call_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace ta::runtime

#endif  // TA_SERVER_RUNTIME_CALL_GATE_H_

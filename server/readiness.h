// ReadinessMonitor: whether the server can do its work now, for both faces' health checks
// (HTTP /healthz/ready and grpc.health.v1), so they never disagree.
//
// A thread probes (e.g. one store read) every `interval` and remembers the answer; health
// requests read the remembered answer, so a flood of probes costs no store calls. The first
// probe runs in the constructor. `on_change` is called from the monitor's thread (and the
// constructor) whenever readiness flips. After Stop() the answer is UNAVAILABLE
// "shutting_down". Thread-safe.
#ifndef TA_SERVER_READINESS_H_
#define TA_SERVER_READINESS_H_

#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace ta {

class ReadinessMonitor {
 public:
  using Probe = std::function<absl::Status()>;
  using OnChange = std::function<void(bool ready)>;

  ReadinessMonitor(Probe probe, absl::Duration interval, OnChange on_change);
  ~ReadinessMonitor();
  ReadinessMonitor(const ReadinessMonitor&) = delete;
  ReadinessMonitor& operator=(const ReadinessMonitor&) = delete;

  // OK when ready; else why not (with a reason, e.g. "store_unavailable").
  absl::Status Current() const;
  // Stops probing (joins the thread). Idempotent.
  void Stop();

 private:
  void ProbeOnce();
  void Loop();

  const Probe probe_;
  const absl::Duration interval_;
  const OnChange on_change_;
  mutable absl::Mutex mu_;
  absl::Status current_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool initialised_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace ta

#endif  // TA_SERVER_READINESS_H_

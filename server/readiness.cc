#include "server/readiness.h"

#include "base/error.h"

namespace ta {

ReadinessMonitor::ReadinessMonitor(Probe probe, absl::Duration interval, OnChange on_change)
    : probe_(std::move(probe)), interval_(interval), on_change_(std::move(on_change)) {
  ProbeOnce();
  thread_ = std::thread([this] { Loop(); });
}

ReadinessMonitor::~ReadinessMonitor() { Stop(); }

absl::Status ReadinessMonitor::Current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

void ReadinessMonitor::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    current_ = Error(absl::StatusCode::kUnavailable, "shutting_down", "the server is stopping");
  }
  if (thread_.joinable()) thread_.join();
}

void ReadinessMonitor::ProbeOnce() {
  absl::Status now = probe_();
  bool changed = false;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    changed = now.ok() != current_.ok() || !initialised_;
    initialised_ = true;
    current_ = now;
  }
  if (changed && on_change_) on_change_(now.ok());
}

void ReadinessMonitor::Loop() {
  absl::MutexLock lock(&mu_);
  while (!mu_.AwaitWithTimeout(absl::Condition(&stopping_), interval_)) {
    mu_.Unlock();
    ProbeOnce();
    mu_.Lock();
  }
}

}  // namespace ta

#include "server/core/revocation_follower.h"

#include <vector>

#include "server/base/status_macros.h"

namespace ta::core {
namespace {

constexpr size_t kBatch = 1000;

}  // namespace

RevocationFollower::RevocationFollower(storage::TokenStore* store, RevocationView* view,
                                       const Clock* clock, absl::Duration interval)
    : store_(store), view_(view), clock_(clock), interval_(interval) {}

RevocationFollower::~RevocationFollower() { Stop(); }

absl::Status RevocationFollower::PollOnce() {
  absl::MutexLock lock(&poll_mu_);
  return PollLocked();
}

bool RevocationFollower::TryPollNow() {
  if (!poll_mu_.TryLock()) return false;
  absl::Status polled = PollLocked();
  poll_mu_.Unlock();
  if (!polled.ok()) ++failed_polls_;
  return polled.ok();
}

absl::Status RevocationFollower::PollLocked() {
  const absl::Time started = clock_->Now();
  while (true) {
    ASSIGN_OR_RETURN(std::vector<storage::RevocationEntry> batch,
                     store_->ReadRevocations(cursor_, started, kBatch));
    for (const storage::RevocationEntry& entry : batch) {
      view_->Apply(entry);
      cursor_ = entry.seq;
    }
    if (batch.size() < kBatch) break;
  }
  view_->MarkCurrent(started);
  return absl::OkStatus();
}

void RevocationFollower::Start() {
  if (thread_.has_value()) return;
  thread_.emplace([this] { Loop(); });
}

void RevocationFollower::Stop() {
  if (!thread_.has_value()) return;
  if (!stop_.HasBeenNotified()) stop_.Notify();
  thread_->join();
  thread_.reset();
}

void RevocationFollower::Loop() {
  do {
    if (!PollOnce().ok()) ++failed_polls_;
  } while (!stop_.WaitForNotificationWithTimeout(interval_));
}

}  // namespace ta::core

#include "server/core/revocation_follower.h"

#include <vector>

#include "server/base/status_macros.h"

namespace ta::core {
namespace {

constexpr size_t kBatch = 1000;

}  // namespace

RevocationFollower::RevocationFollower(storage::TokenStore* store, RevocationView* view,
                                       const Clock* clock, absl::Duration interval,
                                       std::function<absl::Status()> also)
    : store_(store), view_(view), clock_(clock), interval_(interval), also_(std::move(also)) {}

RevocationFollower::~RevocationFollower() { Stop(); }

absl::Status RevocationFollower::PollOnce() {
  absl::MutexLock lock(&poll_mu_);
  return PollLocked();
}

bool RevocationFollower::CatchUp(absl::Time now) {
  absl::MutexLock lock(&poll_mu_);  // a poll in flight is bounded by the store's timeouts
  if (view_->IsCurrent(now)) return true;
  if (!PollLocked().ok()) {
    ++failed_polls_;
    return false;
  }
  return view_->IsCurrent(now);
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
  if (also_) RETURN_IF_ERROR(also_());
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

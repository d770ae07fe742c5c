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
  return TimedPollLocked();
}

absl::Status RevocationFollower::TimedPollLocked() {
  // Real time, not clock_: this is about how long a caller would wait.
  const absl::Time started = absl::Now();
  absl::Status s = PollLocked();
  store_hangs_ = !s.ok() && absl::Now() - started > interval_;
  return s;
}

bool RevocationFollower::CatchUp(absl::Time now) {
  // Never waits behind a poll in flight, nor polls a store whose last poll failed slowly:
  // against a hung store either holds the caller for the store's timeouts (seconds), when a
  // stale view must answer "revocations_stale" at once. A view goes stale only once polls
  // stopped succeeding, so this costs nothing while the store is healthy.
  if (store_hangs_.load() || !poll_mu_.TryLock()) return view_->IsCurrent(now);
  bool current = view_->IsCurrent(now);
  if (!current) {
    if (!TimedPollLocked().ok()) ++failed_polls_;
    current = view_->IsCurrent(now);
  }
  poll_mu_.Unlock();
  return current;
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

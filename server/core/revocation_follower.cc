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
  if (!thread_.has_value()) {
    absl::MutexLock lock(&poll_mu_);
    if (view_->IsCurrent(now)) return true;
    if (!PollLocked().ok()) {
      ++failed_polls_;
      return false;
    }
    return view_->IsCurrent(now);
  }
  const absl::Time deadline = absl::Now() + kCatchUpWait;
  absl::MutexLock lock(&mu_);
  // A poll in flight may have started before `now` and still prove too little: then one more.
  for (int round = 0; round < 2; ++round) {
    if (view_->IsCurrent(now)) return true;
    const uint64_t seen = polls_done_;
    wake_ = true;
    auto polled = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return polls_done_ > seen || stopping_;
    };
    if (!mu_.AwaitWithDeadline(absl::Condition(&polled), deadline)) break;
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
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_->join();
  thread_.reset();
}

void RevocationFollower::Loop() {
  while (true) {
    if (!PollOnce().ok()) ++failed_polls_;
    absl::MutexLock lock(&mu_);
    ++polls_done_;
    auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return wake_ || stopping_; };
    mu_.AwaitWithTimeout(absl::Condition(&woken), interval_);
    if (stopping_) return;
    wake_ = false;
  }
}

}  // namespace ta::core

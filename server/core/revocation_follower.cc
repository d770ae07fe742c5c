#include "server/core/revocation_follower.h"

#include <iostream>
#include <vector>

#include "base/status_macros.h"

namespace ta::core {
namespace {

constexpr size_t kBatch = 1000;

}  // namespace

RevocationFollower::RevocationFollower(storage::TokenStore* store, token::RevocationView* view,
                                       const Clock* clock, absl::Duration interval,
                                       std::function<absl::Status()> also,
                                       absl::Duration max_clock_offset)
    : store_(store),
      view_(view),
      clock_(clock),
      interval_(interval),
      also_(std::move(also)),
      max_clock_offset_(max_clock_offset) {}

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

absl::Status RevocationFollower::MeasureClockOffset() {
  const absl::Time before = clock_->Now();
  absl::StatusOr<absl::Time> store_now = store_->ClockNow();
  const absl::Time after = clock_->Now();
  RETURN_IF_ERROR(store_now.status());
  // The store read its clock somewhere in [before, after]; the midpoint errs by at most half
  // the round trip. The verdict changes only when the error cannot flip it (a slow round
  // trip, e.g. waiting for a pooled connection, proves nothing either way).
  const absl::Duration offset = before + (after - before) / 2 - *store_now;
  const absl::Duration error = (after - before) / 2;
  const bool was_exceeded = view_->clock_offset_exceeded();
  bool within = !was_exceeded;
  if (absl::AbsDuration(offset) - error > max_clock_offset_) within = false;
  if (absl::AbsDuration(offset) + error <= max_clock_offset_) within = true;
  view_->SetClockOffset(offset, within);
  if (within == was_exceeded) {
    std::cerr << "token-authority: "
              << (within ? "clock offset back within bound" : "clock offset exceeded") << ": this "
              << "server's clock is " << absl::FormatDuration(offset)
              << " off the store's (bound --max_clock_offset="
              << absl::FormatDuration(max_clock_offset_) << ", round trip "
              << absl::FormatDuration(after - before) << ")"
              << (within ? "; serving again\n"
                         : "; NOT_SERVING, and no token is called active until it is back "
                           "(clock_offset_exceeded)\n");
  }
  return absl::OkStatus();
}

absl::Status RevocationFollower::PollLocked() {
  RETURN_IF_ERROR(MeasureClockOffset());
  const absl::Time started = clock_->Now();
  while (true) {
    ASSIGN_OR_RETURN(std::vector<storage::RevocationEntry> batch,
                     store_->ReadRevocations(cursor_, started, kBatch));
    for (const storage::RevocationEntry& entry : batch) {
      view_->Apply(entry);
      cursor_ = entry.seq;
    }
    if (on_entries_ && !batch.empty()) on_entries_(batch);
    if (batch.size() < kBatch) break;
  }
  if (also_) RETURN_IF_ERROR(also_());
  view_->MarkCurrent(started);
  if (on_current_) on_current_(started);
  return absl::OkStatus();
}

void RevocationFollower::SetObserver(
    std::function<void(const std::vector<storage::RevocationEntry>&)> on_entries,
    std::function<void(absl::Time)> on_current) {
  absl::MutexLock lock(&poll_mu_);
  on_entries_ = std::move(on_entries);
  on_current_ = std::move(on_current);
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

void RevocationFollower::ResumeAfter(uint64_t seq) {
  absl::MutexLock lock(&poll_mu_);
  cursor_ = seq;
}

}  // namespace ta::core

// RevocationFollower: keeps a RevocationView current from a store that other processes write
// too (replicas over PostgreSQL, DESIGN §10-11).
//
// A thread polls the store's revocation log every `interval`: it reads every entry after the
// last one applied, applies them, and then marks the view current as of the instant the poll
// started (every entry committed before that instant was visible to the poll's read). A poll
// that fails proves nothing, so after max_revocation_lag without a successful one the view
// stops being current and introspection refuses ("revocations_stale") until the store answers
// again; nothing else is needed to recover.
//
// Clock offset (DESIGN §13): every poll also reads the store's clock (TokenStore::ClockNow,
// PostgreSQL's clock_timestamp()) and takes this server's offset as the midpoint of the round
// trip minus that reading, give or take half the round trip (the verdict moves only when that
// error cannot flip it). Past max_clock_offset either way the view is told so
// (RevocationView::SetClockOffset): introspection refuses ("clock_offset_exceeded"), health
// says NOT_SERVING, a line goes to stderr when it starts and when it ends, and the next poll
// within the bound lifts it. Every store has a clock (TokenStore::ClockNow); a follower runs
// only over a store other processes share (AuthorityOptions::shared_store: PostgreSQL), whose
// clock is the database's. Over a RocksDB store (tests) the store's clock is this process's
// own, so the offset measured is zero. A failed reading fails the poll, as a failed read does.
//
// Callers never wait on the store: a caller that finds the view stale (CatchUp) wakes the
// thread and waits at most kCatchUpWait for a poll to prove it current, so a store that hangs
// holds an introspection for 100 ms, not for the store's timeouts.
//
// Sequence numbers must become visible in order (storage/token_store.h: the PostgreSQL store
// numbers entries under a counter-row lock held to commit), so reading after the last number
// this follower read misses nothing. (Its own cursor, not the view's last_seq: this server's
// own entries reach the view through the store's listener, possibly before entries of other
// replicas with lower numbers have been read.)
//
// Thread-safety: Start/Stop from one thread; PollOnce and TryPollNow from any (polls are
// serialised).
#ifndef TA_SERVER_CORE_REVOCATION_FOLLOWER_H_
#define TA_SERVER_CORE_REVOCATION_FOLLOWER_H_

#include <atomic>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "storage/token_store.h"
#include "token/revocation_view.h"

namespace ta::core {

class RevocationFollower {
 public:
  // Borrows all three; they must outlive the follower. `interval`: time between polls
  // (default 100 ms; keep it well under the lag bound).
  // `also`, when set, runs in every poll after the log is read (the shared key ring's reload);
  // its failure fails the poll, so what it keeps current is covered by the same lag bound.
  // `max_clock_offset`: how far this server's clock may be from the store's (default 500 ms).
  RevocationFollower(storage::TokenStore* store, token::RevocationView* view, const Clock* clock,
                     absl::Duration interval = absl::Milliseconds(100),
                     std::function<absl::Status()> also = nullptr,
                     absl::Duration max_clock_offset = absl::Milliseconds(500));
  ~RevocationFollower();  // stops

  // One poll now: read, apply, mark current. Waits for a poll already running.
  absl::Status PollOnce();
  // For a caller that finds the view stale at `now`: wakes the polling thread and waits up to
  // kCatchUpWait for polls to make the view current for `now`. True when it is. Without a
  // running thread (before Start, tests), polls itself.
  static constexpr absl::Duration kCatchUpWait = absl::Milliseconds(100);
  bool CatchUp(absl::Time now);
  void Start();
  void Stop();
  // Polls read the log after `seq`: the view already holds every entry up to it (its load
  // read them). Call before the first poll; without it the first poll reads the whole log.
  void ResumeAfter(uint64_t seq);

  // Also hands every entry read, in seq order, to `on_entries` (before the poll's other
  // work, so none is lost when that fails) and each successful poll's proof to `on_current`
  // (after the view's MarkCurrent): the watch hub (watch_hub.h). Before Start.
  void SetObserver(std::function<void(const std::vector<storage::RevocationEntry>&)> on_entries,
                   std::function<void(absl::Time)> on_current);

  // Polls that failed since start (for metrics and tests).
  uint64_t failed_polls() const { return failed_polls_.load(); }

 private:
  void Loop();
  absl::Status PollLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(poll_mu_);
  // Reads the store's clock and hands the offset to the view.
  absl::Status MeasureClockOffset() ABSL_EXCLUSIVE_LOCKS_REQUIRED(poll_mu_);

  storage::TokenStore* const store_;
  token::RevocationView* const view_;
  const Clock* const clock_;
  const absl::Duration interval_;
  const std::function<absl::Status()> also_;
  const absl::Duration max_clock_offset_;
  std::function<void(const std::vector<storage::RevocationEntry>&)> on_entries_;
  std::function<void(absl::Time)> on_current_;
  std::optional<std::thread> thread_;
  std::atomic<uint64_t> failed_polls_{0};
  absl::Mutex poll_mu_;  // serialises polls
  uint64_t cursor_ ABSL_GUARDED_BY(poll_mu_) = 0;  // the highest seq this follower has read
  absl::Mutex mu_;       // the thread's schedule
  uint64_t polls_done_ ABSL_GUARDED_BY(mu_) = 0;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace ta::core

#endif  // TA_SERVER_CORE_REVOCATION_FOLLOWER_H_

// WatchPipe: the LocalVerifier's stream (client/verifier.cc) split over two threads. The
// reading thread parses each WatchRevocations message into a message taken from here (Free)
// and hands it over (Push); the applier thread takes them in order (Pop), applies them to the
// view and gives them back (Recycle). So a big snapshot's parsing and its inserts into the view
// run on two cores at once, and the messages are reused (a reused message keeps its repeated
// entries and their id strings allocated: parsing the next batch allocates little).
//
// Bounded: kDepth messages in all (the reader waits for a free one). Thread-safe for one
// reader and one applier.
//
// WatchEntryRefs: the view's form of a message's entries (token::RevocationView::EntryRef),
// borrowing the message's ids: no copy, no allocation per entry once warm.
#ifndef TA_CLIENT_WATCH_PIPE_H_
#define TA_CLIENT_WATCH_PIPE_H_

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "token/revocation_view.h"
#include "tokenauthority/v1/token_authority.pb.h"

namespace ta::client {

class WatchPipe {
 public:
  using Message = tokenauthority::v1::WatchRevocationsResponse;
  static constexpr size_t kDepth = 4;

  WatchPipe() {
    for (Message& m : messages_) free_.push_back(&m);
  }
  WatchPipe(const WatchPipe&) = delete;
  WatchPipe& operator=(const WatchPipe&) = delete;

  // The reader's: a message to parse into (waits until the applier recycles one).
  Message* Free() {
    absl::MutexLock lock(&mu_);
    auto has_free = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !free_.empty(); };
    mu_.Await(absl::Condition(&has_free));
    Message* m = free_.front();
    free_.pop_front();
    return m;
  }
  // The reader's: `m` (from Free) is parsed; the applier takes it next in order.
  void Push(Message* m) {
    absl::MutexLock lock(&mu_);
    ready_.push_back(m);
  }
  // The reader's: nothing more comes. The applier still gets what was pushed.
  void Close() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }

  // The applier's: the next message in order, waiting for it; null once closed and drained.
  Message* Pop() {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !ready_.empty() || closed_; };
    mu_.Await(absl::Condition(&ready));
    if (ready_.empty()) return nullptr;
    Message* m = ready_.front();
    ready_.pop_front();
    return m;
  }
  // The applier's: done with `m` (from Pop).
  void Recycle(Message* m) {
    absl::MutexLock lock(&mu_);
    free_.push_back(m);
  }

 private:
  std::array<Message, kDepth> messages_;
  absl::Mutex mu_;
  std::deque<Message*> free_ ABSL_GUARDED_BY(mu_);
  std::deque<Message*> ready_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

// The entries of one message, as the view applies them. Reused from message to message.
class WatchEntryRefs {
 public:
  // Replaces the refs with those of `events` (a message's RevocationEvents: its batch, or its
  // one entry); they borrow `events`' ids, so `events` must outlive their use. An event the
  // view cannot hold (a family id that is none, an unknown kind) is skipped: it kills no token
  // of ours. Returns the highest seq of `events` (skipped ones too: the position moves).
  template <typename Events>
  uint64_t Assign(const Events& events) {
    refs_.clear();
    raw_ids_.resize(std::max(raw_ids_.size(), static_cast<size_t>(events.size())));
    uint64_t max_seq = 0;
    for (const tokenauthority::v1::RevocationEvent& e : events) {
      token::RevocationView::EntryRef ref;
      if (ToRef(e, &raw_ids_[refs_.size()], &ref)) refs_.push_back(ref);
      max_seq = std::max<uint64_t>(max_seq, e.seq());
    }
    return max_seq;
  }
  absl::Span<const token::RevocationView::EntryRef> refs() const { return refs_; }

  // `e` as the view keys it: a jti as the token holds it (borrowed from `e`), a family by its
  // raw id (decoded from the token's sid text into `raw`). False: nothing the view can hold.
  static bool ToRef(const tokenauthority::v1::RevocationEvent& e, std::array<char, 16>* raw,
                    token::RevocationView::EntryRef* out);

 private:
  std::vector<token::RevocationView::EntryRef> refs_;
  std::vector<std::array<char, 16>> raw_ids_;  // decoded family ids (stable: never shrinks)
};

}  // namespace ta::client

#endif  // TA_CLIENT_WATCH_PIPE_H_

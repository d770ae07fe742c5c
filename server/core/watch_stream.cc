// WatchStream (server/core/watch_hub.h): one watcher's queue — head (reset, markers, a
// resume's backlog), the paged snapshot, then the tail — and its bounds.
#include <algorithm>
#include <utility>

#include "base/error.h"
#include "server/core/watch_hub.h"

namespace ta::core {
namespace {

absl::Status TooSlow() {
  return Error(absl::StatusCode::kResourceExhausted, "watch_too_slow",
               "the watcher read too slowly and the stream's buffer filled; reconnect "
               "with since = the last position received");
}

WatchEvent Marker(WatchEvent::Type type, uint64_t seq) {
  WatchEvent event;
  event.type = type;
  event.seq = seq;
  return event;
}

// A batch stays well under gRPC's default 4 MiB message limit whatever its ids (a jti may
// be 1 KiB): ~1 MiB of ids at most.
constexpr size_t kMaxBatchBytes = size_t{1} << 20;

// Bookmark intervals in a row without progress before a stalled snapshot whose tail folded
// is cut (200..400 ms at the default interval: a batch of <= 1 MiB did not get through).
constexpr int kStalledTicks = 2;

size_t EntryBytes(const storage::RevocationEntry& e) { return e.id.size() + 48; }

// The end of the batch that starts at `begin` of `page`: at most `max` entries and ~1 MiB.
size_t BatchEnd(const std::vector<storage::RevocationEntry>& page, size_t begin, size_t max) {
  size_t end = begin, bytes = 0;
  while (end < page.size() && end - begin < max && bytes < kMaxBatchBytes) {
    bytes += EntryBytes(page[end++]);
  }
  return end;
}

}  // namespace

WatchStream::Poll WatchStream::Next(WatchEvent* event, absl::Status* end) {
  absl::MutexLock lock(&mu_);
  if (!end_.ok()) {
    *end = end_;
    return Poll::kEnded;
  }
  bool got = false;
  if (head_next_ < head_.size()) {
    *event = std::move(head_[head_next_++]);
    if (head_next_ == head_.size()) {
      head_.clear();
      head_.shrink_to_fit();
      head_next_ = 0;
    }
    got = true;
  } else if (snapshot_.has_value()) {
    got = NextFromSnapshot(event);
  } else {
    got = NextFromTail(event);
  }
  if (!got) {
    armed_ = true;
    return Poll::kEmpty;
  }
  ++taken_;
  if (snapshot_.has_value()) snapshot_->folds_at_take = snapshot_->folds;
  return Poll::kEvent;
}

bool WatchStream::NextFromSnapshot(WatchEvent* event) {
  Snapshot& s = *snapshot_;
  if (!s.pages.empty()) {
    std::vector<storage::RevocationEntry>& page = s.pages.front();
    if (max_batch_ == 1) {
      event->type = WatchEvent::Type::kEntry;
      event->entry = std::move(page[s.page_next++]);
      event->seq = event->entry.seq;
    } else {
      event->type = WatchEvent::Type::kEntries;
      const size_t end = BatchEnd(page, s.page_next, max_batch_);
      if (s.page_next == 0 && end == page.size()) {
        event->entries = std::move(page);
      } else {
        event->entries.assign(std::make_move_iterator(page.begin() + s.page_next),
                              std::make_move_iterator(page.begin() + end));
      }
      s.page_next = end;
    }
    if (s.page_next >= page.size()) {
      s.pages.pop_front();
      s.page_next = 0;
    }
    MaybeReadLocked();
    return true;
  }
  if (!s.exhausted) {
    MaybeReadLocked();
    return false;  // the reader wakes the stream with the next page
  }
  // Every entry <= to has been taken: the snapshot ends here; the tail goes on after `to`.
  *event = Marker(WatchEvent::Type::kEndOfSnapshot, s.to);
  head_.push_back(Marker(WatchEvent::Type::kKeys, 0));
  head_.back().jwks_version = std::move(s.jwks_version);
  snapshot_.reset();
  return true;
}

bool WatchStream::NextFromTail(WatchEvent* event) {
  if (tail_.empty()) return false;
  *event = std::move(tail_.front());
  tail_.pop_front();
  if (max_batch_ == 1 || event->type != WatchEvent::Type::kEntry || tail_.empty() ||
      tail_.front().type != WatchEvent::Type::kEntry) {
    return true;
  }
  // Consecutive tail entries go as one batch.
  event->entries.push_back(std::move(event->entry));
  event->type = WatchEvent::Type::kEntries;
  size_t bytes = EntryBytes(event->entries.back());
  while (!tail_.empty() && tail_.front().type == WatchEvent::Type::kEntry &&
         event->entries.size() < max_batch_ && bytes < kMaxBatchBytes) {
    bytes += EntryBytes(tail_.front().entry);
    event->entries.push_back(std::move(tail_.front().entry));
    tail_.pop_front();
  }
  event->seq = event->entries.back().seq;
  return true;
}

void WatchStream::MaybeReadLocked() {
  Snapshot& s = *snapshot_;
  if (s.after >= s.to) s.exhausted = true;  // nothing to read: every seq <= to is behind
  if (s.reading || s.exhausted || s.pages.size() >= 2) return;
  s.reading = true;
  hub_->RequestRead(self_);
}

bool WatchStream::PageToRead(uint64_t* after, uint64_t* folds) {
  absl::MutexLock lock(&mu_);
  if (!end_.ok() || closed_ || !snapshot_.has_value()) return false;
  *after = snapshot_->after;
  *folds = snapshot_->folds;
  return true;
}

bool WatchStream::AddPage(absl::StatusOr<std::vector<storage::RevocationEntry>> page, size_t limit,
                          uint64_t folds) {
  if (!page.ok()) return End(page.status());
  absl::MutexLock lock(&mu_);
  if (!end_.ok() || closed_ || !snapshot_.has_value()) return false;
  Snapshot& s = *snapshot_;
  s.reading = false;
  const size_t read = page->size();
  size_t keep = 0;
  while (keep < read && (*page)[keep].seq <= s.to) ++keep;
  // An entry past P: the rest comes through the tail. A short page: the store held nothing
  // more when it was read, which is after every entry <= P committed — unless a fold raised
  // P meanwhile.
  if (keep < read || (read < limit && folds == s.folds)) s.exhausted = true;
  if (keep > 0) {
    page->resize(keep);
    s.after = page->back().seq;
    s.pages.push_back(*std::move(page));
  }
  MaybeReadLocked();
  if (!armed_) return false;
  armed_ = false;
  return true;
}

void WatchStream::FoldLocked(uint64_t seq) {
  Snapshot& s = *snapshot_;
  s.to = seq;
  ++s.folds;
  s.exhausted = false;
  hub_->folds_.fetch_add(1, std::memory_order_relaxed);
  // The entries queued behind the snapshot are covered by it now, and so are their bookmarks
  // (keys events wait in the snapshot instead: see Push).
  tail_.clear();
  MaybeReadLocked();
}

bool WatchStream::Tick() {
  {
    absl::MutexLock lock(&mu_);
    if (!end_.ok() || closed_ || !snapshot_.has_value()) return false;
    Snapshot& s = *snapshot_;
    const bool ready = head_next_ < head_.size() || !s.pages.empty();
    s.stalled_ticks = ready && taken_ == s.taken_at_tick ? s.stalled_ticks + 1 : 0;
    s.taken_at_tick = taken_;
    if (s.stalled_ticks < kStalledTicks || s.folds == s.folds_at_take) return false;
  }
  return End(TooSlow());
}

void WatchStream::SetWake(std::function<void()> wake) {
  absl::MutexLock lock(&mu_);
  wake_ = std::move(wake);
}

void WatchStream::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  wake_ = nullptr;
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return waking_ == 0; };
  mu_.Await(absl::Condition(&idle));
}

size_t WatchStream::queued() const {
  absl::MutexLock lock(&mu_);
  return head_.size() - head_next_ + tail_.size();
}

size_t WatchStream::held_entries() const {
  absl::MutexLock lock(&mu_);
  size_t held = head_.size() - head_next_;
  for (const WatchEvent& e : tail_) held += e.type == WatchEvent::Type::kEntry ? 1 : 0;
  if (snapshot_.has_value()) {
    for (const auto& page : snapshot_->pages) held += page.size();
    held -= snapshot_->page_next;
  }
  return held;
}

bool WatchStream::closed() const {
  absl::MutexLock lock(&mu_);
  return closed_;
}

bool WatchStream::Push(WatchEvent event) {
  {
    absl::MutexLock lock(&mu_);
    if (!end_.ok() || closed_) return false;
    if (event.type == WatchEvent::Type::kBookmark && !tail_.empty() &&
        tail_.back().type == WatchEvent::Type::kBookmark) {
      tail_.back() = std::move(event);  // a newer proof replaces an unsent one
      return false;
    }
    if (snapshot_.has_value() && event.type == WatchEvent::Type::kKeys) {
      snapshot_->jwks_version = std::move(event.jwks_version);  // sent after end_of_snapshot
      return false;
    }
    if (snapshot_.has_value() && event.type == WatchEvent::Type::kBookmark &&
        tail_.size() >= buffer_) {
      return false;  // the next one comes within an interval; never cut for a bookmark
    }
    bool queued = tail_.size() < buffer_;
    if (queued) {
      tail_.push_back(std::move(event));
    } else if (snapshot_.has_value() && event.type == WatchEvent::Type::kEntry) {
      FoldLocked(event.seq);  // the snapshot reads it (and those queued) instead
      queued = true;
    }
    if (queued) {
      if (!armed_) return false;
      armed_ = false;
      return true;
    }
  }
  return End(TooSlow());
}

bool WatchStream::End(absl::Status status) {
  absl::MutexLock lock(&mu_);
  if (!end_.ok()) return false;
  end_ = std::move(status);
  head_.clear();
  head_.shrink_to_fit();
  head_next_ = 0;
  snapshot_.reset();
  tail_.clear();
  tail_.shrink_to_fit();
  const bool wake = armed_;
  armed_ = false;
  return wake;
}

void WatchStream::CallWake() {
  std::function<void()> wake;
  {
    absl::MutexLock lock(&mu_);
    if (wake_ == nullptr) return;
    wake = wake_;
    ++waking_;
  }
  wake();
  absl::MutexLock lock(&mu_);
  --waking_;
}

}  // namespace ta::core

// WatchHub: the server side of WatchRevocations (docs/revocation-stream.md, DESIGN §13), in
// domain terms (no gRPC): one hub per server, one WatchStream per connection.
//
// Fed with every revocation-log entry in sequence order: on a server that alone writes its
// store (RocksDB), by the store's listener as each entry commits (the store calls it in seq
// order, before the revocation is acknowledged); on a replica of a shared store
// (PostgreSQL), by the revocation follower as it reads the log, followed by MarkCurrent(as_of)
// once a poll has read everything committed before as_of. Publish is quick (a ring append and
// a signal); one dispatcher thread fans entries out to the streams, writes bookmarks and
// notices JWKS changes, so no writer ever waits on a watcher.
//
// A stream (Watch): with a `since` this hub can serve (its epoch, not older than the oldest
// entry it keeps, not newer than its last, and a backlog that fits the stream's buffer) it
// resumes: the kept entries after it, then the tail. Otherwise: a reset, a snapshot of the
// live log read from the store, end_of_snapshot, then the tail. No gap between snapshot and
// tail: the stream subscribes at the hub's dispatched position P first and then reads the
// snapshot, keeping only entries with seq <= P (entries after P reach it through the tail);
// every entry <= P committed before the read began, so the read holds each still live. A
// reset is only ever a stream's first message: a stream is never turned into a reset behind
// queued entries (etcd#17529); it is ended instead, and the reconnect gets the reset.
//
// Paged snapshot (issue 27 item 4): the snapshot is read from the store a page at a time
// (`snapshot_page` entries, by seq, resuming after the last seq read) by the hub's reader
// thread, only as the stream drains: a stream holds at most two pages (the one being taken
// and the next, read ahead), so its memory is bounded whatever the live set, and N concurrent
// snapshots cost 2N pages. While a stream is in its snapshot, tail entries queue behind it as
// usual; when they would overflow its buffer the stream is not cut but "folds" the tail into
// the snapshot: the queued entries are dropped and P is raised to the newest of them (every
// entry up to it has committed and is readable, so the snapshot's reads bring the live ones;
// no gap, no duplicate). A watcher receiving a big snapshot is therefore never cut for the
// tail's rate or a burst; one that stops reading is: when its tail folded and it has taken
// no event for two bookmark intervals in a row while it had events ready, the stream ends with
// watch_too_slow, as a full tail does after the snapshot (its memory is bounded either way:
// the cut only frees it sooner).
//
// Batches: a stream opened with `batches` takes up to `snapshot_page` entries (and ~1 MiB of
// ids) at a time as one kEntries event — a snapshot page, or consecutive entries of the tail —
// so the face can write them as one message. Without, every entry is its own kEntry event.
//
// Bookmarks (every bookmark_interval, coalesced in a stream's queue): seq = the last entry
// dispatched, as_of = the instant up to which every committed entry has been dispatched: the
// dispatcher's clock reading on a server that alone writes its store (every entry
// acknowledged before it was published before it), the follower's proof on a replica. None
// while `view_current(now)` is false (a stale replica, or its clock off the store's): its
// watchers then fail closed by their own bound. A fold drops the bookmarks queued behind the
// snapshot (the next one follows within an interval).
//
// The epoch is random per hub (per server process): a restarted server, another replica or a
// restored store always resets its watchers, never resumes them into reused sequence numbers.
//
// Bounded: a stream's queue holds at most `stream_buffer` events besides its snapshot pages;
// when a watcher reads too slowly to keep it from filling, the stream ends with
// RESOURCE_EXHAUSTED "watch_too_slow" and everything it holds is freed.
//
// Thread-safe. The hub must outlive its streams' use of it by the face; Shutdown ends them.
#ifndef TA_SERVER_CORE_WATCH_HUB_H_
#define TA_SERVER_CORE_WATCH_HUB_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "storage/token_store.h"

namespace ta::core {

// A snapshot's size as the server estimates it (WatchReset.expected_*): a hint only.
struct WatchSizeHint {
  uint64_t jtis = 0, families = 0;  // 0: unknown
};

struct WatchEvent {
  enum class Type { kReset, kEntry, kEntries, kEndOfSnapshot, kBookmark, kKeys };
  Type type = Type::kEntry;
  uint64_t epoch = 0;              // kReset
  WatchSizeHint hint;              // kReset
  uint64_t seq = 0;                // kEntry (entry.seq), kEndOfSnapshot, kBookmark
  storage::RevocationEntry entry;  // kEntry
  // kEntries: several entries in seq order (only on a stream opened with `batches`).
  std::vector<storage::RevocationEntry> entries;
  absl::Time as_of;          // kBookmark
  std::string jwks_version;  // kKeys
};

struct WatchPosition {
  uint64_t epoch = 0;  // 0: none
  uint64_t seq = 0;
};

struct WatchHubOptions {
  // Reads the snapshot (ReadRevocations). Borrowed; must outlive the hub. Never null.
  storage::TokenStore* store = nullptr;
  // as_of of bookmarks and "live" for the snapshot. Borrowed. Never null.
  const Clock* clock = Clock::Real();
  // Other processes write the store: bookmarks carry MarkCurrent's proof, not the clock.
  bool shared_store = false;
  // Whether this server's own view is current at `now` (RevocationView::IsCurrent); no
  // bookmark is sent while it is not. Default: always.
  std::function<bool(absl::Time)> view_current;
  // The snapshot's size hint for a reset (the server's view's counts). Called when a stream
  // opens, no hub lock held. Default: none (0, unknown).
  std::function<WatchSizeHint()> size_hint;
  // The JWKS document; its digest is the `keys` event's version. Default: no keys events.
  std::function<std::string()> jwks_json;
  // Events a stream may hold unsent besides its snapshot pages before it is cut
  // ("watch_too_slow"; during the snapshot, before it folds: see the header comment).
  // Default 4096.
  size_t stream_buffer = 4096;
  // Entries per snapshot page read from the store, and the most entries of one kEntries
  // event. Default 4096 (~250 KiB as a message); 1 .. 65536.
  size_t snapshot_page = 4096;
  // Entries kept for resuming streams. Default 65536 (~100 bytes each plus the id).
  size_t retained_entries = 65536;
  // Between bookmarks (and JWKS checks). Default 200 ms; 10 ms .. 250 ms.
  absl::Duration bookmark_interval = absl::Milliseconds(200);
};

class WatchHub;

// The snapshot a WatchStream is sending (watch_stream.cc). At namespace scope, not nested in
// WatchStream: std::optional of a nested struct with default member initializers is not
// default-constructible to clang inside its enclosing class (the fuzz and ASan builds).
struct WatchSnapshot {
  uint64_t after = 0;          // the last seq read from the store
  uint64_t to = 0;             // P: entries <= to come from the snapshot (a fold raises it)
  uint64_t folds = 0;          // times `to` was raised
  uint64_t taken_at_tick = 0;  // taken_ at the last Tick
  uint64_t folds_at_take = 0;  // folds when the watcher last took an event
  int stalled_ticks = 0;       // Ticks in a row with events ready and none taken
  std::deque<std::vector<storage::RevocationEntry>> pages;  // read, not yet taken
  size_t page_next = 0;      // the first entry of pages.front() not yet taken
  bool reading = false;      // a page read is queued or running
  bool exhausted = false;    // the store holds nothing more <= to
  std::string jwks_version;  // the keys event after end_of_snapshot
};

// One watcher's stream: events in order, then an end. Thread-safe.
class WatchStream {
 public:
  enum class Poll { kEvent, kEmpty, kEnded };
  // kEvent: *event is the next one. kEmpty: none now; `wake` (SetWake) will be called once
  // when there is (or the stream ends). kEnded: *end says why (never OK); queued events are
  // dropped, so an end is never delayed behind them.
  Poll Next(WatchEvent* event, absl::Status* end);
  // Set once, before the first Next. Called from the hub's threads, no hub lock held.
  void SetWake(std::function<void()> wake);
  // The watcher is gone: no wake is called after this returns; the hub forgets the stream.
  void Close();

  // Events queued and not yet taken, snapshot pages not counted (tests and stats).
  size_t queued() const;
  // Revocation entries this stream holds (snapshot pages, queued events): its memory, for
  // tests and stats. At most 2 * snapshot_page + stream_buffer.
  size_t held_entries() const;

 private:
  friend class WatchHub;
  // The snapshot being sent: entries with seq in (after, to] still to read or take.
  using Snapshot = WatchSnapshot;
  WatchStream(WatchHub* hub, size_t buffer, size_t max_batch)
      : hub_(hub), buffer_(buffer), max_batch_(max_batch) {}
  // Queues `event` (a bookmark replaces a bookmark at the back). Ends the stream with
  // watch_too_slow when full (folds during the snapshot). Returns whether the caller must call
  // the wake.
  bool Push(WatchEvent event) ABSL_LOCKS_EXCLUDED(mu_);
  bool End(absl::Status status) ABSL_LOCKS_EXCLUDED(mu_);
  void CallWake();
  bool closed() const;
  // The next snapshot event (or none: *event untouched, false).
  bool NextFromSnapshot(WatchEvent* event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool NextFromTail(WatchEvent* event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Raises the snapshot's P to `seq` and drops the queued entries.
  void FoldLocked(uint64_t seq) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Every bookmark interval (the dispatcher): ends a stream stalled in its snapshot (see the
  // header comment). Returns whether the caller must call the wake.
  bool Tick() ABSL_LOCKS_EXCLUDED(mu_);
  // Asks the hub's reader for the next page when the snapshot wants one.
  void MaybeReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The reader's side: what to read next (false: nothing), then the page it read.
  bool PageToRead(uint64_t* after, uint64_t* folds) ABSL_LOCKS_EXCLUDED(mu_);
  bool AddPage(absl::StatusOr<std::vector<storage::RevocationEntry>> page, size_t limit,
               uint64_t folds) ABSL_LOCKS_EXCLUDED(mu_);

  WatchHub* const hub_;
  const size_t buffer_;
  const size_t max_batch_;           // 1: no kEntries
  std::weak_ptr<WatchStream> self_;  // set by Watch, before the stream is shared
  mutable absl::Mutex mu_;
  std::vector<WatchEvent> head_ ABSL_GUARDED_BY(mu_);  // reset, end, keys; a resume's backlog
  size_t head_next_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<Snapshot> snapshot_ ABSL_GUARDED_BY(mu_);
  std::deque<WatchEvent> tail_ ABSL_GUARDED_BY(mu_);
  uint64_t taken_ ABSL_GUARDED_BY(mu_) = 0;  // events taken by Next
  absl::Status end_ ABSL_GUARDED_BY(mu_);    // non-OK once ended
  bool armed_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  int waking_ ABSL_GUARDED_BY(mu_) = 0;
  std::function<void()> wake_ ABSL_GUARDED_BY(mu_);
};

class WatchHub {
 public:
  // INVALID_ARGUMENT "invalid_argument:<field>" for a bad option.
  static absl::StatusOr<std::unique_ptr<WatchHub>> Create(WatchHubOptions options);
  ~WatchHub();  // Shutdown

  // Before Start: entries up to `seq` are in the store already (the view's load); the hub
  // keeps and resumes only what comes after.
  void Begin(uint64_t seq);
  // Starts the dispatcher and the snapshot reader threads.
  void Start();
  // Ends every stream (UNAVAILABLE "shutting_down"), refuses new ones, stops the threads.
  void Shutdown();

  // An entry, in seq order; one not above the last published is ignored (a duplicate).
  void Publish(const storage::RevocationEntry& entry);
  // Shared store: every entry committed before `as_of` has been published.
  void MarkCurrent(absl::Time as_of);

  // Opens a stream. Quick (no store read: the snapshot's pages are read by the hub's reader
  // as the stream drains); a snapshot read that fails ends the stream with the store's error.
  // `batches`: the watcher takes kEntries events (see the header comment). UNAVAILABLE
  // "shutting_down".
  absl::StatusOr<std::shared_ptr<WatchStream>> Watch(const std::optional<WatchPosition>& since,
                                                     bool batches = false);

  uint64_t epoch() const { return epoch_; }
  size_t streams() const;
  // Snapshot pages read from the store, and folds of a tail into a snapshot, since the hub
  // began (tests and stats).
  uint64_t pages_read() const;
  uint64_t folds() const { return folds_.load(std::memory_order_relaxed); }
  // The JWKS version of `jwks_json` (what keys events carry).
  static std::string JwksVersion(absl::string_view jwks_json);

 private:
  friend class WatchStream;
  explicit WatchHub(WatchHubOptions options);
  void Loop();
  // Fans entries published since the last call out to the streams, then (when `bookmark`)
  // a bookmark and any JWKS change. Returns the streams to wake.
  void Dispatch(bool bookmark);
  bool ResumeLocked(const WatchPosition& since, WatchStream* stream)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  WatchEvent KeysEvent() const;
  // The snapshot reader: reads one page for each stream queued by RequestRead, in turn.
  void RequestRead(std::weak_ptr<WatchStream> stream) ABSL_LOCKS_EXCLUDED(read_mu_);
  void ReadLoop();
  void ReadPage(WatchStream* stream);

  const WatchHubOptions options_;
  const uint64_t epoch_;
  mutable absl::Mutex mu_;
  std::deque<storage::RevocationEntry> ring_ ABSL_GUARDED_BY(mu_);  // seq > floor_
  uint64_t floor_ ABSL_GUARDED_BY(mu_) = 0;       // entries <= floor_ are not kept
  uint64_t last_ ABSL_GUARDED_BY(mu_) = 0;        // the last entry published
  uint64_t dispatched_ ABSL_GUARDED_BY(mu_) = 0;  // the last entry fanned out
  absl::Time proved_as_of_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();  // shared store
  std::string jwks_version_ ABSL_GUARDED_BY(mu_);
  std::list<std::shared_ptr<WatchStream>> streams_ ABSL_GUARDED_BY(mu_);
  bool work_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<std::thread> thread_;
  // Taken after a stream's mu_ (never the other way round).
  mutable absl::Mutex read_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::deque<std::weak_ptr<WatchStream>> read_queue_ ABSL_GUARDED_BY(read_mu_);
  bool read_stopping_ ABSL_GUARDED_BY(read_mu_) = false;
  uint64_t pages_read_ ABSL_GUARDED_BY(read_mu_) = 0;
  std::optional<std::thread> reader_;
  std::atomic<uint64_t> folds_{0};
};

}  // namespace ta::core

#endif  // TA_SERVER_CORE_WATCH_HUB_H_

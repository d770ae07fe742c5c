#include "server/core/watch_hub.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "base/error.h"
#include "base/status_macros.h"
#include "token/base64url.h"
#include "token/crypto.h"

namespace ta::core {
namespace {

uint64_t RandomEpoch() {
  while (true) {
    const std::string bytes = token::RandomBytes(8);
    uint64_t epoch = 0;
    std::memcpy(&epoch, bytes.data(), sizeof epoch);
    if (epoch != 0) return epoch;
  }
}

WatchEvent EntryEvent(storage::RevocationEntry entry) {
  WatchEvent event;
  event.type = WatchEvent::Type::kEntry;
  event.seq = entry.seq;
  event.entry = std::move(entry);
  return event;
}

WatchEvent MarkerEvent(WatchEvent::Type type, uint64_t seq) {
  WatchEvent event;
  event.type = type;
  event.seq = seq;
  return event;
}

absl::Status ShuttingDown() {
  return Error(absl::StatusCode::kUnavailable, "shutting_down",
               "the server is stopping; watch another instance");
}

}  // namespace

// ---- WatchHub ----

absl::StatusOr<std::unique_ptr<WatchHub>> WatchHub::Create(WatchHubOptions options) {
  if (options.store == nullptr) return InvalidField("store", "must not be null");
  if (options.clock == nullptr) return InvalidField("clock", "must not be null");
  if (options.stream_buffer < 16) return InvalidField("stream_buffer", "must be at least 16");
  if (options.snapshot_page < 1 || options.snapshot_page > 65536) {
    return InvalidField("snapshot_page", "must be between 1 and 65536");
  }
  if (options.bookmark_interval < absl::Milliseconds(10) ||
      options.bookmark_interval > absl::Milliseconds(250)) {
    return InvalidField("bookmark_interval", "must be between 10ms and 250ms");
  }
  return absl::WrapUnique(new WatchHub(std::move(options)));
}

WatchHub::WatchHub(WatchHubOptions options) : options_(std::move(options)), epoch_(RandomEpoch()) {
  if (options_.jwks_json) jwks_version_ = JwksVersion(options_.jwks_json());
}

WatchHub::~WatchHub() { Shutdown(); }

std::string WatchHub::JwksVersion(absl::string_view jwks_json) {
  return token::Base64UrlEncode(token::Sha256(jwks_json)).substr(0, 22);
}

void WatchHub::Begin(uint64_t seq) {
  absl::MutexLock lock(&mu_);
  floor_ = std::max(last_, seq);
  last_ = dispatched_ = floor_;
  ring_.clear();
}

void WatchHub::Start() {
  if (!thread_.has_value()) thread_.emplace([this] { Loop(); });
  if (!reader_.has_value()) reader_.emplace([this] { ReadLoop(); });
}

void WatchHub::Shutdown() {
  std::list<std::shared_ptr<WatchStream>> streams;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    streams.swap(streams_);
  }
  {
    absl::MutexLock lock(&read_mu_);
    read_stopping_ = true;
    read_queue_.clear();
  }
  if (thread_.has_value()) {
    thread_->join();
    thread_.reset();
  }
  if (reader_.has_value()) {
    reader_->join();
    reader_.reset();
  }
  for (const std::shared_ptr<WatchStream>& stream : streams) {
    if (stream->End(ShuttingDown())) stream->CallWake();
  }
}

void WatchHub::Publish(const storage::RevocationEntry& entry) {
  absl::MutexLock lock(&mu_);
  if (entry.seq <= last_) return;
  ring_.push_back(entry);
  last_ = entry.seq;
  while (ring_.size() > options_.retained_entries) {
    floor_ = ring_.front().seq;
    ring_.pop_front();
  }
  work_ = true;
}

void WatchHub::MarkCurrent(absl::Time as_of) {
  absl::MutexLock lock(&mu_);
  proved_as_of_ = std::max(proved_as_of_, as_of);
}

size_t WatchHub::streams() const {
  absl::MutexLock lock(&mu_);
  return streams_.size();
}

WatchEvent WatchHub::KeysEvent() const {
  WatchEvent keys;
  keys.type = WatchEvent::Type::kKeys;
  keys.jwks_version = jwks_version_;
  return keys;
}

bool WatchHub::ResumeLocked(const WatchPosition& since, WatchStream* stream) {
  if (since.epoch != epoch_ || since.seq < floor_ || since.seq > dispatched_) return false;
  std::vector<WatchEvent> backlog;
  for (const storage::RevocationEntry& entry : ring_) {
    if (entry.seq <= since.seq || entry.seq > dispatched_) continue;
    if (backlog.size() >= options_.stream_buffer / 2) return false;  // a snapshot is smaller
    backlog.push_back(EntryEvent(entry));
  }
  absl::MutexLock lock(&stream->mu_);
  stream->head_.push_back(KeysEvent());
  for (WatchEvent& event : backlog) stream->head_.push_back(std::move(event));
  return true;
}

absl::StatusOr<std::shared_ptr<WatchStream>> WatchHub::Watch(
    const std::optional<WatchPosition>& since, bool batches) {
  std::shared_ptr<WatchStream> stream(
      new WatchStream(this, options_.stream_buffer, batches ? options_.snapshot_page : 1));
  stream->self_ = stream;
  // Before the hub's lock (the view takes its own locks); unused when the stream resumes.
  const WatchSizeHint hint = options_.size_hint != nullptr ? options_.size_hint() : WatchSizeHint{};
  absl::MutexLock lock(&mu_);
  if (stopping_) return ShuttingDown();
  // Subscribed at `dispatched_`: the tail brings every entry after it.
  streams_.push_back(stream);
  if (since.has_value() && ResumeLocked(*since, stream.get())) return stream;
  absl::MutexLock stream_lock(&stream->mu_);
  stream->head_.push_back(MarkerEvent(WatchEvent::Type::kReset, 0));
  stream->head_.back().epoch = epoch_;
  stream->head_.back().hint = hint;
  WatchStream::Snapshot& snapshot = stream->snapshot_.emplace();
  snapshot.to = dispatched_;
  snapshot.jwks_version = jwks_version_;
  stream->MaybeReadLocked();  // the first page, read ahead
  return stream;
}

uint64_t WatchHub::pages_read() const {
  absl::MutexLock lock(&read_mu_);
  return pages_read_;
}

void WatchHub::RequestRead(std::weak_ptr<WatchStream> stream) {
  absl::MutexLock lock(&read_mu_);
  if (!read_stopping_) read_queue_.push_back(std::move(stream));
}

void WatchHub::ReadLoop() {
  while (true) {
    std::shared_ptr<WatchStream> stream;
    {
      absl::MutexLock lock(&read_mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(read_mu_) {
        return !read_queue_.empty() || read_stopping_;
      };
      read_mu_.Await(absl::Condition(&ready));
      if (read_stopping_) return;
      stream = read_queue_.front().lock();
      read_queue_.pop_front();
    }
    if (stream != nullptr) ReadPage(stream.get());
  }
}

void WatchHub::ReadPage(WatchStream* stream) {
  uint64_t after = 0, folds = 0;
  if (!stream->PageToRead(&after, &folds)) return;
  const size_t limit = options_.snapshot_page;
  absl::StatusOr<std::vector<storage::RevocationEntry>> page =
      options_.store->ReadRevocations(after, options_.clock->Now(), limit);
  {
    absl::MutexLock lock(&read_mu_);
    ++pages_read_;
  }
  if (stream->AddPage(std::move(page), limit, folds)) stream->CallWake();
}

void WatchHub::Loop() {
  absl::Time next_bookmark = absl::Now();
  while (true) {
    bool bookmark = false;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return work_ || stopping_; };
      mu_.AwaitWithDeadline(absl::Condition(&ready), next_bookmark);
      if (stopping_) return;
      if (absl::Now() >= next_bookmark) {
        bookmark = true;
        next_bookmark = absl::Now() + options_.bookmark_interval;
      }
    }
    Dispatch(bookmark);
  }
}

void WatchHub::Dispatch(bool bookmark) {
  std::string jwks_json;
  if (bookmark && options_.jwks_json) jwks_json = options_.jwks_json();  // outside mu_
  std::vector<WatchStream*> wake;
  std::vector<std::shared_ptr<WatchStream>> keep;  // alive until woken
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = options_.clock->Now();
    std::vector<WatchEvent> events;
    for (auto it = ring_.rbegin(); it != ring_.rend() && it->seq > dispatched_; ++it) {
      events.push_back(EntryEvent(*it));
    }
    std::reverse(events.begin(), events.end());
    dispatched_ = last_;
    work_ = false;
    if (bookmark && options_.jwks_json) {
      std::string version = JwksVersion(jwks_json);
      if (version != jwks_version_) {
        jwks_version_ = std::move(version);
        events.push_back(KeysEvent());
      }
    }
    const bool current = !options_.view_current || options_.view_current(now);
    if (bookmark && current) {
      const absl::Time as_of = options_.shared_store ? proved_as_of_ : now;
      if (as_of != absl::InfinitePast()) {
        events.push_back(MarkerEvent(WatchEvent::Type::kBookmark, dispatched_));
        events.back().as_of = as_of;
      }
    }
    for (auto it = streams_.begin(); it != streams_.end();) {
      WatchStream* stream = it->get();
      if (stream->closed()) {
        it = streams_.erase(it);
        continue;
      }
      bool woke = false;
      for (const WatchEvent& event : events) woke = stream->Push(event) || woke;
      if (bookmark) woke = stream->Tick() || woke;
      if (woke) {
        wake.push_back(stream);
        keep.push_back(*it);
      }
      ++it;
    }
  }
  for (WatchStream* stream : wake) stream->CallWake();
}

}  // namespace ta::core

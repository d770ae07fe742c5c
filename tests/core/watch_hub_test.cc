// WatchHub (server/core/watch_hub.h): the server side of WatchRevocations, in domain terms,
// over a real RocksDB store and authority (issue 25 item 1; protocol in
// docs/revocation-stream.md, checked by tests/model/watch.pml).
#include "server/core/watch_hub.h"

#include <atomic>
#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/error.h"
#include "server/core/authority.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "tests/support/temp_dir.h"

namespace ta::core {
namespace {

using Type = WatchEvent::Type;

struct Node {
  explicit Node(size_t buffer = 4096) {
    storage::RocksDbStoreOptions store_options;
    store_options.path = dir.Sub("db");
    store_options.clock = &clock;
    store = storage::OpenRocksDbStore(store_options).value();
    token::KeyRingOptions key_options;
    key_options.key_dir = dir.Sub("keys");
    key_options.clock = &clock;
    keys = token::KeyRing::Open(key_options).value();
    AuthorityOptions options;
    options.default_audience = {"api"};
    options.clock = &clock;
    options.watch_stream_buffer = buffer;
    options_ = options;
    authority = TokenAuthority::Create(options, store.get(), keys.get()).value();
  }
  // A new authority (a restarted server) on the same store: another epoch.
  void Restart() {
    authority.reset();
    authority = TokenAuthority::Create(options_, store.get(), keys.get()).value();
  }
  // Revokes one access token's jti directly in the store (what RevokeToken does).
  void Deny(const std::string& jti) {
    REQUIRE(store->DenyJti(jti, clock.Now() + absl::Minutes(5)).ok());
  }
  WatchHub& hub() { return authority->watch_hub(); }

  ta::testing::TempDir dir;
  FakeClock clock;
  std::unique_ptr<storage::TokenStore> store;
  std::unique_ptr<token::KeyRing> keys;
  std::unique_ptr<TokenAuthority> authority;
  AuthorityOptions options_;
};

// Takes events until `until` says stop (true) or 3 s pass; false on timeout or an end.
bool Read(WatchStream& stream, std::vector<WatchEvent>* out,
          const std::function<bool(const WatchEvent&)>& until,
          absl::Duration timeout = absl::Seconds(3)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    WatchEvent event;
    absl::Status end;
    switch (stream.Next(&event, &end)) {
      case WatchStream::Poll::kEvent:
        out->push_back(event);
        if (until(out->back())) return true;
        break;
      case WatchStream::Poll::kEmpty:
        absl::SleepFor(absl::Milliseconds(2));
        break;
      case WatchStream::Poll::kEnded:
        return false;
    }
  }
  return false;
}

bool IsType(const WatchEvent& e, Type type) { return e.type == type; }

std::vector<std::string> EntryIds(const std::vector<WatchEvent>& events) {
  std::vector<std::string> ids;
  for (const WatchEvent& e : events) {
    if (e.type == Type::kEntry) ids.push_back(e.entry.id);
  }
  return ids;
}

TEST_CASE(
    "WatchHub: a new watcher gets a reset, the snapshot, end_of_snapshot, then the tail in "
    "seq order",
    "[core][watch]") {
  Node node;
  for (int i = 0; i < 3; ++i) node.Deny(absl::StrCat("jti-", i));
  std::shared_ptr<WatchStream> stream = node.hub().Watch(std::nullopt).value();
  std::vector<WatchEvent> events;
  // An entry the dispatcher has not fanned out yet comes in the tail, after the snapshot.
  bool keys = false, last = false;
  REQUIRE(Read(*stream, &events, [&](const WatchEvent& e) {
    keys = keys || e.type == Type::kKeys;
    last = last || e.entry.id == "jti-2";
    return keys && last;
  }));
  CHECK(events[0].type == Type::kReset);
  CHECK(events[0].epoch == node.hub().epoch());
  CHECK(EntryIds(events) == std::vector<std::string>{"jti-0", "jti-1", "jti-2"});
  size_t eos = 0;
  while (eos < events.size() && events[eos].type != Type::kEndOfSnapshot) ++eos;
  REQUIRE(eos < events.size() - 1);
  CHECK(events[eos].seq == (eos > 1 ? events[eos - 1].entry.seq : 0));
  CHECK(events[eos + 1].type == Type::kKeys);
  CHECK(!events[eos + 1].jwks_version.empty());
  for (size_t i = eos + 2; i < events.size(); ++i) {
    CHECK(events[i].seq == events[eos].seq + (i - eos - 1));  // the tail goes on from it
  }
  events.erase(events.begin(), events.begin() + eos);  // from end_of_snapshot on

  for (int i = 3; i < 6; ++i) node.Deny(absl::StrCat("jti-", i));
  std::vector<WatchEvent> tail;
  REQUIRE(Read(*stream, &tail, [](const WatchEvent& e) { return e.entry.id == "jti-5"; }));
  std::vector<WatchEvent> entries;
  for (const WatchEvent& e : tail) {
    if (e.type == Type::kEntry) entries.push_back(e);
  }
  REQUIRE(entries.size() == 3);
  for (size_t i = 0; i < entries.size(); ++i) {
    CHECK(entries[i].seq == 4 + i);  // gapless: one step per revocation
  }
  stream->Close();
}

TEST_CASE("WatchHub: a resume from a position it holds continues with no gap and no reset",
          "[core][watch]") {
  Node node;
  node.Deny("a");
  std::shared_ptr<WatchStream> first = node.hub().Watch(std::nullopt).value();
  std::vector<WatchEvent> events;
  bool keys = false, got_a = false;
  REQUIRE(Read(*first, &events, [&](const WatchEvent& e) {
    keys = keys || e.type == Type::kKeys;
    got_a = got_a || e.entry.id == "a";
    return keys && got_a;
  }));
  uint64_t at = 0;  // the position: the last end_of_snapshot or entry
  for (const WatchEvent& e : events) {
    if (e.type == Type::kEndOfSnapshot || e.type == Type::kEntry) at = e.seq;
  }
  REQUIRE(at == 1);
  first->Close();
  node.Deny("b");  // while disconnected
  node.Deny("c");
  std::shared_ptr<WatchStream> second =
      node.hub().Watch(WatchPosition{node.hub().epoch(), at}).value();
  std::vector<WatchEvent> resumed;
  REQUIRE(Read(*second, &resumed, [](const WatchEvent& e) { return e.entry.id == "c"; }));
  CHECK(resumed[0].type == Type::kKeys);
  for (const WatchEvent& e : resumed) CHECK(e.type != Type::kReset);
  CHECK(EntryIds(resumed) == std::vector<std::string>{"b", "c"});
  CHECK(resumed.back().seq == at + 2);
  second->Close();
}

TEST_CASE(
    "WatchHub: a resume from another epoch, or from before what it keeps, gets a reset "
    "and a snapshot",
    "[core][watch]") {
  Node node;
  node.Deny("a");
  node.Deny("b");
  const uint64_t old_epoch = node.hub().epoch();
  node.Restart();  // keeps only what comes after seq 2
  const uint64_t epoch = node.hub().epoch();
  REQUIRE(epoch != old_epoch);
  // The previous epoch (a restarted server; also another replica, a restored store), a
  // position older than what the hub keeps, and one newer than its last.
  for (const WatchPosition since :
       {WatchPosition{old_epoch, 2}, WatchPosition{epoch, 1}, WatchPosition{epoch, 99}}) {
    std::shared_ptr<WatchStream> stream = node.hub().Watch(since).value();
    std::vector<WatchEvent> events;
    REQUIRE(Read(*stream, &events, [](const WatchEvent& e) { return IsType(e, Type::kKeys); }));
    CHECK(events[0].type == Type::kReset);
    CHECK(events[0].epoch == epoch);
    CHECK(EntryIds(events) == std::vector<std::string>{"a", "b"});
    stream->Close();
  }
}

TEST_CASE("WatchHub: bookmarks arrive at least every 250 ms and carry the last seq",
          "[core][watch]") {
  Node node;
  node.Deny("a");
  std::shared_ptr<WatchStream> stream = node.hub().Watch(std::nullopt).value();
  std::vector<WatchEvent> events;
  std::vector<absl::Time> arrived;
  REQUIRE(Read(*stream, &events, [&](const WatchEvent& e) {
    if (e.type == Type::kBookmark) arrived.push_back(absl::Now());
    return arrived.size() == 5;
  }));
  // The hub ticks every 200 ms. Wall-clock intervals on a loaded machine (CI runs this under
  // ASan next to other tests) may stretch one tick, so: the median within 250 ms, none over 1 s.
  std::vector<absl::Duration> gaps;
  for (size_t i = 1; i < arrived.size(); ++i) gaps.push_back(arrived[i] - arrived[i - 1]);
  std::sort(gaps.begin(), gaps.end());
  CHECK(gaps[gaps.size() / 2] <= absl::Milliseconds(250));
  CHECK(gaps.back() <= absl::Seconds(1));
  CHECK(events.back().seq == 1);
  CHECK(events.back().as_of == node.clock.Now());  // alone on its store: the clock's reading
  stream->Close();
}

TEST_CASE("WatchHub: a replica whose view is stale sends no bookmarks, then resumes them",
          "[core][watch]") {
  ta::testing::TempDir dir;
  FakeClock clock;
  storage::RocksDbStoreOptions store_options;
  store_options.path = dir.Sub("db");
  store_options.clock = &clock;
  std::unique_ptr<storage::TokenStore> store = storage::OpenRocksDbStore(store_options).value();
  std::atomic<bool> current{true};
  WatchHubOptions options;
  options.store = store.get();
  options.clock = &clock;
  options.shared_store = true;
  options.view_current = [&](absl::Time) { return current.load(); };
  options.bookmark_interval = absl::Milliseconds(20);
  std::unique_ptr<WatchHub> hub = WatchHub::Create(options).value();
  hub->Begin(0);
  hub->Start();
  hub->MarkCurrent(clock.Now());
  std::shared_ptr<WatchStream> stream = hub->Watch(std::nullopt).value();
  std::vector<WatchEvent> events;
  REQUIRE(Read(*stream, &events, [](const WatchEvent& e) { return IsType(e, Type::kBookmark); }));
  CHECK(events.back().as_of == clock.Now());  // the follower's proof

  current = false;
  absl::SleepFor(absl::Milliseconds(50));  // a bookmark already queued may still come
  while (stream->queued() > 0) {
    WatchEvent e;
    absl::Status end;
    stream->Next(&e, &end);
  }
  events.clear();
  // 25 bookmark intervals of silence.
  CHECK(!Read(
      *stream, &events, [](const WatchEvent& e) { return IsType(e, Type::kBookmark); },
      absl::Milliseconds(500)));
  CHECK(events.empty());

  current = true;
  clock.Advance(absl::Seconds(1));
  hub->MarkCurrent(clock.Now());
  REQUIRE(Read(*stream, &events, [](const WatchEvent& e) { return IsType(e, Type::kBookmark); }));
  CHECK(events.back().as_of == clock.Now());
  stream->Close();
  hub->Shutdown();
}

TEST_CASE("WatchHub: a key rotation reaches the stream as a new JWKS version", "[core][watch]") {
  Node node;
  std::shared_ptr<WatchStream> stream = node.hub().Watch(std::nullopt).value();
  std::vector<WatchEvent> events;
  REQUIRE(Read(*stream, &events, [](const WatchEvent& e) { return IsType(e, Type::kKeys); }));
  const std::string before = events.back().jwks_version;
  Caller admin;
  admin.roles = {Role::kAdmin};
  REQUIRE(node.authority->RotateSigningKey("ES256", admin).ok());
  events.clear();
  REQUIRE(Read(*stream, &events, [](const WatchEvent& e) { return IsType(e, Type::kKeys); }));
  CHECK(events.back().jwks_version != before);
  CHECK(events.back().jwks_version == WatchHub::JwksVersion(node.authority->JwksJson()));
  stream->Close();
}

TEST_CASE(
    "WatchHub: a watcher that does not read is cut with watch_too_slow and its buffer "
    "freed",
    "[core][watch]") {
  Node node(/*buffer=*/16);
  std::shared_ptr<WatchStream> slow = node.hub().Watch(std::nullopt).value();
  std::shared_ptr<WatchStream> reader = node.hub().Watch(std::nullopt).value();
  std::vector<WatchEvent> seen;
  for (int i = 0; i < 40; ++i) {
    const std::string jti = absl::StrCat("j", i);
    node.Deny(jti);
    REQUIRE(Read(*reader, &seen, [&](const WatchEvent& e) { return e.entry.id == jti; }));
  }
  WatchEvent event;
  absl::Status end;
  // The dispatcher may still be fanning the last entries out.
  for (int i = 0; i < 300 && slow->queued() > 0 && slow->queued() < 16; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  CHECK(slow->queued() == 0);  // ended: nothing held
  REQUIRE(slow->Next(&event, &end) == WatchStream::Poll::kEnded);
  CHECK(end.code() == absl::StatusCode::kResourceExhausted);
  CHECK(ReasonOf(end) == "watch_too_slow");
  CHECK(EntryIds(seen).size() == 40);  // the reader lost nothing
  slow->Close();
  reader->Close();
}

TEST_CASE(
    "WatchHub: watchers connecting and leaving while hundreds of revocations race each end "
    "with the store's live set",
    "[core][watch]") {
  Node node;
  constexpr int kWriters = 4, kPerWriter = 75, kWatchers = 6;
  std::atomic<int> writers_done{0}, failed_writes{0}, gaps{0}, ended{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {  // no Catch2 assertion off the main thread
      for (int i = 0; i < kPerWriter; ++i) {
        const std::string jti = absl::StrCat("w", w, "-", i);
        if (!node.store->DenyJti(jti, node.clock.Now() + absl::Minutes(5)).ok()) ++failed_writes;
      }
      ++writers_done;
    });
  }
  std::vector<std::set<std::string>> finals(kWatchers);
  for (int v = 0; v < kWatchers; ++v) {
    threads.emplace_back([&, v] {
      std::set<std::string> held;
      std::optional<WatchPosition> since;
      bool snapshot = false, finished = false;
      uint64_t last = 0;
      // Reconnect every few events, resuming from the position held (none mid-snapshot, as
      // the model's verifier), until the writers are done and a bookmark covers them all.
      while (!finished) {
        std::shared_ptr<WatchStream> stream = node.hub().Watch(since).value();
        for (int taken = 0; taken < 25 + v * 10 && !finished;) {
          WatchEvent e;
          absl::Status end;
          const WatchStream::Poll poll = stream->Next(&e, &end);
          if (poll == WatchStream::Poll::kEnded) {
            ++ended;
            break;
          }
          if (poll == WatchStream::Poll::kEmpty) {
            absl::SleepFor(absl::Milliseconds(1));
            continue;
          }
          ++taken;
          switch (e.type) {
            case Type::kReset:
              held.clear();
              snapshot = true;
              since = WatchPosition{e.epoch, 0};
              break;
            case Type::kEntry:
              if (!snapshot && e.seq != last + 1) ++gaps;  // the tail is gapless here
              held.insert(e.entry.id);
              if (!snapshot) last = since->seq = e.seq;
              break;
            case Type::kEndOfSnapshot:
              snapshot = false;
              last = since->seq = e.seq;
              break;
            case Type::kBookmark:
              last = since->seq = e.seq;
              finished = writers_done.load() == kWriters &&
                         e.seq >= static_cast<uint64_t>(kWriters * kPerWriter);
              break;
            case Type::kEntries:  // only for a stream opened with batches
            case Type::kKeys:
              break;
          }
        }
        stream->Close();
        if (snapshot) since.reset();
      }
      finals[v] = held;
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(failed_writes.load() == 0);
  CHECK(gaps.load() == 0);
  CHECK(ended.load() == 0);
  std::set<std::string> live;
  absl::StatusOr<std::vector<storage::RevocationEntry>> log =
      node.store->ReadRevocations(0, node.clock.Now(), 100000);
  REQUIRE(log.ok());
  for (const storage::RevocationEntry& e : *log) live.insert(e.id);
  REQUIRE(live.size() == kWriters * kPerWriter);
  for (const std::set<std::string>& held : finals) CHECK(held == live);
}

}  // namespace
}  // namespace ta::core

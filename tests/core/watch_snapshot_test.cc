// The paged snapshot of WatchRevocations (issue 27 item 4; server/core/watch_hub.h): many
// pages while revocations keep committing, on RocksDB and on PostgreSQL (a replica: the
// follower feeds the hub), and the bound on what a stalled watcher holds.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "server/core/authority.h"
#include "server/core/watch_hub.h"
#include "tests/core/view_checkpoint_env.h"

namespace ta::core {
namespace {

using checkpoint_testing::Engine;
using Type = WatchEvent::Type;

// A server over Env's store: the authority (and so the hub) with small pages and buffer.
struct Server {
  Server(Engine engine, size_t page, size_t buffer) : env(engine) {
    token::KeyRingOptions key_options;
    key_options.key_dir = env.dir.Sub("keys");
    key_options.clock = &env.clock;
    keys = token::KeyRing::Open(key_options).value();
    AuthorityOptions options;
    options.default_audience = {"api"};
    options.clock = &env.clock;
    options.shared_store = engine == Engine::kPostgres;
    options.max_revocation_lag = absl::Minutes(1);  // the fake clock moves 2 ms a round
    options.watch_snapshot_page = page;
    options.watch_stream_buffer = buffer;
    authority = TokenAuthority::Create(options, env.store.get(), keys.get()).value();
  }
  ~Server() { authority.reset(); }
  WatchHub& hub() { return authority->watch_hub(); }
  absl::Status Deny(const std::string& jti, absl::Duration life) {
    return env.store->DenyJti(jti, env.clock.Now() + life);
  }
  std::set<uint64_t> LiveSeqs() {
    std::set<uint64_t> live;
    absl::StatusOr<std::vector<storage::RevocationEntry>> log =
        env.store->ReadRevocations(0, env.clock.Now(), 1'000'000);
    REQUIRE(log.ok());
    for (const storage::RevocationEntry& e : *log) live.insert(e.seq);
    return live;
  }

  checkpoint_testing::Env env;
  std::unique_ptr<token::KeyRing> keys;
  std::unique_ptr<TokenAuthority> authority;
};

// What one watcher saw, checked as it goes (no Catch2 assertion off the main thread).
struct Watcher {
  std::set<uint64_t> held;  // seqs of the entries received
  int faults = 0;           // a second reset, a duplicate, a gap, an end, a timeout
  bool gapless = true;      // the tail steps by one (a server alone on its store)
  uint64_t end_of_snapshot = 0;
  std::string ended;  // why the stream ended early

  // Reads until a bookmark at or past `*target` (set once the writers are done).
  // `pace`: a pause after each event while `*pacing` holds (a slow watcher).
  void Run(WatchStream& stream, const std::atomic<uint64_t>* target, bool slow,
           absl::Duration pace = absl::ZeroDuration(), const std::atomic<bool>* pacing = nullptr) {
    bool snapshot = true, first = true;
    uint64_t last = 0;
    int events = 0;
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      WatchEvent e;
      absl::Status end;
      const WatchStream::Poll poll = stream.Next(&e, &end);
      if (poll == WatchStream::Poll::kEnded) {
        ended = end.ToString();
        Fault("ended", 0);
        return;
      }
      if (poll == WatchStream::Poll::kEmpty) {
        absl::SleepFor(absl::Microseconds(300));
        continue;
      }
      if (first != (e.type == Type::kReset)) Fault("reset", 0);  // first, and only first
      first = false;
      if (e.type == Type::kEntry) e.entries.push_back(e.entry);
      for (const storage::RevocationEntry& entry : e.entries) {
        if (!held.insert(entry.seq).second) Fault("duplicate", entry.seq);
        if (entry.seq <= last) Fault("out of order", entry.seq);
        // A replica's follower steps over entries already dead when it read them (the check
        // that no live one is skipped is the caller's: the live set at the end).
        if (!snapshot && gapless && entry.seq != last + 1) {
          Fault(absl::StrCat("gap after ", last), entry.seq);
        }
        last = entry.seq;
      }
      // A slow start lets the writers outrun the buffer: the tail folds into the snapshot.
      if (slow && ++events < 30) absl::SleepFor(absl::Microseconds(300));
      if (pacing != nullptr && pacing->load()) absl::SleepFor(pace);
      if (e.type == Type::kEndOfSnapshot) {
        if (e.seq < last) Fault("end_of_snapshot behind", e.seq);
        snapshot = false;
        last = end_of_snapshot = e.seq;
      }
      if (e.type == Type::kBookmark && !snapshot) {
        if (e.seq < last) Fault("bookmark behind", e.seq);
        last = e.seq;
        const uint64_t want = target->load();
        if (want != 0 && e.seq >= want) return;
      }
    }
    Fault("timeout", 0);
  }
  void Fault(const std::string& what, uint64_t seq) {
    if (++faults <= 3) ended += absl::StrCat(" ", what, " ", seq, ";");
  }
};

// Waits until the hub has dispatched everything in the store (a replica's follower polls).
void AwaitDispatched(Server& server) {
  std::set<uint64_t> live = server.LiveSeqs();
  const std::atomic<uint64_t> target{live.empty() ? 1 : *live.rbegin()};
  // A small buffer cuts a watcher whose tail gets a replica's burst: reconnect, as a client.
  for (int attempt = 0; attempt < 20; ++attempt) {
    std::shared_ptr<WatchStream> stream = server.hub().Watch(std::nullopt, true).value();
    Watcher watcher;
    watcher.gapless = false;
    watcher.Run(*stream, &target, false);
    stream->Close();
    if (watcher.faults == 0) return;
  }
  FAIL("the hub never caught up with the store");
}

// Denies `n` jtis live for an hour ("seed-0"...) and waits until the hub has them all.
void Seed(Server& server, int n) {
  for (int i = 0; i < n; ++i) REQUIRE(server.Deny(absl::StrCat("seed-", i), absl::Hours(1)).ok());
  AwaitDispatched(server);
}

void RaceRound(Server& server, int round, int writers, int per_writer, int watchers) {
  std::atomic<uint64_t> target{0};
  std::atomic<int> failed_writes{0};
  std::vector<std::shared_ptr<WatchStream>> streams;
  std::vector<Watcher> seen(watchers);
  for (Watcher& w : seen) w.gapless = server.env.engine == Engine::kRocksDb;
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < per_writer; ++i) {
        // Some already dead by the time the watchers read: the snapshot skips them.
        const absl::Duration life = i % 7 == 0 ? absl::Milliseconds(1) : absl::Hours(1);
        if (!server.Deny(absl::StrCat("r", round, "-w", w, "-", i), life).ok()) ++failed_writes;
      }
    });
  }
  for (int v = 0; v < watchers; ++v) {
    streams.push_back(server.hub().Watch(std::nullopt, /*batches=*/v % 2 == 0).value());
  }
  std::vector<std::thread> readers;
  for (int v = 0; v < watchers; ++v) {
    readers.emplace_back([&, v] { seen[v].Run(*streams[v], &target, /*slow=*/v % 3 == 1); });
  }
  for (std::thread& t : threads) t.join();
  server.env.clock.Advance(absl::Milliseconds(2));  // the short-lived entries die
  std::set<uint64_t> live = server.LiveSeqs();
  target = live.empty() ? 1 : *live.rbegin();
  for (std::thread& t : readers) t.join();
  for (const std::shared_ptr<WatchStream>& stream : streams) stream->Close();
  CHECK(failed_writes.load() == 0);
  for (const Watcher& watcher : seen) {
    INFO(watcher.ended);
    CHECK(watcher.faults == 0);
    // Exactly the live set, plus entries that died while it was being sent (they were live
    // when sent: a verifier drops them by their live_until).
    std::set<uint64_t> missing;
    for (uint64_t seq : live) {
      if (watcher.held.count(seq) == 0) missing.insert(seq);
    }
    CHECK(missing.empty());
  }
}

TEST_CASE(
    "WatchHub: a snapshot of many pages while revocations commit gives every watcher the "
    "store's live set with no gap and no duplicate",
    "[core][watch][snapshot]") {
  const Engine engine = GENERATE(Engine::kRocksDb, Engine::kPostgres);
  INFO(checkpoint_testing::Name(engine));
  Server server(engine, /*page=*/5, /*buffer=*/4096);
  Seed(server, 200);
  const int rounds = engine == Engine::kRocksDb ? 100 : 12;
  for (int round = 0; round < rounds; ++round) {
    RaceRound(server, round, /*writers=*/2, /*per_writer=*/engine == Engine::kRocksDb ? 20 : 40,
              /*watchers=*/3);
  }
  CHECK(server.hub().pages_read() > 40);
}

TEST_CASE(
    "WatchHub: a slow watcher in a long snapshot is not cut when the tail outruns its buffer: "
    "the tail folds into the snapshot, which still ends with exactly the live set",
    "[core][watch][snapshot]") {
  const Engine engine = GENERATE(Engine::kRocksDb, Engine::kPostgres);
  INFO(checkpoint_testing::Name(engine));
  constexpr size_t kPage = 8, kBuffer = 16;
  Server server(engine, kPage, kBuffer);
  Seed(server, 800);
  std::shared_ptr<WatchStream> stream = server.hub().Watch(std::nullopt, true).value();
  std::atomic<bool> writing{true};
  std::atomic<int> failed_writes{0};
  std::thread writer([&] {
    for (int i = 0; i < 6 * static_cast<int>(kBuffer); ++i) {
      if (!server.Deny(absl::StrCat("late-", i), absl::Hours(1)).ok()) ++failed_writes;
      if (i % 10 == 9) absl::SleepFor(absl::Milliseconds(20));
    }
    // Slow until the hub has them all (a replica's follower polls every 100 ms): a burst
    // after the snapshot would overflow the small buffer and rightly cut the stream.
    absl::SleepFor(absl::Milliseconds(400));
    writing = false;
  });
  // Slow but reading: one event every 20 ms while the writes go on (and some more).
  Watcher watcher;
  watcher.gapless = engine == Engine::kRocksDb;
  std::atomic<uint64_t> target{0};
  std::thread reader(
      [&] { watcher.Run(*stream, &target, /*slow=*/false, absl::Milliseconds(20), &writing); });
  writer.join();
  const std::set<uint64_t> live = server.LiveSeqs();
  target = *live.rbegin();
  reader.join();
  stream->Close();
  CHECK(failed_writes.load() == 0);
  INFO(watcher.ended);
  CHECK(watcher.faults == 0);
  CHECK(server.hub().folds() > 0);
  CHECK(watcher.end_of_snapshot >= 800 + kBuffer);  // P was raised past the first fold
  CHECK(watcher.held == live);
}

TEST_CASE(
    "WatchHub: a watcher that stops reading mid-snapshot holds at most two pages and its "
    "buffer, and is cut with watch_too_slow",
    "[core][watch][snapshot]") {
  const Engine engine = GENERATE(Engine::kRocksDb, Engine::kPostgres);
  INFO(checkpoint_testing::Name(engine));
  constexpr size_t kPage = 8, kBuffer = 16;
  Server server(engine, kPage, kBuffer);
  Seed(server, 400);
  const uint64_t pages_before = server.hub().pages_read();
  std::shared_ptr<WatchStream> stalled = server.hub().Watch(std::nullopt, true).value();
  WatchEvent event;
  absl::Status end;
  int taken = 0;
  for (int i = 0; i < 3000 && taken < 2; ++i) {  // the reset and one page
    if (stalled->Next(&event, &end) == WatchStream::Poll::kEvent) {
      ++taken;
    } else {
      absl::SleepFor(absl::Milliseconds(1));
    }
  }
  REQUIRE(taken == 2);
  CHECK(event.entries.size() == kPage);
  // It stops reading; revocations go on. Whatever it holds stays within its bound.
  size_t most = 0;
  for (int i = 0; i < 5 * static_cast<int>(kBuffer); ++i) {
    REQUIRE(server.Deny(absl::StrCat("late-", i), absl::Hours(1)).ok());
    most = std::max(most, stalled->held_entries());
    if (i % 8 == 7) absl::SleepFor(absl::Milliseconds(engine == Engine::kPostgres ? 150 : 5));
  }
  for (int i = 0; i < 500 && stalled->held_entries() > 0; ++i) {
    most = std::max(most, stalled->held_entries());
    absl::SleepFor(absl::Milliseconds(10));
  }
  CHECK(most <= 2 * kPage + kBuffer);
  CHECK(server.hub().pages_read() - pages_before <= 4);  // not the 50 pages of the live set
  CHECK(stalled->held_entries() == 0);                   // ended: nothing held
  REQUIRE(stalled->Next(&event, &end) == WatchStream::Poll::kEnded);
  CHECK(end.code() == absl::StatusCode::kResourceExhausted);
  CHECK(ReasonOf(end) == "watch_too_slow");
  stalled->Close();
}

}  // namespace
}  // namespace ta::core

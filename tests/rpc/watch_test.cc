// WatchRevocations over gRPC (issue 25 item 1): the stream on the embedded RocksDB server and
// on PostgreSQL replicas (two servers over one database of a cluster of the test's own), a
// slow reader cut with its reason, and what idle streams cost.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_server.h"
#include "tests/support/watcher.h"

namespace ta::testing {
namespace {

using Response = v1::WatchRevocationsResponse;

std::vector<std::string> EntryIds(const std::vector<Response>& events) {
  std::vector<std::string> ids;
  for (const Response& e : events) {
    if (e.has_entry()) ids.push_back(e.entry().id());
  }
  return ids;
}

CallResult RevokeFamily(TestServer& server, const std::string& family_id) {
  v1::RevokeFamilyRequest req;
  req.set_family_id(family_id);
  v1::RevokeFamilyResponse resp;
  return server.Call(server.api(), &v1::TokenAuthority::Stub::RevokeFamily, req, &resp);
}

absl::Time AsTime(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

TEST_CASE(
    "WatchRevocations: snapshot, end_of_snapshot, live tail, bookmarks and resume over "
    "gRPC",
    "[rpc][watch]") {
  TestServer server;
  v1::TokenPair a, b, c;
  REQUIRE(server.Issue("alice", &a).ok());
  REQUIRE(server.Issue("bob", &b).ok());
  REQUIRE(server.Issue("carol", &c).ok());
  REQUIRE(RevokeFamily(server, a.family_id()).ok());

  auto watcher = std::make_unique<Watcher>(server.api(), server.admin_key());
  std::vector<Response> events;
  REQUIRE(watcher->Read(&events, [](const Response& r) { return r.has_keys(); }));
  const uint64_t epoch = events[0].reset().epoch();
  CHECK(epoch != 0);
  CHECK(!events.back().keys().jwks_version().empty());
  if (events.size() == 3) {
    // a's revocation committed before the hub dispatched it, so the stream subscribed before
    // it: the snapshot is empty and a comes first in the tail (no gap either way).
    CHECK(events[1].end_of_snapshot().seq() == 0);
    REQUIRE(watcher->Read(&events, [](const Response& r) { return r.has_entry(); }));
  } else {
    REQUIRE(events.size() == 4);
    CHECK(events[2].end_of_snapshot().seq() == events[1].entry().seq());
  }
  REQUIRE(EntryIds(events) == std::vector<std::string>{a.family_id()});
  for (const Response& e : events) {
    if (e.has_entry()) CHECK(e.entry().kind() == v1::RevocationEvent::FAMILY);
  }

  REQUIRE(RevokeFamily(server, b.family_id()).ok());  // pushed as it commits
  events.clear();
  REQUIRE(watcher->Read(&events, [](const Response& r) { return r.has_entry(); }));
  CHECK(events.back().entry().id() == b.family_id());
  const uint64_t b_seq = events.back().entry().seq();
  events.clear();
  const absl::Time start = absl::Now();
  REQUIRE(watcher->Read(&events, [](const Response& r) { return r.has_bookmark(); }));
  // Every 200 ms by the hub's tick; the bound allows for a loaded machine (ctest -j2).
  CHECK(absl::Now() - start <= absl::Seconds(1));
  CHECK(events.back().bookmark().seq() == b_seq);
  CHECK(AsTime(events.back().bookmark().as_of()) == server.clock().Now());
  watcher.reset();

  // Resume on the same server: the entries since, no reset.
  REQUIRE(RevokeFamily(server, c.family_id()).ok());
  v1::WatchRevocationsRequest resume;
  resume.mutable_since()->set_epoch(epoch);
  resume.mutable_since()->set_seq(b_seq);
  Watcher resumed(server.api(), server.admin_key(), resume);
  events.clear();
  REQUIRE(resumed.Read(&events, [](const Response& r) { return r.has_entry(); }));
  CHECK(events.front().has_keys());
  CHECK(events.back().entry().id() == c.family_id());
  CHECK(events.back().entry().seq() == b_seq + 1);

  // After a restart the epoch differs: the same position gets a reset and a snapshot.
  server.Restart();
  Watcher after(server.api(), server.admin_key(), resume);
  events.clear();
  REQUIRE(after.Read(&events, [](const Response& r) { return r.has_end_of_snapshot(); }));
  CHECK(events[0].reset().epoch() != epoch);
  CHECK(EntryIds(events) == std::vector<std::string>{a.family_id(), b.family_id(), c.family_id()});
}

TEST_CASE(
    "WatchRevocations: a watcher asking for batches gets the snapshot's pages as batch "
    "messages, one that does not gets one entry per message (issue 27 item 4)",
    "[rpc][watch]") {
  TestServer server([](ServerOptions& o) { o.authority.watch_snapshot_page = 4; });
  std::vector<std::string> revoked;
  for (int i = 0; i < 10; ++i) {
    v1::TokenPair pair;
    REQUIRE(server.Issue(absl::StrCat("user-", i), &pair).ok());
    REQUIRE(RevokeFamily(server, pair.family_id()).ok());
    revoked.push_back(pair.family_id());
  }
  absl::SleepFor(absl::Milliseconds(100));  // dispatched: all ten in the snapshot
  for (const bool batches : {true, false}) {
    INFO("batches " << batches);
    v1::WatchRevocationsRequest request;
    request.set_batches(batches);
    Watcher watcher(server.api(), server.admin_key(), request);
    std::vector<Response> events;
    REQUIRE(watcher.Read(&events, [](const Response& r) { return r.has_end_of_snapshot(); }));
    std::vector<std::string> ids;
    int batch_messages = 0, entry_messages = 0;
    uint64_t last = 0;
    for (const Response& e : events) {
      if (e.has_entry()) ++entry_messages;
      if (e.has_batch()) {
        ++batch_messages;
        CHECK(e.batch().entries_size() >= 1);
        CHECK(e.batch().entries_size() <= 4);
      }
      std::vector<v1::RevocationEvent> entries(e.batch().entries().begin(),
                                               e.batch().entries().end());
      if (e.has_entry()) entries.push_back(e.entry());
      for (const v1::RevocationEvent& entry : entries) {
        CHECK(entry.seq() > last);
        last = entry.seq();
        CHECK(entry.kind() == v1::RevocationEvent::FAMILY);
        ids.push_back(entry.id());
      }
    }
    CHECK(ids == revoked);
    CHECK(events.back().end_of_snapshot().seq() == last);
    CHECK(entry_messages == (batches ? 0 : 10));
    CHECK(batch_messages == (batches ? 3 : 0));  // pages of 4, 4 and 2
  }
}

TEST_CASE("WatchRevocations: a caller without credentials is refused before any work",
          "[rpc][watch]") {
  TestServer server;
  Watcher anonymous(server.api(), "");
  std::vector<Response> events;
  CHECK(!anonymous.Read(&events, [](const Response&) { return true; }));
  CHECK(anonymous.status().error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(events.empty());
}

TEST_CASE("WatchRevocations: a watcher that stops reading is cut with watch_too_slow",
          "[rpc][watch]") {
  TestServer server([](ServerOptions& o) { o.authority.watch_stream_buffer = 16; });
  // A small HTTP/2 window, so the transport holds little of what the server sends.
  auto stub = SmallWindowStub(server.address());
  Watcher slow(*stub, server.admin_key());
  std::vector<Response> events;
  REQUIRE(slow.Read(&events, [](const Response& r) { return r.has_keys(); }));

  constexpr int kFamilies = 120;
  std::vector<std::string> families;
  for (int i = 0; i < kFamilies; ++i) {
    v1::TokenPair pair;
    REQUIRE(server.Issue(absl::StrCat("user-", i), &pair).ok());
    families.push_back(pair.family_id());
  }
  for (const std::string& family : families) REQUIRE(RevokeFamily(server, family).ok());
  absl::SleepFor(absl::Milliseconds(300));  // the hub fans out and cuts
  events.clear();
  CHECK(!slow.Read(&events, [](const Response&) { return false; }));
  CHECK(slow.status().error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(slow.reason() == "watch_too_slow");
  CHECK(EntryIds(events).size() < kFamilies);  // what the transport and the buffer held
}

// Idle streams: resident memory and CPU of a real server process (the token-authority
// binary) per stream; the clients are this process. TA_WATCH_STREAMS sets the count (default
// 1000; 10000 for the figure in docs/revocation-stream.md).
class Counting final : public grpc::ClientReadReactor<Response> {
 public:
  Counting(v1::TokenAuthority::Stub& stub, const std::string& key, std::atomic<int>* open)
      : open_(open) {
    PrepareContext(&ctx_, key);
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    stub.async()->WatchRevocations(&ctx_, &request_, this);
    StartRead(&response_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (response_.has_keys() && !counted_) {
      counted_ = true;
      ++*open_;
    }
    StartRead(&response_);
  }
  void OnDone(const grpc::Status&) override {
    absl::MutexLock lock(&mu_);
    done_ = true;
  }
  void Cancel() { ctx_.TryCancel(); }
  void AwaitDone() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
  }

 private:
  grpc::ClientContext ctx_;
  v1::WatchRevocationsRequest request_;
  Response response_;
  std::atomic<int>* open_;
  bool counted_ = false;
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

// The server process's resident KiB and CPU time (from /proc/<pid>).
long RssKiB(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

absl::Duration CpuTime(pid_t pid) {
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));  // after "pid (comm) "
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::atol(field.c_str());
    if (i == 15) stime = std::atol(field.c_str());
  }
  return absl::Seconds(static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK));
}

TEST_CASE("WatchRevocations: idle streams cost little memory and CPU in the server (measured)",
          "[rpc][watch]") {
  const char* env = std::getenv("TA_WATCH_STREAMS");
  const int n = env != nullptr ? std::atoi(env) : 1000;
  TempDir dir;
  absl::StatusOr<std::unique_ptr<ServerProcess>> proc =
      ServerProcess::Start(ServerBinary(), {"--listen=127.0.0.1:0", "--data_dir=" + dir.path()});
  INFO(proc.status().ToString());
  REQUIRE(proc.ok());
  const pid_t pid = (*proc)->pid();
  std::string key;
  std::getline(std::ifstream(dir.path() + "/admin.key"), key);
  auto stub = v1::TokenAuthority::NewStub(
      grpc::CreateChannel((*proc)->address(), grpc::InsecureChannelCredentials()));
  { Watcher warm(*stub, key); }
  absl::SleepFor(absl::Milliseconds(300));
  const long rss_before = RssKiB(pid);
  std::atomic<int> open{0};
  std::vector<std::unique_ptr<Counting>> streams;
  for (int i = 0; i < n; ++i) streams.push_back(std::make_unique<Counting>(*stub, key, &open));
  for (int i = 0; i < 6000 && open.load() < n; ++i) absl::SleepFor(absl::Milliseconds(10));
  REQUIRE(open.load() == n);
  absl::SleepFor(absl::Milliseconds(500));
  const long rss_after = RssKiB(pid);
  const absl::Duration cpu_before = CpuTime(pid);
  const absl::Time wall_before = absl::Now();
  absl::SleepFor(absl::Seconds(2));
  const double cpu_share = absl::FDivDuration(CpuTime(pid) - cpu_before, absl::Now() - wall_before);
  const double kib_per_stream = static_cast<double>(rss_after - rss_before) / n;
  std::printf(
      "watch streams: %d idle streams: server RSS %ld -> %ld KiB, %.1f KiB per stream; "
      "server CPU at idle %.1f%% of one core (a bookmark every 200 ms to each)\n",
      n, rss_before, rss_after, kib_per_stream, cpu_share * 100);
  for (auto& s : streams) s->Cancel();
  for (auto& s : streams) s->AwaitDone();
  CHECK(kib_per_stream < 64);
  CHECK((*proc)->Stop(SIGTERM).ok());
}

TEST_CASE(
    "WatchRevocations on PostgreSQL replicas: another replica's revocation reaches the "
    "stream, and a stale replica sends no bookmarks until it is current again",
    "[rpc][watch][postgres]") {
  std::unique_ptr<OwnPostgres> pg = StartOwnPostgres();
  std::unique_ptr<TestServer> a = pg->NewServer();
  std::unique_ptr<TestServer> b = pg->NewServer();
  v1::TokenPair first, second;
  REQUIRE(a->Issue("alice", &first).ok());
  REQUIRE(a->Issue("bob", &second).ok());
  REQUIRE(RevokeFamily(*a, first.family_id()).ok());
  // B's follower polls every 100 ms: wait until its own log has A's entry, then watch B.
  for (int i = 0; i < 100 && b->Introspect(first.access_token()).active(); ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  Watcher watcher(b->api(), b->admin_key());
  std::vector<Response> events;
  REQUIRE(watcher.Read(&events, [](const Response& r) { return r.has_keys(); }));
  CHECK(events[0].has_reset());
  CHECK(EntryIds(events) == std::vector<std::string>{first.family_id()});

  const absl::Time revoked = absl::Now();
  REQUIRE(RevokeFamily(*a, second.family_id()).ok());  // on the other replica
  events.clear();
  REQUIRE(watcher.Read(&events, [](const Response& r) { return r.has_entry(); }));
  CHECK(events.back().entry().id() == second.family_id());
  CHECK(absl::Now() - revoked < absl::Seconds(1));
  events.clear();
  REQUIRE(watcher.Read(&events, [](const Response& r) { return r.has_bookmark(); }));
  CHECK(events.back().bookmark().seq() == 2);
  CHECK(AsTime(events.back().bookmark().as_of()) == b->clock().Now());  // the poll's start

  // The database stops answering and time passes beyond the lag bound: B's view is stale.
  REQUIRE(pg->cluster->Pause().ok());
  absl::Cleanup resume = [&pg] { (void)pg->cluster->Resume(); };
  b->clock().Advance(absl::Seconds(2));
  absl::SleepFor(absl::Milliseconds(300));  // drain what was already sent
  std::atomic<bool> bookmark{false}, stop{false}, resumed{false};
  std::thread reader([&] {
    // Reads until the first bookmark after the resume below (or the stream ends).
    std::vector<Response> seen;
    resumed = watcher.Read(&seen, [&](const Response& r) {
      if (r.has_bookmark() && !stop.load()) bookmark = true;
      return r.has_bookmark() && stop.load();
    });
  });
  absl::SleepFor(absl::Milliseconds(300));  // one sent before the stall may still arrive
  bookmark = false;
  absl::SleepFor(absl::Milliseconds(700));  // 3+ intervals, all stale
  const bool bookmark_while_stale = bookmark.load();
  stop = true;
  REQUIRE(pg->cluster->Resume().ok());
  std::move(resume).Cancel();
  reader.join();
  CHECK(!bookmark_while_stale);
  CHECK(resumed.load());  // a bookmark again once B's follower has polled
  CHECK(b->Introspect(second.access_token()).active() == false);
}

}  // namespace
}  // namespace ta::testing

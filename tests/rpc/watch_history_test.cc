// WatchRevocations at the edge of what the server keeps (issue 25 item 5), over gRPC on the
// embedded RocksDB server with a small --watch_history (AuthorityOptions::watch_history):
//  - a watcher that fell behind the kept history (compacted past its position) and resumes
//    gets an explicit reset and a snapshot (never a silent gap), and ends with exactly the
//    store's live set; within the history the same resume continues with no reset;
//  - a watcher that stops reading in the middle of its snapshot is cut (watch_too_slow) once
//    the tail fills its buffer, as a slow reader of the tail is.
// (The LocalVerifier's side of the same: tests/client/verifier_resume_test.cc; on a PostgreSQL
// replica: tests/replicas/verifier_history_test.cc.)
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/support/test_server.h"
#include "tests/support/watcher.h"
#include "token/base64url.h"

namespace ta::testing {
namespace {

using Response = v1::WatchRevocationsResponse;
constexpr size_t kHistory = 8;

// What a watcher holds: the live entries' ids and its position.
struct Held {
  std::set<std::string> ids;
  uint64_t epoch = 0, seq = 0;
  int resets = 0;
  // Applies one message; a reset starts the set afresh.
  void Apply(const Response& r) {
    if (r.has_reset()) {
      ++resets;
      ids.clear();
      epoch = r.reset().epoch();
      seq = 0;
    } else if (r.has_entry()) {
      ids.insert(r.entry().id());
      seq = r.entry().seq();
    } else if (r.has_end_of_snapshot()) {
      seq = r.end_of_snapshot().seq();
    } else if (r.has_bookmark()) {
      seq = r.bookmark().seq();
    }
  }
};

// Reads until a bookmark covering `seq` (everything committed so far, given a fake clock that
// does not move), applying every message; the messages read.
std::vector<Response> ReadUntilCurrent(Watcher& w, Held* held, uint64_t seq) {
  std::vector<Response> events;
  REQUIRE(w.Read(&events, [&](const Response& r) {
    held->Apply(r);
    return r.has_bookmark() && r.bookmark().seq() >= seq;
  }));
  return events;
}

v1::WatchRevocationsRequest Since(const Held& held) {
  v1::WatchRevocationsRequest request;
  request.mutable_since()->set_epoch(held.epoch);
  request.mutable_since()->set_seq(held.seq);
  return request;
}

std::string JtiOf(const std::string& access_token) {
  std::vector<std::string> parts = absl::StrSplit(access_token, '.');
  const std::string claims = token::Base64UrlDecode(parts.at(1)).value();
  const size_t at = claims.find("\"jti\":\"") + 7;
  return claims.substr(at, claims.find('"', at) - at);
}

// Revocations of every width through the API; `ids` gets the log entries' ids each makes.
class Revoker {
 public:
  explicit Revoker(TestServer& s) : s_(s) {}
  v1::TokenPair Issue(const std::string& subject) {
    v1::TokenPair pair;
    REQUIRE(s_.Issue(subject, &pair).ok());
    return pair;
  }
  void Jti(const v1::TokenPair& pair) {
    v1::RevokeTokenRequest req;
    req.set_token(pair.access_token());
    v1::RevokeTokenResponse resp;
    REQUIRE(s_.Call(s_.api(), &v1::TokenAuthority::Stub::RevokeToken, req, &resp).ok());
    Add(JtiOf(pair.access_token()));
  }
  void Family(const v1::TokenPair& pair) {
    v1::RevokeFamilyRequest req;
    req.set_family_id(pair.family_id());
    v1::RevokeFamilyResponse resp;
    REQUIRE(s_.Call(s_.api(), &v1::TokenAuthority::Stub::RevokeFamily, req, &resp).ok());
    Add(pair.family_id());
  }
  // Every family of `subject` (issued before) dies by its cutoff: one entry each.
  void Subject(const std::string& subject, const std::vector<v1::TokenPair>& families) {
    s_.clock().Advance(absl::Milliseconds(10));  // the cutoff after their iat
    v1::RevokeSubjectRequest req;
    req.set_subject(subject);
    v1::RevokeSubjectResponse resp;
    REQUIRE(s_.Call(s_.admin(), &v1::TokenAdmin::Stub::RevokeSubject, req, &resp).ok());
    for (const v1::TokenPair& f : families) Add(f.family_id());
  }
  // The spent refresh token replayed: reuse detected, the family revoked.
  void Reuse(const v1::TokenPair& pair) {
    v1::TokenPair next;
    REQUIRE(s_.Refresh(pair.refresh_token(), &next).ok());
    REQUIRE(!s_.Refresh(pair.refresh_token(), &next).ok());
    Add(pair.family_id());
  }
  // One of each width (5 entries: the subject has two families).
  void OneOfEach(const std::string& tag) {
    Jti(Issue(tag + "-jti"));
    Family(Issue(tag + "-family"));
    Reuse(Issue(tag + "-reuse"));
    const std::string subject = tag + "-subject";
    const std::vector<v1::TokenPair> families = {Issue(subject), Issue(subject)};
    Subject(subject, families);
  }
  const std::set<std::string>& ids() const { return ids_; }
  uint64_t entries() const { return entries_; }

 private:
  void Add(const std::string& id) {
    ids_.insert(id);
    ++entries_;
  }
  TestServer& s_;
  std::set<std::string> ids_;
  uint64_t entries_ = 0;
};

TEST_CASE(
    "WatchRevocations: a watcher whose position fell out of the kept history gets a reset and "
    "a snapshot, never a silent gap",
    "[rpc][watch][watch_history]") {
  TestServer server([](ServerOptions& o) { o.authority.watch_history = kHistory; });
  Revoker revoke(server);
  revoke.OneOfEach("before");
  Held held;
  {
    Watcher first(server.api(), server.admin_key());
    ReadUntilCurrent(first, &held, revoke.entries());
  }
  REQUIRE(held.resets == 1);
  REQUIRE(held.ids == revoke.ids());

  // Within the history: the resume continues where it left off, no reset.
  revoke.OneOfEach("within");  // 5 entries < 8 kept
  {
    Watcher resumed(server.api(), server.admin_key(), Since(held));
    std::vector<Response> events = ReadUntilCurrent(resumed, &held, revoke.entries());
    CHECK(events.front().has_keys());
    CHECK(held.resets == 1);
    CHECK(held.ids == revoke.ids());
  }

  // Past it: 20 entries while away, the first 12 no longer kept (some of each width).
  const uint64_t away_at = held.seq;
  for (int i = 0; i < 4; ++i) revoke.OneOfEach(absl::StrCat("away-", i));
  REQUIRE(revoke.entries() - away_at > kHistory);
  Watcher back(server.api(), server.admin_key(), Since(held));
  const uint64_t epoch = held.epoch;
  std::vector<Response> events = ReadUntilCurrent(back, &held, revoke.entries());
  REQUIRE(!events.empty());
  CHECK(events.front().has_reset());               // first, before anything else
  CHECK(events.front().reset().epoch() == epoch);  // the same server: compaction, not restart
  CHECK(held.resets == 2);
  CHECK(held.ids == revoke.ids());  // the live set, every entry missed included

  // And that is the store's live set as a new watcher sees it.
  Held fresh;
  Watcher other(server.api(), server.admin_key());
  ReadUntilCurrent(other, &fresh, revoke.entries());
  CHECK(fresh.ids == held.ids);
}

TEST_CASE(
    "WatchRevocations: a watcher that stops reading in the middle of its snapshot is cut with "
    "watch_too_slow once it stalls",
    "[rpc][watch][watch_history]") {
  TestServer server([](ServerOptions& o) {
    o.authority.watch_stream_buffer = 16;
    o.sync_writes = false;  // 1,700 sessions quickly
  });
  // A snapshot far larger than what the transport holds: 1,500 families killed by one cutoff.
  constexpr int kSnapshot = 1500, kTail = 200;
  for (int i = 0; i < kSnapshot; ++i) {
    v1::TokenPair pair;
    REQUIRE(server.Issue("bulk", &pair).ok());
  }
  for (int i = 0; i < kTail; ++i) {
    v1::TokenPair pair;
    REQUIRE(server.Issue("later", &pair).ok());
  }
  server.clock().Advance(absl::Milliseconds(10));
  v1::RevokeSubjectRequest bulk;
  bulk.set_subject("bulk");
  v1::RevokeSubjectResponse resp;
  REQUIRE(server.Call(server.admin(), &v1::TokenAdmin::Stub::RevokeSubject, bulk, &resp).ok());

  auto stub = SmallWindowStub(server.address());  // the transport holds little
  absl::SleepFor(absl::Milliseconds(300));        // dispatched: the snapshot holds the 1,500
  Watcher slow(*stub, server.admin_key());
  std::vector<Response> events;
  int entries = 0;
  REQUIRE(slow.Read(&events, [&](const Response& r) { return r.has_entry() && ++entries == 10; }));
  REQUIRE(events.front().has_reset());

  // It stops reading, mid-snapshot; 200 entries come in the tail (buffer: 16).
  v1::RevokeSubjectRequest later;
  later.set_subject("later");
  REQUIRE(server.Call(server.admin(), &v1::TokenAdmin::Stub::RevokeSubject, later, &resp).ok());
  // The hub folds the tail into the snapshot, then cuts a stream that has taken nothing for
  // two bookmark intervals while events were ready (watch_hub.h): ~0.4-0.6 s, more on a
  // loaded machine. Reading sooner would make it a reader again.
  absl::SleepFor(absl::Seconds(3));
  bool snapshot_done = false;
  CHECK(!slow.Read(&events, [&](const Response& r) {
    snapshot_done = snapshot_done || r.has_end_of_snapshot();
    return false;
  }));
  CHECK(!snapshot_done);  // cut before the snapshot's end: its rest was dropped, not sent
  CHECK(slow.status().error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
  CHECK(slow.reason() == "watch_too_slow");
  int received = 0;
  for (const Response& r : events) received += r.has_entry();
  CHECK(received < kSnapshot);

  // A reader that keeps up gets everything: the cut was that stream's alone.
  Held held;
  Watcher reader(server.api(), server.admin_key());
  ReadUntilCurrent(reader, &held, kSnapshot + kTail);
  CHECK(held.ids.size() == static_cast<size_t>(kSnapshot + kTail));
}

}  // namespace
}  // namespace ta::testing

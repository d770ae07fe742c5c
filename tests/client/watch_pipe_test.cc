// The LocalVerifier's stream split over two threads (client/watch_pipe.h, issue 27 item 4): a
// snapshot parsed into reused messages on one thread and applied to the view on another holds
// exactly what the same entries applied one by one hold, over hundreds of racing rounds with
// batches of every size (a reused message never carries a previous batch's entries, none is
// lost or applied twice across the hand-over).
#include "client/watch_pipe.h"

#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "token/base64url.h"
#include "token/revocation_view.h"

namespace ta::client {
namespace {

namespace v1 = ::tokenauthority::v1;
using Kind = RevocationEntry::Kind;
const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

struct Round {
  std::vector<RevocationEntry> entries;  // as the view takes them (family ids raw)
  std::vector<std::string> messages;     // serialized WatchRevocationsResponse batches
};

Round MakeRound(std::mt19937_64& rng) {
  Round round;
  v1::WatchRevocationsResponse message;
  const size_t n = rng() % 5000;
  for (uint64_t seq = 1; seq <= n; ++seq) {
    RevocationEntry e;
    e.seq = seq;
    const int pick = static_cast<int>(rng() % 3);
    e.kind = pick == 0 ? Kind::kJti : pick == 1 ? Kind::kFamily : Kind::kSubject;
    if (e.kind == Kind::kJti) {
      e.id = absl::StrCat("jti-", rng() % 100'000, std::string(rng() % 30, 'j'));
    } else {
      e.id.resize(16);
      for (char& c : e.id) c = static_cast<char>(rng() % 64);  // repeats across rounds
    }
    e.live_until = kNow + absl::Seconds(1 + static_cast<int64_t>(rng() % 3600));
    v1::RevocationEvent* out = message.mutable_batch()->add_entries();
    out->set_seq(e.seq);
    out->set_kind(e.kind == Kind::kJti      ? v1::RevocationEvent::JTI
                  : e.kind == Kind::kFamily ? v1::RevocationEvent::FAMILY
                                            : v1::RevocationEvent::SUBJECT);
    out->set_id(e.kind == Kind::kJti ? e.id : token::Base64UrlEncode(e.id));
    out->mutable_live_until()->set_seconds(absl::ToUnixSeconds(e.live_until));
    round.entries.push_back(std::move(e));
    if (rng() % 700 == 0 || seq == n) {  // batches of 1 .. thousands
      round.messages.push_back(message.SerializeAsString());
      message.Clear();
    }
  }
  return round;
}

TEST_CASE(
    "WatchPipe: parsed on one thread, applied on another, a snapshot holds exactly the "
    "reference set over many rounds",
    "[watch_pipe]") {
  FakeClock clock(kNow);
  std::mt19937_64 rng(42);
  for (int r = 0; r < 300; ++r) {
    const Round round = MakeRound(rng);
    token::RevocationView reference(true, absl::Seconds(1), &clock);
    for (const RevocationEntry& e : round.entries) reference.Apply(e);

    token::RevocationView view(true, absl::Seconds(1), &clock);
    WatchPipe pipe;
    bool parsed = true;  // the reader's; read after join
    std::thread reader([&] {
      for (const std::string& bytes : round.messages) {
        WatchPipe::Message* m = pipe.Free();
        parsed = m->ParseFromString(bytes) && parsed;
        pipe.Push(m);
      }
      pipe.Close();
    });
    WatchEntryRefs refs;
    while (WatchPipe::Message* m = pipe.Pop()) {
      refs.Assign(m->batch().entries());
      view.ApplyBatch(refs.refs());
      pipe.Recycle(m);
    }
    reader.join();
    REQUIRE(parsed);

    REQUIRE(view.size() == reference.size());
    REQUIRE(view.last_seq() == reference.last_seq());
    const std::string none(16, '\x7f');
    for (const RevocationEntry& e : round.entries) {
      const bool jti = e.kind == Kind::kJti;
      for (absl::Time at : {kNow, kNow + absl::Minutes(30)}) {
        REQUIRE(view.Check(jti ? e.id : "x", jti ? none : e.id, at) ==
                reference.Check(jti ? e.id : "x", jti ? none : e.id, at));
      }
    }
  }
}

}  // namespace
}  // namespace ta::client

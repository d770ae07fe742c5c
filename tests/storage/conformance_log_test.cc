// Storage conformance, the revocation log (DESIGN §10, storage/token_store.h): every
// revocation appends in the same commit, the listener hears it before the call returns,
// numbering is gapless, in commit order and survives restarts and expiry, and entries leave
// once nothing they kill can verify. On every store kind (store_harness.h).
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/clock.h"
#include "tests/storage/store_harness.h"
#include "tests/storage/test_util.h"

namespace ta::storage {
namespace {

using Kind = RevocationEntry::Kind;
using testing::FamilyIdFor;
using testing::MakeFamily;
using testing::MakeRefresh;
using testing::MakeRotate;
using testing::MakeSubjectUpdate;

struct Fixture {
  std::unique_ptr<testing::StoreHarness> h;
  FakeClock& clock;
  TokenStore* store = nullptr;
  absl::Mutex mu;
  std::vector<RevocationEntry> heard ABSL_GUARDED_BY(mu);

  explicit Fixture(std::unique_ptr<testing::StoreHarness> harness)
      : h(std::move(harness)), clock(h->clock()) {
    Listen();
  }
  void Reopen() {
    h->Reopen();
    Listen();
  }
  void Listen() {
    store = &h->store();
    store->SetRevocationListener([this](const RevocationEntry& e) {
      absl::MutexLock lock(&mu);
      heard.push_back(e);
    });
  }
  absl::Time Now() const { return clock.Now(); }
  // A family whose latest access token verifies until now + `access`.
  FamilyRecord Create(uint64_t n, absl::string_view subject = "alice",
                      absl::Duration access = absl::Minutes(5)) {
    FamilyRecord f = MakeFamily(FamilyIdFor(n), subject, Now());
    f.access_live_until = Now() + access;
    REQUIRE(store->CreateFamily(f, MakeRefresh(f.family_id, 0, Now()), std::nullopt).ok());
    return f;
  }
  std::vector<RevocationEntry> Log(uint64_t after = 0) {
    absl::StatusOr<std::vector<RevocationEntry>> log = store->ReadRevocations(after, Now(), 10'000);
    REQUIRE(log.ok());
    return *std::move(log);
  }
  std::vector<RevocationEntry> Heard() {
    absl::MutexLock lock(&mu);
    return heard;
  }
};


bool Same(const RevocationEntry& a, const RevocationEntry& b) {
  return a.seq == b.seq && a.kind == b.kind && a.id == b.id && a.live_until == b.live_until &&
         a.revoked_at == b.revoked_at;
}

TEMPLATE_TEST_CASE("Log: each revocation appends one entry, heard before the call returns",
          "[storage][log]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  FamilyRecord revoked = fx.Create(1);
  FamilyRecord reused = fx.Create(2);
  const absl::Time jti_until = fx.Now() + absl::Minutes(5) + absl::Seconds(30);

  REQUIRE(fx.store->DenyJti("jti-1", jti_until).ok());
  REQUIRE(fx.Heard().size() == 1);
  REQUIRE(*fx.store->RevokeFamily(revoked.family_id, "logout", "ops", fx.Now()));
  REQUIRE(fx.Heard().size() == 2);
  CHECK_FALSE(*fx.store->RevokeFamily(revoked.family_id, "again", "ops", fx.Now()));
  CHECK(fx.Heard().size() == 2);  // already revoked: nothing new to kill
  REQUIRE(fx.store->Rotate(MakeRotate(reused.family_id, 0, fx.Now()))->result == RotateResult::kRotated);
  REQUIRE(fx.store->Rotate(MakeRotate(reused.family_id, 0, fx.Now()))->result ==
          RotateResult::kReuseDetected);

  std::vector<RevocationEntry> log = fx.Log();
  REQUIRE(log.size() == 3);
  CHECK(log[0].kind == Kind::kJti);
  CHECK(log[0].id == "jti-1");
  CHECK(log[0].live_until == jti_until);
  CHECK(log[1].kind == Kind::kFamily);
  CHECK(log[1].id == revoked.family_id);
  CHECK(log[1].live_until == revoked.access_live_until);
  CHECK(log[2].kind == Kind::kFamily);
  CHECK(log[2].id == reused.family_id);
  std::vector<RevocationEntry> heard = fx.Heard();
  REQUIRE(heard.size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(Same(heard[i], log[i]));
  CHECK(log[0].seq < log[1].seq);
  CHECK(log[1].seq < log[2].seq);
}

TEMPLATE_TEST_CASE("Log: a subject cutoff logs the families it newly kills that can still hold tokens",
          "[storage][log]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  FamilyRecord live = fx.Create(1, "bob");
  FamilyRecord stale = fx.Create(2, "bob", absl::Seconds(1));  // its tokens die in a second
  FamilyRecord revoked = fx.Create(3, "bob");
  REQUIRE(*fx.store->RevokeFamily(revoked.family_id, "logout", "ops", fx.Now()));
  fx.Create(4, "carol");
  fx.clock.Advance(absl::Seconds(2));
  const size_t before = fx.Log().size();
  REQUIRE(fx.store->UpdateSubject(MakeSubjectUpdate("bob", fx.Now())).ok());
  std::vector<RevocationEntry> log = fx.Log();
  REQUIRE(log.size() == before + 1);
  CHECK(log.back().kind == Kind::kSubject);
  CHECK(log.back().id == live.family_id);
  CHECK(log.back().live_until == live.access_live_until);
  // A new session after the cutoff, then an update whose cutoff does not move: nothing new.
  fx.clock.Advance(absl::Seconds(1));
  fx.Create(5, "bob");
  REQUIRE(fx.store->UpdateSubject(MakeSubjectUpdate("bob", fx.Now(), fx.Now() - absl::Hours(1)))
              .ok());
  CHECK(fx.Log().size() == before + 1);
  // A cutoff moved forward kills only the new session.
  fx.clock.Advance(absl::Seconds(1));
  REQUIRE(fx.store->UpdateSubject(MakeSubjectUpdate("bob", fx.Now())).ok());
  log = fx.Log();
  REQUIRE(log.size() == before + 2);
  CHECK(log.back().id == FamilyIdFor(5));
}

TEMPLATE_TEST_CASE("Log: entries leave once nothing they kill can verify, and reads page by seq",
          "[storage][log]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  for (int i = 0; i < 10; ++i) {
    REQUIRE(fx.store->DenyJti(absl::StrCat("j", i), fx.Now() + absl::Minutes(i + 1)).ok());
  }
  std::vector<RevocationEntry> all = fx.Log();
  REQUIRE(all.size() == 10);
  absl::StatusOr<std::vector<RevocationEntry>> page = fx.store->ReadRevocations(all[3].seq, fx.Now(), 4);
  REQUIRE(page.ok());
  REQUIRE(page->size() == 4);
  CHECK(page->front().seq == all[4].seq);
  CHECK(page->back().seq == all[7].seq);
  fx.clock.Advance(absl::Minutes(5) + absl::Microseconds(1));  // j0..j4 are dead
  std::vector<RevocationEntry> live = fx.Log();
  REQUIRE(live.size() == 5);
  CHECK(live.front().id == "j5");
  // Deleted once the purge margin (default 1 min) has passed too; see the next case.
  fx.clock.Advance(absl::Minutes(1));
  REQUIRE(fx.store->PurgeExpired().ok());
  CHECK(fx.h->PhysicalCount(testing::Records::kRevocations) == 5);
}

// Issue 22: a purge by a clock ahead of another replica's deleted revocations that replica
// still needed. Nothing leaves the log or the denylist until it has been dead for the purge
// margin (default 1 min), so a reader whose clock runs behind by less still finds it.
TEMPLATE_TEST_CASE("Log: the purge keeps a revocation its margin past live_until for clocks "
                   "that run behind",
                   "[storage][log]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  auto count = [&fx](testing::Records records) {
    const size_t n = fx.h->PhysicalCount(records);
    fx.Listen();  // counting may reopen the store
    return n;
  };
  FamilyRecord family = fx.Create(1, "alice", absl::Minutes(1));
  REQUIRE(fx.store->RevokeFamily(family.family_id, "admin", "ops", fx.Now()).value());
  REQUIRE(fx.store->DenyJti("j", fx.Now() + absl::Minutes(1)).ok());
  fx.clock.Advance(absl::Minutes(1) + absl::Seconds(50));  // dead by this clock for 50 s
  REQUIRE(fx.store->PurgeExpired().ok());
  CHECK(count(testing::Records::kRevocations) == 2);
  CHECK(count(testing::Records::kDenylist) == 1);
  // A replica whose clock is 55 s behind still needs both, and finds both.
  const absl::Time behind = fx.Now() - absl::Seconds(55);
  absl::StatusOr<std::vector<RevocationEntry>> log = fx.store->ReadRevocations(0, behind, 10);
  REQUIRE(log.ok());
  CHECK(log->size() == 2);
  CHECK(fx.store->IsJtiDenied("j", behind).value());
  fx.clock.Advance(absl::Seconds(11));  // past the margin: gone
  REQUIRE(fx.store->PurgeExpired().ok());
  CHECK(count(testing::Records::kRevocations) == 0);
  CHECK(count(testing::Records::kDenylist) == 0);
}

TEMPLATE_TEST_CASE("Log: numbering continues after restarts, even once every entry is gone",
          "[storage][log]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  REQUIRE(fx.store->DenyJti("a", fx.Now() + absl::Minutes(1)).ok());
  REQUIRE(fx.store->DenyJti("b", fx.Now() + absl::Minutes(1)).ok());
  const uint64_t last = fx.Log().back().seq;
  fx.Reopen();
  REQUIRE(fx.store->DenyJti("c", fx.Now() + absl::Minutes(1)).ok());
  CHECK(fx.Log().back().seq == last + 1);
  fx.clock.Advance(absl::Hours(1));
  REQUIRE(fx.store->PurgeExpired().ok());
  fx.Reopen();
  CHECK(fx.Log().empty());
  REQUIRE(fx.store->DenyJti("d", fx.Now() + absl::Minutes(1)).ok());
  CHECK(fx.Log().back().seq == last + 2);  // a follower that saw last + 1 misses nothing
}

TEMPLATE_TEST_CASE("Log: concurrent revocations get unique numbers, all readable and all heard",
          "[storage][log][concurrency]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  constexpr int kThreads = 16, kEach = 20;
  std::atomic<int> failures{0};
  for (int i = 0; i < kThreads * kEach; ++i) fx.Create(i);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&fx, &failures, t] {
      for (int i = 0; i < kEach; ++i) {
        const int n = t * kEach + i;
        const bool ok = n % 2 == 0
                            ? fx.store->RevokeFamily(FamilyIdFor(n), "x", "t", fx.Now()).ok()
                            : fx.store->DenyJti(absl::StrCat("jti-", n), fx.Now() + absl::Minutes(5)).ok();
        if (!ok) ++failures;  // no assertions off the test's thread
      }
    });
  }
  for (std::thread& th : threads) th.join();
  REQUIRE(failures == 0);
  std::vector<RevocationEntry> log = fx.Log();
  REQUIRE(log.size() == kThreads * kEach);
  for (size_t i = 0; i < log.size(); ++i) CHECK(log[i].seq == log.front().seq + i);  // no gaps
  std::vector<RevocationEntry> heard = fx.Heard();
  REQUIRE(heard.size() == log.size());
  std::set<uint64_t> seqs;
  for (const RevocationEntry& e : heard) seqs.insert(e.seq);
  CHECK(seqs.size() == log.size());
}

// A subject cutoff appends all the families it kills in one go (PostgreSQL: one statement);
// racing with single appends, every entry keeps one seq, the log is gapless, what the
// listener heard is what the log holds, and one subject's kills are consecutive.
TEMPLATE_TEST_CASE(
    "Log: racing subject cutoffs that kill many families each number them "
    "gaplessly, as heard",
    "[storage][log][concurrency]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  constexpr int kSubjects = 12, kFamiliesEach = 25, kDenials = 60;
  for (int s = 0; s < kSubjects; ++s) {
    for (int f = 0; f < kFamiliesEach; ++f) fx.Create(s * kFamiliesEach + f, absl::StrCat("s", s));
  }
  fx.clock.Advance(absl::Seconds(1));
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int s = 0; s < kSubjects; ++s) {
    threads.emplace_back([&fx, &failures, s] {
      if (!fx.store->UpdateSubject(MakeSubjectUpdate(absl::StrCat("s", s), fx.Now())).ok()) {
        ++failures;
      }
    });
  }
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&fx, &failures, t] {
      for (int i = t; i < kDenials; i += 4) {
        if (!fx.store->DenyJti(absl::StrCat("jti-", i), fx.Now() + absl::Minutes(5)).ok()) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  REQUIRE(failures == 0);
  std::vector<RevocationEntry> log = fx.Log();
  REQUIRE(log.size() == kSubjects * kFamiliesEach + kDenials);
  for (size_t i = 0; i < log.size(); ++i) CHECK(log[i].seq == log.front().seq + i);
  std::vector<RevocationEntry> heard = fx.Heard();
  std::sort(heard.begin(), heard.end(),
            [](const RevocationEntry& a, const RevocationEntry& b) { return a.seq < b.seq; });
  REQUIRE(heard.size() == log.size());
  for (size_t i = 0; i < log.size(); ++i) CHECK(Same(heard[i], log[i]));
  // Each subject's kills are consecutive: its kFamiliesEach seqs span exactly that many.
  std::map<std::string, int> subject_of;
  for (int s = 0; s < kSubjects; ++s) {
    for (int f = 0; f < kFamiliesEach; ++f) subject_of[FamilyIdFor(s * kFamiliesEach + f)] = s;
  }
  std::map<int, std::vector<uint64_t>> seqs;
  for (const RevocationEntry& e : log) {
    if (e.kind == Kind::kSubject) seqs[subject_of.at(e.id)].push_back(e.seq);
  }
  REQUIRE(seqs.size() == kSubjects);
  for (const auto& [subject, of] : seqs) {
    INFO("subject s" << subject);
    REQUIRE(of.size() == kFamiliesEach);
    CHECK(of.back() - of.front() == kFamiliesEach - 1);
  }
}

TEMPLATE_TEST_CASE("Log: a grace replay extends the family's access_live_until", "[storage][log]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  FamilyRecord f = fx.Create(1);
  RotateRequest rotate = MakeRotate(f.family_id, 0, fx.Now(), absl::Seconds(30));
  rotate.access_live_until = fx.Now() + absl::Minutes(6);
  REQUIRE(fx.store->Rotate(rotate)->result == RotateResult::kRotated);
  fx.clock.Advance(absl::Seconds(10));
  RotateRequest replay = MakeRotate(f.family_id, 0, fx.Now(), absl::Seconds(30));
  replay.access_live_until = fx.Now() + absl::Minutes(6);
  REQUIRE(fx.store->Rotate(replay)->result == RotateResult::kReplayWithinGrace);
  CHECK(fx.store->GetFamily(f.family_id, fx.Now())->access_live_until == replay.access_live_until);
  REQUIRE(*fx.store->RevokeFamily(f.family_id, "logout", "ops", fx.Now()));
  CHECK(fx.Log().back().live_until == replay.access_live_until);
}

}  // namespace
}  // namespace ta::storage

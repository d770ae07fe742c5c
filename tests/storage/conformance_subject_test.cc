// Storage conformance, subjects (issue 12's contract): UpdateSubject's atomic merge,
// CreateFamily and Rotate against the subject's cutoff and block, and the races the
// contract rules out, hundreds of rounds each; on every store kind (store_harness.h).
#include <catch2/catch.hpp>

#include <atomic>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/base/error.h"
#include "tests/storage/store_harness.h"
#include "tests/storage/test_util.h"

namespace ta::storage {
namespace {

using testing::FamilyIdFor;
using testing::MakeFamily;
using testing::MakeRefresh;
using testing::MakeRotate;
using testing::MakeUpdate;

SubjectRecord Update(TokenStore& store, const SubjectUpdate& update) {
  absl::StatusOr<SubjectRecord> merged = store.UpdateSubject(update);
  INFO(merged.status().ToString());
  REQUIRE(merged.ok());
  return *std::move(merged);
}

SubjectRecord Stored(TokenStore& store, absl::string_view subject, absl::Time now) {
  absl::StatusOr<std::optional<SubjectRecord>> got = store.GetSubject(subject, now);
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  return **got;
}

absl::Status CreateAt(TokenStore& store, uint64_t n, absl::string_view subject, absl::Time at) {
  FamilyRecord f = MakeFamily(FamilyIdFor(n), subject, at);
  return store.CreateFamily(f, MakeRefresh(f.family_id, 0, at));
}

TEMPLATE_TEST_CASE("UpdateSubject: the merged record is returned and stored", "[storage][subject]",
                   TA_EVERY_STORE) {
  auto h = TestType::Make();
  SubjectUpdate u = MakeUpdate("bob", h->Now());
  u.block_until = h->Now() + absl::Minutes(30);
  u.reason = "stolen laptop";
  u.revoked_by = "admin";
  SubjectRecord merged = Update(h->store(), u);
  CHECK(merged.subject == "bob");
  CHECK(merged.not_before == h->Now());
  CHECK(merged.block_until == *u.block_until);
  CHECK(merged.reason == "stolen laptop");
  CHECK(merged.revoked_by == "admin");
  CHECK(merged.updated_at == h->Now());
  CHECK(merged.expires_at == *u.block_until);
  SubjectRecord stored = Stored(h->store(), "bob", h->Now());
  CHECK(stored.not_before == merged.not_before);
  CHECK(stored.block_until == merged.block_until);
  CHECK(stored.reason == merged.reason);
  CHECK(stored.expires_at == merged.expires_at);
  CHECK(h->store().GetSubject("bob", merged.expires_at)->has_value());
  CHECK_FALSE(h->store().GetSubject("bob", merged.expires_at + absl::Microseconds(1))->has_value());
}

TEMPLATE_TEST_CASE("UpdateSubject: a cutoff never moves back", "[storage][subject]",
                   TA_EVERY_STORE) {
  auto h = TestType::Make();
  h->Create(1, "bob");
  SubjectUpdate later = MakeUpdate("bob", h->Now());
  later.not_before = h->Now();
  CHECK(Update(h->store(), later).not_before == h->Now());
  SubjectUpdate older = MakeUpdate("bob", h->Now() + absl::Seconds(1));
  older.not_before = h->Now() - absl::Hours(1);
  older.reason = "older";
  SubjectRecord merged = Update(h->store(), older);
  CHECK(merged.not_before == h->Now());
  CHECK(merged.reason == "older");  // the rest is the latest update's
  CHECK(Stored(h->store(), "bob", h->Now()).not_before == h->Now());
}

TEMPLATE_TEST_CASE("UpdateSubject: an unset block keeps the stored one; a past one lifts it",
                   "[storage][subject]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  SubjectUpdate ban = MakeUpdate("bob", h->Now());
  ban.block_until = h->Now() + absl::Hours(2);
  Update(h->store(), ban);
  h->clock().Advance(absl::Minutes(1));
  SubjectRecord logout = Update(h->store(), MakeUpdate("bob", h->Now()));
  CHECK(logout.block_until == *ban.block_until);
  CHECK(logout.not_before == h->Now());
  SubjectUpdate lift = MakeUpdate("bob", h->Now());
  lift.block_until = h->Now() - absl::Seconds(1);
  SubjectRecord lifted = Update(h->store(), lift);
  CHECK(lifted.block_until == *lift.block_until);
  CHECK(lifted.expires_at == *ban.block_until);  // expires_at never shrinks
  CHECK(CreateAt(h->store(), 1, "bob", h->Now() + absl::Microseconds(1)).ok());
}

TEMPLATE_TEST_CASE("UpdateSubject: an unset not_before also covers the newest stored family",
                   "[storage][subject]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  const absl::Time ahead = h->Now() + absl::Seconds(5);  // another replica's clock runs ahead
  REQUIRE(CreateAt(h->store(), 1, "bob", ahead).ok());
  SubjectRecord merged = Update(h->store(), MakeUpdate("bob", h->Now()));
  CHECK(merged.not_before == ahead);
  RotateRequest rotate = MakeRotate(FamilyIdFor(1), 0, ahead, absl::ZeroDuration(), "bob");
  CHECK(h->store().Rotate(rotate)->result == RotateResult::kSubjectRevoked);
  SubjectUpdate explicit_cutoff = MakeUpdate("carol", h->Now());
  REQUIRE(CreateAt(h->store(), 2, "carol", ahead).ok());
  explicit_cutoff.not_before = h->Now();
  CHECK(Update(h->store(), explicit_cutoff).not_before == h->Now());  // explicit: not widened
}

TEMPLATE_TEST_CASE("UpdateSubject: expires_at outlives every family it kills by the leeway",
                   "[storage][subject]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  FamilyRecord killed = MakeFamily(FamilyIdFor(1), "bob", h->Now());
  killed.expires_at = h->Now() + absl::Hours(10);
  REQUIRE(h->store().CreateFamily(killed, MakeRefresh(killed.family_id, 0, h->Now())).ok());
  FamilyRecord short_one = MakeFamily(FamilyIdFor(2), "bob", h->Now());
  short_one.expires_at = h->Now() + absl::Hours(1);
  REQUIRE(h->store().CreateFamily(short_one, MakeRefresh(short_one.family_id, 0, h->Now())).ok());
  h->clock().Advance(absl::Seconds(10));
  FamilyRecord spared = MakeFamily(FamilyIdFor(3), "bob", h->Now());  // after the cutoff below
  spared.expires_at = h->Now() + absl::Hours(100);
  REQUIRE(h->store().CreateFamily(spared, MakeRefresh(spared.family_id, 0, h->Now())).ok());
  SubjectUpdate u = MakeUpdate("bob", h->Now());
  u.not_before = h->Now() - absl::Seconds(5);
  u.token_leeway = absl::Seconds(30);
  SubjectRecord merged = Update(h->store(), u);
  CHECK(merged.expires_at == killed.expires_at + absl::Seconds(30));
  u.block_until = h->Now() + absl::Hours(50);
  CHECK(Update(h->store(), u).expires_at == *u.block_until);
  u.block_until = std::nullopt;
  CHECK(Update(h->store(), u).expires_at == h->Now() + absl::Hours(50));  // never shrinks
}

TEMPLATE_TEST_CASE("UpdateSubject: bad updates are rejected; an expired record counts as absent",
                   "[storage][subject]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  SubjectUpdate future = MakeUpdate("bob", h->Now());
  future.not_before = h->Now() + absl::Microseconds(1);
  CHECK(ReasonOf(h->store().UpdateSubject(future).status()) == "invalid_argument:not_before");
  CHECK(ReasonOf(h->store().UpdateSubject(MakeUpdate(std::string(257, 'b'), h->Now())).status()) ==
        "invalid_argument:subject");
  CHECK_FALSE(h->store().GetSubject("bob", h->Now())->has_value());  // nothing written
  SubjectUpdate ban = MakeUpdate("bob", h->Now());
  ban.not_before = h->Now() - absl::Hours(1);
  ban.block_until = h->Now() + absl::Hours(1);
  Update(h->store(), ban);
  h->clock().Advance(absl::Hours(2));
  SubjectUpdate old = MakeUpdate("bob", h->Now());
  old.not_before = h->Now() - absl::Hours(3);
  SubjectRecord merged = Update(h->store(), old);
  CHECK(merged.block_until == absl::InfinitePast());  // the expired ban is gone
  CHECK(merged.not_before == *old.not_before);
}

TEMPLATE_TEST_CASE("CreateFamily: refused while blocked or at the cutoff, writing nothing",
                   "[storage][subject]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  SubjectUpdate ban = MakeUpdate("bob", h->Now());
  ban.block_until = h->Now() + absl::Hours(1);
  Update(h->store(), ban);
  absl::Status s = CreateAt(h->store(), 1, "bob", h->Now() + absl::Minutes(59));
  CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(ReasonOf(s) == "subject_blocked");
  CHECK(h->store().GetFamily(FamilyIdFor(1), h->Now()).status().code() ==
        absl::StatusCode::kNotFound);
  CHECK(h->store().GetRefresh(FamilyIdFor(1), 0, h->Now()).status().code() ==
        absl::StatusCode::kNotFound);
  CHECK(CreateAt(h->store(), 1, "bob", *ban.block_until).ok());  // block_until itself is free

  REQUIRE(CreateAt(h->store(), 9, "carol", h->Now() - absl::Seconds(1)).ok());
  SubjectUpdate cutoff = MakeUpdate("carol", h->Now());
  cutoff.not_before = h->Now();  // kills family 9, so the record lives as long as it
  Update(h->store(), cutoff);
  s = CreateAt(h->store(), 2, "carol", h->Now());
  CHECK(s.code() == absl::StatusCode::kAborted);
  CHECK(ReasonOf(s) == "subject_revoked");
  CHECK(h->store().ListFamilies(testing::MakeQuery("carol", h->Now(), true))->families.size() == 1);
  CHECK(CreateAt(h->store(), 2, "carol", h->Now() + absl::Microseconds(1)).ok());
}

TEMPLATE_TEST_CASE("Rotate: checks the subject's cutoff, then its block, after the family's own",
                   "[storage][subject][rotate]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  TokenStore& store = h->store();
  FamilyRecord f = h->Create(1, "bob");
  auto rotate = [&](absl::string_view subject = "bob") {
    return store.Rotate(MakeRotate(f.family_id, 0, h->Now(), absl::ZeroDuration(), subject));
  };
  SubjectUpdate block_only = MakeUpdate("bob", h->Now());
  block_only.not_before = h->Now() - absl::Seconds(1);  // spares f
  block_only.block_until = h->Now() + absl::Hours(1);
  Update(store, block_only);
  CHECK(rotate()->result == RotateResult::kSubjectBlocked);
  CHECK(ReasonOf(rotate("mallory").status()) == "invalid_argument:subject");
  h->clock().Advance(absl::Hours(1));
  REQUIRE(rotate()->result == RotateResult::kRotated);
  SubjectUpdate ban = MakeUpdate("bob", h->Now());
  ban.block_until = h->Now() + absl::Hours(1);
  Update(store, ban);
  absl::StatusOr<RotateOutcome> out =
      store.Rotate(MakeRotate(f.family_id, 1, h->Now(), absl::ZeroDuration(), "bob"));
  REQUIRE(out.ok());
  CHECK(out->result == RotateResult::kSubjectRevoked);
  CHECK(out->family.generation == 1);
  REQUIRE(*store.RevokeFamily(f.family_id, "admin", "ops", h->Now()));
  CHECK(store.Rotate(MakeRotate(f.family_id, 1, h->Now(), absl::ZeroDuration(), "bob"))->result ==
        RotateResult::kFamilyRevoked);
}

// Runs `a` and `b` on two threads released together.
template <typename A, typename B>
void Race(A a, B b) {
  std::latch start(2);
  std::thread other([&] {
    start.arrive_and_wait();
    b();
  });
  start.arrive_and_wait();
  a();
  other.join();
}

TEMPLATE_TEST_CASE("UpdateSubject races: a ban racing a plain logout never loses the ban",
                   "[storage][subject][concurrency]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  const absl::Time now = h->Now();
  for (int round = 0; round < 200; ++round) {
    const std::string subject = absl::StrCat("user-", round);
    SubjectUpdate ban = MakeUpdate(subject, now);
    ban.block_until = now + absl::Hours(1);
    SubjectUpdate logout = MakeUpdate(subject, now + absl::Microseconds(1));
    std::atomic<bool> ok{true};
    Race([&] { ok = ok && h->store().UpdateSubject(ban).ok(); },
         [&] { ok = ok && h->store().UpdateSubject(logout).ok(); });
    REQUIRE(ok);
    REQUIRE(Stored(h->store(), subject, now).block_until == *ban.block_until);
  }
}

TEMPLATE_TEST_CASE("UpdateSubject races: an older explicit not_before never moves it back",
                   "[storage][subject][concurrency]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  const absl::Time now = h->Now();
  for (int round = 0; round < 200; ++round) {
    const std::string subject = absl::StrCat("user-", round);
    // A family to kill, or the record would have nothing to outlive and expire at once.
    REQUIRE(CreateAt(h->store(), round, subject, now - absl::Hours(1)).ok());
    SubjectUpdate newer = MakeUpdate(subject, now);
    newer.not_before = now;
    SubjectUpdate older = MakeUpdate(subject, now);
    older.not_before = now - absl::Minutes(10);
    std::atomic<bool> ok{true};
    Race([&] { ok = ok && h->store().UpdateSubject(newer).ok(); },
         [&] { ok = ok && h->store().UpdateSubject(older).ok(); });
    REQUIRE(ok);
    REQUIRE(Stored(h->store(), subject, now).not_before == now);
  }
}

TEMPLATE_TEST_CASE("CreateFamily racing a ban: none escapes the cutoff, none is made while blocked",
                   "[storage][subject][concurrency]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  const absl::Time now = h->Now();
  const absl::Time ahead = now + absl::Seconds(1);  // the creating replica's clock runs ahead
  constexpr int kCreations = 6;
  for (int round = 0; round < 150; ++round) {
    const std::string subject = absl::StrCat("user-", round);
    std::atomic<bool> banned{false};
    absl::Status ban_status;  // set on the other thread, checked after the race
    std::vector<absl::Status> results(kCreations);
    std::vector<char> after_ban(kCreations, 0);
    SubjectUpdate ban = MakeUpdate(subject, now);
    ban.block_until = now + absl::Hours(1);
    Race(
        [&] {
          for (int i = 0; i < kCreations; ++i) {
            after_ban[i] = banned.load();
            results[i] = CreateAt(h->store(), round * 100 + i, subject, ahead);
          }
        },
        [&] {
          ban_status = h->store().UpdateSubject(ban).status();
          banned = true;
        });
    REQUIRE(ban_status.ok());
    const SubjectRecord record = Stored(h->store(), subject, now);
    int created = 0;
    for (int i = 0; i < kCreations; ++i) {
      INFO("round " << round << " creation " << i << ": " << results[i].ToString());
      if (results[i].ok()) {
        ++created;
        REQUIRE_FALSE(after_ban[i]);
        REQUIRE(ahead <= record.not_before);  // covered by the cutoff: dead on arrival
      } else {
        REQUIRE(ReasonOf(results[i]) == "subject_blocked");
        if (i + 1 < kCreations) REQUIRE_FALSE(results[i + 1].ok());
      }
    }
    ListFamiliesQuery q = testing::MakeQuery(subject, now, /*include_revoked=*/true);
    REQUIRE(static_cast<int>(h->store().ListFamilies(q)->families.size()) == created);
  }
}

TEMPLATE_TEST_CASE("Rotate racing a ban: no rotation succeeds once the ban has returned",
                   "[storage][subject][concurrency]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  const absl::Time now = h->Now();
  for (int round = 0; round < 150; ++round) {
    const std::string subject = absl::StrCat("user-", round);
    REQUIRE(CreateAt(h->store(), round, subject, now - absl::Seconds(1)).ok());
    std::atomic<bool> banned{false};
    absl::Status ban_status;  // set on the other thread, checked after the race
    std::vector<RotateResult> results;
    std::vector<char> after_ban;
    SubjectUpdate ban = MakeUpdate(subject, now);
    ban.block_until = now + absl::Hours(1);
    Race(
        [&] {
          for (uint64_t gen = 0; gen < 20; ++gen) {
            after_ban.push_back(banned.load());
            absl::StatusOr<RotateOutcome> out = h->store().Rotate(
                MakeRotate(FamilyIdFor(round), gen, now, absl::ZeroDuration(), subject));
            REQUIRE(out.ok());
            results.push_back(out->result);
            if (out->result != RotateResult::kRotated) break;
          }
        },
        [&] {
          ban_status = h->store().UpdateSubject(ban).status();
          banned = true;
        });
    REQUIRE(ban_status.ok());
    for (size_t i = 0; i < results.size(); ++i) {
      INFO("round " << round << " rotation " << i);
      if (after_ban[i]) REQUIRE(results[i] != RotateResult::kRotated);
    }
    if (results.size() < 20) REQUIRE(results.back() == RotateResult::kSubjectRevoked);
  }
}

}  // namespace
}  // namespace ta::storage

// Storage conformance, subjects (issue 12's contract, storage/token_store.h): UpdateSubject
// merges atomically, CreateFamily and Rotate are ordered against it, and a subject record
// lives as long as the families it kills; the racing cases run hundreds of rounds. On every
// store kind (store_harness.h).
#include <catch2/catch.hpp>

#include <memory>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/error.h"
#include "storage/store_rules.h"
#include "tests/storage/store_harness.h"
#include "tests/storage/test_util.h"
#include "tests/support/race.h"

namespace ta::storage {
namespace {

using testing::FamilyIdFor;
using testing::MakeFamily;
using testing::MakeRefresh;
using testing::MakeRotate;
using testing::MakeSubjectUpdate;
using ::ta::testing::Race;

constexpr int kRounds = 300;

// The lead's subject fixture over any store kind.
struct Fixture {
  std::unique_ptr<testing::StoreHarness> h;
  FakeClock& clock;
  TokenStore* store;

  explicit Fixture(std::unique_ptr<testing::StoreHarness> harness)
      : h(std::move(harness)), clock(h->clock()), store(&h->store()) {}
  absl::Time Now() const { return clock.Now(); }
  absl::Status Create(uint64_t n, absl::string_view subject, absl::Time created_at) {
    FamilyRecord f = MakeFamily(FamilyIdFor(n), subject, created_at);
    return store->CreateFamily(f, MakeRefresh(f.family_id, 0, created_at), std::nullopt);
  }
  SubjectRecord Subject(absl::string_view subject) {
    absl::StatusOr<std::optional<SubjectRecord>> got = store->GetSubject(subject, Now());
    REQUIRE(got.ok());
    REQUIRE(got->has_value());
    return **got;
  }
};

TEMPLATE_TEST_CASE("Store: concurrent subject updates keep every serial order's guarantees",
          "[storage][subject][race]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  const absl::Time ban = fx.Now() + absl::Hours(24 * 365);
  for (int round = 0; round < kRounds; ++round) {
    const std::string subject = absl::StrCat("s", round);
    // A ban racing a plain logout: the ban is never lost.
    absl::Status other;  // set on Race's second thread (no assertions there), checked after
    Race([&] { other = fx.store->UpdateSubject(MakeSubjectUpdate(subject, fx.Now(), {}, ban)).status(); },
         [&] { REQUIRE(fx.store->UpdateSubject(MakeSubjectUpdate(subject, fx.Now())).ok()); });
    REQUIRE(other.ok());
    SubjectRecord after = fx.Subject(subject);
    CHECK(after.block_until == ban);
    CHECK(after.not_before == fx.Now());
    // An older explicit cutoff racing "now": the cutoff never moves back.
    fx.clock.Advance(absl::Seconds(1));
    Race([&] { other = fx.store->UpdateSubject(MakeSubjectUpdate(subject, fx.Now())).status(); },
         [&] {
           REQUIRE(fx.store
                       ->UpdateSubject(MakeSubjectUpdate(subject, fx.Now(),
                                                         fx.Now() - absl::Hours(1)))
                       .ok());
         });
    REQUIRE(other.ok());
    after = fx.Subject(subject);
    CHECK(after.not_before == fx.Now());
    CHECK(after.block_until == ban);  // neither update named a block: kept
  }
}

TEMPLATE_TEST_CASE("Store: a family created concurrently with a ban is covered or refused",
          "[storage][subject][race]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  const absl::Time ban = fx.Now() + absl::Hours(24 * 365);
  int created = 0;
  for (int round = 0; round < kRounds; ++round) {
    const std::string subject = absl::StrCat("s", round);
    // The family's clock read came a little after the ban's (or its replica runs ahead).
    const absl::Time created_at = fx.Now() + absl::Microseconds(1 + round % 7);
    absl::Status create;
    Race([&] { create = fx.Create(round, subject, created_at); },
         [&] { REQUIRE(fx.store->UpdateSubject(MakeSubjectUpdate(subject, fx.Now(), {}, ban)).ok()); });
    SubjectRecord after = fx.Subject(subject);
    if (create.ok()) {
      ++created;
      CHECK(created_at <= after.not_before);  // the ban's cutoff covers it
      absl::StatusOr<RotateOutcome> out =
          fx.store->Rotate(MakeRotate(FamilyIdFor(round), 0, created_at, {}, subject));
      REQUIRE(out.ok());
      CHECK(out->result == RotateResult::kSubjectRevoked);
    } else {
      CHECK(ReasonOf(create) == "subject_blocked");
      CHECK(absl::IsNotFound(fx.store->GetFamily(FamilyIdFor(round), fx.Now()).status()));
    }
  }
  INFO(created << " of " << kRounds << " creations committed first");
  SUCCEED();
}

TEMPLATE_TEST_CASE("Store: a rotation racing a ban either commits whole or is refused whole",
          "[storage][subject][race]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  for (int round = 0; round < kRounds; ++round) {
    const std::string subject = absl::StrCat("s", round);
    REQUIRE(fx.Create(round, subject, fx.Now()).ok());
    fx.clock.Advance(absl::Microseconds(10));
    absl::StatusOr<RotateOutcome> rotated;
    Race([&] { rotated = fx.store->Rotate(MakeRotate(FamilyIdFor(round), 0, fx.Now(), {}, subject)); },
         [&] {
           REQUIRE(fx.store->UpdateSubject(MakeSubjectUpdate(subject, fx.Now(), {}, fx.Now() + absl::Hours(1)))
                       .ok());
         });
    REQUIRE(rotated.ok());
    absl::StatusOr<FamilyRecord> family = fx.store->GetFamily(FamilyIdFor(round), fx.Now());
    REQUIRE(family.ok());
    if (rotated->result == RotateResult::kRotated) {
      CHECK(family->generation == 1);
    } else {
      CHECK(rotated->result == RotateResult::kSubjectRevoked);
      CHECK(family->generation == 0);
      CHECK(absl::IsNotFound(fx.store->GetRefresh(FamilyIdFor(round), 1, fx.Now()).status()));
    }
    // Whatever the order, nothing rotates after the ban returned.
    CHECK(fx.store->Rotate(MakeRotate(FamilyIdFor(round), family->generation, fx.Now(), {}, subject))
              ->result == RotateResult::kSubjectRevoked);
  }
}

TEMPLATE_TEST_CASE("Store: without not_before the cutoff covers every stored family, even one ahead",
          "[storage][subject]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  const absl::Time ahead = fx.Now() + absl::Milliseconds(5);  // another replica's clock
  REQUIRE(fx.Create(1, "bob", ahead).ok());
  absl::StatusOr<SubjectRecord> record = fx.store->UpdateSubject(MakeSubjectUpdate("bob", fx.Now()));
  REQUIRE(record.ok());
  CHECK(record->not_before == ahead);
  CHECK(fx.store->Rotate(MakeRotate(FamilyIdFor(1), 0, ahead, {}, "bob"))->result ==
        RotateResult::kSubjectRevoked);
  // A family whose start the cutoff already covers is refused, and nothing is written.
  absl::Status late = fx.Create(2, "bob", ahead);
  CHECK(late.code() == absl::StatusCode::kAborted);
  CHECK(ReasonOf(late) == "subject_revoked");
  CHECK(absl::IsNotFound(fx.store->GetFamily(FamilyIdFor(2), fx.Now()).status()));
  CHECK(fx.Create(3, "bob", ahead + absl::Microseconds(1)).ok());
  // An explicit older cutoff does not reach for the newest family.
  REQUIRE(fx.Create(4, "carol", ahead).ok());
  record = fx.store->UpdateSubject(MakeSubjectUpdate("carol", fx.Now(), fx.Now()));
  REQUIRE(record.ok());
  CHECK(record->not_before == fx.Now());
  CHECK(fx.store->Rotate(MakeRotate(FamilyIdFor(4), 0, ahead, {}, "carol"))->result ==
        RotateResult::kRotated);
}

TEMPLATE_TEST_CASE("Store: a ban refuses new families and rotations until it ends", "[storage][subject]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  REQUIRE(fx.Create(1, "dave", fx.Now()).ok());
  fx.clock.Advance(absl::Seconds(1));
  const absl::Time until = fx.Now() + absl::Hours(1);
  REQUIRE(fx.store
              ->UpdateSubject(MakeSubjectUpdate("dave", fx.Now(), fx.Now() - absl::Hours(1), until))
              .ok());  // cutoff before the family: only the block applies to it
  fx.clock.Advance(absl::Seconds(1));
  absl::Status blocked = fx.Create(2, "dave", fx.Now());
  CHECK(blocked.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(ReasonOf(blocked) == "subject_blocked");
  CHECK(fx.store->Rotate(MakeRotate(FamilyIdFor(1), 0, fx.Now(), {}, "dave"))->result ==
        RotateResult::kSubjectBlocked);
  CHECK(fx.store->GetFamily(FamilyIdFor(1), fx.Now())->generation == 0);
  fx.clock.Set(until);
  CHECK(fx.Create(3, "dave", fx.Now()).ok());
  CHECK(fx.store->Rotate(MakeRotate(FamilyIdFor(1), 0, fx.Now(), {}, "dave"))->result ==
        RotateResult::kRotated);
}

TEMPLATE_TEST_CASE("Store: a subject record lives as long as the families it kills", "[storage][subject]", TA_EVERY_STORE) {
  // Issue 12: the lifetime came from the configured family_ttl, so shortening it let
  // families issued under the longer one outlive their cutoff.
  Fixture fx(TestType::Make());
  FamilyRecord long_lived = MakeFamily(FamilyIdFor(1), "erin", fx.Now());
  long_lived.expires_at = fx.Now() + absl::Hours(720);
  REQUIRE(
      fx.store
          ->CreateFamily(long_lived, MakeRefresh(long_lived.family_id, 0, fx.Now()), std::nullopt)
          .ok());
  fx.clock.Advance(absl::Seconds(1));
  SubjectUpdate logout = MakeSubjectUpdate("erin", fx.Now());
  logout.token_leeway = absl::Seconds(30);
  absl::StatusOr<SubjectRecord> record = fx.store->UpdateSubject(logout);
  REQUIRE(record.ok());
  CHECK(record->expires_at == long_lived.expires_at + absl::Seconds(30));
  // A family started after the cutoff does not stretch it; a later, older cutoff never
  // shortens it.
  fx.clock.Advance(absl::Seconds(1));
  FamilyRecord later = MakeFamily(FamilyIdFor(2), "erin", fx.Now());
  later.expires_at = fx.Now() + absl::Hours(2000);
  REQUIRE(
      fx.store->CreateFamily(later, MakeRefresh(later.family_id, 0, fx.Now()), std::nullopt).ok());
  record = fx.store->UpdateSubject(MakeSubjectUpdate("erin", fx.Now(), fx.Now() - absl::Hours(1)));
  REQUIRE(record.ok());
  CHECK(record->expires_at == long_lived.expires_at + absl::Seconds(30));
  fx.clock.Set(long_lived.expires_at + absl::Seconds(30));
  CHECK(fx.store->GetSubject("erin", fx.Now())->has_value());
}

TEMPLATE_TEST_CASE("Store: Rotate refuses a subject that is not the family's", "[storage][subject]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  REQUIRE(fx.Create(1, "frank", fx.Now()).ok());
  absl::Status s = fx.store->Rotate(MakeRotate(FamilyIdFor(1), 0, fx.Now(), {}, "mallory")).status();
  CHECK(ReasonOf(s) == "invalid_argument:subject");
  CHECK(fx.store->GetFamily(FamilyIdFor(1), fx.Now())->generation == 0);
  CHECK(ReasonOf(fx.store->UpdateSubject(MakeSubjectUpdate("frank", fx.Now(), fx.Now() + absl::Seconds(1)))
                     .status()) == "invalid_argument:not_before");
}


// ---- Beyond the cases above ----

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
  return store.CreateFamily(f, MakeRefresh(f.family_id, 0, at), std::nullopt);
}

TEMPLATE_TEST_CASE("UpdateSubject: the merged record is returned and stored", "[storage][subject]",
                   TA_EVERY_STORE) {
  auto h = TestType::Make();
  SubjectUpdate u = MakeSubjectUpdate("bob", h->Now());
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

TEMPLATE_TEST_CASE("UpdateSubject: an unset block keeps the stored one, a past one lifts it",
                   "[storage][subject]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  SubjectUpdate ban = MakeSubjectUpdate("bob", h->Now());
  ban.block_until = h->Now() + absl::Hours(2);
  Update(h->store(), ban);
  h->clock().Advance(absl::Minutes(1));
  SubjectRecord logout = Update(h->store(), MakeSubjectUpdate("bob", h->Now()));
  CHECK(logout.block_until == *ban.block_until);
  CHECK(logout.not_before == h->Now());
  SubjectUpdate lift = MakeSubjectUpdate("bob", h->Now());
  lift.block_until = h->Now() - absl::Seconds(1);
  SubjectRecord lifted = Update(h->store(), lift);
  CHECK(lifted.block_until == *lift.block_until);
  CHECK(lifted.expires_at == *ban.block_until);  // expires_at never shrinks
  CHECK(CreateAt(h->store(), 1, "bob", h->Now() + absl::Microseconds(1)).ok());
}

TEMPLATE_TEST_CASE("UpdateSubject: a cutoff that kills nothing yet still refuses a lagging clock",
                   "[storage][subject]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  SubjectRecord logout = Update(h->store(), MakeSubjectUpdate("bob", h->Now()));
  CHECK(logout.expires_at == h->Now() + kMaxTokenLeeway);
  // A replica whose clock lags stamps its new session before the cutoff, a minute later.
  const absl::Time lagging = h->Now() - absl::Seconds(1);
  h->clock().Advance(absl::Minutes(1));
  absl::Status late = CreateAt(h->store(), 1, "bob", lagging);
  CHECK(late.code() == absl::StatusCode::kAborted);
  CHECK(ReasonOf(late) == "subject_revoked");
}

TEMPLATE_TEST_CASE("UpdateSubject: bad updates are rejected, an expired record counts as absent",
                   "[storage][subject]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  SubjectUpdate future = MakeSubjectUpdate("bob", h->Now());
  future.not_before = h->Now() + absl::Microseconds(1);
  CHECK(ReasonOf(h->store().UpdateSubject(future).status()) == "invalid_argument:not_before");
  CHECK(ReasonOf(h->store().UpdateSubject(MakeSubjectUpdate(std::string(257, 'b'), h->Now())).status()) ==
        "invalid_argument:subject");
  CHECK_FALSE(h->store().GetSubject("bob", h->Now())->has_value());  // nothing written
  SubjectUpdate ban = MakeSubjectUpdate("bob", h->Now());
  ban.not_before = h->Now() - absl::Hours(1);
  ban.block_until = h->Now() + absl::Hours(1);
  Update(h->store(), ban);
  h->clock().Advance(absl::Hours(2));
  SubjectUpdate old = MakeSubjectUpdate("bob", h->Now());
  old.not_before = h->Now() - absl::Hours(3);
  SubjectRecord merged = Update(h->store(), old);
  CHECK(merged.block_until == absl::InfinitePast());  // the expired ban is gone
  CHECK(merged.not_before == *old.not_before);
}

TEMPLATE_TEST_CASE("Rotate: checks the subject's cutoff, then its block, after the family's own",
                   "[storage][subject][rotate]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  TokenStore& store = h->store();
  FamilyRecord f = h->Create(1, "bob");
  auto rotate = [&](absl::string_view subject = "bob") {
    return store.Rotate(MakeRotate(f.family_id, 0, h->Now(), absl::ZeroDuration(), subject));
  };
  SubjectUpdate block_only = MakeSubjectUpdate("bob", h->Now());
  block_only.not_before = h->Now() - absl::Seconds(1);  // spares f
  block_only.block_until = h->Now() + absl::Hours(1);
  Update(store, block_only);
  CHECK(rotate()->result == RotateResult::kSubjectBlocked);
  CHECK(ReasonOf(rotate("mallory").status()) == "invalid_argument:subject");
  h->clock().Advance(absl::Hours(1));
  REQUIRE(rotate()->result == RotateResult::kRotated);
  SubjectUpdate ban = MakeSubjectUpdate("bob", h->Now());
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

}  // namespace
}  // namespace ta::storage

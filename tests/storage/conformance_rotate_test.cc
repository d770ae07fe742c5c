// Storage conformance, rotation: every RotateResult, grace edges, the subject checks, and
// concurrent rotation of one token; on every store kind (store_harness.h).
#include <catch2/catch.hpp>

#include <latch>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "base/error.h"
#include "tests/storage/store_harness.h"
#include "tests/storage/test_util.h"

namespace ta::storage {
namespace {

using testing::FamilyIdFor;
using testing::MakeFamily;
using testing::MakeRefresh;
using testing::MakeRotate;
using testing::StoreHarness;

// A store holding one family of "alice" (FamilyIdFor(1)) at generation 0.
struct Fixture {
  std::unique_ptr<StoreHarness> h;
  TokenStore* store;
  FakeClock& clock;
  FamilyRecord family;

  explicit Fixture(std::unique_ptr<StoreHarness> harness)
      : h(std::move(harness)), store(&h->store()), clock(h->clock()), family(h->Create(1)) {}
  RotateOutcome Rotate(uint64_t generation, absl::Duration grace = absl::ZeroDuration()) {
    absl::StatusOr<RotateOutcome> out =
        store->Rotate(MakeRotate(family.family_id, generation, clock.Now(), grace));
    INFO(out.status().ToString());
    REQUIRE(out.ok());
    return *std::move(out);
  }
  FamilyRecord Family() { return *store->GetFamily(family.family_id, clock.Now()); }
};

TEMPLATE_TEST_CASE("Store: rotating the current token spends it and writes the successor",
          "[storage][rotate]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  fx.clock.Advance(absl::Minutes(5));
  RotateOutcome out = fx.Rotate(0);
  REQUIRE(out.result == RotateResult::kRotated);
  CHECK(out.family.generation == 1);
  CHECK(out.family.rotated_at == fx.clock.Now());
  CHECK(out.current.generation == 1);
  CHECK(out.current.family_id == fx.family.family_id);
  CHECK(fx.Family().generation == 1);
  absl::StatusOr<RefreshRecord> spent = fx.store->GetRefresh(fx.family.family_id, 0, fx.clock.Now());
  REQUIRE(spent.ok());
  CHECK(spent->spent_at == fx.clock.Now());
  absl::StatusOr<RefreshRecord> next = fx.store->GetRefresh(fx.family.family_id, 1, fx.clock.Now());
  REQUIRE(next.ok());
  CHECK(next->secret_hash == out.current.secret_hash);
  CHECK_FALSE(next->spent_at.has_value());
  CHECK(fx.Rotate(1).result == RotateResult::kRotated);
  CHECK(fx.Family().generation == 2);
}

TEMPLATE_TEST_CASE("Store: reuse of a spent generation revokes the family", "[storage][rotate]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  REQUIRE(fx.Rotate(0).result == RotateResult::kRotated);
  REQUIRE(fx.Rotate(1).result == RotateResult::kRotated);
  fx.clock.Advance(absl::Seconds(1));
  RotateOutcome out = fx.Rotate(0, absl::Seconds(30));  // two back: grace never applies
  REQUIRE(out.result == RotateResult::kReuseDetected);
  CHECK(out.family.revoked);
  CHECK(out.family.revoke_reason == "refresh_token_reuse");
  CHECK(out.family.revoked_by == "reuse-detector");
  CHECK(out.family.revoked_at == fx.clock.Now());
  FamilyRecord stored = fx.Family();
  CHECK(stored.revoked);
  CHECK(stored.revoke_reason == "refresh_token_reuse");
  // Every later presentation, the current token included, sees a revoked family.
  CHECK(fx.Rotate(2).result == RotateResult::kFamilyRevoked);
  CHECK(fx.Rotate(1).result == RotateResult::kFamilyRevoked);
}

TEMPLATE_TEST_CASE("Store: the immediate predecessor with grace off is reuse",
          "[storage][rotate]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  REQUIRE(fx.Rotate(0).result == RotateResult::kRotated);
  CHECK(fx.Rotate(0).result == RotateResult::kReuseDetected);
}

TEMPLATE_TEST_CASE("Store: replay within the grace window returns the same successor",
          "[storage][rotate]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  const absl::Duration grace = absl::Seconds(10);
  RotateOutcome first = fx.Rotate(0, grace);
  REQUIRE(first.result == RotateResult::kRotated);
  fx.clock.Advance(grace - absl::Microseconds(1));  // last instant inside the window
  RotateOutcome replay = fx.Rotate(0, grace);
  REQUIRE(replay.result == RotateResult::kReplayWithinGrace);
  CHECK(replay.current.generation == 1);
  CHECK(replay.current.secret_hash == first.current.secret_hash);
  CHECK(replay.current.issued_at == first.current.issued_at);
  CHECK(replay.family.generation == 1);
  CHECK_FALSE(replay.family.revoked);
  CHECK(fx.Family().generation == 1);  // no write
}

TEMPLATE_TEST_CASE("Store: replay at the end of the grace window is reuse", "[storage][rotate]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  const absl::Duration grace = absl::Seconds(10);
  REQUIRE(fx.Rotate(0, grace).result == RotateResult::kRotated);
  fx.clock.Advance(grace);  // now - rotated_at == grace: outside
  CHECK(fx.Rotate(0, grace).result == RotateResult::kReuseDetected);
  CHECK(fx.Family().revoked);
}

TEMPLATE_TEST_CASE("Store: grace is measured from the latest rotation", "[storage][rotate]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  const absl::Duration grace = absl::Seconds(10);
  REQUIRE(fx.Rotate(0, grace).result == RotateResult::kRotated);
  fx.clock.Advance(absl::Minutes(5));
  REQUIRE(fx.Rotate(1, grace).result == RotateResult::kRotated);
  fx.clock.Advance(absl::Seconds(1));
  CHECK(fx.Rotate(1, grace).result == RotateResult::kReplayWithinGrace);
  CHECK(fx.Rotate(0, grace).result == RotateResult::kReuseDetected);
}

TEMPLATE_TEST_CASE("Store: rotate on a revoked family is FamilyRevoked", "[storage][rotate]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  REQUIRE(*fx.store->RevokeFamily(fx.family.family_id, "logout", "alice", fx.clock.Now()));
  RotateOutcome out = fx.Rotate(0);
  CHECK(out.result == RotateResult::kFamilyRevoked);
  CHECK(out.family.revoke_reason == "logout");
  CHECK(fx.Family().generation == 0);
}

TEMPLATE_TEST_CASE("Store: rotate after the family's absolute expiry is FamilyExpired",
          "[storage][rotate]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  FamilyRecord short_lived = MakeFamily(FamilyIdFor(2), "alice", fx.clock.Now());
  short_lived.expires_at = fx.clock.Now() + absl::Hours(1);
  RefreshRecord first = MakeRefresh(short_lived.family_id, 0, fx.clock.Now());
  first.expires_at = short_lived.expires_at;  // capped by the family, as the caller does
  REQUIRE(fx.store->CreateFamily(short_lived, first, std::nullopt).ok());
  auto rotate_at = [&](absl::Time now) {
    return fx.store->Rotate(MakeRotate(short_lived.family_id, 0, now))->result;
  };
  CHECK(rotate_at(short_lived.expires_at) == RotateResult::kFamilyExpired);
  CHECK(rotate_at(short_lived.expires_at + absl::Hours(24)) == RotateResult::kFamilyExpired);
  CHECK(rotate_at(short_lived.expires_at + absl::Hours(24) + absl::Microseconds(1)) ==
        RotateResult::kNotFound);  // past retention: gone
  CHECK_FALSE(fx.store->GetFamily(short_lived.family_id, fx.clock.Now())->revoked);
  CHECK(rotate_at(short_lived.expires_at - absl::Microseconds(1)) == RotateResult::kRotated);
}

TEMPLATE_TEST_CASE("Store: an idle-expired token is TokenExpired and the family survives",
          "[storage][rotate]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  absl::Time exp = MakeRefresh(fx.family.family_id, 0, fx.clock.Now()).expires_at;
  fx.clock.Set(exp - absl::Microseconds(1));
  {
    Fixture other(TestType::Make());  // edge: one microsecond before expiry still rotates
    other.clock.Set(exp - absl::Microseconds(1));
    CHECK(other.Rotate(0).result == RotateResult::kRotated);
  }
  fx.clock.Set(exp);
  CHECK(fx.Rotate(0).result == RotateResult::kTokenExpired);
  FamilyRecord f = fx.Family();
  CHECK_FALSE(f.revoked);
  CHECK(f.generation == 0);
}

TEMPLATE_TEST_CASE("Store: unknown family, unknown or future generation are NotFound",
          "[storage][rotate]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  absl::StatusOr<RotateOutcome> out = fx.store->Rotate(MakeRotate(FamilyIdFor(99), 0, fx.clock.Now()));
  REQUIRE(out.ok());
  CHECK(out->result == RotateResult::kNotFound);
  CHECK(fx.Rotate(1).result == RotateResult::kNotFound);
  CHECK(fx.Rotate(7).result == RotateResult::kNotFound);
  CHECK(fx.Family().generation == 0);
  CHECK_FALSE(fx.Family().revoked);
}

std::map<RotateResult, int> RotateConcurrently(Fixture& fx, int threads, absl::Duration grace,
                                               std::vector<RotateOutcome>* outcomes) {
  outcomes->resize(threads);
  std::latch start(threads);
  std::vector<std::thread> workers;
  std::vector<char> ok(threads, 0);  // not vector<bool>: written concurrently
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      RotateRequest req = MakeRotate(fx.family.family_id, 0, fx.clock.Now(), grace);
      req.successor.secret_hash = std::string(32, static_cast<char>(t));  // each would-be winner differs
      start.arrive_and_wait();
      absl::StatusOr<RotateOutcome> out = fx.store->Rotate(req);
      ok[t] = out.ok();
      if (out.ok()) (*outcomes)[t] = *std::move(out);
    });
  }
  for (std::thread& w : workers) w.join();
  std::map<RotateResult, int> counts;
  for (int t = 0; t < threads; ++t) {
    REQUIRE(ok[t]);
    ++counts[(*outcomes)[t].result];
  }
  return counts;
}

TEMPLATE_TEST_CASE("Store: 64 concurrent rotations of one token: one winner, the rest reuse",
          "[storage][rotate][concurrency]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  std::vector<RotateOutcome> outcomes;
  std::map<RotateResult, int> counts = RotateConcurrently(fx, 64, absl::ZeroDuration(), &outcomes);
  CHECK(counts[RotateResult::kRotated] == 1);
  // The first loser detects the reuse and revokes; the others then find the family revoked.
  CHECK(counts[RotateResult::kReuseDetected] == 1);
  CHECK(counts[RotateResult::kFamilyRevoked] == 62);
  FamilyRecord f = fx.Family();
  CHECK(f.generation == 1);
  CHECK(f.revoked);
  CHECK(f.revoke_reason == "refresh_token_reuse");
  absl::StatusOr<RefreshRecord> successor = fx.store->GetRefresh(f.family_id, 1, fx.clock.Now());
  REQUIRE(successor.ok());
  CHECK(fx.store->GetRefresh(f.family_id, 2, fx.clock.Now()).status().code() ==
        absl::StatusCode::kNotFound);
}

TEMPLATE_TEST_CASE("Store: 64 concurrent rotations within grace all get the same successor",
          "[storage][rotate][concurrency]", TA_EVERY_STORE) {
  Fixture fx(TestType::Make());
  std::vector<RotateOutcome> outcomes;
  std::map<RotateResult, int> counts = RotateConcurrently(fx, 64, absl::Seconds(5), &outcomes);
  CHECK(counts[RotateResult::kRotated] == 1);
  CHECK(counts[RotateResult::kReplayWithinGrace] == 63);
  const std::string winner_hash = outcomes[0].current.secret_hash;
  for (const RotateOutcome& out : outcomes) {
    CHECK(out.current.generation == 1);
    CHECK(out.current.secret_hash == winner_hash);
  }
  FamilyRecord f = fx.Family();
  CHECK(f.generation == 1);
  CHECK_FALSE(f.revoked);
  absl::StatusOr<RefreshRecord> successor = fx.store->GetRefresh(f.family_id, 1, fx.clock.Now());
  REQUIRE(successor.ok());
  CHECK(successor->secret_hash == winner_hash);
  CHECK(fx.store->GetRefresh(f.family_id, 2, fx.clock.Now()).status().code() ==
        absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace ta::storage

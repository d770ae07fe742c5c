// Storage conformance, the DPoP replay cache (TokenStore::RecordProofJti; issue 26 item 1): a
// key is recorded once while it lives, again once it expired; it survives a restart; the
// purge drops it a margin after it died; and of hundreds of racing callers of one key
// exactly one records it -- on one store and across two PostgreSQL replicas. On every store
// kind (store_harness.h).
#include <atomic>
#include <catch2/catch.hpp>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/error.h"
#include "tests/storage/store_harness.h"
#include "tests/storage/test_util.h"

namespace ta::storage {
namespace {

bool Record(TokenStore& store, absl::string_view key, absl::Time keep_until, absl::Time now) {
  absl::StatusOr<bool> recorded = store.RecordProofJti(key, keep_until, now);
  INFO(recorded.status().ToString());
  REQUIRE(recorded.ok());
  return *recorded;
}

// `threads` callers on `stores` (round robin) race to record `key`; how many got true.
int RaceOnce(const std::vector<TokenStore*>& stores, int threads, const std::string& key,
             absl::Time now) {
  std::latch start(threads);
  std::atomic<int> winners{0}, errors{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      start.arrive_and_wait();
      absl::StatusOr<bool> recorded =
          stores[t % stores.size()]->RecordProofJti(key, now + absl::Minutes(5), now);
      if (!recorded.ok()) ++errors;
      if (recorded.ok() && *recorded) ++winners;
    });
  }
  for (std::thread& w : workers) w.join();
  CHECK(errors.load() == 0);
  return winners.load();
}

TEMPLATE_TEST_CASE("Store: a DPoP replay key is recorded once while it lives", "[storage][dpop]",
                   TA_EVERY_STORE) {
  auto h = TestType::Make();
  TokenStore& store = h->store();
  const absl::Time now = h->Now();
  const absl::Time until = now + absl::Minutes(5);
  CHECK(Record(store, "key-a", until, now));
  CHECK_FALSE(Record(store, "key-a", until, now));
  CHECK_FALSE(Record(store, "key-a", until + absl::Hours(1), until));  // still live at keep_until
  CHECK(Record(store, "key-b", until, now));
  // Past keep_until the key counts as absent, and is recorded again with the new expiry.
  CHECK(Record(store, "key-a", until + absl::Minutes(10), until + absl::Seconds(1)));
  CHECK_FALSE(Record(store, "key-a", until + absl::Minutes(10), until + absl::Minutes(9)));
  // Binary keys (the replay key is a SHA-256) round-trip.
  const std::string binary("\x00\xff\x01key", 6);
  CHECK(Record(store, binary, until, now));
  CHECK_FALSE(Record(store, binary, until, now));
  CHECK(Record(store, std::string("\x00\xff\x02key", 6), until, now));

  for (const std::string& bad : {std::string(), std::string(kMaxReplayKeyBytes + 1, 'k')}) {
    absl::StatusOr<bool> refused = store.RecordProofJti(bad, until, now);
    CHECK(ReasonOf(refused.status()) == "invalid_argument:replay_key");
  }
}

TEMPLATE_TEST_CASE("Store: DPoP replay keys survive a restart and are purged after the margin",
                   "[storage][dpop]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  const absl::Time start = h->Now();
  REQUIRE(Record(h->store(), "short", start + absl::Minutes(1), start));
  REQUIRE(Record(h->store(), "long", start + absl::Hours(1), start));
  h->Reopen();
  CHECK_FALSE(Record(h->store(), "short", start + absl::Minutes(1), start));
  CHECK_FALSE(Record(h->store(), "long", start + absl::Hours(1), start));

  // Dead, but within the purge margin (1 min on both stores): still on disk.
  h->clock().Advance(absl::Minutes(1) + absl::Seconds(30));
  REQUIRE(h->store().PurgeExpired().ok());
  CHECK(h->PhysicalCount(testing::Records::kProofJtis) == 2);
  // Past the margin: gone; the live one stays, and still refuses a replay.
  h->clock().Advance(absl::Minutes(1));
  REQUIRE(h->store().PurgeExpired().ok());
  CHECK(h->PhysicalCount(testing::Records::kProofJtis) == 1);
  CHECK_FALSE(Record(h->store(), "long", start + absl::Hours(1), h->Now()));
}

TEMPLATE_TEST_CASE("Store: of racing callers of one DPoP replay key exactly one records it",
                   "[storage][dpop][race]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  constexpr int kRounds = 200;
  constexpr int kThreads = 6;
  for (int round = 0; round < kRounds; ++round) {
    INFO("round " << round);
    REQUIRE(RaceOnce({&h->store()}, kThreads, absl::StrCat("race-", round), h->Now()) == 1);
  }
}

TEST_CASE("Store: of racing callers on two PostgreSQL replicas exactly one records a key",
          "[storage][dpop][race][replicas]") {
  auto h = testing::Postgres::Make();
  std::unique_ptr<TokenStore> replica = h->OpenReplica();
  REQUIRE(replica != nullptr);
  constexpr int kRounds = 200;
  constexpr int kThreads = 6;
  for (int round = 0; round < kRounds; ++round) {
    INFO("round " << round);
    REQUIRE(RaceOnce({&h->store(), replica.get()}, kThreads, absl::StrCat("replicas-", round),
                     h->Now()) == 1);
  }
  // And one after the other: what one replica recorded, the other refuses.
  CHECK(Record(*replica, "sequential", h->Now() + absl::Minutes(5), h->Now()));
  CHECK_FALSE(Record(h->store(), "sequential", h->Now() + absl::Minutes(5), h->Now()));
}

TEMPLATE_TEST_CASE("Store: a bound family keeps its confirmation", "[storage][dpop]",
                   TA_EVERY_STORE) {
  auto h = TestType::Make();
  TokenStore& store = h->store();
  FamilyRecord dpop = testing::MakeFamily(testing::FamilyIdFor(1), "alice", h->Now());
  dpop.cnf_jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
  REQUIRE(store.CreateFamily(dpop, testing::MakeRefresh(dpop.family_id, 0, h->Now()), std::nullopt)
              .ok());
  FamilyRecord mtls = testing::MakeFamily(testing::FamilyIdFor(2), "alice", h->Now());
  mtls.cnf_x5t_s256 = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2";
  REQUIRE(store.CreateFamily(mtls, testing::MakeRefresh(mtls.family_id, 0, h->Now()), std::nullopt)
              .ok());
  h->Create(3);  // a bearer session

  absl::StatusOr<RotateOutcome> rotated =
      store.Rotate(testing::MakeRotate(dpop.family_id, 0, h->Now()));
  REQUIRE(rotated.ok());
  CHECK(rotated->family.cnf_jkt == dpop.cnf_jkt);
  h->Reopen();
  absl::StatusOr<FamilyRecord> got = h->store().GetFamily(dpop.family_id, h->Now());
  REQUIRE(got.ok());
  CHECK(got->cnf_jkt == dpop.cnf_jkt);
  CHECK(got->cnf_x5t_s256.empty());
  CHECK(got->generation == 1);
  absl::StatusOr<FamilyPage> page = h->store().ListFamilies(testing::MakeQuery("alice", h->Now()));
  REQUIRE(page.ok());
  REQUIRE(page->families.size() == 3);
  for (const FamilyRecord& f : page->families) {
    CHECK(f.cnf_jkt == (f.family_id == dpop.family_id ? dpop.cnf_jkt : ""));
    CHECK(f.cnf_x5t_s256 == (f.family_id == mtls.family_id ? mtls.cnf_x5t_s256 : ""));
  }
}

}  // namespace
}  // namespace ta::storage

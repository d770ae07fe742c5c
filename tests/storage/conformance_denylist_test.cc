// Storage conformance, the facts stored twice (issue 24 item 4): the denylist (RocksDB
// `denylist` column family, PostgreSQL `ta_denylist`; the O(1) lookup by jti) and the
// revocation log's kJti entries (RocksDB `revocations`, PostgreSQL `ta_revocations`; the
// ordered feed for followers) hold the same facts, written in one batch / transaction. After a
// restart and after every purge, each kJti entry still on disk has its denylist row with the
// same expiry, and each denylist row its entry. On every store kind (store_harness.h).
#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "tests/storage/store_harness.h"
#include "tests/storage/test_util.h"

namespace ta::storage {
namespace {

using testing::FamilyIdFor;
using testing::MakeSubjectUpdate;

// The kJti entries physically present (expired ones included: read with a clock at the epoch,
// before any live_until), jti -> the live_until of its newest entry.
std::map<std::string, absl::Time> JtiEntries(TokenStore& store) {
  absl::StatusOr<std::vector<RevocationEntry>> log =
      store.ReadRevocations(0, absl::UnixEpoch(), 100'000);
  INFO(log.status().ToString());
  REQUIRE(log.ok());
  std::map<std::string, absl::Time> jtis;
  for (const RevocationEntry& e : *log) {
    if (e.kind == RevocationEntry::Kind::kJti) jtis[e.id] = e.live_until;  // seq order
  }
  return jtis;
}

// Both directions at once: the same jtis, each with the same expiry.
void CheckSameFacts(testing::StoreHarness& h, size_t expected) {
  const std::map<std::string, absl::Time> denylist = h.DenylistRows();
  const std::map<std::string, absl::Time> log = JtiEntries(h.store());
  for (const auto& [jti, until] : log) {
    INFO("log entry " << jti << " has its denylist row");
    auto row = denylist.find(jti);
    REQUIRE(row != denylist.end());
    CHECK(row->second == until);
  }
  for (const auto& [jti, expires_at] : denylist) {
    INFO("denylist row " << jti << " has its log entry");
    CHECK(log.count(jti) == 1);
  }
  CHECK(log.size() == expected);
  CHECK(denylist.size() == expected);
}

TEMPLATE_TEST_CASE("Store: denylist rows and kJti log entries match after restart and purge",
                   "[storage][log][denylist]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  TokenStore* store = &h->store();
  const absl::Time start = h->Now();
  // Three generations of denied tokens (dead after 1 min, 5 min, 1 h), a retried DenyJti
  // (same jti, same exp), and revocations that log no jti (family, subject cutoff).
  for (int i = 0; i < 4; ++i) {
    REQUIRE(store->DenyJti(absl::StrCat("short-", i), start + absl::Minutes(1)).ok());
    REQUIRE(store->DenyJti(absl::StrCat("mid-", i), start + absl::Minutes(5)).ok());
    REQUIRE(store->DenyJti(absl::StrCat("long-", i), start + absl::Hours(1)).ok());
  }
  REQUIRE(store->DenyJti("long-0", start + absl::Hours(1)).ok());
  h->Create(1);
  h->Create(2, "bob");
  REQUIRE(*store->RevokeFamily(FamilyIdFor(1), "logout", "ops", h->Now()));
  REQUIRE(store->UpdateSubject(MakeSubjectUpdate("bob", h->Now())).ok());
  CheckSameFacts(*h, 12);

  // Restart (recovery replays what was written): the same facts on both sides.
  h->Reopen();
  CheckSameFacts(*h, 12);

  // Dead but inside the purge margin (default 1 min): both sides keep the short ones.
  h->clock().Advance(absl::Minutes(1) + absl::Seconds(30));
  REQUIRE(h->store().PurgeExpired().ok());
  CheckSameFacts(*h, 12);

  // Past the margin: both sides drop exactly the short ones, together.
  h->clock().Advance(absl::Seconds(31));
  REQUIRE(h->store().PurgeExpired().ok());
  CheckSameFacts(*h, 8);

  // Denied after the purge, then a restart and a purge past the mid ones' margin.
  REQUIRE(h->store().DenyJti("late", h->Now() + absl::Minutes(30)).ok());
  h->Reopen();
  h->clock().Advance(absl::Minutes(5));
  REQUIRE(h->store().PurgeExpired().ok());
  CheckSameFacts(*h, 5);
  h->Reopen();
  CheckSameFacts(*h, 5);

  // Everything dead and past the margin: both sides empty.
  h->clock().Advance(absl::Hours(2));
  REQUIRE(h->store().PurgeExpired().ok());
  CheckSameFacts(*h, 0);
}


// A second DenyJti of a jti with a shorter expiry (the same token revoked again with another
// leeway, or a replayed call) once replaced the denylist row's expiry but left the first log
// entry: after the purge the log held a kJti entry without its row, and the token was active
// again before its exp. The later expiry wins on both sides, whichever call comes first.
TEMPLATE_TEST_CASE("Store: a second DenyJti with a shorter expiry never shortens the revocation",
                   "[storage][log][denylist]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  const absl::Time start = h->Now();
  REQUIRE(h->store().DenyJti("long-then-short", start + absl::Hours(1)).ok());
  REQUIRE(h->store().DenyJti("long-then-short", start + absl::Minutes(1)).ok());
  REQUIRE(h->store().DenyJti("short-then-long", start + absl::Minutes(1)).ok());
  REQUIRE(h->store().DenyJti("short-then-long", start + absl::Hours(1)).ok());
  CheckSameFacts(*h, 2);
  for (const auto& [jti, until] : h->DenylistRows()) {
    INFO(jti);
    CHECK(until == start + absl::Hours(1));
  }

  // Past the short expiry and its purge margin, after a restart: both still denied, on both
  // sides, until the later expiry.
  h->Reopen();
  h->clock().Advance(absl::Minutes(10));
  REQUIRE(h->store().PurgeExpired().ok());
  CheckSameFacts(*h, 2);
  for (const char* jti : {"long-then-short", "short-then-long"}) {
    INFO(jti);
    absl::StatusOr<bool> denied = h->store().IsJtiDenied(jti, h->Now());
    REQUIRE(denied.ok());
    CHECK(*denied);
  }

  // Past the later expiry and the margin: gone from both sides together.
  h->clock().Advance(absl::Hours(1));
  REQUIRE(h->store().PurgeExpired().ok());
  CheckSameFacts(*h, 0);
}

}  // namespace
}  // namespace ta::storage

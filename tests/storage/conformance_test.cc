// Storage conformance: every TokenStore operation, restart, expiry with a FakeClock and
// physical purge, pagination, stats and corrupt records; run on every store kind
// (store_harness.h). Rotation is in conformance_rotate_test.cc, subject updates and the
// races of the revocation contract in conformance_subject_test.cc.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "tests/storage/store_harness.h"
#include "tests/storage/test_util.h"

namespace ta::storage {
namespace {

using testing::FamilyIdFor;
using testing::MakeFamily;
using testing::MakeQuery;
using testing::MakeRefresh;
using testing::MakeRotate;
using testing::MakeSubjectUpdate;
using testing::Records;

TEMPLATE_TEST_CASE("Store: created family, refresh record and index read back", "[storage]",
                   TA_EVERY_STORE) {
  auto h = TestType::Make();
  FamilyRecord f = h->Create(1);
  f.extra_claims_json = "{\"tenant\":\"t1\"}";
  absl::StatusOr<FamilyRecord> got = h->store().GetFamily(f.family_id, h->Now());
  REQUIRE(got.ok());
  CHECK(got->subject == "alice");
  CHECK(got->client_id == f.client_id);
  CHECK(got->audience == f.audience);
  CHECK(got->scope == f.scope);
  CHECK(got->metadata == f.metadata);
  CHECK(got->issued_by == f.issued_by);
  CHECK(got->created_at == f.created_at);
  CHECK(got->expires_at == f.expires_at);
  CHECK(got->rotated_at == f.rotated_at);
  CHECK(got->generation == 0);
  CHECK_FALSE(got->revoked);
  absl::StatusOr<RefreshRecord> r = h->store().GetRefresh(f.family_id, 0, h->Now());
  REQUIRE(r.ok());
  CHECK(r->secret_hash == MakeRefresh(f.family_id, 0, h->Now()).secret_hash);
  CHECK(r->expires_at == MakeRefresh(f.family_id, 0, h->Now()).expires_at);
  CHECK_FALSE(r->spent_at.has_value());
  absl::StatusOr<FamilyPage> page = h->store().ListFamilies(MakeQuery("alice", h->Now()));
  REQUIRE(page.ok());
  REQUIRE(page->families.size() == 1);
  CHECK(page->families[0].family_id == f.family_id);
}

// Subjects and ids are any bytes; the other strings arrive from proto3 string fields, so they
// are UTF-8 (NUL included), which is all the RocksDB store's records promise to carry.
TEMPLATE_TEST_CASE("Store: byte strings round-trip exactly, times to the microsecond",
                   "[storage]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  h->clock().Advance(absl::Nanoseconds(123'456'000));  // microsecond precision is kept
  const std::string subject("s\0\xff\xfe", 4);
  FamilyRecord f = MakeFamily(FamilyIdFor(7), subject, h->Now());
  f.metadata = {{"", ""}, {std::string("k\0", 2), "caf\xc3\xa9"}};
  f.audience = {};
  f.extra_claims_json = "{\"a\":[1,2]}";
  REQUIRE(h->store().CreateFamily(f, MakeRefresh(f.family_id, 0, h->Now()), std::nullopt).ok());
  absl::StatusOr<FamilyRecord> got = h->store().GetFamily(f.family_id, h->Now());
  REQUIRE(got.ok());
  CHECK(got->subject == subject);
  CHECK(got->metadata == f.metadata);
  CHECK(got->audience.empty());
  CHECK(got->extra_claims_json == f.extra_claims_json);
  CHECK(got->created_at == f.created_at);
}

TEMPLATE_TEST_CASE("Store: duplicate family id is AlreadyExists", "[storage]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  FamilyRecord f = h->Create(1);
  absl::Status s = h->store().CreateFamily(f, MakeRefresh(f.family_id, 0, h->Now()), std::nullopt);
  CHECK(s.code() == absl::StatusCode::kAlreadyExists);
  CHECK(ReasonOf(s) == "already_exists");
}

TEMPLATE_TEST_CASE("Store: invalid records are rejected before any write", "[storage]",
                   TA_EVERY_STORE) {
  auto h = TestType::Make();
  TokenStore& store = h->store();
  FamilyRecord f = MakeFamily("short", "alice", h->Now());
  CHECK(ReasonOf(store.CreateFamily(f, MakeRefresh("short", 0, h->Now()), std::nullopt)) ==
        "invalid_argument:family_id");
  f = MakeFamily(FamilyIdFor(1), std::string(257, 's'), h->Now());
  CHECK(ReasonOf(store.CreateFamily(f, MakeRefresh(f.family_id, 0, h->Now()), std::nullopt)) ==
        "invalid_argument:subject");
  f = MakeFamily(FamilyIdFor(1), "", h->Now());
  CHECK(ReasonOf(store.CreateFamily(f, MakeRefresh(f.family_id, 0, h->Now()), std::nullopt)) ==
        "invalid_argument:subject");
  f = MakeFamily(FamilyIdFor(1), "alice", h->Now());
  CHECK(ReasonOf(store.CreateFamily(f, MakeRefresh(FamilyIdFor(2), 0, h->Now()), std::nullopt)) ==
        "invalid_argument:first");
  CHECK(ReasonOf(store.CreateFamily(f, MakeRefresh(f.family_id, 1, h->Now()), std::nullopt)) ==
        "invalid_argument:first");
  CHECK(ReasonOf(store.DenyJti("", h->Now())) == "invalid_argument:jti");
  CHECK(ReasonOf(store.DenyJti(std::string(1025, 'j'), h->Now())) == "invalid_argument:jti");
  CHECK(ReasonOf(store.UpdateSubject(SubjectUpdate{}).status()) == "invalid_argument:subject");
  CHECK(store.GetFamily(FamilyIdFor(1), h->Now()).status().code() == absl::StatusCode::kNotFound);
  CHECK(h->PhysicalCount(Records::kFamilies) == 0);
  CHECK(h->PhysicalCount(Records::kRefresh) == 0);
}

TEMPLATE_TEST_CASE("Store: unknown ids are NotFound, malformed ids too", "[storage]",
                   TA_EVERY_STORE) {
  auto h = TestType::Make();
  TokenStore& store = h->store();
  absl::Status s = store.GetFamily(FamilyIdFor(9), h->Now()).status();
  CHECK(s.code() == absl::StatusCode::kNotFound);
  CHECK(ReasonOf(s) == "not_found");
  CHECK(store.GetFamily("x", h->Now()).status().code() == absl::StatusCode::kNotFound);
  s = store.GetRefresh(FamilyIdFor(9), 0, h->Now()).status();
  CHECK(s.code() == absl::StatusCode::kNotFound);
  CHECK(ReasonOf(s) == "not_found");
  CHECK(store.GetRefresh("x", 0, h->Now()).status().code() == absl::StatusCode::kNotFound);
  CHECK(store.RevokeFamily(FamilyIdFor(9), "admin", "ops", h->Now()).status().code() ==
        absl::StatusCode::kNotFound);
  CHECK_FALSE(*store.IsJtiDenied("never-denied", h->Now()));
  CHECK_FALSE(store.GetSubject("nobody", h->Now())->has_value());
}

TEMPLATE_TEST_CASE("Store: RevokeFamily is idempotent and says whether it changed",
                   "[storage]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  FamilyRecord f = h->Create(1);
  absl::StatusOr<bool> changed = h->store().RevokeFamily(f.family_id, "logout", "alice", h->Now());
  REQUIRE(changed.ok());
  CHECK(*changed);
  h->clock().Advance(absl::Seconds(5));
  changed = h->store().RevokeFamily(f.family_id, "admin", "ops", h->Now());
  REQUIRE(changed.ok());
  CHECK_FALSE(*changed);
  absl::StatusOr<FamilyRecord> got = h->store().GetFamily(f.family_id, h->Now());
  REQUIRE(got.ok());
  CHECK(got->revoked);
  CHECK(got->revoke_reason == "logout");  // the first revocation wins
  CHECK(got->revoked_by == "alice");
  CHECK(got->revoked_at == h->Now() - absl::Seconds(5));
}

TEMPLATE_TEST_CASE("Store: denylist holds a jti until its exp", "[storage]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  TokenStore& store = h->store();
  absl::Time exp = h->Now() + absl::Minutes(5);
  REQUIRE(store.DenyJti("jti-1", exp).ok());
  CHECK(*store.IsJtiDenied("jti-1", h->Now()));
  CHECK_FALSE(*store.IsJtiDenied("jti-2", h->Now()));
  CHECK(*store.IsJtiDenied("jti-1", exp));
  CHECK_FALSE(*store.IsJtiDenied("jti-1", exp + absl::Microseconds(1)));
  REQUIRE(store.DenyJti("jti-1", exp + absl::Hours(1)).ok());  // a later call replaces exp
  CHECK(*store.IsJtiDenied("jti-1", exp + absl::Microseconds(1)));
}

TEMPLATE_TEST_CASE("Store: everything survives close and reopen", "[storage]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  FamilyRecord f = h->Create(1);
  REQUIRE(h->store().Rotate(MakeRotate(f.family_id, 0, h->Now()))->result ==
          RotateResult::kRotated);
  REQUIRE(*h->store().RevokeFamily(f.family_id, "admin", "ops", h->Now()));
  REQUIRE(h->store().DenyJti("jti-1", h->Now() + absl::Hours(1)).ok());
  SubjectUpdate ban = MakeSubjectUpdate("bob", h->Now());
  ban.block_until = h->Now() + absl::Hours(1);
  REQUIRE(h->store().UpdateSubject(ban).ok());
  h->Reopen();
  TokenStore& store = h->store();
  absl::StatusOr<FamilyRecord> got = store.GetFamily(f.family_id, h->Now());
  REQUIRE(got.ok());
  CHECK(got->generation == 1);
  CHECK(got->revoked);
  CHECK(store.GetRefresh(f.family_id, 0, h->Now())->spent_at.has_value());
  CHECK(store.GetRefresh(f.family_id, 1, h->Now()).ok());
  CHECK(*store.IsJtiDenied("jti-1", h->Now()));
  absl::StatusOr<std::optional<SubjectRecord>> bob = store.GetSubject("bob", h->Now());
  REQUIRE(bob.ok());
  REQUIRE(bob->has_value());
  CHECK((*bob)->block_until == *ban.block_until);
  CHECK(store.ListFamilies(MakeQuery("alice", h->Now(), true))->families.size() == 1);
}

TEMPLATE_TEST_CASE("Store: ListFamilies pages newest first and filters revoked", "[storage]",
                   TA_EVERY_STORE) {
  auto h = TestType::Make();
  for (uint64_t n = 0; n < 7; ++n) {
    h->Create(n);
    h->Create(100 + n, "alicex");  // a subject sharing the prefix must not leak in
    h->clock().Advance(absl::Seconds(1));
  }
  h->clock().Advance(-absl::Seconds(7));
  h->Create(50);  // the same created_at as family 0: ties are ordered, never lost
  h->clock().Advance(absl::Seconds(7));
  REQUIRE(*h->store().RevokeFamily(FamilyIdFor(3), "admin", "ops", h->Now()));
  for (bool include_revoked : {false, true}) {
    std::vector<std::string> seen;
    ListFamiliesQuery q = MakeQuery("alice", h->Now(), include_revoked);
    q.page_size = 2;
    int pages = 0;
    do {
      absl::StatusOr<FamilyPage> page = h->store().ListFamilies(q);
      REQUIRE(page.ok());
      CHECK(page->families.size() <= 2);
      for (const FamilyRecord& f : page->families) seen.push_back(f.family_id);
      q.page_token = page->next_page_token;
      ++pages;
    } while (!q.page_token.empty() && pages < 20);
    std::vector<std::string> expected;
    for (int n = 6; n >= 1; --n) {
      if (n != 3 || include_revoked) expected.push_back(FamilyIdFor(n));
    }
    std::vector<std::string> ties = {FamilyIdFor(0), FamilyIdFor(50)};
    std::sort(ties.begin(), ties.end());
    expected.insert(expected.end(), ties.begin(), ties.end());
    CHECK(seen == expected);
  }
  ListFamiliesQuery bad_query = MakeQuery("alice", h->Now());
  bad_query.page_token = "zz";
  CHECK(ReasonOf(h->store().ListFamilies(bad_query).status()) == "invalid_argument:page_token");
  CHECK(ReasonOf(h->store().ListFamilies(MakeQuery("", h->Now())).status()) ==
        "invalid_argument:subject");
}

TEMPLATE_TEST_CASE("Store: readers hide expired records before any purge", "[storage]",
                   TA_EVERY_STORE) {
  auto h = TestType::Make();
  FamilyRecord f = h->Create(1);
  h->clock().Set(f.expires_at);
  TokenStore& store = h->store();
  CHECK(store.GetFamily(f.family_id, h->Now()).ok());  // expired, but retained
  CHECK(store.Rotate(MakeRotate(f.family_id, 0, h->Now()))->result ==
        RotateResult::kFamilyExpired);
  CHECK(store.ListFamilies(MakeQuery("alice", h->Now()))->families.empty());
  CHECK(store.ListFamilies(MakeQuery("alice", h->Now(), true))->families.size() == 1);
  absl::Time gone = f.expires_at + absl::Hours(24) + absl::Microseconds(1);
  CHECK(store.GetFamily(f.family_id, gone).status().code() == absl::StatusCode::kNotFound);
  CHECK(store.Rotate(MakeRotate(f.family_id, 0, gone))->result == RotateResult::kNotFound);
  CHECK(store.ListFamilies(MakeQuery("alice", gone, true))->families.empty());
  CHECK(store.RevokeFamily(f.family_id, "admin", "ops", gone).status().code() ==
        absl::StatusCode::kNotFound);
}

TEMPLATE_TEST_CASE("Store: GetRefresh returns an expired record within retention only",
                   "[storage]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  FamilyRecord f = h->Create(1);
  absl::Time exp = MakeRefresh(f.family_id, 0, h->Now()).expires_at;
  absl::StatusOr<RefreshRecord> expired = h->store().GetRefresh(f.family_id, 0, exp);
  REQUIRE(expired.ok());  // the caller checks the secret first, then tells "expired"
  CHECK(expired->expires_at == exp);
  CHECK(h->store().GetRefresh(f.family_id, 0, exp + absl::Hours(24)).ok());
  absl::Status s = h->store().GetRefresh(f.family_id, 0, exp + absl::Hours(25)).status();
  CHECK(s.code() == absl::StatusCode::kNotFound);
  CHECK(ReasonOf(s) == "not_found");
}

TEMPLATE_TEST_CASE("Store: PurgeExpired physically drops expired records", "[storage]",
                   TA_EVERY_STORE) {
  auto h = TestType::Make();
  FamilyRecord old_family = h->Create(1);
  REQUIRE(h->store().DenyJti("old-jti", h->Now() + absl::Minutes(5)).ok());
  SubjectUpdate old_ban = MakeSubjectUpdate("old", h->Now());
  old_ban.block_until = h->Now() + absl::Hours(1);
  REQUIRE(h->store().UpdateSubject(old_ban).ok());
  h->clock().Advance(absl::Hours(24 * 40));  // past every expiry + retention above
  FamilyRecord fresh = h->Create(2);
  REQUIRE(h->store().DenyJti("new-jti", h->Now() + absl::Minutes(5)).ok());
  SubjectUpdate new_ban = MakeSubjectUpdate("new", h->Now());
  new_ban.block_until = h->Now() + absl::Hours(1);
  REQUIRE(h->store().UpdateSubject(new_ban).ok());
  REQUIRE(h->store().PurgeExpired().ok());
  absl::StatusOr<StoreStats> stats = h->store().GetStats();
  REQUIRE(stats.ok());
  CHECK(stats->families == 1);
  CHECK(stats->refresh_records == 1);
  CHECK(stats->denied_jtis == 1);
  CHECK(stats->subjects == 1);
  CHECK(h->PhysicalCount(Records::kFamilies) == 1);
  CHECK(h->PhysicalCount(Records::kRefresh) == 1);
  CHECK(h->PhysicalCount(Records::kSubjectIndex) == 1);
  CHECK(h->PhysicalCount(Records::kDenylist) == 1);
  CHECK(h->PhysicalCount(Records::kSubjects) == 1);
  CHECK(h->store().GetFamily(fresh.family_id, h->Now()).ok());
  CHECK_FALSE(h->store().GetFamily(old_family.family_id, h->Now()).ok());
}

TEMPLATE_TEST_CASE("Store: GetStats counts records", "[storage]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  for (uint64_t n = 0; n < 5; ++n) h->Create(n);
  REQUIRE(h->store().DenyJti("j", h->Now() + absl::Hours(1)).ok());
  absl::StatusOr<StoreStats> stats = h->store().GetStats();
  REQUIRE(stats.ok());
  CHECK(stats->families == 5);
  CHECK(stats->refresh_records == 5);
  CHECK(stats->denied_jtis == 1);
  CHECK(stats->subjects == 0);
}

TEMPLATE_TEST_CASE("Store: a family that does not decode reads as store_corrupt, not a crash",
                   "[storage]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  FamilyRecord f = h->Create(1);
  h->CorruptFamily(f.family_id);
  auto require_corrupt = [](const absl::Status& s) {
    CHECK(s.code() == absl::StatusCode::kDataLoss);
    CHECK(ReasonOf(s) == "store_corrupt");
  };
  TokenStore& store = h->store();
  require_corrupt(store.GetFamily(f.family_id, h->Now()).status());
  require_corrupt(store.Rotate(MakeRotate(f.family_id, 0, h->Now())).status());
  require_corrupt(store.RevokeFamily(f.family_id, "admin", "ops", h->Now()).status());
  require_corrupt(store.ListFamilies(MakeQuery("alice", h->Now())).status());
  CHECK(store.GetRefresh(f.family_id, 0, h->Now()).ok());  // other records stay readable
  REQUIRE(store.PurgeExpired().ok());
}

// Every store has a clock (no UNIMPLEMENTED default): a replica's follower measures its offset
// against it and the shared key ring takes signing times from it. The harness's fake clock
// stands for the RocksDB store's clock and for the database's (PostgresStoreOptions::
// database_clock); the real ones are checked in rocksdb_store_test.cc and
// postgres_store_test.cc.
TEMPLATE_TEST_CASE("Store: ClockNow reads the store's clock", "[storage]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  absl::StatusOr<absl::Time> now = h->store().ClockNow();
  REQUIRE(now.ok());
  CHECK(*now == h->Now());
  h->clock().Advance(absl::Hours(3));
  now = h->store().ClockNow();
  REQUIRE(now.ok());
  CHECK(*now == h->Now());
}

}  // namespace
}  // namespace ta::storage

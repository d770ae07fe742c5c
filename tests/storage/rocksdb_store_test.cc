// RocksDbStore: every operation, reopen, format versions, expiry and corrupt values.
#include "storage/rocksdb_store.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/base/clock.h"
#include "server/base/error.h"
#include "storage/codec.h"
#include "tests/storage/test_util.h"

namespace ta::storage {
namespace {

using testing::FamilyIdFor;
using testing::MakeFamily;
using testing::MakeRefresh;
using testing::RawDb;
using testing::TempDir;

struct Fixture {
  TempDir dir;
  FakeClock clock;
  std::unique_ptr<TokenStore> store;

  Fixture() { Reopen(); }
  RocksDbStoreOptions Options() const {
    RocksDbStoreOptions o;
    o.path = dir.path();
    o.clock = &clock;
    o.block_cache_bytes = 8 << 20;
    return o;
  }
  void Reopen() {
    store.reset();
    absl::StatusOr<std::unique_ptr<TokenStore>> opened = OpenRocksDbStore(Options());
    REQUIRE(opened.ok());
    store = *std::move(opened);
  }
  absl::Time Now() const { return clock.Now(); }
  FamilyRecord Create(uint64_t n, absl::string_view subject = "alice") {
    FamilyRecord f = MakeFamily(FamilyIdFor(n), subject, Now());
    REQUIRE(store->CreateFamily(f, MakeRefresh(f.family_id, 0, Now())).ok());
    return f;
  }
};

TEST_CASE("RocksDbStore: created family, refresh record and index read back", "[storage]") {
  Fixture fx;
  FamilyRecord f = fx.Create(1);
  absl::StatusOr<FamilyRecord> got = fx.store->GetFamily(f.family_id, fx.Now());
  REQUIRE(got.ok());
  CHECK(got->subject == "alice");
  CHECK(got->metadata == f.metadata);
  CHECK(got->created_at == f.created_at);
  absl::StatusOr<RefreshRecord> r = fx.store->GetRefresh(f.family_id, 0, fx.Now());
  REQUIRE(r.ok());
  CHECK(r->secret_hash == MakeRefresh(f.family_id, 0, fx.Now()).secret_hash);
  CHECK_FALSE(r->spent_at.has_value());
  absl::StatusOr<FamilyPage> page = fx.store->ListFamilies(testing::MakeQuery("alice", fx.Now()));
  REQUIRE(page.ok());
  REQUIRE(page->families.size() == 1);
  CHECK(page->families[0].family_id == f.family_id);
}

TEST_CASE("RocksDbStore: duplicate family id is AlreadyExists", "[storage]") {
  Fixture fx;
  FamilyRecord f = fx.Create(1);
  absl::Status s = fx.store->CreateFamily(f, MakeRefresh(f.family_id, 0, fx.Now()));
  CHECK(s.code() == absl::StatusCode::kAlreadyExists);
}

TEST_CASE("RocksDbStore: invalid records are rejected before any write", "[storage]") {
  Fixture fx;
  FamilyRecord f = MakeFamily("short", "alice", fx.Now());
  CHECK(ReasonOf(fx.store->CreateFamily(f, MakeRefresh("short", 0, fx.Now()))) ==
        "invalid_argument:family_id");
  f = MakeFamily(FamilyIdFor(1), std::string(257, 's'), fx.Now());
  CHECK(ReasonOf(fx.store->CreateFamily(f, MakeRefresh(f.family_id, 0, fx.Now()))) ==
        "invalid_argument:subject");
  f = MakeFamily(FamilyIdFor(1), "alice", fx.Now());
  CHECK(ReasonOf(fx.store->CreateFamily(f, MakeRefresh(FamilyIdFor(2), 0, fx.Now()))) ==
        "invalid_argument:first");
  CHECK(ReasonOf(fx.store->DenyJti("", fx.Now())) == "invalid_argument:jti");
  CHECK(ReasonOf(fx.store->UpdateSubject(SubjectUpdate{}).status()) == "invalid_argument:subject");
  CHECK(fx.store->GetFamily(FamilyIdFor(1), fx.Now()).status().code() ==
        absl::StatusCode::kNotFound);
}

TEST_CASE("RocksDbStore: unknown ids are NotFound, malformed ids too", "[storage]") {
  Fixture fx;
  absl::Status s = fx.store->GetFamily(FamilyIdFor(9), fx.Now()).status();
  CHECK(s.code() == absl::StatusCode::kNotFound);
  CHECK(ReasonOf(s) == "not_found");
  CHECK(fx.store->GetFamily("x", fx.Now()).status().code() == absl::StatusCode::kNotFound);
  CHECK(fx.store->GetRefresh(FamilyIdFor(9), 0, fx.Now()).status().code() ==
        absl::StatusCode::kNotFound);
  CHECK(fx.store->RevokeFamily(FamilyIdFor(9), "admin", "ops", fx.Now()).status().code() ==
        absl::StatusCode::kNotFound);
}

TEST_CASE("RocksDbStore: RevokeFamily is idempotent and says whether it changed", "[storage]") {
  Fixture fx;
  FamilyRecord f = fx.Create(1);
  absl::StatusOr<bool> changed = fx.store->RevokeFamily(f.family_id, "logout", "alice", fx.Now());
  REQUIRE(changed.ok());
  CHECK(*changed);
  fx.clock.Advance(absl::Seconds(5));
  changed = fx.store->RevokeFamily(f.family_id, "admin", "ops", fx.Now());
  REQUIRE(changed.ok());
  CHECK_FALSE(*changed);
  absl::StatusOr<FamilyRecord> got = fx.store->GetFamily(f.family_id, fx.Now());
  REQUIRE(got.ok());
  CHECK(got->revoked);
  CHECK(got->revoke_reason == "logout");  // the first revocation wins
  CHECK(got->revoked_by == "alice");
  CHECK(got->revoked_at == fx.Now() - absl::Seconds(5));
}

TEST_CASE("RocksDbStore: denylist holds a jti until its exp", "[storage]") {
  Fixture fx;
  absl::Time exp = fx.Now() + absl::Minutes(5);
  REQUIRE(fx.store->DenyJti("jti-1", exp).ok());
  CHECK(*fx.store->IsJtiDenied("jti-1", fx.Now()));
  CHECK_FALSE(*fx.store->IsJtiDenied("jti-2", fx.Now()));
  CHECK(*fx.store->IsJtiDenied("jti-1", exp));
  CHECK_FALSE(*fx.store->IsJtiDenied("jti-1", exp + absl::Microseconds(1)));
}

TEST_CASE("RocksDbStore: subject updates merge and the record hides after its expiry",
          "[storage]") {
  Fixture fx;
  CHECK_FALSE(fx.store->GetSubject("bob", fx.Now())->has_value());
  SubjectUpdate u = testing::MakeSubjectUpdate("bob", fx.Now(), fx.Now(), fx.Now() + absl::Hours(1));
  u.reason = "stolen laptop";
  u.revoked_by = "admin";
  REQUIRE(fx.store->UpdateSubject(u).ok());
  u.block_until.reset();  // keeps the stored block
  u.reason = "ban";
  absl::StatusOr<SubjectRecord> merged = fx.store->UpdateSubject(u);
  REQUIRE(merged.ok());
  absl::StatusOr<std::optional<SubjectRecord>> got = fx.store->GetSubject("bob", fx.Now());
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  CHECK((*got)->reason == "ban");
  CHECK((*got)->revoked_by == "admin");
  CHECK((*got)->block_until == fx.Now() + absl::Hours(1));
  CHECK((*got)->not_before == fx.Now());
  CHECK((*got)->expires_at == merged->expires_at);
  CHECK((*got)->expires_at == fx.Now() + absl::Hours(1));  // no families: the block bounds it
  CHECK((*fx.store->GetSubject("bob", merged->expires_at)).has_value());
  CHECK_FALSE(
      (*fx.store->GetSubject("bob", merged->expires_at + absl::Microseconds(1))).has_value());
}

TEST_CASE("RocksDbStore: everything survives close and reopen", "[storage]") {
  Fixture fx;
  FamilyRecord f = fx.Create(1);
  REQUIRE(fx.store->Rotate(testing::MakeRotate(f.family_id, 0, fx.Now()))->result ==
          RotateResult::kRotated);
  REQUIRE(*fx.store->RevokeFamily(f.family_id, "admin", "ops", fx.Now()));
  REQUIRE(fx.store->DenyJti("jti-1", fx.Now() + absl::Hours(1)).ok());
  REQUIRE(fx.store
              ->UpdateSubject(testing::MakeSubjectUpdate("bob", fx.Now(), std::nullopt,
                                                         fx.Now() + absl::Hours(1)))
              .ok());
  fx.Reopen();
  absl::StatusOr<FamilyRecord> got = fx.store->GetFamily(f.family_id, fx.Now());
  REQUIRE(got.ok());
  CHECK(got->generation == 1);
  CHECK(got->revoked);
  CHECK(fx.store->GetRefresh(f.family_id, 0, fx.Now())->spent_at.has_value());
  CHECK(fx.store->GetRefresh(f.family_id, 1, fx.Now()).ok());
  CHECK(*fx.store->IsJtiDenied("jti-1", fx.Now()));
  CHECK(fx.store->GetSubject("bob", fx.Now())->has_value());
  CHECK(fx.store->ListFamilies(testing::MakeQuery("alice", fx.Now(), true))
            ->families.size() == 1);
}

TEST_CASE("RocksDbStore: ListFamilies pages newest first and filters revoked", "[storage]") {
  Fixture fx;
  for (uint64_t n = 0; n < 7; ++n) {
    fx.Create(n);
    fx.Create(100 + n, "alicex");  // a subject sharing the prefix must not leak in
    fx.clock.Advance(absl::Seconds(1));
  }
  REQUIRE(*fx.store->RevokeFamily(FamilyIdFor(3), "admin", "ops", fx.Now()));
  for (bool include_revoked : {false, true}) {
    std::vector<std::string> seen;
    ListFamiliesQuery q = testing::MakeQuery("alice", fx.Now(), include_revoked);
    q.page_size = 2;
    int pages = 0;
    do {
      absl::StatusOr<FamilyPage> page = fx.store->ListFamilies(q);
      REQUIRE(page.ok());
      for (const FamilyRecord& f : page->families) seen.push_back(f.family_id);
      q.page_token = page->next_page_token;
      ++pages;
    } while (!q.page_token.empty() && pages < 10);
    std::vector<std::string> expected;
    for (int n = 6; n >= 0; --n) {
      if (n != 3 || include_revoked) expected.push_back(FamilyIdFor(n));
    }
    CHECK(seen == expected);
  }
  ListFamiliesQuery bad_query = testing::MakeQuery("alice", fx.Now());
  bad_query.page_token = "zz";
  absl::Status bad = fx.store->ListFamilies(bad_query).status();
  CHECK(ReasonOf(bad) == "invalid_argument:page_token");
}

TEST_CASE("RocksDbStore: readers hide expired records before compaction", "[storage]") {
  Fixture fx;
  FamilyRecord f = fx.Create(1);
  fx.clock.Set(f.expires_at);
  CHECK(fx.store->GetFamily(f.family_id, fx.Now()).ok());  // expired, but retained
  CHECK(fx.store->Rotate(testing::MakeRotate(f.family_id, 0, fx.Now()))->result ==
        RotateResult::kFamilyExpired);
  CHECK(fx.store->ListFamilies(testing::MakeQuery("alice", fx.Now()))->families.empty());
  CHECK(fx.store->ListFamilies(testing::MakeQuery("alice", fx.Now(), true))
            ->families.size() == 1);
  absl::Time gone = f.expires_at + absl::Hours(24) + absl::Microseconds(1);
  CHECK(fx.store->GetFamily(f.family_id, gone).status().code() == absl::StatusCode::kNotFound);
  CHECK(fx.store->Rotate(testing::MakeRotate(f.family_id, 0, gone))->result ==
        RotateResult::kNotFound);
}

TEST_CASE("RocksDbStore: GetRefresh returns an expired record within retention", "[storage]") {
  Fixture fx;
  FamilyRecord f = fx.Create(1);
  absl::Time exp = MakeRefresh(f.family_id, 0, fx.Now()).expires_at;
  // The caller checks the secret against the hash first, then the expiry (issue 12).
  absl::StatusOr<RefreshRecord> expired = fx.store->GetRefresh(f.family_id, 0, exp);
  REQUIRE(expired.ok());
  CHECK(expired->expires_at == exp);
  absl::Status s = fx.store->GetRefresh(f.family_id, 0, exp + absl::Hours(25)).status();
  CHECK(s.code() == absl::StatusCode::kNotFound);
  CHECK(ReasonOf(s) == "not_found");
}

TEST_CASE("RocksDbStore: PurgeExpired physically drops expired records", "[storage]") {
  Fixture fx;
  FamilyRecord old_family = fx.Create(1);
  REQUIRE(fx.store->DenyJti("old-jti", fx.Now() + absl::Minutes(5)).ok());
  REQUIRE(fx.store
              ->UpdateSubject(testing::MakeSubjectUpdate("old", fx.Now(), std::nullopt,
                                                         fx.Now() + absl::Hours(1)))
              .ok());
  fx.clock.Advance(absl::Hours(24 * 40));  // past every expiry + retention above
  FamilyRecord fresh = fx.Create(2);
  REQUIRE(fx.store->DenyJti("new-jti", fx.Now() + absl::Minutes(5)).ok());
  REQUIRE(fx.store
              ->UpdateSubject(testing::MakeSubjectUpdate("new", fx.Now(), std::nullopt,
                                                         fx.Now() + absl::Hours(1)))
              .ok());
  REQUIRE(fx.store->PurgeExpired().ok());
  absl::StatusOr<StoreStats> stats = fx.store->GetStats();
  REQUIRE(stats.ok());
  CHECK(stats->families == 1);
  CHECK(stats->denied_jtis == 1);
  fx.store.reset();
  std::unique_ptr<RawDb> raw = RawDb::Open(fx.dir.path());
  REQUIRE(raw != nullptr);
  CHECK(raw->Count(Cf::kFamilies) == 1);
  CHECK(raw->Count(Cf::kRefresh) == 1);
  CHECK(raw->Count(Cf::kSubjectFamilies) == 1);
  CHECK(raw->Count(Cf::kDenylist) == 1);
  CHECK(raw->Count(Cf::kSubjects) == 1);
  CHECK(raw->Get(Cf::kFamilies, FamilyKey(fresh.family_id)).has_value());
  CHECK_FALSE(raw->Get(Cf::kFamilies, FamilyKey(old_family.family_id)).has_value());
  CHECK(raw->Count(Cf::kMeta) == 1);  // the format version never expires
}

TEST_CASE("RocksDbStore: GetStats counts records", "[storage]") {
  Fixture fx;
  for (uint64_t n = 0; n < 5; ++n) fx.Create(n);
  REQUIRE(fx.store->DenyJti("j", fx.Now() + absl::Hours(1)).ok());
  absl::StatusOr<StoreStats> stats = fx.store->GetStats();
  REQUIRE(stats.ok());
  CHECK(stats->families == 5);
  CHECK(stats->refresh_records == 5);
  CHECK(stats->denied_jtis == 1);
}

TEST_CASE("RocksDbStore: a newer on-disk format refuses to open and writes nothing",
          "[storage]") {
  Fixture fx;
  fx.store.reset();
  {
    std::unique_ptr<RawDb> raw = RawDb::Open(fx.dir.path());
    REQUIRE(raw != nullptr);
    REQUIRE(raw->Get(Cf::kMeta, std::string(kFormatVersionKey)).has_value());
    raw->Put(Cf::kMeta, std::string(kFormatVersionKey), EncodeFormatVersion(kStoreFormatVersion + 1));
  }
  std::map<std::string, uintmax_t> before;
  for (const auto& e : std::filesystem::directory_iterator(fx.dir.path())) {
    before[e.path().filename().string()] = e.file_size();
  }
  absl::StatusOr<std::unique_ptr<TokenStore>> opened = OpenRocksDbStore(fx.Options());
  REQUIRE(opened.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(ReasonOf(opened.status()) == "store_format_too_new");
  CHECK(absl::StrContains(opened.status().message(), absl::StrCat("version ", kStoreFormatVersion + 1)));
  CHECK(absl::StrContains(opened.status().message(), absl::StrCat("up to ", kStoreFormatVersion)));
  std::map<std::string, uintmax_t> after;
  for (const auto& e : std::filesystem::directory_iterator(fx.dir.path())) {
    after[e.path().filename().string()] = e.file_size();
  }
  CHECK(before == after);
}

TEST_CASE("RocksDbStore: bad options and an unusable path are clear errors", "[storage]") {
  RocksDbStoreOptions o;
  CHECK(ReasonOf(OpenRocksDbStore(o).status()) == "invalid_argument:path");
  TempDir dir;
  o.path = dir.path();
  o.lock_stripes = 0;
  CHECK(ReasonOf(OpenRocksDbStore(o).status()) == "invalid_argument:lock_stripes");
  o.lock_stripes = 1;
  o.path = dir.path() + "/missing-parent/db";
  absl::Status s = OpenRocksDbStore(o).status();
  CHECK(s.code() == absl::StatusCode::kUnavailable);
  CHECK(ReasonOf(s) == "store_unavailable");
  o.path = dir.path();
  absl::StatusOr<std::unique_ptr<TokenStore>> first = OpenRocksDbStore(o);
  REQUIRE(first.ok());
  CHECK(ReasonOf(OpenRocksDbStore(o).status()) == "store_unavailable");  // LOCK is held
}

TEST_CASE("RocksDbStore: garbage values on disk read as store_corrupt, not a crash",
          "[storage]") {
  Fixture fx;
  FamilyRecord f = fx.Create(1);
  fx.store.reset();
  {
    std::unique_ptr<RawDb> raw = RawDb::Open(fx.dir.path());
    REQUIRE(raw != nullptr);
    raw->Put(Cf::kFamilies, FamilyKey(f.family_id), "\x01garbage-that-is-no-record\xff\xff");
    raw->Put(Cf::kRefresh, RefreshKey(f.family_id, 0), "\x07");
    raw->Put(Cf::kDenylist, DenylistKey("jti"), std::string(kValueHeaderSize, '\x01') + "\xff\xff");
    raw->Put(Cf::kSubjects, SubjectKey("bob"), "");
  }
  fx.Reopen();
  auto require_corrupt = [](const absl::Status& s) {
    CHECK(s.code() == absl::StatusCode::kDataLoss);
    CHECK(ReasonOf(s) == "store_corrupt");
  };
  require_corrupt(fx.store->GetFamily(f.family_id, fx.Now()).status());
  require_corrupt(fx.store->GetRefresh(f.family_id, 0, fx.Now()).status());
  require_corrupt(fx.store->Rotate(testing::MakeRotate(f.family_id, 0, fx.Now())).status());
  require_corrupt(fx.store->RevokeFamily(f.family_id, "admin", "ops", fx.Now()).status());
  require_corrupt(fx.store->IsJtiDenied("jti", fx.Now()).status());
  require_corrupt(fx.store->GetSubject("bob", fx.Now()).status());
  require_corrupt(fx.store->ListFamilies(testing::MakeQuery("alice", fx.Now())).status());
  REQUIRE(fx.store->PurgeExpired().ok());  // the compaction filter keeps what it cannot read
}

}  // namespace
}  // namespace ta::storage

// RocksDbStore beyond the shared contract (conformance_*_test.cc): format versions, options,
// the LOCK file, undecodable values in every column family, the meta record surviving purges.
#include "storage/rocksdb/rocksdb_store.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/error.h"
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
    REQUIRE(store->CreateFamily(f, MakeRefresh(f.family_id, 0, Now()), std::nullopt).ok());
    return f;
  }
};

TEST_CASE("RocksDbStore: ClockNow is the clock it was given, by default the wall clock",
          "[storage]") {
  TempDir dir;
  RocksDbStoreOptions o;
  o.path = dir.path();  // clock left at its default, Clock::Real()
  absl::StatusOr<std::unique_ptr<TokenStore>> store = OpenRocksDbStore(o);
  REQUIRE(store.ok());
  absl::StatusOr<absl::Time> now = (*store)->ClockNow();
  REQUIRE(now.ok());
  CHECK(absl::AbsDuration(*now - absl::Now()) < absl::Seconds(1));
}

TEST_CASE("RocksDbStore: PurgeExpired keeps the format version", "[storage]") {
  Fixture fx;
  fx.Create(1);
  fx.clock.Advance(absl::Hours(24 * 40));
  REQUIRE(fx.store->PurgeExpired().ok());
  fx.store.reset();
  std::unique_ptr<RawDb> raw = RawDb::Open(fx.dir.path());
  REQUIRE(raw != nullptr);
  CHECK(raw->Count(Cf::kFamilies) == 0);
  // The format version (and the log's numbering, once there is one) never expire.
  CHECK(raw->Get(Cf::kMeta, std::string(kFormatVersionKey)).has_value());
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

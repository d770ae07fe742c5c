// RocksDbStore's revocation log beyond the shared contract (conformance_log_test.cc): a
// version-1 database is upgraded with its live revocations.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/clock.h"
#include "storage/codec.h"
#include "storage/rocksdb/rocksdb_store.h"
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
  testing::TempDir dir;
  FakeClock clock;
  std::unique_ptr<TokenStore> store;
  absl::Mutex mu;
  std::vector<RevocationEntry> heard ABSL_GUARDED_BY(mu);

  Fixture() { Reopen(); }
  void Reopen() {
    store.reset();
    RocksDbStoreOptions o;
    o.path = dir.path();
    o.clock = &clock;
    o.block_cache_bytes = 8 << 20;
    absl::StatusOr<std::unique_ptr<TokenStore>> opened = OpenRocksDbStore(o);
    REQUIRE(opened.ok());
    store = *std::move(opened);
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

TEST_CASE("RocksDbStore log: a version-1 database is upgraded with its live revocations", "[storage][log]") {
  Fixture fx;
  FamilyRecord revoked = fx.Create(1);
  REQUIRE(*fx.store->RevokeFamily(revoked.family_id, "logout", "ops", fx.Now()));
  FamilyRecord killed = fx.Create(2, "bob");
  fx.clock.Advance(absl::Seconds(1));
  REQUIRE(fx.store->UpdateSubject(MakeSubjectUpdate("bob", fx.Now())).ok());
  REQUIRE(fx.store->DenyJti("jti-live", fx.Now() + absl::Minutes(5)).ok());
  REQUIRE(fx.store->DenyJti("jti-dead", fx.Now() + absl::Seconds(1)).ok());
  fx.Create(3);  // live and untouched
  fx.clock.Advance(absl::Seconds(2));
  fx.store.reset();
  {  // Make it look like version 1: no log, no numbering, version 1.
    std::unique_ptr<testing::RawDb> raw = testing::RawDb::Open(fx.dir.path());
    REQUIRE(raw != nullptr);
    for (uint64_t seq = 1; seq <= 4; ++seq) raw->Delete(Cf::kRevocations, RevocationKey(seq));
    raw->Delete(Cf::kMeta, std::string(kRevocationSeqKey));
    raw->Put(Cf::kMeta, std::string(kFormatVersionKey), EncodeFormatVersion(1));
    REQUIRE(raw->Count(Cf::kRevocations) == 0);
  }
  fx.Reopen();
  std::vector<RevocationEntry> log = fx.Log();
  std::set<std::pair<Kind, std::string>> got;
  for (const RevocationEntry& e : log) got.emplace(e.kind, e.id);
  CHECK(got == std::set<std::pair<Kind, std::string>>{{Kind::kJti, "jti-live"},
                                                      {Kind::kFamily, revoked.family_id},
                                                      {Kind::kSubject, killed.family_id}});
  fx.Reopen();  // the upgrade runs once
  CHECK(fx.Log().size() == log.size());
}

TEST_CASE("RocksDbStore log: a version-2 database opens as version 3 with its log unchanged",
          "[storage][log][dpop]") {
  Fixture fx;
  FamilyRecord revoked = fx.Create(1);
  REQUIRE(*fx.store->RevokeFamily(revoked.family_id, "logout", "ops", fx.Now()));
  REQUIRE(fx.store->DenyJti("jti-live", fx.Now() + absl::Minutes(5)).ok());
  const std::vector<RevocationEntry> before = fx.Log();
  fx.store.reset();
  {  // Version 2 knew no DPoP replay cache (issue 26).
    std::unique_ptr<testing::RawDb> raw = testing::RawDb::Open(fx.dir.path());
    REQUIRE(raw != nullptr);
    raw->Put(Cf::kMeta, std::string(kFormatVersionKey), EncodeFormatVersion(2));
  }
  fx.Reopen();
  CHECK(fx.Log().size() == before.size());  // no second backfill
  CHECK(*fx.store->RecordProofJti("key", fx.Now() + absl::Minutes(5), fx.Now()));
  fx.store.reset();
  {
    std::unique_ptr<testing::RawDb> raw = testing::RawDb::Open(fx.dir.path());
    REQUIRE(raw != nullptr);
    std::optional<std::string> version = raw->Get(Cf::kMeta, std::string(kFormatVersionKey));
    REQUIRE(version.has_value());
    CHECK(*DecodeFormatVersion(*version) == kStoreFormatVersion);
  }
}

TEST_CASE("RocksDbStore log: the listener hears concurrent revocations in seq order (a watch's "
          "tail relies on it)",
          "[storage][log]") {
  Fixture fx;
  // A listener that takes its time on every other entry: were it called after the log lock
  // is released, another writer's later entry would overtake the one it holds.
  std::atomic<int> calls{0};
  fx.store->SetRevocationListener([&fx, &calls](const RevocationEntry& e) {
    if (calls++ % 2 == 0) absl::SleepFor(absl::Milliseconds(3));
    absl::MutexLock lock(&fx.mu);
    fx.heard.push_back(e);
  });
  std::vector<std::thread> writers;
  std::atomic<int> failed{0};
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&fx, &failed, w] {
      for (int i = 0; i < 20; ++i) {
        if (!fx.store->DenyJti(absl::StrCat("w", w, "-", i), fx.Now() + absl::Minutes(5)).ok()) {
          ++failed;
        }
      }
    });
  }
  for (std::thread& t : writers) t.join();
  CHECK(failed.load() == 0);
  const std::vector<RevocationEntry> heard = fx.Heard();
  REQUIRE(heard.size() == 80);
  for (size_t i = 0; i < heard.size(); ++i) CHECK(heard[i].seq == i + 1);
}

}  // namespace
}  // namespace ta::storage

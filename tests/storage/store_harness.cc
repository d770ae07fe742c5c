// The harness of each store kind (store_harness.h).
#include "tests/storage/store_harness.h"

#include <catch2/catch.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "storage/codec.h"
#include "storage/postgres/postgres_store.h"
#include "storage/postgres/sql_session.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "tests/storage/test_util.h"
#include "tests/support/pg_cluster.h"

namespace ta::storage::testing {

FamilyRecord StoreHarness::Create(uint64_t n, absl::string_view subject) {
  FamilyRecord f = MakeFamily(FamilyIdFor(n), subject, Now());
  absl::Status s = store_->CreateFamily(f, MakeRefresh(f.family_id, 0, Now()), std::nullopt);
  INFO(s.ToString());
  REQUIRE(s.ok());
  return f;
}

namespace {

class RocksDbHarness final : public StoreHarness {
 public:
  RocksDbHarness() { Reopen(); }

  void Reopen() override {
    store_.reset();
    RocksDbStoreOptions o;
    o.path = dir_.path();
    o.clock = &clock_;
    o.block_cache_bytes = 8 << 20;
    // The contract, not the fsyncs, is under test (crash_test.cc covers durability); and the
    // races run hundreds of rounds.
    o.sync_writes = false;
    absl::StatusOr<std::unique_ptr<TokenStore>> opened = OpenRocksDbStore(o);
    INFO(opened.status().ToString());
    REQUIRE(opened.ok());
    store_ = *std::move(opened);
  }

  size_t PhysicalCount(Records records) override {
    store_.reset();  // RawDb needs the database to itself
    size_t n = 0;
    {
      std::unique_ptr<RawDb> raw = RawDb::Open(dir_.path());
      REQUIRE(raw != nullptr);
      n = raw->Count(CfOf(records));
    }
    Reopen();
    return n;
  }

  std::map<std::string, absl::Time> DenylistRows() override {
    store_.reset();  // RawDb needs the database to itself
    std::map<std::string, absl::Time> rows;
    {
      std::unique_ptr<RawDb> raw = RawDb::Open(dir_.path());
      REQUIRE(raw != nullptr);
      for (const auto& [key, value] : raw->Scan(Cf::kDenylist)) {
        absl::StatusOr<absl::Time> expires_at = DecodeDeniedJti(value);
        REQUIRE(expires_at.ok());
        rows[key] = *expires_at;
      }
    }
    Reopen();
    return rows;
  }

  void CorruptFamily(const std::string& family_id) override {
    store_.reset();
    {
      std::unique_ptr<RawDb> raw = RawDb::Open(dir_.path());
      REQUIRE(raw != nullptr);
      raw->Put(Cf::kFamilies, FamilyKey(family_id), "\x01garbage-that-is-no-record\xff\xff");
    }
    Reopen();
  }

 private:
  static Cf CfOf(Records records) {
    switch (records) {
      case Records::kFamilies: return Cf::kFamilies;
      case Records::kRefresh: return Cf::kRefresh;
      case Records::kDenylist: return Cf::kDenylist;
      case Records::kSubjects: return Cf::kSubjects;
      case Records::kSubjectIndex: return Cf::kSubjectFamilies;
      case Records::kRevocations: return Cf::kRevocations;
      case Records::kProofJtis: return Cf::kProofJtis;
    }
    return Cf::kDefault;
  }

  TempDir dir_;
};

class PostgresHarness final : public StoreHarness {
 public:
  PostgresHarness() {
    absl::StatusOr<std::unique_ptr<::ta::testing::TestDatabase>> db =
        ::ta::testing::TestDatabase::Create();
    INFO(db.status().ToString());
    REQUIRE(db.ok());
    db_ = *std::move(db);
    Reopen();
  }
  ~PostgresHarness() override { store_.reset(); }  // before the database is dropped

  void Reopen() override {
    store_.reset();
    store_ = OpenReplica();
  }

  std::unique_ptr<TokenStore> OpenReplica() override {
    PostgresStoreOptions o;
    o.dsn = db_->dsn();
    o.clock = &clock_;
    o.database_clock = &clock_;  // the fake clock stands for the database's too
    o.reap_interval = absl::ZeroDuration();  // the tests purge explicitly
    absl::StatusOr<std::unique_ptr<TokenStore>> opened = OpenPostgresStore(o);
    INFO(opened.status().ToString());
    REQUIRE(opened.ok());
    return *std::move(opened);
  }

  size_t PhysicalCount(Records records) override {
    const char* table = "ta_families";  // the subject index is an index of that table
    if (records == Records::kRefresh) table = "ta_refresh";
    if (records == Records::kDenylist) table = "ta_denylist";
    if (records == Records::kSubjects) table = "ta_subjects";
    if (records == Records::kRevocations) table = "ta_revocations";
    if (records == Records::kProofJtis) table = "ta_dpop_jtis";
    auto rows = Sql(absl::StrCat("SELECT count(*) FROM ", table));
    return std::stoul(rows[0][0]);
  }

  std::map<std::string, absl::Time> DenylistRows() override {
    std::map<std::string, absl::Time> rows;
    for (const auto& row : Sql("SELECT encode(jti, 'hex'), expires_at FROM ta_denylist")) {
      rows[absl::HexStringToBytes(row[0])] = absl::FromUnixMicros(std::stoll(row[1]));
    }
    return rows;
  }

  void CorruptFamily(const std::string& family_id) override {
    Sql(absl::StrCat("UPDATE ta_families SET audience = '\\xffffffff00' WHERE id = '\\x",
                     absl::BytesToHexString(family_id), "'"));
  }

 private:
  std::vector<std::vector<std::string>> Sql(const std::string& sql) {
    absl::StatusOr<std::unique_ptr<SqlSession>> session = SqlSession::Connect(db_->dsn());
    REQUIRE(session.ok());
    absl::StatusOr<std::vector<std::vector<std::string>>> rows = (*session)->Query(sql);
    INFO(rows.status().ToString());
    REQUIRE(rows.ok());
    return *std::move(rows);
  }

  std::unique_ptr<::ta::testing::TestDatabase> db_;
};

}  // namespace

std::unique_ptr<StoreHarness> RocksDb::Make() { return std::make_unique<RocksDbHarness>(); }
std::unique_ptr<StoreHarness> Postgres::Make() { return std::make_unique<PostgresHarness>(); }

}  // namespace ta::storage::testing

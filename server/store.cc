#include "server/store.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "storage/postgres/postgres_store.h"

namespace ta {

absl::Status ValidateStoreOptions(const StoreOptions& o) {
  if (o.engine == "rocksdb") return absl::OkStatus();
  if (o.engine != "postgres") return InvalidField("store", "--store: must be rocksdb or postgres");
  if (o.postgres_pool_size < 1 || o.postgres_pool_size > 1000) {
    return InvalidField("postgres_pool_size", "--postgres_pool_size: must be 1..1000");
  }
  return storage::ValidatePostgresDsn(o.postgres_dsn);  // names --postgres_dsn, never echoes it
}

absl::StatusOr<std::unique_ptr<storage::TokenStore>> OpenStore(
    const StoreOptions& o, const storage::RocksDbStoreOptions& rocksdb) {
  if (o.engine != "postgres") return storage::OpenRocksDbStore(rocksdb);
  std::cerr << "token-authority: store postgres (" << storage::RedactedPostgresDsn(o.postgres_dsn)
            << ")\n";
  storage::PostgresStoreOptions pg;
  pg.dsn = o.postgres_dsn;
  pg.pool_size = o.postgres_pool_size;
  pg.clock = rocksdb.clock;
  pg.purge_margin = rocksdb.purge_margin;
  pg.database_clock = o.postgres_clock_for_testing;
  return storage::OpenPostgresStore(pg);
}

namespace {

class StoreKeyRing final : public token::SharedKeyStore {
 public:
  explicit StoreKeyRing(storage::TokenStore* store) : store_(store) {}
  absl::StatusOr<Versioned> Load(uint64_t if_newer_than) override {
    absl::StatusOr<storage::KeyRingBlob> blob = store_->GetKeyRing(if_newer_than);
    if (!blob.ok()) return blob.status();
    return Versioned{blob->version, std::move(blob->document)};
  }
  absl::Status CompareAndSet(uint64_t expected_version, const std::string& document) override {
    return store_->CompareAndSetKeyRing(expected_version, document);
  }
  absl::StatusOr<absl::Time> ClockNow() override { return store_->ClockNow(); }

 private:
  storage::TokenStore* const store_;
};

}  // namespace

std::unique_ptr<token::SharedKeyStore> KeyRingIn(storage::TokenStore* store) {
  return std::make_unique<StoreKeyRing>(store);
}

}  // namespace ta

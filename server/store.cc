#include "server/store.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "server/base/error.h"
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
  return storage::OpenPostgresStore(pg);
}

}  // namespace ta

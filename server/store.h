// Which TokenStore the server runs on (--store) and opening it: the embedded RocksDB store
// (default) or PostgreSQL (--postgres_dsn), for replicas sharing one database.
//
// Thread-safety: plain functions; OpenStore is called once, at start.
#ifndef TA_SERVER_STORE_H_
#define TA_SERVER_STORE_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/token/key_ring.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "storage/token_store.h"

namespace ta {

struct StoreOptions {
  // "rocksdb" (default): embedded, in <data_dir>/db. "postgres": the database named by
  // postgres_dsn, which several servers may share.
  std::string engine = "rocksdb";
  // libpq connection string or URI, required with engine "postgres". Its password is never
  // logged; PGPASSWORD / PGPASSFILE work as for any libpq program.
  std::string postgres_dsn;
  // PostgreSQL connections the server keeps open. Default 16.
  int postgres_pool_size = 16;
  // TESTS ONLY. Null (default): the database server's own clock, which replicas measure their
  // offset against and the reaper decides by. An in-process test server on a fake clock sets
  // the same fake clock here to stand for the database's.
  const Clock* postgres_clock_for_testing = nullptr;
};

// Checks the store flags, naming the one at fault (--store, --postgres_dsn, ...).
absl::Status ValidateStoreOptions(const StoreOptions& options);

// Opens the chosen store: RocksDB with `rocksdb`, or PostgreSQL with the same clock.
absl::StatusOr<std::unique_ptr<storage::TokenStore>> OpenStore(
    const StoreOptions& options, const storage::RocksDbStoreOptions& rocksdb);

// Where a shared key ring lives (token::SharedKeyStore over `store`'s GetKeyRing and
// CompareAndSetKeyRing). Borrows `store`.
std::unique_ptr<token::SharedKeyStore> KeyRingIn(storage::TokenStore* store);

}  // namespace ta

#endif  // TA_SERVER_STORE_H_

// The PostgreSQL implementation of TokenStore (DESIGN §6, §11), for replicas sharing one
// database.
//
// Atomicity lives in SQL, never in process memory: Rotate is one READ COMMITTED
// transaction that locks the family row and advances its generation by compare-and-set;
// CreateFamily and Rotate take a shared transaction-level advisory lock on their subject,
// UpdateSubject an exclusive one, so a revocation is ordered against every creation and
// rotation of the subject on every replica. Serialization failures and deadlocks (40001,
// 40P01) are retried a bounded number of times, then reported UNAVAILABLE. Writes commit
// with synchronous_commit on. Times are the caller's (`now` in each request), never SQL
// now(). Expired rows are hidden by readers at once and deleted by a reaper thread in
// bounded batches, one replica at a time (advisory lock), purge_margin after they died by
// the earlier of the replica's and the database's clock; PurgeExpired runs it now.
//
// libpq stays inside storage/postgres/; nothing here exposes it.
//
// Thread-safety: the returned store is thread-safe; any number of stores (replicas) may
// share one database.
#ifndef TA_STORAGE_POSTGRES_POSTGRES_STORE_H_
#define TA_STORAGE_POSTGRES_POSTGRES_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "storage/postgres/dsn.h"
#include "storage/token_store.h"

namespace ta::storage {

// The newest schema version this binary knows (the migrations are in schema.cc).
inline constexpr int64_t kPostgresSchemaVersion = 3;

struct PostgresStoreOptions {
  // libpq connection string or URI (multi-host with target_session_attrs=read-write works).
  // Required. A password may be given here, or through PGPASSWORD / PGPASSFILE as libpq
  // reads them; it never appears in a log or error message.
  std::string dsn;

  // Default 16. Connections the store keeps open. Callers beyond this many wait (up to
  // acquire_timeout) for one; raise it with the server's worker_threads.
  int pool_size = 16;

  // Default 5 s. How long a call waits for a free pooled connection before UNAVAILABLE.
  absl::Duration acquire_timeout = absl::Seconds(5);

  // Default 5 s (libpq rounds to whole seconds, at least 2). Used unless the DSN sets
  // connect_timeout itself.
  absl::Duration connect_timeout = absl::Seconds(5);

  // Default 5 s. Server-side limit on every statement (statement_timeout); a statement
  // past it fails UNAVAILABLE instead of holding the caller. A server that does not answer
  // at all (hung) is given up on the client side 1 s later: the connection is closed and the
  // call fails UNAVAILABLE.
  absl::Duration statement_timeout = absl::Seconds(5);

  // Default 8. Attempts of a transaction that hit a serialization failure or deadlock
  // before the call fails UNAVAILABLE.
  int max_attempts = 8;

  // Default 24 h each: as in RocksDbStoreOptions, a family (refresh record) is kept this long
  // past its expires_at, so "expired" can still be told apart from unknown.
  absl::Duration family_retention = absl::Hours(24);
  absl::Duration refresh_retention = absl::Hours(24);

  // Default 1 min. How often the reaper deletes expired rows; 0 disables the thread
  // (PurgeExpired still works).
  absl::Duration reap_interval = absl::Minutes(1);
  // Default 1000. Rows deleted per table per reaper transaction (keeps each one short).
  int reap_batch = 1000;

  // Default 1 min. A row is deleted only once it has been dead this long, by the earlier of
  // `clock` and the database server's clock (clock_timestamp()): every replica that may
  // still serve has a clock within --max_clock_offset of the database's, so a margin of at
  // least that offset (the server sets max_clock_offset + 1 min) keeps every revocation in
  // the log until no replica's clock can still accept a token it kills, and a replica whose
  // clock runs ahead deletes nothing early. Must be >= 0.
  absl::Duration purge_margin = absl::Minutes(1);

  // Default the wall clock. Read by the reaper to decide what has expired; tests inject a
  // ta::FakeClock. Must outlive the store.
  const ta::Clock* clock = ta::Clock::Real();

  // Default null: the database server's clock (SELECT clock_timestamp()), read by ClockNow
  // and the reaper. Tests that move `clock` far from the real time inject a ta::FakeClock to
  // stand for the database's. Must outlive the store.
  const ta::Clock* database_clock = nullptr;
};

// Connects, applies the schema migrations and starts the reaper. INVALID_ARGUMENT
// ("invalid_argument:postgres_dsn" or "invalid_argument:<field>") for bad options;
// UNAVAILABLE ("store_unavailable") when the server cannot be reached;
// FAILED_PRECONDITION ("store_format_too_new") when the database's schema is newer than
// this binary (nothing is written then).
absl::StatusOr<std::unique_ptr<TokenStore>> OpenPostgresStore(const PostgresStoreOptions& options);

}  // namespace ta::storage

#endif  // TA_STORAGE_POSTGRES_POSTGRES_STORE_H_

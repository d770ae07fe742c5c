// A thin RAII layer over libpq for the PostgreSQL store: one connection, its prepared
// statements, binary-format parameters and results, and the mapping of PostgreSQL errors to
// absl::Status with the store's reasons. Only storage/postgres/ includes this header (and so
// libpq-fe.h).
//
// Every parameter and result column travels in binary format: bytea as raw bytes, int8 as
// 8 big-endian bytes, bool as one byte. SQL text never contains a value: statements are
// prepared once per connection and executed with parameters.
//
// Thread-safety: a Connection is used by one thread at a time (the pool hands it out).
#ifndef TA_STORAGE_POSTGRES_PG_CONN_H_
#define TA_STORAGE_POSTGRES_PG_CONN_H_

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "base/time_micros.h"

namespace ta::storage::pg {

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;
struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnDeleter>;

// A prepared statement: a stable name (unique per connection), its SQL with $n placeholders
// (each cast to its type, e.g. $1::bytea, since parameters are sent untyped in binary), and
// a dense index used to remember which statements a connection has prepared.
struct Statement {
  int index;
  const char* name;
  const char* sql;
};
inline constexpr int kMaxStatements = 64;

// Times travel as microseconds since the epoch (base/time_micros.h: InfinitePast and
// InfiniteFuture map to INT64_MIN/INT64_MAX and back, so they round-trip exactly).

// The parameters of one execution, in order ($1, $2, ...). Binary format throughout.
class Params {
 public:
  Params& Bytes(absl::string_view v);
  Params& Int64(int64_t v);
  Params& Time(absl::Time t) { return Int64(TimeToMicros(t)); }
  Params& Bool(bool v);
  // One-dimensional arrays without NULLs (PostgreSQL's binary array format): int8[] and
  // bytea[]; the statement casts the parameter to that type ($n::int8[], $n::bytea[]).
  Params& Int64Array(absl::Span<const int64_t> v);
  Params& BytesArray(absl::Span<const std::string> v);

  int size() const { return static_cast<int>(values_.size()); }
  // Views for PQexecPrepared; valid while this object lives and is not modified.
  std::vector<const char*> Values() const;
  std::vector<int> Lengths() const;

 private:
  std::vector<std::string> values_;
};

// The rows of a successful statement, binary format. Accessors check the wire size of the
// value and report a mismatch (a schema someone changed by hand) as store_corrupt.
class Rows {
 public:
  explicit Rows(ResultPtr result) : result_(std::move(result)) {}
  int size() const { return PQntuples(result_.get()); }
  // Rows affected by an INSERT/UPDATE/DELETE without RETURNING.
  int64_t affected() const;
  bool IsNull(int row, int col) const { return PQgetisnull(result_.get(), row, col) != 0; }
  absl::string_view Bytes(int row, int col) const;
  absl::StatusOr<int64_t> Int64(int row, int col) const;
  absl::StatusOr<absl::Time> Time(int row, int col) const;
  absl::StatusOr<bool> Bool(int row, int col) const;

 private:
  ResultPtr result_;
};

// The SQLSTATE carried by a status made from a PostgreSQL error ("" if none), e.g. "40001".
std::string SqlStateOf(const absl::Status& status);
// Serialization failure or deadlock: the transaction may simply be run again.
bool IsRetryable(const absl::Status& status);

class Connection {
 public:
  // Connects with libpq keywords/values (already validated). `redact` is removed from any
  // error message (the DSN's password). UNAVAILABLE "store_unavailable" on failure.
  // `reply_timeout`: how long one statement may wait for the server's answer before the
  // connection is given up (closed, so broken() and timed_out()) and the statement fails
  // UNAVAILABLE. statement_timeout cannot fire in a server that is hung (stopped, stalled
  // disk), and a kernel that still acknowledges the socket hides it from keepalives.
  static absl::StatusOr<std::unique_ptr<Connection>> Open(
      const std::vector<std::pair<std::string, std::string>>& params, const std::string& redact,
      absl::Duration reply_timeout = absl::Seconds(30));

  // Runs a prepared statement (preparing it on first use on this connection).
  absl::StatusOr<Rows> Exec(const Statement& statement, const Params& params);
  // Runs a parameterless command (BEGIN, COMMIT, ROLLBACK, SET ...).
  absl::Status Command(const char* sql);
  // Runs SQL text with no parameters and returns its rows in text format (tools, tests).
  absl::StatusOr<std::vector<std::vector<std::string>>> QueryText(const std::string& sql);

  // True once the server connection is lost; the pool then drops it.
  bool broken() const { return conn_ == nullptr || PQstatus(conn_.get()) != CONNECTION_OK; }
  // True once a statement got no answer within the reply timeout (the connection is closed).
  bool timed_out() const { return timed_out_; }
  // A commit (COMMIT, or a statement outside a transaction block) whose wait for the
  // synchronous standby the server cancelled (statement_timeout, a cancel, shutdown) took
  // effect on the primary only, and PostgreSQL reports it as a success with a WARNING. Such
  // a statement fails here with UNAVAILABLE "commit_not_replicated": never acknowledged, as
  // a failover could lose it. Recognised by the warning's SQLSTATE 57P01 or its text (the
  // server's lc_messages must be English, PostgreSQL's default).
  // True inside a transaction block (BEGIN without COMMIT/ROLLBACK yet).
  bool in_transaction() const;

 private:
  Connection(ConnPtr conn, std::string redact, absl::Duration reply_timeout)
      : conn_(std::move(conn)), redact_(std::move(redact)), reply_timeout_(reply_timeout) {}
  absl::Status ErrorOf(const PGresult* result, absl::string_view what) const;
  absl::StatusOr<ResultPtr> Check(ResultPtr result, absl::string_view what) const;
  // Collects the answer to what PQsend* (returning `sent`) queued: the first error or the
  // last result, waiting at most the reply timeout.
  absl::StatusOr<ResultPtr> Answer(int sent, absl::string_view what);
  // Until a result can be taken without blocking (or the connection failed: PQgetResult
  // then reports it). False when `deadline` passed first.
  bool AwaitResult(absl::Time deadline);

  ConnPtr conn_;
  std::string redact_;
  absl::Duration reply_timeout_;
  bool timed_out_ = false;
  // Set by the notice receiver when the server gave up waiting for a synchronous standby
  // (see Answer): the statement committed on the primary only.
  bool not_replicated_ = false;
  std::vector<bool> prepared_ = std::vector<bool>(kMaxStatements, false);
};

}  // namespace ta::storage::pg

#endif  // TA_STORAGE_POSTGRES_PG_CONN_H_

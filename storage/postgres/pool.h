// A small pool of PostgreSQL connections for the store.
//
// Connections are made on demand up to `size`; a caller that finds none idle waits up to
// `acquire_timeout` for one. A connection found broken (server restarted, network gone) is
// dropped when returned, and the next Acquire makes a new one. After a failed connect the
// pool does not try again for a backoff (100 ms doubling to 5 s): in between, Acquire fails
// at once with UNAVAILABLE, so a down server costs callers nothing but an error.
//
// Each new connection runs `session_setup` (SET statement_timeout ..., synchronous_commit)
// before it is handed out.
//
// Thread-safety: thread-safe. A Lease is used by one thread.
#ifndef TA_STORAGE_POSTGRES_POOL_H_
#define TA_STORAGE_POSTGRES_POOL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "storage/postgres/dsn.h"
#include "storage/postgres/pg_conn.h"

namespace ta::storage::pg {

class Pool {
 public:
  Pool(ConnectParams params, std::string session_setup, int size, absl::Duration acquire_timeout);
  ~Pool();

  // A connection lent to one caller; returned to the pool (or dropped, if broken or left
  // inside a transaction) when the lease goes.
  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<Connection> conn) : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = default;
    ~Lease();
    Connection& operator*() const { return *conn_; }
    Connection* operator->() const { return conn_.get(); }

   private:
    Pool* pool_;
    std::unique_ptr<Connection> conn_;
  };

  absl::StatusOr<Lease> Acquire();
  // Closes every idle connection: called when one turned out broken (a server restart
  // breaks them all), so the next Acquire connects afresh instead of finding another.
  void DropIdle();

 private:
  void Release(std::unique_ptr<Connection> conn);
  absl::StatusOr<std::unique_ptr<Connection>> Connect();

  const ConnectParams params_;
  const std::string session_setup_;
  const int size_;
  const absl::Duration acquire_timeout_;

  absl::Mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_ ABSL_GUARDED_BY(mu_);
  int open_ ABSL_GUARDED_BY(mu_) = 0;  // idle + lent + being connected
  absl::Time next_connect_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ta::storage::pg

#endif  // TA_STORAGE_POSTGRES_POOL_H_

// A plain SQL session for tools and tests (create a database, plant a row, count rows):
// SQL text in, text rows out, on one connection. Not for the server's calls: no pool, no
// retries, and the SQL is trusted text (never put caller data into it).
//
// Thread-safety: one thread at a time.
#ifndef TA_STORAGE_POSTGRES_SQL_SESSION_H_
#define TA_STORAGE_POSTGRES_SQL_SESSION_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ta::storage {

namespace pg {
class Connection;
}  // namespace pg

class SqlSession {
 public:
  // UNAVAILABLE "store_unavailable" when the server cannot be reached; INVALID_ARGUMENT for a
  // malformed DSN.
  static absl::StatusOr<std::unique_ptr<SqlSession>> Connect(const std::string& dsn);
  ~SqlSession();

  // Runs one or more statements; the rows of the last one, as text (NULL reads as "").
  absl::StatusOr<std::vector<std::vector<std::string>>> Query(const std::string& sql);
  absl::Status Execute(const std::string& sql) { return Query(sql).status(); }

 private:
  explicit SqlSession(std::unique_ptr<pg::Connection> conn);
  std::unique_ptr<pg::Connection> conn_;
};

}  // namespace ta::storage

#endif  // TA_STORAGE_POSTGRES_SQL_SESSION_H_

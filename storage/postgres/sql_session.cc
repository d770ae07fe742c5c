#include "storage/postgres/sql_session.h"

#include <utility>

#include "base/status_macros.h"
#include "storage/postgres/dsn.h"
#include "storage/postgres/pg_conn.h"

namespace ta::storage {

SqlSession::SqlSession(std::unique_ptr<pg::Connection> conn) : conn_(std::move(conn)) {}
SqlSession::~SqlSession() = default;

absl::StatusOr<std::unique_ptr<SqlSession>> SqlSession::Connect(const std::string& dsn) {
  ASSIGN_OR_RETURN(pg::ConnectParams params, pg::ConnectParamsFor(dsn, absl::Seconds(5)));
  ASSIGN_OR_RETURN(std::unique_ptr<pg::Connection> conn,
                   pg::Connection::Open(params.params, params.password));
  return std::unique_ptr<SqlSession>(new SqlSession(std::move(conn)));
}

absl::StatusOr<std::vector<std::vector<std::string>>> SqlSession::Query(const std::string& sql) {
  return conn_->QueryText(sql);
}

}  // namespace ta::storage

// The PostgreSQL connection string (--postgres_dsn): validation, the libpq parameters the
// store connects with, and a redacted form that is safe to log. The password never leaves
// this unit except inside the parameters handed to libpq.
//
// Pure functions; thread-safe.
#ifndef TA_STORAGE_POSTGRES_DSN_H_
#define TA_STORAGE_POSTGRES_DSN_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ta::storage {

// Checks that `dsn` is a libpq connection string ("host=... dbname=...") or URI
// ("postgresql://..."), including multi-host ones. INVALID_ARGUMENT
// "invalid_argument:postgres_dsn" otherwise, with libpq's explanation; the message quotes no
// value of the DSN, only an offending option name that cannot be part of a password.
absl::Status ValidatePostgresDsn(const std::string& dsn);

// The DSN with its password (if any) replaced by "****", as keyword=value pairs. For logs.
std::string RedactedPostgresDsn(const std::string& dsn);

namespace pg {

struct ConnectParams {
  // keyword/value pairs for PQconnectdbParams (expand_dbname off).
  std::vector<std::pair<std::string, std::string>> params;
  // The password given in the DSN, to be scrubbed from any libpq message; "" if none.
  std::string password;
  // How long one statement waits for the server's answer (Connection::Open). Default 30 s;
  // the store sets its statement_timeout + 1 s.
  absl::Duration reply_timeout = absl::Seconds(30);
};

// Parses the DSN and adds the store's defaults where the DSN sets none: connect_timeout
// (whole seconds, at least 2 as libpq requires), application_name "token-authority", and
// TCP keepalives plus a 10 s tcp_user_timeout, so a vanished server is noticed instead of
// waited for (both apply to TCP only; a Unix socket reports a dead server at once).
absl::StatusOr<ConnectParams> ConnectParamsFor(const std::string& dsn,
                                               absl::Duration connect_timeout);

}  // namespace pg
}  // namespace ta::storage

#endif  // TA_STORAGE_POSTGRES_DSN_H_

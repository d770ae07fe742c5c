#include "storage/postgres/pg_conn.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "base/error.h"

namespace ta::storage::pg {
namespace {

constexpr absl::string_view kSqlStateUrl = "type.tokenauthority.dev/sqlstate";
constexpr int kBinary = 1;

void AppendBigEndian(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

void AppendBigEndian32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

// The header of a one-dimensional binary array (array_recv): dimensions, no-NULLs flag,
// element type, then the dimension's length and lower bound.
std::string ArrayHeader(uint32_t element_oid, size_t count) {
  std::string out;
  AppendBigEndian32(&out, 1);
  AppendBigEndian32(&out, 0);
  AppendBigEndian32(&out, element_oid);
  AppendBigEndian32(&out, static_cast<uint32_t>(count));
  AppendBigEndian32(&out, 1);
  return out;
}

constexpr uint32_t kByteaOid = 17, kInt8Oid = 20;

absl::Status Corrupt(absl::string_view what) {
  return ta::Error(absl::StatusCode::kDataLoss, "store_corrupt",
                   absl::StrCat("token store: corrupt ", what));
}

// Class XX (internal error) 001/002: PostgreSQL itself found corrupt data or index pages.
bool IsCorruption(absl::string_view sqlstate) { return sqlstate == "XX001" || sqlstate == "XX002"; }

}  // namespace

Params& Params::Bytes(absl::string_view v) {
  values_.emplace_back(v);
  return *this;
}

Params& Params::Int64(int64_t v) {
  std::string out;
  AppendBigEndian(&out, static_cast<uint64_t>(v));
  values_.push_back(std::move(out));
  return *this;
}

Params& Params::Int64Array(absl::Span<const int64_t> v) {
  std::string out = ArrayHeader(kInt8Oid, v.size());
  for (int64_t x : v) {
    AppendBigEndian32(&out, sizeof(int64_t));
    AppendBigEndian(&out, static_cast<uint64_t>(x));
  }
  values_.push_back(std::move(out));
  return *this;
}

Params& Params::BytesArray(absl::Span<const std::string> v) {
  std::string out = ArrayHeader(kByteaOid, v.size());
  for (const std::string& x : v) {
    AppendBigEndian32(&out, static_cast<uint32_t>(x.size()));
    out.append(x);
  }
  values_.push_back(std::move(out));
  return *this;
}

Params& Params::Bool(bool v) {
  values_.emplace_back(1, v ? '\1' : '\0');
  return *this;
}

std::vector<const char*> Params::Values() const {
  std::vector<const char*> out;
  for (const std::string& v : values_) out.push_back(v.data());
  return out;
}

std::vector<int> Params::Lengths() const {
  std::vector<int> out;
  for (const std::string& v : values_) out.push_back(static_cast<int>(v.size()));
  return out;
}

int64_t Rows::affected() const {
  int64_t n = 0;
  absl::string_view text = PQcmdTuples(result_.get());
  for (char c : text) n = n * 10 + (c - '0');
  return n;
}

absl::string_view Rows::Bytes(int row, int col) const {
  return absl::string_view(PQgetvalue(result_.get(), row, col),
                           static_cast<size_t>(PQgetlength(result_.get(), row, col)));
}

absl::StatusOr<int64_t> Rows::Int64(int row, int col) const {
  absl::string_view v = Bytes(row, col);
  if (v.size() != 8 || IsNull(row, col)) return Corrupt(absl::StrCat("int8 column ", col));
  uint64_t out = 0;
  for (char c : v) out = (out << 8) | static_cast<uint8_t>(c);
  return static_cast<int64_t>(out);
}

absl::StatusOr<absl::Time> Rows::Time(int row, int col) const {
  absl::StatusOr<int64_t> micros = Int64(row, col);
  if (!micros.ok()) return micros.status();
  return MicrosToTime(*micros);
}

absl::StatusOr<bool> Rows::Bool(int row, int col) const {
  absl::string_view v = Bytes(row, col);
  if (v.size() != 1 || IsNull(row, col)) return Corrupt(absl::StrCat("bool column ", col));
  return v[0] != 0;
}

std::string SqlStateOf(const absl::Status& status) {
  auto state = status.GetPayload(kSqlStateUrl);
  return state ? std::string(*state) : std::string();
}

bool IsRetryable(const absl::Status& status) {
  const std::string state = SqlStateOf(status);
  return state == "40001" || state == "40P01";
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(
    const std::vector<std::pair<std::string, std::string>>& params, const std::string& redact,
    absl::Duration reply_timeout) {
  std::vector<const char*> keywords, values;
  for (const auto& [key, value] : params) {
    keywords.push_back(key.c_str());
    values.push_back(value.c_str());
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);
  ConnPtr conn(PQconnectdbParams(keywords.data(), values.data(), /*expand_dbname=*/0));
  if (conn == nullptr || PQstatus(conn.get()) != CONNECTION_OK) {
    std::string why = conn == nullptr ? "out of memory" : PQerrorMessage(conn.get());
    if (!redact.empty()) absl::StrReplaceAll({{redact, "****"}}, &why);
    return ta::Error(absl::StatusCode::kUnavailable, "store_unavailable",
                     absl::StrCat("token store: cannot connect to PostgreSQL: ",
                                  absl::StripTrailingAsciiWhitespace(why)));
  }
  // Server notices (e.g. "terminating connection due to shutdown") would go to stderr; the
  // errors that matter reach the caller as statuses.
  PGconn* raw = conn.get();
  std::unique_ptr<Connection> connection(new Connection(std::move(conn), redact, reply_timeout));
  PQsetNoticeReceiver(
      raw,
      [](void* self, const PGresult* notice) {
        const char* state = PQresultErrorField(notice, PG_DIAG_SQLSTATE);
        const char* message = PQresultErrorField(notice, PG_DIAG_MESSAGE_PRIMARY);
        const char* detail = PQresultErrorField(notice, PG_DIAG_MESSAGE_DETAIL);
        const bool admin_shutdown = state != nullptr && absl::string_view(state) == "57P01";
        const bool sync_rep =
            (message != nullptr &&
             absl::StrContains(message, "wait for synchronous replication")) ||
            (detail != nullptr && absl::StrContains(detail, "committed locally"));
        if (admin_shutdown || sync_rep) static_cast<Connection*>(self)->not_replicated_ = true;
      },
      connection.get());
  return connection;
}

absl::Status Connection::ErrorOf(const PGresult* result, absl::string_view what) const {
  const char* state = result == nullptr ? nullptr : PQresultErrorField(result, PG_DIAG_SQLSTATE);
  const char* primary =
      result == nullptr ? nullptr : PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
  // The primary message only: DETAIL may quote key values.
  std::string why = primary != nullptr  ? primary
                    : conn_ == nullptr ? "connection given up"
                                       : PQerrorMessage(conn_.get());
  if (!redact_.empty()) absl::StrReplaceAll({{redact_, "****"}}, &why);
  const std::string sqlstate = state != nullptr ? state : "";
  const std::string message =
      absl::StrCat("token store: ", what, ": ", sqlstate.empty() ? "" : sqlstate + " ",
                   absl::StripTrailingAsciiWhitespace(why));
  absl::Status s = IsCorruption(sqlstate)
                       ? ta::Error(absl::StatusCode::kDataLoss, "store_corrupt", message)
                       : ta::Error(absl::StatusCode::kUnavailable, "store_unavailable", message);
  if (!sqlstate.empty()) s.SetPayload(kSqlStateUrl, absl::Cord(sqlstate));
  return s;
}

absl::StatusOr<ResultPtr> Connection::Check(ResultPtr result, absl::string_view what) const {
  ExecStatusType st = result == nullptr ? PGRES_FATAL_ERROR : PQresultStatus(result.get());
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return result;
  return ErrorOf(result.get(), what);
}

bool Connection::AwaitResult(absl::Time deadline) {
  while (true) {
    const int flushed = PQflush(conn_.get());  // 1: more to send
    if (flushed < 0 || (flushed == 0 && !PQisBusy(conn_.get()))) return true;
    const int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left_ms <= 0) return false;
    pollfd p{PQsocket(conn_.get()), static_cast<short>(POLLIN | (flushed == 1 ? POLLOUT : 0)),
             0};
    const int n = poll(&p, 1, static_cast<int>(std::min<int64_t>(left_ms, 60'000)));
    if (n < 0 && errno != EINTR) return true;
    if (n > 0 && (p.revents & POLLIN) != 0 && PQconsumeInput(conn_.get()) == 0) return true;
    if (n > 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) {
      PQconsumeInput(conn_.get());
      return true;
    }
  }
}

absl::StatusOr<ResultPtr> Connection::Answer(int sent, absl::string_view what) {
  if (conn_ == nullptr || sent != 1) return ErrorOf(nullptr, what);
  not_replicated_ = false;
  const absl::Time deadline = absl::Now() + reply_timeout_;
  ResultPtr answer;
  while (true) {
    if (!AwaitResult(deadline)) {
      timed_out_ = true;
      conn_.reset();  // its state is unknown: give it up (the pool drops it)
      return ta::Error(absl::StatusCode::kUnavailable, "store_unavailable",
                       absl::StrCat("token store: ", what, ": no answer from PostgreSQL within ",
                                    absl::FormatDuration(reply_timeout_)));
    }
    ResultPtr next(PQgetResult(conn_.get()));
    if (next == nullptr) break;
    // As PQexec: the last result, unless an earlier one failed.
    const ExecStatusType st = answer == nullptr ? PGRES_COMMAND_OK : PQresultStatus(answer.get());
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) answer = std::move(next);
  }
  if (not_replicated_) {
    return ta::Error(absl::StatusCode::kUnavailable, "commit_not_replicated",
                     absl::StrCat("token store: ", what,
                                  ": committed on the primary but not confirmed by the "
                                  "synchronous standby (not acknowledged)"));
  }
  return Check(std::move(answer), what);
}

absl::StatusOr<Rows> Connection::Exec(const Statement& statement, const Params& params) {
  if (!prepared_[statement.index]) {
    absl::StatusOr<ResultPtr> prepared =
        Answer(conn_ == nullptr ? 0
                                : PQsendPrepare(conn_.get(), statement.name, statement.sql, 0,
                                                nullptr),
               absl::StrCat("prepare ", statement.name));
    if (!prepared.ok()) return prepared.status();
    prepared_[statement.index] = true;
  }
  std::vector<const char*> values = params.Values();
  std::vector<int> lengths = params.Lengths();
  std::vector<int> formats(values.size(), kBinary);
  absl::StatusOr<ResultPtr> result =
      Answer(conn_ == nullptr ? 0
                              : PQsendQueryPrepared(conn_.get(), statement.name, params.size(),
                                                    values.data(), lengths.data(), formats.data(),
                                                    kBinary),
             statement.name);
  if (!result.ok()) return result.status();
  return Rows(*std::move(result));
}

absl::Status Connection::Command(const char* sql) {
  return Answer(conn_ == nullptr ? 0 : PQsendQuery(conn_.get(), sql), sql).status();
}

absl::StatusOr<std::vector<std::vector<std::string>>> Connection::QueryText(
    const std::string& sql) {
  absl::StatusOr<ResultPtr> result =
      Answer(conn_ == nullptr ? 0 : PQsendQuery(conn_.get(), sql.c_str()), "query");
  if (!result.ok()) return result.status();
  std::vector<std::vector<std::string>> rows;
  const PGresult* r = result->get();
  for (int i = 0; i < PQntuples(r); ++i) {
    std::vector<std::string>& row = rows.emplace_back();
    for (int j = 0; j < PQnfields(r); ++j) row.emplace_back(PQgetvalue(r, i, j));
  }
  return rows;
}

bool Connection::in_transaction() const {
  return conn_ == nullptr || PQtransactionStatus(conn_.get()) != PQTRANS_IDLE;
}

}  // namespace ta::storage::pg

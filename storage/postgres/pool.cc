#include "storage/postgres/pool.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/error.h"

namespace ta::storage::pg {
namespace {

constexpr absl::Duration kFirstBackoff = absl::Milliseconds(100);
constexpr absl::Duration kMaxBackoff = absl::Seconds(5);

absl::Status Unavailable(absl::string_view why) {
  return ta::Error(absl::StatusCode::kUnavailable, "store_unavailable",
                   absl::StrCat("token store: ", why));
}

}  // namespace

Pool::Pool(ConnectParams params, std::string session_setup, int size,
           absl::Duration acquire_timeout)
    : params_(std::move(params)),
      session_setup_(std::move(session_setup)),
      size_(size),
      acquire_timeout_(acquire_timeout),
      backoff_(kFirstBackoff) {}

Pool::~Pool() {
  absl::MutexLock lock(&mu_);
  idle_.clear();
}

Pool::Lease::~Lease() {
  if (conn_ != nullptr) pool_->Release(std::move(conn_));
}

absl::StatusOr<Pool::Lease> Pool::Acquire() {
  const absl::Time deadline = absl::Now() + acquire_timeout_;
  {
    absl::MutexLock lock(&mu_);
    auto can_proceed = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return !idle_.empty() || open_ < size_;
    };
    if (!mu_.AwaitWithDeadline(absl::Condition(&can_proceed), deadline)) {
      return Unavailable("no PostgreSQL connection free within the acquire timeout");
    }
    if (!idle_.empty()) {
      std::unique_ptr<Connection> conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(conn));
    }
    if (absl::Now() < next_connect_) {
      return Unavailable("PostgreSQL unreachable; reconnecting after a backoff");
    }
    ++open_;  // reserve the slot while connecting outside the lock
  }
  absl::StatusOr<std::unique_ptr<Connection>> conn = Connect();
  absl::MutexLock lock(&mu_);
  if (!conn.ok()) {
    --open_;
    // Callers that found no idle connection connect at once; their failures are one failed
    // attempt, not one each (or a one-second outage would back the pool off to the cap).
    if (absl::Now() >= next_connect_) {
      next_connect_ = absl::Now() + backoff_;
      backoff_ = std::min(backoff_ * 2, kMaxBackoff);
    }
    return conn.status();
  }
  backoff_ = kFirstBackoff;
  next_connect_ = absl::InfinitePast();
  return Lease(this, *std::move(conn));
}

absl::StatusOr<std::unique_ptr<Connection>> Pool::Connect() {
  absl::StatusOr<std::unique_ptr<Connection>> conn =
      Connection::Open(params_.params, params_.password, params_.reply_timeout);
  if (!conn.ok()) return conn.status();
  if (absl::Status s = (*conn)->Command(session_setup_.c_str()); !s.ok()) return s;
  return conn;
}

void Pool::DropIdle() {
  std::vector<std::unique_ptr<Connection>> dropped;
  absl::MutexLock lock(&mu_);
  open_ -= static_cast<int>(idle_.size());
  dropped.swap(idle_);
}

void Pool::Release(std::unique_ptr<Connection> conn) {
  // A connection left mid-transaction (an error between BEGIN and COMMIT whose ROLLBACK
  // failed) is not safe to reuse either.
  const bool reusable = !conn->broken() && !conn->in_transaction();
  absl::MutexLock lock(&mu_);
  if (reusable) {
    idle_.push_back(std::move(conn));
  } else {
    --open_;
  }
}

}  // namespace ta::storage::pg

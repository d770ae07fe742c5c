// The audit trail (issue 16): one event per security action -- a session issued, a refresh and
// its outcome, reuse detected, a revocation at each width, a key rotation, an admin read of
// sessions, a refused caller -- with who, what, on which subject/family/token id, and how it
// ended. Never a token, a secret or a key: only identifiers that are public anyway (the
// family id is the tokens' `sid`, the jti their `jti`, the kid the JWKS's).
//
// The core and the faces report events to an AuditSink; server/audit_log.h writes them as
// JSON lines. A sink must be thread-safe and must not block for long (it runs on the calling
// thread, after the action has been decided).
#ifndef TA_SERVER_CORE_AUDIT_H_
#define TA_SERVER_CORE_AUDIT_H_

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace ta::core {

struct AuditEvent {
  absl::Time time{};
  std::string action{};   // e.g. "session.issue" (see kAuditActions)
  std::string outcome{};  // "ok", "refused" (the request was judged and said no), "error"
  std::string reason{};   // machine reason: "rotated", "grace_replay", a ta-reason, ...
  std::string caller{};   // the caller's name ("" when it could not be authenticated)
  std::string rpc{};      // the call that did it, e.g. "RevokeFamily"
  std::string subject{};
  std::string client_id{};
  std::string family_id{};  // base64url, as in `sid`
  std::string jti{};
  std::string kid{};
  std::string note{};     // the caller's free-text reason for a revocation; a backup's dir
  std::string peer{};     // an unauthenticated caller's address (auth.refused, public clients)
  uint64_t count = 0;     // a summary of refusals (RefusalLimiter): how many it stands for
};

// Every action the trail records.
inline constexpr const char* kAuditActions[] = {
    "session.issue",        "session.refresh",  "session.reuse_detected", "revoke.token",
    "revoke.family",        "revoke.subject",   "key.rotate",             "admin.list_sessions",
    "admin.get_session",    "auth.refused",     "admin.backup",
};

class AuditSink {
 public:
  virtual ~AuditSink() = default;
  virtual void Record(const AuditEvent& event) = 0;
};

// Fills outcome and reason from how the action ended: OK -> "ok" (reason kept if set),
// UNAUTHENTICATED / PERMISSION_DENIED / INVALID_ARGUMENT / FAILED_PRECONDITION / NOT_FOUND /
// ABORTED -> "refused", anything else -> "error"; the reason is the status's ta-reason.
void SetOutcome(const absl::Status& status, AuditEvent* event);

// Whether the trail collapses `event` through a RefusalLimiter rather than writing each one:
// a refused caller ("auth.refused"), and a refresh refused to an unauthenticated caller (one
// with a `peer`: the token endpoint's public clients), which changed nothing. A reuse
// detection ("session.reuse_detected": a family revoked) is always written.
bool IsCollapsibleRefusal(const AuditEvent& event);

// Bounds what refused callers make the trail write (issue 22: every unauthenticated call wrote
// an "auth.refused" line, so refused traffic could fill the disk). Refusals are keyed by
// (action, peer, caller, reason): in each interval the first of a key is written at once, the
// others only counted; when the interval is over, one summary per key that had more (the key's
// action, with `count` = how many were not written, the interval's start in `note`). At most
// `max_keys` keys per interval; refusals beyond share one key per action with peer "*" (two
// collapsible actions: IsCollapsibleRefusal). So per interval at
// most 2 * (max_keys + 2) lines, whatever the traffic.
//
// Not thread-safe: the sink that owns it serialises calls.
struct RefusalLimiterOptions {
  // How long one aggregation interval lasts. Default 60 s.
  absl::Duration interval = absl::Seconds(60);
  // Distinct (peer, caller, reason) keys per interval before the rest are lumped. Default 100.
  size_t max_keys = 100;
};

class RefusalLimiter {
 public:
  explicit RefusalLimiter(RefusalLimiterOptions options = {}) : options_(options) {}

  // The events to write now for the refusal `event` at `now`: the summaries of an interval
  // that has ended, then `event` itself when it is the first of its key in this interval.
  std::vector<AuditEvent> Admit(const AuditEvent& event, absl::Time now);
  // The summaries of an interval that has ended by `now` (all pending ones with `force`),
  // starting a new interval.
  std::vector<AuditEvent> Due(absl::Time now, bool force = false);

 private:
  // action, peer, caller, reason
  using Key = std::tuple<std::string, std::string, std::string, std::string>;
  struct Pending {
    uint64_t more = 0;  // refusals of this key not written
    std::string rpc;    // the last one's
  };
  const RefusalLimiterOptions options_;
  absl::Time interval_start_ = absl::InfinitePast();
  std::map<Key, Pending> keys_;
};

}  // namespace ta::core

#endif  // TA_SERVER_CORE_AUDIT_H_

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

#include <string>

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

}  // namespace ta::core

#endif  // TA_SERVER_CORE_AUDIT_H_

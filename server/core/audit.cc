#include "server/core/audit.h"

#include "server/base/error.h"

namespace ta::core {

void SetOutcome(const absl::Status& status, AuditEvent* event) {
  if (status.ok()) {
    event->outcome = "ok";
    return;
  }
  switch (status.code()) {
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAborted:
      event->outcome = "refused";
      break;
    default:
      event->outcome = "error";
  }
  event->reason = ReasonOf(status);
}

}  // namespace ta::core

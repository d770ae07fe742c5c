// Errors carry a machine-readable reason (DESIGN §8) next to the human message.
//
// The reason rides in an absl::Status payload, so no layer ever branches on message text.
// server/rpc copies it into the gRPC status (trailing metadata `ta-reason`) in one place.
// Reasons are short snake_case words documented in the proto, e.g. "invalid_token",
// "refresh_token_reused", "invalid_argument:subject". Messages never contain token
// material or key bytes.
#ifndef TA_BASE_ERROR_H_
#define TA_BASE_ERROR_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"

namespace ta {

inline constexpr absl::string_view kReasonPayloadUrl = "type.tokenauthority.dev/reason";

// Returns a non-OK status with `code`, `message` and the machine-readable `reason`.
inline absl::Status Error(absl::StatusCode code, absl::string_view reason,
                          absl::string_view message) {
  absl::Status s(code, message);
  s.SetPayload(kReasonPayloadUrl, absl::Cord(reason));
  return s;
}

// The reason attached by Error(), or "" when the status has none (or is OK).
inline std::string ReasonOf(const absl::Status& status) {
  // absl::optional here: Debian builds Abseil with its own optional, not std::optional.
  auto reason = status.GetPayload(kReasonPayloadUrl);
  return reason ? std::string(*reason) : std::string();
}

// Shorthand for the most common kind: a bad request field, reason "invalid_argument:<field>".
inline absl::Status InvalidField(absl::string_view field, absl::string_view message) {
  return Error(absl::StatusCode::kInvalidArgument,
               std::string("invalid_argument:") + std::string(field), message);
}

}  // namespace ta

#endif  // TA_BASE_ERROR_H_

// The one place where an absl::Status becomes an HTTP answer (DESIGN §8, §12), as
// server/rpc/status.cc is for gRPC: status code, and a JSON body in the form of RFC 6749 §5.2
// (used by RFC 7662 and RFC 7009): {"error": "...", "error_description": "<reason>: <message>"}.
//
//   INVALID_ARGUMENT, OUT_OF_RANGE, FAILED_PRECONDITION -> 400 invalid_request
//   UNAUTHENTICATED -> 401 invalid_client (with WWW-Authenticate: Basic and Bearer)
//   PERMISSION_DENIED -> 403 unauthorized_client
//   NOT_FOUND -> 404 not_found
//   RESOURCE_EXHAUSTED, UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED -> 503 temporarily_unavailable
//     (with Retry-After: 1)
//   anything else -> 500 server_error
// Reasons that name a transport problem take precedence: "method_not_allowed" 405,
// "body_too_large" 413, "header_too_large" 431, "bad_request" 400. Stateless; thread-safe.
#ifndef TA_SERVER_HTTP_ERRORS_H_
#define TA_SERVER_HTTP_ERRORS_H_

#include <string>

#include "absl/status/status.h"
#include "server/http/message.h"

namespace ta::http {

inline constexpr char kRealm[] = "token-authority";

struct HttpError {
  int status = 500;
  std::string error;  // the RFC 6749 error code
};

HttpError ClassifyError(const absl::Status& status);

// The complete answer for a non-OK `status`.
HttpResponse ErrorResponse(const absl::Status& status);

}  // namespace ta::http

#endif  // TA_SERVER_HTTP_ERRORS_H_

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
// "body_too_large" 413, "header_too_large" 431, "bad_request" 400; and "rate_limited" 429
// temporarily_unavailable (the caller adds Retry-After).
//
// The token endpoint (POST /oauth2/token) speaks RFC 6749 §5.2 and RFC 9449 §5 and §8 to the
// client itself, so its refusals are mapped first by reason (TokenErrorResponse):
//   any dpop_* reason, proof_required, proof_key_mismatch -> 400 invalid_dpop_proof
//     (with WWW-Authenticate: DPoP error="invalid_dpop_proof", algs="...")
//   use_dpop_nonce -> 400 use_dpop_nonce (with WWW-Authenticate and the DPoP-Nonce header)
//   invalid_scope -> 400 invalid_scope; unsupported_grant_type -> 400 unsupported_grant_type
//   any other UNAUTHENTICATED or PERMISSION_DENIED (an invalid, expired, reused or purged
//     refresh token, a revoked or expired session, client_mismatch) -> 400 invalid_grant
//   everything else as above (invalid_request, 429, 503 temporarily_unavailable, 500).
// Every answer's error_description starts with the core's reason ("<reason>: <message>"),
// as on the other routes. Stateless; thread-safe.
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

// The token endpoint's classification (see above).
HttpError ClassifyTokenError(const absl::Status& status);

// The token endpoint's answer for a non-OK `status`; `dpop_nonce` ("" when nonces are off)
// goes into the DPoP-Nonce header of a use_dpop_nonce refusal.
HttpResponse TokenErrorResponse(const absl::Status& status, absl::string_view dpop_nonce);

}  // namespace ta::http

#endif  // TA_SERVER_HTTP_ERRORS_H_

// RFC 7662 §2.2 introspection responses (and RFC 6749 §5.2 errors) as JSON, shaped in one
// place for both faces that answer POST /oauth2/introspect: the authority's HTTP face
// (server/http/documents.h) and the verifier sidecar's (client/sidecar), so that a caller
// cannot tell the two apart. Rendered
// with RapidJSON's writer (every string escaped). Pure functions; thread-safe.
#ifndef TA_TOKEN_INTROSPECTION_JSON_H_
#define TA_TOKEN_INTROSPECTION_JSON_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "token/binding.h"

namespace ta::token {

// What an introspection decided about a token: the fields of the response. Unused unless
// `active`.
struct IntrospectionFields {
  bool active = false;
  std::string token_type;  // "access_token" or "refresh_token"
  std::string subject, family_id, jti, client_id, scope;
  std::vector<std::string> audience;
  absl::Time issued_at = absl::UnixEpoch();
  absl::Time expires_at = absl::UnixEpoch();
  Confirmation cnf;  // the token's binding; empty for a bearer token
};

// Inactive: exactly {"active":false} (RFC 7662 §2.2: nothing else about the token). Active,
// in this order: active, scope, client_id, sub, aud (a string when one, else an array), iss
// (`issuer`), exp, iat (Unix seconds), jti (when set), token_type ("Bearer" for an access
// token, RFC 6749 §7.1; "DPoP" for one bound to a DPoP key, RFC 9449 §6.2; a refresh token's
// token_type as it is), sid (the family id), and cnf (RFC 7800 §3.1: jkt and/or x5t#S256)
// for a bound token.
std::string IntrospectionResponseJson(const IntrospectionFields& in, absl::string_view issuer);

// The error answer of such an endpoint, RFC 6749 §5.2: {"error": ..., "error_description":
// ...}; characters §5.2 does not allow in a description ('"', '\', controls, non-ASCII)
// become spaces.
std::string OAuthErrorJson(absl::string_view error, absl::string_view description);

}  // namespace ta::token

#endif  // TA_TOKEN_INTROSPECTION_JSON_H_

// The JSON documents of the HTTP face: RFC 7662 introspection answers, RFC 8414 / OpenID
// Connect Discovery metadata, RFC 6749 §5.2 errors, and the JWKS entity tag. Rendered with
// RapidJSON's writer (correct escaping of every string). Pure functions; thread-safe.
#ifndef TA_SERVER_HTTP_DOCUMENTS_H_
#define TA_SERVER_HTTP_DOCUMENTS_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "server/core/authority.h"

namespace ta::http {

// {"error": ..., "error_description": ...}; characters RFC 6749 §5.2 does not allow in a
// description ('"', '\', controls, non-ASCII) become spaces (token::OAuthErrorJson: the
// verifier sidecar answers the same).
std::string ErrorJson(absl::string_view error, absl::string_view description);

// A health answer: {"status": ...} and, when `reason` is not empty, "reason".
std::string StatusJson(absl::string_view status, absl::string_view reason);

// RFC 7662 §2.2, shaped by token::IntrospectionResponseJson (token/introspection_json.h: the
// verifier sidecar answers the same). Inactive: exactly {"active":false}. Active: scope,
// client_id, sub, aud (string when one, else array), iss, exp, iat, jti (access tokens),
// token_type ("Bearer" or "DPoP" for access tokens; "refresh_token" for refresh tokens), sid
// (the family id), cnf for a bound token.
std::string IntrospectionJson(const core::Introspection& in, absl::string_view issuer);

// RFC 6749 §5.1, the token endpoint's success: access_token, token_type (pair.token_type:
// "DPoP" for a session bound to a DPoP key, else "Bearer"), expires_in, refresh_token, and
// scope: the scope granted, as the access token carries it.
std::string TokenResponseJson(const core::TokenPair& pair);

// The JWS algorithms a DPoP proof may use (token/dpop.h DpopPolicy), as RFC 9449 §5.1's
// dpop_signing_alg_values_supported lists them: EdDSA also under RFC 9864's "Ed25519".
std::vector<std::string> DpopSigningAlgs();

struct MetadataOptions {
  std::string issuer;    // the tokens' iss, verbatim
  std::string base_url;  // scheme://host[:port][/path], no trailing '/'
  bool openid = false;   // add the OpenID Connect Discovery 1.0 fields
};

// RFC 8414 §2 (and OIDC Discovery §3 with `openid`): issuer, jwks_uri, token_endpoint
// (refresh_token grant only, public clients: auth method "none"),
// introspection_endpoint, revocation_endpoint, their auth methods, the signing algorithms,
// and RFC 9449 §5.1's dpop_signing_alg_values_supported.
std::string MetadataJson(const MetadataOptions& options);

// A strong entity tag for a JWKS document: "\"" + base64url(SHA-256(jwks))[:22] + "\"".
std::string JwksEtag(absl::string_view jwks_json);

// Whether an If-None-Match header value matches `etag` (RFC 9110 §13.1.2: weak comparison,
// a list, or "*").
bool EtagMatches(absl::string_view if_none_match, absl::string_view etag);

}  // namespace ta::http

#endif  // TA_SERVER_HTTP_DOCUMENTS_H_

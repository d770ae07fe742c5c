// JWT access tokens (RFC 9068) as the server issues and accepts them: the algorithm
// names, the claim set, its JSON encoding and the time/issuer/audience checks.
//
// Signing and key lookup live in key_ring.h (and jws.h below it); this unit only knows
// the claims. Every rejection carries a machine-readable reason (ta::ReasonOf) from
// `reason::` below; messages never contain token material.
// Thread-safety: pure functions and plain structs.
#ifndef TA_TOKEN_JWT_H_
#define TA_TOKEN_JWT_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "token/binding.h"

namespace ta::token {

// JWS algorithms the server supports (RFC 7518 §3, RFC 8037 §3.1). Each key is bound
// to exactly one (RFC 8725 §3.1).
enum class Algorithm { kES256, kEdDSA, kRS256, kPS256, kHS256 };

// "ES256", "EdDSA", "RS256", "PS256", "HS256".
absl::string_view AlgorithmName(Algorithm alg);

// The inverse of AlgorithmName (exact, case-sensitive). "none" and every other name
// are INVALID_ARGUMENT.
absl::StatusOr<Algorithm> ParseAlgorithm(absl::string_view name);

// Machine-readable reasons for rejected tokens (code UNAUTHENTICATED unless noted).
namespace reason {
inline constexpr absl::string_view kTokenTooLarge = "token_too_large";  // INVALID_ARGUMENT
inline constexpr absl::string_view kMalformedToken = "malformed_token";
inline constexpr absl::string_view kAlgNone = "alg_none";
inline constexpr absl::string_view kUnsupportedAlg = "unsupported_alg";
inline constexpr absl::string_view kUnknownKid = "unknown_kid";
inline constexpr absl::string_view kForbiddenHeader = "forbidden_header";
inline constexpr absl::string_view kWrongTyp = "wrong_typ";
inline constexpr absl::string_view kAlgMismatch = "alg_mismatch";
inline constexpr absl::string_view kBadSignature = "bad_signature";
inline constexpr absl::string_view kWrongIssuer = "wrong_issuer";
inline constexpr absl::string_view kAudienceMismatch = "audience_mismatch";
inline constexpr absl::string_view kTokenExpired = "token_expired";
inline constexpr absl::string_view kTokenNotYetValid = "token_not_yet_valid";
inline constexpr absl::string_view kIatInFuture = "iat_in_future";
inline constexpr absl::string_view kMissingClaim = "missing_claim";
inline constexpr absl::string_view kExtraClaims = "invalid_argument:extra_claims";
}  // namespace reason

// Limits on caller-supplied extra claims (DESIGN §8).
inline constexpr size_t kMaxExtraClaims = 64;
inline constexpr size_t kMaxExtraClaimsBytes = 16 * 1024;

// RFC 9068 access-token claims. Required when signing: iss, sub, aud (non-empty, no
// empty entries), exp, iat, jti, client_id. Optional: nbf (omitted when
// InfinitePast()), scope and sid (omitted when empty), extra_json.
struct JwtClaims {
  std::string iss, sub;
  std::vector<std::string> aud;  // a JSON string when size() == 1, an array otherwise
  absl::Time iat = absl::InfinitePast();
  absl::Time nbf = absl::InfinitePast();
  absl::Time exp = absl::InfinitePast();  // NumericDate: whole seconds (floored)
  std::string jti, client_id, scope, sid;
  // RFC 7800 `cnf` of a sender-constrained token (binding.h): {"jkt": ...} (RFC 9449 §6) or
  // {"x5t#S256": ...} (RFC 8705 §3.1); omitted when empty. A token whose cnf is not an
  // object with exactly one of them, a non-empty string, is malformed.
  Confirmation cnf;
  std::string extra_json;  // "" or a JSON object text of additional claims
};

// True for names a caller may not set through extra_json: the claims above, JOSE and
// OAuth names whose meaning the server owns (typ, cnf, act, ...), and RFC 7662
// introspection members (active, token_type, ...).
bool IsReservedClaim(absl::string_view name);

// OK for "" or an object of at most kMaxExtraClaims members, kMaxExtraClaimsBytes
// bytes, nesting 16, valid UTF-8, no duplicate or reserved names. Otherwise
// INVALID_ARGUMENT with reason "invalid_argument:extra_claims".
absl::Status ValidateExtraClaims(absl::string_view extra_json);

// What Verify requires beyond a good signature.
struct VerifyPolicy {
  // Header typ must equal this, compared as a media type (RFC 7515 §4.1.9:
  // case-insensitive, "application/" prefix optional). Empty: typ is not checked.
  std::string expected_typ = "at+jwt";
  // iss must equal this exactly (so an empty issuer accepts nothing).
  std::string issuer;
  // When non-empty, must be one of aud.
  std::string audience;
  // Clock skew allowed on exp, nbf and iat.
  absl::Duration leeway = absl::Seconds(30);
  // Longer tokens are refused before any parsing (INVALID_ARGUMENT, token_too_large).
  size_t max_token_bytes = 8192;
};

// A token that passed KeyRing::Verify.
struct VerifiedJwt {
  std::string kid;
  Algorithm alg = Algorithm::kES256;
  // Standard members parsed; extra_json holds the other members as an object text,
  // or "" when there are none.
  JwtClaims claims;
  // The whole payload as received (a validated JSON object text).
  std::string claims_json;
};

// --- Lower-level pieces, used by KeyRing and exposed for tests and tools. ---

// The payload JSON for `claims`: INVALID_ARGUMENT with reason
// "invalid_argument:<claim>" when a required claim is missing or not valid UTF-8,
// or extra_json fails ValidateExtraClaims.
absl::StatusOr<std::string> EncodeClaims(const JwtClaims& claims);

// Parses a payload: malformed_token for bad JSON or a claim of the wrong type (e.g. a
// NumericDate given as a string), missing_claim when an RFC 9068 required claim is
// absent.
absl::StatusOr<JwtClaims> DecodeClaims(absl::string_view payload_json);

// Issuer, audience and time checks of `policy` at `now`.
absl::Status CheckClaims(const JwtClaims& claims, const VerifyPolicy& policy, absl::Time now);

// True when header `typ` names the media type `expected` per RFC 7515 §4.1.9.
bool TypMatches(absl::string_view typ, absl::string_view expected);

}  // namespace ta::token

#endif  // TA_TOKEN_JWT_H_

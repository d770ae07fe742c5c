// JWS compact serialization (RFC 7515 §7.1) as the server signs and checks it.
//
// Headers are strict: only "alg", "kid" and "typ" (all strings) are accepted, so jku,
// jwk, x5u, x5c, crit and anything else are refused rather than ignored (RFC 8725
// §3.1, §3.10). "none" is never an algorithm. The signature is checked over the
// segments exactly as received, before anything in the payload is read.
// Thread-safety: pure functions.
#ifndef TA_TOKEN_JWS_H_
#define TA_TOKEN_JWS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "token/jwt.h"
#include "token/key.h"

namespace ta::token {

// The three segments of a compact JWS, pointing into the token.
struct CompactJws {
  absl::string_view signing_input;  // BASE64URL(header) '.' BASE64URL(payload)
  absl::string_view header_b64;
  absl::string_view payload_b64;
  absl::string_view signature_b64;
};

// A parsed protected header.
struct JwsHeader {
  Algorithm alg = Algorithm::kES256;
  std::string kid;  // "" when absent
  std::string typ;  // "" when absent
};

// Splits a token into its segments: malformed_token unless there are exactly three
// and the header is non-empty.
absl::StatusOr<CompactJws> SplitCompactJws(absl::string_view token);

// Decodes and checks a protected header: malformed_token, forbidden_header, alg_none
// or unsupported_alg (UNAUTHENTICATED) on failure.
absl::StatusOr<JwsHeader> ParseJwsHeader(absl::string_view header_b64);

// {"alg":..,"kid":..,"typ":..}; kid and typ are omitted when empty.
std::string EncodeJwsHeader(Algorithm alg, absl::string_view kid, absl::string_view typ);

// BASE64URL(header_json).BASE64URL(payload).BASE64URL(signature by `key`).
absl::StatusOr<std::string> SignCompactJws(absl::string_view header_json, absl::string_view payload,
                                           const Key& key);

// Verifies `token` with `key` alone, requiring neither kid nor typ (for fixed keys
// and the RFC examples): strict header, header alg == key.alg() (else alg_mismatch),
// then the signature (else bad_signature). Returns the decoded payload bytes.
absl::StatusOr<std::string> VerifyJws(absl::string_view token, const Key& key);

// The signature check alone, shared with KeyRing::Verify: bad_signature or
// malformed_token.
absl::Status CheckJwsSignature(const CompactJws& jws, const Key& key);

}  // namespace ta::token

#endif  // TA_TOKEN_JWS_H_

// Small cryptographic primitives over OpenSSL: randomness, SHA-256, HMAC-SHA256 and a
// constant-time comparison. The rest of the server uses these instead of OpenSSL.
//
// Thread-safety: every function is thread-safe (no shared state beyond OpenSSL's
// internally locked DRBG).
#ifndef TA_TOKEN_CRYPTO_H_
#define TA_TOKEN_CRYPTO_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace ta::token {

// `n` bytes from OpenSSL's CSPRNG. Aborts the process if the CSPRNG fails: issuing
// tokens with predictable secrets is worse than not running.
std::string RandomBytes(size_t n);

// SHA-256 of `data`: 32 raw bytes.
std::string Sha256(absl::string_view data);

// HMAC-SHA256 of `data` under `key`: 32 raw bytes.
std::string HmacSha256(absl::string_view key, absl::string_view data);

// True when `a` and `b` are equal, in time independent of where they differ.
// A length mismatch returns false at once (lengths are not secret here).
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace ta::token

#endif  // TA_TOKEN_CRYPTO_H_

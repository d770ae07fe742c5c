// The opaque refresh token: which record it names and the secret that proves possession.
//
// Wire form: "tar_" + base64url(family_id[16] ‖ generation[8, big-endian] ‖ secret[32]).
// The prefix lets secret scanners spot leaked tokens and guarantees a refresh token can
// never parse as a JWS (no dots). The secret is derived, not random: HMAC over the family
// id and generation with the key ring's refresh secret, so the successor handed out by a
// rotation can be handed out again inside the grace window without ever being stored.
// Stateless; thread-safe.
#ifndef TA_SERVER_CORE_REFRESH_TOKEN_H_
#define TA_SERVER_CORE_REFRESH_TOKEN_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "token/ids.h"

namespace ta::core {

using token::kFamilyIdBytes;        // token/ids.h: one definition for server and client
using token::kRefreshTokenPrefix;
using token::LooksLikeRefreshToken;
inline constexpr size_t kRefreshSecretBytes = 32;

struct RefreshTokenParts {
  std::string family_id;  // raw bytes
  uint64_t generation = 0;
  std::string secret;  // raw bytes
};

std::string FormatRefreshToken(const RefreshTokenParts& parts);

// UNAUTHENTICATED / "invalid_refresh_token" for anything that is not exactly our format.
absl::StatusOr<RefreshTokenParts> ParseRefreshToken(absl::string_view token);

// The HMAC input that binds a secret to one generation of one family.
std::string RefreshSecretContext(absl::string_view family_id, uint64_t generation);

// Family ids travel as base64url (they are the access token's `sid`).
std::string EncodeFamilyId(absl::string_view raw);
absl::StatusOr<std::string> DecodeFamilyId(absl::string_view text);  // invalid_argument:family_id

}  // namespace ta::core

#endif  // TA_SERVER_CORE_REFRESH_TOKEN_H_

// The wire forms of this service's own token kinds that every side must recognise the same
// way: a refresh token's prefix, and a family id as it travels (an access token's `sid`, a
// revocation stream's family id). Used by the server's core, the access-token decision and
// the client's local verifier, so the three never disagree. Thread-safety: pure functions.
#ifndef TA_TOKEN_IDS_H_
#define TA_TOKEN_IDS_H_

#include <cstddef>
#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "token/base64url.h"

namespace ta::token {

// Every refresh token starts with this (server/core/refresh_token.h has the rest of its form).
inline constexpr absl::string_view kRefreshTokenPrefix = "tar_";
// A family (session) id: 16 random bytes.
inline constexpr size_t kFamilyIdBytes = 16;

inline bool LooksLikeRefreshToken(absl::string_view token) {
  return absl::StartsWith(token, kRefreshTokenPrefix);
}

// The raw family id from its base64url text; nullopt for anything else.
inline std::optional<std::string> DecodeFamilyIdText(absl::string_view text) {
  absl::StatusOr<std::string> raw = Base64UrlDecode(text);
  if (!raw.ok() || raw->size() != kFamilyIdBytes) return std::nullopt;
  return *std::move(raw);
}

}  // namespace ta::token

#endif  // TA_TOKEN_IDS_H_

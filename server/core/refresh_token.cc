#include "server/core/refresh_token.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "token/base64url.h"

namespace ta::core {
namespace {

constexpr size_t kPayloadBytes = kFamilyIdBytes + 8 + kRefreshSecretBytes;

absl::Status Invalid() {
  return Error(absl::StatusCode::kUnauthenticated, "invalid_refresh_token",
               "refresh token is not valid");
}

std::string BigEndian64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) out[i] = static_cast<char>(v & 0xff);
  return out;
}

uint64_t LoadBigEndian64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace

std::string FormatRefreshToken(const RefreshTokenParts& parts) {
  return std::string(kRefreshTokenPrefix) +
         token::Base64UrlEncode(parts.family_id + BigEndian64(parts.generation) + parts.secret);
}

absl::StatusOr<RefreshTokenParts> ParseRefreshToken(absl::string_view token) {
  if (!LooksLikeRefreshToken(token)) return Invalid();
  absl::StatusOr<std::string> raw =
      token::Base64UrlDecode(token.substr(kRefreshTokenPrefix.size()));
  if (!raw.ok() || raw->size() != kPayloadBytes) return Invalid();
  RefreshTokenParts parts;
  parts.family_id = raw->substr(0, kFamilyIdBytes);
  parts.generation = LoadBigEndian64(raw->data() + kFamilyIdBytes);
  parts.secret = raw->substr(kFamilyIdBytes + 8);
  return parts;
}

std::string RefreshSecretContext(absl::string_view family_id, uint64_t generation) {
  return absl::StrCat("ta/refresh/v1|", family_id, BigEndian64(generation));
}

std::string EncodeFamilyId(absl::string_view raw) { return token::Base64UrlEncode(raw); }

absl::StatusOr<std::string> DecodeFamilyId(absl::string_view text) {
  std::optional<std::string> raw = token::DecodeFamilyIdText(text);
  if (!raw.has_value()) {
    return InvalidField("family_id", "family_id must be a base64url family id");
  }
  return *std::move(raw);
}

}  // namespace ta::core

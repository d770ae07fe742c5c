// Request limits (DESIGN §8) and the field checks that enforce them.
//
// Every check names its field in the reason ("invalid_argument:<field>") so a caller can
// tell which value to fix. Stateless; thread-safe.
#ifndef TA_SERVER_CORE_LIMITS_H_
#define TA_SERVER_CORE_LIMITS_H_

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ta::core {

inline constexpr size_t kMaxTokenBytes = 8 * 1024;
inline constexpr size_t kMaxSubjectBytes = 256;
inline constexpr size_t kMaxClientIdBytes = 256;
inline constexpr size_t kMaxAudiences = 16;
inline constexpr size_t kMaxAudienceBytes = 256;
inline constexpr size_t kMaxScopeBytes = 1024;
inline constexpr size_t kMaxMetadataEntries = 32;
inline constexpr size_t kMaxMetadataKeyBytes = 64;
inline constexpr size_t kMaxMetadataValueBytes = 512;
inline constexpr size_t kMaxReasonBytes = 256;
inline constexpr size_t kMaxBatch = 100;
inline constexpr int kMaxPageSize = 500;
inline constexpr int kDefaultPageSize = 50;

// A required identifier: 1..max bytes, no control characters.
absl::Status CheckIdentifier(absl::string_view field, absl::string_view value, size_t max);
// An optional free-text value (reason, metadata): <= max bytes, no control characters.
absl::Status CheckText(absl::string_view field, absl::string_view value, size_t max);
// RFC 6749 §3.3 scope: space-separated scope-tokens of %x21 / %x23-5B / %x5D-7E.
absl::Status CheckScope(absl::string_view field, absl::string_view scope);
absl::Status CheckAudiences(absl::string_view field, const std::vector<std::string>& audience);
absl::Status CheckMetadata(absl::string_view field, const std::map<std::string, std::string>& m);
// Present and <= kMaxTokenBytes.
absl::Status CheckToken(absl::string_view field, absl::string_view token);

// True when every scope-token of `requested` is in `granted`.
bool ScopeWithin(absl::string_view requested, absl::string_view granted);

}  // namespace ta::core

#endif  // TA_SERVER_CORE_LIMITS_H_

#include "server/core/limits.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/error.h"

namespace ta::core {
namespace {

bool HasControl(absl::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

bool IsScopeTokenChar(unsigned char c) {
  return c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
}

}  // namespace

absl::Status CheckIdentifier(absl::string_view field, absl::string_view value, size_t max) {
  if (value.empty()) return InvalidField(field, absl::StrCat(field, " is required"));
  return CheckText(field, value, max);
}

absl::Status CheckText(absl::string_view field, absl::string_view value, size_t max) {
  if (value.size() > max) {
    return InvalidField(field, absl::StrCat(field, " is longer than ", max, " bytes"));
  }
  if (HasControl(value)) {
    return InvalidField(field, absl::StrCat(field, " contains control characters"));
  }
  return absl::OkStatus();
}

absl::Status CheckScope(absl::string_view field, absl::string_view scope) {
  if (scope.size() > kMaxScopeBytes) {
    return InvalidField(field, absl::StrCat(field, " is longer than ", kMaxScopeBytes, " bytes"));
  }
  if (scope.empty()) return absl::OkStatus();
  for (absl::string_view token : absl::StrSplit(scope, ' ')) {
    if (token.empty()) {
      return InvalidField(field, absl::StrCat(field, " must be single-space separated"));
    }
    for (unsigned char c : token) {
      if (!IsScopeTokenChar(c)) {
        return InvalidField(field, absl::StrCat(field, " has a character RFC 6749 forbids"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckAudiences(absl::string_view field, const std::vector<std::string>& audience) {
  if (audience.size() > kMaxAudiences) {
    return InvalidField(field, absl::StrCat("at most ", kMaxAudiences, " audiences"));
  }
  for (const std::string& a : audience) {
    if (absl::Status s = CheckIdentifier(field, a, kMaxAudienceBytes); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status CheckMetadata(absl::string_view field, const std::map<std::string, std::string>& m) {
  if (m.size() > kMaxMetadataEntries) {
    return InvalidField(field, absl::StrCat("at most ", kMaxMetadataEntries, " entries"));
  }
  for (const auto& [key, value] : m) {
    if (absl::Status s = CheckIdentifier(field, key, kMaxMetadataKeyBytes); !s.ok()) return s;
    if (absl::Status s = CheckText(field, value, kMaxMetadataValueBytes); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status CheckToken(absl::string_view field, absl::string_view token) {
  if (token.empty()) return InvalidField(field, absl::StrCat(field, " is required"));
  if (token.size() > kMaxTokenBytes) {
    return InvalidField(field, absl::StrCat(field, " is longer than ", kMaxTokenBytes, " bytes"));
  }
  return absl::OkStatus();
}

bool ScopeWithin(absl::string_view requested, absl::string_view granted) {
  absl::flat_hash_set<absl::string_view> held = absl::StrSplit(granted, ' ', absl::SkipEmpty());
  for (absl::string_view token : absl::StrSplit(requested, ' ', absl::SkipEmpty())) {
    if (!held.contains(token)) return false;
  }
  return true;
}

}  // namespace ta::core

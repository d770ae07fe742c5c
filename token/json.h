// Strict JSON for token headers, claims, JWKs and the key-ring manifest: the one place
// RapidJSON's parser is configured.
//
// Internal to the token library and the key ring (server/token). ParseJsonObject accepts only what
// a careful issuer emits: valid UTF-8 (no encoded surrogates), no duplicate member names at any
// level, nesting at most `max_depth` containers, nothing after the value, and an object at the top.
// Parsing is iterative, so hostile nesting cannot exhaust the stack. Thread-safety: pure functions.
#ifndef TA_TOKEN_JSON_H_
#define TA_TOKEN_JSON_H_

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ta::token::internal {

// Containers (objects and arrays, the top-level object included) one text may nest.
inline constexpr int kMaxJsonDepth = 16;

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// Parses `text` into `doc`. INVALID_ARGUMENT with a short cause (never the text) on
// anything but a strict JSON object.
absl::Status ParseJsonObject(absl::string_view text, rapidjson::Document* doc,
                             int max_depth = kMaxJsonDepth);

// True when `text` is well-formed UTF-8: shortest forms only, no surrogates, at most
// U+10FFFF.
bool IsValidUtf8(absl::string_view text);

// The bytes of a string value (which may contain NUL). Requires v.IsString().
inline absl::string_view StringOf(const rapidjson::Value& v) {
  return absl::string_view(v.GetString(), v.GetStringLength());
}

// Writes a string member name or value with its exact length.
inline void WriteString(JsonWriter& w, absl::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}
inline void WriteKey(JsonWriter& w, absl::string_view s) {
  w.Key(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

// Compact serialization of `v`.
std::string ToJson(const rapidjson::Value& v);

}  // namespace ta::token::internal

#endif  // TA_TOKEN_JSON_H_

// Base64url (RFC 4648 §5) without padding, as JOSE uses it (RFC 7515 §2).
//
// Decoding is strict so that one token has exactly one encoding: padding, whitespace,
// characters outside the alphabet, impossible lengths and non-zero trailing bits are
// all rejected. Thread-safety: pure functions.
#ifndef TA_TOKEN_BASE64URL_H_
#define TA_TOKEN_BASE64URL_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ta::token {

// Encodes `data` with the URL-safe alphabet and no '=' padding.
std::string Base64UrlEncode(absl::string_view data);

// Decodes `text`; INVALID_ARGUMENT (no token bytes in the message) when it is not the
// canonical unpadded encoding of some byte string.
absl::StatusOr<std::string> Base64UrlDecode(absl::string_view text);

}  // namespace ta::token

#endif  // TA_TOKEN_BASE64URL_H_

// Fuzz target: base64url (token/base64url.h). Decoding never crashes; whatever decodes
// is canonical (re-encodes to the same text); encoding always round-trips.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "token/base64url.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::string> decoded = ta::token::Base64UrlDecode(text);
  if (decoded.ok() && ta::token::Base64UrlEncode(*decoded) != text) std::abort();
  absl::StatusOr<std::string> round = ta::token::Base64UrlDecode(ta::token::Base64UrlEncode(text));
  if (!round.ok() || *round != text) std::abort();
  return 0;
}

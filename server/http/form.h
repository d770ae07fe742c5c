// What an OAuth request carries besides the route: its form body (application/x-www-form-
// urlencoded, RFC 6749 Appendix B) and its client credentials (Authorization header: Bearer
// API key, or HTTP Basic "name:key" as RFC 6749 §2.3.1 client_secret_basic). Strict and
// bounded; errors never echo the input (it may hold a token or a key). Pure functions;
// thread-safe.
#ifndef TA_SERVER_HTTP_FORM_H_
#define TA_SERVER_HTTP_FORM_H_

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ta::http {

using Form = absl::flat_hash_map<std::string, std::string>;

// Parameters a form may hold at most.
inline constexpr size_t kMaxFormParameters = 16;

// Whether `content_type` is application/x-www-form-urlencoded (parameters such as
// "; charset=UTF-8" allowed; case-insensitive).
bool IsFormContentType(absl::string_view content_type);

// The name/value pairs of a form body, '+' and %XX decoded. INVALID_ARGUMENT (reason
// "invalid_request") for a bad %-escape, a parameter given twice (RFC 6749 §3.2), an empty
// name, or more than kMaxFormParameters parameters.
absl::StatusOr<Form> ParseForm(absl::string_view body);

struct ClientCredentials {
  std::string name;  // Basic only: the caller's name (its client_id)
  std::string key;   // the API key
  bool basic = false;
};

// Parses an Authorization header. UNAUTHENTICATED (reason "unauthenticated") when it is
// empty, of another scheme, or malformed.
absl::StatusOr<ClientCredentials> ParseAuthorization(absl::string_view header);

}  // namespace ta::http

#endif  // TA_SERVER_HTTP_FORM_H_

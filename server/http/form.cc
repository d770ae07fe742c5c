#include "server/http/form.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/error.h"

namespace ta::http {
namespace {

absl::Status BadForm(absl::string_view why) {
  return Error(absl::StatusCode::kInvalidArgument, "invalid_request", why);
}

absl::Status Unauthenticated(absl::string_view why) {
  return Error(absl::StatusCode::kUnauthenticated, "unauthenticated", why);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes one name or value: '+' is a space, %XX a byte.
absl::StatusOr<std::string> Decode(absl::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      out.push_back(' ');
    } else if (in[i] != '%') {
      out.push_back(in[i]);
    } else {
      const int hi = i + 2 < in.size() ? HexValue(in[i + 1]) : -1;
      const int lo = hi >= 0 ? HexValue(in[i + 2]) : -1;
      if (lo < 0) return BadForm("malformed %-escape in the form body");
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    }
  }
  return out;
}

}  // namespace

bool IsFormContentType(absl::string_view content_type) {
  absl::string_view media = content_type.substr(0, content_type.find(';'));
  return absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(media),
                                "application/x-www-form-urlencoded");
}

absl::StatusOr<Form> ParseForm(absl::string_view body) {
  Form form;
  for (absl::string_view pair : absl::StrSplit(body, '&', absl::SkipEmpty())) {
    if (form.size() == kMaxFormParameters) return BadForm("too many form parameters");
    const size_t eq = pair.find('=');
    absl::StatusOr<std::string> name = Decode(pair.substr(0, eq));
    if (!name.ok()) return name.status();
    if (name->empty()) return BadForm("a form parameter has no name");
    absl::StatusOr<std::string> value =
        Decode(eq == absl::string_view::npos ? absl::string_view() : pair.substr(eq + 1));
    if (!value.ok()) return value.status();
    if (!form.emplace(*std::move(name), *std::move(value)).second) {
      return BadForm("a form parameter is given twice");
    }
  }
  return form;
}

absl::StatusOr<ClientCredentials> ParseAuthorization(absl::string_view header) {
  header = absl::StripAsciiWhitespace(header);
  if (header.empty()) {
    return Unauthenticated("no credentials: send 'Authorization: Bearer <api key>' or Basic");
  }
  const size_t space = header.find(' ');
  const absl::string_view scheme = header.substr(0, space);
  const absl::string_view rest =
      space == absl::string_view::npos ? absl::string_view() : header.substr(space + 1);
  ClientCredentials out;
  if (absl::EqualsIgnoreCase(scheme, "bearer")) {
    out.key = std::string(absl::StripAsciiWhitespace(rest));
    if (out.key.empty()) return Unauthenticated("empty bearer credential");
    return out;
  }
  if (!absl::EqualsIgnoreCase(scheme, "basic")) {
    return Unauthenticated("authorization must use the Bearer or Basic scheme");
  }
  std::string decoded;
  if (!absl::Base64Unescape(absl::StripAsciiWhitespace(rest), &decoded)) {
    return Unauthenticated("malformed Basic credentials");
  }
  const size_t colon = decoded.find(':');
  if (colon == std::string::npos) return Unauthenticated("malformed Basic credentials");
  // RFC 6749 §2.3.1: both halves are form-urlencoded before they are joined.
  absl::StatusOr<std::string> name = Decode(absl::string_view(decoded).substr(0, colon));
  absl::StatusOr<std::string> key = Decode(absl::string_view(decoded).substr(colon + 1));
  if (!name.ok() || !key.ok() || name->empty() || key->empty()) {
    return Unauthenticated("malformed Basic credentials");
  }
  out.name = *std::move(name);
  out.key = *std::move(key);
  out.basic = true;
  return out;
}

}  // namespace ta::http

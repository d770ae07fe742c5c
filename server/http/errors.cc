#include "server/http/errors.h"

#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "server/http/documents.h"

namespace ta::http {
namespace {

HttpError ByReason(absl::string_view reason) {
  if (reason == "method_not_allowed") return {405, "invalid_request"};
  if (reason == "body_too_large") return {413, "invalid_request"};
  if (reason == "header_too_large") return {431, "invalid_request"};
  if (reason == "bad_request") return {400, "invalid_request"};
  return {0, ""};
}

HttpError ByCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kFailedPrecondition:
      return {400, "invalid_request"};
    case absl::StatusCode::kUnauthenticated:
      return {401, "invalid_client"};
    case absl::StatusCode::kPermissionDenied:
      return {403, "unauthorized_client"};
    case absl::StatusCode::kNotFound:
      return {404, "not_found"};
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
      return {503, "temporarily_unavailable"};
    default:
      return {500, "server_error"};
  }
}

}  // namespace

HttpError ClassifyError(const absl::Status& status) {
  HttpError by_reason = ByReason(ReasonOf(status));
  return by_reason.status != 0 ? by_reason : ByCode(status.code());
}

HttpResponse ErrorResponse(const absl::Status& status) {
  const HttpError error = ClassifyError(status);
  std::string reason = ReasonOf(status);
  if (reason.empty()) reason = error.error;
  HttpResponse out;
  out.status = error.status;
  out.content_type = "application/json";
  out.body = ErrorJson(error.error, absl::StrCat(reason, ": ", status.message()));
  out.headers.emplace_back("Cache-Control", "no-store");
  if (error.status == 401) {
    out.headers.emplace_back("WWW-Authenticate", absl::StrCat("Basic realm=\"", kRealm,
                                                              "\", Bearer realm=\"", kRealm, "\""));
  }
  if (error.status == 503) out.headers.emplace_back("Retry-After", "1");
  return out;
}

}  // namespace ta::http

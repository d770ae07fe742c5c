#include "server/http/errors.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/error.h"
#include "server/http/documents.h"

namespace ta::http {
namespace {

HttpError ByReason(absl::string_view reason) {
  if (reason == "method_not_allowed") return {405, "invalid_request"};
  if (reason == "body_too_large") return {413, "invalid_request"};
  if (reason == "header_too_large") return {431, "invalid_request"};
  if (reason == "bad_request") return {400, "invalid_request"};
  if (reason == "rate_limited") return {429, "temporarily_unavailable"};
  return {0, ""};
}

// RFC 9449 §5: a proof that is not valid for this request, or none where the session needs
// one, is invalid_dpop_proof.
bool IsProofReason(absl::string_view reason) {
  return absl::StartsWith(reason, "dpop_") || reason == "proof_required" ||
         reason == "proof_key_mismatch";
}

std::string DpopChallenge(absl::string_view error) {
  return absl::StrCat("DPoP error=\"", error, "\", algs=\"", absl::StrJoin(DpopSigningAlgs(), " "),
                      "\"");
}

HttpResponse Answer(const absl::Status& status, const HttpError& error) {
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
  return Answer(status, ClassifyError(status));
}

HttpError ClassifyTokenError(const absl::Status& status) {
  const std::string reason = ReasonOf(status);
  if (IsProofReason(reason)) return {400, "invalid_dpop_proof"};
  if (reason == "use_dpop_nonce") return {400, "use_dpop_nonce"};
  if (reason == "invalid_scope") return {400, "invalid_scope"};
  if (reason == "unsupported_grant_type") return {400, "unsupported_grant_type"};
  if (ByReason(reason).status == 0 && (status.code() == absl::StatusCode::kUnauthenticated ||
                                       status.code() == absl::StatusCode::kPermissionDenied)) {
    return {400, "invalid_grant"};
  }
  return ClassifyError(status);
}

HttpResponse TokenErrorResponse(const absl::Status& status, absl::string_view dpop_nonce) {
  const HttpError error = ClassifyTokenError(status);
  HttpResponse out = Answer(status, error);
  if (error.error == "invalid_dpop_proof" || error.error == "use_dpop_nonce") {
    out.headers.emplace_back("WWW-Authenticate", DpopChallenge(error.error));
  }
  if (error.error == "use_dpop_nonce" && !dpop_nonce.empty()) {
    out.headers.emplace_back("DPoP-Nonce", std::string(dpop_nonce));
  }
  return out;
}

}  // namespace ta::http

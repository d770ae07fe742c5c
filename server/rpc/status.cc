#include "server/rpc/status.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/error.h"

namespace ta::rpc {

std::string ReasonFor(const absl::Status& status) {
  std::string reason = ReasonOf(status);
  if (!reason.empty()) return reason;
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
      return "store_unavailable";
    case absl::StatusCode::kDataLoss:
      return "store_corrupt";
    case absl::StatusCode::kDeadlineExceeded:
      return "deadline_exceeded";
    case absl::StatusCode::kPermissionDenied:
      return "permission_denied";
    case absl::StatusCode::kUnauthenticated:
      return "unauthenticated";
    case absl::StatusCode::kInvalidArgument:
      return "invalid_argument";
    default:
      return "internal";
  }
}

grpc::Status ToGrpcStatus(grpc::ServerContextBase* context, const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  std::string reason = ReasonFor(status);
  context->AddTrailingMetadata(kReasonTrailer, reason);
  // absl::StatusCode values are gRPC's codes by construction.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      absl::StrCat(reason, ": ", status.message()));
}

grpc::Status ToGrpcStatus(grpc::ServerContextBase* context, const absl::Status& status,
                          const std::string& dpop_nonce) {
  if (!dpop_nonce.empty() && ReasonOf(status) == "use_dpop_nonce") {
    context->AddTrailingMetadata(kDpopNonceTrailer, dpop_nonce);
  }
  return ToGrpcStatus(context, status);
}

}  // namespace ta::rpc

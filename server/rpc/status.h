// The one place where absl::Status becomes grpc::Status (DESIGN §8).
//
// The machine-readable reason goes into the trailing metadata entry `ta-reason` (readable
// from every gRPC client and from grpcurl) and prefixes the message for people. A status
// without a reason gets one derived from its code. Stateless; thread-safe.
#ifndef TA_SERVER_RPC_STATUS_H_
#define TA_SERVER_RPC_STATUS_H_

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"

namespace ta::rpc {

inline constexpr char kReasonTrailer[] = "ta-reason";

// The reason a status carries, or a default derived from its code.
std::string ReasonFor(const absl::Status& status);

// Converts `status`, attaching its reason to `context`'s trailing metadata.
grpc::Status ToGrpcStatus(grpc::ServerContextBase* context, const absl::Status& status);

}  // namespace ta::rpc

#endif  // TA_SERVER_RPC_STATUS_H_

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

// The DPoP nonce (RFC 9449 §8) a refused proof must be retried with.
inline constexpr char kDpopNonceTrailer[] = "dpop-nonce";

// As above; a "use_dpop_nonce" refusal also carries `dpop_nonce` (the server's current
// nonce, TokenAuthority::CurrentDpopNonce) in the trailing metadata kDpopNonceTrailer.
grpc::Status ToGrpcStatus(grpc::ServerContextBase* context, const absl::Status& status,
                          const std::string& dpop_nonce);

}  // namespace ta::rpc

#endif  // TA_SERVER_RPC_STATUS_H_

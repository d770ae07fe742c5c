// Caller authentication for the gRPC face (DESIGN §7); the role table is server/core/roles.h.
//
// Every RPC of TokenAuthority and TokenAdmin names itself with an Rpc value; Authorize()
// finds the caller (mTLS peer certificate first, then `authorization: Bearer <key>`) and
// checks the role before any work is done. Health and reflection need no credentials.
// Stateless apart from the borrowed registry; thread-safe.
#ifndef TA_SERVER_RPC_AUTH_H_
#define TA_SERVER_RPC_AUTH_H_

#include <grpcpp/server_context.h>

#include "absl/status/statusor.h"
#include "server/core/audit.h"
#include "server/core/callers.h"
#include "server/core/roles.h"

namespace ta::rpc {

// The RPCs are the operations of the shared role table (server/core/roles.h).
using Rpc = core::Operation;
using core::RoleAllows;

// The method's name, e.g. "IssueTokens".
const char* RpcName(Rpc rpc);

// UNAUTHENTICATED when no accepted credential is presented, PERMISSION_DENIED when the caller
// lacks the role; either is recorded in `audit` ("auth.refused") when it is not null.
absl::StatusOr<core::Caller> Authorize(grpc::ServerContextBase* context,
                                       const core::CallerRegistry& registry, Rpc rpc,
                                       core::AuditSink* audit);

}  // namespace ta::rpc

#endif  // TA_SERVER_RPC_AUTH_H_

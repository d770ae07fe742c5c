// Caller authentication and the per-RPC role table (DESIGN §7), in one place.
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

namespace ta::rpc {

enum class Rpc {
  kIssueTokens,
  kRefreshTokens,
  kIntrospect,
  kIntrospectBatch,
  kRevokeToken,
  kRevokeFamily,
  kGetJwks,
  kRevokeSubject,
  kListFamilies,
  kGetFamily,
  kRotateSigningKey,
  kPurgeExpired,
  kGetStats,
};

// Whether `caller`'s roles admit `rpc` (admin admits everything).
bool RoleAllows(const core::Caller& caller, Rpc rpc);

// The method's name, e.g. "IssueTokens".
const char* RpcName(Rpc rpc);

// UNAUTHENTICATED when no accepted credential is presented, PERMISSION_DENIED when the caller
// lacks the role; either is recorded in `audit` ("auth.refused") when it is not null.
absl::StatusOr<core::Caller> Authorize(grpc::ServerContextBase* context,
                                       const core::CallerRegistry& registry, Rpc rpc,
                                       core::AuditSink* audit);

}  // namespace ta::rpc

#endif  // TA_SERVER_RPC_AUTH_H_

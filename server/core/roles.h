// The one role table (DESIGN §7): which roles may perform which operation. Both faces use it:
// server/rpc names each RPC with an Operation, server/http each endpoint that needs a caller,
// so a role means the same thing over gRPC and over HTTP. Pure functions; thread-safe.
#ifndef TA_SERVER_CORE_ROLES_H_
#define TA_SERVER_CORE_ROLES_H_

#include "absl/strings/string_view.h"
#include "server/core/authority.h"

namespace ta::core {

// One per RPC of TokenAuthority and TokenAdmin ("never reorder": metrics index by value).
enum class Operation {
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
  kCreateBackup,
  kWatchRevocations,  // server streaming (docs/revocation-stream.md); the resource role
};
inline constexpr int kOperationCount = static_cast<int>(Operation::kWatchRevocations) + 1;

// The RPC's name as in the proto, e.g. "Introspect".
absl::string_view OperationName(Operation op);

// Whether `caller`'s roles admit `op` (admin admits everything).
bool RoleAllows(const Caller& caller, Operation op);

}  // namespace ta::core

#endif  // TA_SERVER_CORE_ROLES_H_

#include "server/core/roles.h"

namespace ta::core {
namespace {

// The table. Admin may do everything; GetJwks is open to any known caller.
bool TableAllows(Operation op, Role role) {
  switch (op) {
    case Operation::kIssueTokens:
      return role == Role::kIssuer;
    case Operation::kRefreshTokens:
    case Operation::kRevokeToken:
    case Operation::kRevokeFamily:  // a client only for its own client_ids (checked by the core)
      return role == Role::kClient;
    case Operation::kIntrospect:
    case Operation::kIntrospectBatch:
    case Operation::kWatchRevocations:  // what Introspect already tells a resource server
      return role == Role::kResource;
    case Operation::kGetJwks:
      return true;
    case Operation::kRevokeSubject:
    case Operation::kListFamilies:
    case Operation::kGetFamily:
    case Operation::kRotateSigningKey:
    case Operation::kPurgeExpired:
    case Operation::kGetStats:
    case Operation::kCreateBackup:
      return false;
  }
  return false;
}

}  // namespace

absl::string_view OperationName(Operation op) {
  switch (op) {
    case Operation::kIssueTokens:
      return "IssueTokens";
    case Operation::kRefreshTokens:
      return "RefreshTokens";
    case Operation::kIntrospect:
      return "Introspect";
    case Operation::kIntrospectBatch:
      return "IntrospectBatch";
    case Operation::kRevokeToken:
      return "RevokeToken";
    case Operation::kRevokeFamily:
      return "RevokeFamily";
    case Operation::kGetJwks:
      return "GetJwks";
    case Operation::kRevokeSubject:
      return "RevokeSubject";
    case Operation::kListFamilies:
      return "ListFamilies";
    case Operation::kGetFamily:
      return "GetFamily";
    case Operation::kRotateSigningKey:
      return "RotateSigningKey";
    case Operation::kPurgeExpired:
      return "PurgeExpired";
    case Operation::kGetStats:
      return "GetStats";
    case Operation::kCreateBackup:
      return "CreateBackup";
    case Operation::kWatchRevocations:
      return "WatchRevocations";
  }
  return "unknown";
}

bool RoleAllows(const Caller& caller, Operation op) {
  for (Role role : caller.roles) {
    if (role == Role::kAdmin || TableAllows(op, role)) return true;
  }
  return false;
}

}  // namespace ta::core

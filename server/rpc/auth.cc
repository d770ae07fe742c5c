#include "server/rpc/auth.h"

#include <grpcpp/security/auth_context.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "server/base/error.h"

namespace ta::rpc {
namespace {

using core::Role;

// The one role table. Admin may call everything; GetJwks is public to any known caller.
bool TableAllows(Rpc rpc, Role role) {
  switch (rpc) {
    case Rpc::kIssueTokens:
      return role == Role::kIssuer;
    case Rpc::kRefreshTokens:
    case Rpc::kRevokeToken:
    case Rpc::kRevokeFamily:  // a client only for its own client_ids (checked by the core)
      return role == Role::kClient;
    case Rpc::kIntrospect:
    case Rpc::kIntrospectBatch:
      return role == Role::kResource;
    case Rpc::kGetJwks:
      return true;
    case Rpc::kRevokeSubject:
    case Rpc::kListFamilies:
    case Rpc::kGetFamily:
    case Rpc::kRotateSigningKey:
    case Rpc::kPurgeExpired:
    case Rpc::kGetStats:
      return false;
  }
  return false;
}

std::vector<std::string> PeerNames(const grpc::AuthContext& auth) {
  std::vector<std::string> names;
  for (const char* property : {"x509_subject_alternative_name", "x509_common_name"}) {
    for (const grpc::string_ref& v : auth.FindPropertyValues(property)) {
      names.emplace_back(v.data(), v.size());
    }
  }
  return names;
}

absl::StatusOr<core::Caller> Authenticate(grpc::ServerContextBase* context,
                                          const core::CallerRegistry& registry) {
  std::shared_ptr<const grpc::AuthContext> auth = context->auth_context();
  if (auth != nullptr && auth->IsPeerAuthenticated()) {
    absl::StatusOr<core::Caller> caller = registry.ByCertificate(PeerNames(*auth));
    if (caller.ok() || ReasonOf(caller.status()) == "caller_revoked") return caller;
  }
  const auto& metadata = context->client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return Error(absl::StatusCode::kUnauthenticated, "unauthenticated",
                 "no credentials: send 'authorization: Bearer <api key>' or a client certificate");
  }
  absl::string_view value(it->second.data(), it->second.size());
  if (value.size() < 7 || !absl::EqualsIgnoreCase(value.substr(0, 7), "bearer ")) {
    return Error(absl::StatusCode::kUnauthenticated, "unauthenticated",
                 "authorization must use the Bearer scheme");
  }
  return registry.ByApiKey(absl::StripAsciiWhitespace(value.substr(7)));
}

}  // namespace

bool RoleAllows(const core::Caller& caller, Rpc rpc) {
  for (Role role : caller.roles) {
    if (role == Role::kAdmin || TableAllows(rpc, role)) return true;
  }
  return false;
}

absl::StatusOr<core::Caller> Authorize(grpc::ServerContextBase* context,
                                       const core::CallerRegistry& registry, Rpc rpc) {
  absl::StatusOr<core::Caller> caller = Authenticate(context, registry);
  if (!caller.ok()) return caller.status();
  if (!RoleAllows(*caller, rpc)) {
    return Error(absl::StatusCode::kPermissionDenied, "permission_denied",
                 "the caller's roles do not include this call");
  }
  return caller;
}

}  // namespace ta::rpc

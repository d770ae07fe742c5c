#include "server/rpc/auth.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "base/error.h"

namespace ta::rpc {
namespace {

std::vector<std::string> Values(const grpc::AuthContext& auth, const char* property) {
  std::vector<std::string> values;
  for (const grpc::string_ref& v : auth.FindPropertyValues(property)) {
    values.emplace_back(v.data(), v.size());
  }
  return values;
}

// The verified peer certificate's identities, typed. (gRPC's "x509_subject_alternative_name"
// mixes every SAN type, so only the typed properties are used.)
core::PeerCertificate PeerOf(const grpc::AuthContext& auth) {
  core::PeerCertificate peer;
  peer.uris = Values(auth, GRPC_PEER_URI_PROPERTY_NAME);
  peer.dns_names = Values(auth, GRPC_PEER_DNS_PROPERTY_NAME);
  peer.emails = Values(auth, GRPC_PEER_EMAIL_PROPERTY_NAME);
  peer.ips = Values(auth, GRPC_PEER_IP_PROPERTY_NAME);
  std::vector<std::string> cn = Values(auth, GRPC_X509_CN_PROPERTY_NAME);
  if (cn.size() == 1) peer.common_name = cn[0];  // several CNs: no CN identity at all
  return peer;
}

absl::StatusOr<core::Caller> Authenticate(grpc::ServerContextBase* context,
                                          const core::CallerRegistry& registry) {
  std::shared_ptr<const grpc::AuthContext> auth = context->auth_context();
  if (auth != nullptr && auth->IsPeerAuthenticated()) {
    absl::StatusOr<core::Caller> caller = registry.ByCertificate(PeerOf(*auth));
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

// "ipv4:10.0.0.7:53211" -> "ipv4:10.0.0.7", "ipv6:[::1]:5000" -> "ipv6:[::1]": refusals are
// counted per address, not per connection (audit.h RefusalLimiter).
std::string PeerAddress(const std::string& peer) {
  const size_t colon = peer.rfind(':');
  if (colon == std::string::npos || colon + 1 == peer.size() || peer.find(':') == colon) {
    return peer;
  }
  for (size_t i = colon + 1; i < peer.size(); ++i) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(peer[i]))) return peer;
  }
  return peer.substr(0, colon);
}

}  // namespace

const char* RpcName(Rpc rpc) { return core::OperationName(rpc).data(); }

absl::StatusOr<core::Caller> Authorize(grpc::ServerContextBase* context,
                                       const core::CallerRegistry& registry, Rpc rpc,
                                       core::AuditSink* audit) {
  absl::StatusOr<core::Caller> caller = Authenticate(context, registry);
  absl::Status refused = caller.status();
  if (caller.ok() && !RoleAllows(*caller, rpc)) {
    refused = Error(absl::StatusCode::kPermissionDenied, "permission_denied",
                    "the caller's roles do not include this call");
  }
  if (refused.ok()) return caller;
  if (audit != nullptr) {
    core::AuditEvent event{.action = "auth.refused", .rpc = RpcName(rpc)};
    event.time = absl::Now();
    if (caller.ok()) event.caller = caller->name;
    event.peer = PeerAddress(context->peer());
    core::SetOutcome(refused, &event);
    audit->Record(event);
  }
  return refused;
}

}  // namespace ta::rpc

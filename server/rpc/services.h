// The gRPC services TokenAuthority and TokenAdmin (proto/tokenauthority/v1).
//
// Thin: each method decodes the request into core types, calls core::TokenAuthority, encodes
// the answer and maps the status (status.h). No storage, crypto or business rules here.
// The factories hide the generated headers from whoever builds the server. The authority is
// borrowed and must outlive the services. Thread-safe (the sync server calls concurrently).
#ifndef TA_SERVER_RPC_SERVICES_H_
#define TA_SERVER_RPC_SERVICES_H_

#include <memory>

#include <grpcpp/impl/codegen/service_type.h>

#include "server/core/authority.h"

namespace ta::rpc {

struct ServiceOptions {
  // Answer Introspect's include_reason (RFC 7662 allows it for privileged callers only).
  // Default off; until caller roles exist this flag stands in for "the caller is admin".
  bool expose_inactive_reason = false;
};

std::unique_ptr<grpc::Service> MakeAuthorityService(core::TokenAuthority* authority,
                                                    const ServiceOptions& options);
std::unique_ptr<grpc::Service> MakeAdminService(core::TokenAuthority* authority,
                                                const ServiceOptions& options);

}  // namespace ta::rpc

#endif  // TA_SERVER_RPC_SERVICES_H_

// The gRPC services TokenAuthority and TokenAdmin (proto/tokenauthority/v1).
//
// Thin: each method decodes the request into core types, calls core::TokenAuthority, encodes
// the answer and maps the status (status.h). No storage, crypto or business rules here.
// Every call is authorized (auth.h) before any work. The factories hide the generated
// headers from whoever builds the server. Thread-safe (gRPC calls methods concurrently).
#ifndef TA_SERVER_RPC_SERVICES_H_
#define TA_SERVER_RPC_SERVICES_H_

#include <grpcpp/impl/codegen/service_type.h>

#include <memory>

#include "server/core/authority.h"
#include "server/core/callers.h"
#include "server/metrics/metrics.h"
#include "server/runtime/call_gate.h"
#include "server/runtime/worker_pool.h"

namespace ta::rpc {

// What the services borrow; both must outlive them.
struct ServiceDeps {
  core::TokenAuthority* authority = nullptr;
  const core::CallerRegistry* callers = nullptr;
  runtime::WorkerPool* pool = nullptr;        // runs the handlers that may block
  runtime::CallGate* gate = nullptr;          // every call passes it; closed at shutdown
  core::AuditSink* audit = nullptr;           // refused callers are recorded here; may be null
  metrics::ServerMetrics* metrics = nullptr;  // counts and times every call; null: none
};

std::unique_ptr<grpc::Service> MakeAuthorityService(const ServiceDeps& deps);
std::unique_ptr<grpc::Service> MakeAdminService(const ServiceDeps& deps);

}  // namespace ta::rpc

#endif  // TA_SERVER_RPC_SERVICES_H_

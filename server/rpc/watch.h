// WatchRevocations' gRPC face: a callback-API write reactor per stream over a core::WatchStream
// (server/core/watch_hub.h). Thin: authorize (on gRPC's thread, memory only), open the stream
// on the worker pool, then write one event at a time as the hub wakes it — a kEntries event
// (a snapshot page, or tail entries ready together) as one `batch` message, for a watcher that
// asked for batches. The snapshot's pages are read by the hub's reader thread, never on
// gRPC's threads (issue 22). No thread is held by an idle stream: an idle stream is its reactor,
// its WatchStream and gRPC's call state. Streams do not pass the call gate (they never finish by
// themselves); Server::Shutdown ends them through the hub first.
#ifndef TA_SERVER_RPC_WATCH_H_
#define TA_SERVER_RPC_WATCH_H_

#include <grpcpp/grpcpp.h>

#include "server/rpc/services.h"
#include "tokenauthority/v1/token_authority.pb.h"

namespace ta::rpc {

// The reactor for one WatchRevocations call; it deletes itself when the call is done.
grpc::ServerWriteReactor<tokenauthority::v1::WatchRevocationsResponse>* StartWatch(
    grpc::CallbackServerContext* ctx, const tokenauthority::v1::WatchRevocationsRequest* req,
    const ServiceDeps& deps);

}  // namespace ta::rpc

#endif  // TA_SERVER_RPC_WATCH_H_

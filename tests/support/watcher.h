// A raw WatchRevocations reader over gRPC for tests of the stream (tests/rpc): one blocking
// stream, read until a predicate holds or the stream ends, cancelled and drained on
// destruction; and a stub whose HTTP/2 window is small, so the transport holds little of what
// a server sends (a slow reader is soon the server's problem).
//
// Not thread-safe: one thread reads a Watcher.
#ifndef TA_TESTS_SUPPORT_WATCHER_H_
#define TA_TESTS_SUPPORT_WATCHER_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/test_server.h"

namespace ta::testing {

class Watcher {
 public:
  using Response = v1::WatchRevocationsResponse;

  // Opens the stream as the holder of `api_key`, with a 20 s deadline.
  Watcher(v1::TokenAuthority::Stub& stub, const std::string& api_key,
          const v1::WatchRevocationsRequest& request = {}) {
    PrepareContext(&ctx_, api_key);
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    reader_ = stub.WatchRevocations(&ctx_, request);
  }
  ~Watcher() {
    if (ended_) return;
    ctx_.TryCancel();
    Response r;
    while (reader_->Read(&r)) {
    }
    (void)reader_->Finish();
  }
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

  // Appends messages to `out` until `until` is true of one (true) or the stream ends (false:
  // status() then says why).
  bool Read(std::vector<Response>* out, const std::function<bool(const Response&)>& until) {
    Response r;
    while (reader_->Read(&r)) {
      out->push_back(r);
      if (until(r)) return true;
    }
    status_ = reader_->Finish();
    ended_ = true;
    return false;
  }
  grpc::Status status() const { return status_; }
  // The `ta-reason` trailer, once the stream ended.
  std::string reason() const { return ReasonOf(ctx_); }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<Response>> reader_;
  grpc::Status status_;
  bool ended_ = false;
};

// A stub on a channel of its own to `address` whose HTTP/2 window is 1 KiB (no BDP probe).
inline std::unique_ptr<v1::TokenAuthority::Stub> SmallWindowStub(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1024);
  return v1::TokenAuthority::NewStub(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
}

}  // namespace ta::testing

#endif  // TA_TESTS_SUPPORT_WATCHER_H_

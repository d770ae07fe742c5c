// Attack suite, resource part (issue 8), against the real binary: oversized metadata, 10,000
// concurrent streams from one client, slow clients holding connections. Each attack gets a
// definite status, and meanwhile a second client on its own connection keeps being answered
// promptly; afterwards the server still stops cleanly (exit 0).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <iostream>
#include <map>
#include <thread>

#include "absl/strings/numbers.h"
#include "tests/reliability/remote.h"
#include "tests/support/temp_dir.h"

namespace ta::testing {
namespace {

// Probes the server from its own connection until stopped; keeps the slowest answer.
class Prober {
 public:
  explicit Prober(RemoteServer& server)
      : key_(server.admin_key()), stub_(v1::TokenAuthority::NewStub(server.NewChannel())) {
    thread_ = std::thread([this] {
      while (!stop_) {
        v1::GetJwksResponse resp;
        Outcome r = Call(key_, *stub_, &v1::TokenAuthority::Stub::GetJwks, v1::GetJwksRequest(),
                         &resp, absl::Seconds(10));
        ++calls_;
        if (!r.ok()) ++failures_;
        slowest_ = std::max(slowest_, r.took);
        absl::SleepFor(absl::Milliseconds(20));
      }
    });
  }
  // Stops and returns the slowest answer.
  absl::Duration Finish() {
    stop_ = true;
    thread_.join();
    INFO("probe calls " << calls_ << ", failures " << failures_);
    CHECK(calls_ > 0);
    CHECK(failures_ == 0);
    return slowest_;
  }

 private:
  const std::string key_;
  std::unique_ptr<v1::TokenAuthority::Stub> stub_;
  std::atomic<bool> stop_{false};
  int calls_ = 0, failures_ = 0;
  absl::Duration slowest_ = absl::ZeroDuration();
  std::thread thread_;
};

int PortOf(const std::string& address) {
  int port = 0;
  REQUIRE(absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port));
  return port;
}

int ConnectTcp(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  return fd;
}

TEST_CASE("Attack: 1 MB of metadata is refused and the server keeps serving",
          "[reliability][attack][resources]") {
  TempDir dir;
  RemoteServer server(dir.path() + "/data");
  REQUIRE(server.Start().ok());
  const std::string huge(1 << 20, 'a');
  for (const std::string& name : {std::string("x-junk"), std::string("authorization")}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    if (name != "authorization") ctx.AddMetadata("authorization", "Bearer " + server.admin_key());
    ctx.AddMetadata(name, name == "authorization" ? "Bearer " + huge : huge);
    v1::GetJwksResponse resp;
    grpc::Status status = server.api().GetJwks(&ctx, v1::GetJwksRequest(), &resp);
    INFO(name << ": " << status.error_code() << " " << status.error_message());
    // gRPC refuses the header block before any handler runs, so there is no ta-reason.
    CHECK(status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
    CHECK(server.Healthy());
  }
  REQUIRE(server.Stop(SIGTERM).value_or(-1) == 0);
}

TEST_CASE("Attack: 10000 concurrent streams from one client and others are still answered",
          "[reliability][attack][resources]") {
  TempDir dir;
  RemoteServer server(dir.path() + "/data");
  REQUIRE(server.Start().ok());
  v1::TokenPair pair;
  REQUIRE(server.Issue("alice", &pair).ok());

  constexpr int kStreams = 10000;
  struct Pending {
    grpc::ClientContext ctx;
    v1::IntrospectResponse resp;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<v1::IntrospectResponse>> rpc;
  };
  auto stub = v1::TokenAuthority::NewStub(server.NewChannel());
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<Pending>> calls(kStreams);
  v1::IntrospectRequest req;
  req.set_token(pair.access_token());
  Prober prober(server);
  const absl::Time start = absl::Now();
  for (int i = 0; i < kStreams; ++i) {
    calls[i] = std::make_unique<Pending>();
    calls[i]->ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(120)));
    calls[i]->ctx.AddMetadata("authorization", "Bearer " + server.admin_key());
    calls[i]->rpc = stub->AsyncIntrospect(&calls[i]->ctx, req, &cq);
    calls[i]->rpc->Finish(&calls[i]->resp, &calls[i]->status, reinterpret_cast<void*>(i));
  }
  std::map<grpc::StatusCode, int> codes;
  for (int n = 0; n < kStreams; ++n) {
    void* tag = nullptr;
    bool ok = false;
    REQUIRE(cq.Next(&tag, &ok));
    Pending& done = *calls[reinterpret_cast<intptr_t>(tag)];
    ++codes[done.status.error_code()];
    if (done.status.ok()) CHECK(done.resp.active());
  }
  const absl::Duration took = absl::Now() - start;
  const absl::Duration slowest_probe = prober.Finish();
  std::cout << "10,000 streams: done in " << took << "; OK " << codes[grpc::StatusCode::OK]
            << "; slowest answer to another client " << slowest_probe << std::endl;
  CHECK(codes[grpc::StatusCode::OK] == kStreams);
  CHECK(slowest_probe < absl::Seconds(5));
  CHECK(server.Healthy());
  REQUIRE(server.Stop(SIGTERM).value_or(-1) == 0);
}

TEST_CASE("Attack: slow clients holding connections neither stall others nor shutdown",
          "[reliability][attack][resources]") {
  TempDir dir;
  RemoteServer server(dir.path() + "/data");
  REQUIRE(server.Start().ok());
  const int port = PortOf(server.address());
  std::vector<int> fds;
  Prober prober(server);
  // Connect and say nothing; say half of the HTTP/2 preface; the preface and half a frame.
  static const char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  for (int i = 0; i < 300; ++i) {
    int fd = ConnectTcp(port);
    if (i % 3 == 1) CHECK(write(fd, kPreface, 10) == 10);
    if (i % 3 == 2) {
      CHECK(write(fd, kPreface, sizeof(kPreface) - 1) == sizeof(kPreface) - 1);
      CHECK(write(fd, "\x00\x00\x06\x04", 4) == 4);  // a SETTINGS frame header, no payload
    }
    fds.push_back(fd);
  }
  absl::SleepFor(absl::Seconds(2));
  v1::TokenPair pair;
  Outcome issued = server.Issue("alice", &pair);
  CHECK(issued.ok());
  CHECK(issued.took < absl::Seconds(2));
  const absl::Duration slowest_probe = prober.Finish();
  std::cout << "slow clients: 300 stalled connections; slowest answer to another client "
            << slowest_probe << std::endl;
  CHECK(slowest_probe < absl::Seconds(2));
  // Shutdown is not held hostage by them either.
  const absl::Time stop = absl::Now();
  CHECK(server.Stop(SIGTERM).value_or(-1) == 0);
  CHECK(absl::Now() - stop < absl::Seconds(15));
  for (int fd : fds) close(fd);
}

}  // namespace
}  // namespace ta::testing

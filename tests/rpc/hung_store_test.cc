// Issue 22 #5: Introspect of a refresh token read PostgreSQL on gRPC's inline callback threads,
// so with the database hung, grpc.health.v1.Health/Check (served by the same threads) took
// seconds or timed out. A cluster of this test's own is paused (SIGSTOP: connections stay
// open, nothing answers) while 40 clients introspect refresh tokens; health must answer at once.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_server.h"

namespace ta::testing {
namespace {

namespace health = ::grpc::health::v1;

TEST_CASE(
    "Services: a hung store never holds grpc.health.v1 (refresh-token introspection "
    "waits off gRPC's threads)",
    "[rpc][postgres]") {
  std::unique_ptr<OwnPostgres> pg = StartOwnPostgres();
  std::unique_ptr<TestServer> server = pg->NewServer();
  v1::TokenPair pair;
  REQUIRE(server->Issue("alice", &pair).ok());

  REQUIRE(pg->cluster->Pause().ok());
  absl::Cleanup resume = [&pg] { (void)pg->cluster->Resume(); };
  std::atomic<bool> stop{false};
  std::atomic<int> sent{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 40; ++i) {
    clients.emplace_back([&] {
      while (!stop.load()) {
        v1::IntrospectRequest req;
        req.set_token(pair.refresh_token());
        v1::IntrospectResponse resp;
        grpc::ClientContext ctx;
        PrepareContext(&ctx, server->admin_key());
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
        ++sent;
        (void)server->api().Introspect(&ctx, req, &resp);
      }
    });
  }
  // Let the introspections reach the server and wait on the store.
  while (sent.load() < 40) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  auto channel = grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials());
  auto stub = health::Health::NewStub(channel);
  absl::Duration slowest;
  for (int i = 0; i < 10; ++i) {
    health::HealthCheckRequest req;
    health::HealthCheckResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    const absl::Time start = absl::Now();
    grpc::Status status = stub->Check(&ctx, req, &resp);
    slowest = std::max(slowest, absl::Now() - start);
    INFO(status.error_message());
    CHECK(status.ok());  // SERVING or NOT_SERVING, but an answer
  }
  INFO("slowest health check: " << absl::FormatDuration(slowest));
  CHECK(slowest < absl::Milliseconds(500));

  stop = true;
  for (std::thread& t : clients) t.join();
  std::move(resume).Invoke();
  server.reset();
}

}  // namespace
}  // namespace ta::testing

// Graceful shutdown under load (issue 8): SIGTERM while 1,000 calls (issue, refresh,
// introspect) are in flight. Every call either finishes (OK) or is refused as UNAVAILABLE;
// the server exits 0 within its grace; the store reopens cleanly and holds every
// acknowledged issue and rotation.
#include <signal.h>

#include <catch2/catch.hpp>
#include <iostream>
#include <map>

#include "tests/reliability/remote.h"
#include "tests/support/temp_dir.h"

namespace ta::testing {
namespace {

struct Pending {
  enum Kind { kIssue, kRefresh, kIntrospect } kind;
  int family = -1;  // kRefresh: index into the pre-issued families
  grpc::ClientContext ctx;
  v1::TokenPair pair;
  v1::IntrospectResponse introspection;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::TokenPair>> pair_rpc;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::IntrospectResponse>> introspect_rpc;
};

TEST_CASE(
    "Shutdown: SIGTERM with 1000 calls in flight: each finishes or is UNAVAILABLE and exit is 0",
    "[reliability][shutdown]") {
  TempDir dir;
  RemoteServer server(dir.path() + "/data", {"--shutdown_grace=10s"});
  REQUIRE(server.Start().ok());
  std::vector<v1::TokenPair> families(200);
  for (v1::TokenPair& f : families) REQUIRE(server.Issue("bob", &f).ok());

  constexpr int kCalls = 1000;
  std::vector<std::unique_ptr<v1::TokenAuthority::Stub>> stubs;
  for (int i = 0; i < 4; ++i) stubs.push_back(v1::TokenAuthority::NewStub(server.NewChannel()));
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<Pending>> calls(kCalls);
  for (int i = 0; i < kCalls; ++i) {
    auto c = std::make_unique<Pending>();
    c->ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    c->ctx.AddMetadata("authorization", "Bearer " + server.admin_key());
    v1::TokenAuthority::Stub& stub = *stubs[i % stubs.size()];
    void* tag = reinterpret_cast<void*>(static_cast<intptr_t>(i));
    if (i % 5 == 0 && i / 5 < static_cast<int>(families.size())) {
      c->kind = Pending::kRefresh;
      c->family = i / 5;
      v1::RefreshTokensRequest req;
      req.set_refresh_token(families[c->family].refresh_token());
      c->pair_rpc = stub.AsyncRefreshTokens(&c->ctx, req, &cq);
      c->pair_rpc->Finish(&c->pair, &c->status, tag);
    } else if (i % 2 == 0) {
      c->kind = Pending::kIssue;
      v1::IssueTokensRequest req;
      req.set_subject("carol");
      req.set_client_id("web");
      c->pair_rpc = stub.AsyncIssueTokens(&c->ctx, req, &cq);
      c->pair_rpc->Finish(&c->pair, &c->status, tag);
    } else {
      c->kind = Pending::kIntrospect;
      v1::IntrospectRequest req;
      req.set_token(families[i % families.size()].access_token());
      c->introspect_rpc = stub.AsyncIntrospect(&c->ctx, req, &cq);
      c->introspect_rpc->Finish(&c->introspection, &c->status, tag);
    }
    calls[i] = std::move(c);
  }
  // SIGTERM as soon as the first answer is back, so the others are in flight or queued.
  absl::Time term_at = absl::InfiniteFuture();
  std::map<grpc::StatusCode, int> codes;
  for (int n = 0; n < kCalls; ++n) {
    void* tag = nullptr;
    bool ok = false;
    REQUIRE(cq.Next(&tag, &ok));
    if (n == 0) {
      term_at = absl::Now();
      REQUIRE(kill(server.pid(), SIGTERM) == 0);
    }
    const Pending& c = *calls[reinterpret_cast<intptr_t>(tag)];
    ++codes[c.status.error_code()];
    INFO("call " << reinterpret_cast<intptr_t>(tag) << ": " << c.status.error_code() << " "
                 << c.status.error_message());
    CHECK((c.status.ok() || c.status.error_code() == grpc::StatusCode::UNAVAILABLE));
  }
  absl::StatusOr<int> code = server.Stop(SIGTERM, absl::Seconds(30));
  const absl::Duration stop_took = absl::Now() - term_at;
  REQUIRE(code.ok());
  CHECK(*code == 0);
  CHECK(stop_took < absl::Seconds(15));
  CHECK(codes[grpc::StatusCode::OK] > 1);  // calls were in flight at the signal, and finished
  CHECK(server.ReadStderr().find("token-authority: stopped") != std::string::npos);
  std::cout << "shutdown under load: " << codes[grpc::StatusCode::OK] << " OK, "
            << codes[grpc::StatusCode::UNAVAILABLE] << " UNAVAILABLE of " << kCalls
            << "; exit 0 after " << stop_took << std::endl;

  // Reopens cleanly; everything acknowledged is there.
  REQUIRE(server.Start().ok());
  for (const auto& c : calls) {
    if (!c->status.ok() || c->kind == Pending::kIntrospect) continue;
    v1::Family stored;
    REQUIRE(server.GetFamily(c->pair.family_id(), &stored).ok());
    if (c->kind == Pending::kRefresh) {
      CHECK(stored.generation() == 1);
      v1::IntrospectResponse r;
      REQUIRE(server.Introspect(c->pair.refresh_token(), &r).ok());
      CHECK(r.active());
    }
  }
  REQUIRE(server.Stop(SIGTERM).value_or(-1) == 0);
}

}  // namespace
}  // namespace ta::testing

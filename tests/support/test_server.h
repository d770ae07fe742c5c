// An in-process token-authority server for end-to-end tests over a real gRPC channel:
// a temp data dir, port 0, and a FakeClock the test moves (no sleeping). Also the helpers
// that read a call's `ta-reason` trailer.
//
// The store is RocksDB, or PostgreSQL when the environment has TA_TEST_STORE=postgres: then
// each TestServer gets a fresh database in the run's test cluster (pg_cluster.h). CTest runs
// the integration tests both ways (tests/integration/CMakeLists.txt).
#ifndef TA_TESTS_SUPPORT_TEST_SERVER_H_
#define TA_TESTS_SUPPORT_TEST_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "server/server.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/temp_dir.h"
#include "tokenauthority/v1/token_authority.grpc.pb.h"

namespace ta::testing {

namespace v1 = ::tokenauthority::v1;

// The outcome of one unary call: status plus the reason trailer.
struct CallResult {
  grpc::Status status;
  std::string reason;
  bool ok() const { return status.ok(); }
};

// Fills a client context with a 10 s deadline and, when non-empty, the API key.
void PrepareContext(grpc::ClientContext* ctx, const std::string& api_key);
// The `ta-reason` trailer of a finished call.
std::string ReasonOf(const grpc::ClientContext& ctx);

// Runs a unary stub method as the holder of `api_key` and collects status + reason.
template <typename Stub, typename Req, typename Resp>
CallResult CallAs(const std::string& api_key, Stub& stub,
                  grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                  const Req& req, Resp* resp) {
  grpc::ClientContext ctx;
  PrepareContext(&ctx, api_key);
  grpc::Status status = (stub.*method)(&ctx, req, resp);
  return CallResult{status, ReasonOf(ctx)};
}

// One line of a callers file: a caller NAME with ROLE, proving itself with `api_key`.
struct KeyCaller {
  std::string name;
  std::string role;
  std::string api_key;
};
// For a TestServer tweak: writes a callers file beside o.data_dir listing `callers` (their keys
// hashed) and points o.callers_file at it.
void UseCallers(ServerOptions& o, const std::vector<KeyCaller>& callers);

class TestServer {
 public:
  // `tweak` may adjust the options (lifetimes, grace...) before the server starts.
  explicit TestServer(const std::function<void(ServerOptions&)>& tweak = nullptr);
  ~TestServer();

  FakeClock& clock() { return clock_; }
  v1::TokenAuthority::Stub& api() { return *api_; }
  v1::TokenAdmin::Stub& admin() { return *admin_; }
  const std::string& address() const { return address_; }
  // The HTTP face's "host:port" when the options set http_listen, else "".
  std::string http_address() const { return server_->http_address(); }
  // Stops and starts again on the same data (same clock), e.g. to check persistence;
  // `tweak` changes the options from then on (e.g. shorter lifetimes after an incident).
  void Restart(const std::function<void(ServerOptions&)>& tweak = nullptr);

  // The local admin key the server generated (<data_dir>/admin.key).
  const std::string& admin_key() const { return admin_key_; }
  const std::string& data_dir() const { return options_.data_dir; }
  const ServerOptions& options() const { return options_; }

  // Runs a unary call as the local admin.
  template <typename Stub, typename Req, typename Resp>
  CallResult Call(Stub& stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                  const Req& req, Resp* resp) {
    return CallAs(admin_key_, stub, method, req, resp);
  }

  // Convenience calls as the local admin; the test checks the result.
  CallResult Issue(const v1::IssueTokensRequest& req, v1::TokenPair* out);
  CallResult Issue(const std::string& subject, v1::TokenPair* out);
  CallResult Refresh(const std::string& refresh_token, v1::TokenPair* out,
                     const std::string& scope = "");
  v1::IntrospectResponse Introspect(const std::string& token, const std::string& audience = "");

 private:
  void StartServer();

  FakeClock clock_;
  TempDir dir_;
  std::unique_ptr<TestDatabase> database_;  // with TA_TEST_STORE=postgres; outlives server_
  ServerOptions options_;
  std::unique_ptr<Server> server_;
  std::string address_;
  std::string admin_key_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TokenAuthority::Stub> api_;
  std::unique_ptr<v1::TokenAdmin::Stub> admin_;
};

// A TestServer on the PostgreSQL database `dsn` (a throwaway cluster's), with the shared
// key-encryption key file `kek_file` (written, mode 0600, when absent: replicas of one test
// share it) and keys published at once. Replicas are several of these on one dsn.
std::unique_ptr<TestServer> PostgresTestServer(const std::string& dsn, const std::string& kek_file);

// A PostgreSQL cluster of the test's own (one it may pause or kill: never the run's shared
// one) with a fresh database, and a directory for the key-encryption key its servers share.
// Declare it before the servers NewServer makes, so that they stop first.
struct OwnPostgres {
  std::unique_ptr<PgCluster> cluster;
  std::unique_ptr<TestDatabase> db;
  TempDir dir;
  // A PostgresTestServer over `db`; several are replicas of one another.
  std::unique_ptr<TestServer> NewServer() const;
};
// Starts the cluster (with a watchdog) and creates the database; Catch2: REQUIREs both.
std::unique_ptr<OwnPostgres> StartOwnPostgres();

}  // namespace ta::testing

#endif  // TA_TESTS_SUPPORT_TEST_SERVER_H_

#include "tests/support/test_server.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "server/core/callers.h"

namespace ta::testing {

void UseCallers(ServerOptions& o, const std::vector<KeyCaller>& callers) {
  const std::string path = o.data_dir + ".callers";
  std::ofstream out(path);
  for (const KeyCaller& c : callers) {
    out << c.name << " " << c.role << " " << core::CallerRegistry::KeyCredential(c.api_key) << "\n";
  }
  o.callers_file = path;
}

void PrepareContext(grpc::ClientContext* ctx, const std::string& api_key) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!api_key.empty()) ctx->AddMetadata("authorization", "Bearer " + api_key);
}

std::string ReasonOf(const grpc::ClientContext& ctx) {
  const auto& trailers = ctx.GetServerTrailingMetadata();
  auto it = trailers.find("ta-reason");
  return it == trailers.end() ? std::string() : std::string(it->second.data(), it->second.size());
}

TestServer::TestServer(const std::function<void(ServerOptions&)>& tweak) {
  options_.listen = "127.0.0.1:0";
  options_.data_dir = dir_.path() + "/data";
  options_.authority.default_audience = {"api"};
  options_.authority.clock = &clock_;
  if (const char* store = std::getenv("TA_TEST_STORE"); store != nullptr && *store != '\0') {
    REQUIRE(std::string(store) == "postgres");
    absl::StatusOr<std::unique_ptr<TestDatabase>> db = TestDatabase::Create();
    INFO(db.status().ToString());
    REQUIRE(db.ok());
    database_ = *std::move(db);
    options_.store.engine = "postgres";
    options_.store.postgres_dsn = database_->dsn();
    // Replicas share a sealed key ring in the store (DESIGN §11): a fresh KEK per server.
    options_.key_encryption_key_file = dir_.path() + "/kek";
    std::ofstream(options_.key_encryption_key_file)
        << "q83vEjRWeJq8vMrU3u/wEjRWeJq8vMrU3u/wEjRWeJo=\n";
    std::filesystem::permissions(
        options_.key_encryption_key_file,
        std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
        std::filesystem::perm_options::replace);
    // Rotations sign at once, as with key files, so one test reads the same on both stores
    // (the publish delay is tested in tests/token and across replicas in tests/replicas).
    options_.key_publish_delay = absl::ZeroDuration();
  }
  if (tweak) tweak(options_);
  if (options_.store.engine == "postgres") {
    // The server's (fake) clock stands for the database's too: the follower measures no
    // offset, and the reaper decides by it.
    options_.store.postgres_clock_for_testing = options_.authority.clock;
  }
  REQUIRE(ValidateServerOptions(options_).ok());
  StartServer();
}

TestServer::~TestServer() {
  if (server_) server_->Shutdown(absl::ZeroDuration());
}

void TestServer::StartServer() {
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options_);
  INFO(server.status().ToString());
  REQUIRE(server.ok());
  server_ = std::move(*server);
  address_ = server_->address();
  std::ifstream key(options_.data_dir + "/admin.key");
  std::getline(key, admin_key_);
  channel_ = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
  api_ = v1::TokenAuthority::NewStub(channel_);
  admin_ = v1::TokenAdmin::NewStub(channel_);
}

void TestServer::Restart(const std::function<void(ServerOptions&)>& tweak) {
  server_->Shutdown(absl::ZeroDuration());
  server_->Wait();
  server_.reset();
  if (tweak) {
    tweak(options_);
    if (options_.store.engine == "postgres") {
      options_.store.postgres_clock_for_testing = options_.authority.clock;
    }
    REQUIRE(ValidateServerOptions(options_).ok());
  }
  StartServer();
}

CallResult TestServer::Issue(const v1::IssueTokensRequest& req, v1::TokenPair* out) {
  return Call(*api_, &v1::TokenAuthority::Stub::IssueTokens, req, out);
}

CallResult TestServer::Issue(const std::string& subject, v1::TokenPair* out) {
  v1::IssueTokensRequest req;
  req.set_subject(subject);
  req.set_client_id("web");
  req.set_scope("read write");
  (*req.mutable_session_metadata())["device"] = "test";
  return Issue(req, out);
}

CallResult TestServer::Refresh(const std::string& refresh_token, v1::TokenPair* out,
                               const std::string& scope) {
  v1::RefreshTokensRequest req;
  req.set_refresh_token(refresh_token);
  req.set_scope(scope);
  return Call(*api_, &v1::TokenAuthority::Stub::RefreshTokens, req, out);
}

v1::IntrospectResponse TestServer::Introspect(const std::string& token,
                                              const std::string& audience) {
  v1::IntrospectRequest req;
  req.set_token(token);
  req.set_audience(audience);
  req.set_include_reason(true);
  v1::IntrospectResponse resp;
  CallResult r = Call(*api_, &v1::TokenAuthority::Stub::Introspect, req, &resp);
  INFO(r.status.error_message());
  REQUIRE(r.ok());
  return resp;
}

std::unique_ptr<TestServer> PostgresTestServer(const std::string& dsn,
                                               const std::string& kek_file) {
  if (!std::filesystem::exists(kek_file)) {
    std::ofstream(kek_file) << "q83vEjRWeJq8vMrU3u/wEjRWeJq8vMrU3u/wEjRWeJo=\n";
    std::filesystem::permissions(
        kek_file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
        std::filesystem::perm_options::replace);
  }
  return std::make_unique<TestServer>([&](ServerOptions& o) {
    o.store.engine = "postgres";
    o.store.postgres_dsn = dsn;
    o.key_encryption_key_file = kek_file;
    o.key_publish_delay = absl::ZeroDuration();
  });
}

std::unique_ptr<TestServer> OwnPostgres::NewServer() const {
  return PostgresTestServer(db->dsn(), dir.Sub("kek"));
}

std::unique_ptr<OwnPostgres> StartOwnPostgres() {
  auto pg = std::make_unique<OwnPostgres>();
  absl::StatusOr<std::unique_ptr<PgCluster>> cluster = PgCluster::Start(/*watchdog=*/true);
  INFO(cluster.status().ToString());
  REQUIRE(cluster.ok());
  pg->cluster = *std::move(cluster);
  absl::StatusOr<std::unique_ptr<TestDatabase>> db = TestDatabase::CreateIn(pg->cluster->dsn());
  INFO(db.status().ToString());
  REQUIRE(db.ok());
  pg->db = *std::move(db);
  return pg;
}

}  // namespace ta::testing

// The server binary's life cycle (issue 2): starts on port 0 with a temp data dir, answers
// health, lists its services through reflection, and exits 0 on SIGTERM. Its command line
// (flags, --help, --version) is server_flags_test.cc's.
#include "tests/support/server_process.h"

#include <arpa/inet.h>
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "tests/support/temp_dir.h"
#include "tokenauthority/v1/token_authority.grpc.pb.h"

namespace ta::testing {
namespace {

namespace health = ::grpc::health::v1;
namespace reflection = ::grpc::reflection::v1alpha;
namespace v1 = ::tokenauthority::v1;

std::unique_ptr<ServerProcess> StartServer(const TempDir& dir,
                                           std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--listen=127.0.0.1:0", "--data_dir=" + dir.path()};
  args.insert(args.end(), extra.begin(), extra.end());
  absl::StatusOr<std::unique_ptr<ServerProcess>> proc = ServerProcess::Start(ServerBinary(), args);
  INFO(proc.status().ToString());
  REQUIRE(proc.ok());
  return std::move(*proc);
}

std::set<std::string> ListServices(const std::string& address) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto stub = reflection::ServerReflection::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->ServerReflectionInfo(&ctx);
  reflection::ServerReflectionRequest req;
  req.set_list_services("");
  REQUIRE(stream->Write(req));
  stream->WritesDone();
  reflection::ServerReflectionResponse resp;
  std::set<std::string> names;
  while (stream->Read(&resp)) {
    for (const auto& s : resp.list_services_response().service()) names.insert(s.name());
  }
  REQUIRE(stream->Finish().ok());
  return names;
}

// The file descriptors reflection returns for `symbol`, parsed; REQUIREs an answer with no
// error response (grpcurl's "Symbol not found" is an error_response).
std::vector<google::protobuf::FileDescriptorProto> FilesContaining(const std::string& address,
                                                                   const std::string& symbol) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto stub = reflection::ServerReflection::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->ServerReflectionInfo(&ctx);
  reflection::ServerReflectionRequest req;
  req.set_file_containing_symbol(symbol);
  REQUIRE(stream->Write(req));
  stream->WritesDone();
  reflection::ServerReflectionResponse resp;
  REQUIRE(stream->Read(&resp));
  INFO(symbol << ": " << resp.error_response().error_message());
  REQUIRE_FALSE(resp.has_error_response());
  std::vector<google::protobuf::FileDescriptorProto> files;
  for (const std::string& bytes : resp.file_descriptor_response().file_descriptor_proto()) {
    REQUIRE(files.emplace_back().ParseFromString(bytes));
  }
  while (stream->Read(&resp)) {
  }
  REQUIRE(stream->Finish().ok());
  return files;
}

// Issue 16 (4b): grpc.health.v1.Health was listed but "Symbol not found", so grpcurl could
// neither describe nor call it.
TEST_CASE("Server: reflection describes every service it lists, health included",
          "[integration][reflection]") {
  TempDir dir;
  std::unique_ptr<ServerProcess> server = StartServer(dir);
  for (const std::string& service : ListServices(server->address())) {
    std::vector<google::protobuf::FileDescriptorProto> files =
        FilesContaining(server->address(), service);
    REQUIRE_FALSE(files.empty());
    std::string package = service.substr(0, service.rfind('.'));
    std::string name = service.substr(service.rfind('.') + 1);
    const google::protobuf::FileDescriptorProto& file = files.front();
    CHECK(file.package() == package);
    bool found = false;
    for (const auto& s : file.service()) found = found || s.name() == name;
    INFO(service << " in " << file.name());
    CHECK(found);
  }
  std::vector<google::protobuf::FileDescriptorProto> health =
      FilesContaining(server->address(), "grpc.health.v1.Health");
  CHECK(health.front().name() == "grpc/health/v1/health.proto");
  // grpcurl builds requests from the message types, so they must resolve too.
  CHECK_FALSE(FilesContaining(server->address(), "grpc.health.v1.HealthCheckRequest").empty());
}

TEST_CASE("Server: serves health and reflection, stops cleanly on SIGTERM", "[integration]") {
  TempDir dir;
  std::unique_ptr<ServerProcess> server = StartServer(dir);
  pid_t pid = server->pid();

  auto channel = grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials());
  auto health_stub = health::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  health::HealthCheckRequest req;
  health::HealthCheckResponse resp;
  REQUIRE(health_stub->Check(&ctx, req, &resp).ok());
  CHECK(resp.status() == health::HealthCheckResponse::SERVING);

  std::set<std::string> services = ListServices(server->address());
  CHECK(services.count("tokenauthority.v1.TokenAuthority") == 1);
  CHECK(services.count("tokenauthority.v1.TokenAdmin") == 1);
  CHECK(services.count("grpc.health.v1.Health") == 1);

  absl::StatusOr<int> code = server->Stop(SIGTERM);
  REQUIRE(code.ok());
  CHECK(*code == 0);
  CHECK(kill(pid, 0) == -1);  // reaped: no leftover process
}

TEST_CASE("Server: SIGINT also stops it with exit code 0", "[integration]") {
  TempDir dir;
  std::unique_ptr<ServerProcess> server = StartServer(dir);
  absl::StatusOr<int> code = server->Stop(SIGINT);
  REQUIRE(code.ok());
  CHECK(*code == 0);
}

// Issue 23 (2): gRPC sets SO_REUSEPORT by default, so a second server on an occupied --listen
// started and shared the port with the first (two authorities answering at random).
TEST_CASE("Server: an occupied --listen fails the start like an occupied --http_listen",
          "[integration][bind]") {
  TempDir first_dir, second_dir;
  std::unique_ptr<ServerProcess> first = StartServer(first_dir);
  ExitResult grpc_taken = RunToExit(
      ServerBinary(), {"--listen=" + first->address(), "--data_dir=" + second_dir.path()});
  INFO(grpc_taken.output);
  CHECK(grpc_taken.code == 1);
  CHECK(absl::StrContains(grpc_taken.output, "cannot start: --listen: cannot listen on " +
                                                 first->address() + ": Address already in use"));
  // The first server still answers, alone.
  CHECK(ListServices(first->address()).count("tokenauthority.v1.TokenAuthority") == 1);

  // The HTTP face on a port the first server's gRPC holds: the same exit code and words.
  ExitResult http_taken =
      RunToExit(ServerBinary(), {"--listen=127.0.0.1:0", "--data_dir=" + second_dir.path(),
                                 "--http_listen=" + first->address()});
  INFO(http_taken.output);
  CHECK(http_taken.code == 1);
  CHECK(absl::StrContains(http_taken.output,
                          "cannot listen on " + first->address() + ": Address already in use"));
  REQUIRE(first->Stop(SIGTERM).value_or(-1) == 0);
}

TEST_CASE("Server: gRPC health answers for each service by name", "[integration]") {
  TempDir dir;
  std::unique_ptr<ServerProcess> server = StartServer(dir);
  auto stub = health::Health::NewStub(
      grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials()));
  for (const char* service :
       {"", "tokenauthority.v1.TokenAuthority", "tokenauthority.v1.TokenAdmin", "nope.Service"}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    health::HealthCheckRequest req;
    req.set_service(service);
    health::HealthCheckResponse resp;
    grpc::Status status = stub->Check(&ctx, req, &resp);
    INFO(service << ": " << status.error_message());
    if (std::string(service) == "nope.Service") {
      CHECK(status.error_code() == grpc::StatusCode::NOT_FOUND);
    } else {
      REQUIRE(status.ok());
      CHECK(resp.status() == health::HealthCheckResponse::SERVING);
    }
  }
}

// A port nobody listens on now (bound once, then freed).
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  socklen_t len = sizeof(addr);
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  close(fd);
  return ntohs(addr.sin_port);
}

std::string AdminKey(const TempDir& dir) {
  std::ifstream in(dir.path() + "/admin.key");
  std::string key;
  std::getline(in, key);
  return key;
}

std::unique_ptr<v1::TokenAuthority::Stub> ApiStub(const std::string& address) {
  return v1::TokenAuthority::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

std::string Kids(const std::string& address, const std::string& key) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + key);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::GetJwksResponse jwks;
  REQUIRE(ApiStub(address)->GetJwks(&ctx, v1::GetJwksRequest(), &jwks).ok());
  std::string kids;
  for (const v1::KeyInfo& k : jwks.keys()) kids += k.kid() + " ";
  return kids;
}

TEST_CASE("Server: a restart keeps the generated signing key in a private directory",
          "[integration]") {
  TempDir dir;
  std::string before;
  {
    std::unique_ptr<ServerProcess> server = StartServer(dir);
    before = Kids(server->address(), AdminKey(dir));
    REQUIRE(server->Stop(SIGTERM).value_or(-1) == 0);
  }
  std::unique_ptr<ServerProcess> server = StartServer(dir);
  CHECK(Kids(server->address(), AdminKey(dir)) == before);
  CHECK_FALSE(before.empty());
  std::filesystem::path keys = std::filesystem::path(dir.path()) / "keys";
  REQUIRE(std::filesystem::is_directory(keys));
  auto perms = std::filesystem::status(keys).permissions();
  CHECK((perms & std::filesystem::perms::group_all) == std::filesystem::perms::none);
  CHECK((perms & std::filesystem::perms::others_all) == std::filesystem::perms::none);
}

// Backs the README's grpcurl walkthrough: the same calls with the same field values, against
// the binary started with scripts/run.sh's flags.
TEST_CASE("Server: the README walkthrough works as written", "[integration][readme]") {
  TempDir dir;
  std::unique_ptr<ServerProcess> server = StartServer(dir, {"--default_audience=api"});
  auto channel = grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials());
  auto api = v1::TokenAuthority::NewStub(channel);
  auto admin = v1::TokenAdmin::NewStub(channel);
  const std::string key = AdminKey(dir);
  REQUIRE_FALSE(key.empty());
  auto call = [&key](auto&& fn) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + key);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status status = fn(&ctx);
    auto it = ctx.GetServerTrailingMetadata().find("ta-reason");
    std::string reason = it == ctx.GetServerTrailingMetadata().end()
                             ? ""
                             : std::string(it->second.data(), it->second.size());
    return std::make_pair(status, reason);
  };

  // 1. IssueTokens
  v1::IssueTokensRequest issue;
  issue.set_subject("alice");
  issue.set_client_id("web");
  issue.set_scope("read write");
  (*issue.mutable_session_metadata())["device"] = "laptop";
  v1::TokenPair first;
  REQUIRE(call([&](auto* c) { return api->IssueTokens(c, issue, &first); }).first.ok());

  // 2. Introspect
  v1::IntrospectRequest intro;
  intro.set_token(first.access_token());
  v1::IntrospectResponse info;
  REQUIRE(call([&](auto* c) { return api->Introspect(c, intro, &info); }).first.ok());
  CHECK(info.active());
  CHECK(info.subject() == "alice");

  // 3. RefreshTokens
  v1::RefreshTokensRequest refresh;
  refresh.set_refresh_token(first.refresh_token());
  v1::TokenPair second;
  REQUIRE(call([&](auto* c) { return api->RefreshTokens(c, refresh, &second); }).first.ok());

  // 4. The same refresh again: reuse, the family is revoked.
  v1::TokenPair reused;
  auto [status, reason] = call([&](auto* c) { return api->RefreshTokens(c, refresh, &reused); });
  CHECK(status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(reason == "refresh_token_reused");

  // 5. A second session (her phone), then RevokeFamily of it.
  v1::IssueTokensRequest phone = issue;
  phone.set_scope("read");
  (*phone.mutable_session_metadata())["device"] = "phone";
  v1::TokenPair session;
  REQUIRE(call([&](auto* c) { return api->IssueTokens(c, phone, &session); }).first.ok());
  v1::RevokeFamilyRequest revoke_family;
  revoke_family.set_family_id(session.family_id());
  revoke_family.set_reason("logout");
  v1::RevokeFamilyResponse revoked;
  REQUIRE(call([&](auto* c) { return api->RevokeFamily(c, revoke_family, &revoked); }).first.ok());
  CHECK(revoked.changed());

  // 6. RevokeSubject: logout everywhere.
  v1::TokenPair last;
  REQUIRE(call([&](auto* c) { return api->IssueTokens(c, issue, &last); }).first.ok());
  v1::RevokeSubjectRequest revoke_subject;
  revoke_subject.set_subject("alice");
  revoke_subject.set_reason("password_change");
  v1::RevokeSubjectResponse cutoff;
  REQUIRE(
      call([&](auto* c) { return admin->RevokeSubject(c, revoke_subject, &cutoff); }).first.ok());
  intro.set_token(last.access_token());
  REQUIRE(call([&](auto* c) { return api->Introspect(c, intro, &info); }).first.ok());
  CHECK_FALSE(info.active());

  // 7. ListFamilies with revoked sessions.
  v1::ListFamiliesRequest list;
  list.set_subject("alice");
  list.set_include_revoked(true);
  v1::ListFamiliesResponse families;
  REQUIRE(call([&](auto* c) { return admin->ListFamilies(c, list, &families); }).first.ok());
  CHECK(families.families_size() == 3);

  REQUIRE(server->Stop(SIGTERM).value_or(-1) == 0);
}

TEST_CASE("Server: no token, API key or key material reaches its log", "[integration][secrets]") {
  TempDir dir;
  std::unique_ptr<ServerProcess> server = StartServer(dir, {"--default_audience=api"});
  const std::string key = AdminKey(dir);
  auto api = ApiStub(server->address());
  std::vector<std::string> secrets = {key};
  auto ctx_for = [&key](grpc::ClientContext* ctx, const std::string& bearer) {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    ctx->AddMetadata("authorization", "Bearer " + bearer);
  };
  v1::IssueTokensRequest issue;
  issue.set_subject("alice");
  issue.set_client_id("web");
  v1::TokenPair pair;
  {
    grpc::ClientContext ctx;
    ctx_for(&ctx, key);
    REQUIRE(api->IssueTokens(&ctx, issue, &pair).ok());
  }
  secrets.push_back(pair.access_token());
  secrets.push_back(pair.refresh_token());
  for (int i = 0; i < 2; ++i) {  // the second refresh is a reuse: an error path
    grpc::ClientContext ctx;
    ctx_for(&ctx, key);
    v1::RefreshTokensRequest refresh;
    refresh.set_refresh_token(pair.refresh_token());
    v1::TokenPair next;
    if (api->RefreshTokens(&ctx, refresh, &next).ok()) {
      secrets.push_back(next.access_token());
      secrets.push_back(next.refresh_token());
    }
  }
  {
    grpc::ClientContext ctx;
    ctx_for(&ctx, "wrong-key-that-must-not-be-logged");
    v1::IntrospectRequest intro;
    intro.set_token(pair.access_token());
    v1::IntrospectResponse resp;
    CHECK_FALSE(api->Introspect(&ctx, intro, &resp).ok());
    secrets.push_back("wrong-key-that-must-not-be-logged");
  }
  REQUIRE(server->Stop(SIGTERM).value_or(-1) == 0);

  // Key material: the refresh secret and the body lines of every private key PEM.
  for (const auto& entry : std::filesystem::directory_iterator(dir.path() + "/keys")) {
    std::ifstream in(entry.path());
    std::string line;
    while (std::getline(in, line)) {
      if (line.size() >= 16 && line.rfind("-----", 0) != 0) secrets.push_back(line);
    }
  }
  const std::string log = server->ReadStderr();
  CHECK(log.find("admin.key") != std::string::npos);  // says where the key is...
  for (const std::string& secret : secrets) {
    INFO("secret of length " << secret.size());
    CHECK(log.find(secret) == std::string::npos);  // ...never what it is
  }
}

// Issue 23 (5): the default issuer "token-authority" is not a URL, so OIDC discovery clients
// refused the metadata. Served on a known port, the HTTP face's URL is the default issuer;
// otherwise the start warns.
TEST_CASE("Server: the issuer defaults to the HTTP face's URL, and a non-URL one is warned of",
          "[integration][issuer]") {
  TempDir dir;
  const std::string http = absl::StrCat("127.0.0.1:", FreePort());
  std::unique_ptr<ServerProcess> server = StartServer(dir, {"--http_listen=" + http});
  const std::string key = AdminKey(dir);
  auto api = ApiStub(server->address());
  v1::TokenPair pair;
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + key);
    v1::IssueTokensRequest issue;
    issue.set_subject("alice");
    issue.set_client_id("web");
    issue.add_audience("api");
    grpc::Status issued = api->IssueTokens(&ctx, issue, &pair);
    INFO(issued.error_message() << "\nserver stderr: " << server->ReadStderr());
    REQUIRE(issued.ok());
  }
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + key);
  v1::IntrospectRequest intro;
  intro.set_token(pair.access_token());
  v1::IntrospectResponse info;
  REQUIRE(api->Introspect(&ctx, intro, &info).ok());
  CHECK(info.active());
  CHECK(info.claims().fields().at("iss").string_value() == "http://" + http);
  CHECK_FALSE(absl::StrContains(server->ReadStderr(), "is not a URL"));
  REQUIRE(server->Stop(SIGTERM).value_or(-1) == 0);

  TempDir other;  // port 0: the URL is not known before the bind; an explicit one is not a URL
  for (const std::vector<std::string>& flags :
       {std::vector<std::string>{"--http_listen=127.0.0.1:0"},
        std::vector<std::string>{"--http_listen=" + http, "--issuer=token-authority"}}) {
    std::unique_ptr<ServerProcess> warned = StartServer(other, flags);
    // The warning follows the listening lines.
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (!absl::StrContains(warned->ReadStderr(), "warning: --issuer") &&
           absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    INFO(warned->ReadStderr());
    CHECK(absl::StrContains(warned->ReadStderr(),
                            "warning: --issuer=token-authority is not a URL: OIDC discovery"));
    REQUIRE(warned->Stop(SIGTERM).value_or(-1) == 0);
  }
}

}  // namespace
}  // namespace ta::testing

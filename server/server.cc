#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/error.h"
#include "base/net.h"
#include "base/status_macros.h"
#include "grpc/health/v1/health.pb.h"
#include "server/audit_log.h"
#include "server/http/endpoints.h"
#include "server/http/listener.h"
#include "server/metrics/metered_store.h"
#include "server/metrics/prometheus_metrics.h"
#include "server/readiness.h"
#include "storage/rocksdb/rocksdb_store.h"

namespace ta {
namespace {

constexpr int kMaxMessageBytes = 64 * 1024;
// What the store keeps past the allowed clock offset before deleting an expired record.
constexpr absl::Duration kPurgeLeeway = absl::Minutes(1);

absl::Status FlagError(absl::string_view flag, absl::string_view why) {
  return InvalidField(flag, absl::StrCat("--", flag, ": ", why));
}

// Splits "host:port" / "[v6]:port".
absl::Status SplitHostPort(absl::string_view listen, std::string* host, int* port) {
  size_t colon = listen.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return FlagError("listen", "expected HOST:PORT");
  }
  *host = std::string(listen.substr(0, colon));
  if (!absl::SimpleAtoi(listen.substr(colon + 1), port) || *port < 0 || *port > 65535) {
    return FlagError("listen", "port must be 0..65535");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadPem(absl::string_view flag, const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  if (!in || !(ss << in.rdbuf())) return FlagError(flag, "cannot read " + path);
  return ss.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const ServerOptions& o) {
  if (o.tls_cert.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  ASSIGN_OR_RETURN(pair.cert_chain, ReadPem("tls_cert", o.tls_cert));
  ASSIGN_OR_RETURN(pair.private_key, ReadPem("tls_key", o.tls_key));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!o.tls_client_ca.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPem("tls_client_ca", o.tls_client_ca));
    ssl.client_certificate_request =
        o.tls_allow_no_client_cert ? GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY
                                   : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

// Why gRPC could not bind `host`:`port`, in the words the HTTP face uses ("Address already in
// use"): gRPC logs its reason but BuildAndStart only returns null, so a plain bind (without
// SO_REUSEPORT, like ours) asks the kernel again.
std::string BindFailure(const std::string& host, int port) {
  std::string name(absl::StripSuffix(absl::StripPrefix(host, "["), "]"));
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (getaddrinfo(name.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) {
    return "cannot resolve " + host;
  }
  std::string why = "gRPC refused the address";
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0) why = std::strerror(errno);
    close(fd);
  }
  freeaddrinfo(found);
  return why;
}

absl::StatusOr<std::unique_ptr<core::CallerRegistry>> LoadCallers(const ServerOptions& o) {
  if (!o.callers_file.empty()) {
    absl::StatusOr<std::unique_ptr<core::CallerRegistry>> loaded =
        core::CallerRegistry::Load(o.callers_file);
    if (!loaded.ok()) return FlagError("callers_file", loaded.status().message());
    return loaded;
  }
  const std::string key_path = o.data_dir + "/admin.key";
  ASSIGN_OR_RETURN(std::unique_ptr<core::CallerRegistry> registry,
                   core::CallerRegistry::LocalAdmin(key_path));
  // Where the key is, never the key itself.
  std::cerr << "token-authority: no --callers_file; local admin API key is in " << key_path << "\n";
  return registry;
}

// The issuer when --issuer is not given (an empty options.authority.issuer): the HTTP face's
// URL when one server serves it on a known port -- what OIDC discovery clients check the
// metadata's issuer against (issue 23). Not with a shared store: replicas on different
// ports would then each stamp their own `iss` and refuse each other's tokens; they need one
// --issuer (the load balancer's URL). Else "token-authority", as before.
std::string DefaultIssuer(const ServerOptions& o) {
  const std::string fallback = core::AuthorityOptions().issuer;
  if (o.http_listen.empty() || o.store.engine != "rocksdb") return fallback;
  if (!o.public_url.empty()) return o.public_url;
  const size_t colon = o.http_listen.rfind(':');
  const std::string host = o.http_listen.substr(0, colon);
  if (host.empty() || host == "0.0.0.0" || host == "[::]" ||
      o.http_listen.substr(colon + 1) == "0") {
    return fallback;  // no address a client could use, or not known before the bind
  }
  return absl::StrCat(o.tls_cert.empty() ? "http://" : "https://", o.http_listen);
}

}  // namespace

absl::Status ValidateServerOptions(ServerOptions& options) {
  std::string host;
  int port = 0;
  RETURN_IF_ERROR(SplitHostPort(options.listen, &host, &port));
  const bool tls = !options.tls_cert.empty() || !options.tls_key.empty();
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return FlagError(options.tls_cert.empty() ? "tls_cert" : "tls_key",
                     "--tls_cert and --tls_key go together");
  }
  if (!options.tls_client_ca.empty() && !tls) {
    return FlagError("tls_client_ca", "needs --tls_cert and --tls_key");
  }
  if (!tls && !IsLoopbackHost(host) && !options.allow_insecure) {
    return FlagError("listen",
                     "plaintext is only served on loopback; pass --allow_insecure "
                     "(or configure TLS) to bind " +
                         host);
  }
  if (options.data_dir.empty()) return FlagError("data_dir", "must not be empty");
  if (!options.callers_file.empty() && !std::ifstream(options.callers_file)) {
    return FlagError("callers_file", "cannot read " + options.callers_file);
  }
  RETURN_IF_ERROR(ValidateStoreOptions(options.store));
  if (options.key_dir.empty()) options.key_dir = options.data_dir + "/keys";
  if (options.store.engine == "postgres" && options.key_encryption_key_file.empty()) {
    return FlagError("key_encryption_key_file",
                     "is required with --store=postgres: replicas share their signing keys in "
                     "the database, sealed under this key (create it once with `openssl rand "
                     "-base64 32 > FILE; chmod 600 FILE` and give every replica the same file)");
  }
  if (options.key_publish_delay.has_value() &&
      (*options.key_publish_delay < absl::ZeroDuration() ||
       *options.key_publish_delay > absl::Hours(24))) {
    return FlagError("key_publish_delay", "must be 0s..24h");
  }
  if (options.audit_log.empty()) options.audit_log = options.data_dir + "/audit.log";
  absl::StatusOr<token::Algorithm> alg = token::ParseAlgorithm(options.signing_alg);
  if (!alg.ok() || *alg == token::Algorithm::kHS256) {
    return FlagError("signing_alg", "must be ES256, EdDSA, RS256 or PS256");
  }
  if (options.retired_key_window < absl::ZeroDuration()) {
    return FlagError("retired_key_window", "must not be negative");
  }
  if (options.block_cache_mb < 8 || options.block_cache_mb > 64 * 1024) {
    return FlagError("block_cache_mb", "must be 8..65536");
  }
  if (options.worker_threads < 1 || options.worker_threads > 1024) {
    return FlagError("worker_threads", "must be 1..1024");
  }
  if (options.max_queued_calls < 1) return FlagError("max_queued_calls", "must be >= 1");
  if (options.shutdown_grace < absl::ZeroDuration() || options.shutdown_grace > absl::Minutes(5)) {
    return FlagError("shutdown_grace", "must be 0s..5m");
  }
  RETURN_IF_ERROR(ValidateHttpOptions(options));
  if (options.authority.issuer.empty()) options.authority.issuer = DefaultIssuer(options);
  absl::Status authority = core::ValidateAuthorityOptions(options.authority);
  if (!authority.ok()) {
    std::string reason = ReasonOf(authority);
    std::string field = reason.substr(reason.find(':') + 1);
    return FlagError(field, authority.message());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  auto server = std::unique_ptr<Server>(new Server());
  // Where a start's time goes (issue 27: restart to serving), logged once it serves.
  const absl::Time started = absl::Now();
  absl::Time store_opened, keys_opened, authority_made;
  std::string host;
  int port = 0;
  RETURN_IF_ERROR(SplitHostPort(options.listen, &host, &port));
  if (!IsLoopbackHost(host) && options.tls_cert.empty()) {
    std::cerr << "warning: serving plaintext gRPC on non-loopback address " << host << "\n";
  }

  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) {
    return Error(absl::StatusCode::kUnavailable, "store_unavailable",
                 absl::StrCat("cannot create --data_dir ", options.data_dir, ": ", ec.message()));
  }
  storage::RocksDbStoreOptions store_options;
  store_options.path = options.data_dir + "/db";
  store_options.block_cache_bytes = options.block_cache_mb << 20;
  store_options.sync_writes = options.sync_writes;
  store_options.clock = options.authority.clock;
  // Nothing a revocation needs is deleted while any replica's clock (within the allowed
  // offset) could still accept a token it kills (DESIGN §13).
  store_options.purge_margin = options.authority.max_clock_offset + kPurgeLeeway;
  ASSIGN_OR_RETURN(server->store_, OpenStore(options.store, store_options));
  store_opened = absl::Now();
  RETURN_IF_ERROR(server->StartMetrics(options));

  token::KeyRingOptions key_options;
  key_options.key_dir = options.key_dir;
  ASSIGN_OR_RETURN(key_options.generate_algorithm, token::ParseAlgorithm(options.signing_alg));
  key_options.retired_verify_window = options.retired_key_window;
  key_options.clock = options.authority.clock;
  key_options.allow_hs256 = options.allow_hs256;
  if (options.key_encryption_key_file.empty()) {
    // A ring sealed in the store is the one that signed its tokens; key files left in key_dir
    // are not it (issue 22): refuse rather than sign and verify with stale keys.
    ASSIGN_OR_RETURN(storage::KeyRingBlob sealed,
                     server->Store()->GetKeyRing(std::numeric_limits<uint64_t>::max()));
    if (sealed.version != 0) {
      return FlagError("key_encryption_key_file",
                       "required: this store holds a key ring sealed under a key-encryption key "
                       "(a server started with --key_encryption_key_file made it); start with "
                       "that same file. The key files in --key_dir are not that ring");
    }
    key_options.publish_delay = options.key_publish_delay.value_or(absl::ZeroDuration());
    ASSIGN_OR_RETURN(server->keys_, token::KeyRing::Open(key_options));
  } else {
    key_options.publish_delay = options.key_publish_delay.value_or(
        options.jwks_max_age + options.authority.max_revocation_lag);
    absl::StatusOr<token::KeyEncryptionKey> kek =
        token::KeyEncryptionKey::FromFile(options.key_encryption_key_file);
    if (!kek.ok()) return FlagError("key_encryption_key_file", kek.status().message());
    server->key_store_ = KeyRingIn(server->Store());
    ASSIGN_OR_RETURN(server->keys_, token::KeyRing::OpenShared(
                                        key_options, server->key_store_.get(), *std::move(kek)));
  }

  keys_opened = absl::Now();
  core::AuthorityOptions authority_options = options.authority;
  // Replicas share the PostgreSQL store: the view must follow its log (DESIGN §10).
  authority_options.shared_store = options.store.engine == "postgres";
  if (options.audit_log != "off") {
    ASSIGN_OR_RETURN(server->audit_, AuditLog::Open(options.audit_log));
    authority_options.audit = server->audit_.get();
  }
  authority_options.metrics = server->MetricsForCore();
  // The revocation view's checkpoint: a restart reads only the log after it (issue 27).
  authority_options.view_checkpoint_path = options.data_dir + "/revocation_view.ckpt";
  ASSIGN_OR_RETURN(
      server->authority_,
      core::TokenAuthority::Create(authority_options, server->Store(), server->keys_.get()));
  authority_made = absl::Now();
  ASSIGN_OR_RETURN(server->callers_, LoadCallers(options));
  server->pool_ =
      std::make_unique<runtime::WorkerPool>(options.worker_threads, options.max_queued_calls);
  rpc::ServiceDeps deps{server->authority_.get(), server->callers_.get(), server->pool_.get(),
                        &server->gate_, server->audit_.get(), server->MetricsForFaces()};
  server->authority_service_ = rpc::MakeAuthorityService(deps);
  server->admin_service_ = rpc::MakeAdminService(deps);
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials, Credentials(options));

  grpc::EnableDefaultHealthCheckService(true);
  // gRPC's built-in health service registers no protobuf descriptor, so reflection could list
  // grpc.health.v1.Health but not describe it. Naming a generated health message links
  // health.pb.cc, whose descriptor then sits in the generated pool reflection reads.
  grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int selected_port = 0;
  builder.AddListeningPort(options.listen, credentials, &selected_port);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  // gRPC sets SO_REUSEPORT by default: a second server on an occupied --listen would then
  // start and share the address with the first (two authorities answering at random). Off,
  // an occupied port fails the start like an occupied --http_listen does (issue 23).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(server->authority_service_.get());
  builder.RegisterService(server->admin_service_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || selected_port == 0) {
    return Error(absl::StatusCode::kUnavailable, "bind_failed",
                 absl::StrCat("--listen: cannot listen on ", options.listen, ": ",
                              BindFailure(host, port)));
  }
  // Health by service name, as Envoy and Kubernetes gRPC probes ask it (issue 23): each
  // service is known to the health service and follows readiness with the server ("").
  if (grpc::HealthCheckServiceInterface* health = server->server_->GetHealthCheckService()) {
    for (const char* service :
         {"tokenauthority.v1.TokenAuthority", "tokenauthority.v1.TokenAdmin"}) {
      health->SetServingStatus(service, true);
    }
  }
  server->host_ = host;
  server->port_ = selected_port;
  RETURN_IF_ERROR(server->StartHealthAndHttp(options));
  auto ms = [](absl::Duration d) { return absl::ToInt64Milliseconds(d); };
  std::cerr << "token-authority: started in " << ms(absl::Now() - started) << " ms (store open "
            << ms(store_opened - started) << " ms, key ring " << ms(keys_opened - store_opened)
            << " ms, authority and revocation view " << ms(authority_made - keys_opened)
            << " ms, services and bind " << ms(absl::Now() - authority_made) << " ms)\n";
  return server;
}

Server::~Server() {
  if (server_ != nullptr) Shutdown(absl::ZeroDuration());
}

std::string Server::address() const { return absl::StrCat(host_, ":", port_); }

void Server::Wait() { server_->Wait(); }

absl::Status Server::ReopenAuditLog() {
  return audit_ == nullptr ? absl::OkStatus() : audit_->Reopen();
}

void Server::Shutdown(absl::Duration grace) {
  // gRPC 1.51 would cancel calls still running (call_gate.h), so ours finish first. Then gRPC
  // gets a moment to flush their answers, not the whole grace: it would also wait for idle
  // client connections to go away.
  const absl::Time deadline = absl::Now() + grace;
  // Watch streams never finish by themselves: end them first (UNAVAILABLE shutting_down).
  authority_->watch_hub().Shutdown();
  gate_.CloseAndWait(deadline);
  StopHttp(std::min(deadline - absl::Now(), absl::Seconds(1)));
  server_->Shutdown(absl::ToChronoTime(std::min(deadline, absl::Now() + absl::Seconds(1))));
  // Calls the grace did not cover finish now (their clients already see CANCELLED), while
  // everything they touch is still alive.
  pool_->Stop();
  // No call runs any more: the view's checkpoint now, so the next start reads only the log
  // appended after this point.
  if (absl::Status saved = authority_->SaveViewCheckpoint(); !saved.ok()) {
    std::cerr << "token-authority: revocation view checkpoint not saved: " << saved.message()
              << "\n";
  }
}

}  // namespace ta

// The running service: store + key ring + domain core + gRPC server (+ the HTTP face when
// http_listen is set), owned together.
//
// Start() opens everything in dependency order and binds; destruction (or Shutdown + the
// destructor) tears down in reverse, so the store closes only after the last RPC finished.
// Health (grpc.health.v1, following the ReadinessMonitor like /healthz/ready) and server
// reflection are always on. Shutdown() may be called
// from any thread, once; Wait() blocks until it has completed.
#ifndef TA_SERVER_SERVER_H_
#define TA_SERVER_SERVER_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/core/authority.h"
#include "server/http/listener.h"
#include "server/http/peer_limiter.h"
#include "server/rpc/services.h"
#include "server/store.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace ta {
namespace http {
class Endpoints;
class Listener;
}  // namespace http
namespace metrics {
class MeteredStore;
class PrometheusMetrics;
class ServerMetrics;
}  // namespace metrics
class ReadinessMonitor;

class AuditLog;

struct ServerOptions {
  // host:port to bind. Port 0 picks a free port (see Server::port()). Default loopback:
  // plaintext is refused on other addresses unless allow_insecure is set.
  std::string listen = "127.0.0.1:50051";
  // Where the RocksDB store lives (and, whatever the store, the generated keys and admin
  // key). Created if missing.
  std::string data_dir = "./data";
  // Which store: RocksDB in data_dir (default) or PostgreSQL (server/store.h).
  StoreOptions store;
  // Private keys and the refresh-token secret (PEM files, 0600). Default <data_dir>/keys.
  // Kept apart from the store so a copy of the database alone forges nothing.
  std::string key_dir;
  // The key-encryption key (32 random bytes, base64, mode 0600: `openssl rand -base64 32`).
  // Set: the key ring lives in the store, sealed under it, shared by every server on that
  // store (key_dir's keys seed it on first start). Required with store.engine "postgres";
  // the same file on every replica.
  std::string key_encryption_key_file;
  // How long a rotated-in key is published (JWKS) before it signs. Unset: 0 with a key
  // directory (as before: one process publishes and signs from the same ring), and with a
  // shared ring jwks_max_age + authority.max_revocation_lag (every replica has published it
  // and every verifier's cached JWKS has expired before its first token). 0s..24h.
  std::optional<absl::Duration> key_publish_delay;
  // Serve plaintext on a non-loopback address (logs a warning). Default false.
  bool allow_insecure = false;
  // TLS: server certificate chain and private key (PEM files). Both or neither.
  std::string tls_cert;
  std::string tls_key;
  // mTLS: CA bundle (PEM) that client certificates must chain to. A certificate signed by
  // another CA is refused at the handshake. Requires tls_cert/tls_key.
  std::string tls_client_ca;
  // With tls_client_ca: also accept TLS clients without a certificate, which must then
  // authenticate with an API key. Default false (a client certificate is required).
  bool tls_allow_no_client_cert = false;
  // Caller file (server/core/callers.h). Empty: local development mode, one admin API key
  // generated on first start into <data_dir>/admin.key (0600).
  std::string callers_file;
  // Algorithm of the key generated when key_dir holds none. Default ES256.
  std::string signing_alg = "ES256";
  // How long a key replaced by RotateSigningKey keeps verifying. Default 24 h.
  absl::Duration retired_key_window = absl::Hours(24);
  // Accept HS256 keys found in key_dir (never published). Default false.
  bool allow_hs256 = false;
  // RocksDB block cache. Default 256 MiB. (RocksDB only, as is sync_writes.)
  size_t block_cache_mb = 256;
  // fsync the WAL before acknowledging rotations and revocations. Benchmarks only: false
  // loses acknowledged revocations on power loss. Default true.
  bool sync_writes = true;
  // Threads that run blocking RPC work (synced writes, key generation). More concurrent
  // writers share each WAL fsync (group commit). Default 64.
  int worker_threads = 64;
  // Calls that may wait for a worker before new ones get RESOURCE_EXHAUSTED. Default 10000.
  int max_queued_calls = 10'000;
  // How long in-flight RPCs may finish after SIGTERM before they are cancelled. Default 10 s.
  absl::Duration shutdown_grace = absl::Seconds(10);
  // HTTP face (server/http: JWKS, metadata, RFC 7662/7009, /metrics, /healthz): host:port,
  // port 0 picks a free port (see Server::http_port()). Empty: off. The same TLS files and the
  // same loopback rule for plaintext as `listen`.
  std::string http_listen;
  // scheme://host[:port][/path] the metadata's URLs start with, when clients reach the HTTP
  // face under another name (a proxy, a load balancer). Default: the issuer when it is an
  // http(s) URL, else http(s)://<http_listen as bound>.
  std::string public_url;
  // The HTTP face's limits and timeouts (its host, port and TLS fields are ignored: they come
  // from http_listen and the tls_* fields above). Defaults in server/http/listener.h.
  http::ListenerOptions http_limits;
  // POST /oauth2/token's limit per peer address (server/http/peer_limiter.h): rate per
  // second (0: none; default 10) and burst (>= 1; default 50).
  http::PeerRateOptions token_rate;
  // Cache-Control max-age of the JWKS and the metadata. Default 60 s; 0s..1h.
  absl::Duration jwks_max_age = absl::Seconds(60);
  // How often readiness (both faces' health) probes the store. Default 2 s; 100ms..1m.
  absl::Duration readiness_interval = absl::Seconds(2);
  // The audit trail (server/audit_log.h): a file path, "-" for stdout, or "off". Default
  // <data_dir>/audit.log (filled by ValidateServerOptions).
  std::string audit_log;
  // Token policy: lifetimes, leeway, issuer, audience, grace.
  core::AuthorityOptions authority;
};

// Checks every field, naming the flag at fault. Fills key_dir when empty.
absl::Status ValidateServerOptions(ServerOptions& options);
// The HTTP face's fields (server_http.cc); part of ValidateServerOptions. Normalises
// public_url (no trailing '/').
absl::Status ValidateHttpOptions(ServerOptions& options);

class Server {
 public:
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options);
  ~Server();

  // The bound port (the chosen one when listen asked for port 0).
  int port() const { return port_; }
  // "host:port" as bound, e.g. "127.0.0.1:50051".
  std::string address() const;
  // The HTTP face's bound port and "host:port"; 0 and "" when it is off.
  int http_port() const;
  std::string http_address() const;

  void Wait();
  // Starts a new audit log file at the same path (after logrotate moved the old one; SIGHUP).
  absl::Status ReopenAuditLog();
  // Stops accepting calls; in-flight ones get up to `grace`, then are cancelled.
  void Shutdown(absl::Duration grace);

 private:
  Server() = default;
  // server_http.cc: the metrics and the metered store (when the HTTP face is on), then after
  // gRPC is up, readiness and the HTTP face.
  absl::Status StartMetrics(const ServerOptions& options);
  absl::Status StartHealthAndHttp(const ServerOptions& options);
  void StopHttp(absl::Duration drain);
  // The store as the authority uses it (metered when metrics are on).
  storage::TokenStore* Store() const;
  // metrics_ as each layer sees it: CoreMetrics::None() / null when off.
  core::CoreMetrics* MetricsForCore() const;
  metrics::ServerMetrics* MetricsForFaces() const;

  std::string host_, http_host_;
  int port_ = 0;
  // Outlives everything that reports to it. Null when the HTTP face is off (no /metrics).
  std::unique_ptr<metrics::PrometheusMetrics> metrics_;
  std::unique_ptr<storage::TokenStore> store_;
  std::unique_ptr<metrics::MeteredStore> metered_store_;  // store_ as the authority sees it
  std::unique_ptr<token::SharedKeyStore> key_store_;      // with a shared ring; before keys_
  std::unique_ptr<token::KeyRing> keys_;
  std::unique_ptr<AuditLog> audit_;  // null when off
  std::unique_ptr<core::TokenAuthority> authority_;
  std::unique_ptr<core::CallerRegistry> callers_;
  runtime::CallGate gate_;  // closed by Shutdown before gRPC's (see call_gate.h)
  std::unique_ptr<grpc::Service> authority_service_;
  std::unique_ptr<grpc::Service> admin_service_;
  std::unique_ptr<http::Endpoints> http_endpoints_;
  // Before pool_: a pooled HTTP request answers through the listener, so it is destroyed
  // after the pool has drained.
  std::unique_ptr<http::Listener> http_;
  // A pooled call still running when the shutdown grace runs out uses the services and the
  // gate until it has left: Shutdown drains the pool, and it is declared after them so it
  // is also destroyed (drained) before them.
  std::unique_ptr<runtime::WorkerPool> pool_;
  std::unique_ptr<grpc::Server> server_;
  // Last: destroyed (stopped) first; it tells server_'s health service.
  std::unique_ptr<ReadinessMonitor> readiness_;
};

}  // namespace ta

#endif  // TA_SERVER_SERVER_H_

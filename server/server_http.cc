// The parts of Server that concern the HTTP face, metrics and readiness (DESIGN §12): kept out
// of server.cc so the gRPC wiring stays as it was.
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/error.h"
#include "base/net.h"
#include "base/status_macros.h"
#include "server/http/endpoints.h"
#include "server/http/listener.h"
#include "server/metrics/metered_store.h"
#include "server/metrics/prometheus_metrics.h"
#include "server/readiness.h"
#include "server/server.h"

#ifndef TA_BUILD_VERSION
#define TA_BUILD_VERSION "unknown"
#endif

namespace ta {
namespace {

absl::Status FlagError(absl::string_view flag, absl::string_view why) {
  return InvalidField(flag, absl::StrCat("--", flag, ": ", why));
}

// "host:port" / "[v6]:port" of --http_listen.
absl::Status SplitHttpListen(absl::string_view listen, std::string* host, int* port) {
  const size_t colon = listen.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) {
    return FlagError("http_listen", "expected HOST:PORT");
  }
  *host = std::string(listen.substr(0, colon));
  if (!absl::SimpleAtoi(listen.substr(colon + 1), port) || *port < 0 || *port > 65535) {
    return FlagError("http_listen", "port must be 0..65535");
  }
  return absl::OkStatus();
}

bool IsHttpUrl(absl::string_view url) {
  return absl::StartsWith(url, "https://") || absl::StartsWith(url, "http://");
}

// The base of the URLs the metadata announces (see ServerOptions::public_url).
std::string BaseUrl(const ServerOptions& o, const std::string& host, int port) {
  if (!o.public_url.empty()) return o.public_url;
  if (IsHttpUrl(o.authority.issuer)) return std::string(absl::StripSuffix(o.authority.issuer, "/"));
  return absl::StrCat(o.tls_cert.empty() ? "http://" : "https://", host, ":", port);
}

// Readiness: the store answers a point read, and the revocation view can be trusted (with a
// shared store, a follower proved it current within --max_revocation_lag).
absl::Status Probe(storage::TokenStore* store, core::TokenAuthority* authority,
                   const Clock* clock) {
  const absl::Time now = clock->Now();
  absl::StatusOr<bool> read = store->IsJtiDenied("ta-readiness-probe", now);
  if (!read.ok()) {
    return Error(absl::StatusCode::kUnavailable, "store_unavailable",
                 absl::StrCat("the store does not answer: ", read.status().message()));
  }
  if (authority->view().clock_offset_exceeded()) {
    return Error(absl::StatusCode::kUnavailable, "clock_offset_exceeded",
                 "this server's clock is past --max_clock_offset from the database's");
  }
  if (!authority->view().IsCurrent(now)) {
    return Error(absl::StatusCode::kUnavailable, "revocations_stale",
                 "the revocation view is not proved current");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateHttpOptions(ServerOptions& options) {
  if (options.http_listen.empty()) {
    if (!options.public_url.empty()) return FlagError("public_url", "needs --http_listen");
  } else {
    std::string host;
    int port = 0;
    RETURN_IF_ERROR(SplitHttpListen(options.http_listen, &host, &port));
    if (options.tls_cert.empty() && !IsLoopbackHost(host) && !options.allow_insecure) {
      return FlagError("http_listen",
                       "plaintext is only served on loopback; pass --allow_insecure "
                       "(or configure TLS) to bind " +
                           host);
    }
  }
  if (!options.public_url.empty()) {
    const std::string& url = options.public_url;
    if (!IsHttpUrl(url) || url.find_first_of("?# \t") != std::string::npos) {
      return FlagError("public_url", "must be an http(s) URL without query or fragment");
    }
    options.public_url = std::string(absl::StripSuffix(url, "/"));
  }
  if (!(options.token_rate.rate >= 0 && options.token_rate.rate <= 1e6)) {
    return FlagError("token_endpoint_rate", "must be 0..1000000 requests per second");
  }
  if (!(options.token_rate.burst >= 1 && options.token_rate.burst <= 1e6)) {
    return FlagError("token_endpoint_burst", "must be 1..1000000");
  }
  if (options.jwks_max_age < absl::ZeroDuration() || options.jwks_max_age > absl::Hours(1)) {
    return FlagError("jwks_max_age", "must be 0s..1h");
  }
  if (options.readiness_interval < absl::Milliseconds(100) ||
      options.readiness_interval > absl::Minutes(1)) {
    return FlagError("readiness_interval", "must be 100ms..1m");
  }
  return absl::OkStatus();
}

absl::Status Server::StartMetrics(const ServerOptions& options) {
  if (options.http_listen.empty()) return absl::OkStatus();  // nowhere to serve them
  metrics::PrometheusMetricsOptions m;
  m.build_info = {{"version", TA_BUILD_VERSION}, {"compiler", __VERSION__}};
  m.keys = [this] { return keys_ != nullptr ? keys_->Keys() : std::vector<token::KeyInfo>(); };
  m.clock_offset = [this]() -> std::optional<absl::Duration> {
    return authority_ != nullptr ? authority_->view().clock_offset() : std::nullopt;
  };
  // Read at scrapes, which the HTTP face serves only once the server is built.
  m.readiness = [this] {
    return readiness_ != nullptr ? readiness_->Current() : absl::UnavailableError("starting");
  };
  m.view_current_as_of = [this] {
    return authority_ != nullptr ? authority_->view().current_as_of() : absl::InfinitePast();
  };
  m.view_max_lag = options.authority.max_revocation_lag;
  m.backups = options.store.engine != "postgres";  // PostgreSQL refuses CreateBackup
  m.clock = options.authority.clock;
  ASSIGN_OR_RETURN(metrics_, metrics::PrometheusMetrics::Create(std::move(m)));
  metered_store_ = std::make_unique<metrics::MeteredStore>(store_.get(), metrics_.get());
  return absl::OkStatus();
}

storage::TokenStore* Server::Store() const {
  return metered_store_ != nullptr ? metered_store_.get() : store_.get();
}

core::CoreMetrics* Server::MetricsForCore() const {
  return metrics_ != nullptr ? metrics_.get() : core::CoreMetrics::None();
}

metrics::ServerMetrics* Server::MetricsForFaces() const { return metrics_.get(); }

absl::Status Server::StartHealthAndHttp(const ServerOptions& options) {
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  readiness_ = std::make_unique<ReadinessMonitor>(
      [store = store_.get(), authority = authority_.get(), clock = options.authority.clock] {
        return Probe(store, authority, clock);
      },
      options.readiness_interval,
      [health](bool ready) {
        if (health != nullptr) health->SetServingStatus(ready);
      });
  if (options.http_listen.empty()) return absl::OkStatus();

  http::ListenerOptions listen = options.http_limits;
  RETURN_IF_ERROR(SplitHttpListen(options.http_listen, &listen.host, &listen.port));
  if (!IsLoopbackHost(listen.host) && options.tls_cert.empty()) {
    std::cerr << "warning: serving plaintext HTTP on non-loopback address " << listen.host << "\n";
  }
  listen.tls_cert = options.tls_cert;
  listen.tls_key = options.tls_key;
  listen.tls_client_ca = options.tls_client_ca;
  listen.tls_allow_no_client_cert = options.tls_allow_no_client_cert;

  http::EndpointsDeps deps;
  deps.authority = authority_.get();
  deps.callers = callers_.get();
  deps.pool = pool_.get();
  deps.gate = &gate_;
  deps.metrics = metrics_.get();
  deps.render_metrics = [m = metrics_.get()] { return m->Render(); };
  deps.readiness = [r = readiness_.get()] { return r->Current(); };
  ASSIGN_OR_RETURN(http_, http::Listener::Bind(listen));
  http_host_ = listen.host;
  http::EndpointsOptions endpoints;
  endpoints.issuer = options.authority.issuer;
  endpoints.base_url = BaseUrl(options, listen.host, http_->port());
  endpoints.max_age = options.jwks_max_age;
  endpoints.token_rate = options.token_rate;
  endpoints.clock = options.authority.clock;
  http_endpoints_ = std::make_unique<http::Endpoints>(std::move(endpoints), std::move(deps));
  http_->Serve(http_endpoints_.get());
  return absl::OkStatus();
}

void Server::StopHttp(absl::Duration drain) {
  if (readiness_ != nullptr) readiness_->Stop();
  if (http_ != nullptr) http_->Stop(std::max(drain, absl::ZeroDuration()));
}

int Server::http_port() const { return http_ != nullptr ? http_->port() : 0; }

std::string Server::http_address() const {
  return http_ != nullptr ? absl::StrCat(http_host_, ":", http_->port()) : std::string();
}

}  // namespace ta

// Endpoints: the routes of the HTTP face (DESIGN §12) and their thin handlers. Each decodes
// the request, authorizes the caller where one is needed (the same CallerRegistry and role
// table as gRPC: server/core/roles.h), calls core::TokenAuthority, and encodes the answer;
// every error goes through errors.h. No storage, crypto or business rules here.
//
//   GET  /.well-known/jwks.json                 public keys (as GetJwks), cacheable, ETag/304
//   GET  /.well-known/oauth-authorization-server RFC 8414 metadata (also at the RFC 8414 §3.1
//                                                path for an issuer URL with a path)
//   GET  /.well-known/openid-configuration       the same for OpenID Connect Discovery
//   POST /oauth2/token        RFC 6749 §6 refresh_token grant for public clients (no client
//                             authentication: the refresh token, and for a session bound to
//                             a DPoP key the DPoP proof, RFC 9449 §5), through the same
//                             TokenAuthority::RefreshTokens as gRPC; per-peer rate limit
//   POST /oauth2/introspect   RFC 7662; caller with role resource (Bearer API key or Basic)
//   POST /oauth2/revoke       RFC 7009; caller with role client
//   GET  /metrics             Prometheus text format
//   GET  /healthz/live, /healthz/ready (also /healthz)
// When base_url has a path (an issuer or --public_url like "https://h/tenant1"), every route
// is also served under that path. HEAD is answered for every GET route. Every request passes
// the server's CallGate, so a shutdown drains HTTP requests with the gRPC calls. Thread-safe.
//
// Threads (issue 22 item 4): Handle runs on the listener's event loop and never waits there.
// Introspection (which may wait for the revocation follower or read the store), refresh
// and revocation (synced writes) run on the worker pool, after the caller is authorized on the
// loop; a full pool queue answers 503 "overloaded". Health, metrics, JWKS and metadata are
// answered on the loop from memory, whatever the store does.
#ifndef TA_SERVER_HTTP_ENDPOINTS_H_
#define TA_SERVER_HTTP_ENDPOINTS_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "server/core/authority.h"
#include "server/core/callers.h"
#include "server/http/message.h"
#include "server/http/peer_limiter.h"
#include "server/metrics/metrics.h"
#include "server/runtime/call_gate.h"
#include "server/runtime/worker_pool.h"

namespace ta::http {

struct EndpointsOptions {
  // The tokens' `iss`, served verbatim as the metadata's issuer.
  std::string issuer;
  // scheme://host[:port][/path] the URLs in the metadata start with; no trailing '/'.
  std::string base_url;
  // Cache-Control max-age of the JWKS and the metadata. Default 60 s: see the README
  // ("HTTP face") for why it must stay below the key publish delay.
  absl::Duration max_age = absl::Seconds(60);
  // POST /oauth2/token's requests per peer address (peer_limiter.h). rate 0: no limit.
  PeerRateOptions token_rate{};
  // Time source of the rate limit. Never null.
  const Clock* clock = Clock::Real();
};

// What the endpoints borrow; everything must outlive them. Only authority, callers, pool and
// gate are required.
struct EndpointsDeps {
  core::TokenAuthority* authority = nullptr;
  const core::CallerRegistry* callers = nullptr;
  runtime::WorkerPool* pool = nullptr;  // runs introspections and revocations (may wait)
  runtime::CallGate* gate = nullptr;
  metrics::ServerMetrics* metrics = nullptr;      // counts requests; null: none
  std::function<std::string()> render_metrics{};  // GET /metrics; empty: 404
  std::function<absl::Status()> readiness{};      // GET /healthz/ready; empty: ready
};

class Endpoints final : public HttpHandler {
 public:
  Endpoints(EndpointsOptions options, EndpointsDeps deps);

  void Handle(HttpRequest request, Respond respond) override;
  HttpResponse Refused(const absl::Status& status) override;

 private:
  enum class Route {
    kJwks,
    kOAuthMetadata,
    kOpenIdMetadata,
    kToken,
    kIntrospect,
    kRevoke,
    kMetrics,
    kLive,
    kReady,
    kUnknown
  };
  struct RouteInfo {
    Route route;
    const char* name;    // the metrics label
    const char* method;  // "GET" (also HEAD) or "POST"
  };
  RouteInfo Find(absl::string_view path) const;       // under route_prefix_ too
  RouteInfo FindRoute(absl::string_view path) const;  // the paths themselves
  void Serve(Route route, HttpRequest request, Respond respond);

  HttpResponse Jwks(const HttpRequest& request) const;
  HttpResponse Document(const std::string& body) const;
  HttpResponse Health(absl::Status status, absl::string_view ok_word) const;
  HttpResponse Metrics() const;
  void Introspect(HttpRequest request, Respond respond);
  // POST /oauth2/token (token_endpoint.cc).
  void Token(HttpRequest request, Respond respond);
  void Revoke(HttpRequest request, Respond respond);
  // Runs `work` on the worker pool and answers with its result; 503 "overloaded" when the
  // pool's queue is full.
  void OffLoop(Respond respond, std::function<HttpResponse()> work);
  // The caller behind the Authorization header, with the role for `op`.
  absl::StatusOr<core::Caller> Authorize(const HttpRequest& request, core::Operation op) const;
  // The form's `token` (RFC 7662 §2.1, RFC 7009 §2.1), after the content type is checked.
  // `form`, when given, receives the rest of the form (Introspect reads the proof from it).
  absl::StatusOr<std::string> TokenParameter(
      const HttpRequest& request,
      absl::flat_hash_map<std::string, std::string>* form = nullptr) const;

  const EndpointsOptions options_;
  const EndpointsDeps deps_;
  std::string oauth_metadata_, openid_metadata_;         // rendered once
  std::vector<std::string> oauth_paths_, openid_paths_;  // where each is served
  std::string route_prefix_;                             // the path of base_url ("/tenant1"), or ""
  // The token endpoint's public URL (base_url + "/oauth2/token", as the metadata announces
  // it): the htu a DPoP proof for a refresh must name.
  std::string token_url_;
  PeerRateLimiter token_limiter_;
};

}  // namespace ta::http

#endif  // TA_SERVER_HTTP_ENDPOINTS_H_

#include "server/http/endpoints.h"

#include <chrono>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/error.h"
#include "base/status_macros.h"
#include "server/core/roles.h"
#include "server/http/documents.h"
#include "server/http/errors.h"
#include "server/http/form.h"

namespace ta::http {
namespace {

constexpr char kJson[] = "application/json";
// Token type hints are short words; anything longer is not one (RFC 7009 §2.1 values).
constexpr size_t kMaxHintBytes = 64;

// The path of an issuer that is a URL ("https://h/tenant" -> "/tenant"), else "".
std::string IssuerPath(absl::string_view issuer) {
  if (!absl::ConsumePrefix(&issuer, "https://") && !absl::ConsumePrefix(&issuer, "http://")) {
    return "";
  }
  const size_t slash = issuer.find('/');
  if (slash == absl::string_view::npos) return "";
  return std::string(absl::StripSuffix(issuer.substr(slash), "/"));
}

HttpResponse Json(int status, std::string body) {
  HttpResponse out;
  out.status = status;
  out.content_type = kJson;
  out.body = std::move(body);
  return out;
}

absl::Status MethodNotAllowed(absl::string_view allowed) {
  return Error(absl::StatusCode::kInvalidArgument, "method_not_allowed",
               absl::StrCat("use ", allowed));
}

}  // namespace

Endpoints::Endpoints(EndpointsOptions options, EndpointsDeps deps)
    : options_(std::move(options)),
      deps_(std::move(deps)),
      token_url_(absl::StrCat(options_.base_url, "/oauth2/token")),
      token_limiter_(options_.token_rate, options_.clock) {
  MetadataOptions metadata{options_.issuer, options_.base_url, false};
  oauth_metadata_ = MetadataJson(metadata);
  metadata.openid = true;
  openid_metadata_ = MetadataJson(metadata);
  oauth_paths_ = {"/.well-known/oauth-authorization-server"};
  openid_paths_ = {"/.well-known/openid-configuration"};
  // RFC 8414 §3.1 inserts the well-known part before the issuer's path; OIDC Discovery §4
  // appends it.
  // The metadata's URLs start with base_url; when it has a path ("http://h/tenant1"), every
  // route is served under it as well, so the URLs announced answer (issue 23).
  route_prefix_ = IssuerPath(options_.base_url);
  const std::string path = IssuerPath(options_.issuer);
  if (!path.empty()) {
    oauth_paths_.push_back(absl::StrCat("/.well-known/oauth-authorization-server", path));
    openid_paths_.push_back(absl::StrCat(path, "/.well-known/openid-configuration"));
  }
}

Endpoints::RouteInfo Endpoints::Find(absl::string_view path) const {
  absl::string_view rest = path;
  if (!route_prefix_.empty() && absl::ConsumePrefix(&rest, route_prefix_) &&
      absl::StartsWith(rest, "/")) {
    if (RouteInfo under = FindRoute(rest); under.route != Route::kUnknown) return under;
  }
  return FindRoute(path);
}

Endpoints::RouteInfo Endpoints::FindRoute(absl::string_view path) const {
  if (path == "/.well-known/jwks.json") return {Route::kJwks, "jwks", "GET"};
  for (const std::string& p : oauth_paths_) {
    if (path == p) return {Route::kOAuthMetadata, "oauth_metadata", "GET"};
  }
  for (const std::string& p : openid_paths_) {
    if (path == p) return {Route::kOpenIdMetadata, "openid_metadata", "GET"};
  }
  if (path == "/oauth2/token") return {Route::kToken, "token", "POST"};
  if (path == "/oauth2/introspect") return {Route::kIntrospect, "introspect", "POST"};
  if (path == "/oauth2/revoke") return {Route::kRevoke, "revoke", "POST"};
  if (path == "/metrics") return {Route::kMetrics, "metrics", "GET"};
  if (path == "/healthz/live") return {Route::kLive, "live", "GET"};
  // /healthz is what most probes try first: readiness.
  if (path == "/healthz/ready" || path == "/healthz") return {Route::kReady, "ready", "GET"};
  return {Route::kUnknown, "unknown", ""};
}

void Endpoints::Handle(HttpRequest request, Respond respond) {
  const RouteInfo info = Find(request.path);
  if (!deps_.gate->Enter()) {
    if (deps_.metrics != nullptr) deps_.metrics->OnHttp(info.name, 503, absl::ZeroDuration());
    return respond(ErrorResponse(Error(absl::StatusCode::kUnavailable, "shutting_down",
                                       "the server is shutting down; retry")));
  }
  const auto start = std::chrono::steady_clock::now();
  // Every answer is counted and leaves the gate exactly once. It may run on a pool thread
  // after Handle returned, so it holds what it needs itself, never `this`.
  Respond done = [metrics = deps_.metrics, gate = deps_.gate, name = info.name, start,
                  respond = std::move(respond)](HttpResponse r) {
    if (metrics != nullptr) {
      metrics->OnHttp(name, r.status, absl::FromChrono(std::chrono::steady_clock::now() - start));
    }
    respond(std::move(r));
    gate->Leave();
  };
  if (info.route == Route::kUnknown) {
    return done(ErrorResponse(Error(absl::StatusCode::kNotFound, "not_found", "no such path")));
  }
  const bool get_route = absl::string_view(info.method) == "GET";
  // OPTIONS: the CORS preflight of a browser app's refresh (it sends a DPoP header).
  const bool preflight = info.route == Route::kToken && request.method == "OPTIONS";
  const bool allowed = get_route ? request.method == "GET" || request.method == "HEAD"
                                 : request.method == info.method || preflight;
  if (!allowed) {
    HttpResponse refused = ErrorResponse(MethodNotAllowed(info.method));
    refused.headers.emplace_back("Allow", get_route ? "GET, HEAD" : info.method);
    return done(std::move(refused));
  }
  Serve(info.route, std::move(request), std::move(done));
}

void Endpoints::Serve(Route route, HttpRequest request, Respond respond) {
  switch (route) {
    case Route::kJwks:
      return respond(Jwks(request));
    case Route::kOAuthMetadata:
      return respond(Document(oauth_metadata_));
    case Route::kOpenIdMetadata:
      return respond(Document(openid_metadata_));
    case Route::kToken:
      return Token(std::move(request), std::move(respond));
    case Route::kIntrospect:
      return Introspect(std::move(request), std::move(respond));
    case Route::kRevoke:
      return Revoke(std::move(request), std::move(respond));
    case Route::kMetrics:
      return respond(Metrics());
    case Route::kLive:
      return respond(Health(absl::OkStatus(), "live"));
    case Route::kReady:
      return respond(Health(deps_.readiness ? deps_.readiness() : absl::OkStatus(), "ready"));
    case Route::kUnknown:
      break;
  }
  respond(ErrorResponse(Error(absl::StatusCode::kNotFound, "not_found", "no such path")));
}

HttpResponse Endpoints::Refused(const absl::Status& status) {
  if (deps_.metrics != nullptr) {
    deps_.metrics->OnHttp("malformed", ClassifyError(status).status, absl::ZeroDuration());
  }
  return ErrorResponse(status);
}

HttpResponse Endpoints::Jwks(const HttpRequest& request) const {
  HttpResponse out = Document(deps_.authority->JwksJson());
  const std::string etag = JwksEtag(out.body);
  out.headers.emplace_back("ETag", etag);
  if (!request.if_none_match.empty() && EtagMatches(request.if_none_match, etag)) {
    out.status = 304;  // RFC 9110 §15.4.5: same validators and caching headers, no content
    out.body.clear();
    out.content_type.clear();
  }
  return out;
}

// A public, cacheable JSON document (JWKS, metadata), readable from browsers too.
HttpResponse Endpoints::Document(const std::string& body) const {
  HttpResponse out = Json(200, body);
  out.headers.emplace_back(
      "Cache-Control", absl::StrCat("public, max-age=", absl::ToInt64Seconds(options_.max_age)));
  out.headers.emplace_back("Access-Control-Allow-Origin", "*");
  return out;
}

HttpResponse Endpoints::Health(absl::Status status, absl::string_view ok_word) const {
  std::string reason = ReasonOf(status);
  if (!status.ok() && reason.empty()) reason = "not_ready";
  HttpResponse out =
      Json(status.ok() ? 200 : 503, StatusJson(status.ok() ? ok_word : "not_ready", reason));
  out.headers.emplace_back("Cache-Control", "no-store");
  return out;
}

HttpResponse Endpoints::Metrics() const {
  if (!deps_.render_metrics) {
    return ErrorResponse(Error(absl::StatusCode::kNotFound, "not_found", "metrics are off"));
  }
  HttpResponse out;
  out.content_type = "text/plain; version=0.0.4; charset=utf-8";
  out.body = deps_.render_metrics();
  out.headers.emplace_back("Cache-Control", "no-store");
  return out;
}

absl::StatusOr<core::Caller> Endpoints::Authorize(const HttpRequest& request,
                                                  core::Operation op) const {
  ASSIGN_OR_RETURN(ClientCredentials credentials, ParseAuthorization(request.authorization));
  ASSIGN_OR_RETURN(core::Caller caller, deps_.callers->ByApiKey(credentials.key));
  // Basic names the caller too; a key presented under another caller's name is refused.
  if (credentials.basic && credentials.name != caller.name) {
    return Error(absl::StatusCode::kUnauthenticated, "unauthenticated",
                 "the client name does not match its key");
  }
  if (!core::RoleAllows(caller, op)) {
    return Error(absl::StatusCode::kPermissionDenied, "permission_denied",
                 "the caller's roles do not include this call");
  }
  return caller;
}

absl::StatusOr<std::string> Endpoints::TokenParameter(const HttpRequest& request,
                                                      Form* rest) const {
  if (!IsFormContentType(request.content_type)) {
    return Error(absl::StatusCode::kInvalidArgument, "invalid_request",
                 "the body must be application/x-www-form-urlencoded");
  }
  ASSIGN_OR_RETURN(Form form, ParseForm(request.body));
  auto hint = form.find("token_type_hint");
  // Any hint is accepted and none is needed: we tell the token types apart ourselves
  // (RFC 7009 §2.1: a server that cannot use the hint searches all its token types).
  if (hint != form.end() && hint->second.size() > kMaxHintBytes) {
    return InvalidField("token_type_hint", "token_type_hint is too long");
  }
  auto token = form.find("token");
  if (token == form.end() || token->second.empty()) {
    return InvalidField("token", "the form parameter 'token' is required");
  }
  std::string value = std::move(token->second);
  if (rest != nullptr) *rest = std::move(form);
  return value;
}

namespace {

// The proof a resource server received with the token (our extension of RFC 7662, README
// "Sender-constrained sessions"): dpop_proof (the request's DPoP header) with dpop_method and
// dpop_url (the request's method and absolute URL), or certificate_thumbprint (x5t#S256 of
// the client certificate of its TLS connection); binding_checked_by_caller=true as in gRPC.
void ReadProof(const Form& form, core::IntrospectRequest* in) {
  auto value = [&form](absl::string_view name) {
    auto it = form.find(name);
    return it == form.end() ? std::string() : it->second;
  };
  in->proof.dpop_proof = value("dpop_proof");
  in->proof.http_method = value("dpop_method");
  in->proof.http_url = value("dpop_url");
  in->proof.certificate_thumbprint = value("certificate_thumbprint");
  in->binding_checked_by_caller = value("binding_checked_by_caller") == "true";
}

}  // namespace

void Endpoints::OffLoop(Respond respond, std::function<HttpResponse()> work) {
  auto shared = std::make_shared<Respond>(std::move(respond));
  const bool scheduled =
      deps_.pool->Schedule([shared, work = std::move(work)] { (*shared)(work()); });
  if (!scheduled) {
    (*shared)(ErrorResponse(Error(absl::StatusCode::kResourceExhausted, "overloaded",
                                  "too many calls waiting; retry with backoff")));
  }
}

void Endpoints::Introspect(HttpRequest request, Respond respond) {
  absl::StatusOr<core::Caller> caller = Authorize(request, core::Operation::kIntrospect);
  if (!caller.ok()) return respond(ErrorResponse(caller.status()));
  Form form;
  absl::StatusOr<std::string> token = TokenParameter(request, &form);
  if (!token.ok()) return respond(ErrorResponse(token.status()));
  core::IntrospectRequest in;
  in.token = *std::move(token);
  ReadProof(form, &in);
  // RFC 7662 §4: a token must be reported active only where it may be used. A protected
  // resource never accepts a refresh token; an admin may still inspect one.
  in.access_tokens_only = !caller->Has(core::Role::kAdmin);
  // Off the event loop: a stale view waits for the follower, a refresh token reads the store
  // (issue 22 item 4: a hung database must not hold up /healthz/live).
  OffLoop(std::move(respond), [this, in = std::move(in)] {
    absl::StatusOr<core::Introspection> out = deps_.authority->Introspect(in);
    if (!out.ok()) return ErrorResponse(out.status());
    HttpResponse response = Json(200, IntrospectionJson(*out, options_.issuer));
    response.headers.emplace_back("Cache-Control", "no-store");
    return response;
  });
}

void Endpoints::Revoke(HttpRequest request, Respond respond) {
  absl::StatusOr<core::Caller> caller = Authorize(request, core::Operation::kRevokeToken);
  if (!caller.ok()) return respond(ErrorResponse(caller.status()));
  absl::StatusOr<std::string> token = TokenParameter(request);
  if (!token.ok()) return respond(ErrorResponse(token.status()));
  // A revocation is a synced write: off the event loop.
  OffLoop(std::move(respond), [this, caller = *std::move(caller), token = *std::move(token)] {
    absl::Status status = deps_.authority->RevokeToken(token, caller);
    if (!status.ok()) return ErrorResponse(status);
    HttpResponse ok;  // RFC 7009 §2.2: 200, content ignored
    ok.headers.emplace_back("Cache-Control", "no-store");
    return ok;
  });
}

}  // namespace ta::http

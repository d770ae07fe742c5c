#include "client/sidecar/sidecar.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <boost/url/params_encoded_view.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/parse_query.hpp>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "base/error.h"
#include "base/status_macros.h"
#include "client/sidecar/http_face.h"
#include "token/introspection_json.h"
#include "token/proof_check.h"
#include "tokenauthority/v1/token_authority.grpc.pb.h"

namespace ta::client {
namespace {

namespace v1 = ::tokenauthority::v1;

constexpr char kReasonTrailer[] = "ta-reason";  // server/rpc/status.h's, the same trailer
constexpr char kServiceName[] = "tokenauthority.v1.TokenAuthority";
constexpr int kMaxBatch = 100;  // the authority's IntrospectBatch bound

grpc::Status Refuse(grpc::ServerContext* context, grpc::StatusCode code, const std::string& reason,
                    absl::string_view message) {
  context->AddTrailingMetadata(kReasonTrailer, reason);
  return grpc::Status(code, absl::StrCat(reason, ": ", message));
}

grpc::Status ReadOnly(grpc::ServerContext* context) {
  return Refuse(context, grpc::StatusCode::FAILED_PRECONDITION, "sidecar_read_only",
                "the verifier sidecar answers Introspect, IntrospectBatch and GetJwks only; "
                "send this call to the token authority");
}

grpc::Status FromStatus(grpc::ServerContext* context, const absl::Status& status) {
  std::string reason = ReasonOf(status);
  if (reason.empty()) reason = "internal";
  // absl::StatusCode values are gRPC's codes by construction.
  return Refuse(context, static_cast<grpc::StatusCode>(status.code()), reason, status.message());
}

// The claims Struct of an active gRPC answer as its wire bytes, rendered once per claims JSON
// (a pure function of it: never stale) instead of a JSON parse per call, as the authority's
// rpc::ClaimsCache does. At most kMaxEntries claims sets, forgotten all at once when full.
// Thread-safe.
class ClaimsBytes {
 public:
  static constexpr size_t kMaxEntries = 4096;

  // Sets `out`'s claims field (number kClaimsFieldNumber) from `claims_json`, as wire bytes
  // kept among the message's unknown fields: serialized exactly as a set claims Struct is.
  void Attach(const std::string& claims_json, v1::IntrospectResponse* out) {
    std::string bytes;
    {
      absl::ReaderMutexLock lock(&mu_);
      if (auto it = rendered_.find(claims_json); it != rendered_.end()) bytes = it->second;
    }
    if (bytes.empty()) {
      google::protobuf::Struct claims;
      if (!google::protobuf::util::JsonStringToMessage(claims_json, &claims).ok()) return;
      bytes = claims.SerializeAsString();
      absl::MutexLock lock(&mu_);
      if (rendered_.size() >= kMaxEntries) rendered_.clear();
      rendered_.emplace(claims_json, bytes);
    }
    out->GetReflection()->MutableUnknownFields(out)->AddLengthDelimited(
        v1::IntrospectResponse::kClaimsFieldNumber, bytes);
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::string> rendered_ ABSL_GUARDED_BY(mu_);
};

// With `claims` null, an active answer lacks the claims Struct (the RFC 7662 JSON does not
// carry it).
absl::Status IntrospectOne(const LocalVerifier& verifier, const v1::IntrospectRequest& request,
                           v1::IntrospectResponse* out, ClaimsBytes* claims_bytes) {
  if (request.token().empty()) {
    return Error(absl::StatusCode::kInvalidArgument, "invalid_argument:token", "token: required");
  }
  token::PresentedProof proof;
  proof.dpop_proof = request.proof().dpop_proof();
  proof.http_method = request.proof().http_method();
  proof.http_url = request.proof().http_url();
  proof.certificate_thumbprint = request.proof().certificate_thumbprint();
  RETURN_IF_ERROR(token::CheckPresentedProof(proof));  // as the authority's Introspect
  absl::StatusOr<token::AccessDecision> decision =
      verifier.Verify(request.token(), proof, request.binding_checked_by_caller());
  if (!decision.ok()) return decision.status();
  std::string inactive = decision->active ? "" : decision->inactive_reason;
  if (decision->active && !request.audience().empty()) {
    const std::vector<std::string>& aud = decision->jwt->claims.aud;
    if (std::find(aud.begin(), aud.end(), request.audience()) == aud.end()) {
      inactive = "audience_mismatch";
    }
  }
  if (!inactive.empty()) {
    out->set_active(false);
    if (request.include_reason()) out->set_inactive_reason(inactive);
    return absl::OkStatus();
  }
  // The fields the authority's Introspect fills for an access token (server/core/introspect.cc).
  const token::JwtClaims& claims = decision->jwt->claims;
  out->set_active(true);
  out->set_token_type("access_token");
  out->set_subject(claims.sub);
  out->set_family_id(claims.sid);
  out->set_jti(claims.jti);
  out->set_client_id(claims.client_id);
  out->set_scope(claims.scope);
  for (const std::string& a : claims.aud) out->add_audience(a);
  out->set_issued_at(absl::ToUnixSeconds(claims.iat));
  out->set_expires_at(absl::ToUnixSeconds(claims.exp));
  if (!claims.cnf.empty()) {
    out->mutable_cnf()->set_jkt(claims.cnf.jkt);
    out->mutable_cnf()->set_x5t_s256(claims.cnf.x5t_s256);
  }
  if (claims_bytes != nullptr) claims_bytes->Attach(decision->jwt->claims_json, out);
  return absl::OkStatus();
}

// --- The RFC 7662 face: POST /oauth2/introspect with a form body token=... ---

// The authority's HTTP face's answer for the same decision (token/introspection_json.h), so
// a caller cannot tell the two apart.
std::string IntrospectionJson(const v1::IntrospectResponse& in, const std::string& issuer) {
  token::IntrospectionFields fields;
  fields.active = in.active();
  fields.token_type = in.token_type();
  fields.subject = in.subject();
  fields.family_id = in.family_id();
  fields.jti = in.jti();
  fields.client_id = in.client_id();
  fields.scope = in.scope();
  fields.audience.assign(in.audience().begin(), in.audience().end());
  fields.issued_at = absl::FromUnixSeconds(in.issued_at());
  fields.expires_at = absl::FromUnixSeconds(in.expires_at());
  fields.cnf.jkt = in.cnf().jkt();
  fields.cnf.x5t_s256 = in.cnf().x5t_s256();
  return token::IntrospectionResponseJson(fields, issuer);
}

// {"error": ..., "error_description": "<reason>: <message>"}, as the authority's
// (token::OAuthErrorJson).
void HttpError(HttpExchange& ex, int status, const std::string& error, const std::string& reason,
               absl::string_view message) {
  ex.status = status;
  ex.response_body = token::OAuthErrorJson(error, absl::StrCat(reason, ": ", message));
  ex.headers.emplace_back("Cache-Control", "no-store");
  if (status == 503) ex.headers.emplace_back("Retry-After", "1");
}

// Whether the verifier's view is current: its last bookmark within the bound. Both the gRPC
// health service and the HTTP readiness probe answer by it.
bool IsCurrent(const LocalVerifier& verifier, absl::Duration max_staleness) {
  const VerifierState s = verifier.state();
  return s.bookmark_age.has_value() && *s.bookmark_age <= max_staleness;
}

// GET /.well-known/jwks.json (the keys the verifier holds) and the probes /healthz/live (the
// process answers) and /healthz, /healthz/ready (200 exactly while the view is current, as
// the gRPC health service's SERVING; else 503 revocations_stale).
bool ServeHttpGet(const LocalVerifier& verifier, absl::Duration max_staleness, HttpExchange& ex) {
  const bool jwks = ex.path == "/.well-known/jwks.json";
  const bool live = ex.path == "/healthz/live";
  const bool ready = ex.path == "/healthz" || ex.path == "/healthz/ready";
  if (!jwks && !live && !ready) return false;
  if (ex.method != "GET") {
    ex.headers.emplace_back("Allow", "GET");
    HttpError(ex, 405, "invalid_request", "method_not_allowed", "use GET");
    return true;
  }
  if (jwks) {
    ex.response_body = verifier.jwks_json();
    if (ex.response_body.empty()) {
      HttpError(ex, 503, "temporarily_unavailable", "jwks_unavailable",
                "the sidecar holds no keys yet");
      return true;
    }
    ex.response_type = "application/jwk-set+json";
    ex.headers.emplace_back("Cache-Control", "no-cache");
    return true;
  }
  if (ready && !IsCurrent(verifier, max_staleness)) {
    HttpError(ex, 503, "temporarily_unavailable", "revocations_stale",
              "the verifier cannot prove its revocations current");
    return true;
  }
  ex.response_body = R"({"status":"serving"})";
  ex.headers.emplace_back("Cache-Control", "no-store");
  return true;
}

void ServeHttp(const LocalVerifier& verifier, const std::string& issuer,
               absl::Duration max_staleness, HttpExchange& ex) {
  if (ServeHttpGet(verifier, max_staleness, ex)) return;
  if (ex.path != "/oauth2/introspect") {
    return HttpError(ex, 404, "not_found", "not_found",
                     "the sidecar serves /oauth2/introspect, /.well-known/jwks.json, /healthz");
  }
  if (ex.method != "POST") {
    ex.headers.emplace_back("Allow", "POST");
    return HttpError(ex, 405, "invalid_request", "method_not_allowed", "use POST");
  }
  const absl::string_view type = absl::StripAsciiWhitespace(
      absl::string_view(ex.content_type)
          .substr(0, std::min(ex.content_type.find(';'), ex.content_type.size())));
  if (!absl::EqualsIgnoreCase(type, "application/x-www-form-urlencoded")) {
    return HttpError(ex, 400, "invalid_request", "invalid_request",
                     "the body must be application/x-www-form-urlencoded");
  }
  boost::system::result<boost::urls::params_encoded_view> form = boost::urls::parse_query(ex.body);
  if (!form.has_value()) {
    return HttpError(ex, 400, "invalid_request", "invalid_request", "the form body is malformed");
  }
  v1::IntrospectRequest request;
  for (const boost::urls::param_pct_view& p : *form) {
    if (!p.has_value) continue;
    const std::string value = p.value.decode(boost::urls::encoding_opts(/*space_as_plus=*/true));
    // The proof's fields as the authority's RFC 7662 endpoint takes them (README).
    if (p.key == "token") request.set_token(value);
    if (p.key == "dpop_proof") request.mutable_proof()->set_dpop_proof(value);
    if (p.key == "dpop_method") request.mutable_proof()->set_http_method(value);
    if (p.key == "dpop_url") request.mutable_proof()->set_http_url(value);
    if (p.key == "certificate_thumbprint") {
      request.mutable_proof()->set_certificate_thumbprint(value);
    }
    if (p.key == "binding_checked_by_caller") {
      request.set_binding_checked_by_caller(value == "true");
    }
  }
  if (request.token().empty()) {
    return HttpError(ex, 400, "invalid_request", "invalid_argument:token",
                     "the form parameter 'token' is required");
  }
  v1::IntrospectResponse response;
  if (absl::Status s = IntrospectOne(verifier, request, &response, /*claims_bytes=*/nullptr);
      !s.ok()) {
    const bool unavailable = s.code() == absl::StatusCode::kUnavailable;
    std::string reason = ReasonOf(s);
    if (reason.empty()) reason = "internal";
    return HttpError(ex, unavailable ? 503 : 400,
                     unavailable ? "temporarily_unavailable" : "invalid_request", reason,
                     s.message());
  }
  ex.status = 200;
  ex.response_body = IntrospectionJson(response, issuer);
  ex.headers.emplace_back("Cache-Control", "no-store");
}

class Service final : public v1::TokenAuthority::Service {
 public:
  explicit Service(const LocalVerifier& verifier) : verifier_(verifier) {}

  grpc::Status Introspect(grpc::ServerContext* context, const v1::IntrospectRequest* request,
                          v1::IntrospectResponse* response) override {
    absl::Status s = IntrospectOne(verifier_, *request, response, &claims_);
    return s.ok() ? grpc::Status::OK : FromStatus(context, s);
  }

  grpc::Status IntrospectBatch(grpc::ServerContext* context,
                               const v1::IntrospectBatchRequest* request,
                               v1::IntrospectBatchResponse* response) override {
    if (request->requests_size() == 0 || request->requests_size() > kMaxBatch) {
      return FromStatus(context,
                        Error(absl::StatusCode::kInvalidArgument, "invalid_argument:requests",
                              absl::StrCat("1..", kMaxBatch, " requests per batch")));
    }
    for (const v1::IntrospectRequest& one : request->requests()) {
      absl::Status s = IntrospectOne(verifier_, one, response->add_responses(), &claims_);
      if (!s.ok()) {
        response->Clear();
        return FromStatus(context, s);
      }
    }
    return grpc::Status::OK;
  }

  grpc::Status GetJwks(grpc::ServerContext* context, const v1::GetJwksRequest*,
                       v1::GetJwksResponse* response) override {
    std::string jwks = verifier_.jwks_json();
    if (jwks.empty()) {
      return Refuse(context, grpc::StatusCode::UNAVAILABLE, "jwks_unavailable",
                    "the sidecar has not fetched the authority's keys yet");
    }
    response->set_jwks_json(std::move(jwks));
    return grpc::Status::OK;
  }

  grpc::Status IssueTokens(grpc::ServerContext* c, const v1::IssueTokensRequest*,
                           v1::TokenPair*) override {
    return ReadOnly(c);
  }
  grpc::Status RefreshTokens(grpc::ServerContext* c, const v1::RefreshTokensRequest*,
                             v1::TokenPair*) override {
    return ReadOnly(c);
  }
  grpc::Status RevokeToken(grpc::ServerContext* c, const v1::RevokeTokenRequest*,
                           v1::RevokeTokenResponse*) override {
    return ReadOnly(c);
  }
  grpc::Status RevokeFamily(grpc::ServerContext* c, const v1::RevokeFamilyRequest*,
                            v1::RevokeFamilyResponse*) override {
    return ReadOnly(c);
  }
  grpc::Status WatchRevocations(grpc::ServerContext* c, const v1::WatchRevocationsRequest*,
                                grpc::ServerWriter<v1::WatchRevocationsResponse>*) override {
    return ReadOnly(c);
  }

 private:
  const LocalVerifier& verifier_;
  ClaimsBytes claims_;
};

}  // namespace

class VerifierSidecar::Impl {
 public:
  absl::Status Start(SidecarOptions options) {
    options_ = std::move(options);
    absl::StatusOr<std::unique_ptr<LocalVerifier>> verifier =
        LocalVerifier::Create(options_.verifier);
    if (!verifier.ok()) return verifier.status();
    verifier_ = *std::move(verifier);
    service_ = std::make_unique<Service>(*verifier_);
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(options_.listen, grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || port == 0) {
      return Error(absl::StatusCode::kInvalidArgument, "invalid_argument:listen",
                   absl::StrCat("listen: cannot serve on ", options_.listen));
    }
    const size_t colon = options_.listen.rfind(':');
    address_ = absl::StrCat(options_.listen.substr(0, colon), ":", port);
    if (!options_.http_listen.empty()) {
      if (options_.http_tls_cert_pem.empty() != options_.http_tls_key_pem.empty()) {
        return Error(absl::StatusCode::kInvalidArgument, "invalid_argument:http_tls",
                     "http_tls: a certificate and a key go together");
      }
      absl::StatusOr<std::unique_ptr<HttpFace>> http = HttpFace::Start(
          options_.http_listen,
          [verifier = verifier_.get(), issuer = options_.verifier.issuer,
           bound = options_.verifier.max_staleness](HttpExchange& ex) {
            ServeHttp(*verifier, issuer, bound, ex);
          },
          HttpTls{options_.http_tls_cert_pem, options_.http_tls_key_pem});
      if (!http.ok()) return http.status();
      http_ = *std::move(http);
    }
    SetHealth(false);
    health_thread_ = std::thread([this] { FollowHealth(); });
    return absl::OkStatus();
  }

  ~Impl() {
    Shutdown();
    if (health_thread_.joinable()) health_thread_.join();
  }

  void Shutdown() {
    if (!stop_.HasBeenNotified()) stop_.Notify();
    http_.reset();
    if (server_ != nullptr) server_->Shutdown();
  }
  void Wait() {
    if (server_ != nullptr) server_->Wait();
  }

  const std::string& address() const { return address_; }
  std::string http_address() const { return http_ != nullptr ? http_->address() : ""; }
  const LocalVerifier& verifier() const { return *verifier_; }

 private:
  void SetHealth(bool serving) {
    grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
    if (health == nullptr) return;
    health->SetServingStatus("", serving);
    health->SetServingStatus(kServiceName, serving);
  }

  // The health status follows the verifier: SERVING exactly while its view is current.
  void FollowHealth() {
    bool serving = false;
    while (!stop_.WaitForNotificationWithTimeout(options_.health_interval)) {
      const bool current = IsCurrent(*verifier_, options_.verifier.max_staleness);
      if (current != serving) {
        serving = current;
        SetHealth(serving);
      }
    }
  }

  SidecarOptions options_;
  std::unique_ptr<LocalVerifier> verifier_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<HttpFace> http_;
  std::string address_;
  absl::Notification stop_;
  std::thread health_thread_;
};

absl::StatusOr<std::unique_ptr<VerifierSidecar>> VerifierSidecar::Start(SidecarOptions options) {
  auto impl = std::make_unique<Impl>();
  if (absl::Status s = impl->Start(std::move(options)); !s.ok()) return s;
  return std::unique_ptr<VerifierSidecar>(new VerifierSidecar(std::move(impl)));
}

VerifierSidecar::VerifierSidecar(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
VerifierSidecar::~VerifierSidecar() = default;
const std::string& VerifierSidecar::address() const { return impl_->address(); }
std::string VerifierSidecar::http_address() const { return impl_->http_address(); }
const LocalVerifier& VerifierSidecar::verifier() const { return impl_->verifier(); }
void VerifierSidecar::Wait() { impl_->Wait(); }
void VerifierSidecar::Shutdown() { impl_->Shutdown(); }

}  // namespace ta::client

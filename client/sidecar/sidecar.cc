#include "client/sidecar/sidecar.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "base/error.h"
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

class Service final : public v1::TokenAuthority::Service {
 public:
  explicit Service(const LocalVerifier& verifier) : verifier_(verifier) {}

  grpc::Status Introspect(grpc::ServerContext* context, const v1::IntrospectRequest* request,
                          v1::IntrospectResponse* response) override {
    absl::Status s = IntrospectOne(*request, response);
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
      absl::Status s = IntrospectOne(one, response->add_responses());
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
  absl::Status IntrospectOne(const v1::IntrospectRequest& request,
                             v1::IntrospectResponse* out) const {
    if (request.token().empty()) {
      return Error(absl::StatusCode::kInvalidArgument, "invalid_argument:token", "token: required");
    }
    absl::StatusOr<token::AccessDecision> decision = verifier_.Verify(request.token());
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
    if (!google::protobuf::util::JsonStringToMessage(decision->jwt->claims_json,
                                                     out->mutable_claims())
             .ok()) {
      out->clear_claims();  // a verified payload is a JSON object; not reached
    }
    return absl::OkStatus();
  }

  const LocalVerifier& verifier_;
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
    if (server_ != nullptr) server_->Shutdown();
  }
  void Wait() {
    if (server_ != nullptr) server_->Wait();
  }

  const std::string& address() const { return address_; }
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
      const VerifierState s = verifier_->state();
      const bool current =
          s.bookmark_age.has_value() && *s.bookmark_age <= options_.verifier.max_staleness;
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
const LocalVerifier& VerifierSidecar::verifier() const { return impl_->verifier(); }
void VerifierSidecar::Wait() { impl_->Wait(); }
void VerifierSidecar::Shutdown() { impl_->Shutdown(); }

}  // namespace ta::client

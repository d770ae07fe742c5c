#include "client/client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/error.h"
#include "tokenauthority/v1/token_authority.grpc.pb.h"

namespace ta::client {
namespace {

constexpr char kReasonTrailer[] = "ta-reason";
constexpr int kMaxAttemptsLimit = 10;

enum class Retry { kNever, kIdempotent };

bool IsPrintableAscii(absl::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

bool IsRetryable(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded;
}

// grpc::Status -> absl::Status: same code number, same message, the `ta-reason` trailer as
// the ta::Error reason payload.
absl::Status FromGrpc(const grpc::Status& status, const grpc::ClientContext& context) {
  auto code = static_cast<absl::StatusCode>(status.error_code());
  const auto& trailers = context.GetServerTrailingMetadata();
  auto it = trailers.find(kReasonTrailer);
  if (it == trailers.end()) return absl::Status(code, status.error_message());
  return Error(code, absl::string_view(it->second.data(), it->second.size()),
               status.error_message());
}

class GrpcClient final : public Client {
 public:
  explicit GrpcClient(const ClientOptions& options)
      : options_(options),
        channel_(grpc::CreateCustomChannel(options.target, ChannelCredentialsFor(options),
                                           ChannelArgs(options))),
        authority_(v1::TokenAuthority::NewStub(channel_)),
        admin_(v1::TokenAdmin::NewStub(channel_)) {}

  absl::StatusOr<v1::TokenPair> IssueTokens(const v1::IssueTokensRequest& r) override {
    return Call<v1::TokenPair>(
        "/tokenauthority.v1.TokenAuthority/IssueTokens", Retry::kNever,
        [&](auto* ctx, auto* out) { return authority_->IssueTokens(ctx, r, out); });
  }
  absl::StatusOr<v1::TokenPair> RefreshTokens(const v1::RefreshTokensRequest& r) override {
    return Call<v1::TokenPair>(
        "/tokenauthority.v1.TokenAuthority/RefreshTokens", Retry::kNever,
        [&](auto* ctx, auto* out) { return authority_->RefreshTokens(ctx, r, out); });
  }
  absl::StatusOr<v1::IntrospectResponse> Introspect(const v1::IntrospectRequest& r) override {
    return Call<v1::IntrospectResponse>(
        "/tokenauthority.v1.TokenAuthority/Introspect", Retry::kIdempotent,
        [&](auto* ctx, auto* out) { return authority_->Introspect(ctx, r, out); });
  }
  absl::StatusOr<v1::IntrospectBatchResponse> IntrospectBatch(
      const v1::IntrospectBatchRequest& r) override {
    return Call<v1::IntrospectBatchResponse>(
        "/tokenauthority.v1.TokenAuthority/IntrospectBatch", Retry::kIdempotent,
        [&](auto* ctx, auto* out) { return authority_->IntrospectBatch(ctx, r, out); });
  }
  absl::StatusOr<v1::RevokeTokenResponse> RevokeToken(const v1::RevokeTokenRequest& r) override {
    return Call<v1::RevokeTokenResponse>(
        "/tokenauthority.v1.TokenAuthority/RevokeToken", Retry::kIdempotent,
        [&](auto* ctx, auto* out) { return authority_->RevokeToken(ctx, r, out); });
  }
  absl::StatusOr<v1::RevokeFamilyResponse> RevokeFamily(const v1::RevokeFamilyRequest& r) override {
    return Call<v1::RevokeFamilyResponse>(
        "/tokenauthority.v1.TokenAuthority/RevokeFamily", Retry::kIdempotent,
        [&](auto* ctx, auto* out) { return authority_->RevokeFamily(ctx, r, out); });
  }
  absl::StatusOr<v1::GetJwksResponse> GetJwks(const v1::GetJwksRequest& r) override {
    return Call<v1::GetJwksResponse>(
        "/tokenauthority.v1.TokenAuthority/GetJwks", Retry::kIdempotent,
        [&](auto* ctx, auto* out) { return authority_->GetJwks(ctx, r, out); });
  }

  absl::StatusOr<v1::RevokeSubjectResponse> RevokeSubject(
      const v1::RevokeSubjectRequest& r) override {
    return Call<v1::RevokeSubjectResponse>(
        "/tokenauthority.v1.TokenAdmin/RevokeSubject", Retry::kIdempotent,
        [&](auto* ctx, auto* out) { return admin_->RevokeSubject(ctx, r, out); });
  }
  absl::StatusOr<v1::ListFamiliesResponse> ListFamilies(const v1::ListFamiliesRequest& r) override {
    return Call<v1::ListFamiliesResponse>(
        "/tokenauthority.v1.TokenAdmin/ListFamilies", Retry::kIdempotent,
        [&](auto* ctx, auto* out) { return admin_->ListFamilies(ctx, r, out); });
  }
  absl::StatusOr<v1::Family> GetFamily(const v1::GetFamilyRequest& r) override {
    return Call<v1::Family>("/tokenauthority.v1.TokenAdmin/GetFamily", Retry::kIdempotent,
                            [&](auto* ctx, auto* out) { return admin_->GetFamily(ctx, r, out); });
  }
  absl::StatusOr<v1::RotateSigningKeyResponse> RotateSigningKey(
      const v1::RotateSigningKeyRequest& r) override {
    return Call<v1::RotateSigningKeyResponse>(
        "/tokenauthority.v1.TokenAdmin/RotateSigningKey", Retry::kNever,
        [&](auto* ctx, auto* out) { return admin_->RotateSigningKey(ctx, r, out); });
  }
  absl::StatusOr<v1::PurgeExpiredResponse> PurgeExpired(const v1::PurgeExpiredRequest& r) override {
    return Call<v1::PurgeExpiredResponse>(
        "/tokenauthority.v1.TokenAdmin/PurgeExpired", Retry::kIdempotent,
        [&](auto* ctx, auto* out) { return admin_->PurgeExpired(ctx, r, out); });
  }
  absl::StatusOr<v1::GetStatsResponse> GetStats(const v1::GetStatsRequest& r) override {
    return Call<v1::GetStatsResponse>(
        "/tokenauthority.v1.TokenAdmin/GetStats", Retry::kIdempotent,
        [&](auto* ctx, auto* out) { return admin_->GetStats(ctx, r, out); });
  }
  absl::StatusOr<v1::CreateBackupResponse> CreateBackup(const v1::CreateBackupRequest& r) override {
    return Call<v1::CreateBackupResponse>(
        "/tokenauthority.v1.TokenAdmin/CreateBackup", Retry::kNever, [&](auto* ctx, auto* out) {
          ctx->set_deadline(absl::ToChronoTime(absl::Now() + options_.backup_timeout));
          return admin_->CreateBackup(ctx, r, out);
        });
  }

 private:
  static grpc::ChannelArguments ChannelArgs(const ClientOptions& options) {
    grpc::ChannelArguments args;
    if (options.use_tls && !options.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(options.tls_server_name);
    }
    // After a failed connect gRPC waits its reconnect backoff (1 s at first) and fails calls
    // fast meanwhile; starting it at our own initial backoff lets a retry reach a server
    // that came back. (Not GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: that is also the connect
    // timeout, which must stay long enough for a slow handshake.)
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
                static_cast<int>(absl::ToInt64Milliseconds(options.initial_backoff)));
    return args;
  }

  // One call with the retry policy. `rpc(context, response)` makes one attempt.
  template <typename Response, typename Rpc>
  absl::StatusOr<Response> Call(absl::string_view method, Retry retry, Rpc rpc) {
    const int attempts = retry == Retry::kIdempotent ? options_.max_attempts : 1;
    for (int attempt = 1;; ++attempt) {
      if (options_.on_attempt) options_.on_attempt(method, attempt);
      grpc::ClientContext context;
      Prepare(&context);
      Response response;
      grpc::Status status = rpc(&context, &response);
      if (status.ok()) return response;
      absl::Status error = FromGrpc(status, context);
      if (attempt >= attempts || !IsRetryable(error.code())) return error;
      absl::SleepFor(Backoff(attempt));
    }
  }

  void Prepare(grpc::ClientContext* context) const {
    context->set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
    if (!options_.api_key.empty()) {
      context->AddMetadata("authorization", absl::StrCat("Bearer ", options_.api_key));
    }
  }

  absl::Duration Backoff(int attempt) {
    absl::Duration delay = options_.initial_backoff;
    for (int i = 1; i < attempt && delay < options_.max_backoff; ++i) delay *= 2;
    delay = std::min(delay, options_.max_backoff);
    absl::MutexLock lock(&mu_);
    return delay * absl::Uniform(bitgen_, 0.5, 1.0);
  }

  const ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TokenAuthority::Stub> authority_;
  std::unique_ptr<v1::TokenAdmin::Stub> admin_;
  absl::Mutex mu_;
  absl::BitGen bitgen_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentialsFor(const ClientOptions& options) {
  if (!options.use_tls) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = options.root_ca_pem;
  ssl.pem_cert_chain = options.cert_pem;
  ssl.pem_private_key = options.key_pem;
  return grpc::SslCredentials(ssl);
}

absl::Status ValidateClientOptions(const ClientOptions& options) {
  if (options.target.empty()) return absl::InvalidArgumentError("target: required");
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("timeout: must be positive");
  }
  if (options.backup_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("backup_timeout: must be positive");
  }
  if (!IsPrintableAscii(options.api_key)) {
    return absl::InvalidArgumentError("api_key: only printable ASCII is allowed");
  }
  if (options.cert_pem.empty() != options.key_pem.empty()) {
    return absl::InvalidArgumentError("cert_pem, key_pem: give both for mTLS, or neither");
  }
  if (!options.use_tls && !(options.cert_pem.empty() && options.root_ca_pem.empty() &&
                            options.tls_server_name.empty())) {
    return absl::InvalidArgumentError("root_ca_pem, cert_pem, tls_server_name: need use_tls");
  }
  if (options.max_attempts < 1 || options.max_attempts > kMaxAttemptsLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_attempts: must be in 1..", kMaxAttemptsLimit));
  }
  if (options.initial_backoff <= absl::ZeroDuration() ||
      options.max_backoff < options.initial_backoff) {
    return absl::InvalidArgumentError(
        "initial_backoff, max_backoff: need 0 < initial_backoff <= max_backoff");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(const ClientOptions& options) {
  if (absl::Status s = ValidateClientOptions(options); !s.ok()) return s;
  return std::make_unique<GrpcClient>(options);
}

absl::Status ApplyTlsFiles(const TlsFiles& files, ClientOptions* options) {
  if (files.cert.empty() != files.key.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together");
  }
  options->use_tls = files.tls || !files.ca.empty() || !files.cert.empty();
  options->tls_server_name = files.server_name;
  if (!options->use_tls && !options->tls_server_name.empty()) {
    return absl::InvalidArgumentError("--tls_server_name needs --tls or --tls_ca");
  }
  for (auto [flag, path, pem] : {std::tuple("tls_ca", &files.ca, &options->root_ca_pem),
                                 std::tuple("tls_cert", &files.cert, &options->cert_pem),
                                 std::tuple("tls_key", &files.key, &options->key_pem)}) {
    if (path->empty()) continue;
    std::ifstream in(*path, std::ios::binary);
    std::stringstream content;
    if (!in || !(content << in.rdbuf())) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, ": cannot read ", *path));
    }
    *pem = content.str();
  }
  return absl::OkStatus();
}

}  // namespace ta::client

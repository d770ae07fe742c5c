// ta::client::Client: a thin C++ client of the token-authority API (both services,
// TokenAuthority and TokenAdmin) for services and for tokenctl.
//
// One factory, one method per RPC. Requests and responses are the API's own proto messages
// (a thin wrapper, not a second data model); every method returns absl::StatusOr. A failed
// call's status keeps the gRPC code (absl and gRPC codes are the same numbers) and the
// server's message, and carries the server's machine-readable reason (the `ta-reason`
// trailer) so that `ta::ReasonOf(status)` returns it, e.g. "refresh_token_reused".
// ReasonOf is "" when the failure did not come from the server (connection refused,
// deadline passed on the client, bad TLS): branch on the code then.
//
// Retries: only idempotent calls are retried (Introspect, IntrospectBatch, GetJwks,
// GetFamily, ListFamilies, GetStats, RevokeToken, RevokeFamily, RevokeSubject,
// PurgeExpired), and only on UNAVAILABLE or DEADLINE_EXCEEDED, with exponential backoff and
// jitter. IssueTokens, RefreshTokens and RotateSigningKey are sent exactly once: a retried
// issue would start a second session, a retried refresh would present a spent token (reuse,
// which revokes the family), a retried rotation would add a second key. CreateBackup is sent
// once too, with its own, longer deadline (ClientOptions::backup_timeout).
//
// The gRPC stubs stay in client.cc: this header includes the generated messages only
// (tokenauthority/v1/token_authority.pb.h), no grpcpp header.
//
// Thread-safety: a Client is thread-safe; share one per process (it owns one channel).
#ifndef TA_CLIENT_CLIENT_H_
#define TA_CLIENT_CLIENT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tokenauthority/v1/token_authority.pb.h"

namespace grpc {
class ChannelCredentials;
}  // namespace grpc

namespace ta::client {

namespace v1 = ::tokenauthority::v1;

struct ClientOptions {
  // The server, "host:port" (any gRPC target, e.g. "dns:///ta.internal:443"). Required.
  std::string target;

  // Deadline of each attempt of a call. Default 5 s. An idempotent call may take up to
  // max_attempts * timeout plus the backoff in total.
  absl::Duration timeout = absl::Seconds(5);
  // Deadline of CreateBackup, which copies the whole store. Default 1 h.
  absl::Duration backup_timeout = absl::Hours(1);

  // When non-empty, sent as `authorization: Bearer <api_key>` on every call. Default empty.
  // Printable ASCII only (it travels as a metadata value). Never logged or echoed.
  std::string api_key;

  // Channel security. Default false: plaintext, for local development only. When true, TLS
  // verified against root_ca_pem (empty: gRPC's default roots).
  bool use_tls = false;
  // PEM of the CA(s) that sign the server's certificate. Default empty. Implies nothing
  // unless use_tls is true.
  std::string root_ca_pem;
  // The client's certificate chain and private key (PEM) for mTLS; both or neither.
  // Default empty (no client certificate). Requires use_tls.
  std::string cert_pem;
  std::string key_pem;
  // The name the server's certificate must carry. Default empty: the host part of target.
  // Set it when dialing an address the certificate does not name (an IP, a load balancer).
  std::string tls_server_name;

  // Attempts of an idempotent call, 1..10; 1 disables retries. Default 3. Non-idempotent
  // calls always make one attempt.
  int max_attempts = 3;
  // Backoff before retry n (n = 1, 2, ...) is min(max_backoff, initial_backoff * 2^(n-1)),
  // scaled by a random factor in [0.5, 1] so that many clients do not retry in step.
  // Defaults 100 ms and 2 s; raise them for a server that is restarted often.
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(2);

  // Called before every attempt with the full method name (e.g.
  // "/tokenauthority.v1.TokenAuthority/Introspect") and the attempt number (1-based).
  // Default empty. For metrics and tests; it runs on the calling thread and must not block.
  std::function<void(absl::string_view method, int attempt)> on_attempt;
};

// Checks `options` in full; the error names the offending field (never its value).
absl::Status ValidateClientOptions(const ClientOptions& options);

// The channel credentials `options` ask for: plaintext, TLS, or TLS with a client
// certificate. Shared by Client and LocalVerifier (verifier.h).
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentialsFor(const ClientOptions& options);

// TLS settings as files, as the command-line tools' flags name them (tokenctl and
// ta-verifier-sidecar share these names: --tls, --tls_ca, --tls_cert, --tls_key,
// --tls_server_name). Every field defaults to off/empty.
struct TlsFiles {
  bool tls = false;         // TLS with gRPC's default roots (implied by ca or cert)
  std::string ca;           // PEM file of the CA that signs the server's certificate
  std::string cert;         // PEM client certificate chain for mTLS (with key)
  std::string key;          // PEM private key of cert
  std::string server_name;  // the name the server's certificate must carry
};

// Sets the TLS fields of `options` from `files`, reading the PEM files. INVALID_ARGUMENT
// naming the flag (never a file's content) when cert and key are not given together, when
// server_name comes without TLS, or when a file cannot be read.
absl::Status ApplyTlsFiles(const TlsFiles& files, ClientOptions* options);

class Client {
 public:
  // Validates `options` and creates the channel. Connecting is lazy: an unreachable server
  // shows up as UNAVAILABLE on the first call, not here.
  static absl::StatusOr<std::unique_ptr<Client>> Create(const ClientOptions& options);

  virtual ~Client() = default;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // TokenAuthority. Never retried: IssueTokens, RefreshTokens.
  virtual absl::StatusOr<v1::TokenPair> IssueTokens(const v1::IssueTokensRequest& request) = 0;
  virtual absl::StatusOr<v1::TokenPair> RefreshTokens(const v1::RefreshTokensRequest& request) = 0;
  virtual absl::StatusOr<v1::IntrospectResponse> Introspect(
      const v1::IntrospectRequest& request) = 0;
  virtual absl::StatusOr<v1::IntrospectBatchResponse> IntrospectBatch(
      const v1::IntrospectBatchRequest& request) = 0;
  virtual absl::StatusOr<v1::RevokeTokenResponse> RevokeToken(
      const v1::RevokeTokenRequest& request) = 0;
  virtual absl::StatusOr<v1::RevokeFamilyResponse> RevokeFamily(
      const v1::RevokeFamilyRequest& request) = 0;
  virtual absl::StatusOr<v1::GetJwksResponse> GetJwks(const v1::GetJwksRequest& request) = 0;

  // TokenAdmin. Never retried: RotateSigningKey, CreateBackup.
  virtual absl::StatusOr<v1::RevokeSubjectResponse> RevokeSubject(
      const v1::RevokeSubjectRequest& request) = 0;
  virtual absl::StatusOr<v1::ListFamiliesResponse> ListFamilies(
      const v1::ListFamiliesRequest& request) = 0;
  virtual absl::StatusOr<v1::Family> GetFamily(const v1::GetFamilyRequest& request) = 0;
  virtual absl::StatusOr<v1::RotateSigningKeyResponse> RotateSigningKey(
      const v1::RotateSigningKeyRequest& request) = 0;
  virtual absl::StatusOr<v1::PurgeExpiredResponse> PurgeExpired(
      const v1::PurgeExpiredRequest& request) = 0;
  virtual absl::StatusOr<v1::GetStatsResponse> GetStats(const v1::GetStatsRequest& request) = 0;
  // Never retried (each call makes a new backup); its deadline is backup_timeout.
  virtual absl::StatusOr<v1::CreateBackupResponse> CreateBackup(
      const v1::CreateBackupRequest& request) = 0;

 protected:
  Client() = default;
};

}  // namespace ta::client

#endif  // TA_CLIENT_CLIENT_H_

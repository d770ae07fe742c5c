// The verifier sidecar (issue 25 item 3): a client::LocalVerifier behind a local gRPC face, so
// a resource server in any language (or a gateway) verifies access tokens with zero network
// hops to the authority: it calls the sidecar on localhost with the authority's own API.
//
// It serves `tokenauthority.v1.TokenAuthority`: Introspect and IntrospectBatch answer from the
// LocalVerifier (as the authority's Introspect with access_tokens_only: a refresh token is
// inactive "not_an_access_token"), GetJwks from the JWKS the verifier holds. Every other
// method of the service is refused with FAILED_PRECONDITION and the `ta-reason` trailer
// "sidecar_read_only". While the verifier is not current (before its first bookmark, or past
// max_staleness without one) Introspect answers UNAVAILABLE "revocations_stale" for a token
// that verifies, and the gRPC health service (grpc.health.v1, service "" and
// "tokenauthority.v1.TokenAuthority") reports NOT_SERVING.
//
// With http_listen, it also answers RFC 7662 `POST /oauth2/introspect` (form body token=...)
// with the JSON the authority's HTTP face returns for an access token ({"active":false} when
// inactive); a stale verifier answers 503 temporarily_unavailable "revocations_stale".
// The same face serves GET /.well-known/jwks.json (the keys the verifier holds; 503
// jwks_unavailable before the first fetch), /healthz/live (200) and /healthz, /healthz/ready:
// 200 exactly while the view is current, else 503 "revocations_stale" (a readiness probe
// takes the sidecar out of rotation as the gRPC health service does).
//
// Callers are not authenticated (it should listen on loopback only); include_reason is
// honoured for every caller. On the RFC 7662 face, client authentication a gateway sends
// anyway is accepted and ignored: an Authorization header (client_secret_basic, as
// mod_auth_openidc's OIDCOAuthIntrospectionEndpointAuth sends it) and client_id,
// client_secret or token_type_hint form fields (client_secret_post) change nothing.
//
// Toward the authority it is a client like any other: LocalVerifierOptions::server carries
// the target, the API key and TLS/mTLS (ta-verifier-sidecar's --tls_ca, --tls_cert, --tls_key,
// the names tokenctl uses).
#ifndef TA_CLIENT_SIDECAR_SIDECAR_H_
#define TA_CLIENT_SIDECAR_SIDECAR_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/verifier.h"

namespace ta::client {

struct SidecarOptions {
  // host:port to serve on; port 0 picks a free one (see VerifierSidecar::address). Default
  // 127.0.0.1:50052.
  std::string listen = "127.0.0.1:50052";
  // host:port of the RFC 7662 face (POST /oauth2/introspect, form body token=...); port 0
  // picks one (see http_address). Empty (the default): no HTTP face.
  std::string http_listen;
  // The HTTP face's certificate chain and private key (PEM), both or neither. Default empty:
  // plain HTTP. Gateways that call only https introspection endpoints (mod_auth_openidc)
  // need them, even on loopback.
  std::string http_tls_cert_pem;
  std::string http_tls_key_pem;
  // The verifier: the authority, a resource caller's API key, issuer, audience, staleness.
  LocalVerifierOptions verifier;
  // How often the health status follows the verifier's currency. Default 50 ms.
  absl::Duration health_interval = absl::Milliseconds(50);
};

class VerifierSidecar {
 public:
  // Starts the verifier and the gRPC server (does not wait for the authority).
  static absl::StatusOr<std::unique_ptr<VerifierSidecar>> Start(SidecarOptions options);
  ~VerifierSidecar();  // shuts the server down and stops the verifier
  VerifierSidecar(const VerifierSidecar&) = delete;
  VerifierSidecar& operator=(const VerifierSidecar&) = delete;

  // "host:port" actually bound.
  const std::string& address() const;
  // The HTTP face's "host:port", or "" without one.
  std::string http_address() const;
  const LocalVerifier& verifier() const;
  // Blocks until the server shuts down (from another thread or the destructor).
  void Wait();
  void Shutdown();

  class Impl;

 private:
  explicit VerifierSidecar(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ta::client

#endif  // TA_CLIENT_SIDECAR_SIDECAR_H_

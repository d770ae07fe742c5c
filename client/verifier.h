// LocalVerifier: verifies access tokens in the resource server's own process (issue 25 item 2),
// with the same answer as the server's Introspect and no call per token.
//
// It holds what Introspect consults: the server's public keys (GetJwks) and the revocations
// that still matter, kept current by `TokenAuthority/WatchRevocations`
// (docs/revocation-stream.md). Verify calls the one access-token decision,
// token::DecideAccessToken (token/access_decision.h), with those keys and a
// token::RevocationView fed by the stream, so a token is active here exactly when it is for
// Introspect given the same keys and revocations.
//
// Currency (the stream's rule 2): the view is trusted only while the last bookmark's as_of is
// within `max_staleness` of the clock; after that (and before the first bookmark) Verify fails
// closed with UNAVAILABLE "revocations_stale", the server's own reason, for every token that
// verifies (a bad token is still inactive with its reason). A `reset` (another epoch: a
// restarted server, another replica, a restore) builds a new view beside the old one; the old
// one answers until the new one has its snapshot and a bookmark (rule 3), then is dropped.
//
// A background thread owns the stream: it reconnects with exponential backoff and jitter,
// resuming from {epoch, last seq} so a short break costs no snapshot. It parses the messages;
// a second thread per stream applies them to the view in order (client/watch_pipe.h), so a
// big snapshot's parsing and inserts run on two cores; a reset's size hint sizes the new
// view's tables before its entries arrive. The JWKS is refetched
// when a `keys` event carries a new version, and when a token names a kid the keys do not
// hold (at most once per `jwks_refetch_interval`, on the verifying thread).
//
// Thread-safety: Verify and state() may be called from any number of threads.
#ifndef TA_CLIENT_VERIFIER_H_
#define TA_CLIENT_VERIFIER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "client/client.h"
#include "token/access_decision.h"

namespace ta::client {

struct LocalVerifierOptions {
  // The server and how to reach it: target, api_key (a caller with role resource), TLS. Its
  // `timeout` bounds each GetJwks call; retries and backoff fields are not used here.
  ClientOptions server;

  // The tokens' iss, exactly as the server's --issuer. Required.
  std::string issuer;
  // When non-empty, one of the token's aud must equal it (Introspect's `audience`).
  std::string audience;
  // Clock skew allowed on exp, nbf and iat: the server's --leeway. Default 30 s.
  absl::Duration leeway = absl::Seconds(30);
  // How old the last bookmark may be before Verify answers revocations_stale. Default 1 s.
  absl::Duration max_staleness = absl::Seconds(1);

  // Reconnect backoff: min(max, initial * 2^(n-1)) scaled by a random factor in [0.5, 1].
  // Reset once a stream delivers an event. Defaults 100 ms and 5 s.
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  // Least time between two JWKS fetches caused by an unknown kid. Default 1 s.
  absl::Duration jwks_refetch_interval = absl::Seconds(1);

  // Sender-constrained tokens (Verify with a proof): the DPoP proof window and algorithms,
  // as the server's (--dpop_max_age). Default that of token::DpopPolicy.
  token::DpopPolicy dpop;
  // The in-process replay cache of DPoP proofs (token/proof_replay_cache.h): at most this
  // many proofs within their window; past it Verify fails closed (RESOURCE_EXHAUSTED
  // "dpop_replay_cache_full"). Per verifier: processes do not share it. Default 100,000
  // (~10 MB).
  size_t dpop_replay_cache_entries = 100'000;

  // Judges exp/nbf/iat and the bookmarks' age. Default (null): Clock::Real(). Not owned.
  const Clock* clock = nullptr;
};

absl::Status ValidateLocalVerifierOptions(const LocalVerifierOptions& options);

// For metrics and health checks.
struct VerifierState {
  bool connected = false;  // a stream is open and has delivered an event
  // Clock minus the last bookmark's as_of of the view in use; nullopt before the first.
  std::optional<absl::Duration> bookmark_age;
  size_t entries = 0;        // revocations the view in use holds (live and not yet swept)
  uint64_t reconnects = 0;   // streams opened after the first
  uint64_t resets = 0;       // reset events received (the first stream's included)
  uint64_t epoch = 0;        // the server log's epoch of the last reset
  uint64_t seq = 0;          // the position reached (resumed from)
  std::string jwks_version;  // of the keys held ("" before the first fetch)
  size_t keys = 0;           // verification keys held
};

class LocalVerifier {
 public:
  // Validates `options`, creates the channel and starts the stream's thread. Does not wait
  // for the server: until the first bookmark, Verify answers revocations_stale (see
  // WaitUntilCurrent).
  static absl::StatusOr<std::unique_ptr<LocalVerifier>> Create(LocalVerifierOptions options);

  // Ends the stream and joins its thread.
  ~LocalVerifier();
  LocalVerifier(const LocalVerifier&) = delete;
  LocalVerifier& operator=(const LocalVerifier&) = delete;

  // The decision for `access_token` now: as Introspect with access_tokens_only (a refresh
  // token is inactive, "not_an_access_token"). Errors: UNAVAILABLE "revocations_stale" (see
  // the header comment).
  absl::StatusOr<token::AccessDecision> Verify(absl::string_view access_token) const;
  // As above, for a request that came with `proof`: a bound token (its `cnf`) is active only
  // with a proof by its key (RFC 9449 §7: the request's DPoP header, method and absolute URL;
  // its ath must be the token's hash) or its certificate (RFC 8705 §3: the thumbprint of the
  // TLS connection's client certificate), each DPoP proof once (an in-process replay cache,
  // see LocalVerifierOptions). The one decision (token/access_decision.h step 5), as
  // Introspect with the same proof. Without a proof a bound token is inactive
  // "proof_required" (as Verify(access_token)); set `binding_checked_by_caller` to get it
  // active with its cnf in the claims, to check yourself.
  absl::StatusOr<token::AccessDecision> Verify(absl::string_view access_token,
                                               const token::PresentedProof& proof,
                                               bool binding_checked_by_caller = false) const;

  // Waits (real time) until the view is current by the clock, or `timeout`. True when it is.
  bool WaitUntilCurrent(absl::Duration timeout) const;

  VerifierState state() const;

  // The JWKS (RFC 7517 JSON text) the keys held came from; "" before the first fetch. For a
  // sidecar's GetJwks (client/sidecar/).
  std::string jwks_json() const;

  class Impl;

 private:
  explicit LocalVerifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ta::client

#endif  // TA_CLIENT_VERIFIER_H_

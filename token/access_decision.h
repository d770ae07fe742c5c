// The access-token decision (DESIGN §4): is this access token active now, and if not, why.
//
// The one place these rules live. The server's Introspect (server/core/introspect.cc) and the
// client's local verifier both call DecideAccessToken, so a token is active for one exactly
// when it is for the other, given the same keys and the same revocations. In order:
//   1. the token verifies (VerificationKeys::Verify; verification_keys.h): size, header, typ
//      at+jwt, kid and its algorithm, signature; then iss, aud (when the policy names one),
//      exp/nbf/iat with the leeway;
//   2. its sid is a family id (16 bytes, base64url);
//   3. the revocation view is current (or is brought current by `catch_up`);
//   4. neither its jti, its family nor its subject's cutoff is revoked in the view;
//   5. a bound token (its `cnf` claim, RFC 7800; DESIGN §13) comes with a proof by its key or
//      certificate (proof_check.h CheckBoundProof, with ath = the token's hash), whose replay
//      key `record_proof` records for the first time ("dpop_replayed" otherwise); without any
//      proof it is inactive "proof_required", unless policy.binding_checked_by_caller (the
//      caller checks the returned cnf itself). A bearer token ignores any proof.
// A verdict on the token (1, 2, 4) is an inactive decision with its reason; a failure to judge
// it (a view that stays stale, keys that cannot answer) is an error status.
// Thread-safety: a pure function over thread-safe arguments.
#ifndef TA_TOKEN_ACCESS_DECISION_H_
#define TA_TOKEN_ACCESS_DECISION_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "token/binding.h"
#include "token/dpop.h"
#include "token/jwt.h"
#include "token/revocation_view.h"
#include "token/verification_keys.h"

namespace ta::token {

// What an access token must meet beyond its signature.
struct AccessPolicy {
  // iss must equal this exactly (an empty issuer accepts nothing).
  std::string issuer;
  // When non-empty, must be one of aud (the resource asking). Default: not checked.
  std::string audience;
  // Clock skew allowed on exp, nbf and iat. Default 30 s (DESIGN §2).
  absl::Duration leeway = absl::Seconds(30);
  // Longer tokens are inactive ("token_too_large") before any parsing. Default 8 KiB.
  size_t max_token_bytes = 8192;
  // How the DPoP proof presented with a bound token is checked (its window, algorithms).
  DpopPolicy dpop;
  // A bound token without a proof is active (with its cnf in the claims): the caller checks
  // the binding itself. Default false: such a token is inactive ("proof_required").
  bool binding_checked_by_caller = false;
};

struct AccessDecision {
  bool active = false;
  // Inactive only: why. A reason of jwt.h (`reason::`: bad_signature, token_expired, ...),
  // "missing_claim" for a sid that is no family id, "token_revoked", "family_revoked",
  // "subject_revoked" from the view, or "invalid_token" when a rejection named none.
  std::string inactive_reason;
  // Active only: the verified token (its claims and their JSON text).
  std::shared_ptr<const VerifiedJwt> jwt;
};

// The replay cache of the proofs presented with bound tokens: records `proof.replay_key`
// until it can no longer verify; true when it was not there yet. The server's is the store's
// (TokenStore::RecordProofJti, shared by replicas); a local verifier keeps its own.
using RecordProof = absl::FunctionRef<absl::StatusOr<bool>(const DpopProof& proof)>;

// Called when `view` is not current at `now`, to bring it current (the server's follower
// reads the log; a client waits for its feed). Returns whether the view now is current.
using CatchUpView = absl::FunctionRef<bool(absl::Time now)>;

// The decision for `token` at `now` (see the header comment). Errors: UNAVAILABLE
// "revocations_stale" when the view is not current and `catch_up` cannot make it so (checked
// only for a token that verified, so a bad token is inactive whatever the view's state), and
// any error of `keys` that is not a verdict on the token (neither UNAUTHENTICATED nor
// INVALID_ARGUMENT).
absl::StatusOr<AccessDecision> DecideAccessToken(absl::string_view token,
                                                 const VerificationKeys& keys,
                                                 const RevocationView& view,
                                                 const AccessPolicy& policy, absl::Time now,
                                                 CatchUpView catch_up);
// As above, with what the resource server received with the token (step 5). Errors of
// `record_proof` are returned as they are.
absl::StatusOr<AccessDecision> DecideAccessToken(absl::string_view token,
                                                 const VerificationKeys& keys,
                                                 const RevocationView& view,
                                                 const AccessPolicy& policy, absl::Time now,
                                                 CatchUpView catch_up, const PresentedProof& proof,
                                                 RecordProof record_proof);
// As above, for a view with nothing to catch up with: a stale view is an error at once.
absl::StatusOr<AccessDecision> DecideAccessToken(absl::string_view token,
                                                 const VerificationKeys& keys,
                                                 const RevocationView& view,
                                                 const AccessPolicy& policy, absl::Time now);

}  // namespace ta::token

#endif  // TA_TOKEN_ACCESS_DECISION_H_

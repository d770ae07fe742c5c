#include "token/access_decision.h"

#include <optional>
#include <utility>

#include "base/error.h"
#include "base/status_macros.h"
#include "token/ids.h"
#include "token/proof_check.h"

namespace ta::token {
namespace {

// A family id, as the sid claim carries it (server/core/refresh_token.h EncodeFamilyId).

AccessDecision Inactive(absl::string_view reason) {
  AccessDecision out;
  out.inactive_reason = std::string(reason);
  return out;
}

// Errors that describe the token (rather than our ability to judge it) make it inactive.
bool IsVerdictOnToken(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnauthenticated ||
         status.code() == absl::StatusCode::kInvalidArgument;
}

// Step 5: "" when the binding of a verified token holds (or it has none), else the reason.
absl::StatusOr<std::string> BindingProblem(absl::string_view token, const Confirmation& cnf,
                                           const AccessPolicy& policy, absl::Time now,
                                           const PresentedProof& proof, RecordProof record_proof) {
  if (cnf.empty()) return std::string();
  if (proof.empty() && policy.binding_checked_by_caller) return std::string();
  ProofContext context;
  context.policy = policy.dpop;
  context.access_token = token;
  absl::StatusOr<std::optional<DpopProof>> checked = CheckBoundProof(cnf, proof, context, now);
  if (!checked.ok()) {
    if (!IsVerdictOnToken(checked.status())) return checked.status();
    return ReasonOf(checked.status());
  }
  if (!checked->has_value()) return std::string();
  ASSIGN_OR_RETURN(bool first_use, record_proof(**checked));
  return first_use ? std::string() : std::string(reason::kDpopReplayed);
}

}  // namespace

absl::StatusOr<AccessDecision> DecideAccessToken(absl::string_view token,
                                                 const VerificationKeys& keys,
                                                 const RevocationView& view,
                                                 const AccessPolicy& policy, absl::Time now,
                                                 CatchUpView catch_up) {
  return DecideAccessToken(token, keys, view, policy, now, catch_up, PresentedProof(),
                           [](const DpopProof&) -> absl::StatusOr<bool> { return true; });
}

absl::StatusOr<AccessDecision> DecideAccessToken(absl::string_view token,
                                                 const VerificationKeys& keys,
                                                 const RevocationView& view,
                                                 const AccessPolicy& policy, absl::Time now,
                                                 CatchUpView catch_up, const PresentedProof& proof,
                                                 RecordProof record_proof) {
  VerifyPolicy verify;
  verify.expected_typ = "at+jwt";
  verify.issuer = policy.issuer;
  verify.audience = policy.audience;
  verify.leeway = policy.leeway;
  verify.max_token_bytes = policy.max_token_bytes;
  absl::StatusOr<std::shared_ptr<const VerifiedJwt>> jwt = keys.Verify(token, verify, now);
  if (!jwt.ok()) {
    if (!IsVerdictOnToken(jwt.status())) return jwt.status();
    std::string reason = ReasonOf(jwt.status());
    return Inactive(reason.empty() ? "invalid_token" : reason);
  }
  const JwtClaims& claims = (*jwt)->claims;
  std::optional<std::string> family_id = DecodeFamilyIdText(claims.sid);
  if (!family_id.has_value()) return Inactive(reason::kMissingClaim);
  // Every revocation that can still kill this token is in a current view (its family cannot
  // have expired: an access token never outlives its family).
  if (!view.IsCurrent(now) && !catch_up(now)) {
    return Error(absl::StatusCode::kUnavailable, "revocations_stale",
                 "this server cannot prove it knows every recent revocation; retry");
  }
  absl::string_view revoked = view.Check(claims.jti, *family_id, now);
  if (!revoked.empty()) return Inactive(revoked);
  ASSIGN_OR_RETURN(std::string unbound,
                   BindingProblem(token, claims.cnf, policy, now, proof, record_proof));
  if (!unbound.empty()) return Inactive(unbound);
  AccessDecision out;
  out.active = true;
  out.jwt = *std::move(jwt);
  return out;
}

absl::StatusOr<AccessDecision> DecideAccessToken(absl::string_view token,
                                                 const VerificationKeys& keys,
                                                 const RevocationView& view,
                                                 const AccessPolicy& policy, absl::Time now) {
  return DecideAccessToken(token, keys, view, policy, now, [](absl::Time) { return false; });
}

}  // namespace ta::token

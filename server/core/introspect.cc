// Introspection (DESIGN §4): is this token usable now, and what does it say.
#include <algorithm>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "base/status_macros.h"
#include "server/core/authority.h"
#include "server/core/limits.h"
#include "server/core/refresh_token.h"
#include "token/access_decision.h"
#include "token/jwt.h"
#include "token/verification_keys.h"

namespace ta::core {
namespace {

Introspection Inactive(absl::string_view reason) {
  Introspection out;
  out.active = false;
  out.inactive_reason = std::string(reason);
  return out;
}

// Errors that describe the token (rather than our ability to judge it) make it inactive.
bool IsVerdictOnToken(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnauthenticated ||
         status.code() == absl::StatusCode::kInvalidArgument;
}

std::string ReasonOrDefault(const absl::Status& status, absl::string_view fallback) {
  std::string reason = ReasonOf(status);
  return reason.empty() ? std::string(fallback) : reason;
}

// The key ring behind the verify cache (TokenAuthority::VerifyAccessToken), as the token
// library's access-token decision verifies with it.
class CachedRing final : public token::VerificationKeys {
 public:
  using Verifier = absl::FunctionRef<absl::StatusOr<std::shared_ptr<const token::VerifiedJwt>>(
      absl::string_view, const token::VerifyPolicy&, absl::Time)>;
  explicit CachedRing(Verifier verify) : verify_(verify) {}
  absl::StatusOr<std::shared_ptr<const token::VerifiedJwt>> Verify(
      absl::string_view token, const token::VerifyPolicy& policy, absl::Time now) const override {
    return verify_(token, policy, now);
  }

 private:
  Verifier verify_;
};

}  // namespace

absl::StatusOr<Introspection> TokenAuthority::Introspect(const IntrospectRequest& request) {
  RETURN_IF_ERROR(CheckToken("token", request.token));
  RETURN_IF_ERROR(CheckText("audience", request.audience, kMaxAudienceBytes));
  RETURN_IF_ERROR(token::CheckPresentedProof(request.proof));
  const absl::Time now = options_.clock->Now();
  // Past the allowed offset from the database's clock, this server's idea of what has
  // expired or been swept is not to be trusted, either way (DESIGN §13).
  if (view_->clock_offset_exceeded()) {
    return Error(absl::StatusCode::kUnavailable, "clock_offset_exceeded",
                 "this server's clock is too far from the database's to judge a token; ask "
                 "another replica");
  }
  if (LooksLikeRefreshToken(request.token)) {
    if (request.access_tokens_only) return Inactive("not_an_access_token");
    return IntrospectRefresh(request, now);
  }
  return IntrospectAccess(request, now);
}

bool TokenAuthority::IntrospectMayWait(absl::string_view token) const {
  return LooksLikeRefreshToken(token) || !view_->IsCurrent(options_.clock->Now());
}

absl::StatusOr<std::vector<Introspection>> TokenAuthority::IntrospectBatch(
    const std::vector<IntrospectRequest>& requests) {
  if (requests.empty() || requests.size() > kMaxBatch) {
    return InvalidField("requests", absl::StrCat("1..", kMaxBatch, " requests per batch"));
  }
  std::vector<Introspection> out;
  out.reserve(requests.size());
  for (const IntrospectRequest& request : requests) {
    ASSIGN_OR_RETURN(Introspection one, Introspect(request));
    out.push_back(std::move(one));
  }
  return out;
}

absl::StatusOr<Introspection> TokenAuthority::IntrospectAccess(const IntrospectRequest& request,
                                                               absl::Time now) {
  token::AccessPolicy policy;
  policy.issuer = options_.issuer;
  policy.audience = request.audience;
  policy.leeway = options_.leeway;
  policy.max_token_bytes = kMaxTokenBytes;
  policy.dpop = options_.dpop;
  policy.binding_checked_by_caller = request.binding_checked_by_caller;
  auto verify = [this](absl::string_view token, const token::VerifyPolicy& verify_policy,
                       absl::Time at) { return VerifyAccessToken(token, verify_policy, at); };
  const CachedRing keys(verify);
  // No store read (DESIGN §10): the decision consults the view; a stale view waits here for
  // the follower to catch up (a store that no other process writes is always current).
  auto catch_up = [this](absl::Time at) { return follower_ != nullptr && follower_->CatchUp(at); };
  // A resource-side proof's jti goes to the store's replay cache, shared by replicas.
  auto record = [this, now](const token::DpopProof& proof) { return RecordProof(proof, now); };
  ASSIGN_OR_RETURN(token::AccessDecision decision,
                   token::DecideAccessToken(request.token, keys, *view_, policy, now, catch_up,
                                            request.proof, record));
  if (!decision.active) return Inactive(decision.inactive_reason);

  const token::JwtClaims& claims = decision.jwt->claims;
  Introspection out;
  out.active = true;
  out.token_type = "access_token";
  out.subject = claims.sub;
  out.family_id = claims.sid;
  out.jti = claims.jti;
  out.client_id = claims.client_id;
  out.scope = claims.scope;
  out.audience = claims.aud;
  out.issued_at = claims.iat;
  out.expires_at = claims.exp;
  out.claims_json = decision.jwt->claims_json;
  out.cnf = claims.cnf;
  return out;
}

absl::StatusOr<std::shared_ptr<const token::VerifiedJwt>> TokenAuthority::VerifyAccessToken(
    absl::string_view token, const token::VerifyPolicy& policy, absl::Time now) {
  std::shared_ptr<const token::VerifiedJwt> hit = verify_cache_.Find(token, now);
  options_.metrics->OnVerifyCache(hit != nullptr);
  if (hit != nullptr) {
    RETURN_IF_ERROR(token::CheckClaims(hit->claims, policy, now));
    return hit;
  }
  ASSIGN_OR_RETURN(token::VerifiedJwt verified, keys_->Verify(token, policy));
  auto shared = std::make_shared<const token::VerifiedJwt>(std::move(verified));
  // Never outlive the key: a retired key's tokens must stop verifying on time.
  absl::Time until = shared->claims.exp + options_.leeway;
  for (const token::KeyInfo& key : keys_->Keys()) {
    if (key.kid == shared->kid) until = std::min(until, key.retire_at);
  }
  verify_cache_.Insert(token, shared, until, now);
  return shared;
}

absl::StatusOr<Introspection> TokenAuthority::IntrospectRefresh(const IntrospectRequest& request,
                                                                absl::Time now) {
  absl::StatusOr<storage::RefreshRecord> record = CheckRefreshToken(request.token, now);
  if (!record.ok()) {
    if (IsVerdictOnToken(record.status())) {
      return Inactive(ReasonOrDefault(record.status(), "invalid_refresh_token"));
    }
    return record.status();
  }
  absl::StatusOr<storage::FamilyRecord> family = store_->GetFamily(record->family_id, now);
  if (absl::IsNotFound(family.status())) return Inactive("family_not_found");
  RETURN_IF_ERROR(family.status());
  ASSIGN_OR_RETURN(std::string problem, FamilyProblem(*family, now));
  if (!problem.empty()) return Inactive(problem);
  if (record->generation != family->generation) return Inactive("refresh_token_spent");
  if (now >= record->expires_at) return Inactive("refresh_token_expired");
  if (!request.audience.empty() && std::find(family->audience.begin(), family->audience.end(),
                                             request.audience) == family->audience.end()) {
    return Inactive("audience_mismatch");
  }

  Introspection out;
  out.active = true;
  out.token_type = "refresh_token";
  out.subject = family->subject;
  out.family_id = EncodeFamilyId(family->family_id);
  out.client_id = family->client_id;
  out.scope = record->scope;
  out.audience = family->audience;
  out.issued_at = record->issued_at;
  out.expires_at = record->expires_at;
  out.cnf.jkt = family->cnf_jkt;
  out.cnf.x5t_s256 = family->cnf_x5t_s256;
  return out;
}

}  // namespace ta::core

// Revocation at three widths (DESIGN §5) and the session views.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "server/base/error.h"
#include "server/base/status_macros.h"
#include "server/core/authority.h"
#include "server/core/limits.h"
#include "server/core/refresh_token.h"
#include "server/token/jwt.h"

namespace ta::core {
namespace {

absl::Status FamilyNotFound() {
  return Error(absl::StatusCode::kNotFound, "family_not_found", "no such family");
}

absl::Status NotYours() {
  return Error(absl::StatusCode::kPermissionDenied, "permission_denied",
               "the token belongs to another client");
}

// A `client` caller may act only on families of its own client_ids.
absl::Status CheckOwnership(storage::TokenStore* store, absl::string_view family_id,
                            const Caller& caller, absl::Time now) {
  if (caller.Has(Role::kAdmin) || caller.client_ids.empty()) return absl::OkStatus();
  absl::StatusOr<storage::FamilyRecord> family = store->GetFamily(family_id, now);
  if (absl::IsNotFound(family.status())) return FamilyNotFound();
  RETURN_IF_ERROR(family.status());
  return caller.MayActFor(family->client_id) ? absl::OkStatus() : NotYours();
}

absl::StatusOr<bool> RevokeKnownFamily(storage::TokenStore* store, absl::string_view family_id,
                                       absl::string_view reason, const Caller& caller,
                                       absl::Time now, CoreMetrics* metrics) {
  RETURN_IF_ERROR(CheckOwnership(store, family_id, caller, now));
  absl::StatusOr<bool> changed = store->RevokeFamily(family_id, reason, caller.name, now);
  if (absl::IsNotFound(changed.status())) return FamilyNotFound();
  if (changed.ok() && *changed) metrics->OnRevocation(RevocationWidth::kFamily);
  return changed;
}

}  // namespace

absl::Status TokenAuthority::RevokeToken(absl::string_view token, const Caller& caller) {
  RETURN_IF_ERROR(CheckToken("token", token));
  const absl::Time now = options_.clock->Now();
  if (LooksLikeRefreshToken(token)) {
    absl::StatusOr<storage::RefreshRecord> record = CheckRefreshToken(token, now);
    if (absl::IsUnauthenticated(record.status())) return absl::OkStatus();  // RFC 7009 §2.2
    RETURN_IF_ERROR(record.status());
    absl::StatusOr<bool> changed = RevokeKnownFamily(store_, record->family_id, "token_revoked",
                                                     caller, now, options_.metrics);
    if (absl::IsNotFound(changed.status())) return absl::OkStatus();
    return changed.status();
  }
  token::VerifyPolicy policy;
  policy.issuer = options_.issuer;
  policy.leeway = options_.leeway;
  policy.max_token_bytes = kMaxTokenBytes;
  absl::StatusOr<token::VerifiedJwt> jwt = keys_->Verify(token, policy);
  if (!jwt.ok()) return absl::OkStatus();  // invalid or already expired: nothing to deny
  if (!caller.MayActFor(jwt->claims.client_id)) return NotYours();  // RFC 7009 §2.1
  // Verification accepts a token until exp + leeway, so the entry must live that long too.
  RETURN_IF_ERROR(store_->DenyJti(jwt->claims.jti, jwt->claims.exp + options_.leeway));
  options_.metrics->OnRevocation(RevocationWidth::kToken);
  return absl::OkStatus();
}

absl::StatusOr<bool> TokenAuthority::RevokeFamily(absl::string_view family_id,
                                                  absl::string_view token, absl::string_view reason,
                                                  const Caller& caller) {
  RETURN_IF_ERROR(CheckText("reason", reason, kMaxReasonBytes));
  const std::string why = reason.empty() ? "revoked" : std::string(reason);
  const absl::Time now = options_.clock->Now();
  if (!family_id.empty()) {
    ASSIGN_OR_RETURN(std::string raw, DecodeFamilyId(family_id));
    return RevokeKnownFamily(store_, raw, why, caller, now, options_.metrics);
  }
  if (token.empty()) return InvalidField("family_id", "family_id or token is required");
  RETURN_IF_ERROR(CheckToken("token", token));
  if (LooksLikeRefreshToken(token)) {
    absl::StatusOr<storage::RefreshRecord> record = CheckRefreshToken(token, now);
    if (absl::IsUnauthenticated(record.status())) {
      return InvalidField("token", "token is not a refresh token of this service");
    }
    RETURN_IF_ERROR(record.status());
    return RevokeKnownFamily(store_, record->family_id, why, caller, now, options_.metrics);
  }
  token::VerifyPolicy policy;
  policy.issuer = options_.issuer;
  policy.leeway = options_.leeway;
  policy.max_token_bytes = kMaxTokenBytes;
  absl::StatusOr<token::VerifiedJwt> jwt = keys_->Verify(token, policy);
  if (!jwt.ok()) return InvalidField("token", "token is not a valid access token of this service");
  absl::StatusOr<std::string> raw = DecodeFamilyId(jwt->claims.sid);
  if (!raw.ok()) return InvalidField("token", "token names no family");
  return RevokeKnownFamily(store_, *raw, why, caller, now, options_.metrics);
}

absl::StatusOr<storage::SubjectRecord> TokenAuthority::RevokeSubject(
    const SubjectRevocation& request, const Caller& caller) {
  RETURN_IF_ERROR(CheckIdentifier("subject", request.subject, kMaxSubjectBytes));
  RETURN_IF_ERROR(CheckText("reason", request.reason, kMaxReasonBytes));
  const absl::Time now = options_.clock->Now();
  if (request.not_before.has_value() && *request.not_before > now) {
    return InvalidField("not_before", "not_before may not be in the future");
  }
  // The store merges atomically: concurrent revocations of one subject keep every serial
  // order's guarantees (the cutoff never moves back; an unset block keeps the stored one),
  // and the record lives as long as the families it kills, whatever lifetimes are configured.
  storage::SubjectUpdate update;
  update.subject = request.subject;
  update.not_before = request.not_before;
  update.block_until = request.block_until;
  update.reason = request.reason;
  update.revoked_by = caller.name;
  update.now = now;
  update.token_leeway = options_.leeway;
  ASSIGN_OR_RETURN(storage::SubjectRecord record, store_->UpdateSubject(update));
  options_.metrics->OnRevocation(RevocationWidth::kSubject);
  return record;
}

absl::StatusOr<storage::FamilyPage> TokenAuthority::ListFamilies(
    const ListFamiliesRequest& request) {
  RETURN_IF_ERROR(CheckIdentifier("subject", request.subject, kMaxSubjectBytes));
  if (request.page_size < 0 || request.page_size > kMaxPageSize) {
    return InvalidField("page_size", absl::StrCat("page_size must be 0..", kMaxPageSize));
  }
  RETURN_IF_ERROR(CheckText("page_token", request.page_token, 1024));
  storage::ListFamiliesQuery query;
  query.subject = request.subject;
  query.page_size = request.page_size == 0 ? kDefaultPageSize : request.page_size;
  query.page_token = request.page_token;
  query.include_revoked = request.include_revoked;
  query.now = options_.clock->Now();
  return store_->ListFamilies(query);
}

absl::StatusOr<storage::FamilyRecord> TokenAuthority::GetFamily(absl::string_view family_id) {
  ASSIGN_OR_RETURN(std::string raw, DecodeFamilyId(family_id));
  absl::StatusOr<storage::FamilyRecord> family = store_->GetFamily(raw, options_.clock->Now());
  if (absl::IsNotFound(family.status())) return FamilyNotFound();
  return family;
}

}  // namespace ta::core

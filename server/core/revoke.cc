// Revocation at three widths (DESIGN §5) and the session views.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "base/status_macros.h"
#include "server/core/authority.h"
#include "server/core/limits.h"
#include "server/core/refresh_token.h"
#include "token/jwt.h"

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
  AuditEvent event{.action = "revoke.token", .rpc = "RevokeToken"};
  absl::Status status = RevokeOneToken(token, caller, &event);
  Audit(std::move(event), status, caller);
  return status;
}

absl::Status TokenAuthority::RevokeOneToken(absl::string_view token, const Caller& caller,
                                            AuditEvent* event) {
  RETURN_IF_ERROR(CheckToken("token", token));
  const absl::Time now = options_.clock->Now();
  if (LooksLikeRefreshToken(token)) {
    absl::StatusOr<storage::RefreshRecord> record = CheckRefreshToken(token, now);
    if (absl::IsUnauthenticated(record.status())) {
      event->reason = "not_ours";  // RFC 7009 §2.2: still OK
      return absl::OkStatus();
    }
    RETURN_IF_ERROR(record.status());
    event->family_id = EncodeFamilyId(record->family_id);
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
  if (!jwt.ok()) {  // invalid or already expired: nothing to deny
    event->reason = "not_ours";
    return absl::OkStatus();
  }
  event->jti = jwt->claims.jti;
  event->subject = jwt->claims.sub;
  event->client_id = jwt->claims.client_id;
  event->family_id = jwt->claims.sid;
  if (!caller.MayActFor(jwt->claims.client_id)) return NotYours();  // RFC 7009 §2.1
  // Verification accepts a token until exp + leeway, so the entry must live that long too.
  RETURN_IF_ERROR(store_->DenyJti(jwt->claims.jti, jwt->claims.exp + options_.leeway));
  options_.metrics->OnRevocation(RevocationWidth::kToken);
  return absl::OkStatus();
}

absl::StatusOr<bool> TokenAuthority::RevokeFamily(absl::string_view family_id,
                                                  absl::string_view token, absl::string_view reason,
                                                  const Caller& caller) {
  AuditEvent event{.action = "revoke.family",
                   .rpc = "RevokeFamily",
                   .note = std::string(reason.substr(0, kMaxReasonBytes))};
  absl::StatusOr<bool> changed = RevokeOneFamily(family_id, token, reason, caller, &event);
  if (changed.ok()) event.reason = *changed ? "revoked" : "already_revoked";
  Audit(std::move(event), changed.status(), caller);
  return changed;
}

absl::StatusOr<bool> TokenAuthority::RevokeOneFamily(absl::string_view family_id,
                                                     absl::string_view token,
                                                     absl::string_view reason, const Caller& caller,
                                                     AuditEvent* event) {
  event->family_id = std::string(family_id.substr(0, 64));
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
    event->family_id = EncodeFamilyId(record->family_id);
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
  event->family_id = jwt->claims.sid;
  event->subject = jwt->claims.sub;
  return RevokeKnownFamily(store_, *raw, why, caller, now, options_.metrics);
}

absl::StatusOr<storage::SubjectRecord> TokenAuthority::RevokeSubject(
    const SubjectRevocation& request, const Caller& caller) {
  absl::StatusOr<storage::SubjectRecord> record = RevokeWholeSubject(request, caller);
  AuditEvent event{.action = "revoke.subject",
                   .rpc = "RevokeSubject",
                   .subject = request.subject.substr(0, kMaxSubjectBytes),
                   .note = request.reason.substr(0, kMaxReasonBytes)};
  if (record.ok() && record->block_until > options_.clock->Now()) event.reason = "blocked";
  Audit(std::move(event), record.status(), caller);
  return record;
}

absl::StatusOr<storage::SubjectRecord> TokenAuthority::RevokeWholeSubject(
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

absl::StatusOr<storage::FamilyPage> TokenAuthority::ListFamilies(const ListFamiliesRequest& request,
                                                                 const Caller& caller) {
  absl::StatusOr<storage::FamilyPage> page = ListSessions(request);
  AuditEvent event{.action = "admin.list_sessions",
                   .rpc = "ListFamilies",
                   .subject = request.subject.substr(0, kMaxSubjectBytes)};
  Audit(std::move(event), page.status(), caller);
  return page;
}

absl::StatusOr<storage::FamilyPage> TokenAuthority::ListSessions(
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
  ASSIGN_OR_RETURN(storage::FamilyPage page, store_->ListFamilies(query));
  // A subject revocation kills families without touching their records (its cutoff does):
  // show them as revoked too, never as live sessions.
  ASSIGN_OR_RETURN(std::optional<storage::SubjectRecord> subject,
                   store_->GetSubject(request.subject, query.now));
  if (!subject.has_value()) return page;
  std::vector<storage::FamilyRecord> shown;
  for (storage::FamilyRecord& f : page.families) {
    if (!f.revoked && f.created_at <= subject->not_before) {
      f.revoked = true;
      f.revoked_at = subject->updated_at;
      f.revoke_reason = "subject_revoked";
      f.revoked_by = subject->revoked_by;
      if (!request.include_revoked) continue;
    }
    shown.push_back(std::move(f));
  }
  page.families = std::move(shown);
  return page;
}

absl::StatusOr<storage::FamilyRecord> TokenAuthority::GetFamily(absl::string_view family_id,
                                                                const Caller& caller) {
  absl::StatusOr<storage::FamilyRecord> family = FindFamily(family_id);
  AuditEvent event{.action = "admin.get_session",
                   .rpc = "GetFamily",
                   .family_id = std::string(family_id.substr(0, 64))};
  if (family.ok()) event.subject = family->subject;
  Audit(std::move(event), family.status(), caller);
  return family;
}

absl::StatusOr<storage::FamilyRecord> TokenAuthority::FindFamily(absl::string_view family_id) {
  ASSIGN_OR_RETURN(std::string raw, DecodeFamilyId(family_id));
  absl::StatusOr<storage::FamilyRecord> family = store_->GetFamily(raw, options_.clock->Now());
  if (absl::IsNotFound(family.status())) return FamilyNotFound();
  return family;
}

}  // namespace ta::core

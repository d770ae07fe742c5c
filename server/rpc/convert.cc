#include "server/rpc/convert.h"

#include <algorithm>

#include "base/error.h"
#include "google/protobuf/util/json_util.h"
#include "server/core/refresh_token.h"
#include "token/jwt.h"

namespace ta::rpc {
namespace {

// Puts the pre-rendered claims Struct into `out` as the wire bytes of its claims field.
// Protobuf writes unknown fields after the known ones, and a message field is on the wire
// exactly a length-delimited field of the same number, so a client reads `claims` as usual
// while the server neither builds nor serializes a Struct per call.
void AttachClaims(const std::string& struct_bytes, v1::IntrospectResponse* out) {
  out->GetReflection()->MutableUnknownFields(out)->AddLengthDelimited(
      v1::IntrospectResponse::kClaimsFieldNumber, struct_bytes);
}

}  // namespace

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  google::protobuf::Timestamp ts;
  const int64_t micros = absl::ToUnixMicros(t);
  ts.set_seconds(micros / 1'000'000 - (micros % 1'000'000 < 0 ? 1 : 0));
  ts.set_nanos(static_cast<int32_t>(((micros % 1'000'000) + 1'000'000) % 1'000'000) * 1000);
  return ts;
}

absl::Time FromTimestamp(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

absl::StatusOr<core::IssueRequest> FromProto(const v1::IssueTokensRequest& in) {
  core::IssueRequest out;
  out.subject = in.subject();
  out.client_id = in.client_id();
  out.audience.assign(in.audience().begin(), in.audience().end());
  out.scope = in.scope();
  out.session_metadata.insert(in.session_metadata().begin(), in.session_metadata().end());
  out.proof = FromProto(in.proof());
  if (in.has_extra_claims() && in.extra_claims().fields_size() > 0) {
    if (!google::protobuf::util::MessageToJsonString(in.extra_claims(), &out.extra_claims_json)
             .ok()) {
      return InvalidField("extra_claims", "extra_claims cannot be expressed as JSON");
    }
  }
  return out;
}

void ToProto(const core::TokenPair& in, v1::TokenPair* out) {
  out->set_access_token(in.access_token);
  out->set_refresh_token(in.refresh_token);
  out->set_token_type(in.token_type);
  out->set_expires_in(in.expires_in);
  out->set_refresh_expires_in(in.refresh_expires_in);
  out->set_family_id(in.family_id);
}

token::PresentedProof FromProto(const v1::ProofOfPossession& in) {
  token::PresentedProof out;
  out.dpop_proof = in.dpop_proof();
  out.http_method = in.http_method();
  out.http_url = in.http_url();
  out.certificate_thumbprint = in.certificate_thumbprint();
  return out;
}

core::IntrospectRequest FromProto(const v1::IntrospectRequest& in) {
  core::IntrospectRequest out{in.token(), in.audience()};
  out.proof = FromProto(in.proof());
  out.binding_checked_by_caller = in.binding_checked_by_caller();
  return out;
}

core::RefreshRequest FromProto(const v1::RefreshTokensRequest& in) {
  core::RefreshRequest out{in.refresh_token(), in.scope()};
  out.proof = FromProto(in.proof());
  out.client_id = in.client_id();
  return out;
}

// Unset for a bearer session or token.
void ToProto(const token::Confirmation& in, v1::Confirmation* out) {
  out->set_jkt(in.jkt);
  out->set_x5t_s256(in.x5t_s256);
}

absl::Status ToProto(const core::Introspection& in, bool with_reason, ClaimsCache& claims,
                     v1::IntrospectResponse* out) {
  out->set_active(in.active);
  if (!in.active) {
    if (with_reason) out->set_inactive_reason(in.inactive_reason);
    return absl::OkStatus();
  }
  out->set_token_type(in.token_type);
  out->set_subject(in.subject);
  out->set_family_id(in.family_id);
  out->set_jti(in.jti);
  out->set_client_id(in.client_id);
  out->set_scope(in.scope);
  for (const std::string& a : in.audience) out->add_audience(a);
  out->set_issued_at(absl::ToUnixSeconds(in.issued_at));
  out->set_expires_at(absl::ToUnixSeconds(in.expires_at));
  if (!in.cnf.empty()) ToProto(in.cnf, out->mutable_cnf());
  if (!in.claims_json.empty()) {
    absl::StatusOr<std::shared_ptr<const std::string>> rendered = claims.Render(in.claims_json);
    if (!rendered.ok()) return rendered.status();
    AttachClaims(**rendered, out);
  }
  return absl::OkStatus();
}

void ToProto(const storage::FamilyRecord& in, v1::Family* out) {
  out->set_family_id(core::EncodeFamilyId(in.family_id));
  out->set_subject(in.subject);
  out->set_client_id(in.client_id);
  for (const std::string& a : in.audience) out->add_audience(a);
  out->set_scope(in.scope);
  out->mutable_session_metadata()->insert(in.metadata.begin(), in.metadata.end());
  *out->mutable_created_at() = ToTimestamp(in.created_at);
  *out->mutable_expires_at() = ToTimestamp(in.expires_at);
  out->set_generation(in.generation);
  *out->mutable_last_refreshed_at() = ToTimestamp(in.rotated_at);
  out->set_revoked(in.revoked);
  if (in.revoked) *out->mutable_revoked_at() = ToTimestamp(in.revoked_at);
  out->set_revoke_reason(in.revoke_reason);
  out->set_revoked_by(in.revoked_by);
  out->set_issued_by(in.issued_by);
  if (!in.cnf_jkt.empty() || !in.cnf_x5t_s256.empty()) {
    ToProto(token::Confirmation{in.cnf_jkt, in.cnf_x5t_s256}, out->mutable_cnf());
  }
}

void ToProto(const token::KeyInfo& in, v1::KeyInfo* out) {
  out->set_kid(in.kid);
  out->set_alg(std::string(token::AlgorithmName(in.alg)));
  out->set_active(in.active);
  *out->mutable_created_at() = ToTimestamp(in.created_at);
  if (in.retire_at != absl::InfiniteFuture()) *out->mutable_retire_at() = ToTimestamp(in.retire_at);
  if (in.sign_from != absl::InfiniteFuture()) {
    *out->mutable_signs_from() = ToTimestamp(std::max(in.sign_from, in.created_at));
  }
}

void ToProto(const core::BackupReport& in, v1::CreateBackupResponse* out) {
  out->set_backup_id(in.store.backup_id);
  *out->mutable_created_at() = ToTimestamp(in.store.created_at);
  out->set_size_bytes(in.store.size_bytes);
  out->set_file_count(in.store.file_count);
  out->set_new_files(in.store.new_files);
  out->set_new_bytes(in.store.new_bytes);
  out->set_duration_ms(absl::ToInt64Milliseconds(in.took));
  out->set_key_dir(in.key_dir);
  out->set_key_files(static_cast<uint32_t>(in.key_files));
  out->set_backups_kept(in.store.backups_kept);
  out->set_keys_sealed_in_store(in.keys_sealed_in_store);
}

}  // namespace ta::rpc

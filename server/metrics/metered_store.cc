#include "server/metrics/metered_store.h"

#include <chrono>

namespace ta::metrics {
namespace {

// Store failures, as opposed to answers the contract defines.
bool IsFailure(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
      return false;
    default:
      return true;
  }
}

absl::StatusCode CodeOf(const absl::Status& s) { return s.code(); }
template <typename T>
absl::StatusCode CodeOf(const absl::StatusOr<T>& s) {
  return s.status().code();
}

}  // namespace

template <typename Call>
auto MeteredStore::Timed(StoreOp op, Call call) -> decltype(call()) {
  // steady_clock: a latency, not a point in time (the injected Clock may be a test's fake).
  const auto start = std::chrono::steady_clock::now();
  auto result = call();
  const absl::StatusCode code = CodeOf(result);
  metrics_->OnStore(op, IsFailure(code) ? code : absl::StatusCode::kOk,
                    absl::FromChrono(std::chrono::steady_clock::now() - start));
  return result;
}

absl::StatusOr<std::vector<storage::RevocationEntry>> MeteredStore::ReadRevocations(
    uint64_t after_seq, absl::Time now, size_t limit) {
  return Timed(StoreOp::kReadRevocations,
               [&] { return store_->ReadRevocations(after_seq, now, limit); });
}

absl::Status MeteredStore::CreateFamily(const storage::FamilyRecord& family,
                                        const storage::RefreshRecord& first,
                                        const std::optional<storage::ProofReplay>& proof_replay) {
  return Timed(StoreOp::kCreateFamily,
               [&] { return store_->CreateFamily(family, first, proof_replay); });
}

absl::StatusOr<storage::FamilyRecord> MeteredStore::GetFamily(absl::string_view family_id,
                                                              absl::Time now) {
  return Timed(StoreOp::kGetFamily, [&] { return store_->GetFamily(family_id, now); });
}

absl::StatusOr<storage::RefreshRecord> MeteredStore::GetRefresh(absl::string_view family_id,
                                                                uint64_t generation,
                                                                absl::Time now) {
  return Timed(StoreOp::kGetRefresh,
               [&] { return store_->GetRefresh(family_id, generation, now); });
}

absl::StatusOr<storage::RotateOutcome> MeteredStore::Rotate(const storage::RotateRequest& request) {
  return Timed(StoreOp::kRotate, [&] { return store_->Rotate(request); });
}

absl::StatusOr<bool> MeteredStore::RevokeFamily(absl::string_view family_id,
                                                absl::string_view reason,
                                                absl::string_view revoked_by, absl::Time now) {
  return Timed(StoreOp::kRevokeFamily,
               [&] { return store_->RevokeFamily(family_id, reason, revoked_by, now); });
}

absl::Status MeteredStore::DenyJti(absl::string_view jti, absl::Time expires_at) {
  return Timed(StoreOp::kDenyJti, [&] { return store_->DenyJti(jti, expires_at); });
}

absl::StatusOr<bool> MeteredStore::IsJtiDenied(absl::string_view jti, absl::Time now) {
  return Timed(StoreOp::kIsJtiDenied, [&] { return store_->IsJtiDenied(jti, now); });
}

absl::StatusOr<bool> MeteredStore::RecordProofJti(absl::string_view replay_key,
                                                  absl::Time keep_until, absl::Time now) {
  return Timed(StoreOp::kRecordProofJti,
               [&] { return store_->RecordProofJti(replay_key, keep_until, now); });
}

absl::StatusOr<storage::SubjectRecord> MeteredStore::UpdateSubject(
    const storage::SubjectUpdate& update) {
  return Timed(StoreOp::kUpdateSubject, [&] { return store_->UpdateSubject(update); });
}

absl::StatusOr<std::optional<storage::SubjectRecord>> MeteredStore::GetSubject(
    absl::string_view subject, absl::Time now) {
  return Timed(StoreOp::kGetSubject, [&] { return store_->GetSubject(subject, now); });
}

absl::StatusOr<storage::FamilyPage> MeteredStore::ListFamilies(
    const storage::ListFamiliesQuery& query) {
  return Timed(StoreOp::kListFamilies, [&] { return store_->ListFamilies(query); });
}

absl::Status MeteredStore::PurgeExpired() {
  return Timed(StoreOp::kPurgeExpired, [&] { return store_->PurgeExpired(); });
}

absl::StatusOr<storage::StoreStats> MeteredStore::GetStats() {
  return Timed(StoreOp::kGetStats, [&] { return store_->GetStats(); });
}

absl::StatusOr<storage::BackupResult> MeteredStore::CreateBackup(
    const storage::BackupRequest& request) {
  return Timed(StoreOp::kCreateBackup, [&] { return store_->CreateBackup(request); });
}

}  // namespace ta::metrics

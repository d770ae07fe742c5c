#include "storage/store_rules.h"

#include <algorithm>

#include "base/error.h"
#include "storage/codec.h"

namespace ta::storage {

absl::Status ValidateSubjectUpdate(const SubjectUpdate& update) {
  if (update.subject.empty() || update.subject.size() > kMaxSubjectSize) {
    return ta::InvalidField("subject", "subject must be 1 to 256 bytes");
  }
  if (update.not_before.has_value() && *update.not_before > update.now) {
    return ta::InvalidField("not_before", "not_before may not be in the future");
  }
  return absl::OkStatus();
}

absl::Status ValidateReplayKey(absl::string_view replay_key) {
  if (replay_key.empty() || replay_key.size() > kMaxReplayKeyBytes) {
    return ta::InvalidField("replay_key", "replay_key must be 1 to 256 bytes");
  }
  return absl::OkStatus();
}

absl::Status ValidateProofReplay(const std::optional<ProofReplay>& proof_replay) {
  return proof_replay.has_value() ? ValidateReplayKey(proof_replay->key) : absl::OkStatus();
}

absl::Status ValidateNewFamily(const FamilyRecord& family, const RefreshRecord& first,
                               const std::optional<ProofReplay>& proof_replay) {
  if (family.family_id.size() != kFamilyIdSize) {
    return ta::InvalidField("family_id", "family_id must be 16 bytes");
  }
  if (family.subject.empty() || family.subject.size() > kMaxSubjectSize) {
    return ta::InvalidField("subject", "subject must be 1 to 256 bytes");
  }
  if (first.family_id != family.family_id || first.generation != family.generation) {
    return ta::InvalidField("first", "first refresh record must be the family's current one");
  }
  return ValidateProofReplay(proof_replay);
}

absl::Status ProofReplayedError() {
  return ta::Error(absl::StatusCode::kAlreadyExists, kProofReplayedReason,
                   "token store: the DPoP proof was already used");
}

SubjectRecord MergeSubject(const std::optional<SubjectRecord>& stored, const SubjectUpdate& update,
                           absl::Time cutoff, absl::Time keep_until) {
  SubjectRecord merged = stored.value_or(SubjectRecord{});
  merged.subject = update.subject;
  merged.not_before = std::max(merged.not_before, cutoff);
  if (update.block_until.has_value()) merged.block_until = *update.block_until;
  merged.reason = update.reason;
  merged.revoked_by = update.revoked_by;
  merged.updated_at = update.now;
  // Never shorter than before: an earlier update may have known of families this one does not
  // (they expired since, but their access tokens' leeway may still run).
  // At least a while past now even when it kills nothing yet: a family stamped at or before
  // the cutoff by a replica whose clock lags must still find the record and be refused.
  merged.expires_at = std::max({stored.has_value() ? stored->expires_at : absl::InfinitePast(),
                                merged.block_until, keep_until, update.now + kMaxTokenLeeway});
  return merged;
}

absl::Status AdmitNewFamily(const SubjectRecord& subject, absl::Time created_at) {
  if (created_at < subject.block_until) {
    return ta::Error(absl::StatusCode::kFailedPrecondition, "subject_blocked",
                     "subject is blocked from starting sessions");
  }
  if (created_at <= subject.not_before) {
    return ta::Error(absl::StatusCode::kAborted, "subject_revoked",
                     "a revocation of the subject at or after this session's start committed "
                     "first; retry");
  }
  return absl::OkStatus();
}

std::optional<RotateResult> SubjectRefusesRotation(const SubjectRecord& subject,
                                                   const FamilyRecord& family, absl::Time now) {
  // A tie counts as before the cutoff: when in doubt, fail closed.
  if (family.created_at <= subject.not_before) return RotateResult::kSubjectRevoked;
  if (now < subject.block_until) return RotateResult::kSubjectBlocked;
  return std::nullopt;
}

RevocationEntry FamilyRevocation(const FamilyRecord& family, RevocationEntry::Kind kind,
                                 absl::Time now) {
  RevocationEntry entry;
  entry.kind = kind;
  entry.id = family.family_id;
  entry.revoked_at = now;
  entry.live_until = family.access_live_until != absl::InfinitePast()
                         ? family.access_live_until
                         : family.expires_at + kMaxTokenLeeway;
  return entry;
}

}  // namespace ta::storage

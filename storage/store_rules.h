// Rules of the TokenStore contract that do not depend on the engine (storage/token_store.h):
// how a subject update merges into the stored record, and when a subject's cutoff or block
// refuses a new family or a rotation. Every store applies them inside its own critical
// section (a lock, a transaction), so the engines differ only in how they make them atomic.
//
// Pure functions; thread-safe.
#ifndef TA_STORAGE_STORE_RULES_H_
#define TA_STORAGE_STORE_RULES_H_

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "storage/token_store.h"

namespace ta::storage {

// INVALID_ARGUMENT ("invalid_argument:subject" / ":not_before") for an empty or over-long
// subject or a cutoff after `now`.
absl::Status ValidateSubjectUpdate(const SubjectUpdate& update);

// The record UpdateSubject stores: `stored` (nullopt when absent or expired) merged with
// `update`. `cutoff` is the merged cutoff the store computed (>= stored and requested);
// `keep_until` is the latest expires_at + token_leeway of the families it kills.
SubjectRecord MergeSubject(const std::optional<SubjectRecord>& stored, const SubjectUpdate& update,
                           absl::Time cutoff, absl::Time keep_until);

// Whether a family created at `created_at` may start under `subject`: FAILED_PRECONDITION
// "subject_blocked" while blocked, ABORTED "subject_revoked" when the cutoff already covers it.
absl::Status AdmitNewFamily(const SubjectRecord& subject, absl::Time created_at);

// kSubjectRevoked / kSubjectBlocked when the subject stops `family` from rotating at `now`.
std::optional<RotateResult> SubjectRefusesRotation(const SubjectRecord& subject,
                                                   const FamilyRecord& family, absl::Time now);

// INVALID_ARGUMENT for a CreateFamily whose records are malformed ("invalid_argument:family_id",
// ":subject", ":first") or whose replay key is empty or over kMaxReplayKeyBytes
// (":replay_key"); nullopt is valid.
absl::Status ValidateNewFamily(const FamilyRecord& family, const RefreshRecord& first,
                               const std::optional<ProofReplay>& proof_replay);
absl::Status ValidateProofReplay(const std::optional<ProofReplay>& proof_replay);
absl::Status ValidateReplayKey(absl::string_view replay_key);

// CreateFamily's refusal of a live replay key: ALREADY_EXISTS kProofReplayedReason.
absl::Status ProofReplayedError();

// The largest verification leeway the server accepts: how long after its family's expiry an
// access token of a family without access_live_until (written before it existed) may verify.
inline constexpr absl::Duration kMaxTokenLeeway = absl::Minutes(5);

// The revocation-log entry for `family` revoked (kFamily) or killed by its subject's cutoff
// (kSubject) at `now`: live until its access_live_until, or expires_at + kMaxTokenLeeway.
RevocationEntry FamilyRevocation(const FamilyRecord& family, RevocationEntry::Kind kind,
                                 absl::Time now);

}  // namespace ta::storage

#endif  // TA_STORAGE_STORE_RULES_H_

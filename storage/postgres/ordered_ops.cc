// The PostgreSQL store's operations ordered by the subject lock (token_store.h):
// CreateFamily and Rotate hold the subject's advisory lock shared, UpdateSubject holds it
// exclusive, each for its whole transaction. Whatever commits first is seen by the other:
// an UpdateSubject waits for creations and rotations in flight, and every later one reads
// its record.
#include <algorithm>
#include <map>
#include <vector>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "base/status_macros.h"
#include "storage/codec.h"  // kFamilyIdSize, kMaxSubjectSize
#include "storage/postgres/schema.h"
#include "storage/postgres/store_impl.h"
#include "storage/store_rules.h"

namespace ta::storage::pg {
namespace {

// Columns of kGetFamilyForRotate after the family's: the subject's record (NULL if none).
constexpr int kSubjectNotBefore = kFamilyColumns;
constexpr int kSubjectBlockUntil = kFamilyColumns + 1;
constexpr int kSubjectExpiresAt = kFamilyColumns + 2;

absl::Status LockSubject(Connection& c, absl::string_view subject, bool exclusive) {
  const Statement& lock = exclusive ? sql::kLockSubjectExclusive : sql::kLockSubjectShared;
  return c.Exec(lock, Params().Int64(SubjectLockKey(subject))).status();
}

// Records `replay`'s key inside the caller's transaction: false (nothing written) when it is
// live at `now`. A concurrent transaction inserting the same key waits on its index entry
// until this one ends, then re-checks against what committed: one of them records it.
absl::StatusOr<bool> RecordProof(Connection& c, const ProofReplay& replay, absl::Time now) {
  ASSIGN_OR_RETURN(Rows rows, c.Exec(sql::kRecordProofJti,
                                     Params().Bytes(replay.key).Time(replay.keep_until).Time(now)));
  return rows.size() == 1;
}

// The subject's record when stored and live at `now`.
absl::StatusOr<std::optional<SubjectRecord>> LiveSubject(Connection& c, absl::string_view subject,
                                                         absl::Time now) {
  ASSIGN_OR_RETURN(Rows rows, c.Exec(sql::kGetSubject, Params().Bytes(subject)));
  if (rows.size() == 0) return std::nullopt;
  ASSIGN_OR_RETURN(SubjectRecord record, SubjectAt(rows, 0));
  if (now > record.expires_at) return std::nullopt;
  return record;
}

// kSubjectRevoked / kSubjectBlocked from the subject columns of kGetFamilyForRotate.
absl::StatusOr<std::optional<RotateResult>> SubjectVerdict(const Rows& rows,
                                                           const FamilyRecord& f, absl::Time now) {
  if (rows.IsNull(0, kSubjectNotBefore)) return std::nullopt;
  SubjectRecord subject;
  ASSIGN_OR_RETURN(subject.expires_at, rows.Time(0, kSubjectExpiresAt));
  if (now > subject.expires_at) return std::nullopt;
  ASSIGN_OR_RETURN(subject.not_before, rows.Time(0, kSubjectNotBefore));
  ASSIGN_OR_RETURN(subject.block_until, rows.Time(0, kSubjectBlockUntil));
  return SubjectRefusesRotation(subject, f, now);
}

}  // namespace

absl::Status PostgresStore::CreateFamily(const FamilyRecord& family, const RefreshRecord& first,
                                         const std::optional<ProofReplay>& proof_replay) {
  RETURN_IF_ERROR(ValidateNewFamily(family, first, proof_replay));
  return RunTransaction([&](Connection& c) -> absl::Status {
    RETURN_IF_ERROR(LockSubject(c, family.subject, /*exclusive=*/false));
    // The proof first (after the subject lock, the order every transaction takes them in);
    // any error below rolls its record back with the rest.
    if (proof_replay.has_value()) {
      ASSIGN_OR_RETURN(bool recorded, RecordProof(c, *proof_replay, family.created_at));
      if (!recorded) return ProofReplayedError();
    }
    ASSIGN_OR_RETURN(std::optional<SubjectRecord> subject,
                     LiveSubject(c, family.subject, family.created_at));
    if (subject.has_value()) RETURN_IF_ERROR(AdmitNewFamily(*subject, family.created_at));
    Params params;
    AppendFamily(params, family, FamilyDropAfter(family));
    ASSIGN_OR_RETURN(Rows inserted, c.Exec(sql::kInsertFamily, params));
    if (inserted.affected() == 0) {
      return ta::Error(absl::StatusCode::kAlreadyExists, "already_exists",
                       "token store: family id already taken");
    }
    Params refresh;
    AppendRefresh(refresh, first, RefreshDropAfter(first));
    return c.Exec(sql::kInsertRefresh, refresh).status();
  });
}

absl::StatusOr<RotateOutcome> PostgresStore::Rotate(const RotateRequest& request) {
  RotateOutcome out;
  std::vector<RevocationEntry> logged;  // reuse detected: the family's log entry
  RETURN_IF_ERROR(ValidateProofReplay(request.proof_replay));
  if (request.family_id.size() != kFamilyIdSize) return out;  // kNotFound
  RETURN_IF_ERROR(RunTransaction([&](Connection& c) -> absl::Status {
    out = RotateOutcome();
    logged.clear();
    const absl::Time now = request.now;
    RETURN_IF_ERROR(LockSubject(c, request.subject, /*exclusive=*/false));
    // The proof first: a replayed one spends nothing. Recorded, it commits with whatever the
    // outcome writes (alone when that is nothing).
    if (request.proof_replay.has_value()) {
      ASSIGN_OR_RETURN(bool recorded, RecordProof(c, *request.proof_replay, now));
      if (!recorded) {
        out.result = RotateResult::kProofReplayed;
        return absl::OkStatus();
      }
    }
    ASSIGN_OR_RETURN(Rows rows, c.Exec(sql::kGetFamilyForRotate, Params().Bytes(request.family_id)));
    if (rows.size() == 0) return absl::OkStatus();
    ASSIGN_OR_RETURN(WithDropAfter<FamilyRecord> family, FamilyAt(rows, 0));
    if (now > family.drop_after) return absl::OkStatus();
    if (family.record.subject != request.subject) {
      return ta::InvalidField("subject", "subject does not match the family's");
    }
    out.family = std::move(family.record);
    const FamilyRecord& f = out.family;
    out.result = f.revoked                ? RotateResult::kFamilyRevoked
                 : now >= f.expires_at    ? RotateResult::kFamilyExpired
                                          : RotateResult::kNotFound;
    if (out.result != RotateResult::kNotFound) return absl::OkStatus();
    ASSIGN_OR_RETURN(std::optional<RotateResult> verdict, SubjectVerdict(rows, f, now));
    if (verdict.has_value()) {
      out.result = *verdict;
      return absl::OkStatus();
    }
    return RotateLocked(c, request, out, logged);
  }));
  Announce(logged);
  return out;
}

absl::Status PostgresStore::RotateLocked(Connection& c, const RotateRequest& request,
                                         RotateOutcome& out,
                                         std::vector<RevocationEntry>& logged) {
  const absl::Time now = request.now;
  const uint64_t gen = request.generation;
  FamilyRecord& f = out.family;
  ASSIGN_OR_RETURN(Rows rows, c.Exec(sql::kGetRefreshPair,
                                     Params().Bytes(f.family_id).Int64(static_cast<int64_t>(gen))
                                         .Int64(static_cast<int64_t>(f.generation))));
  std::map<uint64_t, RefreshRecord> records;  // live ones, by generation
  for (int i = 0; i < rows.size(); ++i) {
    ASSIGN_OR_RETURN(WithDropAfter<RefreshRecord> r, RefreshAt(rows, i));
    if (now <= r.drop_after) records[r.record.generation] = std::move(r.record);
  }
  auto presented = records.find(gen);
  out.result = RotateResult::kNotFound;
  if (presented == records.end() || gen > f.generation) return absl::OkStatus();
  if (now >= presented->second.expires_at) {
    out.result = RotateResult::kTokenExpired;
    return absl::OkStatus();
  }
  if (gen == f.generation) {
    RefreshRecord successor = request.successor;
    successor.family_id = f.family_id;
    successor.generation = gen + 1;
    Params params;
    params.Bytes(f.family_id).Int64(static_cast<int64_t>(gen)).Time(now);
    params.Int64(static_cast<int64_t>(successor.generation)).Bytes(successor.secret_hash);
    params.Bytes(successor.scope).Time(successor.issued_at).Time(successor.expires_at);
    params.Time(RefreshDropAfter(successor)).Time(request.access_live_until);
    ASSIGN_OR_RETURN(Rows advanced, c.Exec(sql::kRotate, params));
    if (advanced.size() != 1) {  // cannot happen while the row is locked; never commit it
      return ta::Error(absl::StatusCode::kUnavailable, "store_unavailable",
                       "token store: rotation lost its compare-and-set");
    }
    ASSIGN_OR_RETURN(f.access_live_until, advanced.Time(0, 0));
    f.generation = successor.generation;
    f.rotated_at = now;
    out.current = std::move(successor);
    out.result = RotateResult::kRotated;
    return absl::OkStatus();
  }
  if (gen + 1 == f.generation && request.grace > absl::ZeroDuration() &&
      now - f.rotated_at < request.grace) {
    auto current = records.find(f.generation);
    if (current == records.end()) {
      return ta::Error(absl::StatusCode::kDataLoss, "store_corrupt",
                       "token store: family's current refresh record is missing");
    }
    out.current = current->second;
    out.result = RotateResult::kReplayWithinGrace;
    if (request.access_live_until <= f.access_live_until) return absl::OkStatus();
    f.access_live_until = request.access_live_until;
    return c.Exec(sql::kExtendAccess, Params().Bytes(f.family_id).Time(f.access_live_until))
        .status();
  }
  ASSIGN_OR_RETURN(Rows revoked, c.Exec(sql::kRevokeFamily, Params().Bytes(f.family_id).Time(now)
                                                              .Bytes("refresh_token_reuse")
                                                              .Bytes("reuse-detector")));
  if (revoked.size() != 1) {
    return ta::Error(absl::StatusCode::kUnavailable, "store_unavailable",
                     "token store: reuse revocation found no family");
  }
  ASSIGN_OR_RETURN(WithDropAfter<FamilyRecord> updated, FamilyAt(revoked, 0));
  f = std::move(updated.record);
  out.result = RotateResult::kReuseDetected;
  logged.push_back(FamilyRevocation(f, RevocationEntry::Kind::kFamily, now));
  return Append(c, logged.back());
}

absl::StatusOr<SubjectRecord> PostgresStore::UpdateSubject(const SubjectUpdate& update) {
  RETURN_IF_ERROR(ValidateSubjectUpdate(update));
  SubjectRecord merged;
  std::vector<RevocationEntry> killed;
  RETURN_IF_ERROR(RunTransaction([&](Connection& c) -> absl::Status {
    RETURN_IF_ERROR(LockSubject(c, update.subject, /*exclusive=*/true));
    ASSIGN_OR_RETURN(std::optional<SubjectRecord> stored,
                     LiveSubject(c, update.subject, update.now));
    const absl::Time requested = update.not_before.value_or(update.now);
    const absl::Time base = stored.has_value() ? std::max(stored->not_before, requested) : requested;
    Params params;
    params.Bytes(update.subject).Time(base).Bool(!update.not_before.has_value());
    ASSIGN_OR_RETURN(Rows cutoff_row, c.Exec(sql::kSubjectCutoff, params));
    ASSIGN_OR_RETURN(absl::Time cutoff, cutoff_row.Time(0, 0));
    absl::Time keep_until = absl::InfinitePast();
    if (!cutoff_row.IsNull(0, 1)) {
      ASSIGN_OR_RETURN(absl::Time latest, cutoff_row.Time(0, 1));
      keep_until = latest + update.token_leeway;
    }
    merged = MergeSubject(stored, update, cutoff, keep_until);
    Params upsert;
    upsert.Bytes(merged.subject).Time(merged.not_before).Time(merged.block_until);
    upsert.Bytes(merged.reason).Bytes(merged.revoked_by).Time(merged.updated_at);
    upsert.Time(merged.expires_at);
    RETURN_IF_ERROR(c.Exec(sql::kUpsertSubject, upsert).status());
    // The families this cutoff newly kills go into the revocation log in the same commit.
    const absl::Time old_cutoff = stored.has_value() ? stored->not_before : absl::InfinitePast();
    ASSIGN_OR_RETURN(killed, KilledFamilies(c, update.subject, old_cutoff, merged.not_before,
                                            update.now));
    return AppendAll(c, killed);
  }));
  Announce(killed);
  return merged;
}

absl::StatusOr<std::vector<RevocationEntry>> PostgresStore::KilledFamilies(
    Connection& c, absl::string_view subject, absl::Time old_cutoff, absl::Time cutoff,
    absl::Time now) {
  std::vector<RevocationEntry> killed;
  if (cutoff <= old_cutoff) return killed;
  ASSIGN_OR_RETURN(Rows rows, c.Exec(sql::kSubjectKills,
                                     Params().Bytes(subject).Time(cutoff).Time(old_cutoff)));
  for (int i = 0; i < rows.size(); ++i) {
    ASSIGN_OR_RETURN(WithDropAfter<FamilyRecord> f, FamilyAt(rows, i));
    if (now > f.drop_after) continue;
    RevocationEntry entry = FamilyRevocation(f.record, RevocationEntry::Kind::kSubject, now);
    if (entry.live_until > now) killed.push_back(std::move(entry));
  }
  return killed;
}

}  // namespace ta::storage::pg

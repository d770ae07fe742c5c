// RocksDbStore: families, refresh records, rotation, family revocation, the denylist, and
// the subject's session list.
#include <algorithm>
#include <optional>
#include <utility>

#include "base/status_macros.h"
#include "storage/rocksdb/store.h"
#include "storage/store_rules.h"

namespace ta::storage::rocksdb_store {

absl::StatusOr<std::optional<std::string>> RocksDbStore::Read(Cf cf, const std::string& key) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), Handle(cf), key, &value);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) return FromRocks(s, absl::StrCat("read ", CfInfoOf(cf).name));
  return value;
}

absl::Status RocksDbStore::Write(rocksdb::WriteBatch* batch, absl::string_view what) {
  rocksdb::Status s = db_->Write(write_options_, batch);
  return s.ok() ? absl::OkStatus() : FromRocks(s, what);
}

absl::StatusOr<std::optional<FamilyRecord>> RocksDbStore::LoadFamily(absl::string_view id,
                                                                     absl::Time now) {
  if (id.size() != kFamilyIdSize) return std::nullopt;
  ASSIGN_OR_RETURN(std::optional<std::string> value, Read(Cf::kFamilies, FamilyKey(id)));
  if (!value.has_value()) return std::nullopt;
  ASSIGN_OR_RETURN(ValueHeader header, DecodeValueHeader(*value));
  if (!IsLive(header.drop_after_micros, now)) return std::nullopt;
  ASSIGN_OR_RETURN(FamilyRecord family, DecodeFamily(*value));
  return family;
}

absl::StatusOr<std::optional<RefreshRecord>> RocksDbStore::LoadRefresh(absl::string_view id,
                                                                       uint64_t gen,
                                                                       absl::Time now) {
  if (id.size() != kFamilyIdSize) return std::nullopt;
  ASSIGN_OR_RETURN(std::optional<std::string> value, Read(Cf::kRefresh, RefreshKey(id, gen)));
  if (!value.has_value()) return std::nullopt;
  ASSIGN_OR_RETURN(ValueHeader header, DecodeValueHeader(*value));
  if (!IsLive(header.drop_after_micros, now)) return std::nullopt;
  ASSIGN_OR_RETURN(RefreshRecord record, DecodeRefresh(*value));
  return record;
}

void RocksDbStore::PutFamily(rocksdb::WriteBatch* batch, const FamilyRecord& f) {
  batch->Put(Handle(Cf::kFamilies), FamilyKey(f.family_id), EncodeFamily(f, FamilyDropAfter(f)));
}

void RocksDbStore::PutRefresh(rocksdb::WriteBatch* batch, const RefreshRecord& r) {
  batch->Put(Handle(Cf::kRefresh), RefreshKey(r.family_id, r.generation),
             EncodeRefresh(r, RefreshDropAfter(r)));
}

absl::StatusOr<bool> RocksDbStore::ProofLive(absl::string_view replay_key, absl::Time now) {
  ASSIGN_OR_RETURN(std::optional<std::string> seen, Read(Cf::kProofJtis, std::string(replay_key)));
  if (!seen.has_value()) return false;
  ASSIGN_OR_RETURN(absl::Time kept_until, DecodeProofJti(*seen));
  return now <= kept_until;
}

void RocksDbStore::PutProof(rocksdb::WriteBatch* batch, const ProofReplay& replay) {
  batch->Put(Handle(Cf::kProofJtis), replay.key, EncodeProofJti(replay.keep_until));
}

absl::Status RocksDbStore::CreateFamily(const FamilyRecord& family, const RefreshRecord& first,
                                        const std::optional<ProofReplay>& proof_replay) {
  RETURN_IF_ERROR(ValidateNewFamily(family, first, proof_replay));
  absl::ReaderMutexLock subject_lock(&SubjectStripeOf(family.subject));
  absl::MutexLock lock(&StripeOf(family.family_id));
  std::optional<absl::MutexLock> proof_lock;
  rocksdb::WriteBatch batch;
  if (proof_replay.has_value()) {  // first: a replayed proof learns nothing else
    proof_lock.emplace(&ProofStripeOf(proof_replay->key));
    ASSIGN_OR_RETURN(bool live, ProofLive(proof_replay->key, family.created_at));
    if (live) return ProofReplayedError();
    PutProof(&batch, *proof_replay);
  }
  ASSIGN_OR_RETURN(std::optional<SubjectRecord> subject,
                   LoadSubject(family.subject, family.created_at));
  if (subject.has_value()) RETURN_IF_ERROR(AdmitNewFamily(*subject, family.created_at));
  ASSIGN_OR_RETURN(std::optional<std::string> existing,
                   Read(Cf::kFamilies, FamilyKey(family.family_id)));
  if (existing.has_value()) {
    return ta::Error(absl::StatusCode::kAlreadyExists, "already_exists",
                     "token store: family id already taken");
  }
  PutFamily(&batch, family);
  batch.Put(Handle(Cf::kSubjectFamilies),
            SubjectFamilyKey(family.subject, family.created_at, family.family_id),
            EncodeSubjectFamilyEntry(FamilyDropAfter(family)));
  PutRefresh(&batch, first);
  return Write(&batch, "create family");
}

absl::StatusOr<FamilyRecord> RocksDbStore::GetFamily(absl::string_view family_id,
                                                     absl::Time now) {
  ASSIGN_OR_RETURN(std::optional<FamilyRecord> family, LoadFamily(family_id, now));
  if (!family.has_value()) return NotFound("family");
  return *std::move(family);
}

absl::StatusOr<RefreshRecord> RocksDbStore::GetRefresh(absl::string_view family_id,
                                                       uint64_t generation, absl::Time now) {
  ASSIGN_OR_RETURN(std::optional<RefreshRecord> record, LoadRefresh(family_id, generation, now));
  if (!record.has_value()) return NotFound("refresh record");
  return *std::move(record);
}

absl::StatusOr<RotateOutcome> RocksDbStore::Rotate(const RotateRequest& request) {
  RETURN_IF_ERROR(ValidateProofReplay(request.proof_replay));
  if (request.family_id.size() != kFamilyIdSize) return RotateOutcome();  // kNotFound
  absl::ReaderMutexLock subject_lock(&SubjectStripeOf(request.subject));
  absl::MutexLock lock(&StripeOf(request.family_id));
  std::optional<absl::MutexLock> proof_lock;
  PendingWrite write;
  if (request.proof_replay.has_value()) {  // first: a replayed proof spends nothing
    proof_lock.emplace(&ProofStripeOf(request.proof_replay->key));
    ASSIGN_OR_RETURN(bool live, ProofLive(request.proof_replay->key, request.now));
    if (live) {
      RotateOutcome replayed;
      replayed.result = RotateResult::kProofReplayed;
      return replayed;
    }
    PutProof(&write.batch, *request.proof_replay);  // spent whatever the outcome
  }
  ASSIGN_OR_RETURN(RotateOutcome outcome, RotateLocked(request, &write));
  if (write.batch.Count() > 0) {
    // One batch: the proof, the spend, the successor and the family's new generation (or
    // the reuse revocation and its log entry) land together or not at all, so a crash never
    // leaves two current tokens or none.
    RETURN_IF_ERROR(CommitWithLog(&write.batch, std::move(write.logged), "rotate"));
  }
  return outcome;
}

absl::StatusOr<RotateOutcome> RocksDbStore::RotateLocked(const RotateRequest& request,
                                                         PendingWrite* write) {
  RotateOutcome outcome;
  auto done = [&outcome](RotateResult result) {
    outcome.result = result;
    return std::move(outcome);
  };
  const absl::Time now = request.now;
  const uint64_t gen = request.generation;
  ASSIGN_OR_RETURN(std::optional<FamilyRecord> family, LoadFamily(request.family_id, now));
  if (!family.has_value()) return done(RotateResult::kNotFound);
  outcome.family = *std::move(family);
  FamilyRecord& f = outcome.family;
  if (f.subject != request.subject) {
    return ta::InvalidField("subject", "RotateRequest.subject is not the family's subject");
  }
  if (f.revoked) return done(RotateResult::kFamilyRevoked);
  if (now >= f.expires_at) return done(RotateResult::kFamilyExpired);
  ASSIGN_OR_RETURN(std::optional<SubjectRecord> subject, LoadSubject(f.subject, now));
  if (subject.has_value()) {
    std::optional<RotateResult> refused = SubjectRefusesRotation(*subject, f, now);
    if (refused.has_value()) return done(*refused);
  }
  ASSIGN_OR_RETURN(std::optional<RefreshRecord> presented,
                   LoadRefresh(request.family_id, gen, now));
  if (!presented.has_value()) return done(RotateResult::kNotFound);
  if (now >= presented->expires_at) return done(RotateResult::kTokenExpired);
  if (gen == f.generation) {
    return SpendAndAdvance(request, *std::move(presented), std::move(outcome), write);
  }
  if (gen > f.generation) return done(RotateResult::kNotFound);
  return ReplayOrReuse(request, std::move(outcome), write);
}

absl::StatusOr<RotateOutcome> RocksDbStore::ReplayOrReuse(const RotateRequest& request,
                                                          RotateOutcome outcome,
                                                          PendingWrite* write) {
  FamilyRecord& f = outcome.family;
  const absl::Time now = request.now;
  if (request.generation + 1 == f.generation && request.grace > absl::ZeroDuration() &&
      now - f.rotated_at < request.grace) {
    ASSIGN_OR_RETURN(std::optional<RefreshRecord> current,
                     LoadRefresh(request.family_id, f.generation, now));
    if (!current.has_value()) {
      return ta::Error(absl::StatusCode::kDataLoss, "store_corrupt",
                       "token store: family's current refresh record is missing");
    }
    outcome.current = *std::move(current);
    if (request.access_live_until > f.access_live_until) {
      // The replay mints an access token too: a later revocation must outlive it.
      f.access_live_until = request.access_live_until;
      PutFamily(&write->batch, f);
    }
    outcome.result = RotateResult::kReplayWithinGrace;
    return outcome;
  }
  StageRevocation(&f, "refresh_token_reuse", "reuse-detector", now, write);
  outcome.result = RotateResult::kReuseDetected;
  return outcome;
}

RotateOutcome RocksDbStore::SpendAndAdvance(const RotateRequest& request, RefreshRecord spent,
                                            RotateOutcome outcome, PendingWrite* write) {
  spent.spent_at = request.now;
  RefreshRecord successor = request.successor;
  successor.family_id = request.family_id;
  successor.generation = request.generation + 1;
  FamilyRecord& updated = outcome.family;
  updated.generation = successor.generation;
  updated.rotated_at = request.now;
  updated.access_live_until = std::max(updated.access_live_until, request.access_live_until);
  PutRefresh(&write->batch, spent);
  PutRefresh(&write->batch, successor);
  PutFamily(&write->batch, updated);
  outcome.result = RotateResult::kRotated;
  outcome.current = std::move(successor);
  return outcome;
}

void RocksDbStore::StageRevocation(FamilyRecord* family, absl::string_view reason,
                                   absl::string_view revoked_by, absl::Time now,
                                   PendingWrite* write) {
  family->revoked = true;
  family->revoked_at = now;
  family->revoke_reason = std::string(reason);
  family->revoked_by = std::string(revoked_by);
  PutFamily(&write->batch, *family);
  write->logged.push_back(FamilyRevocation(*family, RevocationEntry::Kind::kFamily, now));
}

absl::StatusOr<bool> RocksDbStore::RevokeFamily(absl::string_view family_id,
                                                absl::string_view reason,
                                                absl::string_view revoked_by, absl::Time now) {
  absl::MutexLock lock(&StripeOf(family_id));
  ASSIGN_OR_RETURN(std::optional<FamilyRecord> family, LoadFamily(family_id, now));
  if (!family.has_value()) return NotFound("family");
  if (family->revoked) return false;
  PendingWrite write;
  StageRevocation(&*family, reason, revoked_by, now, &write);
  RETURN_IF_ERROR(CommitWithLog(&write.batch, std::move(write.logged), "revoke family"));
  return true;
}

absl::Status RocksDbStore::DenyJti(absl::string_view jti, absl::Time expires_at) {
  if (jti.empty() || jti.size() > kMaxJtiSize) {
    return ta::InvalidField("jti", "jti must be 1 to 1024 bytes");
  }
  // A second denial never shortens the first: the later expiry stands on the denylist row and
  // on the log entry alike, so the two are dropped together by the purge (issue 24).
  absl::MutexLock lock(&StripeOf(jti));
  ASSIGN_OR_RETURN(std::optional<std::string> denied, Read(Cf::kDenylist, DenylistKey(jti)));
  if (denied.has_value()) {
    ASSIGN_OR_RETURN(absl::Time denied_until, DecodeDeniedJti(*denied));
    expires_at = std::max(expires_at, denied_until);
  }
  rocksdb::WriteBatch batch;
  batch.Put(Handle(Cf::kDenylist), DenylistKey(jti), EncodeDeniedJti(expires_at));
  RevocationEntry entry;
  entry.kind = RevocationEntry::Kind::kJti;
  entry.id = std::string(jti);
  entry.revoked_at = options_.clock->Now();
  entry.live_until = expires_at;
  return CommitWithLog(&batch, {std::move(entry)}, "deny jti");
}

absl::StatusOr<bool> RocksDbStore::IsJtiDenied(absl::string_view jti, absl::Time now) {
  if (jti.empty() || jti.size() > kMaxJtiSize) return false;
  ASSIGN_OR_RETURN(std::optional<std::string> value, Read(Cf::kDenylist, DenylistKey(jti)));
  if (!value.has_value()) return false;
  ASSIGN_OR_RETURN(absl::Time expires_at, DecodeDeniedJti(*value));
  return now <= expires_at;
}

absl::StatusOr<bool> RocksDbStore::RecordProofJti(absl::string_view replay_key,
                                                  absl::Time keep_until, absl::Time now) {
  RETURN_IF_ERROR(ValidateReplayKey(replay_key));
  // The stripe makes the read-check-write atomic among this process's callers, the only
  // writers of an embedded store.
  absl::MutexLock lock(&ProofStripeOf(replay_key));
  ASSIGN_OR_RETURN(bool live, ProofLive(replay_key, now));
  if (live) return false;
  rocksdb::WriteBatch batch;
  PutProof(&batch, ProofReplay{std::string(replay_key), keep_until});
  // Not synced (token_store.h): in the WAL, so a crash of the process keeps it.
  rocksdb::Status s = db_->Write(unsynced_write_options_, &batch);
  if (!s.ok()) return FromRocks(s, "record a DPoP proof");
  return true;
}

absl::StatusOr<FamilyPage> RocksDbStore::ListFamilies(const ListFamiliesQuery& q) {
  if (q.subject.empty() || q.subject.size() > kMaxSubjectSize) {
    return ta::InvalidField("subject", "subject must be 1 to 256 bytes");
  }
  const size_t page_size = q.page_size <= 0 ? kDefaultPageSize : std::min(q.page_size, kMaxPageSize);
  const std::string prefix = SubjectFamiliesPrefix(q.subject);
  std::string start = prefix;
  if (!q.page_token.empty()) {
    ASSIGN_OR_RETURN(std::string suffix, DecodePageToken(q.page_token));
    start += suffix;
  }
  FamilyPage page;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), Handle(Cf::kSubjectFamilies)));
  for (it->Seek(start); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    absl::string_view key(it->key().data(), it->key().size());
    if (key == start) continue;  // the page token names the last entry already returned
    if (page.families.size() == page_size) {
      const FamilyRecord& last = page.families.back();
      page.next_page_token = EncodePageToken(last.created_at, last.family_id);
      return page;
    }
    ASSIGN_OR_RETURN(SubjectFamilyKeyParts parts, DecodeSubjectFamilyKey(key));
    ASSIGN_OR_RETURN(std::optional<FamilyRecord> family, LoadFamily(parts.family_id, q.now));
    if (!family.has_value()) continue;  // expired: the index entry outlives it a moment
    bool live = !family->revoked && q.now < family->expires_at;
    if (live || q.include_revoked) page.families.push_back(*std::move(family));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "list families");
  return page;
}

}  // namespace ta::storage::rocksdb_store

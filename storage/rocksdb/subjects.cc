// RocksDbStore: subject records (the atomic merge of UpdateSubject, storage/store_rules.h).
#include <algorithm>
#include <limits>
#include <optional>
#include <utility>

#include "base/status_macros.h"
#include "storage/rocksdb/store.h"
#include "storage/store_rules.h"

namespace ta::storage::rocksdb_store {

absl::StatusOr<SubjectRecord> RocksDbStore::UpdateSubject(const SubjectUpdate& update) {
  RETURN_IF_ERROR(ValidateSubjectUpdate(update));
  absl::MutexLock lock(&SubjectStripeOf(update.subject));
  ASSIGN_OR_RETURN(std::optional<SubjectRecord> stored, LoadSubject(update.subject, update.now));
  // The cutoff first (it decides which families the record must outlive), then the rest.
  absl::Time cutoff = update.not_before.value_or(update.now);
  if (stored.has_value()) cutoff = std::max(cutoff, stored->not_before);
  ASSIGN_OR_RETURN(SubjectFamiliesSummary families,
                   SummariseSubjectFamilies(update.subject, absl::InfiniteFuture(), update.now));
  if (!update.not_before.has_value()) cutoff = std::max(cutoff, families.newest_created_at);
  ASSIGN_OR_RETURN(families, SummariseSubjectFamilies(update.subject, cutoff, update.now));
  SubjectRecord merged = MergeSubject(stored, update, cutoff,
                                      families.latest_expiry_before_cutoff + update.token_leeway);
  // The families this cutoff newly kills go into the revocation log in the same write.
  ASSIGN_OR_RETURN(std::vector<RevocationEntry> killed,
                   KilledFamilies(update.subject,
                                  stored.has_value() ? stored->not_before : absl::InfinitePast(),
                                  merged.not_before, update.now));
  rocksdb::WriteBatch batch;
  batch.Put(Handle(Cf::kSubjects), SubjectKey(merged.subject), EncodeSubject(merged));
  RETURN_IF_ERROR(CommitWithLog(&batch, std::move(killed), "update subject"));
  return merged;
}

absl::StatusOr<std::vector<RevocationEntry>> RocksDbStore::KilledFamilies(
    absl::string_view subject, absl::Time old_cutoff, absl::Time cutoff, absl::Time now) {
  std::vector<RevocationEntry> killed;
  const std::string prefix = SubjectFamiliesPrefix(subject);
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), Handle(Cf::kSubjectFamilies)));
  // Newest first from the cutoff down; what the old cutoff killed was logged back then.
  for (it->Seek(SubjectFamilyKey(subject, cutoff, "")); it->Valid() && it->key().starts_with(prefix);
       it->Next()) {
    ASSIGN_OR_RETURN(SubjectFamilyKeyParts parts,
                     DecodeSubjectFamilyKey(absl::string_view(it->key().data(), it->key().size())));
    if (parts.created_at <= old_cutoff) break;
    ASSIGN_OR_RETURN(std::optional<FamilyRecord> family, LoadFamily(parts.family_id, now));
    if (!family.has_value() || family->revoked) continue;
    RevocationEntry entry = FamilyRevocation(*family, RevocationEntry::Kind::kSubject, now);
    if (entry.live_until > now) killed.push_back(std::move(entry));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scan subject families");
  return killed;
}

absl::StatusOr<RocksDbStore::SubjectFamiliesSummary> RocksDbStore::SummariseSubjectFamilies(
    absl::string_view subject, absl::Time cutoff, absl::Time now) {
  SubjectFamiliesSummary summary;
  const std::string prefix = SubjectFamiliesPrefix(subject);
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), Handle(Cf::kSubjectFamilies)));
  it->Seek(prefix);  // newest first
  if (it->Valid() && it->key().starts_with(prefix)) {
    ASSIGN_OR_RETURN(SubjectFamilyKeyParts newest,
                     DecodeSubjectFamilyKey(absl::string_view(it->key().data(), it->key().size())));
    summary.newest_created_at = newest.created_at;
  }
  // Index entries of families created at or before the cutoff; each value's drop-after is
  // its family's expires_at + family_retention.
  for (it->Seek(SubjectFamilyKey(subject, cutoff, "")); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    ASSIGN_OR_RETURN(ValueHeader header, DecodeValueHeader(absl::string_view(
                                             it->value().data(), it->value().size())));
    if (!IsLive(header.drop_after_micros, now)) continue;
    absl::Time expires_at =
        MicrosToTime(static_cast<int64_t>(std::min<uint64_t>(
            header.drop_after_micros, std::numeric_limits<int64_t>::max()))) -
        options_.family_retention;
    summary.latest_expiry_before_cutoff = std::max(summary.latest_expiry_before_cutoff, expires_at);
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scan subject families");
  return summary;
}

absl::StatusOr<std::optional<SubjectRecord>> RocksDbStore::GetSubject(absl::string_view subject,
                                                                      absl::Time now) {
  return LoadSubject(subject, now);
}

absl::StatusOr<std::optional<SubjectRecord>> RocksDbStore::LoadSubject(absl::string_view subject,
                                                                       absl::Time now) {
  if (subject.empty() || subject.size() > kMaxSubjectSize) return std::nullopt;
  ASSIGN_OR_RETURN(std::optional<std::string> value, Read(Cf::kSubjects, SubjectKey(subject)));
  if (!value.has_value()) return std::nullopt;
  ASSIGN_OR_RETURN(ValueHeader header, DecodeValueHeader(*value));
  if (!IsLive(header.drop_after_micros, now)) return std::nullopt;
  ASSIGN_OR_RETURN(SubjectRecord record, DecodeSubject(*value));
  return record;
}

}  // namespace ta::storage::rocksdb_store

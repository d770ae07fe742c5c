// RocksDbStore: the revocation log (DESIGN §10, storage/token_store.h).
//
// Column family `revocations`, keyed by sequence number; each entry's header drops it once its
// live_until has passed (the compaction filter, like every other record). Appends happen in the
// same WriteBatch as the revocation they record, under log_mu_, so numbers are committed in
// order; meta kRevocationSeqKey keeps the highest number ever assigned.
#include <algorithm>
#include <limits>
#include <utility>

#include "base/status_macros.h"
#include "storage/rocksdb/store.h"
#include "storage/store_rules.h"

namespace ta::storage::rocksdb_store {

absl::Status RocksDbStore::CommitWithLog(rocksdb::WriteBatch* batch,
                                         std::vector<RevocationEntry> entries,
                                         absl::string_view what) {
  if (entries.empty()) return Write(batch, what);
  {
    absl::MutexLock lock(&log_mu_);
    uint64_t seq = last_seq_;
    for (RevocationEntry& entry : entries) {
      entry.seq = ++seq;
      batch->Put(Handle(Cf::kRevocations), RevocationKey(entry.seq), EncodeRevocation(entry));
    }
    batch->Put(Handle(Cf::kMeta), std::string(kRevocationSeqKey), EncodeU64Value(seq));
    RETURN_IF_ERROR(Write(batch, what));
    last_seq_ = seq;
    // Under log_mu_, so the listener sees entries in seq order (a watch's tail relies on it:
    // server/core/watch_hub.h). Appends are serialised here anyway; the listener is quick.
    if (listener_) {
      for (const RevocationEntry& entry : entries) listener_(entry);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<RevocationEntry>> RocksDbStore::ReadRevocations(uint64_t after_seq,
                                                                           absl::Time now,
                                                                           size_t limit) {
  std::vector<RevocationEntry> entries;
  if (limit == 0 || after_seq == std::numeric_limits<uint64_t>::max()) return entries;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), Handle(Cf::kRevocations)));
  for (it->Seek(RevocationKey(after_seq + 1)); it->Valid() && entries.size() < limit; it->Next()) {
    ASSIGN_OR_RETURN(RevocationEntry entry,
                     DecodeRevocation(absl::string_view(it->key().data(), it->key().size()),
                                      absl::string_view(it->value().data(), it->value().size())));
    if (entry.live_until > now) entries.push_back(std::move(entry));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "read the revocation log");
  return entries;
}

absl::Status RocksDbStore::LoadLogState() {
  uint64_t last = 0;
  ASSIGN_OR_RETURN(std::optional<std::string> stored,
                   Read(Cf::kMeta, std::string(kRevocationSeqKey)));
  if (stored.has_value()) {
    ASSIGN_OR_RETURN(last, DecodeU64Value(*stored));
  }
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), Handle(Cf::kRevocations)));
  it->SeekToLast();
  if (it->Valid()) {
    ASSIGN_OR_RETURN(uint64_t newest,
                     DecodeRevocationKey(absl::string_view(it->key().data(), it->key().size())));
    last = std::max(last, newest);
  }
  if (!it->status().ok()) return FromRocks(it->status(), "read the revocation log");
  absl::MutexLock lock(&log_mu_);
  last_seq_ = last;
  return absl::OkStatus();
}

absl::Status RocksDbStore::BackfillLog() {
  RETURN_IF_ERROR(LoadLogState());
  const absl::Time now = options_.clock->Now();
  std::vector<RevocationEntry> entries;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), Handle(Cf::kDenylist)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ASSIGN_OR_RETURN(absl::Time expires_at, DecodeDeniedJti(absl::string_view(
                                                it->value().data(), it->value().size())));
    if (expires_at <= now) continue;
    RevocationEntry entry;
    entry.kind = RevocationEntry::Kind::kJti;
    entry.id = it->key().ToString();
    entry.revoked_at = now;
    entry.live_until = expires_at;
    entries.push_back(std::move(entry));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scan the denylist");
  it.reset(db_->NewIterator(rocksdb::ReadOptions(), Handle(Cf::kFamilies)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    ASSIGN_OR_RETURN(FamilyRecord family,
                     DecodeFamily(absl::string_view(it->value().data(), it->value().size())));
    RevocationEntry::Kind kind = RevocationEntry::Kind::kFamily;
    if (!family.revoked) {
      ASSIGN_OR_RETURN(std::optional<SubjectRecord> subject, LoadSubject(family.subject, now));
      if (!subject.has_value() || family.created_at > subject->not_before) continue;
      kind = RevocationEntry::Kind::kSubject;
    }
    RevocationEntry entry = FamilyRevocation(family, kind, now);
    if (entry.live_until > now) entries.push_back(std::move(entry));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scan families");
  rocksdb::WriteBatch batch;
  return CommitWithLog(&batch, std::move(entries), "write the revocation log");
}

}  // namespace ta::storage::rocksdb_store

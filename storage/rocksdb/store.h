// The RocksDB store's class, shared by the files of storage/rocksdb/ (and nothing else: this
// folder is the only code that includes RocksDB headers, STYLE practice 1).
//
// store.cc: open, options, format version, purge, stats. backup.cc: backup and restore. families.cc: families, refresh
// records, rotation, family revocation, the denylist, listing. subjects.cc: subject
// records. revocation_log.cc: the revocation log.
#ifndef TA_STORAGE_ROCKSDB_STORE_H_
#define TA_STORAGE_ROCKSDB_STORE_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/error.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "storage/codec.h"
#include "storage/rocksdb/rocksdb_store.h"

namespace ta::storage::rocksdb_store {

inline constexpr size_t kMaxJtiSize = 1024;
inline constexpr int kMaxPageSize = 1000;
inline constexpr int kDefaultPageSize = 50;

// Corruption is the one RocksDB failure a retry cannot fix; everything else (I/O error, full
// or read-only disk, lock held) is reported as retryable.
inline absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.IsCorruption()) {
    return ta::Error(absl::StatusCode::kDataLoss, "store_corrupt",
                     absl::StrCat("token store: ", what, ": ", s.ToString()));
  }
  return ta::Error(absl::StatusCode::kUnavailable, "store_unavailable",
                   absl::StrCat("token store: ", what, ": ", s.ToString()));
}

inline absl::Status NotFound(absl::string_view what) {
  return ta::Error(absl::StatusCode::kNotFound, "not_found",
                   absl::StrCat("token store: ", what, " not found"));
}

class RocksDbStore final : public TokenStore {
 public:
  static absl::StatusOr<std::unique_ptr<TokenStore>> Open(const RocksDbStoreOptions& options);

  // Use Open(). Takes ownership of an open DB and its handles (indexed by Cf).
  RocksDbStore(const RocksDbStoreOptions& options, std::unique_ptr<rocksdb::DB> db,
               std::vector<std::unique_ptr<rocksdb::ColumnFamilyHandle>> handles)
      : options_(options),
        db_(std::move(db)),
        handles_(std::move(handles)),
        stripes_(static_cast<size_t>(options.lock_stripes)),
        subject_stripes_(static_cast<size_t>(options.lock_stripes)),
        proof_stripes_(static_cast<size_t>(options.lock_stripes)) {
    write_options_.sync = options.sync_writes;
    unsynced_write_options_.sync = false;  // still in the WAL (TokenStore::RecordProofJti)
  }

  ~RocksDbStore() override {
    handles_.clear();  // handles must go before the DB
    db_->Close().PermitUncheckedError();
  }

  absl::Status CreateFamily(const FamilyRecord& family, const RefreshRecord& first,
                            const std::optional<ProofReplay>& proof_replay) override;
  absl::StatusOr<FamilyRecord> GetFamily(absl::string_view family_id, absl::Time now) override;
  absl::StatusOr<RefreshRecord> GetRefresh(absl::string_view family_id, uint64_t generation,
                                           absl::Time now) override;
  absl::StatusOr<RotateOutcome> Rotate(const RotateRequest& request) override;
  absl::StatusOr<bool> RevokeFamily(absl::string_view family_id, absl::string_view reason,
                                    absl::string_view revoked_by, absl::Time now) override;
  absl::Status DenyJti(absl::string_view jti, absl::Time expires_at) override;
  absl::StatusOr<bool> IsJtiDenied(absl::string_view jti, absl::Time now) override;
  absl::StatusOr<bool> RecordProofJti(absl::string_view replay_key, absl::Time keep_until,
                                      absl::Time now) override;
  absl::StatusOr<SubjectRecord> UpdateSubject(const SubjectUpdate& update) override;
  absl::StatusOr<std::optional<SubjectRecord>> GetSubject(absl::string_view subject,
                                                          absl::Time now) override;
  absl::StatusOr<FamilyPage> ListFamilies(const ListFamiliesQuery& query) override;
  absl::Status PurgeExpired() override;
  absl::StatusOr<absl::Time> ClockNow() override { return options_.clock->Now(); }
  absl::StatusOr<StoreStats> GetStats() override;
  absl::StatusOr<BackupResult> CreateBackup(const BackupRequest& request) override;
  void SetRevocationListener(RevocationListener listener) override { listener_ = std::move(listener); }
  absl::StatusOr<std::vector<RevocationEntry>> ReadRevocations(uint64_t after_seq, absl::Time now,
                                                               size_t limit) override;
  absl::StatusOr<KeyRingBlob> GetKeyRing(uint64_t if_newer_than) override;
  absl::Status CompareAndSetKeyRing(uint64_t expected_version,
                                    absl::string_view document) override;

 private:
  rocksdb::ColumnFamilyHandle* Handle(Cf cf) const { return handles_[static_cast<int>(cf)].get(); }
  absl::Mutex& StripeOf(absl::string_view family_id) {
    return stripes_[absl::Hash<absl::string_view>()(family_id) % stripes_.size()];
  }
  absl::Mutex& ProofStripeOf(absl::string_view replay_key) {
    return proof_stripes_[absl::Hash<absl::string_view>()(replay_key) % proof_stripes_.size()];
  }
  absl::Mutex& SubjectStripeOf(absl::string_view subject) {
    return subject_stripes_[absl::Hash<absl::string_view>()(subject) % subject_stripes_.size()];
  }
  absl::Time FamilyDropAfter(const FamilyRecord& f) const {
    return f.expires_at + options_.family_retention;
  }
  absl::Time RefreshDropAfter(const RefreshRecord& r) const {
    return r.expires_at + options_.refresh_retention;
  }

  // Checks the stored format version; upgrades a version-1 database (revocation_log.cc).
  absl::Status EnsureFormatVersion();
  // The log's numbering after a restart, and (upgrading from version 1) the live revocations
  // of the old column families written into the log once.
  absl::Status LoadLogState();
  absl::Status BackfillLog();
  // Writes `batch` plus `entries` appended to the revocation log (their seqs assigned here,
  // in commit order), then hands them to the listener. `entries` may be empty.
  absl::Status CommitWithLog(rocksdb::WriteBatch* batch, std::vector<RevocationEntry> entries,
                             absl::string_view what);
  absl::StatusOr<std::optional<std::string>> Read(Cf cf, const std::string& key);
  absl::Status Write(rocksdb::WriteBatch* batch, absl::string_view what);
  // Caller holds the key's proof stripe. Whether `replay`'s key is live at `now`.
  absl::StatusOr<bool> ProofLive(absl::string_view replay_key, absl::Time now);
  void PutProof(rocksdb::WriteBatch* batch, const ProofReplay& replay);
  // Records past their drop-after are reported as absent (nullopt).
  absl::StatusOr<std::optional<FamilyRecord>> LoadFamily(absl::string_view id, absl::Time now);
  absl::StatusOr<std::optional<RefreshRecord>> LoadRefresh(absl::string_view id, uint64_t gen,
                                                           absl::Time now);
  absl::StatusOr<std::optional<SubjectRecord>> LoadSubject(absl::string_view subject,
                                                           absl::Time now);
  // The subject's families created at or before `cutoff`: the newest created_at of all its
  // families, and the latest expires_at among those at or before the cutoff.
  struct SubjectFamiliesSummary {
    absl::Time newest_created_at = absl::InfinitePast();
    absl::Time latest_expiry_before_cutoff = absl::InfinitePast();
  };
  absl::StatusOr<SubjectFamiliesSummary> SummariseSubjectFamilies(absl::string_view subject,
                                                                  absl::Time cutoff,
                                                                  absl::Time now);
  // Log entries for the subject's families that `cutoff` kills and `old_cutoff` did not:
  // neither revoked nor past their access_live_until at `now`.
  absl::StatusOr<std::vector<RevocationEntry>> KilledFamilies(absl::string_view subject,
                                                             absl::Time old_cutoff,
                                                             absl::Time cutoff, absl::Time now);
  void PutFamily(rocksdb::WriteBatch* batch, const FamilyRecord& f);
  void PutRefresh(rocksdb::WriteBatch* batch, const RefreshRecord& r);
  // What one call writes, committed at once (CommitWithLog; nothing when the batch is empty).
  struct PendingWrite {
    rocksdb::WriteBatch batch;
    std::vector<RevocationEntry> logged;
  };
  // Caller holds the family's stripe. Marks `family` revoked and stages it and its log entry
  // in `write` (RevokeFamily, and Rotate's reuse detection).
  void StageRevocation(FamilyRecord* family, absl::string_view reason,
                       absl::string_view revoked_by, absl::Time now, PendingWrite* write);
  // Callers hold the subject's stripe (shared), the family's and the replay key's.
  absl::StatusOr<RotateOutcome> RotateLocked(const RotateRequest& request, PendingWrite* write);
  absl::StatusOr<RotateOutcome> ReplayOrReuse(const RotateRequest& request, RotateOutcome outcome,
                                              PendingWrite* write);
  RotateOutcome SpendAndAdvance(const RotateRequest& request, RefreshRecord spent,
                                RotateOutcome outcome, PendingWrite* write);

  const RocksDbStoreOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<std::unique_ptr<rocksdb::ColumnFamilyHandle>> handles_;  // indexed by Cf
  rocksdb::WriteOptions write_options_;
  rocksdb::WriteOptions unsynced_write_options_;  // RecordProofJti only
  // Serialises read-check-write per family (and per denied jti: DenyJti keeps the later
  // expiry; it takes no other lock while holding one). Plain reads take no lock: RocksDB reads are
  // atomic per key and each write is one atomic batch. Chosen over a pessimistic
  // TransactionDB (GetForUpdate) after measuring both: equal when the WAL fsync dominates,
  // 10-30% faster when it does not, and no lock timeouts or deadlock errors to handle.
  std::vector<absl::Mutex> stripes_;
  // Orders a subject's CreateFamily and Rotate (shared) against its UpdateSubject
  // (exclusive). Always taken before a family stripe, never the other way round.
  std::vector<absl::Mutex> subject_stripes_;
  // Serialise the check-and-record of a DPoP replay key (RecordProofJti, and CreateFamily /
  // Rotate carrying one). Taken after the subject and family stripes, before log_mu_.
  std::vector<absl::Mutex> proof_stripes_;
  // Serialises the writes that append to the revocation log, so sequence numbers are
  // committed in order (a reader never sees seq n+1 before n) and the stored high-water mark
  // only grows. Innermost lock. Revocations are rare next to rotations; they lose group
  // commit among themselves, not with other writes.
  absl::Mutex log_mu_;
  uint64_t last_seq_ ABSL_GUARDED_BY(log_mu_) = 0;
  // Held (TryLock) for the whole of CreateBackup: one backup at a time.
  absl::Mutex backup_mu_;
  RevocationListener listener_;  // set before concurrent use
  absl::Mutex key_ring_mu_;       // serialises CompareAndSetKeyRing's read-check-write
};

}  // namespace ta::storage::rocksdb_store

#endif  // TA_STORAGE_ROCKSDB_STORE_H_

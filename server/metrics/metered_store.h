// MeteredStore: a storage::TokenStore that times every call of the store it wraps and
// reports it to ServerMetrics (ta_store_operation_duration_seconds, ta_store_errors_total).
//
// A decorator, so neither storage/ nor the core knows about metrics. Answers that are part of
// the contract (NOT_FOUND, ALREADY_EXISTS, INVALID_ARGUMENT, FAILED_PRECONDITION, ABORTED)
// count as answers, not errors. Thread-safe when the wrapped store is. Borrows both; they must
// outlive it.
#ifndef TA_SERVER_METRICS_METERED_STORE_H_
#define TA_SERVER_METRICS_METERED_STORE_H_

#include "server/metrics/metrics.h"
#include "storage/token_store.h"

namespace ta::metrics {

class MeteredStore final : public storage::TokenStore {
 public:
  MeteredStore(storage::TokenStore* store, ServerMetrics* metrics)
      : store_(store), metrics_(metrics) {}

  // Set once at start: passed through.
  void SetRevocationListener(storage::RevocationListener listener) override {
    store_->SetRevocationListener(std::move(listener));
  }
  absl::StatusOr<std::vector<storage::RevocationEntry>> ReadRevocations(uint64_t after_seq,
                                                                        absl::Time now,
                                                                        size_t limit) override;
  absl::Status CreateFamily(const storage::FamilyRecord& family,
                            const storage::RefreshRecord& first,
                            const std::optional<storage::ProofReplay>& proof_replay) override;
  absl::StatusOr<storage::FamilyRecord> GetFamily(absl::string_view family_id,
                                                  absl::Time now) override;
  absl::StatusOr<storage::RefreshRecord> GetRefresh(absl::string_view family_id,
                                                    uint64_t generation, absl::Time now) override;
  absl::StatusOr<storage::RotateOutcome> Rotate(const storage::RotateRequest& request) override;
  absl::StatusOr<bool> RevokeFamily(absl::string_view family_id, absl::string_view reason,
                                    absl::string_view revoked_by, absl::Time now) override;
  absl::Status DenyJti(absl::string_view jti, absl::Time expires_at) override;
  absl::StatusOr<bool> IsJtiDenied(absl::string_view jti, absl::Time now) override;
  absl::StatusOr<bool> RecordProofJti(absl::string_view replay_key, absl::Time keep_until,
                                      absl::Time now) override;
  absl::StatusOr<storage::SubjectRecord> UpdateSubject(
      const storage::SubjectUpdate& update) override;
  absl::StatusOr<std::optional<storage::SubjectRecord>> GetSubject(absl::string_view subject,
                                                                   absl::Time now) override;
  absl::StatusOr<storage::FamilyPage> ListFamilies(
      const storage::ListFamiliesQuery& query) override;
  absl::Status PurgeExpired() override;
  absl::StatusOr<storage::StoreStats> GetStats() override;
  // Passed through unmetered (rare: a poll per follower tick that reads one small row).
  absl::StatusOr<storage::KeyRingBlob> GetKeyRing(uint64_t if_newer_than) override {
    return store_->GetKeyRing(if_newer_than);
  }
  absl::Status CompareAndSetKeyRing(uint64_t expected_version,
                                    absl::string_view document) override {
    return store_->CompareAndSetKeyRing(expected_version, document);
  }
  // Passed through unmetered too: the follower's clock reading, once per poll.
  absl::StatusOr<absl::Time> ClockNow() override { return store_->ClockNow(); }
  absl::StatusOr<storage::BackupResult> CreateBackup(
      const storage::BackupRequest& request) override;

 private:
  // Runs `call` on the wrapped store, timed, and reports it as `op`.
  template <typename Call>
  auto Timed(StoreOp op, Call call) -> decltype(call());

  storage::TokenStore* const store_;
  ServerMetrics* const metrics_;
};

}  // namespace ta::metrics

#endif  // TA_SERVER_METRICS_METERED_STORE_H_

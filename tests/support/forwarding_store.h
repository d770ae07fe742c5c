// A TokenStore decorator for tests: every call goes to the store it wraps, so a test's own
// decorator (a store whose reads fail, whose backups wait, ...) overrides only the calls it
// changes. Thread-safe as far as the wrapped store is.
#ifndef TA_TESTS_SUPPORT_FORWARDING_STORE_H_
#define TA_TESTS_SUPPORT_FORWARDING_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "storage/token_store.h"

namespace ta::testing {

class ForwardingStore : public storage::TokenStore {
 public:
  explicit ForwardingStore(std::unique_ptr<storage::TokenStore> inner)
      : inner_(std::move(inner)) {}

  void SetRevocationListener(storage::RevocationListener listener) override {
    inner_->SetRevocationListener(std::move(listener));
  }
  absl::StatusOr<std::vector<storage::RevocationEntry>> ReadRevocations(uint64_t after,
                                                                        absl::Time now,
                                                                        size_t limit) override {
    return inner_->ReadRevocations(after, now, limit);
  }
  absl::Status CreateFamily(const storage::FamilyRecord& f, const storage::RefreshRecord& r,
                            const std::optional<storage::ProofReplay>& p) override {
    return inner_->CreateFamily(f, r, p);
  }
  absl::StatusOr<storage::FamilyRecord> GetFamily(absl::string_view id, absl::Time now) override {
    return inner_->GetFamily(id, now);
  }
  absl::StatusOr<storage::RefreshRecord> GetRefresh(absl::string_view id, uint64_t gen,
                                                    absl::Time now) override {
    return inner_->GetRefresh(id, gen, now);
  }
  absl::StatusOr<storage::RotateOutcome> Rotate(const storage::RotateRequest& r) override {
    return inner_->Rotate(r);
  }
  absl::StatusOr<bool> RevokeFamily(absl::string_view id, absl::string_view reason,
                                    absl::string_view by, absl::Time now) override {
    return inner_->RevokeFamily(id, reason, by, now);
  }
  absl::Status DenyJti(absl::string_view jti, absl::Time exp) override {
    return inner_->DenyJti(jti, exp);
  }
  absl::StatusOr<bool> IsJtiDenied(absl::string_view jti, absl::Time now) override {
    return inner_->IsJtiDenied(jti, now);
  }
  absl::StatusOr<bool> RecordProofJti(absl::string_view key, absl::Time keep_until,
                                      absl::Time now) override {
    return inner_->RecordProofJti(key, keep_until, now);
  }
  absl::StatusOr<storage::SubjectRecord> UpdateSubject(const storage::SubjectUpdate& u) override {
    return inner_->UpdateSubject(u);
  }
  absl::StatusOr<std::optional<storage::SubjectRecord>> GetSubject(absl::string_view s,
                                                                   absl::Time now) override {
    return inner_->GetSubject(s, now);
  }
  absl::StatusOr<storage::FamilyPage> ListFamilies(const storage::ListFamiliesQuery& q) override {
    return inner_->ListFamilies(q);
  }
  absl::Status PurgeExpired() override { return inner_->PurgeExpired(); }
  absl::StatusOr<absl::Time> ClockNow() override { return inner_->ClockNow(); }
  absl::StatusOr<storage::StoreStats> GetStats() override { return inner_->GetStats(); }
  absl::StatusOr<storage::KeyRingBlob> GetKeyRing(uint64_t if_newer_than) override {
    return inner_->GetKeyRing(if_newer_than);
  }
  absl::Status CompareAndSetKeyRing(uint64_t expected, absl::string_view document) override {
    return inner_->CompareAndSetKeyRing(expected, document);
  }
  absl::StatusOr<storage::BackupResult> CreateBackup(const storage::BackupRequest& r) override {
    return inner_->CreateBackup(r);
  }

 protected:
  storage::TokenStore& inner() { return *inner_; }

 private:
  std::unique_ptr<storage::TokenStore> inner_;
};

}  // namespace ta::testing

#endif  // TA_TESTS_SUPPORT_FORWARDING_STORE_H_

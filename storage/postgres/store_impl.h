// PostgresStore: the class behind OpenPostgresStore (postgres_store.h). Internal to
// storage/postgres/; split over postgres_store.cc (open, plain reads and writes, reaper,
// stats) and ordered_ops.cc (CreateFamily, Rotate, UpdateSubject: the operations ordered
// by the subject lock).
//
// Thread-safety: thread-safe; each call borrows its own pooled connection.
#ifndef TA_STORAGE_POSTGRES_STORE_IMPL_H_
#define TA_STORAGE_POSTGRES_STORE_IMPL_H_

#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/synchronization/notification.h"
#include "storage/postgres/pg_conn.h"
#include "storage/postgres/pool.h"
#include "storage/postgres/postgres_store.h"
#include "storage/postgres/rows.h"

namespace ta::storage::pg {

class PostgresStore final : public TokenStore {
 public:
  PostgresStore(const PostgresStoreOptions& options, ConnectParams params);
  ~PostgresStore() override;

  // Migrates the schema, then starts the reaper. Called once by OpenPostgresStore.
  absl::Status Start();

  void SetRevocationListener(RevocationListener listener) override {
    listener_ = std::move(listener);
  }
  absl::StatusOr<std::vector<RevocationEntry>> ReadRevocations(uint64_t after_seq, absl::Time now,
                                                               size_t limit) override;
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
  absl::StatusOr<absl::Time> ClockNow() override;
  // FAILED_PRECONDITION "backup_not_supported" (by design, not missing): PostgreSQL's own tools do it (README).
  absl::StatusOr<BackupResult> CreateBackup(const BackupRequest& request) override;
  absl::StatusOr<StoreStats> GetStats() override;
  absl::StatusOr<KeyRingBlob> GetKeyRing(uint64_t if_newer_than) override;
  absl::Status CompareAndSetKeyRing(uint64_t expected_version,
                                    absl::string_view document) override;

 private:
  using Body = absl::FunctionRef<absl::Status(Connection&)>;
  // Runs `body` on a pooled connection outside any transaction block (each statement
  // commits on its own). If the connection turns out dead before anything ran, once more
  // on a fresh one.
  absl::Status Run(Body body);
  // Runs `body` between BEGIN and COMMIT (READ COMMITTED); any error rolls back. Repeats the
  // whole transaction on a serialization failure or deadlock, up to max_attempts.
  absl::Status RunTransaction(Body body);
  // One attempt; *lost: the connection was found dead before any of the body could have
  // taken effect, so the caller may run it again on a fresh connection.
  absl::Status RunOnce(Body body, bool transaction, bool* lost);

  absl::Time FamilyDropAfter(const FamilyRecord& f) const {
    return f.expires_at + options_.family_retention;
  }
  absl::Time RefreshDropAfter(const RefreshRecord& r) const {
    return r.expires_at + options_.refresh_retention;
  }

  // Reads one family, hiding it past its drop-after.
  absl::StatusOr<std::optional<FamilyRecord>> LoadFamily(Connection& c, absl::string_view id,
                                                         absl::Time now);
  // The rest of Rotate once the family is locked and checked (ordered_ops.cc); a reuse
  // revocation's log entry goes to `logged`.
  absl::Status RotateLocked(Connection& c, const RotateRequest& request, RotateOutcome& out,
                            std::vector<RevocationEntry>& logged);
  // Appends `entry` to the log inside the caller's transaction, setting its seq. The seq
  // counter's row lock orders appends across every store sharing the database.
  static absl::Status Append(Connection& c, RevocationEntry& entry);
  // Appends `entries` in one statement, in order, setting each one's seq.
  static absl::Status AppendAll(Connection& c, std::vector<RevocationEntry>& entries);
  // Hands committed entries to the listener (before the call that made them returns).
  void Announce(const std::vector<RevocationEntry>& entries) const;
  // The log entries for the families of `subject` the cutoff moving from `old_cutoff` to
  // `cutoff` newly kills and whose access tokens can still verify at `now`.
  absl::StatusOr<std::vector<RevocationEntry>> KilledFamilies(Connection& c,
                                                              absl::string_view subject,
                                                              absl::Time old_cutoff,
                                                              absl::Time cutoff, absl::Time now);
  // One reaper round over every table; sets *more when a table had a full batch. `wait`:
  // queue for the reaper lock (PurgeExpired) instead of leaving the round to the replica
  // that holds it (the reaper thread).
  absl::Status ReapOnce(absl::Time now, bool wait, bool* more);
  // What the reaper deletes before: purge_margin before the earlier of `clock` and the
  // database's clock.
  absl::StatusOr<absl::Time> ReapCutoff();
  void ReaperLoop();

  const PostgresStoreOptions options_;
  Pool pool_;
  RevocationListener listener_;  // set once, before concurrent use
  absl::Notification stopping_;
  std::optional<std::thread> reaper_;
};

}  // namespace ta::storage::pg

#endif  // TA_STORAGE_POSTGRES_STORE_IMPL_H_

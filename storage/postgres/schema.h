// The PostgreSQL store's schema: versioned migrations applied at start-up, and the SQL of
// every statement the store runs (one place owns the format, as storage/codec.h does for
// RocksDB).
//
// Tables (DESIGN §6, §10): ta_families (with the subject index for keyset pagination, newest
// first), ta_refresh (SHA-256 of the secret only), ta_denylist, ta_subjects, ta_revocations
// (the revocation log), ta_dpop_jtis (the DPoP replay cache), ta_meta (the schema version and
// the log's last number). Times are bigint microseconds since the epoch, always the caller's `now`,
// never SQL now(); INT64_MIN/INT64_MAX stand for the infinite past/future. Ids, hashes,
// subjects and every caller-supplied string are bytea, so any byte string round-trips
// exactly. Each expiring row carries drop_after (indexed): readers hide rows once
// now > drop_after, and the reaper deletes them.
//
// Migrations: NEVER edit a released one; append a new version. A database whose schema
// version is newer than kSchemaVersion is refused before anything is written.
#ifndef TA_STORAGE_POSTGRES_SCHEMA_H_
#define TA_STORAGE_POSTGRES_SCHEMA_H_

#include <cstdint>

#include "absl/status/status.h"
#include "storage/postgres/pg_conn.h"
#include "storage/postgres/postgres_store.h"

namespace ta::storage::pg {

inline constexpr int64_t kSchemaVersion = kPostgresSchemaVersion;

// Advisory lock keys (one 64-bit space per database, shared with any other application
// there): the migration lock, and the reaper's. Subject locks hash the subject (SubjectLockKey).
inline constexpr int64_t kMigrationLockKey = 0x74612d6d69677261;  // "ta-migra"
inline constexpr int64_t kReaperLockKey = 0x74612d7265617065;     // "ta-reape"

// Applies the missing migrations in one transaction under kMigrationLockKey, so replicas
// starting together migrate once. FAILED_PRECONDITION "store_format_too_new" (nothing
// written) when the database is newer than this binary.
absl::Status Migrate(Connection& conn);

// Writes a schema version as the store's meta record (tests use it to fake a newer database).
absl::Status SetSchemaVersionForTesting(Connection& conn, int64_t version);

// Every statement, indexed for Connection's prepared-statement cache.
namespace sql {
extern const Statement kLockSubjectShared, kLockSubjectExclusive, kTryReaperLock, kReaperLock;
extern const Statement kGetFamily, kGetFamilyForRotate, kInsertFamily, kRevokeFamily;
extern const Statement kGetRefresh, kGetRefreshPair, kInsertRefresh, kRotate;
extern const Statement kDenyJti, kIsJtiDenied, kRecordProofJti, kRecordProofJtiUnsynced;
extern const Statement kReapProofJtis, kAppendRevocations;
extern const Statement kGetSubject, kSubjectCutoff, kUpsertSubject;
extern const Statement kListFamilies;
extern const Statement kReapFamilies, kReapRefresh, kReapDenylist, kReapSubjects;
extern const Statement kTableStats;
extern const Statement kCountFamilies, kCountRefresh, kCountDenylist, kCountSubjects;
extern const Statement kExtendAccess, kAppendRevocation, kReadRevocations, kReapRevocations;
extern const Statement kSubjectKills, kCountRevocations;
extern const Statement kGetKeyRing, kInsertKeyRing, kUpdateKeyRing;
extern const Statement kClockNow;
}  // namespace sql

}  // namespace ta::storage::pg

#endif  // TA_STORAGE_POSTGRES_SCHEMA_H_

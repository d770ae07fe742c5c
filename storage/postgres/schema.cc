#include "storage/postgres/schema.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "base/status_macros.h"

namespace ta::storage::pg {
namespace {

struct Migration {
  int64_t version;
  const char* sql;
};

// Version 1: the initial schema. Never edit; append.
//
// Facts stored twice, on purpose (issue 24): ta_denylist (jti -> expires_at, the O(1) lookup
// by jti) and the kind-1 (jti) rows of ta_revocations (the ordered feed for followers) hold
// the same facts. DenyJti writes both in one transaction (kDenyJti + kAppendRevocation) and
// the reaper drops both past the same instant (expires_at = live_until, one purge margin);
// tests/storage/conformance_denylist_test.cc checks they match after a restart and a purge.
constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE ta_meta (name text PRIMARY KEY, value bigint NOT NULL);
CREATE TABLE ta_families (
  id bytea PRIMARY KEY,
  subject bytea NOT NULL,
  client_id bytea NOT NULL,
  audience bytea NOT NULL,          -- string list, see rows.h
  scope bytea NOT NULL,
  metadata bytea NOT NULL,          -- string list of key, value, key, value...
  issued_by bytea NOT NULL,
  extra_claims_json bytea NOT NULL,
  created_at bigint NOT NULL,
  expires_at bigint NOT NULL,
  generation bigint NOT NULL,
  rotated_at bigint NOT NULL,
  revoked boolean NOT NULL,
  revoked_at bigint NOT NULL,
  revoke_reason bytea NOT NULL,
  revoked_by bytea NOT NULL,
  drop_after bigint NOT NULL,
  access_live_until bigint NOT NULL);
CREATE INDEX ta_families_by_subject ON ta_families (subject, created_at DESC, id);
CREATE INDEX ta_families_drop ON ta_families (drop_after);
CREATE TABLE ta_refresh (
  family_id bytea NOT NULL,
  generation bigint NOT NULL,
  secret_hash bytea NOT NULL,
  scope bytea NOT NULL,
  issued_at bigint NOT NULL,
  expires_at bigint NOT NULL,
  spent_at bigint,
  drop_after bigint NOT NULL,
  PRIMARY KEY (family_id, generation));
CREATE INDEX ta_refresh_drop ON ta_refresh (drop_after);
CREATE TABLE ta_denylist (jti bytea PRIMARY KEY, expires_at bigint NOT NULL);
CREATE INDEX ta_denylist_drop ON ta_denylist (expires_at);
CREATE TABLE ta_subjects (
  subject bytea PRIMARY KEY,
  not_before bigint NOT NULL,
  block_until bigint NOT NULL,
  reason bytea NOT NULL,
  revoked_by bytea NOT NULL,
  updated_at bigint NOT NULL,
  expires_at bigint NOT NULL);
CREATE INDEX ta_subjects_drop ON ta_subjects (expires_at);
-- The revocation log: seq from ta_meta 'revocation_seq', updated in the appending
-- transaction, so numbers are gapless and committed in order (the row lock).
CREATE TABLE ta_revocations (
  seq bigint PRIMARY KEY,
  kind smallint NOT NULL,
  id bytea NOT NULL,
  revoked_at bigint NOT NULL,
  live_until bigint NOT NULL);
CREATE INDEX ta_revocations_drop ON ta_revocations (live_until);
INSERT INTO ta_meta VALUES ('revocation_seq', 0);
)sql"},
    // Version 2: the shared key ring (one row, sealed by the servers; issue 14).
    {2, R"sql(
CREATE TABLE ta_keyring (
  id smallint PRIMARY KEY CHECK (id = 1),
  version bigint NOT NULL,
  document bytea NOT NULL);
)sql"},
    // Version 3 (issue 26): the families' binding (RFC 7800 cnf; '' for a bearer session)
    // and the DPoP replay cache shared by replicas (rows live until keep_until; the reaper
    // drops them a purge margin later).
    {3, R"sql(
ALTER TABLE ta_families ADD COLUMN cnf_jkt bytea NOT NULL DEFAULT '',
                        ADD COLUMN cnf_x5t_s256 bytea NOT NULL DEFAULT '';
CREATE TABLE ta_dpop_jtis (replay_key bytea PRIMARY KEY, keep_until bigint NOT NULL);
CREATE INDEX ta_dpop_jtis_drop ON ta_dpop_jtis (keep_until);
)sql"},
};

absl::Status TooNew(int64_t version) {
  return ta::Error(absl::StatusCode::kFailedPrecondition, "store_format_too_new",
                   absl::StrCat("token store: the PostgreSQL database has schema version ",
                                version, ", but this binary only knows versions up to ",
                                kSchemaVersion, "; upgrade the binary"));
}

// 0 for a database without our tables.
absl::StatusOr<int64_t> StoredVersion(Connection& conn) {
  ASSIGN_OR_RETURN(auto exists, conn.QueryText("SELECT to_regclass('ta_meta') IS NOT NULL"));
  if (exists.empty() || exists[0][0] != "t") return 0;
  ASSIGN_OR_RETURN(auto rows,
                   conn.QueryText("SELECT value FROM ta_meta WHERE name = 'schema_version'"));
  int64_t version = 0;
  if (rows.empty() || !absl::SimpleAtoi(rows[0][0], &version)) {
    return ta::Error(absl::StatusCode::kDataLoss, "store_corrupt",
                     "token store: ta_meta has no readable schema_version");
  }
  return version;
}

absl::Status MigrateLocked(Connection& conn) {
  ASSIGN_OR_RETURN(int64_t version, StoredVersion(conn));
  if (version > kSchemaVersion) return TooNew(version);
  for (const Migration& m : kMigrations) {
    if (m.version <= version) continue;
    RETURN_IF_ERROR(conn.Command(m.sql));
    RETURN_IF_ERROR(SetSchemaVersionForTesting(conn, m.version));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status SetSchemaVersionForTesting(Connection& conn, int64_t version) {
  // A constant of ours, not caller data: safe to put in the text.
  return conn.Command(absl::StrCat("INSERT INTO ta_meta VALUES ('schema_version', ", version,
                                   ") ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value")
                          .c_str());
}

absl::Status Migrate(Connection& conn) {
  RETURN_IF_ERROR(conn.Command("BEGIN"));
  absl::Status s = conn.Command(
      absl::StrCat("SELECT pg_advisory_xact_lock(", kMigrationLockKey, ")").c_str());
  if (s.ok()) s = MigrateLocked(conn);
  if (s.ok()) return conn.Command("COMMIT");
  conn.Command("ROLLBACK").IgnoreError();  // the status that matters is s
  return s;
}

namespace sql {

#define TA_FAMILY_COLUMNS                                                                       \
  "f.id, f.subject, f.client_id, f.audience, f.scope, f.metadata, f.issued_by, "                \
  "f.extra_claims_json, f.created_at, f.expires_at, f.generation, f.rotated_at, f.revoked, "    \
  "f.revoked_at, f.revoke_reason, f.revoked_by, f.drop_after, f.access_live_until, f.cnf_jkt, " \
  "f.cnf_x5t_s256"
#define TA_REFRESH_COLUMNS                                                                     \
  "r.family_id, r.generation, r.secret_hash, r.scope, r.issued_at, r.expires_at, r.spent_at, " \
  "r.drop_after"

const Statement kLockSubjectShared{0, "ta_lock_subject_shared",
                                   "SELECT pg_advisory_xact_lock_shared($1::int8)"};
const Statement kLockSubjectExclusive{1, "ta_lock_subject_exclusive",
                                      "SELECT pg_advisory_xact_lock($1::int8)"};
const Statement kTryReaperLock{2, "ta_try_reaper_lock",
                               "SELECT pg_try_advisory_xact_lock($1::int8)"};
const Statement kReaperLock{26, "ta_reaper_lock",
                            "SELECT true FROM (SELECT pg_advisory_xact_lock($1::int8)) AS locked"};
const Statement kGetFamily{3, "ta_get_family",
                           "SELECT " TA_FAMILY_COLUMNS " FROM ta_families f WHERE f.id = $1::bytea"};
// The subject's cutoff and block ride along; the caller holds the subject's lock, so they
// cannot change before commit. Only the family row is locked.
const Statement kGetFamilyForRotate{
    4, "ta_get_family_for_rotate",
    "SELECT " TA_FAMILY_COLUMNS ", s.not_before, s.block_until, s.expires_at "
    "FROM ta_families f LEFT JOIN ta_subjects s ON s.subject = f.subject "
    "WHERE f.id = $1::bytea FOR UPDATE OF f"};
const Statement kInsertFamily{
    5, "ta_insert_family",
    "INSERT INTO ta_families VALUES ($1::bytea, $2::bytea, $3::bytea, $4::bytea, $5::bytea, "
    "$6::bytea, $7::bytea, $8::bytea, $9::int8, $10::int8, $11::int8, $12::int8, $13::bool, "
    "$14::int8, $15::bytea, $16::bytea, $17::int8, $18::int8, $19::bytea, $20::bytea) "
    "ON CONFLICT (id) DO NOTHING"};
const Statement kRevokeFamily{
    6, "ta_revoke_family",
    "UPDATE ta_families f SET revoked = true, revoked_at = $2::int8, revoke_reason = $3::bytea, "
    "revoked_by = $4::bytea WHERE f.id = $1::bytea AND NOT f.revoked AND f.drop_after >= $2::int8 "
    "RETURNING " TA_FAMILY_COLUMNS};
const Statement kGetRefresh{7, "ta_get_refresh",
                            "SELECT " TA_REFRESH_COLUMNS " FROM ta_refresh r "
                            "WHERE r.family_id = $1::bytea AND r.generation = $2::int8"};
const Statement kGetRefreshPair{
    8, "ta_get_refresh_pair",
    "SELECT " TA_REFRESH_COLUMNS " FROM ta_refresh r "
    "WHERE r.family_id = $1::bytea AND r.generation IN ($2::int8, $3::int8)"};
const Statement kInsertRefresh{
    9, "ta_insert_refresh",
    "INSERT INTO ta_refresh VALUES ($1::bytea, $2::int8, $3::bytea, $4::bytea, $5::int8, "
    "$6::int8, NULL, $7::int8)"};
// The spend, the successor and the family's new generation in one statement; the family
// update is a compare-and-set on the generation, so it can never advance twice.
const Statement kRotate{
    10, "ta_rotate",
    "WITH spent AS (UPDATE ta_refresh SET spent_at = $3::int8 "
    "  WHERE family_id = $1::bytea AND generation = $2::int8), "
    "successor AS (INSERT INTO ta_refresh VALUES ($1::bytea, $4::int8, $5::bytea, $6::bytea, "
    "  $7::int8, $8::int8, NULL, $9::int8)) "
    "UPDATE ta_families SET generation = $4::int8, rotated_at = $3::int8, "
    "access_live_until = GREATEST(access_live_until, $10::int8) "
    "WHERE id = $1::bytea AND generation = $2::int8 AND NOT revoked RETURNING access_live_until"};
const Statement kDenyJti{11, "ta_deny_jti",
                         "INSERT INTO ta_denylist VALUES ($1::bytea, $2::int8) "
                         "ON CONFLICT (jti) DO UPDATE SET expires_at = "
                         "GREATEST(ta_denylist.expires_at, EXCLUDED.expires_at) "
                         "RETURNING expires_at"};
const Statement kIsJtiDenied{12, "ta_is_jti_denied",
                             "SELECT expires_at FROM ta_denylist WHERE jti = $1::bytea"};
const Statement kGetSubject{
    13, "ta_get_subject",
    "SELECT subject, not_before, block_until, reason, revoked_by, updated_at, expires_at "
    "FROM ta_subjects WHERE subject = $1::bytea"};
// $2: the cutoff so far; $3: also cover the newest stored family. Returns the cutoff and
// the latest expires_at of the families it covers (NULL when none).
const Statement kSubjectCutoff{
    14, "ta_subject_cutoff",
    "WITH c AS (SELECT GREATEST($2::int8, CASE WHEN $3::bool THEN "
    "  (SELECT max(created_at) FROM ta_families WHERE subject = $1::bytea) END) AS cutoff) "
    "SELECT c.cutoff, (SELECT max(expires_at) FROM ta_families "
    "  WHERE subject = $1::bytea AND created_at <= c.cutoff) FROM c"};
const Statement kUpsertSubject{
    15, "ta_upsert_subject",
    "INSERT INTO ta_subjects VALUES ($1::bytea, $2::int8, $3::int8, $4::bytea, $5::bytea, "
    "$6::int8, $7::int8) ON CONFLICT (subject) DO UPDATE SET not_before = EXCLUDED.not_before, "
    "block_until = EXCLUDED.block_until, reason = EXCLUDED.reason, "
    "revoked_by = EXCLUDED.revoked_by, updated_at = EXCLUDED.updated_at, "
    "expires_at = EXCLUDED.expires_at"};
// Keyset pagination: $4/$5 = created_at/id of the last entry returned (INT64_MAX/'' first).
const Statement kListFamilies{
    16, "ta_list_families",
    "SELECT " TA_FAMILY_COLUMNS " FROM ta_families f "
    "WHERE f.subject = $1::bytea AND f.drop_after >= $2::int8 "
    "AND ($3::bool OR (NOT f.revoked AND f.expires_at > $2::int8)) "
    "AND f.created_at <= $4::int8 AND (f.created_at < $4::int8 OR f.id > $5::bytea) "
    "ORDER BY f.created_at DESC, f.id LIMIT $6::int8"};
// Reaper batches: $1 = now, $2 = batch size. Each returns the number of rows deleted.
const Statement kReapFamilies{
    17, "ta_reap_families",
    "WITH gone AS (DELETE FROM ta_families WHERE id IN (SELECT id FROM ta_families "
    "WHERE drop_after < $1::int8 LIMIT $2::int8) RETURNING 1) SELECT count(*) FROM gone"};
const Statement kReapRefresh{
    18, "ta_reap_refresh",
    "WITH gone AS (DELETE FROM ta_refresh WHERE (family_id, generation) IN "
    "(SELECT family_id, generation FROM ta_refresh WHERE drop_after < $1::int8 LIMIT $2::int8) "
    "RETURNING 1) SELECT count(*) FROM gone"};
const Statement kReapDenylist{
    19, "ta_reap_denylist",
    "WITH gone AS (DELETE FROM ta_denylist WHERE jti IN (SELECT jti FROM ta_denylist "
    "WHERE expires_at < $1::int8 LIMIT $2::int8) RETURNING 1) SELECT count(*) FROM gone"};
const Statement kReapSubjects{
    20, "ta_reap_subjects",
    "WITH gone AS (DELETE FROM ta_subjects WHERE subject IN (SELECT subject FROM ta_subjects "
    "WHERE expires_at < $1::int8 LIMIT $2::int8) RETURNING 1) SELECT count(*) FROM gone"};
// Per table: the planner's row estimate (reltuples, kept by autovacuum/ANALYZE; -1 when
// never analysed), an exact count when that estimate is small, and the bytes on disk
// (table, indexes and TOAST).
const Statement kTableStats{
    21, "ta_table_stats",
    "SELECT c.reltuples::int8, pg_total_relation_size(c.oid) FROM pg_class c "
    "WHERE c.oid = to_regclass($1::text)"};

const Statement kCountFamilies{22, "ta_count_families", "SELECT count(*) FROM ta_families"};
const Statement kCountRefresh{23, "ta_count_refresh", "SELECT count(*) FROM ta_refresh"};
const Statement kCountDenylist{24, "ta_count_denylist", "SELECT count(*) FROM ta_denylist"};
const Statement kCountSubjects{25, "ta_count_subjects", "SELECT count(*) FROM ta_subjects"};

const Statement kExtendAccess{
    27, "ta_extend_access",
    "UPDATE ta_families SET access_live_until = $2::int8 "
    "WHERE id = $1::bytea AND access_live_until < $2::int8"};
// $1 kind, $2 id, $3 revoked_at, $4 live_until; returns the seq.
const Statement kAppendRevocation{
    28, "ta_append_revocation",
    "WITH s AS (UPDATE ta_meta SET value = value + 1 WHERE name = 'revocation_seq' "
    "RETURNING value) INSERT INTO ta_revocations SELECT s.value, ($1::int8)::int2, $2::bytea, "
    "$3::int8, $4::int8 FROM s RETURNING seq"};
const Statement kReadRevocations{
    29, "ta_read_revocations",
    "SELECT seq, kind::int8, id, revoked_at, live_until FROM ta_revocations "
    "WHERE seq > $1::int8 AND live_until > $2::int8 ORDER BY seq LIMIT $3::int8"};
const Statement kReapRevocations{
    30, "ta_reap_revocations",
    "WITH gone AS (DELETE FROM ta_revocations WHERE seq IN (SELECT seq FROM ta_revocations "
    "WHERE live_until < $1::int8 LIMIT $2::int8) RETURNING 1) SELECT count(*) FROM gone"};
// The families of subject $1 a cutoff moved from $3 to $2 newly kills (not revoked before).
const Statement kSubjectKills{
    31, "ta_subject_kills",
    "SELECT " TA_FAMILY_COLUMNS " FROM ta_families f WHERE f.subject = $1::bytea "
    "AND f.created_at <= $2::int8 AND f.created_at > $3::int8 AND NOT f.revoked"};
const Statement kCountRevocations{32, "ta_count_revocations", "SELECT count(*) FROM ta_revocations"};
const Statement kGetKeyRing{
    33, "ta_get_keyring",
    "SELECT version, CASE WHEN version > $1::int8 THEN document ELSE ''::bytea END "
    "FROM ta_keyring WHERE id = 1"};
const Statement kInsertKeyRing{34, "ta_insert_keyring",
                               "INSERT INTO ta_keyring VALUES (1, 1, $1::bytea) "
                               "ON CONFLICT (id) DO NOTHING"};
const Statement kUpdateKeyRing{35, "ta_update_keyring",
                               "UPDATE ta_keyring SET version = version + 1, document = $2::bytea "
                               "WHERE id = 1 AND version = $1::int8"};

// $1 replay key, $2 keep_until, $3 now. One row back when newly recorded: absent, or
// present but expired (then overwritten). Concurrent inserts of one key serialise on its
// index entry, and each re-checks the WHERE against the committed row: one wins.
const Statement kRecordProofJti{
    36, "ta_record_proof_jti",
    "INSERT INTO ta_dpop_jtis VALUES ($1::bytea, $2::int8) ON CONFLICT (replay_key) DO UPDATE "
    "SET keep_until = EXCLUDED.keep_until WHERE ta_dpop_jtis.keep_until < $3::int8 RETURNING 1"};
// kRecordProofJti committed with synchronous_commit off (TokenStore::RecordProofJti): the
// statement is its own transaction, and set_config(..., true) lasts until its commit, which
// then does not wait for the WAL flush. One round trip, as kRecordProofJti.
const Statement kRecordProofJtiUnsynced{
    38, "ta_record_proof_jti_unsynced",
    "INSERT INTO ta_dpop_jtis SELECT $1::bytea, $2::int8 "
    "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS unsynced "
    "ON CONFLICT (replay_key) DO UPDATE "
    "SET keep_until = EXCLUDED.keep_until WHERE ta_dpop_jtis.keep_until < $3::int8 RETURNING 1"};
const Statement kReapProofJtis{
    37, "ta_reap_proof_jtis",
    "WITH gone AS (DELETE FROM ta_dpop_jtis WHERE replay_key IN (SELECT replay_key FROM "
    "ta_dpop_jtis WHERE keep_until < $1::int8 LIMIT $2::int8) RETURNING 1) "
    "SELECT count(*) FROM gone"};

// Appends a batch in one statement (UpdateSubject's kills): $1 kinds, $2 ids, $3 revoked_at,
// $4 live_until, parallel arrays of one length; the rows get consecutive seqs in array order.
// The counter's row lock is taken once, at the end of the transaction, rather than once per
// entry from the first append on (a RevokeSubject killing 100 families held it for 100
// round trips, and racing ones queued past the statement timeout). Returns the seqs.
const Statement kAppendRevocations{
    43, "ta_append_revocations",
    "WITH s AS (UPDATE ta_meta SET value = value + cardinality($1::int8[]) "
    "WHERE name = 'revocation_seq' RETURNING value) "
    "INSERT INTO ta_revocations SELECT s.value - cardinality($1::int8[]) + u.n, u.kind::int2, "
    "u.id, u.revoked_at, u.live_until FROM s, unnest($1::int8[], $2::bytea[], $3::int8[], "
    "$4::int8[]) WITH ORDINALITY AS u(kind, id, revoked_at, live_until, n) RETURNING seq"};

// The database server's clock in microseconds since the epoch (clock_timestamp(): the time
// of the call, not of the transaction's start). Index 44 leaves room below for others.
const Statement kClockNow{44, "ta_clock_now",
                          "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::int8"};

#undef TA_FAMILY_COLUMNS
#undef TA_REFRESH_COLUMNS

}  // namespace sql
}  // namespace ta::storage::pg

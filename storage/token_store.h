// TokenStore: the persistence interface of token-authority (DESIGN §3, §5, §6).
//
// The domain core (server/core) talks to storage only through this interface, so its tests
// can run on an in-memory fake and on the RocksDB store alike. The records here are plain
// C++ values; the on-disk encoding lives in storage/codec.h and never leaks out.
//
// The store holds no raw token, refresh secret or private key: refresh records carry a
// SHA-256 of the secret, the denylist carries jtis.
//
// Errors: every method returns absl::Status / StatusOr. Each non-OK status carries a reason
// (ta::ReasonOf): "store_unavailable" (UNAVAILABLE: I/O error, read-only or full disk; retry
// later), "store_corrupt" (DATA_LOSS: a stored value could not be decoded), "not_found"
// (NOT_FOUND), "already_exists" (ALREADY_EXISTS), "refresh_token_expired" (NOT_FOUND from
// GetRefresh, see there), "invalid_argument:<field>".
//
// Thread-safety: implementations are thread-safe; every method may be called concurrently.
#ifndef TA_STORAGE_TOKEN_STORE_H_
#define TA_STORAGE_TOKEN_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/revocation.h"

namespace ta::storage {

// One login session: the chain of refresh tokens issued from one IssueTokens call.
struct FamilyRecord {
  std::string family_id;                        // 16 raw random bytes
  std::string subject;                          // <= 256 bytes
  std::string client_id;
  std::vector<std::string> audience;
  std::string scope;                            // scope granted at issue: the ceiling for narrowing
  std::map<std::string, std::string> metadata;  // device, ip, user agent... caller-supplied
  std::string issued_by;                        // caller name that created it
  std::string extra_claims_json;  // "" or a JSON object: access-token claims kept across refresh
  absl::Time created_at;                        // microsecond precision is kept
  absl::Time expires_at;                        // absolute lifetime
  uint64_t generation = 0;                      // generation of the current refresh token
  absl::Time rotated_at;                        // when `generation` became current (reuse grace)
  bool revoked = false;
  absl::Time revoked_at;
  std::string revoke_reason;  // e.g. "refresh_token_reuse", "admin", "logout"
  std::string revoked_by;
  // The latest instant any access token minted for this family can still verify (its exp +
  // the verification leeway), set by the caller whenever it mints (CreateFamily, Rotate). A
  // revocation of the family matters until then (RevocationEntry::live_until). InfinitePast
  // in records written before it existed: the store then assumes expires_at + 5 min (the
  // largest leeway), since access tokens never outlive their family.
  absl::Time access_live_until = absl::InfinitePast();
  // What the session is bound to (DESIGN §13, RFC 7800 `cnf`), at most one set; both empty for
  // a bearer session. Written once by CreateFamily, never changed.
  std::string cnf_jkt;       // RFC 7638 thumbprint of the client's DPoP key (RFC 9449)
  std::string cnf_x5t_s256;  // SHA-256 thumbprint of the client certificate (RFC 8705)
};

// One refresh token generation of a family; kept after it is spent, for reuse detection.
struct RefreshRecord {
  std::string family_id;
  uint64_t generation = 0;
  std::string secret_hash;  // SHA-256 of the token's secret (the store never sees the secret)
  std::string scope;        // scope of this generation (may be narrower than the family's)
  absl::Time issued_at;
  absl::Time expires_at;  // idle expiry, already capped by the family's expiry by the caller
  std::optional<absl::Time> spent_at;  // set when rotated away
};

// Per-subject revocation cutoff and ban (DESIGN §5 RevokeSubject). Written only through
// TokenStore::UpdateSubject, which merges atomically.
struct SubjectRecord {
  std::string subject;
  absl::Time not_before = absl::InfinitePast();   // tokens/families created before this are dead
  absl::Time block_until = absl::InfinitePast();  // no new family / refresh until then
  std::string reason, revoked_by;
  absl::Time updated_at;
  // When the record stops mattering; dropped after. Computed by the store (UpdateSubject).
  absl::Time expires_at;
};

// One RevokeSubject, merged into the stored record by TokenStore::UpdateSubject.
struct SubjectUpdate {
  std::string subject;
  // The cutoff: families created at or before it are dead. nullopt means "now", and then the
  // cutoff also covers every family of the subject already stored when the update commits,
  // even one whose created_at is a little after `now` (a concurrent IssueTokens whose clock
  // read came later, or another replica's clock running ahead). Must not be after `now`.
  std::optional<absl::Time> not_before;
  // nullopt keeps the stored block; a value replaces it (the past lifts a ban).
  std::optional<absl::Time> block_until;
  std::string reason, revoked_by;
  absl::Time now;
  // How long after a killed family's expires_at one of its access tokens can still be
  // accepted (the verification leeway). The record lives at least that long past the last
  // family it kills, whatever lifetimes are configured later.
  absl::Duration token_leeway = absl::ZeroDuration();
};

// A DPoP proof's entry in the replay cache (RFC 9449 §11.1; see RecordProofJti), carried by
// the write the proof authorises (CreateFamily, RotateRequest) so that checking it, recording
// it and the write itself are one atomic, synced commit. Live while now <= keep_until.
struct ProofReplay {
  std::string key;        // token/dpop.h DpopProof::replay_key; 1..kMaxReplayKeyBytes bytes
  absl::Time keep_until;  // the proof's iat + max age (the caller computes it)
};

// The reason of CreateFamily's refusal when its ProofReplay key is live (ALREADY_EXISTS).
inline constexpr char kProofReplayedReason[] = "proof_replayed";

enum class RotateResult {
  kRotated,            // presented token was current: spent, successor written
  kReplayWithinGrace,  // presented token is the immediate predecessor, within grace: no write
  kReuseDetected,      // presented token was spent earlier: the family is now revoked
  kFamilyRevoked,      // family was already revoked (before this call)
  kFamilyExpired,      // now >= family.expires_at
  kTokenExpired,       // presented record's idle expiry passed; the family is NOT revoked
  kNotFound,           // family or presented generation unknown (or from the future)
  kSubjectRevoked,     // the family was created at or before its subject's cutoff
  kSubjectBlocked,     // now < the subject's block_until: no refresh while banned
  kProofReplayed,      // the request's ProofReplay key is live: nothing written, nothing spent
};

struct RotateRequest {
  std::string family_id;
  // The family's subject (from GetFamily; a family's subject never changes). The store checks
  // the subject's cutoff and block in the same critical section as the rotation, so a refresh
  // never succeeds after a RevokeSubject that kills or blocks the family was acknowledged.
  // A subject that does not match the stored family's is INVALID_ARGUMENT.
  std::string subject;
  // Generation of the presented token (its secret was already checked by the caller against
  // GetRefresh's hash).
  uint64_t generation = 0;
  absl::Time now;
  absl::Duration grace = absl::ZeroDuration();  // reuse grace window; zero = off
  // Prepared by the caller: generation = presented + 1, secret_hash, scope, issued_at = now,
  // expires_at. The store overwrites family_id and generation with the right values.
  RefreshRecord successor;
  // exp + leeway of the access token minted with the successor (or, on a replay, with the
  // successor returned again); on kRotated and kReplayWithinGrace the family's
  // access_live_until becomes the later of it and the stored one (a replay writes only then).
  absl::Time access_live_until = absl::InfinitePast();
  // The DPoP proof presented with the token, when the family is bound (see Rotate).
  std::optional<ProofReplay> proof_replay;
};

struct RotateOutcome {
  RotateResult result = RotateResult::kNotFound;
  FamilyRecord family;  // the family as it stands after the operation (when found)
  // kRotated: the successor written; kReplayWithinGrace: the already-current successor record.
  RefreshRecord current;
};

struct ListFamiliesQuery {
  std::string subject;
  int page_size = 50;  // clamped to [1, 1000]; <= 0 means 50
  std::string page_token;  // opaque, from FamilyPage::next_page_token; empty = first page
  // false: only live sessions (neither revoked nor expired). true: also revoked and expired
  // families that are still retained.
  bool include_revoked = false;
  absl::Time now;
};

struct FamilyPage {
  std::vector<FamilyRecord> families;  // newest created_at first
  std::string next_page_token;         // empty when this is the last page
};

// Estimates, not exact counts: the RocksDB store reports "rocksdb.estimate-num-keys" per column
// family (expired records not yet compacted away, and overwritten keys until compaction, may
// be counted) and disk_bytes as the size of its SST and WAL files (MANIFEST, OPTIONS and
// info logs not included).
struct StoreStats {
  uint64_t families = 0, refresh_records = 0, denied_jtis = 0, subjects = 0;
  uint64_t disk_bytes = 0;
};

// One entry of the revocation log (DESIGN §10): a revocation that kills access tokens, kept
// while any token it kills can still verify. The log is what the in-memory revocation view
// (token/revocation_view.h) is built from and kept current by, so introspecting an access
// token needs no store read. Defined in base/revocation.h, below both this store and the view.
using RevocationEntry = ::ta::RevocationEntry;

// Receives every entry the store appended, after its commit and before the call that
// appended it returns (so a server's own revocations are in its view before they are
// acknowledged). Must be quick and must not call back into the store. A store no other
// process writes (RocksDB) calls it in seq order, one entry at a time.
using RevocationListener = std::function<void(const RevocationEntry&)>;

// The shared key ring as the store keeps it (DESIGN §11): a document the server sealed
// (server/token/key_ring.h), opaque here, and its version. Version 0: none stored.
struct KeyRingBlob {
  uint64_t version = 0;
  std::string document;  // empty when the version is not newer than asked for
};
inline constexpr size_t kMaxKeyRingBytes = 1 << 20;
// The longest key TokenStore::RecordProofJti takes (DPoP replay keys are 32-byte hashes).
inline constexpr size_t kMaxReplayKeyBytes = 256;

// An online backup of the store (TokenStore::CreateBackup).
struct BackupRequest {
  // Absolute path of the backup directory on this machine. Created (mode 0700) when absent;
  // its parent must exist. The same directory accumulates backups: each one after the first
  // copies only the files earlier ones do not already hold (incremental).
  std::string dir;
  // Once the new backup is verified, older backups of `dir` beyond the newest keep_last are
  // deleted (files still shared with a kept one stay). 0: keep all.
  uint32_t keep_last = 0;
};

struct BackupResult {
  uint32_t backup_id = 0;  // increasing within one backup directory
  absl::Time created_at;
  uint64_t size_bytes = 0;  // every file of this backup, shared ones included
  uint32_t file_count = 0;
  uint32_t new_files = 0;  // copied by this call; the others were already in `dir`
  uint64_t new_bytes = 0;
  uint32_t backups_kept = 0;  // backups in `dir` afterwards, this one included
  std::string engine_dir;  // where the engine's files went (inside BackupRequest::dir)
};

class TokenStore {
 public:
  virtual ~TokenStore() = default;

  // The revocation log. Appended in the same atomic write as the revocation itself by:
  // DenyJti (one kJti entry), RevokeFamily and Rotate's reuse detection (one kFamily entry,
  // only when the family was not revoked before), and UpdateSubject (one kSubject entry per
  // family the new cutoff kills whose access_live_until is still ahead, and that was neither
  // revoked nor killed before).
  //
  // Set the listener once, before the store is used concurrently.
  virtual void SetRevocationListener(RevocationListener listener) = 0;
  // Entries with seq > after_seq and live_until > now, in seq order, at most `limit` (>= 1).
  // Entries become readable in commit order on one store handle; across processes sharing a
  // store (replicas) an entry may become visible after one with a higher seq (see the
  // follower's overlap window in DESIGN §10).
  virtual absl::StatusOr<std::vector<RevocationEntry>> ReadRevocations(uint64_t after_seq,
                                                                       absl::Time now,
                                                                       size_t limit) = 0;

  // Writes the family, its subject-index entry and the first refresh record in one synced
  // batch, ordered against UpdateSubject of the same subject (linearizable: either the update
  // sees the family and its cutoff covers it, or the creation sees the update):
  // FAILED_PRECONDITION "subject_blocked" if family.created_at < the subject's block_until;
  // ABORTED "subject_revoked" if family.created_at <= the subject's cutoff (a revocation that
  // committed first would kill the family on arrival; the caller may retry with a fresh time).
  // ALREADY_EXISTS if the id is taken; INVALID_ARGUMENT if the id is not 16 bytes, the subject
  // is empty or longer than 256 bytes, or `first` is not generation family.generation of the
  // same family. Nothing is written on any error.
  //
  // `proof_replay` (the DPoP proof that binds the family; nullopt for none) is checked first,
  // with the store's clock taken as family.created_at, in the same critical section
  // (RocksDB) or transaction (PostgreSQL) as the creation: if its key is live (see
  // RecordProofJti) nothing is written and the call fails ALREADY_EXISTS
  // kProofReplayedReason; otherwise the key is recorded in the same synced batch as the
  // family, and only if the family is (on any error above nothing is recorded, so a caller
  // may retry with the same proof after "subject_revoked"). Of concurrent CreateFamily,
  // Rotate and RecordProofJti calls carrying one live key, exactly one succeeds.
  // INVALID_ARGUMENT "invalid_argument:replay_key" for an empty or over-long key.
  virtual absl::Status CreateFamily(const FamilyRecord& family, const RefreshRecord& first,
                                    const std::optional<ProofReplay>& proof_replay) = 0;

  // NOT_FOUND when absent, or when past expires_at + family_retention. Within the retention
  // window the record is returned, so the caller can tell "family_expired" from unknown.
  // An id that is not 16 bytes is simply unknown (NOT_FOUND), here and in every other read.
  virtual absl::StatusOr<FamilyRecord> GetFamily(absl::string_view family_id, absl::Time now) = 0;

  // NOT_FOUND ("not_found") when absent or past expires_at + refresh_retention. An expired
  // record is still returned within the retention window: the caller checks the token's
  // secret against secret_hash first and only then tells "expired" from "invalid", so a
  // forged secret learns nothing about which generations exist.
  virtual absl::StatusOr<RefreshRecord> GetRefresh(absl::string_view family_id,
                                                   uint64_t generation, absl::Time now) = 0;

  // Atomic per family and ordered against UpdateSubject of the family's subject (DESIGN §3
  // steps 2-6); checks in this order: request.proof_replay's key live -> kProofReplayed
  // (nothing written: the token is not spent, nor the family revoked, even when the presented
  // generation is an old one); family absent -> kNotFound; revoked -> kFamilyRevoked;
  // now >= expires_at -> kFamilyExpired; created_at <= subject cutoff -> kSubjectRevoked;
  // now < subject block_until -> kSubjectBlocked; presented record absent -> kNotFound;
  // now >= its expires_at -> kTokenExpired; current -> kRotated (one synced batch);
  // immediate predecessor within grace -> kReplayWithinGrace (writes nothing but a later
  // access_live_until, see RotateRequest); older -> kReuseDetected
  // (family revoked, reason "refresh_token_reuse", synced); newer -> kNotFound.
  //
  // Past the first check, request.proof_replay's key (when set) is recorded in the same
  // synced batch or transaction as whatever the outcome writes, and on its own (one synced
  // write) for the outcomes that write nothing else (kNotFound, kFamilyRevoked,
  // kFamilyExpired, kSubject*, kTokenExpired, a replay within grace that extends nothing):
  // a proof that reached the store is spent whatever the answer, as a separate
  // RecordProofJti before the rotation would have spent it. The one exception: a family_id
  // that is not 16 bytes is kNotFound before anything is checked or recorded.
  // Of concurrent calls (CreateFamily, Rotate, RecordProofJti) with one live key, exactly one
  // gets past the check. INVALID_ARGUMENT "invalid_argument:replay_key" for an empty or
  // over-long key.
  virtual absl::StatusOr<RotateOutcome> Rotate(const RotateRequest& request) = 0;

  // Marks the family revoked (synced). true if it changed anything, false if already revoked.
  // NOT_FOUND if absent (same visibility rule as GetFamily).
  virtual absl::StatusOr<bool> RevokeFamily(absl::string_view family_id, absl::string_view reason,
                                            absl::string_view revoked_by, absl::Time now) = 0;

  // Synced; the entry lives until the token's exp. Idempotent; a later call never shortens it:
  // the later exp stands (denylist and log alike). INVALID_ARGUMENT: empty jti or > 1024 bytes.
  virtual absl::Status DenyJti(absl::string_view jti, absl::Time expires_at) = 0;
  // true while now <= expires_at; false once past it.
  virtual absl::StatusOr<bool> IsJtiDenied(absl::string_view jti, absl::Time now) = 0;

  // The DPoP replay cache (RFC 9449 §11.1), shared by every replica of the store: records
  // `replay_key` (token/dpop.h DpopProof::replay_key) until `keep_until`. true when it was
  // newly recorded (absent, or present but now > its keep_until: then it is recorded again
  // with the new keep_until); false when it is there and not expired. Atomic: of concurrent
  // calls with one key (on any replica) while it is live, exactly one gets true (also against
  // CreateFamily and Rotate carrying the key). Expired rows are dropped by the purge
  // (PurgeExpired, the reaper, the compaction filter) with the store's purge margin.
  // INVALID_ARGUMENT "invalid_argument:replay_key" for an empty key or one over
  // kMaxReplayKeyBytes.
  //
  // NOT synced, unlike every other write (it is what a bound Introspect writes; IssueTokens
  // and RefreshTokens carry their proof in CreateFamily / Rotate, synced): RocksDB writes it
  // to the WAL without waiting for the fsync (it survives a crash of the process, not a power
  // loss or a crash of the machine); PostgreSQL commits it with synchronous_commit off (a
  // crash of the database server, its process or its machine, may lose the commits of the
  // last 3 × wal_writer_delay, 600 ms by default).
  // What such a loss forgets is the last moments of seen proofs: one of them could be
  // accepted once more after the restart, but only while its iat is within the max age
  // (dpop_max_age, 5 min by default); server nonces (--dpop_nonce) narrow it further (the
  // proof must also carry the nonce of the current or the previous window).
  virtual absl::StatusOr<bool> RecordProofJti(absl::string_view replay_key, absl::Time keep_until,
                                              absl::Time now) = 0;

  // Merges `update` into the subject's record atomically (per subject; concurrent updates and
  // CreateFamily/Rotate of the subject are linearizable) and returns the merged record, synced:
  //   not_before  = max(stored, update.not_before or now, [unset: newest stored family's
  //                 created_at]) -- a cutoff never moves back;
  //   block_until = update.block_until if set, else the stored one;
  //   reason, revoked_by, updated_at = the update's;
  //   expires_at  = max(stored, block_until, every family created at or before not_before:
  //                 its expires_at + token_leeway) -- computed from the families themselves,
  //                 never from today's configured lifetimes.
  // A stored record past its expires_at counts as absent. INVALID_ARGUMENT for an empty or
  // over-long subject, or a not_before after now.
  virtual absl::StatusOr<SubjectRecord> UpdateSubject(const SubjectUpdate& update) = 0;
  // nullopt when absent or once now > record.expires_at.
  virtual absl::StatusOr<std::optional<SubjectRecord>> GetSubject(absl::string_view subject,
                                                                  absl::Time now) = 0;

  // The subject's families, newest created_at first, paginated. A non-empty next_page_token
  // means more index entries follow; they may all be filtered out, so a last page can be
  // empty. INVALID_ARGUMENT "invalid_argument:page_token" for a token this store did not
  // issue, "invalid_argument:subject" for an empty or over-long subject.
  virtual absl::StatusOr<FamilyPage> ListFamilies(const ListFamiliesQuery& query) = 0;

  // Compacts every column family now, so the expiry filter physically drops every record
  // past its drop-after time by more than the store's purge margin (its options'
  // purge_margin): a record, revocation-log entry or denylisted jti included, stays on disk
  // that long after the last instant a reader's clock could still need it, so a replica
  // whose clock runs behind the deleter's (within the margin) never misses it. Where several
  // processes share the store (PostgreSQL), "now" is the earlier of the caller's clock and
  // the database's (ClockNow), so a replica whose clock runs ahead deletes nothing early.
  // Slow on a big store; meant for admin tools and tests.
  virtual absl::Status PurgeExpired() = 0;

  // The store's clock (DESIGN §13): the database server's clock_timestamp() for PostgreSQL,
  // which every replica measures its own clock against; the RocksDB store's own (injected)
  // clock, the only one there (the process's own, so a measured offset is zero). Every store
  // has one: a wrapper forwards to the store it wraps. UNAVAILABLE when the store does not
  // answer.
  virtual absl::StatusOr<absl::Time> ClockNow() = 0;

  virtual absl::StatusOr<StoreStats> GetStats() = 0;

  // The shared key ring. GetKeyRing returns the stored version, and the document only when
  // that version is greater than `if_newer_than` (replicas poll it cheaply).
  virtual absl::StatusOr<KeyRingBlob> GetKeyRing(uint64_t if_newer_than) = 0;
  // Stores `document` as version expected_version + 1 if the stored version is
  // expected_version (0: none stored yet), atomically: of concurrent calls with the same
  // expected_version exactly one succeeds, the others get ABORTED "key_ring_conflict".
  // INVALID_ARGUMENT for an empty document or one over kMaxKeyRingBytes.
  virtual absl::Status CompareAndSetKeyRing(uint64_t expected_version,
                                            absl::string_view document) = 0;

  // Copies the store, while it keeps serving, into request.dir: a consistent point in time
  // that holds every write acknowledged before the call began (and possibly some made during
  // it), verified against its checksums before the call returns. One backup at a time per
  // store: a second concurrent call gets ABORTED "backup_in_progress".
  // Errors: INVALID_ARGUMENT "invalid_argument:backup_dir" (relative, or inside the store);
  // FAILED_PRECONDITION "backup_failed" (the directory cannot be made or written: missing
  // parent, permissions, full disk; nothing half-written is left as a backup);
  // DATA_LOSS "backup_corrupt" (the copy did not verify); FAILED_PRECONDITION
  // "backup_not_supported" from stores that rely on their engine's own tools (PostgreSQL).
  virtual absl::StatusOr<BackupResult> CreateBackup(const BackupRequest& request) = 0;
};

}  // namespace ta::storage

#endif  // TA_STORAGE_TOKEN_STORE_H_

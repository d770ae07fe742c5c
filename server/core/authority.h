// TokenAuthority: the domain core. Issues token families, rotates refresh tokens with reuse
// detection, introspects, and revokes at three widths (token, family, subject).
//
// It speaks plain C++ types and absl::Status only (no gRPC); server/rpc translates. State
// lives behind storage::TokenStore, keys behind token::KeyRing; both are borrowed and must
// outlive the authority. Thread-safe: every method may run concurrently; the per-family
// atomicity of rotation is the store's (storage::TokenStore::Rotate).
#ifndef TA_SERVER_CORE_AUTHORITY_H_
#define TA_SERVER_CORE_AUTHORITY_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "server/core/audit.h"
#include "server/core/metrics.h"
#include "server/core/revocation_follower.h"
#include "server/core/verify_cache.h"
#include "server/core/view_checkpoint.h"
#include "server/core/watch_hub.h"
#include "server/token/key_ring.h"
#include "storage/token_store.h"
#include "token/binding.h"
#include "token/dpop.h"
#include "token/proof_check.h"
#include "token/revocation_view.h"

namespace ta::core {

struct AuthorityOptions {
  // `iss` of every access token, and the only issuer Introspect accepts.
  std::string issuer = "token-authority";
  // `aud` when IssueTokens names none. Empty: IssueTokens must name one.
  std::vector<std::string> default_audience;
  // Access-token lifetime (RFC 9068 recommends short). Default 5 min; 10 s .. 24 h.
  absl::Duration access_ttl = absl::Minutes(5);
  // Refresh-token idle lifetime: a refresh must happen within it. Default 1 day.
  absl::Duration refresh_idle_ttl = absl::Hours(24);
  // Absolute lifetime of a family (login session). Default 30 days; >= refresh_idle_ttl.
  absl::Duration family_ttl = absl::Hours(24 * 30);
  // Clock-skew leeway on exp/nbf/iat when verifying access tokens. Default 30 s; <= 5 min.
  absl::Duration leeway = absl::Seconds(30);
  // Presenting the immediate predecessor within this window returns the same successor
  // (idempotent retry after a lost response) instead of signalling reuse. 0 = off; <= 60 s.
  absl::Duration reuse_grace = absl::ZeroDuration();
  // Access tokens whose signature verified are remembered (by exact token text) until
  // their exp + leeway, so repeated introspection skips signature verification. Bounded by
  // the bytes the entries hold (token, claims, overhead: ~1.5 KiB for a typical token).
  // Default 64 MiB; 0 disables.
  size_t verify_cache_bytes = 64 << 20;
  // Whether other processes (replicas) write the same store. Then a follower thread keeps
  // the revocation view current from the store's log (revocation_follower.h), and the view
  // is trusted only while that is proved within max_revocation_lag (an introspection that
  // finds it stale first tries to catch up itself); alone, the view is current by
  // construction (the store hands it every revocation before the call that made it
  // returns). Default false.
  bool shared_store = false;
  // With shared_store: how stale the revocation view may be before Introspect of an access
  // token answers UNAVAILABLE ("revocations_stale") rather than risk calling a revoked token
  // active. Default 1 s.
  absl::Duration max_revocation_lag = absl::Seconds(1);
  // With shared_store: how far this server's clock may be from the database's (measured at
  // every follower poll) before it refuses to call a token active ("clock_offset_exceeded")
  // and reports NOT_SERVING. Default 500 ms.
  absl::Duration max_clock_offset = absl::Milliseconds(500);
  // The revocation view's checkpoint (view_checkpoint.h): a file a start loads instead of
  // reading the whole revocation log, then replays only the log after it. Empty (default):
  // none, every start reads the whole log. The server sets <data_dir>/revocation_view.ckpt.
  std::string view_checkpoint_path;
  // With view_checkpoint_path: how often the checkpoint is rewritten while serving (also by
  // SaveViewCheckpoint, at clean shutdown). Default 1 min; 1 s .. 24 h, or 0: no checkpoint
  // is read or written.
  absl::Duration view_checkpoint_interval = absl::Minutes(1);
  // WatchRevocations: events a stream may hold unsent before it is cut ("watch_too_slow").
  // Default 4096 (a few hundred KiB for the slowest watcher); >= 16.
  size_t watch_stream_buffer = 4096;
  // WatchRevocations: the last revocation-log entries kept in memory so that a watcher that
  // reconnects with `since` resumes from them; one whose position is older (more than this
  // many entries committed since) gets a reset and a snapshot instead. Default 65536 (~100
  // bytes each plus the id); 1 .. 16,777,216. Tests shrink it to force that reset
  // (--watch_history).
  size_t watch_history = 65536;
  // WatchRevocations: entries per snapshot page read from the store, and per batch message
  // (watch_hub.h). Default 4096; 1 .. 65536.
  size_t watch_snapshot_page = 4096;
  // Sender-constrained sessions (DESIGN §13): how old (max_age 10 s .. 10 min) and how far
  // ahead (max_future 0 .. 5 min) a DPoP proof's iat may be, and the algorithms accepted.
  // The replay cache (the store's) keeps a proof's jti until its iat + max_age.
  token::DpopPolicy dpop;
  // RFC 9449 §8 server nonces: every DPoP proof must carry CurrentDpopNonce() (or the one of
  // the window just ended), else use_dpop_nonce. Derived from the key ring's refresh secret
  // and the time window, so replicas sharing the ring agree without talking. Default off.
  bool dpop_nonce = false;
  // With dpop_nonce: how long one nonce is current. Default 5 min; 10 s .. 1 h.
  absl::Duration dpop_nonce_window = absl::Minutes(5);
  // Where security events go (audit.h). Not owned; may be null (no audit trail).
  AuditSink* audit = nullptr;
  // Time source. Never null.
  const Clock* clock = Clock::Real();
  // Where refresh outcomes, revocations and verify-cache lookups are counted. Never null;
  // default records nothing. Not owned; must outlive the authority.
  CoreMetrics* metrics = CoreMetrics::None();
};

// Validates every field, naming the offending one (reason "invalid_argument:<field>").
absl::Status ValidateAuthorityOptions(const AuthorityOptions& options);

enum class Role { kIssuer, kClient, kResource, kAdmin };

// Who is calling; recorded on what it issues and revokes. Authenticated by server/rpc with
// the CallerRegistry (callers.h).
struct Caller {
  std::string name = "anonymous";
  std::vector<Role> roles;
  // For the client role: the client_ids whose tokens it may refresh and revoke. Empty: any.
  std::vector<std::string> client_ids;
  // Set only for a caller nobody authenticated (the HTTP token endpoint's public clients): its
  // address, recorded on its audit events; its refused refreshes are collapsed in the trail
  // like refused callers (audit.h IsCollapsibleRefusal), so they cannot fill the disk.
  std::string peer{};

  bool Has(Role role) const;
  // Whether this caller may act on a token of `client_id` (admins and unrestricted callers may).
  bool MayActFor(absl::string_view client_id) const;
};

struct IssueRequest {
  std::string subject;
  std::string client_id{};
  std::vector<std::string> audience;
  std::string scope;
  std::string extra_claims_json;  // "" or a JSON object
  std::map<std::string, std::string> session_metadata;
  // Binds the family (DPoP key or client certificate); empty: a bearer session.
  token::PresentedProof proof{};
};

struct TokenPair {
  std::string access_token;
  std::string refresh_token;
  std::string token_type = "Bearer";  // "DPoP" for a family bound to a DPoP key
  int64_t expires_in = 0;
  int64_t refresh_expires_in = 0;
  std::string family_id;  // base64url
};

struct RefreshRequest {
  std::string refresh_token;
  std::string scope;  // "" = unchanged
  // Required for a bound family (reasons proof_required / proof_key_mismatch; nothing spent).
  token::PresentedProof proof{};
  // When non-empty, the family must belong to this client_id (client_mismatch; nothing spent).
  std::string client_id{};
};

struct IntrospectRequest {
  std::string token;
  std::string audience;
  // Answer inactive ("not_an_access_token") for a refresh token: what a protected resource
  // asks, since it must never accept one (RFC 7662 §4). Default false.
  bool access_tokens_only = false;
  // What the resource server received with the token, checked against its cnf.
  token::PresentedProof proof{};
  // The caller checks the binding itself against the returned cnf: a bound token without a
  // proof is then active. Default false: such a token is inactive ("proof_required").
  bool binding_checked_by_caller{false};
};

struct Introspection {
  bool active = false;
  std::string inactive_reason;  // set when !active
  std::string token_type;       // "access_token" | "refresh_token"
  std::string subject, family_id, jti, client_id, scope;
  std::vector<std::string> audience;
  absl::Time issued_at = absl::UnixEpoch();
  absl::Time expires_at = absl::UnixEpoch();
  std::string claims_json;  // JSON object
  token::Confirmation cnf{};  // the token's binding; empty for a bearer token
};

struct SubjectRevocation {
  std::string subject;
  std::optional<absl::Time> not_before;   // unset: now
  std::optional<absl::Time> block_until;  // unset: keep the stored block
  std::string reason;
};

struct ListFamiliesRequest {
  std::string subject;
  int page_size = 0;  // 0 = 50
  std::string page_token;
  bool include_revoked = false;
};

struct Stats {
  storage::StoreStats store;
  size_t signing_keys = 0;
};

// What CreateBackup made.
struct BackupReport {
  storage::BackupResult store;  // the database copy, in <backup_dir>/rocksdb
  std::string backup_dir;
  // The key ring copied into <backup_dir>/keys: keyring.json, the private key files and
  // refresh.secret (0600, directory 0700). The backup can therefore sign tokens: it must be
  // protected like --key_dir.
  std::string key_dir;
  int key_files = 0;
  // A shared ring (--key_encryption_key_file) is a record of the store: it is in the store's
  // copy, sealed under the KEK, and nothing is written to key_dir (empty). The KEK is not in
  // the backup: it must be kept apart from it.
  bool keys_sealed_in_store = false;
  absl::Duration took;  // wall time of the whole call
};

class TokenAuthority {
 public:
  static absl::StatusOr<std::unique_ptr<TokenAuthority>> Create(const AuthorityOptions& options,
                                                                storage::TokenStore* store,
                                                                token::KeyRing* keys);

  absl::StatusOr<TokenPair> IssueTokens(const IssueRequest& request, const Caller& caller);
  absl::StatusOr<TokenPair> RefreshTokens(const RefreshRequest& request, const Caller& caller);

  // Fails only when the answer cannot be known (store unavailable); an unusable token is
  // an OK Introspection with active=false and the reason.
  absl::StatusOr<Introspection> Introspect(const IntrospectRequest& request);
  absl::StatusOr<std::vector<Introspection>> IntrospectBatch(
      const std::vector<IntrospectRequest>& requests);
  // Whether Introspect of `token` may wait on the store (a refresh token's records, or a
  // stale view's catch-up): such calls must not run on a thread that may not block (issue 22).
  bool IntrospectMayWait(absl::string_view token) const;

  // RFC 7009: OK for unknown or invalid tokens; UNAVAILABLE when the store fails.
  absl::Status RevokeToken(absl::string_view token, const Caller& caller);
  // By base64url family id, or (when empty) by any token of the family. Returns `changed`.
  absl::StatusOr<bool> RevokeFamily(absl::string_view family_id, absl::string_view token,
                                    absl::string_view reason, const Caller& caller);
  absl::StatusOr<storage::SubjectRecord> RevokeSubject(const SubjectRevocation& request,
                                                       const Caller& caller);

  // Family records keep the raw id; use EncodeFamilyId() (refresh_token.h) to show it.
  absl::StatusOr<storage::FamilyPage> ListFamilies(const ListFamiliesRequest& request,
                                                   const Caller& caller);
  absl::StatusOr<storage::FamilyRecord> GetFamily(absl::string_view family_id,
                                                  const Caller& caller);

  // The DPoP nonce (RFC 9449 §8) proofs must carry now; "" while nonces are off. Both faces
  // send it with a use_dpop_nonce refusal (gRPC trailing metadata `dpop-nonce`, HTTP
  // DPoP-Nonce) and may send it with any answer to a DPoP request.
  std::string CurrentDpopNonce() const;

  std::string JwksJson() const { return keys_->JwksJson(); }
  std::vector<token::KeyInfo> SigningKeys() const { return keys_->Keys(); }
  absl::StatusOr<std::string> RotateSigningKey(absl::string_view alg, const Caller& caller);
  absl::Status PurgeExpired() { return store_->PurgeExpired(); }
  absl::StatusOr<Stats> GetStats();

  // An online backup (backup.cc): the store (storage::TokenStore::CreateBackup), then the key
  // ring's files into <backup_dir>/keys, so that a restore can serve and verify every token
  // the store knows. `backup_dir` is a path on the server's machine and must be absolute
  // ("invalid_argument:backup_dir"), outside the key directory and not containing it. One
  // backup at a time: ABORTED "backup_in_progress" while another runs. Audited as
  // "admin.backup".
  // keep_last: see storage::BackupRequest (0 keeps every backup).
  absl::StatusOr<BackupReport> CreateBackup(absl::string_view backup_dir, uint32_t keep_last,
                                            const Caller& caller);

  // The revocations that can still matter, in memory (revocation_view.h). A follower of a
  // shared store applies entries and marks it current; health reports use IsCurrent.
  token::RevocationView& view() { return *view_; }
  // Writes the view's checkpoint now (the server calls it at clean shutdown, once no call
  // runs) and stops the periodic writes. OK without a checkpoint path.
  absl::Status SaveViewCheckpoint();
  // WatchRevocations' streams (watch_hub.h), fed from the same log as the view.
  WatchHub& watch_hub() { return *watch_hub_; }

  ~TokenAuthority();

 private:
  TokenAuthority(const AuthorityOptions& options, storage::TokenStore* store, token::KeyRing* keys);

  // Mints an access token for `family` (with its extra claims) and `scope`, issued now.
  absl::StatusOr<std::string> MintAccessToken(const storage::FamilyRecord& family,
                                              absl::string_view scope, absl::Time now);
  // The exp of an access token of `family` minted at `now` (never past the family's end).
  absl::Time AccessExpiry(const storage::FamilyRecord& family, absl::Time now) const;
  storage::RefreshRecord MakeRefreshRecord(const storage::FamilyRecord& family, uint64_t generation,
                                           absl::string_view scope, absl::Time now) const;
  std::string RefreshTokenFor(absl::string_view family_id, uint64_t generation) const;
  absl::StatusOr<TokenPair> MakePair(const storage::FamilyRecord& family,
                                     const storage::RefreshRecord& refresh, absl::Time now);

  // Introspection's family checks: reason "" when the family's tokens are usable. (A subject
  // block stops refreshes, checked by the store's Rotate, not the tokens already out.)
  absl::StatusOr<std::string> FamilyProblem(const storage::FamilyRecord& family, absl::Time now);
  // The actions behind the audited public methods; each fills what it learns into `event`.
  absl::StatusOr<TokenPair> Issue(const IssueRequest& request, const Caller& caller,
                                  AuditEvent* event);
  absl::StatusOr<TokenPair> Refresh(const RefreshRequest& request, const Caller& caller,
                                    AuditEvent* event);
  absl::Status RevokeOneToken(absl::string_view token, const Caller& caller, AuditEvent* event);
  absl::StatusOr<bool> RevokeOneFamily(absl::string_view family_id, absl::string_view token,
                                       absl::string_view reason, const Caller& caller,
                                       AuditEvent* event);
  absl::StatusOr<storage::SubjectRecord> RevokeWholeSubject(const SubjectRevocation& request,
                                                            const Caller& caller);
  absl::StatusOr<storage::FamilyRecord> FindFamily(absl::string_view family_id);
  absl::StatusOr<storage::FamilyPage> ListSessions(const ListFamiliesRequest& request);
  absl::StatusOr<std::string> RotateKey(absl::string_view alg);
  // A shared key ring: adopts another replica's rotation (the follower's polls).
  absl::Status ReloadKeys();
  absl::StatusOr<BackupReport> Backup(absl::string_view backup_dir, uint32_t keep_last);
  // Builds the view (from the checkpoint when one is usable, view_checkpoint.h), listens to
  // the store, replays the log after what it holds; returns the log position it holds.
  absl::StatusOr<LogPosition> LoadView();
  // Completes `event` (time, caller, outcome from `status`) and hands it to the sink.
  void Audit(AuditEvent event, const absl::Status& status, const Caller& caller) const;

  // One attempt of IssueTokens at the clock's current time.
  absl::StatusOr<TokenPair> TryIssue(const IssueRequest& request,
                                     const std::vector<std::string>& audience,
                                     const token::Confirmation& cnf,
                                     const std::optional<storage::ProofReplay>& replay,
                                     const Caller& caller);

  // Sender-constrained sessions (binding.cc). What IssueTokens' proof binds the family to
  // (verified); empty for no proof. A DPoP proof's replay record goes to *replay, for
  // CreateFamily to check and record with the family.
  absl::StatusOr<token::Confirmation> BindAtIssue(const token::PresentedProof& proof,
                                                  absl::Time now,
                                                  std::optional<storage::ProofReplay>* replay);
  // RefreshTokens of a bound family: the proof is by its key (nothing is spent when it is
  // not); its replay record, for Rotate to check and record with the rotation. nullopt for a
  // bearer family or a certificate-bound one.
  absl::StatusOr<std::optional<storage::ProofReplay>> CheckRefreshProof(
      const storage::FamilyRecord& family, const token::PresentedProof& proof, absl::Time now);
  // UNAUTHENTICATED token::reason::kDpopReplayed: the store found the proof's key live.
  static absl::Status DpopReplayed();
  // A proof's replay record: its key, kept until its iat + the max age.
  storage::ProofReplay ProofReplayOf(const token::DpopProof& proof, absl::Time now) const;
  // The proof context (policy, nonces) at `now`.
  token::ProofContext DpopContext(absl::Time now, std::string* nonce,
                                  std::string* previous_nonce) const;
  // Records a proof's replay key in the store (unsynced: Introspect's): false when it was
  // seen before.
  absl::StatusOr<bool> RecordProof(const token::DpopProof& proof, absl::Time now);
  // The nonce of the window holding `t`.
  std::string DpopNonceAt(absl::Time t) const;
  // The refresh record a token names, its secret checked; "invalid_refresh_token" otherwise.
  absl::StatusOr<storage::RefreshRecord> CheckRefreshToken(absl::string_view token, absl::Time now);

  absl::StatusOr<Introspection> IntrospectAccess(const IntrospectRequest& request, absl::Time now);
  absl::StatusOr<Introspection> IntrospectRefresh(const IntrospectRequest& request, absl::Time now);
  // keys_->Verify behind the verification cache: a hit re-checks only the claims.
  absl::StatusOr<std::shared_ptr<const token::VerifiedJwt>> VerifyAccessToken(
      absl::string_view token, const token::VerifyPolicy& policy, absl::Time now);

  const AuthorityOptions options_;
  storage::TokenStore* const store_;
  token::KeyRing* const keys_;
  VerifyCache verify_cache_;
  std::unique_ptr<token::RevocationView> view_;
  std::unique_ptr<RevocationFollower> follower_;    // with shared_store only
  std::unique_ptr<ViewCheckpointer> checkpointer_;  // with view_checkpoint_path only
  std::unique_ptr<WatchHub> watch_hub_;
  // Held (TryLock) for a whole CreateBackup, key copy included: one backup at a time.
  absl::Mutex backup_mu_;
};

}  // namespace ta::core

#endif  // TA_SERVER_CORE_AUTHORITY_H_

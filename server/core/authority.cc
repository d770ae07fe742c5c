// Issue and rotation (DESIGN §3). Introspection is in introspect.cc, revocation in revoke.cc.
#include "server/core/authority.h"

#include <algorithm>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "base/status_macros.h"
#include "server/core/limits.h"
#include "server/core/refresh_token.h"
#include "token/base64url.h"
#include "token/crypto.h"
#include "token/jwt.h"
#include "token/key.h"

namespace ta::core {
namespace {

absl::Status OptionError(absl::string_view field, absl::string_view why) {
  return InvalidField(field, absl::StrCat(field, " ", why));
}

absl::Status Unauthenticated(absl::string_view reason, absl::string_view message) {
  return Error(absl::StatusCode::kUnauthenticated, reason, message);
}

int64_t SecondsUntil(absl::Time end, absl::Time now) {
  return std::max<int64_t>(0, absl::ToInt64Seconds(end - now));
}

// A ban or logout racing IssueTokens makes it start over with a fresh time (see IssueTokens).
constexpr int kIssueAttempts = 3;

// The size of `token` once re-signed by the key with the longest signature the ring accepts
// (the header is the same length for every algorithm: alg names are 5 characters, kids are
// RFC 7638 thumbprints).
size_t WorstCaseSignedSize(absl::string_view token) {
  constexpr size_t kMaxSignatureChars = (token::kMaxSignatureBytes * 4 + 2) / 3;
  return token.rfind('.') + 1 + kMaxSignatureChars;
}

}  // namespace

absl::Status ValidateAuthorityOptions(const AuthorityOptions& o) {
  if (o.issuer.empty() || o.issuer.size() > 256)
    return OptionError("issuer", "must be 1..256 bytes");
  RETURN_IF_ERROR(CheckAudiences("default_audience", o.default_audience));
  if (o.access_ttl < absl::Seconds(10) || o.access_ttl > absl::Hours(24)) {
    return OptionError("access_ttl", "must be between 10s and 24h");
  }
  if (o.refresh_idle_ttl < absl::Minutes(1))
    return OptionError("refresh_idle_ttl", "must be >= 1m");
  if (o.family_ttl < o.refresh_idle_ttl || o.family_ttl > absl::Hours(24 * 366)) {
    return OptionError("family_ttl", "must be >= refresh_idle_ttl and <= 366 days");
  }
  if (o.leeway < absl::ZeroDuration() || o.leeway > absl::Minutes(5)) {
    return OptionError("leeway", "must be between 0s and 5m");
  }
  if (o.reuse_grace < absl::ZeroDuration() || o.reuse_grace > absl::Seconds(60)) {
    return OptionError("reuse_grace", "must be between 0s and 60s");
  }
  if (o.max_revocation_lag < absl::Milliseconds(10) || o.max_revocation_lag > absl::Minutes(1)) {
    return OptionError("max_revocation_lag", "must be between 10ms and 1m");
  }
  if (o.max_clock_offset < absl::Milliseconds(1) || o.max_clock_offset > absl::Minutes(1)) {
    return OptionError("max_clock_offset", "must be between 1ms and 1m");
  }
  if (o.view_checkpoint_interval != absl::ZeroDuration() &&
      (o.view_checkpoint_interval < absl::Seconds(1) ||
       o.view_checkpoint_interval > absl::Hours(24))) {
    return OptionError("view_checkpoint_interval", "must be 0 (off) or between 1s and 24h");
  }
  if (o.watch_stream_buffer < 16) return OptionError("watch_stream_buffer", "must be at least 16");
  if (o.watch_history < 1 || o.watch_history > (size_t{1} << 24)) {
    return OptionError("watch_history", "must be between 1 and 16777216");
  }
  if (o.watch_snapshot_page < 1 || o.watch_snapshot_page > 65536) {
    return OptionError("watch_snapshot_page", "must be between 1 and 65536");
  }
  if (o.dpop.max_age < absl::Seconds(10) || o.dpop.max_age > absl::Minutes(10)) {
    return OptionError("dpop_max_age", "must be between 10s and 10m");
  }
  if (o.dpop.max_future < absl::ZeroDuration() || o.dpop.max_future > absl::Minutes(5)) {
    return OptionError("dpop_max_future", "must be between 0s and 5m");
  }
  if (o.dpop_nonce_window < absl::Seconds(10) || o.dpop_nonce_window > absl::Hours(1)) {
    return OptionError("dpop_nonce_window", "must be between 10s and 1h");
  }
  if (o.clock == nullptr) return OptionError("clock", "must not be null");
  if (o.metrics == nullptr) return OptionError("metrics", "must not be null");
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TokenAuthority>> TokenAuthority::Create(
    const AuthorityOptions& options, storage::TokenStore* store, token::KeyRing* keys) {
  RETURN_IF_ERROR(ValidateAuthorityOptions(options));
  if (store == nullptr || keys == nullptr) {
    return absl::InvalidArgumentError("TokenAuthority needs a store and a key ring");
  }
  auto authority = absl::WrapUnique(new TokenAuthority(options, store, keys));
  WatchHubOptions hub_options;
  hub_options.store = store;
  hub_options.clock = options.clock;
  hub_options.shared_store = options.shared_store;
  hub_options.stream_buffer = options.watch_stream_buffer;
  hub_options.retained_entries = options.watch_history;
  hub_options.snapshot_page = options.watch_snapshot_page;
  // The view is the one LoadView settles on (a checkpoint's, or a fresh one); the hub asks
  // only once started.
  TokenAuthority* self = authority.get();
  hub_options.view_current = [self](absl::Time now) { return self->view_->IsCurrent(now); };
  hub_options.jwks_json = [keys] { return keys->JwksJson(); };
  hub_options.size_hint = [self] {
    const token::RevocationView::Counts counts = self->view_->counts();
    return WatchSizeHint{counts.jtis, counts.families};
  };
  ASSIGN_OR_RETURN(authority->watch_hub_, WatchHub::Create(std::move(hub_options)));
  WatchHub* hub = authority->watch_hub_.get();
  // LoadView listens first (publishing to the hub too), then loads.
  ASSIGN_OR_RETURN(const LogPosition loaded, authority->LoadView());
  token::RevocationView* view = authority->view_.get();
  hub->Begin(view->last_seq());
  if (options.shared_store) {
    // A shared key ring is reloaded in the same polls, so a rotation on another replica is
    // picked up within the lag bound too.
    TokenAuthority* self = authority.get();
    authority->follower_ = std::make_unique<RevocationFollower>(
        store, view, options.clock, absl::Milliseconds(100), [self] { return self->ReloadKeys(); },
        options.max_clock_offset);
    authority->follower_->ResumeAfter(loaded.seq);
    authority->follower_->SetObserver(
        [hub](const std::vector<storage::RevocationEntry>& entries) {
          for (const storage::RevocationEntry& e : entries) hub->Publish(e);
        },
        [hub](absl::Time as_of) { hub->MarkCurrent(as_of); });
    RETURN_IF_ERROR(authority->follower_->PollOnce());  // current before the first call
    authority->follower_->Start();
  }
  if (authority->checkpointer_ != nullptr) authority->checkpointer_->Start();
  hub->Start();
  return authority;
}

TokenAuthority::~TokenAuthority() {
  if (watch_hub_ != nullptr) watch_hub_->Shutdown();
  if (checkpointer_ != nullptr) checkpointer_->Stop();
  if (follower_ != nullptr) follower_->Stop();
  store_->SetRevocationListener(nullptr);
}

TokenAuthority::TokenAuthority(const AuthorityOptions& options, storage::TokenStore* store,
                               token::KeyRing* keys)
    : options_(options),
      store_(store),
      keys_(keys),
      verify_cache_(options.verify_cache_bytes),
      view_(std::make_unique<token::RevocationView>(options.shared_store,
                                                    options.max_revocation_lag, options.clock)) {}

void TokenAuthority::Audit(AuditEvent event, const absl::Status& status,
                           const Caller& caller) const {
  if (options_.audit == nullptr) return;
  event.time = options_.clock->Now();
  event.caller = caller.name;
  if (!caller.peer.empty()) event.peer = caller.peer;
  const std::string reason = event.reason;
  SetOutcome(status, &event);
  if (status.ok()) event.reason = reason;
  options_.audit->Record(event);
}

absl::StatusOr<TokenPair> TokenAuthority::IssueTokens(const IssueRequest& request,
                                                      const Caller& caller) {
  AuditEvent event{.action = "session.issue", .rpc = "IssueTokens"};
  absl::StatusOr<TokenPair> pair = Issue(request, caller, &event);
  if (pair.ok()) event.family_id = pair->family_id;
  Audit(std::move(event), pair.status(), caller);
  return pair;
}

absl::StatusOr<TokenPair> TokenAuthority::Issue(const IssueRequest& request, const Caller& caller,
                                                AuditEvent* event) {
  event->subject = request.subject;
  event->client_id = request.client_id;
  RETURN_IF_ERROR(CheckIdentifier("subject", request.subject, kMaxSubjectBytes));
  RETURN_IF_ERROR(CheckIdentifier("client_id", request.client_id, kMaxClientIdBytes));
  RETURN_IF_ERROR(CheckAudiences("audience", request.audience));
  RETURN_IF_ERROR(CheckScope("scope", request.scope));
  RETURN_IF_ERROR(CheckMetadata("session_metadata", request.session_metadata));
  RETURN_IF_ERROR(token::CheckPresentedProof(request.proof));
  if (!request.extra_claims_json.empty()) {
    RETURN_IF_ERROR(token::ValidateExtraClaims(request.extra_claims_json));
  }
  // An issuer listed with clients= starts sessions only for those clients.
  if (!caller.MayActFor(request.client_id)) {
    return Error(absl::StatusCode::kPermissionDenied, "permission_denied",
                 "the caller may not issue tokens for this client_id");
  }
  std::vector<std::string> audience =
      request.audience.empty() ? options_.default_audience : request.audience;
  if (audience.empty()) {
    return InvalidField("audience", "audience is required (the server has no default audience)");
  }

  // The binding is verified before anything is stored; its proof's jti is recorded with the
  // family (CreateFamily), and a replayed one creates nothing.
  std::optional<storage::ProofReplay> replay;
  ASSIGN_OR_RETURN(const token::Confirmation cnf,
                   BindAtIssue(request.proof, options_.clock->Now(), &replay));

  // The store orders the creation against RevokeSubject (storage/token_store.h): a ban that
  // committed first refuses it, and a revocation that commits later covers it. When a
  // revocation's cutoff already covers this session's start (its clock read came later, or
  // another replica's clock is ahead), try again with a fresh time a few times.
  absl::Status status;
  for (int attempt = 0; attempt < kIssueAttempts; ++attempt) {
    absl::StatusOr<TokenPair> pair = TryIssue(request, audience, cnf, replay, caller);
    if (pair.ok() || ReasonOf(pair.status()) != "subject_revoked") return pair;
    status = pair.status();
  }
  return status;
}

absl::StatusOr<TokenPair> TokenAuthority::TryIssue(
    const IssueRequest& request, const std::vector<std::string>& audience,
    const token::Confirmation& cnf, const std::optional<storage::ProofReplay>& replay,
    const Caller& caller) {
  const absl::Time now = options_.clock->Now();
  storage::FamilyRecord family;
  family.family_id = token::RandomBytes(kFamilyIdBytes);
  family.subject = request.subject;
  family.client_id = request.client_id;
  family.audience = audience;
  family.scope = request.scope;
  family.metadata = request.session_metadata;
  family.issued_by = caller.name;
  family.extra_claims_json = request.extra_claims_json;
  family.created_at = now;
  family.expires_at = now + options_.family_ttl;
  family.generation = 0;
  family.rotated_at = now;
  family.access_live_until = AccessExpiry(family, now) + options_.leeway;
  family.cnf_jkt = cnf.jkt;
  family.cnf_x5t_s256 = cnf.x5t_s256;
  storage::RefreshRecord first = MakeRefreshRecord(family, 0, request.scope, now);
  // Mint first: a request whose token cannot be issued must leave nothing behind.
  ASSIGN_OR_RETURN(TokenPair pair, MakePair(family, first, now));
  const absl::Status created = store_->CreateFamily(family, first, replay);
  if (ReasonOf(created) == storage::kProofReplayedReason) return DpopReplayed();
  RETURN_IF_ERROR(created);
  return pair;
}

absl::StatusOr<TokenPair> TokenAuthority::RefreshTokens(const RefreshRequest& request,
                                                        const Caller& caller) {
  AuditEvent event{.action = "session.refresh", .rpc = "RefreshTokens"};
  absl::StatusOr<TokenPair> pair = Refresh(request, caller, &event);
  options_.metrics->OnRefresh(
      RefreshOutcomeOf(pair.status(), pair.ok() && event.reason == "grace_replay"));
  if (ReasonOf(pair.status()) == "refresh_token_reused") event.action = "session.reuse_detected";
  Audit(std::move(event), pair.status(), caller);
  return pair;
}

absl::StatusOr<TokenPair> TokenAuthority::Refresh(const RefreshRequest& request,
                                                  const Caller& caller, AuditEvent* event) {
  RETURN_IF_ERROR(CheckToken("refresh_token", request.refresh_token));
  RETURN_IF_ERROR(CheckScope("scope", request.scope));
  if (!request.client_id.empty()) {
    RETURN_IF_ERROR(CheckIdentifier("client_id", request.client_id, kMaxClientIdBytes));
  }
  RETURN_IF_ERROR(token::CheckPresentedProof(request.proof));
  const absl::Time now = options_.clock->Now();
  ASSIGN_OR_RETURN(storage::RefreshRecord presented, CheckRefreshToken(request.refresh_token, now));
  absl::StatusOr<storage::FamilyRecord> family = store_->GetFamily(presented.family_id, now);
  if (absl::IsNotFound(family.status())) {
    return Unauthenticated("invalid_refresh_token", "refresh token is not valid");
  }
  RETURN_IF_ERROR(family.status());
  event->subject = family->subject;
  event->client_id = family->client_id;
  event->family_id = EncodeFamilyId(family->family_id);
  if (!caller.MayActFor(family->client_id)) {
    return Error(absl::StatusCode::kPermissionDenied, "permission_denied",
                 "the refresh token belongs to another client");
  }
  // Neither a client naming another client_id nor a holder without the family's key spends
  // anything: both are refused before the store's Rotate.
  if (!request.client_id.empty() && request.client_id != family->client_id) {
    return Unauthenticated("client_mismatch", "the refresh token was issued to another client");
  }
  ASSIGN_OR_RETURN(std::optional<storage::ProofReplay> replay,
                   CheckRefreshProof(*family, request.proof, now));
  if (family->revoked) return Unauthenticated("family_revoked", "the session was revoked");
  if (now >= family->expires_at) return Unauthenticated("family_expired", "the session has expired");
  if (now >= presented.expires_at) {
    return Unauthenticated("refresh_token_expired", "refresh token has expired");
  }
  if (!ScopeWithin(request.scope, presented.scope)) {
    return Error(absl::StatusCode::kInvalidArgument, "invalid_scope",
                 "requested scope exceeds the scope of the refresh token");
  }

  storage::RotateRequest rotate;
  rotate.family_id = presented.family_id;
  rotate.subject = family->subject;
  rotate.generation = presented.generation;
  rotate.now = now;
  rotate.grace = options_.reuse_grace;
  rotate.proof_replay = std::move(replay);  // checked first, recorded with the rotation
  rotate.successor =
      MakeRefreshRecord(*family, presented.generation + 1,
                        request.scope.empty() ? presented.scope : request.scope, now);
  // Covers the token minted below and, on a replay, the one minted with the same `now`.
  rotate.access_live_until = AccessExpiry(*family, now) + options_.leeway;
  // Mint and sign before the store commits: once the presented token is spent, a failure
  // would leave the client with a dead token whose retry looks like reuse. (Nothing the
  // tokens carry changes with the rotation itself.)
  ASSIGN_OR_RETURN(TokenPair next, MakePair(*family, rotate.successor, now));
  ASSIGN_OR_RETURN(storage::RotateOutcome outcome, store_->Rotate(rotate));
  switch (outcome.result) {
    case storage::RotateResult::kRotated:
      event->reason = "rotated";
      return next;
    case storage::RotateResult::kReplayWithinGrace:
      event->reason = "grace_replay";
      // Nothing was spent, so a failure here leaves a retry possible.
      return MakePair(outcome.family, outcome.current, now);
    case storage::RotateResult::kReuseDetected:
      return Unauthenticated("refresh_token_reused",
                             "refresh token was already used; the session is revoked");
    case storage::RotateResult::kFamilyRevoked:
      return Unauthenticated("family_revoked", "the session was revoked");
    case storage::RotateResult::kFamilyExpired:
      return Unauthenticated("family_expired", "the session has expired");
    case storage::RotateResult::kTokenExpired:
      return Unauthenticated("refresh_token_expired", "refresh token has expired");
    case storage::RotateResult::kSubjectRevoked:
      return Unauthenticated("subject_revoked", "the session can no longer be refreshed");
    case storage::RotateResult::kSubjectBlocked:
      return Unauthenticated("subject_blocked", "the session can no longer be refreshed");
    case storage::RotateResult::kProofReplayed:
      return DpopReplayed();  // nothing spent
    case storage::RotateResult::kNotFound:
      break;
  }
  return Unauthenticated("invalid_refresh_token", "refresh token is not valid");
}

absl::StatusOr<storage::RefreshRecord> TokenAuthority::CheckRefreshToken(absl::string_view token,
                                                                         absl::Time now) {
  ASSIGN_OR_RETURN(RefreshTokenParts parts, ParseRefreshToken(token));
  // Every secret we mint is derived from the ring's refresh secret (refresh_token.h), so one
  // minted under another secret (refresh.secret replaced: issue 22) or made up is refused
  // here, before any store read.
  const std::string expected =
      keys_->DeriveRefreshSecret(RefreshSecretContext(parts.family_id, parts.generation));
  if (!token::ConstantTimeEquals(parts.secret, expected)) {
    return Unauthenticated("invalid_refresh_token", "refresh token is not valid");
  }
  absl::StatusOr<storage::RefreshRecord> record =
      store_->GetRefresh(parts.family_id, parts.generation, now);
  if (absl::IsNotFound(record.status())) {
    return Unauthenticated("invalid_refresh_token", "refresh token is not valid");
  }
  RETURN_IF_ERROR(record.status());
  // The secret first: without it, the answer must not depend on which generations exist or
  // have expired (a family id is public as the access token's `sid`).
  if (!token::ConstantTimeEquals(token::Sha256(parts.secret), record->secret_hash)) {
    return Unauthenticated("invalid_refresh_token", "refresh token is not valid");
  }
  // Expired records are kept a while, so the holder learns why, not just "unknown".
  return record;
}

absl::StatusOr<std::string> TokenAuthority::FamilyProblem(const storage::FamilyRecord& family,
                                                          absl::Time now) {
  if (family.revoked) return std::string("family_revoked");
  if (now >= family.expires_at) return std::string("family_expired");
  ASSIGN_OR_RETURN(std::optional<storage::SubjectRecord> subject,
                   store_->GetSubject(family.subject, now));
  // Every token belongs to a family, so a family started before the cutoff covers every
  // token issued before it, at full (microsecond) precision. A tie counts as before: when in
  // doubt, fail closed.
  if (subject && family.created_at <= subject->not_before) return std::string("subject_revoked");
  return std::string();
}

storage::RefreshRecord TokenAuthority::MakeRefreshRecord(const storage::FamilyRecord& family,
                                                         uint64_t generation,
                                                         absl::string_view scope,
                                                         absl::Time now) const {
  storage::RefreshRecord record;
  record.family_id = family.family_id;
  record.generation = generation;
  record.secret_hash =
      token::Sha256(keys_->DeriveRefreshSecret(RefreshSecretContext(family.family_id, generation)));
  record.scope = std::string(scope);
  record.issued_at = now;
  record.expires_at = std::min(now + options_.refresh_idle_ttl, family.expires_at);
  return record;
}

std::string TokenAuthority::RefreshTokenFor(absl::string_view family_id,
                                            uint64_t generation) const {
  RefreshTokenParts parts;
  parts.family_id = std::string(family_id);
  parts.generation = generation;
  parts.secret = keys_->DeriveRefreshSecret(RefreshSecretContext(family_id, generation));
  return FormatRefreshToken(parts);
}

absl::StatusOr<std::string> TokenAuthority::MintAccessToken(const storage::FamilyRecord& family,
                                                            absl::string_view scope,
                                                            absl::Time now) {
  token::JwtClaims claims;
  claims.iss = options_.issuer;
  claims.sub = family.subject;
  claims.aud = family.audience;
  claims.iat = absl::FromUnixSeconds(absl::ToUnixSeconds(now));
  claims.nbf = claims.iat;
  claims.exp = AccessExpiry(family, now);
  claims.jti = token::Base64UrlEncode(token::RandomBytes(16));
  claims.client_id = family.client_id;
  claims.scope = std::string(scope);
  claims.sid = EncodeFamilyId(family.family_id);
  claims.extra_json = family.extra_claims_json;
  claims.cnf.jkt = family.cnf_jkt;  // RFC 7800: every token of a bound family carries it
  claims.cnf.x5t_s256 = family.cnf_x5t_s256;
  ASSIGN_OR_RETURN(std::string token, keys_->Sign(claims, "at+jwt"));
  // Verification refuses tokens over kMaxTokenBytes, so never hand one out -- nor one that
  // would outgrow it once a key with a longer signature signs it (after RotateSigningKey),
  // or the session could be issued today and never be refreshed.
  if (WorstCaseSignedSize(token) > kMaxTokenBytes) {
    return InvalidField("extra_claims", "extra_claims make the access token exceed 8 KiB");
  }
  return token;
}

absl::Time TokenAuthority::AccessExpiry(const storage::FamilyRecord& family,
                                         absl::Time now) const {
  // Never outlive the session: a family's absolute expiry caps its access tokens too.
  return std::min(absl::FromUnixSeconds(absl::ToUnixSeconds(now)) + options_.access_ttl,
                  absl::FromUnixSeconds(absl::ToUnixSeconds(family.expires_at)));
}

absl::StatusOr<TokenPair> TokenAuthority::MakePair(const storage::FamilyRecord& family,
                                                   const storage::RefreshRecord& refresh,
                                                   absl::Time now) {
  TokenPair pair;
  ASSIGN_OR_RETURN(pair.access_token,
                   MintAccessToken(family, refresh.scope, now));
  pair.refresh_token = RefreshTokenFor(family.family_id, refresh.generation);
  pair.expires_in =
      std::min(absl::ToInt64Seconds(options_.access_ttl), SecondsUntil(family.expires_at, now));
  pair.refresh_expires_in = SecondsUntil(refresh.expires_at, now);
  pair.family_id = EncodeFamilyId(family.family_id);
  if (!family.cnf_jkt.empty()) pair.token_type = "DPoP";  // RFC 9449 §5
  return pair;
}

absl::StatusOr<std::string> TokenAuthority::RotateSigningKey(absl::string_view alg,
                                                             const Caller& caller) {
  absl::StatusOr<std::string> kid = RotateKey(alg);
  AuditEvent event{.action = "key.rotate", .rpc = "RotateSigningKey"};
  if (kid.ok()) event.kid = *kid;
  Audit(std::move(event), kid.status(), caller);
  return kid;
}

absl::StatusOr<std::string> TokenAuthority::RotateKey(absl::string_view alg) {
  std::optional<token::Algorithm> algorithm;
  if (!alg.empty()) {
    absl::StatusOr<token::Algorithm> parsed = token::ParseAlgorithm(alg);
    if (!parsed.ok() || *parsed == token::Algorithm::kHS256) {
      return InvalidField("alg", "alg must be ES256, EdDSA, RS256 or PS256");
    }
    algorithm = *parsed;
  }
  ASSIGN_OR_RETURN(std::string kid, keys_->Rotate(algorithm));
  // Cached entries were bounded by the old key's retire time (none): recompute from now on.
  verify_cache_.Clear();
  return kid;
}

absl::Status TokenAuthority::ReloadKeys() {
  ASSIGN_OR_RETURN(bool changed, keys_->Reload());
  if (changed) verify_cache_.Clear();
  return absl::OkStatus();
}

absl::StatusOr<Stats> TokenAuthority::GetStats() {
  Stats stats;
  ASSIGN_OR_RETURN(stats.store, store_->GetStats());
  stats.signing_keys = keys_->Keys().size();
  return stats;
}

}  // namespace ta::core

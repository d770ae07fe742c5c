#include "server/token/key_ring.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <tuple>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "base/status_macros.h"
#include "server/token/key_store.h"
#include "token/base64url.h"
#include "token/crypto.h"
#include "token/json.h"
#include "token/jws.h"
#include "token/key.h"
#include "token/verification_keys.h"

namespace ta::token {
namespace {

using internal::ManifestEntry;

constexpr size_t kRefreshSecretBytes = 32;

struct RingEntry {
  std::shared_ptr<const Key> key;
  ManifestEntry meta;
};

// What Open or Rotate decided: the ring, and files to delete once it is persisted.
struct RingPlan {
  std::vector<RingEntry> entries;  // active first
  std::vector<std::string> expired_files;
  bool dirty = false;  // the manifest must be (re)written
};

bool Verifies(const ManifestEntry& meta, absl::Time now) {
  return meta.active || now < meta.retire_at;
}

// A key that may sign at some point: the active key and the keys it replaced (an operator's
// verify-only key, not active and never retiring, never signs).
bool MaySign(const ManifestEntry& meta) {
  return meta.active || meta.retire_at != absl::InfiniteFuture();
}

// The key that signs at `now`: of the keys that may sign and whose sign_from has come, the one
// that started last (ties: the active one, then the newest). Null only for a ring whose only
// signing key is still pending and replaced nothing, which Rotate never builds.
const RingEntry* Signer(const std::vector<RingEntry>& entries, absl::Time now) {
  const RingEntry* best = nullptr;
  auto rank = [](const RingEntry& e) {
    return std::make_tuple(e.meta.sign_from, e.meta.active, e.meta.created_at);
  };
  for (const RingEntry& e : entries) {
    if (!MaySign(e.meta) || !Verifies(e.meta, now) || e.meta.sign_from > now) continue;
    if (best == nullptr || rank(*best) < rank(e)) best = &e;
  }
  return best;
}

// The entries of a ring after rotating `fresh` in at `now`: the previous active key retires at
// the new key's sign_from + window; keys past their retire time go to `expired`.
std::vector<RingEntry> RotatedEntries(RingEntry fresh, const std::vector<RingEntry>& old,
                                      absl::Time now, absl::Duration window,
                                      std::vector<std::string>* expired) {
  std::vector<RingEntry> entries;
  const absl::Time sign_from = fresh.meta.sign_from;
  entries.push_back(std::move(fresh));
  for (RingEntry e : old) {
    if (e.meta.active) {
      e.meta.active = false;
      if (e.meta.sign_from == absl::InfinitePast()) e.meta.sign_from = e.meta.created_at;
      e.meta.retire_at = sign_from + window;
    }
    if (Verifies(e.meta, now)) {
      entries.push_back(std::move(e));
    } else if (expired != nullptr) {
      expired->push_back(e.meta.file);
    }
  }
  return entries;
}

absl::Status ValidateOptions(const KeyRingOptions& o, bool shared = false) {
  if (o.key_dir.empty() && !shared) {
    return ta::InvalidField("key_dir", "key directory is required");
  }
  if (o.publish_delay < absl::ZeroDuration()) {
    return ta::InvalidField("publish_delay", "must not be negative");
  }
  if (o.clock == nullptr) return ta::InvalidField("clock", "clock is required");
  if (o.retired_verify_window < absl::ZeroDuration()) {
    return ta::InvalidField("retired_verify_window", "must not be negative");
  }
  if (o.generate_algorithm == Algorithm::kHS256 && !o.allow_hs256) {
    return ta::InvalidField("generate_algorithm", "HS256 requires allow_hs256");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> LoadOrCreateRefreshSecret(const std::string& dir) {
  ASSIGN_OR_RETURN(std::optional<std::string> text,
                   internal::ReadPrivateFile(dir, internal::kRefreshSecretFile));
  if (text.has_value()) {
    absl::StatusOr<std::string> secret = Base64UrlDecode(absl::StripAsciiWhitespace(*text));
    if (!secret.ok() || secret->size() != kRefreshSecretBytes) {
      return absl::FailedPreconditionError(
          absl::StrCat(dir, "/", internal::kRefreshSecretFile, " must hold 32 bytes as base64url"));
    }
    return *std::move(secret);
  }
  std::string secret = RandomBytes(kRefreshSecretBytes);
  RETURN_IF_ERROR(
      internal::WriteFileAtomic(dir, internal::kRefreshSecretFile, Base64UrlEncode(secret) + "\n"));
  return secret;
}

absl::StatusOr<std::shared_ptr<const Key>> LoadKey(const std::string& dir,
                                                   const ManifestEntry& meta, bool allow_hs256) {
  if (meta.alg == Algorithm::kHS256 && !allow_hs256) {
    return absl::FailedPreconditionError(
        absl::StrCat(meta.file, " is an HS256 key but allow_hs256 is off"));
  }
  ASSIGN_OR_RETURN(std::optional<std::string> contents, internal::ReadPrivateFile(dir, meta.file));
  if (!contents.has_value()) {
    return absl::FailedPreconditionError(absl::StrCat(dir, "/", meta.file, " is missing"));
  }
  absl::StatusOr<std::unique_ptr<Key>> key = Key::FromFileContents(*contents, meta.alg);
  if (!key.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(meta.file, ": ", key.status().message()));
  }
  return std::shared_ptr<const Key>(*std::move(key));
}

// A new key's manifest entry (active, signing from `sign_from`).
ManifestEntry NewKeyEntry(const Key& key, absl::Time now, absl::Time sign_from) {
  ManifestEntry meta;
  meta.file = absl::StrCat(key.kid(), key.alg() == Algorithm::kHS256 ? ".hs256" : ".pem");
  meta.alg = key.alg();
  meta.created_at = now;
  meta.active = true;
  meta.sign_from = sign_from;
  return meta;
}

// Writes a new key's private file; returns its manifest entry (active).
absl::StatusOr<ManifestEntry> PersistNewKey(const std::string& dir, const Key& key,
                                            absl::Time now,
                                            absl::Time sign_from = absl::InfinitePast()) {
  ManifestEntry meta = NewKeyEntry(key, now, sign_from);
  ASSIGN_OR_RETURN(std::string contents, key.PrivateFileContents());
  RETURN_IF_ERROR(internal::WriteFileAtomic(dir, meta.file, contents));
  return meta;
}

absl::StatusOr<RingPlan> PlanFromManifest(const std::string& text, const KeyRingOptions& o,
                                          absl::Time now) {
  ASSIGN_OR_RETURN(std::vector<ManifestEntry> metas, internal::ParseManifest(text));
  RingPlan plan;
  for (ManifestEntry& meta : metas) {
    if (!Verifies(meta, now)) {
      plan.expired_files.push_back(meta.file);
      plan.dirty = true;
      continue;
    }
    if (meta.created_at == absl::InfinitePast()) {
      meta.created_at = now;
      plan.dirty = true;
    }
    ASSIGN_OR_RETURN(std::shared_ptr<const Key> key, LoadKey(o.key_dir, meta, o.allow_hs256));
    plan.entries.push_back({std::move(key), std::move(meta)});
  }
  return plan;
}

// No manifest yet: adopt the operator's single PEM file, or generate a key.
absl::StatusOr<RingPlan> PlanFirstStart(const KeyRingOptions& o, absl::Time now) {
  ASSIGN_OR_RETURN(std::vector<std::string> pems, internal::ListFiles(o.key_dir, ".pem"));
  if (pems.size() > 1) {
    return absl::FailedPreconditionError(absl::StrCat(o.key_dir, " holds several PEM files but no ",
                                                      internal::kManifestFile,
                                                      "; list them there"));
  }
  RingPlan plan;
  plan.dirty = true;
  if (pems.size() == 1) {
    ASSIGN_OR_RETURN(std::optional<std::string> pem, internal::ReadPrivateFile(o.key_dir, pems[0]));
    absl::StatusOr<Algorithm> alg = Key::NaturalAlgorithm(pem.value_or(""));
    if (!alg.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(pems[0], ": ", alg.status().message()));
    }
    ManifestEntry meta;
    meta.file = pems[0];
    meta.alg = *alg;
    meta.created_at = now;
    meta.active = true;
    ASSIGN_OR_RETURN(std::shared_ptr<const Key> key, LoadKey(o.key_dir, meta, o.allow_hs256));
    plan.entries.push_back({std::move(key), std::move(meta)});
    return plan;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Key> key, Key::Generate(o.generate_algorithm));
  ASSIGN_OR_RETURN(ManifestEntry meta, PersistNewKey(o.key_dir, *key, now));
  plan.entries.push_back({std::move(key), std::move(meta)});
  return plan;
}

// Exactly one active key, moved to the front; no kid twice.
absl::Status Normalize(std::vector<RingEntry>* entries) {
  auto active = std::stable_partition(entries->begin(), entries->end(),
                                      [](const RingEntry& e) { return e.meta.active; });
  if (active - entries->begin() != 1) {
    return absl::FailedPreconditionError(
        absl::StrCat(internal::kManifestFile, " must mark exactly one key active"));
  }
  for (size_t i = 0; i < entries->size(); ++i) {
    for (size_t j = i + 1; j < entries->size(); ++j) {
      if ((*entries)[i].key->kid() == (*entries)[j].key->kid()) {
        return absl::FailedPreconditionError(absl::StrCat(
            (*entries)[i].meta.file, " and ", (*entries)[j].meta.file, " hold the same key"));
      }
    }
  }
  return absl::OkStatus();
}

// Persists the manifest for `plan` and deletes the files of expired keys.
absl::Status Commit(const std::string& dir, const RingPlan& plan) {
  std::vector<ManifestEntry> metas;
  for (const RingEntry& e : plan.entries) metas.push_back(e.meta);
  RETURN_IF_ERROR(
      internal::WriteFileAtomic(dir, internal::kManifestFile, internal::SerializeManifest(metas)));
  for (const std::string& file : plan.expired_files) internal::RemoveFile(dir, file);
  return absl::OkStatus();
}

// --- Shared rings: the sealed document (key_store.h SharedRingDocument) ---------------------

constexpr absl::string_view kRefreshAad = "ta-keyring/v1/refresh";

std::string KeyAad(absl::string_view file) { return absl::StrCat("ta-keyring/v1/key/", file); }

// The whole ring sealed as one value (key_store.h SealedRingEnvelope, format 2): its AAD names
// the generation, so a ring cannot be altered, or an older one passed off as newer.
std::string RingAad(uint64_t generation) { return absl::StrCat("ta-keyring/v2/ring/", generation); }

absl::StatusOr<std::string> SealRing(const std::vector<RingEntry>& entries,
                                     absl::string_view refresh_secret, const KeyEncryptionKey& kek,
                                     uint64_t generation) {
  internal::SharedRingDocument doc;
  doc.kek_id = kek.Fingerprint();
  doc.sealed_refresh_secret = Base64UrlEncode(kek.Seal(refresh_secret, kRefreshAad));
  for (const RingEntry& e : entries) {
    ManifestEntry meta = e.meta;
    ASSIGN_OR_RETURN(std::string contents, e.key->PrivateFileContents());
    meta.sealed = Base64UrlEncode(kek.Seal(contents, KeyAad(meta.file)));
    doc.entries.push_back(std::move(meta));
  }
  internal::SealedRingEnvelope envelope;
  envelope.kek_id = doc.kek_id;
  envelope.generation = generation;
  envelope.sealed_ring =
      Base64UrlEncode(kek.Seal(internal::SerializeSharedRing(doc), RingAad(generation)));
  return internal::SerializeSealedRingEnvelope(envelope);
}

absl::Status RingCorrupt(absl::string_view why) {
  return ta::Error(absl::StatusCode::kDataLoss, "store_corrupt",
                   absl::StrCat("the shared key ring in the store is unusable: ", why));
}

struct UnsealedRing {
  std::vector<RingEntry> entries;
  std::string refresh_secret;
  uint64_t generation = 0;  // 0: format 1, which had none
};

absl::Status CheckKek(absl::string_view kek_id, const KeyEncryptionKey& kek) {
  if (kek_id == kek.Fingerprint()) return absl::OkStatus();
  return ta::Error(absl::StatusCode::kFailedPrecondition, "kek_mismatch",
                   absl::StrCat("the key ring in the store was sealed under key-encryption key ",
                                kek_id, "; --key_encryption_key_file holds ", kek.Fingerprint(),
                                " (every replica needs the same file)"));
}

absl::Status RolledBack(uint64_t stored, uint64_t seen) {
  return ta::Error(absl::StatusCode::kDataLoss, "key_ring_rollback",
                   absl::StrCat("the key ring in the store (",
                                stored == 0 ? std::string("format 1, unversioned")
                                            : absl::StrCat("generation ", stored),
                                ") is older than the one this server has seen (generation ", seen,
                                "): an older ring was written back; keeping the newer one"));
}

// The format-1 document inside `document` (format 2: unsealed, its generation checked against
// `min_generation`, the highest this server has seen; format 1 only while it has seen none).
absl::StatusOr<std::string> OpenEnvelope(absl::string_view document, const KeyEncryptionKey& kek,
                                         uint64_t min_generation, uint64_t* generation) {
  absl::StatusOr<internal::SealedRingEnvelope> envelope =
      internal::ParseSealedRingEnvelope(document);
  if (!envelope.ok()) return RingCorrupt(envelope.status().message());
  *generation = envelope->generation;
  if (envelope->format == 1) {
    if (min_generation > 0) return RolledBack(0, min_generation);
    return std::string(document);
  }
  RETURN_IF_ERROR(CheckKek(envelope->kek_id, kek));
  if (envelope->generation < min_generation) {
    return RolledBack(envelope->generation, min_generation);
  }
  absl::StatusOr<std::string> sealed = Base64UrlDecode(envelope->sealed_ring);
  if (!sealed.ok()) return RingCorrupt("sealed ring is not base64url");
  absl::StatusOr<std::string> inner = kek.Unseal(*sealed, RingAad(envelope->generation));
  if (!inner.ok()) {
    return RingCorrupt("the sealed ring does not open: altered, or not sealed for its generation");
  }
  return inner;
}

absl::StatusOr<UnsealedRing> UnsealRing(absl::string_view document, const KeyEncryptionKey& kek,
                                        const KeyRingOptions& o, absl::Time now,
                                        uint64_t min_generation) {
  uint64_t generation = 0;
  ASSIGN_OR_RETURN(std::string inner, OpenEnvelope(document, kek, min_generation, &generation));
  absl::StatusOr<internal::SharedRingDocument> doc = internal::ParseSharedRing(inner);
  if (!doc.ok()) return RingCorrupt(doc.status().message());
  RETURN_IF_ERROR(CheckKek(doc->kek_id, kek));
  auto unseal = [&](absl::string_view sealed_b64,
                    absl::string_view aad) -> absl::StatusOr<std::string> {
    absl::StatusOr<std::string> sealed = Base64UrlDecode(sealed_b64);
    if (!sealed.ok()) return RingCorrupt("sealed value is not base64url");
    absl::StatusOr<std::string> plain = kek.Unseal(*sealed, aad);
    if (!plain.ok()) return RingCorrupt(absl::StrCat("a sealed value does not open (", aad, ")"));
    return plain;
  };
  UnsealedRing ring;
  ring.generation = generation;
  ASSIGN_OR_RETURN(ring.refresh_secret, unseal(doc->sealed_refresh_secret, kRefreshAad));
  if (ring.refresh_secret.size() != kRefreshSecretBytes) return RingCorrupt("refresh secret size");
  for (ManifestEntry& meta : doc->entries) {
    if (!Verifies(meta, now)) continue;  // dropped from the store at the next rotation
    if (meta.alg == Algorithm::kHS256 && !o.allow_hs256) {
      return absl::FailedPreconditionError(
          absl::StrCat(meta.file, " is an HS256 key but allow_hs256 is off"));
    }
    ASSIGN_OR_RETURN(std::string contents, unseal(meta.sealed, KeyAad(meta.file)));
    absl::StatusOr<std::unique_ptr<Key>> key = Key::FromFileContents(contents, meta.alg);
    if (!key.ok()) return RingCorrupt(absl::StrCat(meta.file, ": ", key.status().message()));
    if (!absl::StartsWith(meta.file, absl::StrCat((*key)->kid(), "."))) {
      return RingCorrupt(absl::StrCat(meta.file, " holds another key"));
    }
    meta.sealed.clear();
    ring.entries.push_back({std::shared_ptr<const Key>(*std::move(key)), std::move(meta)});
  }
  RETURN_IF_ERROR(Normalize(&ring.entries));
  return ring;
}

}  // namespace

struct KeyRing::State {
  std::vector<RingEntry> entries;  // entries[0] is the active key (maybe still pending)
  uint64_t version = 0;            // a shared ring's stored version
  // A shared ring's sealed generation (0: loaded from format 1). Never goes down: a ring
  // older than this one is refused (key_ring_rollback).
  uint64_t generation = 0;
};

struct KeyRing::Shared {
  SharedKeyStore* store;
  KeyEncryptionKey kek;
};

KeyRing::KeyRing(const KeyRingOptions& options, std::string refresh_secret,
                 std::shared_ptr<const State> state, std::unique_ptr<Shared> shared)
    : options_(options),
      refresh_secret_(std::move(refresh_secret)),
      shared_(std::move(shared)),
      state_(std::move(state)) {}

KeyRing::~KeyRing() = default;

absl::StatusOr<std::unique_ptr<KeyRing>> KeyRing::Open(const KeyRingOptions& options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  RETURN_IF_ERROR(internal::EnsurePrivateDir(options.key_dir));
  ASSIGN_OR_RETURN(std::string refresh_secret, LoadOrCreateRefreshSecret(options.key_dir));
  ASSIGN_OR_RETURN(std::optional<std::string> manifest,
                   internal::ReadPrivateFile(options.key_dir, internal::kManifestFile));
  const absl::Time now = options.clock->Now();
  absl::StatusOr<RingPlan> plan = manifest.has_value() ? PlanFromManifest(*manifest, options, now)
                                                       : PlanFirstStart(options, now);
  if (!plan.ok()) return plan.status();
  RETURN_IF_ERROR(Normalize(&plan->entries));
  if (plan->dirty) RETURN_IF_ERROR(Commit(options.key_dir, *plan));
  auto state = std::make_shared<State>();
  state->entries = std::move(plan->entries);
  return absl::WrapUnique(new KeyRing(options, std::move(refresh_secret), std::move(state), nullptr));
}

absl::StatusOr<std::unique_ptr<KeyRing>> KeyRing::OpenShared(const KeyRingOptions& options,
                                                             SharedKeyStore* store,
                                                             KeyEncryptionKey kek) {
  RETURN_IF_ERROR(ValidateOptions(options, /*shared=*/true));
  if (store == nullptr) return ta::InvalidField("store", "a shared ring needs a store");
  // Two rounds: when another replica creates the ring between our read and our write, the
  // second read finds it.
  for (int attempt = 0; attempt < 2; ++attempt) {
    ASSIGN_OR_RETURN(SharedKeyStore::Versioned stored, store->Load(0));
    const absl::Time now = options.clock->Now();
    if (stored.version != 0) {
      ASSIGN_OR_RETURN(UnsealedRing ring, UnsealRing(stored.document, kek, options, now, 0));
      auto state = std::make_shared<State>();
      state->version = stored.version;
      state->generation = ring.generation;
      // (A format-1 ring is sealed as format 2 by the next rotation, not here: replicas still
      // running the previous release read format 1 only, so a rolling upgrade keeps working
      // until someone rotates.)
      state->entries = std::move(ring.entries);
      return absl::WrapUnique(new KeyRing(options, std::move(ring.refresh_secret),
                                          std::move(state),
                                          absl::WrapUnique(new Shared{store, std::move(kek)})));
    }
    // No ring stored yet: the key directory's (an upgrade from one node or a hand-shared
    // directory), or a new key and secret.
    std::vector<RingEntry> entries;
    std::string refresh_secret;
    absl::StatusOr<std::optional<std::string>> manifest =
        options.key_dir.empty()
            ? absl::StatusOr<std::optional<std::string>>(std::nullopt)
            : internal::ReadPrivateFile(options.key_dir, internal::kManifestFile);
    if (!manifest.ok()) return manifest.status();
    if (manifest->has_value()) {
      ASSIGN_OR_RETURN(RingPlan plan, PlanFromManifest(**manifest, options, now));
      RETURN_IF_ERROR(Normalize(&plan.entries));
      ASSIGN_OR_RETURN(refresh_secret, LoadOrCreateRefreshSecret(options.key_dir));
      entries = std::move(plan.entries);
    } else {
      ASSIGN_OR_RETURN(std::unique_ptr<Key> key, Key::Generate(options.generate_algorithm));
      ManifestEntry meta = NewKeyEntry(*key, now, absl::InfinitePast());
      entries.push_back({std::shared_ptr<const Key>(std::move(key)), std::move(meta)});
      refresh_secret = RandomBytes(kRefreshSecretBytes);
    }
    ASSIGN_OR_RETURN(std::string document, SealRing(entries, refresh_secret, kek, 1));
    absl::Status set = store->CompareAndSet(0, document);
    if (set.code() == absl::StatusCode::kAborted) continue;
    RETURN_IF_ERROR(set);
    auto state = std::make_shared<State>();
    state->entries = std::move(entries);
    state->version = 1;
    state->generation = 1;
    return absl::WrapUnique(new KeyRing(options, std::move(refresh_secret), std::move(state),
                                        absl::WrapUnique(new Shared{store, std::move(kek)})));
  }
  return ta::Error(absl::StatusCode::kUnavailable, "store_unavailable",
                   "the shared key ring changed while it was being created; start again");
}

std::shared_ptr<const KeyRing::State> KeyRing::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

void KeyRing::Install(std::shared_ptr<const State> state) {
  absl::MutexLock lock(&mu_);
  state_ = std::move(state);
}

absl::StatusOr<std::string> KeyRing::Sign(const JwtClaims& claims, absl::string_view typ) const {
  std::shared_ptr<const State> state = Snapshot();
  const RingEntry* signer = Signer(state->entries, options_.clock->Now());
  if (signer == nullptr) {
    return absl::FailedPreconditionError("no signing key is active yet (publish delay)");
  }
  const Key& key = *signer->key;
  ASSIGN_OR_RETURN(std::string payload, EncodeClaims(claims));
  return SignCompactJws(EncodeJwsHeader(key.alg(), key.kid(), typ), payload, key);
}

absl::StatusOr<VerifiedJwt> KeyRing::Verify(absl::string_view token,
                                            const VerifyPolicy& policy) const {
  // The checks are the token library's (token/verification_keys.h); the ring only says which
  // key verifies a kid now.
  const absl::Time now = options_.clock->Now();
  std::shared_ptr<const State> state = Snapshot();
  auto find = [&](absl::string_view kid) -> const Key* {
    const Key* key = nullptr;
    for (const RingEntry& e : state->entries) {
      if (e.key->kid() == kid && Verifies(e.meta, now)) key = e.key.get();
    }
    return key;
  };
  return VerifyJwt(token, policy, now, find);
}

absl::StatusOr<std::string> KeyRing::Rotate(std::optional<Algorithm> alg) {
  absl::MutexLock rotate_lock(&rotate_mu_);
  std::shared_ptr<const State> old = Snapshot();
  const Algorithm new_alg = alg.value_or(old->entries.front().key->alg());
  if (new_alg == Algorithm::kHS256 && !options_.allow_hs256) {
    return ta::InvalidField("alg", "HS256 requires allow_hs256");
  }
  if (shared_ != nullptr) return RotateShared(new_alg);
  const absl::Time now = options_.clock->Now();
  ASSIGN_OR_RETURN(std::unique_ptr<Key> key, Key::Generate(new_alg));
  ASSIGN_OR_RETURN(ManifestEntry meta,
                   PersistNewKey(options_.key_dir, *key, now, now + options_.publish_delay));
  RingPlan plan;
  plan.entries = RotatedEntries({std::shared_ptr<const Key>(std::move(key)), std::move(meta)},
                                old->entries, now, options_.retired_verify_window,
                                &plan.expired_files);
  if (absl::Status s = Commit(options_.key_dir, plan); !s.ok()) {
    internal::RemoveFile(options_.key_dir, plan.entries.front().meta.file);
    return s;
  }
  std::string kid = plan.entries.front().key->kid();
  auto state = std::make_shared<State>();
  state->entries = std::move(plan.entries);
  Install(std::move(state));
  return kid;
}

absl::StatusOr<std::string> KeyRing::RotateShared(Algorithm alg) {
  // Build on what the store holds now, not on this replica's copy, so that only a rotation
  // committed between this read and the write below makes ours lose.
  ASSIGN_OR_RETURN(SharedKeyStore::Versioned stored, shared_->store->Load(0));
  const absl::Time now = options_.clock->Now();
  if (stored.version == 0) return RingCorrupt("the ring is gone from the store");
  const uint64_t seen = Snapshot()->generation;
  ASSIGN_OR_RETURN(UnsealedRing current,
                   UnsealRing(stored.document, shared_->kek, options_, now, seen));
  // Above every generation sealed so far (a format-1 ring becomes format 2 here).
  const uint64_t generation = std::max({stored.version, current.generation, seen}) + 1;
  ASSIGN_OR_RETURN(std::unique_ptr<Key> key, Key::Generate(alg));
  // Signing starts publish_delay after the later of this replica's clock and the store's
  // (issue 22): by a clock running behind, the key would sign before verifiers' cached
  // JWKS could hold it.
  absl::Time sign_base = now;
  absl::StatusOr<absl::Time> store_now = shared_->store->ClockNow();
  if (store_now.ok()) {
    sign_base = std::max(now, *store_now);
  } else if (store_now.status().code() != absl::StatusCode::kUnimplemented) {
    return store_now.status();
  }
  ManifestEntry meta = NewKeyEntry(*key, now, sign_base + options_.publish_delay);
  std::vector<RingEntry> entries =
      RotatedEntries({std::shared_ptr<const Key>(std::move(key)), std::move(meta)},
                     current.entries, now, options_.retired_verify_window, nullptr);
  ASSIGN_OR_RETURN(std::string document,
                   SealRing(entries, refresh_secret_, shared_->kek, generation));
  absl::Status set = shared_->store->CompareAndSet(stored.version, document);
  if (set.code() == absl::StatusCode::kAborted) {
    (void)Reload();  // the winner's key; a failure here is retried by the next Reload
    return ta::Error(absl::StatusCode::kAborted, "key_rotation_conflict",
                     "another server rotated the signing key at the same moment; its key is "
                     "the new one (see GetJwks)");
  }
  RETURN_IF_ERROR(set);
  std::string kid = entries.front().key->kid();
  auto state = std::make_shared<State>();
  state->entries = std::move(entries);
  state->version = stored.version + 1;
  state->generation = generation;
  Install(std::move(state));
  return kid;
}

absl::StatusOr<bool> KeyRing::Reload() {
  if (shared_ == nullptr) return false;
  std::shared_ptr<const State> known = Snapshot();
  ASSIGN_OR_RETURN(SharedKeyStore::Versioned stored, shared_->store->Load(known->version));
  if (stored.version == known->version || stored.document.empty()) return false;
  ASSIGN_OR_RETURN(UnsealedRing ring, UnsealRing(stored.document, shared_->kek, options_,
                                                 options_.clock->Now(), known->generation));
  if (ring.refresh_secret != refresh_secret_) {
    return RingCorrupt("the refresh secret changed; refresh tokens would stop working");
  }
  auto state = std::make_shared<State>();
  state->entries = std::move(ring.entries);
  state->version = stored.version;
  state->generation = ring.generation;
  absl::MutexLock lock(&mu_);
  if (state_->version >= state->version) return false;  // a rotation here got further
  state_ = std::move(state);
  return true;
}

std::string KeyRing::JwksJson() const {
  std::shared_ptr<const State> state = Snapshot();
  const absl::Time now = options_.clock->Now();
  rapidjson::StringBuffer buffer;
  internal::JsonWriter w(buffer);
  w.StartObject();
  internal::WriteKey(w, "keys");
  w.StartArray();
  for (const RingEntry& e : state->entries) {
    if (e.key->alg() == Algorithm::kHS256 || !Verifies(e.meta, now)) continue;
    w.StartObject();
    for (const auto& [name, value] : e.key->PublicJwkMembers()) {
      internal::WriteKey(w, name);
      internal::WriteString(w, value);
    }
    for (const auto& [name, value] : {std::pair<absl::string_view, absl::string_view>{"use", "sig"},
                                      {"alg", AlgorithmName(e.key->alg())},
                                      {"kid", e.key->kid()}}) {
      internal::WriteKey(w, name);
      internal::WriteString(w, value);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::vector<KeyInfo> KeyRing::Keys() const {
  std::shared_ptr<const State> state = Snapshot();
  const RingEntry* signer = Signer(state->entries, options_.clock->Now());
  std::vector<KeyInfo> keys;
  for (const RingEntry& e : state->entries) {
    absl::Time sign_from = e.meta.sign_from;
    if (!MaySign(e.meta)) sign_from = absl::InfiniteFuture();
    keys.push_back(KeyInfo{e.key->kid(), e.key->alg(), &e == signer, e.meta.created_at,
                           e.meta.active ? absl::InfiniteFuture() : e.meta.retire_at, sign_from});
  }
  return keys;
}

std::string KeyRing::DeriveRefreshSecret(absl::string_view context) const {
  return HmacSha256(refresh_secret_, context);
}

absl::StatusOr<int> KeyRing::ExportFiles(const std::string& dest_dir) {
  absl::MutexLock rotate_lock(&rotate_mu_);
  return CopyKeyDirectory(options_.key_dir, dest_dir);
}

absl::StatusOr<int> CopyKeyDirectory(const std::string& from, const std::string& to) {
  auto resolved = [](const std::string& dir) {
    std::error_code ec;
    std::filesystem::path p = std::filesystem::weakly_canonical(dir, ec);
    return ec ? std::filesystem::path(dir).lexically_normal() : p;
  };
  if (resolved(from) == resolved(to)) {
    return ta::InvalidField("key_dir", absl::StrCat("cannot copy the key directory ", from,
                                                    " onto itself"));
  }
  ASSIGN_OR_RETURN(std::optional<std::string> manifest,
                   internal::ReadPrivateFile(from, internal::kManifestFile));
  if (!manifest.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat(from, " holds no ", internal::kManifestFile, ": not a key directory"));
  }
  ASSIGN_OR_RETURN(std::vector<ManifestEntry> metas, internal::ParseManifest(*manifest));
  std::vector<std::string> names = {std::string(internal::kRefreshSecretFile)};
  for (const ManifestEntry& meta : metas) names.push_back(meta.file);
  RETURN_IF_ERROR(internal::EnsurePrivateDir(to));
  // Key files an earlier copy wrote (its manifest names them): the only ones this copy may
  // remove. Anything else in `to` was not written here and is left alone (issue 22).
  std::vector<std::string> earlier;
  absl::StatusOr<std::optional<std::string>> old_manifest =
      internal::ReadPrivateFile(to, internal::kManifestFile);
  if (old_manifest.ok() && old_manifest->has_value()) {
    absl::StatusOr<std::vector<ManifestEntry>> old = internal::ParseManifest(**old_manifest);
    if (old.ok()) {
      for (const ManifestEntry& meta : *old) earlier.push_back(meta.file);
    }
  }
  if (::chmod(to.c_str(), 0700) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("chmod 0700 ", to, ": ", ::strerror(errno)));
  }
  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(std::optional<std::string> contents, internal::ReadPrivateFile(from, name));
    if (!contents.has_value()) {
      return absl::FailedPreconditionError(absl::StrCat(from, "/", name, " is missing"));
    }
    RETURN_IF_ERROR(internal::WriteFileAtomic(to, name, *contents));
  }
  RETURN_IF_ERROR(internal::WriteFileAtomic(to, internal::kManifestFile, *manifest));
  for (const std::string& file : earlier) {
    if (std::find(names.begin(), names.end(), file) == names.end()) {
      internal::RemoveFile(to, file);
    }
  }
  return static_cast<int>(names.size()) + 1;
}

}  // namespace ta::token

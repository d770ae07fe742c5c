#include "server/token/key_ring.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "base/status_macros.h"
#include "server/token/key_ring_internal.h"
#include "server/token/key_store.h"
#include "token/base64url.h"
#include "token/crypto.h"
#include "token/json.h"
#include "token/jws.h"
#include "token/key.h"
#include "token/verification_keys.h"

namespace ta::token {
namespace {

using internal::Commit;
using internal::LoadOrCreateRefreshSecret;
using internal::ManifestEntry;
using internal::MaySign;
using internal::NewKeyEntry;
using internal::Normalize;
using internal::PersistNewKey;
using internal::PlanFirstStart;
using internal::PlanFromManifest;
using internal::RingCorrupt;
using internal::RingEntry;
using internal::RingPlan;
using internal::RotatedEntries;
using internal::SealRing;
using internal::Signer;
using internal::UnsealedRing;
using internal::UnsealRing;
using internal::Verifies;

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

// The ring a new shared store starts with: the key directory's when it has a keyring.json (an
// upgrade from one node or a hand-shared directory), else a new key and refresh secret.
absl::StatusOr<UnsealedRing> SeedSharedRing(const KeyRingOptions& options, absl::Time now) {
  UnsealedRing ring;
  absl::StatusOr<std::optional<std::string>> manifest =
      options.key_dir.empty() ? absl::StatusOr<std::optional<std::string>>(std::nullopt)
                              : internal::ReadPrivateFile(options.key_dir, internal::kManifestFile);
  if (!manifest.ok()) return manifest.status();
  if (manifest->has_value()) {
    ASSIGN_OR_RETURN(RingPlan plan, PlanFromManifest(**manifest, options, now));
    RETURN_IF_ERROR(Normalize(&plan.entries));
    ASSIGN_OR_RETURN(ring.refresh_secret, LoadOrCreateRefreshSecret(options.key_dir));
    ring.entries = std::move(plan.entries);
  } else {
    ASSIGN_OR_RETURN(std::unique_ptr<Key> key, Key::Generate(options.generate_algorithm));
    ManifestEntry meta = NewKeyEntry(*key, now, absl::InfinitePast());
    ring.entries.push_back({std::shared_ptr<const Key>(std::move(key)), std::move(meta)});
    ring.refresh_secret = RandomBytes(internal::kRefreshSecretBytes);
  }
  ring.generation = 1;
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
    uint64_t version = stored.version;
    UnsealedRing ring;
    if (stored.version != 0) {
      // (A format-1 ring is sealed as format 2 by the next rotation, not here: replicas still
      // running the previous release read format 1 only, so a rolling upgrade keeps working
      // until someone rotates.)
      ASSIGN_OR_RETURN(ring, UnsealRing(stored.document, kek, options, now, 0));
    } else {
      ASSIGN_OR_RETURN(ring, SeedSharedRing(options, now));
      ASSIGN_OR_RETURN(std::string document, SealRing(ring.entries, ring.refresh_secret, kek, 1));
      absl::Status set = store->CompareAndSet(0, document);
      if (set.code() == absl::StatusCode::kAborted) continue;
      RETURN_IF_ERROR(set);
      version = 1;
    }
    auto state = std::make_shared<State>();
    state->entries = std::move(ring.entries);
    state->version = version;
    state->generation = ring.generation;
    return absl::WrapUnique(new KeyRing(options, std::move(ring.refresh_secret), std::move(state),
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
  ASSIGN_OR_RETURN(const absl::Time store_now, shared_->store->ClockNow());
  const absl::Time sign_base = std::max(now, store_now);
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

}  // namespace ta::token

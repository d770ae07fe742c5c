#include "server/token/key_ring.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/base/error.h"
#include "server/base/status_macros.h"
#include "server/token/base64url.h"
#include "server/token/crypto.h"
#include "server/token/json.h"
#include "server/token/jws.h"
#include "server/token/key.h"
#include "server/token/key_store.h"

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

absl::Status ValidateOptions(const KeyRingOptions& o) {
  if (o.key_dir.empty()) return ta::InvalidField("key_dir", "key directory is required");
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

// Writes a new key's private file; returns its manifest entry (active).
absl::StatusOr<ManifestEntry> PersistNewKey(const std::string& dir, const Key& key,
                                            absl::Time now) {
  ManifestEntry meta;
  meta.file = absl::StrCat(key.kid(), key.alg() == Algorithm::kHS256 ? ".hs256" : ".pem");
  meta.alg = key.alg();
  meta.created_at = now;
  meta.active = true;
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
    ManifestEntry meta{pems[0], *alg, now, true, absl::InfiniteFuture()};
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

absl::Status Reject(absl::string_view why, absl::string_view message) {
  return ta::Error(absl::StatusCode::kUnauthenticated, why, message);
}

}  // namespace

struct KeyRing::State {
  std::vector<RingEntry> entries;  // entries[0] is the active key
};

KeyRing::KeyRing(const KeyRingOptions& options, std::string refresh_secret,
                 std::shared_ptr<const State> state)
    : options_(options), refresh_secret_(std::move(refresh_secret)), state_(std::move(state)) {}

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
  return absl::WrapUnique(new KeyRing(options, std::move(refresh_secret), std::move(state)));
}

std::shared_ptr<const KeyRing::State> KeyRing::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

absl::StatusOr<std::string> KeyRing::Sign(const JwtClaims& claims, absl::string_view typ) const {
  std::shared_ptr<const State> state = Snapshot();
  const Key& key = *state->entries.front().key;
  ASSIGN_OR_RETURN(std::string payload, EncodeClaims(claims));
  return SignCompactJws(EncodeJwsHeader(key.alg(), key.kid(), typ), payload, key);
}

absl::StatusOr<VerifiedJwt> KeyRing::Verify(absl::string_view token,
                                            const VerifyPolicy& policy) const {
  if (token.size() > policy.max_token_bytes) {
    return ta::Error(absl::StatusCode::kInvalidArgument, reason::kTokenTooLarge,
                     "token exceeds the size limit");
  }
  ASSIGN_OR_RETURN(CompactJws jws, SplitCompactJws(token));
  ASSIGN_OR_RETURN(JwsHeader header, ParseJwsHeader(jws.header_b64));
  if (!policy.expected_typ.empty() && !TypMatches(header.typ, policy.expected_typ)) {
    return Reject(reason::kWrongTyp, "token type is not accepted here");
  }
  const absl::Time now = options_.clock->Now();
  std::shared_ptr<const State> state = Snapshot();
  const Key* key = nullptr;
  for (const RingEntry& e : state->entries) {
    if (!header.kid.empty() && e.key->kid() == header.kid && Verifies(e.meta, now)) {
      key = e.key.get();
    }
  }
  if (key == nullptr) return Reject(reason::kUnknownKid, "no verifying key has this kid");
  if (header.alg != key->alg()) {
    return Reject(reason::kAlgMismatch, "token alg differs from the key's algorithm");
  }
  RETURN_IF_ERROR(CheckJwsSignature(jws, *key));
  absl::StatusOr<std::string> payload = Base64UrlDecode(jws.payload_b64);
  if (!payload.ok()) return Reject(reason::kMalformedToken, "JWS payload encoding");
  ASSIGN_OR_RETURN(JwtClaims claims, DecodeClaims(*payload));
  RETURN_IF_ERROR(CheckClaims(claims, policy, now));
  return VerifiedJwt{key->kid(), key->alg(), std::move(claims), *std::move(payload)};
}

absl::StatusOr<std::string> KeyRing::Rotate(std::optional<Algorithm> alg) {
  absl::MutexLock rotate_lock(&rotate_mu_);
  std::shared_ptr<const State> old = Snapshot();
  const Algorithm new_alg = alg.value_or(old->entries.front().key->alg());
  if (new_alg == Algorithm::kHS256 && !options_.allow_hs256) {
    return ta::InvalidField("alg", "HS256 requires allow_hs256");
  }
  const absl::Time now = options_.clock->Now();
  ASSIGN_OR_RETURN(std::unique_ptr<Key> key, Key::Generate(new_alg));
  ASSIGN_OR_RETURN(ManifestEntry meta, PersistNewKey(options_.key_dir, *key, now));
  RingPlan plan;
  plan.entries.push_back({std::shared_ptr<const Key>(std::move(key)), std::move(meta)});
  for (RingEntry e : old->entries) {
    if (e.meta.active) {
      e.meta.active = false;
      e.meta.retire_at = now + options_.retired_verify_window;
    }
    if (Verifies(e.meta, now)) {
      plan.entries.push_back(std::move(e));
    } else {
      plan.expired_files.push_back(e.meta.file);
    }
  }
  if (absl::Status s = Commit(options_.key_dir, plan); !s.ok()) {
    internal::RemoveFile(options_.key_dir, plan.entries.front().meta.file);
    return s;
  }
  std::string kid = plan.entries.front().key->kid();
  auto state = std::make_shared<State>();
  state->entries = std::move(plan.entries);
  absl::MutexLock lock(&mu_);
  state_ = std::move(state);
  return kid;
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
  std::vector<KeyInfo> keys;
  for (const RingEntry& e : state->entries) {
    keys.push_back(KeyInfo{e.key->kid(), e.key->alg(), e.meta.active, e.meta.created_at,
                           e.meta.active ? absl::InfiniteFuture() : e.meta.retire_at});
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
  for (absl::string_view suffix : {".pem", ".hs256"}) {
    ASSIGN_OR_RETURN(std::vector<std::string> present, internal::ListFiles(to, suffix));
    for (const std::string& file : present) {
      if (std::find(names.begin(), names.end(), file) == names.end()) {
        internal::RemoveFile(to, file);
      }
    }
  }
  return static_cast<int>(names.size()) + 1;
}

}  // namespace ta::token

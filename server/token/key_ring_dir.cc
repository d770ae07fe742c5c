// A ring kept in a key directory (key_store.h has the layout): loading it, its first start,
// persisting a plan, and copying the directory.
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "base/status_macros.h"
#include "server/token/key_ring_internal.h"
#include "token/base64url.h"
#include "token/crypto.h"

namespace ta::token {
namespace internal {
namespace {

absl::StatusOr<std::shared_ptr<const Key>> LoadKey(const std::string& dir,
                                                   const ManifestEntry& meta, bool allow_hs256) {
  if (meta.alg == Algorithm::kHS256 && !allow_hs256) {
    return absl::FailedPreconditionError(
        absl::StrCat(meta.file, " is an HS256 key but allow_hs256 is off"));
  }
  ASSIGN_OR_RETURN(std::optional<std::string> contents, ReadPrivateFile(dir, meta.file));
  if (!contents.has_value()) {
    return absl::FailedPreconditionError(absl::StrCat(dir, "/", meta.file, " is missing"));
  }
  absl::StatusOr<std::unique_ptr<Key>> key = Key::FromFileContents(*contents, meta.alg);
  if (!key.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(meta.file, ": ", key.status().message()));
  }
  return std::shared_ptr<const Key>(*std::move(key));
}

}  // namespace

absl::StatusOr<std::string> LoadOrCreateRefreshSecret(const std::string& dir) {
  ASSIGN_OR_RETURN(std::optional<std::string> text, ReadPrivateFile(dir, kRefreshSecretFile));
  if (text.has_value()) {
    absl::StatusOr<std::string> secret = Base64UrlDecode(absl::StripAsciiWhitespace(*text));
    if (!secret.ok() || secret->size() != kRefreshSecretBytes) {
      return absl::FailedPreconditionError(
          absl::StrCat(dir, "/", kRefreshSecretFile, " must hold 32 bytes as base64url"));
    }
    return *std::move(secret);
  }
  std::string secret = RandomBytes(kRefreshSecretBytes);
  RETURN_IF_ERROR(WriteFileAtomic(dir, kRefreshSecretFile, Base64UrlEncode(secret) + "\n"));
  return secret;
}

absl::StatusOr<ManifestEntry> PersistNewKey(const std::string& dir, const Key& key, absl::Time now,
                                            absl::Time sign_from) {
  ManifestEntry meta = NewKeyEntry(key, now, sign_from);
  ASSIGN_OR_RETURN(std::string contents, key.PrivateFileContents());
  RETURN_IF_ERROR(WriteFileAtomic(dir, meta.file, contents));
  return meta;
}

absl::StatusOr<RingPlan> PlanFromManifest(const std::string& text, const KeyRingOptions& o,
                                          absl::Time now) {
  ASSIGN_OR_RETURN(std::vector<ManifestEntry> metas, ParseManifest(text));
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

absl::StatusOr<RingPlan> PlanFirstStart(const KeyRingOptions& o, absl::Time now) {
  ASSIGN_OR_RETURN(std::vector<std::string> pems, ListFiles(o.key_dir, ".pem"));
  if (pems.size() > 1) {
    return absl::FailedPreconditionError(absl::StrCat(o.key_dir, " holds several PEM files but no ",
                                                      kManifestFile, "; list them there"));
  }
  RingPlan plan;
  plan.dirty = true;
  if (pems.size() == 1) {
    ASSIGN_OR_RETURN(std::optional<std::string> pem, ReadPrivateFile(o.key_dir, pems[0]));
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

absl::Status Commit(const std::string& dir, const RingPlan& plan) {
  std::vector<ManifestEntry> metas;
  for (const RingEntry& e : plan.entries) metas.push_back(e.meta);
  RETURN_IF_ERROR(WriteFileAtomic(dir, kManifestFile, SerializeManifest(metas)));
  for (const std::string& file : plan.expired_files) RemoveFile(dir, file);
  return absl::OkStatus();
}

namespace {

std::filesystem::path Resolved(const std::string& dir) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::weakly_canonical(dir, ec);
  return ec ? std::filesystem::path(dir).lexically_normal() : p;
}

// Key files an earlier copy wrote into `to` (its manifest names them): the only ones a copy may
// remove. Anything else in `to` was not written by a copy and is left alone (issue 22).
std::vector<std::string> EarlierCopyFiles(const std::string& to) {
  std::vector<std::string> earlier;
  absl::StatusOr<std::optional<std::string>> old_manifest = ReadPrivateFile(to, kManifestFile);
  if (old_manifest.ok() && old_manifest->has_value()) {
    absl::StatusOr<std::vector<ManifestEntry>> old = ParseManifest(**old_manifest);
    if (old.ok()) {
      for (const ManifestEntry& meta : *old) earlier.push_back(meta.file);
    }
  }
  return earlier;
}

// Copies each of `names` from `from` to `to` (atomically, mode 0600).
absl::Status CopyFiles(const std::string& from, const std::string& to,
                       const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(std::optional<std::string> contents, ReadPrivateFile(from, name));
    if (!contents.has_value()) {
      return absl::FailedPreconditionError(absl::StrCat(from, "/", name, " is missing"));
    }
    RETURN_IF_ERROR(WriteFileAtomic(to, name, *contents));
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace internal

absl::StatusOr<int> CopyKeyDirectory(const std::string& from, const std::string& to) {
  using internal::EarlierCopyFiles, internal::ManifestEntry, internal::ReadPrivateFile,
      internal::kManifestFile, internal::kRefreshSecretFile, internal::WriteFileAtomic;
  if (internal::Resolved(from) == internal::Resolved(to)) {
    return ta::InvalidField("key_dir",
                            absl::StrCat("cannot copy the key directory ", from, " onto itself"));
  }
  ASSIGN_OR_RETURN(std::optional<std::string> manifest, ReadPrivateFile(from, kManifestFile));
  if (!manifest.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat(from, " holds no ", kManifestFile, ": not a key directory"));
  }
  ASSIGN_OR_RETURN(std::vector<ManifestEntry> metas, internal::ParseManifest(*manifest));
  std::vector<std::string> names = {std::string(kRefreshSecretFile)};
  for (const ManifestEntry& meta : metas) names.push_back(meta.file);
  RETURN_IF_ERROR(internal::EnsurePrivateDir(to));
  const std::vector<std::string> earlier = EarlierCopyFiles(to);
  if (::chmod(to.c_str(), 0700) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("chmod 0700 ", to, ": ", ::strerror(errno)));
  }
  RETURN_IF_ERROR(internal::CopyFiles(from, to, names));
  RETURN_IF_ERROR(WriteFileAtomic(to, kManifestFile, *manifest));
  for (const std::string& file : earlier) {
    if (std::find(names.begin(), names.end(), file) == names.end()) internal::RemoveFile(to, file);
  }
  return static_cast<int>(names.size()) + 1;
}

}  // namespace ta::token

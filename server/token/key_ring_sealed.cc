// A ring kept in a shared store: the sealed document (key_store.h SharedRingDocument inside a
// SealedRingEnvelope), written and read back.
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "base/status_macros.h"
#include "server/token/key_ring_internal.h"
#include "token/base64url.h"

namespace ta::token::internal {
namespace {

constexpr absl::string_view kRefreshAad = "ta-keyring/v1/refresh";

std::string KeyAad(absl::string_view file) { return absl::StrCat("ta-keyring/v1/key/", file); }

// The whole ring sealed as one value (key_store.h SealedRingEnvelope, format 2): its AAD names
// the generation, so a ring cannot be altered, or an older one passed off as newer.
std::string RingAad(uint64_t generation) { return absl::StrCat("ta-keyring/v2/ring/", generation); }

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
  absl::StatusOr<SealedRingEnvelope> envelope = ParseSealedRingEnvelope(document);
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

}  // namespace

absl::StatusOr<std::string> SealRing(const std::vector<RingEntry>& entries,
                                     absl::string_view refresh_secret, const KeyEncryptionKey& kek,
                                     uint64_t generation) {
  SharedRingDocument doc;
  doc.kek_id = kek.Fingerprint();
  doc.sealed_refresh_secret = Base64UrlEncode(kek.Seal(refresh_secret, kRefreshAad));
  for (const RingEntry& e : entries) {
    ManifestEntry meta = e.meta;
    ASSIGN_OR_RETURN(std::string contents, e.key->PrivateFileContents());
    meta.sealed = Base64UrlEncode(kek.Seal(contents, KeyAad(meta.file)));
    doc.entries.push_back(std::move(meta));
  }
  SealedRingEnvelope envelope;
  envelope.kek_id = doc.kek_id;
  envelope.generation = generation;
  envelope.sealed_ring = Base64UrlEncode(kek.Seal(SerializeSharedRing(doc), RingAad(generation)));
  return SerializeSealedRingEnvelope(envelope);
}

absl::Status RingCorrupt(absl::string_view why) {
  return ta::Error(absl::StatusCode::kDataLoss, "store_corrupt",
                   absl::StrCat("the shared key ring in the store is unusable: ", why));
}

absl::StatusOr<UnsealedRing> UnsealRing(absl::string_view document, const KeyEncryptionKey& kek,
                                        const KeyRingOptions& o, absl::Time now,
                                        uint64_t min_generation) {
  uint64_t generation = 0;
  ASSIGN_OR_RETURN(std::string inner, OpenEnvelope(document, kek, min_generation, &generation));
  absl::StatusOr<SharedRingDocument> doc = ParseSharedRing(inner);
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

}  // namespace ta::token::internal

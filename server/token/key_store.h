// The key directory's on-disk format: the manifest `keyring.json`, private key files
// and the refresh-derivation secret, plus the careful file I/O they need.
//
// Internal to server/token; KeyRing is the only user. Layout of a key directory (0700):
//   keyring.json    {"version":1,"keys":[{"file":"<name>","alg":"ES256",
//                     "created_at":<unix s>,"active":true}, {..,"retire_at":<unix s>}]}
//                   Exactly one key is active: the newest signing key, which signs from
//                   sign_from (absent: at once; a rotation with a publish delay sets it,
//                   and until then the previous key signs). A key that is not active
//                   verifies until retire_at; without retire_at it verifies forever
//                   (an operator's verify-only key, which never signs).
//   <kid>.pem       PKCS#8 PEM private keys, 0600.
//   <kid>.hs256     HS256 secrets: base64url text, 0600 (only with allow_hs256).
//   refresh.secret  32 random bytes as base64url text, 0600.
// Files holding secrets must not be readable by group or others; loading refuses them.
// Writes go to a temporary file that is fsynced, renamed into place, then the
// directory fsynced, so a crash leaves the old or the new file, never half of one.
// Thread-safety: stateless functions; callers serialise writes to one directory.
#ifndef TA_SERVER_TOKEN_KEY_STORE_H_
#define TA_SERVER_TOKEN_KEY_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "token/jwt.h"

namespace ta::token::internal {

inline constexpr absl::string_view kManifestFile = "keyring.json";
inline constexpr absl::string_view kRefreshSecretFile = "refresh.secret";

struct ManifestEntry {
  std::string file;  // a plain name inside the key directory
  Algorithm alg = Algorithm::kES256;
  absl::Time created_at = absl::InfinitePast();  // InfinitePast when not recorded
  bool active = false;
  absl::Time retire_at = absl::InfiniteFuture();  // ignored for the active key
  // When the key may start signing (a rotation's publish delay). InfinitePast: as soon as it
  // is the newest signing key. Only meaningful for the active key and keys it replaced.
  absl::Time sign_from = absl::InfinitePast();
  // Shared rings only (SerializeSharedRing): the private key file's contents, sealed.
  std::string sealed;
};

// The shared form of a ring (kept in the store by replicas, DESIGN §11): the entries with
// their private halves sealed, the sealed refresh secret and the fingerprint of the KEK that
// sealed them. `file` is then only a name ("<kid>.pem").
struct SharedRingDocument {
  std::string kek_id;
  std::string sealed_refresh_secret;
  std::vector<ManifestEntry> entries;
};
absl::StatusOr<SharedRingDocument> ParseSharedRing(absl::string_view json);
std::string SerializeSharedRing(const SharedRingDocument& ring);

// What the store holds since issue 22 (format 2): the whole format-1 document above sealed as
// one value, bound by its AAD to the KEK and to `generation`, so that no byte of it (metadata,
// retire and signing times, which keys there are) can be changed, and an older ring cannot be
// passed off as a newer one, without the KEK:
//   {"version":2,"kek":"<fingerprint>","generation":<n>,"ring":"<base64url sealed format 1>"}
// Format 1 (the bare document, only its secrets sealed) still loads, and is replaced by
// format 2 at the next write. `format` is 1 or 2; for 1 only `format` is set.
struct SealedRingEnvelope {
  int format = 0;
  std::string kek_id;
  uint64_t generation = 0;
  std::string sealed_ring;  // base64url
};
absl::StatusOr<SealedRingEnvelope> ParseSealedRingEnvelope(absl::string_view json);
std::string SerializeSealedRingEnvelope(const SealedRingEnvelope& envelope);

// Parses manifest text strictly (unknown members are errors, to catch typos).
absl::StatusOr<std::vector<ManifestEntry>> ParseManifest(absl::string_view json);
std::string SerializeManifest(const std::vector<ManifestEntry>& entries);

// True for a name that stays inside the directory: no '/', not "." or "..", no
// leading '.', no NUL.
bool IsPlainFileName(absl::string_view name);

// Creates `dir` with mode 0700 when absent; FAILED_PRECONDITION if it is not a directory.
absl::Status EnsurePrivateDir(const std::string& dir);

// Contents of dir/name, or nullopt when it does not exist. Refuses a file that is not
// regular or that group/others may read or write.
absl::StatusOr<std::optional<std::string>> ReadPrivateFile(const std::string& dir,
                                                           absl::string_view name);

// Atomically replaces dir/name with `contents`, mode 0600.
absl::Status WriteFileAtomic(const std::string& dir, absl::string_view name,
                             absl::string_view contents);

// Names in `dir` ending in `suffix`, sorted.
absl::StatusOr<std::vector<std::string>> ListFiles(const std::string& dir,
                                                   absl::string_view suffix);

// Best-effort removal of dir/name (a retired key past its window).
void RemoveFile(const std::string& dir, absl::string_view name);

}  // namespace ta::token::internal

#endif  // TA_SERVER_TOKEN_KEY_STORE_H_

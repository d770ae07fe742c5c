// The pieces KeyRing (key_ring.h) is built from, one file each:
//   key_ring_schedule.cc  which key signs and which verify when, and what a rotation makes of
//                         a ring (pure functions of the entries and the time);
//   key_ring_dir.cc       a ring kept in a key directory: loading, first start, persisting,
//                         and copying the directory (CopyKeyDirectory);
//   key_ring_sealed.cc    a ring kept in a shared store: the sealed document, written and read
//                         back (KEK check, generation check, every sealed value opened).
// key_ring.cc holds KeyRing itself over these.
//
// Internal to server/token; KeyRing is the only user. Thread-safety: stateless functions;
// callers serialise writes to one directory (KeyRing's rotate_mu_).
#ifndef TA_SERVER_TOKEN_KEY_RING_INTERNAL_H_
#define TA_SERVER_TOKEN_KEY_RING_INTERNAL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/token/key_ring.h"
#include "server/token/key_store.h"
#include "server/token/seal.h"
#include "token/key.h"

namespace ta::token::internal {

inline constexpr size_t kRefreshSecretBytes = 32;

struct RingEntry {
  std::shared_ptr<const Key> key;
  ManifestEntry meta;
};

// --- Schedule (key_ring_schedule.cc) --------------------------------------------------------

// True while the key verifies at `now`: the active key, or one not yet past its retire time.
bool Verifies(const ManifestEntry& meta, absl::Time now);

// A key that may sign at some point: the active key and the keys it replaced (an operator's
// verify-only key, not active and never retiring, never signs).
bool MaySign(const ManifestEntry& meta);

// The key that signs at `now`: of the keys that may sign and whose sign_from has come, the one
// that started last (ties: the active one, then the newest). Null only for a ring whose only
// signing key is still pending and replaced nothing, which Rotate never builds.
const RingEntry* Signer(const std::vector<RingEntry>& entries, absl::Time now);

// The entries of a ring after rotating `fresh` in at `now`: the previous active key retires at
// the new key's sign_from + window; keys past their retire time go to `expired` (may be null).
std::vector<RingEntry> RotatedEntries(RingEntry fresh, const std::vector<RingEntry>& old,
                                      absl::Time now, absl::Duration window,
                                      std::vector<std::string>* expired);

// A new key's manifest entry (active, signing from `sign_from`).
ManifestEntry NewKeyEntry(const Key& key, absl::Time now, absl::Time sign_from);

// Exactly one active key, moved to the front; no kid twice. FAILED_PRECONDITION otherwise.
absl::Status Normalize(std::vector<RingEntry>* entries);

// --- Key directory (key_ring_dir.cc) --------------------------------------------------------

// What Open or Rotate decided: the ring, and files to delete once it is persisted.
struct RingPlan {
  std::vector<RingEntry> entries;  // active first
  std::vector<std::string> expired_files;
  bool dirty = false;  // the manifest must be (re)written
};

// The directory's refresh.secret; a new random one, written, when there is none.
absl::StatusOr<std::string> LoadOrCreateRefreshSecret(const std::string& dir);

// Writes a new key's private file; returns its manifest entry (active).
absl::StatusOr<ManifestEntry> PersistNewKey(const std::string& dir, const Key& key, absl::Time now,
                                            absl::Time sign_from = absl::InfinitePast());

// The ring a manifest lists (keys past their retire time dropped, their files to delete).
absl::StatusOr<RingPlan> PlanFromManifest(const std::string& text, const KeyRingOptions& o,
                                          absl::Time now);

// No manifest yet: adopt the operator's single PEM file, or generate a key.
absl::StatusOr<RingPlan> PlanFirstStart(const KeyRingOptions& o, absl::Time now);

// Persists the manifest for `plan` and deletes the files of expired keys.
absl::Status Commit(const std::string& dir, const RingPlan& plan);

// --- Shared store (key_ring_sealed.cc) ------------------------------------------------------

// DATA_LOSS "store_corrupt": the stored ring cannot be used.
absl::Status RingCorrupt(absl::string_view why);

// The whole ring sealed as one value under `kek` (key_store.h SealedRingEnvelope, format 2),
// bound to `generation`.
absl::StatusOr<std::string> SealRing(const std::vector<RingEntry>& entries,
                                     absl::string_view refresh_secret, const KeyEncryptionKey& kek,
                                     uint64_t generation);

struct UnsealedRing {
  std::vector<RingEntry> entries;
  std::string refresh_secret;
  uint64_t generation = 0;  // 0: format 1, which had none
};

// The ring in a stored `document`, keys past their retire time at `now` left out. Refuses a
// ring sealed under another KEK (kek_mismatch), one older than `min_generation`
// (key_ring_rollback) and anything altered (store_corrupt).
absl::StatusOr<UnsealedRing> UnsealRing(absl::string_view document, const KeyEncryptionKey& kek,
                                        const KeyRingOptions& o, absl::Time now,
                                        uint64_t min_generation);

}  // namespace ta::token::internal

#endif  // TA_SERVER_TOKEN_KEY_RING_INTERNAL_H_

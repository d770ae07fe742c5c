// The server's signing keys: one active key signs access tokens; keys it replaced keep
// verifying until their retire time; JWKS publishes the public halves.
//
// Two homes for the ring:
//   * A key directory (Open; layout and file formats in key_store.h), never the database, so
//     a copy of the database alone forges nothing. The embedded default.
//   * A shared ring (OpenShared): replicas keep one ring in their common store, private
//     halves and the refresh secret sealed (AES-256-GCM, seal.h) under a key-encryption key
//     that never enters the store. Rotate is a compare-and-set on the ring's version, so of
//     concurrent rotations on several replicas exactly one wins; Reload picks up another
//     replica's rotation. A shared ring starts from the key directory's keys when the store
//     holds none yet and the directory has a keyring.json (an upgrade keeps its tokens valid). Open on an empty directory
// generates a key of `generate_algorithm` and a refresh-derivation secret and persists
// both, so a restart keeps tokens valid. Operators may supply their own keys:
//   * On first start (no keyring.json yet) a single `*.pem` private key in the
//     directory is adopted as the active key with its natural algorithm: EC P-256 ->
//     ES256, Ed25519 -> EdDSA, RSA (>= 2048 bits) -> RS256. Several PEM files and no
//     manifest is an error.
//   * Otherwise list the file in keyring.json (with the server stopped), e.g.
//     {"file":"ops.pem","alg":"PS256","active":true} -- this is also how an RSA key
//     is bound to PS256 and how a verify-only key (no "active", no "retire_at") is
//     added. Unlisted files in a directory that has a manifest are ignored.
// Key files, refresh.secret and keyring.json must not be readable or writable by group or
// others (chmod 600); Open refuses them otherwise. The `kid` is the RFC 7638 thumbprint.
//
// Publish delay: a rotated-in key is published (JWKS) at once but signs only from
// now + publish_delay, so verifiers that cache the JWKS learn it before its first token;
// until then the key it replaces keeps signing, and that key verifies until
// sign_from + retired_verify_window.
//
// Each key is bound to one algorithm (RFC 8725 §3.1): Verify looks the header's kid up
// in the ring and requires the header alg to equal that key's algorithm.
//
// Thread-safety: all methods are thread-safe; Sign and Verify run concurrently with
// each other and with Rotate and Reload (which swap an immutable snapshot). One process at
// a time may use a key directory; any number share a ring in a store.
#ifndef TA_SERVER_TOKEN_KEY_RING_H_
#define TA_SERVER_TOKEN_KEY_RING_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "server/token/seal.h"
#include "token/jwt.h"

namespace ta::token {

struct KeyRingOptions {
  // Directory holding the keys. Required by Open, which creates it with mode 0700 when
  // absent (its parent must exist). OpenShared only reads it, to seed an empty store.
  std::string key_dir;
  // Algorithm of the key generated when the directory holds none. Default ES256.
  Algorithm generate_algorithm = Algorithm::kES256;
  // How long a key replaced by Rotate keeps verifying. Default 24 h; set it to at least
  // the longest access-token lifetime plus leeway.
  absl::Duration retired_verify_window = absl::Hours(24);
  // Time source for retire times and token checks. Default: the wall clock. Not owned;
  // must outlive the ring.
  const ta::Clock* clock = ta::Clock::Real();
  // HS256 keys are refused unless set (a shared secret lets every verifier forge). HS256
  // keys are never published in the JWKS.
  bool allow_hs256 = false;
  // How long a key created by Rotate is published before it signs. Default 0 (at once).
  absl::Duration publish_delay = absl::ZeroDuration();
};

struct KeyInfo {
  std::string kid;
  Algorithm alg;
  bool active;  // signs new tokens now
  absl::Time created_at;
  absl::Time retire_at;  // InfiniteFuture for the active key and verify-only keys
  // When it signs (or signed) first; InfiniteFuture for a verify-only key. A key with
  // sign_from in the future is published and pending.
  absl::Time sign_from;
};

// Where a shared ring is kept (the server adapts its TokenStore; see storage/token_store.h
// GetKeyRing/CompareAndSetKeyRing for the contract). Version 0: no ring stored yet.
class SharedKeyStore {
 public:
  struct Versioned {
    uint64_t version = 0;
    std::string document;  // empty when not newer than asked for
  };
  virtual ~SharedKeyStore() = default;
  virtual absl::StatusOr<Versioned> Load(uint64_t if_newer_than) = 0;
  // ABORTED when the stored version is no longer `expected_version`.
  virtual absl::Status CompareAndSet(uint64_t expected_version, const std::string& document) = 0;
  // The store's clock (the database's, for replicas; TokenStore::ClockNow). A rotated-in key
  // signs from the later of it and the ring's clock, plus the publish delay, so a replica
  // whose clock runs behind never sets sign_from early. UNAVAILABLE when the store does not
  // answer (the rotation fails then).
  virtual absl::StatusOr<absl::Time> ClockNow() = 0;
};

class KeyRing {
 public:
  // Opens (creating as needed) the key directory. INVALID_ARGUMENT for bad options,
  // FAILED_PRECONDITION for an unusable directory or key file (the message names it).
  static absl::StatusOr<std::unique_ptr<KeyRing>> Open(const KeyRingOptions& options);
  // Opens the ring kept in `store` (borrowed; must outlive the ring), creating it when the
  // store holds none: from options.key_dir's keys when that directory has a keyring.json,
  // else a new key and secret. FAILED_PRECONDITION ("kek_mismatch") when the stored ring was
  // sealed under another KEK; UNAVAILABLE when the store is.
  static absl::StatusOr<std::unique_ptr<KeyRing>> OpenShared(const KeyRingOptions& options,
                                                             SharedKeyStore* store,
                                                             KeyEncryptionKey kek);

  KeyRing(const KeyRing&) = delete;
  KeyRing& operator=(const KeyRing&) = delete;
  ~KeyRing();

  // A JWS compact token over `claims` (see EncodeClaims for what is required), header
  // {"alg","kid","typ"} with the active key. `typ` is e.g. "at+jwt"; "" omits it.
  absl::StatusOr<std::string> Sign(const JwtClaims& claims, absl::string_view typ) const;

  // Checks `token` against the ring and `policy` at options.clock->Now(). Errors carry
  // the reasons in jwt.h (`reason::`): size, shape and header first, then kid lookup
  // and alg binding, then the signature, and only then the claims.
  absl::StatusOr<VerifiedJwt> Verify(absl::string_view token, const VerifyPolicy& policy) const;

  // Generates and persists a new active key of `alg` (default: the current active key's
  // algorithm); the previous active key retires at now + retired_verify_window. Keys
  // already past their retire time are dropped and their files deleted. Returns the
  // new kid. On error nothing changes. A shared ring reads the stored ring first and then
  // compare-and-sets it: ABORTED ("key_rotation_conflict") when another replica's rotation
  // won meanwhile (that one's key is then in this ring too).
  absl::StatusOr<std::string> Rotate(std::optional<Algorithm> alg = std::nullopt);

  // A shared ring: adopts the stored ring when another replica changed it. True when it
  // changed. A key-directory ring: false, nothing read.
  absl::StatusOr<bool> Reload();
  bool shared() const { return shared_ != nullptr; }

  // {"keys":[...]}: the active, pending and still-verifying public keys with use, alg, kid.
  // EC coordinates at full size; never private members; HS256 keys omitted.
  std::string JwksJson() const;

  // Every key in the ring, active first.
  std::vector<KeyInfo> Keys() const;

  // HMAC-SHA256(refresh secret, context): 32 bytes, stable across restarts.
  std::string DeriveRefreshSecret(absl::string_view context) const;

  // The key directory (KeyRingOptions::key_dir).
  const std::string& key_dir() const { return options_.key_dir; }

  // Copies the key directory into `dest_dir` as CopyKeyDirectory does, consistent with the
  // ring: a concurrent Rotate waits until the copy is done (and a copy waits for a Rotate
  // under way), so the copy holds exactly the ring of one moment. Returns the number of files.
  absl::StatusOr<int> ExportFiles(const std::string& dest_dir);

 private:
  struct State;
  struct Shared;

  KeyRing(const KeyRingOptions& options, std::string refresh_secret,
          std::shared_ptr<const State> state, std::unique_ptr<Shared> shared);
  std::shared_ptr<const State> Snapshot() const;
  void Install(std::shared_ptr<const State> state);
  absl::StatusOr<std::string> RotateShared(Algorithm alg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(rotate_mu_);

  const KeyRingOptions options_;
  const std::string refresh_secret_;
  const std::unique_ptr<Shared> shared_;  // null for a key-directory ring
  absl::Mutex rotate_mu_;  // serialises Rotate's file writes and ExportFiles' reads
  mutable absl::Mutex mu_;
  std::shared_ptr<const State> state_ ABSL_GUARDED_BY(mu_);
};

// Copies a key directory (what KeyRing writes: keyring.json, the key files it lists and
// refresh.secret) from `from` to `to`: `to` is created with mode 0700 (an existing one is set
// to 0700), each file is written atomically with mode 0600, keyring.json last, so a copy
// interrupted half-way still names only complete files; key files in `to` that the new
// manifest does not list are removed when an earlier copy's manifest (the keyring.json it
// replaces) names them; files no copy wrote are never removed. Unlisted files of `from` are not
// copied. Returns the number of files copied. FAILED_PRECONDITION when `from` has no keyring.json,
// misses a file it lists, or holds a file others may read; INVALID_ARGUMENT
// "invalid_argument:key_dir" when `to` is `from`.
absl::StatusOr<int> CopyKeyDirectory(const std::string& from, const std::string& to);

}  // namespace ta::token

#endif  // TA_SERVER_TOKEN_KEY_RING_H_

// Sealing: AES-256-GCM authenticated encryption of the secrets that replicas share through the
// store (DESIGN §11): signing keys' private halves and the refresh-token secret. The key-
// encryption key (KEK) never enters the store: each replica reads it from a file
// (--key_encryption_key_file), so a copy of the database alone forges nothing.
//
// Sealed form: version byte 0x01 ‖ 12-byte random nonce ‖ ciphertext ‖ 16-byte tag. The
// associated data (AAD) binds a sealed value to what it is (e.g. "keyring/v1/<kid>"), so a
// value moved to another slot does not open.
//
// Thread-safety: a KeyEncryptionKey is immutable after construction; Seal and Unseal may run
// concurrently.
#ifndef TA_SERVER_TOKEN_SEAL_H_
#define TA_SERVER_TOKEN_SEAL_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ta::token {

inline constexpr size_t kKekBytes = 32;

class KeyEncryptionKey {
 public:
  // Reads a KEK file: 32 random bytes, base64, as `openssl rand -base64 32 > FILE` writes them
  // (surrounding white space ignored). FAILED_PRECONDITION when the file is readable or
  // writable by group or others, INVALID_ARGUMENT when it does not hold exactly 32 bytes;
  // the message names the file, never its contents.
  static absl::StatusOr<KeyEncryptionKey> FromFile(const std::string& path);
  // INVALID_ARGUMENT unless `raw` is 32 bytes.
  static absl::StatusOr<KeyEncryptionKey> FromBytes(absl::string_view raw);

  KeyEncryptionKey(KeyEncryptionKey&& other) noexcept;
  KeyEncryptionKey& operator=(KeyEncryptionKey&& other) noexcept;
  KeyEncryptionKey(const KeyEncryptionKey&) = delete;
  KeyEncryptionKey& operator=(const KeyEncryptionKey&) = delete;
  ~KeyEncryptionKey();  // wipes the key bytes

  // Seals `plaintext` bound to `aad`, with a fresh random nonce.
  std::string Seal(absl::string_view plaintext, absl::string_view aad) const;
  // The plaintext, or UNAUTHENTICATED ("sealed_value_rejected") when `sealed` was not sealed by
  // this KEK for this `aad`, or was altered; INVALID_ARGUMENT for a malformed value.
  absl::StatusOr<std::string> Unseal(absl::string_view sealed, absl::string_view aad) const;

  // A public fingerprint of the KEK (hex of SHA-256("ta-kek-id" ‖ key), first 8 bytes), stored
  // beside sealed values so a replica started with another KEK says so plainly.
  std::string Fingerprint() const;

  // Seal with a chosen nonce: for test vectors only.
  std::string SealWithNonceForTesting(absl::string_view plaintext, absl::string_view aad,
                                      absl::string_view nonce) const;

 private:
  explicit KeyEncryptionKey(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

}  // namespace ta::token

#endif  // TA_SERVER_TOKEN_SEAL_H_

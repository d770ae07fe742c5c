#include "server/token/seal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "token/crypto.h"
#include "token/openssl_util.h"

namespace ta::token {
namespace {

using EvpCipherCtxPtr =
    std::unique_ptr<EVP_CIPHER_CTX, internal::OpenSslDeleter<EVP_CIPHER_CTX_free>>;

constexpr char kVersion = 0x01;
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;

absl::Status Rejected() {
  return Error(absl::StatusCode::kUnauthenticated, "sealed_value_rejected",
               "sealed value does not open with this key-encryption key (wrong KEK, wrong slot, "
               "or altered)");
}

}  // namespace

absl::StatusOr<KeyEncryptionKey> KeyEncryptionKey::FromBytes(absl::string_view raw) {
  if (raw.size() != kKekBytes) {
    return absl::InvalidArgumentError("key-encryption key must be 32 bytes");
  }
  return KeyEncryptionKey(std::string(raw));
}

absl::StatusOr<KeyEncryptionKey> KeyEncryptionKey::FromFile(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("cannot read key-encryption key ", path));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "key-encryption key ", path, " is accessible by group or others; chmod 600 it"));
  }
  std::ifstream in(path);
  std::stringstream text;
  if (!in || !(text << in.rdbuf())) {
    return absl::FailedPreconditionError(absl::StrCat("cannot read key-encryption key ", path));
  }
  std::string raw;
  if (!absl::Base64Unescape(absl::StripAsciiWhitespace(text.str()), &raw) || raw.size() != kKekBytes) {
    OPENSSL_cleanse(raw.data(), raw.size());
    return absl::InvalidArgumentError(absl::StrCat(
        "key-encryption key ", path, " must hold 32 bytes in base64 (openssl rand -base64 32)"));
  }
  KeyEncryptionKey kek(raw);
  OPENSSL_cleanse(raw.data(), raw.size());
  return kek;
}

KeyEncryptionKey::KeyEncryptionKey(KeyEncryptionKey&& other) noexcept
    : key_(std::move(other.key_)) {
  other.key_.clear();
}

KeyEncryptionKey& KeyEncryptionKey::operator=(KeyEncryptionKey&& other) noexcept {
  if (this != &other) {
    OPENSSL_cleanse(key_.data(), key_.size());
    key_ = std::move(other.key_);
    other.key_.clear();
  }
  return *this;
}

KeyEncryptionKey::~KeyEncryptionKey() { OPENSSL_cleanse(key_.data(), key_.size()); }

std::string KeyEncryptionKey::Seal(absl::string_view plaintext, absl::string_view aad) const {
  return SealWithNonceForTesting(plaintext, aad, RandomBytes(kNonceBytes));
}

std::string KeyEncryptionKey::SealWithNonceForTesting(absl::string_view plaintext,
                                                      absl::string_view aad,
                                                      absl::string_view nonce) const {
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  std::string out(1 + kNonceBytes + plaintext.size() + kTagBytes, '\0');
  out[0] = kVersion;
  out.replace(1, kNonceBytes, nonce.data(), kNonceBytes);
  auto* key = reinterpret_cast<const unsigned char*>(key_.data());
  auto* iv = reinterpret_cast<const unsigned char*>(nonce.data());
  auto* body = reinterpret_cast<unsigned char*>(out.data() + 1 + kNonceBytes);
  int len = 0;
  // Cannot fail with a valid context, key and nonce sizes, short of memory exhaustion.
  if (ctx == nullptr || EVP_EncryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), key, iv, nullptr) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), body, &len,
                        reinterpret_cast<const unsigned char*>(plaintext.data()),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), body + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes,
                          body + plaintext.size()) != 1) {
    abort();
  }
  return out;
}

absl::StatusOr<std::string> KeyEncryptionKey::Unseal(absl::string_view sealed,
                                                     absl::string_view aad) const {
  if (sealed.size() < 1 + kNonceBytes + kTagBytes || sealed[0] != kVersion) {
    return absl::InvalidArgumentError("not a sealed value");
  }
  const size_t body_size = sealed.size() - 1 - kNonceBytes - kTagBytes;
  auto* key = reinterpret_cast<const unsigned char*>(key_.data());
  auto* iv = reinterpret_cast<const unsigned char*>(sealed.data() + 1);
  auto* body = reinterpret_cast<const unsigned char*>(sealed.data() + 1 + kNonceBytes);
  std::string tag(sealed.substr(1 + kNonceBytes + body_size));
  std::string plain(body_size, '\0');
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0, final_len = 0;
  bool ok = ctx != nullptr &&
            EVP_DecryptInit_ex2(ctx.get(), EVP_aes_256_gcm(), key, iv, nullptr) == 1 &&
            EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                              reinterpret_cast<const unsigned char*>(aad.data()),
                              static_cast<int>(aad.size())) == 1 &&
            EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()), &len,
                              body, static_cast<int>(body_size)) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) == 1 &&
            EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()) + len,
                                &final_len) == 1;
  internal::ClearOpenSslErrors();
  if (!ok) {
    OPENSSL_cleanse(plain.data(), plain.size());
    return Rejected();
  }
  return plain;
}

std::string KeyEncryptionKey::Fingerprint() const {
  std::string input = absl::StrCat("ta-kek-id", key_);
  std::string digest = Sha256(input);
  OPENSSL_cleanse(input.data(), input.size());
  return absl::BytesToHexString(digest.substr(0, 8));
}

}  // namespace ta::token

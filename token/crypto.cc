#include "token/crypto.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "token/openssl_util.h"

namespace ta::token {
namespace {

constexpr size_t kSha256Bytes = 32;

// A stable non-null pointer for empty inputs: some OpenSSL entry points reject NULL
// even with length 0.
const unsigned char* Bytes(absl::string_view s) {
  static const unsigned char kEmpty = 0;
  return s.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(s.data());
}

// SHA-256 fetched once. EVP_sha256() makes every EVP_Digest fetch the implementation from
// the provider again (about 40% of the digest's cost on short inputs such as API keys,
// which are hashed on every call). Process lifetime: never freed.
const EVP_MD* Sha256Md() {
  static const EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

}  // namespace

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    std::fputs("FATAL: OpenSSL RAND_bytes failed; refusing to continue\n", stderr);
    std::abort();
  }
  return out;
}

std::string Sha256(absl::string_view data) {
  // One context per thread, reinitialised per digest: EVP_Digest would allocate and free a
  // context (and the provider's) on every call.
  thread_local const internal::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  std::string out(kSha256Bytes, '\0');
  unsigned int len = 0;
  const EVP_MD* md = Sha256Md();
  if (md == nullptr || ctx == nullptr || EVP_DigestInit_ex2(ctx.get(), md, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), Bytes(data), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len) != 1 ||
      len != kSha256Bytes) {
    std::fputs("FATAL: OpenSSL SHA-256 failed\n", stderr);
    std::abort();
  }
  return out;
}

std::string HmacSha256(absl::string_view key, absl::string_view data) {
  // HMAC() looks up HMAC and SHA-256 in the provider on every call (EVP_Q_mac), which cost
  // more than the MAC itself. One context per thread with SHA-256 set once; each call
  // re-keys it. The key pointer is never null, so EVP_MAC_init never "reuses the last key".
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);  // process lifetime
  thread_local const internal::EvpMacCtxPtr ctx = [] {
    internal::EvpMacCtxPtr c(mac != nullptr ? EVP_MAC_CTX_new(mac) : nullptr);
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                                 OSSL_PARAM_construct_end()};
    if (c != nullptr && EVP_MAC_CTX_set_params(c.get(), params) != 1) c.reset();
    return c;
  }();
  std::string out(kSha256Bytes, '\0');
  size_t len = 0;
  if (ctx == nullptr || EVP_MAC_init(ctx.get(), Bytes(key), key.size(), nullptr) != 1 ||
      EVP_MAC_update(ctx.get(), Bytes(data), data.size()) != 1 ||
      EVP_MAC_final(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, out.size()) !=
          1 ||
      len != kSha256Bytes) {
    std::fputs("FATAL: OpenSSL HMAC-SHA256 failed\n", stderr);
    std::abort();
  }
  return out;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

namespace internal {

absl::Status OpenSslError(absl::StatusCode code, absl::string_view what) {
  unsigned long err = ERR_peek_error();  // NOLINT(runtime/int): OpenSSL's type
  std::string detail;
  if (err != 0) {
    const char* reason = ERR_reason_error_string(err);
    detail = absl::StrCat(" (openssl: ", reason != nullptr ? reason : "unknown", ")");
  }
  ERR_clear_error();
  return absl::Status(code, absl::StrCat(what, detail));
}

void ClearOpenSslErrors() { ERR_clear_error(); }

}  // namespace internal
}  // namespace ta::token

// RAII owners for OpenSSL handles and the one conversion from OpenSSL errors to absl::Status.
//
// Internal to the token library and the key ring (server/token). Every OpenSSL object the library
// allocates is held by one of these unique_ptr aliases from the moment it exists, so no error path
// leaks it. Thread-safety: stateless; OpenSSL's error queue is per thread.
#ifndef TA_TOKEN_OPENSSL_UTIL_H_
#define TA_TOKEN_OPENSSL_UTIL_H_

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ta::token::internal {

template <auto kFree>
struct OpenSslDeleter {
  template <typename T>
  void operator()(T* p) const {
    kFree(p);
  }
};

using BioPtr = std::unique_ptr<BIO, OpenSslDeleter<BIO_free_all>>;
using BignumPtr = std::unique_ptr<BIGNUM, OpenSslDeleter<BN_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, OpenSslDeleter<ECDSA_SIG_free>>;
using EvpMacCtxPtr = std::unique_ptr<EVP_MAC_CTX, OpenSslDeleter<EVP_MAC_CTX_free>>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, OpenSslDeleter<EVP_MD_CTX_free>>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, OpenSslDeleter<EVP_PKEY_CTX_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslDeleter<EVP_PKEY_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, OpenSslDeleter<OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, OpenSslDeleter<OSSL_PARAM_free>>;

// Returns a status with `code` whose message is `what` plus OpenSSL's first queued
// reason (library/reason text only; never key material), and clears the thread's
// error queue so the failure cannot surface later in an unrelated call.
absl::Status OpenSslError(absl::StatusCode code, absl::string_view what);

// Clears the thread's OpenSSL error queue (after an expected failure such as a bad
// signature, which OpenSSL also records there).
void ClearOpenSslErrors();

}  // namespace ta::token::internal

#endif  // TA_TOKEN_OPENSSL_UTIL_H_

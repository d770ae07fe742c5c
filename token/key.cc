#include "token/key.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "base/status_macros.h"
#include "token/base64url.h"
#include "token/crypto.h"

namespace ta::token {
namespace {

using internal::BignumPtr;
using internal::BioPtr;
using internal::EcdsaSigPtr;
using internal::EvpMdCtxPtr;
using internal::EvpPkeyPtr;
using internal::OpenSslError;

constexpr size_t kEs256CoordBytes = 32;

const unsigned char* Uchars(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// Refuses to prompt for (or guess) a passphrase: encrypted PEM simply fails to load.
int NoPassphrase(char*, int, int, void*) { return 0; }

absl::Status CheckKeyFits(EVP_PKEY* pkey, Algorithm alg) {
  auto mismatch = [alg](absl::string_view why) {
    return absl::InvalidArgumentError(std::string(AlgorithmName(alg)) +
                                      " key rejected: " + std::string(why));
  };
  switch (alg) {
    case Algorithm::kES256: {
      char group[64] = {0};
      size_t len = 0;
      if (!EVP_PKEY_is_a(pkey, "EC") ||
          EVP_PKEY_get_group_name(pkey, group, sizeof(group), &len) != 1 ||
          (std::strcmp(group, "prime256v1") != 0 && std::strcmp(group, "P-256") != 0)) {
        internal::ClearOpenSslErrors();
        return mismatch("not an EC P-256 key");
      }
      return absl::OkStatus();
    }
    case Algorithm::kEdDSA:
      if (!EVP_PKEY_is_a(pkey, "ED25519")) return mismatch("not an Ed25519 key");
      return absl::OkStatus();
    case Algorithm::kRS256:
    case Algorithm::kPS256:
      if (!EVP_PKEY_is_a(pkey, "RSA")) return mismatch("not an RSA key");
      if (EVP_PKEY_get_bits(pkey) < kMinRsaBits) return mismatch("RSA key under 2048 bits");
      if (EVP_PKEY_get_bits(pkey) > kMaxRsaBits) return mismatch("RSA key over 4096 bits");
      return absl::OkStatus();
    case Algorithm::kHS256:
      return mismatch("HS256 takes a secret, not a key pair");
  }
  return mismatch("unknown algorithm");
}

absl::StatusOr<EvpPkeyPtr> ReadPrivatePem(absl::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return OpenSslError(absl::StatusCode::kInternal, "BIO_new_mem_buf");
  EvpPkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (pkey == nullptr) {
    return OpenSslError(absl::StatusCode::kInvalidArgument, "not an unencrypted PEM private key");
  }
  return pkey;
}

absl::StatusOr<EvpPkeyPtr> GenerateKeyPair(Algorithm alg) {
  EvpPkeyPtr pkey;
  switch (alg) {
    case Algorithm::kES256:
      pkey.reset(EVP_EC_gen("P-256"));
      break;
    case Algorithm::kEdDSA:
      pkey.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
      break;
    case Algorithm::kRS256:
    case Algorithm::kPS256:
      pkey.reset(EVP_RSA_gen(kMinRsaBits));
      break;
    case Algorithm::kHS256:
      break;
  }
  if (pkey == nullptr) return OpenSslError(absl::StatusCode::kInternal, "key generation");
  return pkey;
}

// OpenSSL produces and expects DER ECDSA-Sig-Value; JOSE uses fixed-width r||s.
absl::StatusOr<std::string> DerToRaw(absl::string_view der) {
  const unsigned char* p = Uchars(der);
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));  // NOLINT
  if (sig == nullptr) return OpenSslError(absl::StatusCode::kInternal, "d2i_ECDSA_SIG");
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string raw(2 * kEs256CoordBytes, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(r, out, kEs256CoordBytes) < 0 ||
      BN_bn2binpad(s, out + kEs256CoordBytes, kEs256CoordBytes) < 0) {
    return OpenSslError(absl::StatusCode::kInternal, "ECDSA signature too wide");
  }
  return raw;
}

// Empty on failure (which callers treat as a bad signature).
std::string RawToDer(absl::string_view raw) {
  if (raw.size() != 2 * kEs256CoordBytes) return "";
  BignumPtr r(BN_bin2bn(Uchars(raw), kEs256CoordBytes, nullptr));
  BignumPtr s(BN_bin2bn(Uchars(raw) + kEs256CoordBytes, kEs256CoordBytes, nullptr));
  EcdsaSigPtr sig(ECDSA_SIG_new());
  if (r == nullptr || s == nullptr || sig == nullptr ||
      ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) {
    return "";
  }
  r.release();  // now owned by sig
  s.release();
  int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return "";
  std::string der(static_cast<size_t>(len), '\0');
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(sig.get(), &p) != len) return "";
  return der;
}

// Configures RSASSA-PSS as RFC 7518 §3.5 requires: MGF1 with SHA-256, salt = 32 bytes.
bool ConfigurePss(EVP_PKEY_CTX* pctx) {
  return EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1;
}

// SHA-256 for ES/RS/PS256; none for Ed25519, which hashes internally (RFC 8032).
const EVP_MD* DigestFor(Algorithm alg) { return alg == Algorithm::kEdDSA ? nullptr : EVP_sha256(); }

}  // namespace

Key::Key(Passkey, Algorithm alg, EvpPkeyPtr pkey, std::string secret, bool has_private,
         std::vector<JwkMember> public_members, std::string kid)
    : alg_(alg),
      pkey_(std::move(pkey)),
      secret_(std::move(secret)),
      has_private_(has_private),
      public_members_(std::move(public_members)),
      kid_(std::move(kid)) {}

absl::StatusOr<std::unique_ptr<Key>> Key::Create(Algorithm alg, EvpPkeyPtr pkey, std::string secret,
                                                 bool has_private) {
  if (alg == Algorithm::kHS256) {
    if (secret.size() < kMinHmacSecretBytes) {
      return absl::InvalidArgumentError("HS256 secret shorter than 32 bytes");
    }
    std::string kid = JwkThumbprint({{"k", Base64UrlEncode(secret)}, {"kty", "oct"}});
    return std::make_unique<Key>(Passkey(), alg, nullptr, std::move(secret), true,
                                 std::vector<JwkMember>(), std::move(kid));
  }
  if (pkey == nullptr) return absl::InvalidArgumentError("missing key");
  RETURN_IF_ERROR(CheckKeyFits(pkey.get(), alg));
  ASSIGN_OR_RETURN(std::vector<JwkMember> members, internal::PublicMembersOf(pkey.get(), alg));
  std::string kid = JwkThumbprint(members);
  return std::make_unique<Key>(Passkey(), alg, std::move(pkey), std::string(), has_private,
                               std::move(members), std::move(kid));
}

absl::StatusOr<std::unique_ptr<Key>> Key::Generate(Algorithm alg) {
  if (alg == Algorithm::kHS256) return FromHmacSecret(RandomBytes(kMinHmacSecretBytes));
  ASSIGN_OR_RETURN(EvpPkeyPtr pkey, GenerateKeyPair(alg));
  return Create(alg, std::move(pkey), std::string(), true);
}

absl::StatusOr<std::unique_ptr<Key>> Key::FromPrivatePem(absl::string_view pem, Algorithm alg) {
  ASSIGN_OR_RETURN(EvpPkeyPtr pkey, ReadPrivatePem(pem));
  return Create(alg, std::move(pkey), std::string(), true);
}

absl::StatusOr<Algorithm> Key::NaturalAlgorithm(absl::string_view pem) {
  ASSIGN_OR_RETURN(EvpPkeyPtr pkey, ReadPrivatePem(pem));
  if (EVP_PKEY_is_a(pkey.get(), "ED25519")) return Algorithm::kEdDSA;
  if (EVP_PKEY_is_a(pkey.get(), "RSA")) return Algorithm::kRS256;
  if (CheckKeyFits(pkey.get(), Algorithm::kES256).ok()) return Algorithm::kES256;
  return absl::InvalidArgumentError("key type is not EC P-256, Ed25519 or RSA");
}

absl::StatusOr<std::unique_ptr<Key>> Key::FromHmacSecret(absl::string_view secret) {
  return Create(Algorithm::kHS256, nullptr, std::string(secret), true);
}

absl::StatusOr<std::unique_ptr<Key>> Key::FromFileContents(absl::string_view contents,
                                                           Algorithm alg) {
  if (alg != Algorithm::kHS256) return FromPrivatePem(contents, alg);
  absl::StatusOr<std::string> secret = Base64UrlDecode(absl::StripAsciiWhitespace(contents));
  if (!secret.ok()) return absl::InvalidArgumentError("HS256 secret file is not base64url");
  return FromHmacSecret(*secret);
}

EvpMdCtxPtr Key::InitContext(bool sign) const {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (ctx == nullptr) return nullptr;
  const int init =
      sign ? EVP_DigestSignInit(ctx.get(), &pctx, DigestFor(alg_), nullptr, pkey_.get())
           : EVP_DigestVerifyInit(ctx.get(), &pctx, DigestFor(alg_), nullptr, pkey_.get());
  if (init != 1 || (alg_ == Algorithm::kPS256 && !ConfigurePss(pctx))) return nullptr;
  return ctx;
}

EvpMdCtxPtr Key::NewContext(bool sign) const {
  {
    absl::MutexLock lock(&template_mu_);
    EvpMdCtxPtr& tmpl = sign ? sign_template_ : verify_template_;
    if (tmpl == nullptr) tmpl = InitContext(sign);
    if (tmpl != nullptr) {
      EvpMdCtxPtr copy(EVP_MD_CTX_new());
      if (copy != nullptr && EVP_MD_CTX_copy_ex(copy.get(), tmpl.get()) == 1) return copy;
    }
  }
  // This algorithm's provider context cannot be copied: initialise afresh.
  internal::ClearOpenSslErrors();
  return InitContext(sign);
}

absl::StatusOr<std::string> Key::Sign(absl::string_view signing_input) const {
  if (!has_private_) return absl::FailedPreconditionError("public key cannot sign");
  if (alg_ == Algorithm::kHS256) return HmacSha256(secret_, signing_input);
  EvpMdCtxPtr ctx = NewContext(/*sign=*/true);
  if (ctx == nullptr) return OpenSslError(absl::StatusCode::kInternal, "signature setup");
  size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, Uchars(signing_input), signing_input.size()) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "signature size");
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     Uchars(signing_input), signing_input.size()) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "signing");
  }
  sig.resize(len);
  if (alg_ == Algorithm::kES256) return DerToRaw(sig);
  return sig;
}

bool Key::Verify(absl::string_view signing_input, absl::string_view signature) const {
  if (alg_ == Algorithm::kHS256) {
    return ConstantTimeEquals(HmacSha256(secret_, signing_input), signature);
  }
  std::string der;
  if (alg_ == Algorithm::kES256) {
    der = RawToDer(signature);
    if (der.empty()) return false;
    signature = der;
  }
  EvpMdCtxPtr ctx = NewContext(/*sign=*/false);
  bool ok = ctx != nullptr &&
            EVP_DigestVerify(ctx.get(), Uchars(signature), signature.size(), Uchars(signing_input),
                             signing_input.size()) == 1;
  if (!ok) internal::ClearOpenSslErrors();
  return ok;
}

absl::StatusOr<std::string> Key::PrivateFileContents() const {
  if (!has_private_) return absl::FailedPreconditionError("public key has no private part");
  if (alg_ == Algorithm::kHS256) return Base64UrlEncode(secret_) + "\n";
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_PrivateKey(bio.get(), pkey_.get(), nullptr, nullptr, 0,
                                                 nullptr, nullptr) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "PEM encoding");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);  // NOLINT(runtime/int): OpenSSL's type
  return std::string(data, static_cast<size_t>(len));
}

}  // namespace ta::token

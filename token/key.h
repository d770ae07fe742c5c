// One signing key bound to exactly one JWS algorithm (RFC 8725 §3.1): an EC P-256,
// Ed25519 or RSA (>= 2048 bits) key pair held by OpenSSL, or an HMAC secret
// (>= 32 bytes) for HS256.
//
// A Key knows its kid (the RFC 7638 JWK thumbprint), signs and verifies JWS signing
// inputs with its own algorithm, and exports its public JWK and its private key file.
// ES256 signatures are the raw r||s form JOSE uses (RFC 7518 §3.4), not DER.
// Thread-safety: immutable after creation; Sign and Verify may run concurrently.
#ifndef TA_TOKEN_KEY_H_
#define TA_TOKEN_KEY_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "token/jwt.h"
#include "token/openssl_util.h"

namespace ta::token {

// Smallest accepted sizes (RFC 7518 §3.3 and §3.2).
inline constexpr int kMinRsaBits = 2048;
// Largest accepted RSA key: it bounds the signature size (kMaxSignatureBytes), so a token
// sized against that bound fits whichever key signs it after a rotation.
inline constexpr int kMaxRsaBits = 4096;
// The largest signature any accepted key produces (RSA-4096; ES256 64, Ed25519 64, HS256 32).
inline constexpr size_t kMaxSignatureBytes = kMaxRsaBits / 8;
inline constexpr size_t kMinHmacSecretBytes = 32;

// A JWK member name and its (string) value.
using JwkMember = std::pair<std::string, std::string>;

class Key {
 public:
  // A fresh key: P-256, Ed25519, RSA-2048, or 32 random bytes for HS256.
  static absl::StatusOr<std::unique_ptr<Key>> Generate(Algorithm alg);

  // A private key from PEM (PKCS#8 or traditional; encrypted PEM is refused), bound
  // to `alg`, which must fit the key type. HS256 secrets are not PEM: see below.
  static absl::StatusOr<std::unique_ptr<Key>> FromPrivatePem(absl::string_view pem, Algorithm alg);

  // The algorithm a PEM key implies: EC P-256 -> ES256, Ed25519 -> EdDSA, RSA -> RS256.
  static absl::StatusOr<Algorithm> NaturalAlgorithm(absl::string_view pem);

  // An HS256 key from raw secret bytes (at least kMinHmacSecretBytes).
  static absl::StatusOr<std::unique_ptr<Key>> FromHmacSecret(absl::string_view secret);

  // A key from a JWK (RFC 7517/7518/8037): EC P-256, OKP Ed25519, RSA or oct, with or
  // without its private members. A JWK "alg", when present, must equal `alg`.
  static absl::StatusOr<std::unique_ptr<Key>> FromJwk(absl::string_view jwk_json, Algorithm alg);

  // Parses the contents of a private key file written by PrivateFileContents.
  static absl::StatusOr<std::unique_ptr<Key>> FromFileContents(absl::string_view contents,
                                                               Algorithm alg);

  Algorithm alg() const { return alg_; }
  const std::string& kid() const { return kid_; }
  bool has_private() const { return has_private_; }

  // The JWS signature over `signing_input`. FAILED_PRECONDITION for a public-only key.
  absl::StatusOr<std::string> Sign(absl::string_view signing_input) const;

  // True only for a valid signature made with this key and algorithm.
  bool Verify(absl::string_view signing_input, absl::string_view signature) const;

  // The public JWK's required members in lexicographic order (RFC 7638 §3.2); empty
  // for HS256, whose key is never published.
  const std::vector<JwkMember>& PublicJwkMembers() const { return public_members_; }

  // What the key directory stores: PKCS#8 PEM, or for HS256 the base64url secret and
  // a newline. Secret material: never log it.
  absl::StatusOr<std::string> PrivateFileContents() const;

  // Construction goes through the factories above; Passkey keeps it that way.
  class Passkey {
    friend class Key;
    Passkey() = default;
  };
  Key(Passkey, Algorithm alg, internal::EvpPkeyPtr pkey, std::string secret, bool has_private,
      std::vector<JwkMember> public_members, std::string kid);

 private:
  // Builds a Key around `pkey` (or `secret` for HS256) after checking that it fits
  // `alg`, computing its public members and kid.
  static absl::StatusOr<std::unique_ptr<Key>> Create(Algorithm alg, internal::EvpPkeyPtr pkey,
                                                     std::string secret, bool has_private);

  // A context ready for one DigestSign (sign) or DigestVerify (!sign) with this key, or
  // null. Initialising a context fetches the algorithm implementations from the provider
  // on every call (23k instructions per ES256 signing under callgrind; token_bench: ES256
  // sign 32.7 -> 28.1 µs, verify 90.2 -> 84.9 µs); instead one template per
  // direction is initialised once and copied. Copies are taken under template_mu_, since
  // OpenSSL does not promise that concurrent copies of one context are safe.
  internal::EvpMdCtxPtr NewContext(bool sign) const;
  internal::EvpMdCtxPtr InitContext(bool sign) const;

  const Algorithm alg_;
  const internal::EvpPkeyPtr pkey_;  // null for HS256
  const std::string secret_;         // HS256 only
  const bool has_private_;
  const std::vector<JwkMember> public_members_;
  const std::string kid_;

  mutable absl::Mutex template_mu_;
  mutable internal::EvpMdCtxPtr sign_template_ ABSL_GUARDED_BY(template_mu_);
  mutable internal::EvpMdCtxPtr verify_template_ ABSL_GUARDED_BY(template_mu_);
};

// RFC 7638 thumbprint: base64url(SHA-256(canonical JSON of `members`)). `members`
// must be the key type's required members, already in lexicographic order.
std::string JwkThumbprint(const std::vector<JwkMember>& members);

namespace internal {
// The public members of an OpenSSL key (EC P-256, Ed25519 or RSA), in RFC 7638 order.
absl::StatusOr<std::vector<JwkMember>> PublicMembersOf(EVP_PKEY* pkey, Algorithm alg);
}  // namespace internal

}  // namespace ta::token

#endif  // TA_TOKEN_KEY_H_

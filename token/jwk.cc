// JWK import and export for Key (RFC 7517, RFC 7518 §6, RFC 8037 §2) and the RFC 7638
// thumbprint that names every key.
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <optional>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "token/base64url.h"
#include "token/crypto.h"
#include "token/json.h"
#include "token/key.h"

namespace ta::token {
namespace {

using internal::BignumPtr;
using internal::EvpPkeyCtxPtr;
using internal::EvpPkeyPtr;
using internal::OpenSslError;
using internal::ParamBldPtr;
using internal::ParamPtr;

constexpr size_t kP256Bytes = 32;
constexpr size_t kEd25519Bytes = 32;

// One JWK member, base64url-decoded; nullopt when absent.
using Member = std::optional<std::string>;

absl::StatusOr<Member> DecodedMember(const rapidjson::Document& jwk, const char* name) {
  auto it = jwk.FindMember(name);
  if (it == jwk.MemberEnd()) return Member();
  if (!it->value.IsString()) return absl::InvalidArgumentError(absl::StrCat("JWK ", name));
  absl::StatusOr<std::string> bytes = Base64UrlDecode(internal::StringOf(it->value));
  if (!bytes.ok()) return absl::InvalidArgumentError(absl::StrCat("JWK ", name, " encoding"));
  return Member(*std::move(bytes));
}

absl::StatusOr<std::string> RequiredMember(const rapidjson::Document& jwk, const char* name) {
  ASSIGN_OR_RETURN(Member m, DecodedMember(jwk, name));
  if (!m.has_value() || m->empty()) {
    return absl::InvalidArgumentError(absl::StrCat("JWK lacks ", name));
  }
  return *std::move(m);
}

absl::StatusOr<std::string> TextMember(const rapidjson::Document& jwk, const char* name) {
  auto it = jwk.FindMember(name);
  if (it == jwk.MemberEnd() || !it->value.IsString()) {
    return absl::InvalidArgumentError(absl::StrCat("JWK lacks ", name));
  }
  return std::string(internal::StringOf(it->value));
}

// Big-endian unsigned bytes -> an OSSL_PARAM_BLD BIGNUM member. `keep` owns the BIGNUM
// until the parameters are built.
bool PushBn(OSSL_PARAM_BLD* bld, const char* name, absl::string_view bytes,
            std::vector<BignumPtr>* keep) {
  keep->emplace_back(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                               static_cast<int>(bytes.size()), nullptr));
  return keep->back() != nullptr && OSSL_PARAM_BLD_push_BN(bld, name, keep->back().get()) == 1;
}

absl::StatusOr<EvpPkeyPtr> FromData(const char* type, OSSL_PARAM_BLD* bld, bool is_private) {
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld));
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (params == nullptr || ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, is_private ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
                        params.get()) != 1) {
    return OpenSslError(absl::StatusCode::kInvalidArgument, "JWK is not a valid key");
  }
  return EvpPkeyPtr(raw);
}

absl::StatusOr<EvpPkeyPtr> EcFromJwk(const rapidjson::Document& jwk) {
  ASSIGN_OR_RETURN(std::string crv, TextMember(jwk, "crv"));
  if (crv != "P-256") return absl::InvalidArgumentError("JWK crv is not P-256");
  ASSIGN_OR_RETURN(std::string x, RequiredMember(jwk, "x"));
  ASSIGN_OR_RETURN(std::string y, RequiredMember(jwk, "y"));
  ASSIGN_OR_RETURN(Member d, DecodedMember(jwk, "d"));
  if (x.size() != kP256Bytes || y.size() != kP256Bytes || (d && d->size() != kP256Bytes)) {
    return absl::InvalidArgumentError("JWK P-256 member has the wrong length");
  }
  std::string point = absl::StrCat("\x04", x, y);  // SEC 1 uncompressed point
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  std::vector<BignumPtr> keep;
  if (bld == nullptr ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) !=
          1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1 ||
      (d && !PushBn(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, *d, &keep))) {
    return OpenSslError(absl::StatusCode::kInternal, "EC parameters");
  }
  return FromData("EC", bld.get(), d.has_value());
}

absl::StatusOr<EvpPkeyPtr> RsaFromJwk(const rapidjson::Document& jwk) {
  static constexpr std::pair<const char*, const char*> kPrivate[] = {
      {"d", OSSL_PKEY_PARAM_RSA_D},          {"p", OSSL_PKEY_PARAM_RSA_FACTOR1},
      {"q", OSSL_PKEY_PARAM_RSA_FACTOR2},    {"dp", OSSL_PKEY_PARAM_RSA_EXPONENT1},
      {"dq", OSSL_PKEY_PARAM_RSA_EXPONENT2}, {"qi", OSSL_PKEY_PARAM_RSA_COEFFICIENT1}};
  ASSIGN_OR_RETURN(std::string n, RequiredMember(jwk, "n"));
  ASSIGN_OR_RETURN(std::string e, RequiredMember(jwk, "e"));
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  std::vector<BignumPtr> keep;
  if (bld == nullptr || !PushBn(bld.get(), OSSL_PKEY_PARAM_RSA_N, n, &keep) ||
      !PushBn(bld.get(), OSSL_PKEY_PARAM_RSA_E, e, &keep)) {
    return OpenSslError(absl::StatusCode::kInternal, "RSA parameters");
  }
  bool is_private = false;
  for (const auto& [member, param] : kPrivate) {
    ASSIGN_OR_RETURN(Member value, DecodedMember(jwk, member));
    if (!value) continue;
    is_private = true;
    if (!PushBn(bld.get(), param, *value, &keep)) {
      return OpenSslError(absl::StatusCode::kInternal, "RSA parameters");
    }
  }
  return FromData("RSA", bld.get(), is_private);
}

absl::StatusOr<EvpPkeyPtr> OkpFromJwk(const rapidjson::Document& jwk) {
  ASSIGN_OR_RETURN(std::string crv, TextMember(jwk, "crv"));
  if (crv != "Ed25519") return absl::InvalidArgumentError("JWK crv is not Ed25519");
  ASSIGN_OR_RETURN(std::string x, RequiredMember(jwk, "x"));
  ASSIGN_OR_RETURN(Member d, DecodedMember(jwk, "d"));
  if (x.size() != kEd25519Bytes || (d && d->size() != kEd25519Bytes)) {
    return absl::InvalidArgumentError("JWK Ed25519 member has the wrong length");
  }
  const std::string& raw = d ? *d : x;
  auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  EvpPkeyPtr pkey(d ? EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, bytes, raw.size())
                    : EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, bytes, raw.size()));
  if (pkey == nullptr) return OpenSslError(absl::StatusCode::kInvalidArgument, "Ed25519 key");
  if (d) {
    // The public key derives from d; a JWK whose x disagrees is corrupt.
    unsigned char derived[kEd25519Bytes];
    size_t len = sizeof(derived);
    if (EVP_PKEY_get_raw_public_key(pkey.get(), derived, &len) != 1 || len != x.size() ||
        x.compare(0, len, reinterpret_cast<const char*>(derived), len) != 0) {
      return absl::InvalidArgumentError("JWK Ed25519 x does not match d");
    }
  }
  return pkey;
}

absl::StatusOr<std::string> BnParam(EVP_PKEY* pkey, const char* name, int pad_to) {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(pkey, name, &raw) != 1) {
    return OpenSslError(absl::StatusCode::kInternal, "key parameter");
  }
  BignumPtr bn(raw);
  int len = pad_to > 0 ? pad_to : BN_num_bytes(bn.get());
  std::string out(static_cast<size_t>(len), '\0');
  if (BN_bn2binpad(bn.get(), reinterpret_cast<unsigned char*>(out.data()), len) != len) {
    return OpenSslError(absl::StatusCode::kInternal, "key parameter size");
  }
  return out;
}

}  // namespace

std::string JwkThumbprint(const std::vector<JwkMember>& members) {
  rapidjson::StringBuffer buffer;
  internal::JsonWriter w(buffer);
  w.StartObject();
  for (const auto& [name, value] : members) {
    internal::WriteKey(w, name);
    internal::WriteString(w, value);
  }
  w.EndObject();
  return Base64UrlEncode(Sha256(absl::string_view(buffer.GetString(), buffer.GetSize())));
}

absl::StatusOr<std::unique_ptr<Key>> Key::FromJwk(absl::string_view jwk_json, Algorithm alg) {
  rapidjson::Document jwk;
  RETURN_IF_ERROR(internal::ParseJsonObject(jwk_json, &jwk));
  ASSIGN_OR_RETURN(std::string kty, TextMember(jwk, "kty"));
  auto alg_member = jwk.FindMember("alg");
  if (alg_member != jwk.MemberEnd() &&
      !(alg_member->value.IsString() &&
        internal::StringOf(alg_member->value) == AlgorithmName(alg))) {
    return absl::InvalidArgumentError("JWK alg differs from the requested algorithm");
  }
  if (kty == "oct") {
    if (alg != Algorithm::kHS256) return absl::InvalidArgumentError("oct JWK is HS256 only");
    ASSIGN_OR_RETURN(std::string k, RequiredMember(jwk, "k"));
    return FromHmacSecret(k);
  }
  absl::StatusOr<EvpPkeyPtr> pkey = kty == "EC"    ? EcFromJwk(jwk)
                                    : kty == "RSA" ? RsaFromJwk(jwk)
                                    : kty == "OKP" ? OkpFromJwk(jwk)
                                                   : absl::InvalidArgumentError("JWK kty");
  if (!pkey.ok()) return pkey.status();
  bool has_private = jwk.HasMember("d");
  return Create(alg, *std::move(pkey), std::string(), has_private);
}

namespace internal {

absl::StatusOr<std::vector<JwkMember>> PublicMembersOf(EVP_PKEY* pkey, Algorithm alg) {
  switch (alg) {
    case Algorithm::kES256: {
      ASSIGN_OR_RETURN(std::string x, BnParam(pkey, OSSL_PKEY_PARAM_EC_PUB_X, kP256Bytes));
      ASSIGN_OR_RETURN(std::string y, BnParam(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, kP256Bytes));
      return std::vector<JwkMember>{
          {"crv", "P-256"}, {"kty", "EC"}, {"x", Base64UrlEncode(x)}, {"y", Base64UrlEncode(y)}};
    }
    case Algorithm::kRS256:
    case Algorithm::kPS256: {
      ASSIGN_OR_RETURN(std::string n, BnParam(pkey, OSSL_PKEY_PARAM_RSA_N, 0));
      ASSIGN_OR_RETURN(std::string e, BnParam(pkey, OSSL_PKEY_PARAM_RSA_E, 0));
      return std::vector<JwkMember>{
          {"e", Base64UrlEncode(e)}, {"kty", "RSA"}, {"n", Base64UrlEncode(n)}};
    }
    case Algorithm::kEdDSA: {
      unsigned char x[kEd25519Bytes];
      size_t len = sizeof(x);
      if (EVP_PKEY_get_raw_public_key(pkey, x, &len) != 1 || len != kEd25519Bytes) {
        return OpenSslError(absl::StatusCode::kInternal, "Ed25519 public key");
      }
      return std::vector<JwkMember>{
          {"crv", "Ed25519"},
          {"kty", "OKP"},
          {"x", Base64UrlEncode(absl::string_view(reinterpret_cast<char*>(x), len))}};
    }
    case Algorithm::kHS256:
      break;
  }
  return std::vector<JwkMember>();
}

}  // namespace internal
}  // namespace ta::token

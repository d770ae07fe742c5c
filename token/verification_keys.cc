#include "token/verification_keys.h"

#include <string>
#include <utility>

#include "base/error.h"
#include "base/status_macros.h"
#include "token/base64url.h"
#include "token/json.h"
#include "token/jws.h"

namespace ta::token {
namespace {

absl::Status Reject(absl::string_view why, absl::string_view message) {
  return ta::Error(absl::StatusCode::kUnauthenticated, why, message);
}

}  // namespace

absl::StatusOr<VerifiedJwt> VerifyJwt(absl::string_view token, const VerifyPolicy& policy,
                                      absl::Time now, KeyLookup find) {
  if (token.size() > policy.max_token_bytes) {
    return ta::Error(absl::StatusCode::kInvalidArgument, reason::kTokenTooLarge,
                     "token exceeds the size limit");
  }
  ASSIGN_OR_RETURN(CompactJws jws, SplitCompactJws(token));
  ASSIGN_OR_RETURN(JwsHeader header, ParseJwsHeader(jws.header_b64));
  if (!policy.expected_typ.empty() && !TypMatches(header.typ, policy.expected_typ)) {
    return Reject(reason::kWrongTyp, "token type is not accepted here");
  }
  const Key* key = header.kid.empty() ? nullptr : find(header.kid);
  if (key == nullptr) return Reject(reason::kUnknownKid, "no verifying key has this kid");
  if (header.alg != key->alg()) {
    return Reject(reason::kAlgMismatch, "token alg differs from the key's algorithm");
  }
  RETURN_IF_ERROR(CheckJwsSignature(jws, *key));
  absl::StatusOr<std::string> payload = Base64UrlDecode(jws.payload_b64);
  if (!payload.ok()) return Reject(reason::kMalformedToken, "JWS payload encoding");
  ASSIGN_OR_RETURN(JwtClaims claims, DecodeClaims(*payload));
  RETURN_IF_ERROR(CheckClaims(claims, policy, now));
  return VerifiedJwt{key->kid(), key->alg(), std::move(claims), *std::move(payload)};
}

absl::StatusOr<std::shared_ptr<const VerifiedJwt>> KeySet::Verify(absl::string_view token,
                                                                  const VerifyPolicy& policy,
                                                                  absl::Time now) const {
  auto find = [&](absl::string_view kid) -> const Key* {
    for (const Entry& e : keys_) {
      if (e.key->kid() == kid && now < e.retire_at) return e.key.get();
    }
    return nullptr;
  };
  ASSIGN_OR_RETURN(VerifiedJwt verified, VerifyJwt(token, policy, now, find));
  return std::make_shared<const VerifiedJwt>(std::move(verified));
}

absl::StatusOr<std::shared_ptr<const KeySet>> KeySet::FromJwks(absl::string_view jwks_json) {
  rapidjson::Document doc;
  if (!internal::ParseJsonObject(jwks_json, &doc).ok()) {
    return absl::InvalidArgumentError("invalid_jwks: not a JSON object");
  }
  auto keys = doc.FindMember("keys");
  if (keys == doc.MemberEnd() || !keys->value.IsArray()) {
    return absl::InvalidArgumentError("invalid_jwks: no \"keys\" array");
  }
  std::vector<Entry> entries;
  for (const rapidjson::Value& jwk : keys->value.GetArray()) {
    if (!jwk.IsObject()) return absl::InvalidArgumentError("invalid_jwks: a key is no object");
    auto alg = jwk.FindMember("alg");
    auto kid = jwk.FindMember("kid");
    auto use = jwk.FindMember("use");
    if (alg == jwk.MemberEnd() || !alg->value.IsString() || kid == jwk.MemberEnd() ||
        !kid->value.IsString()) {
      continue;
    }
    if (use != jwk.MemberEnd() &&
        (!use->value.IsString() || internal::StringOf(use->value) != "sig")) {
      continue;
    }
    if (jwk.HasMember("d")) continue;  // a JWKS publishes public keys only
    absl::StatusOr<Algorithm> parsed = ParseAlgorithm(internal::StringOf(alg->value));
    if (!parsed.ok() || *parsed == Algorithm::kHS256) continue;
    absl::StatusOr<std::unique_ptr<Key>> key = Key::FromJwk(internal::ToJson(jwk), *parsed);
    if (!key.ok() || (*key)->kid() != internal::StringOf(kid->value)) continue;
    entries.push_back(Entry{std::shared_ptr<const Key>(std::move(*key)), absl::InfiniteFuture()});
  }
  return std::make_shared<const KeySet>(std::move(entries));
}

}  // namespace ta::token

#include "token/jws.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "base/status_macros.h"
#include "token/base64url.h"
#include "token/json.h"

namespace ta::token {
namespace {

absl::Status Reject(absl::string_view why, absl::string_view message) {
  return ta::Error(absl::StatusCode::kUnauthenticated, why, message);
}

// Reads one header member into `header`; `alg_name` receives the raw algorithm.
absl::Status ReadHeaderMember(absl::string_view name, const rapidjson::Value& value,
                              JwsHeader* header, std::string* alg_name) {
  std::string* target = name == "alg"   ? alg_name
                        : name == "kid" ? &header->kid
                        : name == "typ" ? &header->typ
                                        : nullptr;
  if (target == nullptr) {
    return Reject(reason::kForbiddenHeader, "JWS header member is not allowed");
  }
  if (!value.IsString()) return Reject(reason::kMalformedToken, "JWS header member type");
  target->assign(value.GetString(), value.GetStringLength());
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CompactJws> SplitCompactJws(absl::string_view token) {
  size_t first = token.find('.');
  size_t second = first == absl::string_view::npos ? first : token.find('.', first + 1);
  if (second == absl::string_view::npos || token.find('.', second + 1) != absl::string_view::npos) {
    return Reject(reason::kMalformedToken, "token is not three dot-separated segments");
  }
  CompactJws jws;
  jws.signing_input = token.substr(0, second);
  jws.header_b64 = token.substr(0, first);
  jws.payload_b64 = token.substr(first + 1, second - first - 1);
  jws.signature_b64 = token.substr(second + 1);
  // An empty signature is left for the signature check, so that an unsecured token
  // ("alg":"none", no signature) is reported as alg_none.
  if (jws.header_b64.empty()) return Reject(reason::kMalformedToken, "token has no header");
  return jws;
}

absl::StatusOr<JwsHeader> ParseJwsHeader(absl::string_view header_b64) {
  absl::StatusOr<std::string> text = Base64UrlDecode(header_b64);
  rapidjson::Document doc;
  if (!text.ok() || !internal::ParseJsonObject(*text, &doc).ok()) {
    return Reject(reason::kMalformedToken, "JWS header is not a strict JSON object");
  }
  JwsHeader header;
  std::string alg_name;
  bool has_alg = doc.HasMember("alg");
  for (const auto& m : doc.GetObject()) {
    RETURN_IF_ERROR(ReadHeaderMember(internal::StringOf(m.name), m.value, &header, &alg_name));
  }
  if (!has_alg) return Reject(reason::kMalformedToken, "JWS header lacks alg");
  if (absl::EqualsIgnoreCase(alg_name, "none")) {
    return Reject(reason::kAlgNone, "unsecured JWS is not accepted");
  }
  absl::StatusOr<Algorithm> alg = ParseAlgorithm(alg_name);
  if (!alg.ok()) return Reject(reason::kUnsupportedAlg, "JWS algorithm is not supported");
  header.alg = *alg;
  return header;
}

std::string EncodeJwsHeader(Algorithm alg, absl::string_view kid, absl::string_view typ) {
  rapidjson::StringBuffer buffer;
  internal::JsonWriter w(buffer);
  w.StartObject();
  internal::WriteKey(w, "alg");
  internal::WriteString(w, AlgorithmName(alg));
  if (!kid.empty()) {
    internal::WriteKey(w, "kid");
    internal::WriteString(w, kid);
  }
  if (!typ.empty()) {
    internal::WriteKey(w, "typ");
    internal::WriteString(w, typ);
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

absl::StatusOr<std::string> SignCompactJws(absl::string_view header_json, absl::string_view payload,
                                           const Key& key) {
  std::string signing_input =
      absl::StrCat(Base64UrlEncode(header_json), ".", Base64UrlEncode(payload));
  ASSIGN_OR_RETURN(std::string signature, key.Sign(signing_input));
  return absl::StrCat(signing_input, ".", Base64UrlEncode(signature));
}

absl::Status CheckJwsSignature(const CompactJws& jws, const Key& key) {
  absl::StatusOr<std::string> signature = Base64UrlDecode(jws.signature_b64);
  if (!signature.ok()) return Reject(reason::kMalformedToken, "JWS signature encoding");
  if (!key.Verify(jws.signing_input, *signature)) {
    return Reject(reason::kBadSignature, "JWS signature does not verify");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> VerifyJws(absl::string_view token, const Key& key) {
  ASSIGN_OR_RETURN(CompactJws jws, SplitCompactJws(token));
  ASSIGN_OR_RETURN(JwsHeader header, ParseJwsHeader(jws.header_b64));
  if (header.alg != key.alg()) {
    return Reject(reason::kAlgMismatch, "JWS alg differs from the key's algorithm");
  }
  RETURN_IF_ERROR(CheckJwsSignature(jws, key));
  absl::StatusOr<std::string> payload = Base64UrlDecode(jws.payload_b64);
  if (!payload.ok()) return Reject(reason::kMalformedToken, "JWS payload encoding");
  return *std::move(payload);
}

}  // namespace ta::token

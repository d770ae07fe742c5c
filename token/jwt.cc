#include "token/jwt.h"

#include <cmath>
#include <cstdint>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/error.h"
#include "base/status_macros.h"
#include "token/json.h"

namespace ta::token {
namespace {

using internal::JsonWriter;
using internal::StringOf;
using internal::WriteKey;
using internal::WriteString;

// NumericDate values outside [1970, 9999] are refused: they are mistakes or attacks,
// and the bound keeps every conversion in range.
constexpr int64_t kMaxNumericDate = 253402300799;

absl::Status Unauthenticated(absl::string_view why, absl::string_view message) {
  return ta::Error(absl::StatusCode::kUnauthenticated, why, message);
}

absl::Status Malformed(absl::string_view message) {
  return Unauthenticated(reason::kMalformedToken, message);
}

bool IsStandardClaim(absl::string_view name) {
  static const auto* const kNames = new absl::flat_hash_set<absl::string_view>(
      {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "client_id", "scope", "sid", "cnf"});
  return kNames->contains(name);
}

absl::Status ParseExtraClaims(absl::string_view extra_json, rapidjson::Document* doc) {
  auto invalid = [](absl::string_view message) {
    return ta::Error(absl::StatusCode::kInvalidArgument, reason::kExtraClaims, message);
  };
  if (extra_json.size() > kMaxExtraClaimsBytes) return invalid("extra claims exceed 16 KiB");
  absl::Status parsed = internal::ParseJsonObject(extra_json, doc);
  if (!parsed.ok()) return invalid(absl::StrCat("extra claims: ", parsed.message()));
  if (doc->MemberCount() > kMaxExtraClaims) return invalid("more than 64 extra claims");
  for (const auto& m : doc->GetObject()) {
    if (IsReservedClaim(StringOf(m.name))) return invalid("extra claims use a reserved name");
  }
  return absl::OkStatus();
}

absl::Status RequireText(absl::string_view field, absl::string_view value, bool required) {
  if (required && value.empty()) return ta::InvalidField(field, "required claim is empty");
  if (!internal::IsValidUtf8(value)) return ta::InvalidField(field, "claim is not UTF-8");
  return absl::OkStatus();
}

absl::StatusOr<int64_t> NumericDateOf(absl::string_view field, absl::Time t) {
  int64_t seconds = absl::ToUnixSeconds(t);
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture() || seconds < 0 ||
      seconds > kMaxNumericDate) {
    return ta::InvalidField(field, "NumericDate out of range");
  }
  return seconds;
}

absl::Status ValidateForSigning(const JwtClaims& c) {
  RETURN_IF_ERROR(RequireText("iss", c.iss, true));
  RETURN_IF_ERROR(RequireText("sub", c.sub, true));
  RETURN_IF_ERROR(RequireText("jti", c.jti, true));
  RETURN_IF_ERROR(RequireText("client_id", c.client_id, true));
  RETURN_IF_ERROR(RequireText("scope", c.scope, false));
  RETURN_IF_ERROR(RequireText("sid", c.sid, false));
  if (!c.cnf.jkt.empty() && !c.cnf.x5t_s256.empty()) {
    return ta::InvalidField("cnf", "cnf names both a key and a certificate");
  }
  RETURN_IF_ERROR(RequireText("cnf", c.cnf.jkt, false));
  RETURN_IF_ERROR(RequireText("cnf", c.cnf.x5t_s256, false));
  if (c.aud.empty()) return ta::InvalidField("aud", "required claim is empty");
  for (const std::string& a : c.aud) RETURN_IF_ERROR(RequireText("aud", a, true));
  if (c.exp <= c.iat) return ta::InvalidField("exp", "exp must be after iat");
  return absl::OkStatus();
}

void WriteMember(JsonWriter& w, absl::string_view name, absl::string_view value) {
  WriteKey(w, name);
  WriteString(w, value);
}

void WriteAudience(JsonWriter& w, const std::vector<std::string>& aud) {
  WriteKey(w, "aud");
  if (aud.size() == 1) {
    WriteString(w, aud[0]);
    return;
  }
  w.StartArray();
  for (const std::string& a : aud) WriteString(w, a);
  w.EndArray();
}

// Reads a NumericDate member: a JSON number (never a string), floored to seconds.
absl::StatusOr<absl::Time> ReadNumericDate(const rapidjson::Value& v) {
  int64_t seconds;
  if (v.IsInt64()) {
    seconds = v.GetInt64();
  } else if (v.IsDouble() && std::isfinite(v.GetDouble()) && v.GetDouble() >= 0 &&
             v.GetDouble() <= static_cast<double>(kMaxNumericDate)) {
    seconds = static_cast<int64_t>(std::floor(v.GetDouble()));
  } else {
    return Malformed("NumericDate claim is not a number in range");
  }
  if (seconds < 0 || seconds > kMaxNumericDate) return Malformed("NumericDate out of range");
  return absl::FromUnixSeconds(seconds);
}

absl::Status ReadAudience(const rapidjson::Value& v, std::vector<std::string>* aud) {
  if (v.IsString()) {
    aud->emplace_back(StringOf(v));
    return absl::OkStatus();
  }
  if (!v.IsArray()) return Malformed("aud is neither a string nor an array");
  for (const auto& item : v.GetArray()) {
    if (!item.IsString()) return Malformed("aud array holds a non-string");
    aud->emplace_back(StringOf(item));
  }
  return absl::OkStatus();
}

// RFC 7800 cnf as we issue it: one member, jkt or x5t#S256, a non-empty string.
absl::Status ReadConfirmation(const rapidjson::Value& v, Confirmation* cnf) {
  if (!v.IsObject() || v.MemberCount() != 1) return Malformed("cnf is not a one-member object");
  const auto& m = *v.MemberBegin();
  if (!m.value.IsString() || m.value.GetStringLength() == 0) {
    return Malformed("cnf member is not a string");
  }
  absl::string_view name = StringOf(m.name);
  std::string* out = name == "jkt" ? &cnf->jkt : name == "x5t#S256" ? &cnf->x5t_s256 : nullptr;
  if (out == nullptr) return Malformed("cnf names an unknown confirmation method");
  out->assign(m.value.GetString(), m.value.GetStringLength());
  return absl::OkStatus();
}

absl::Status ReadStandardClaim(absl::string_view name, const rapidjson::Value& v, JwtClaims* c) {
  if (name == "aud") return ReadAudience(v, &c->aud);
  if (name == "cnf") return ReadConfirmation(v, &c->cnf);
  absl::Time* time = name == "exp"   ? &c->exp
                     : name == "nbf" ? &c->nbf
                     : name == "iat" ? &c->iat
                                     : nullptr;
  if (time != nullptr) {
    ASSIGN_OR_RETURN(*time, ReadNumericDate(v));
    return absl::OkStatus();
  }
  if (!v.IsString()) return Malformed("string claim has another type");
  std::string* text = name == "iss"         ? &c->iss
                      : name == "sub"       ? &c->sub
                      : name == "jti"       ? &c->jti
                      : name == "client_id" ? &c->client_id
                      : name == "scope"     ? &c->scope
                                            : &c->sid;
  text->assign(v.GetString(), v.GetStringLength());
  return absl::OkStatus();
}

absl::Status RequirePresent(const JwtClaims& c) {
  bool missing = c.iss.empty() || c.sub.empty() || c.aud.empty() || c.jti.empty() ||
                 c.client_id.empty() || c.exp == absl::InfinitePast() ||
                 c.iat == absl::InfinitePast();
  for (const std::string& a : c.aud) missing = missing || a.empty();
  if (missing) return Unauthenticated(reason::kMissingClaim, "a required claim is missing");
  return absl::OkStatus();
}

// Lower-cased media type without the optional "application/" prefix.
std::string NormalizeTyp(absl::string_view typ) {
  std::string lower = absl::AsciiStrToLower(typ);
  absl::string_view view = lower;
  if (absl::ConsumePrefix(&view, "application/")) return std::string(view);
  return lower;
}

}  // namespace

absl::string_view AlgorithmName(Algorithm alg) {
  switch (alg) {
    case Algorithm::kES256:
      return "ES256";
    case Algorithm::kEdDSA:
      return "EdDSA";
    case Algorithm::kRS256:
      return "RS256";
    case Algorithm::kPS256:
      return "PS256";
    case Algorithm::kHS256:
      return "HS256";
  }
  return "unknown";
}

absl::StatusOr<Algorithm> ParseAlgorithm(absl::string_view name) {
  for (Algorithm alg : {Algorithm::kES256, Algorithm::kEdDSA, Algorithm::kRS256, Algorithm::kPS256,
                        Algorithm::kHS256}) {
    if (name == AlgorithmName(alg)) return alg;
  }
  return absl::InvalidArgumentError("unsupported JWS algorithm");
}

bool IsReservedClaim(absl::string_view name) {
  static const auto* const kReserved = new absl::flat_hash_set<absl::string_view>({
      // RFC 7519 / RFC 9068 registered claims.
      "iss",
      "sub",
      "aud",
      "exp",
      "nbf",
      "iat",
      "jti",
      "client_id",
      "scope",
      "sid",
      // Names whose meaning the server (or a relying party) owns.
      "typ",
      "cnf",
      "auth_time",
      "acr",
      "amr",
      "azp",
      "act",
      "may_act",
      "nonce",
      "at_hash",
      "c_hash",
      "s_hash",
      "alg",
      "kid",
      "events",
      "txn",
      // RFC 7662 introspection response members.
      "active",
      "token_type",
      "username",
  });
  return kReserved->contains(name);
}

absl::Status ValidateExtraClaims(absl::string_view extra_json) {
  if (extra_json.empty()) return absl::OkStatus();
  rapidjson::Document doc;
  return ParseExtraClaims(extra_json, &doc);
}

absl::StatusOr<std::string> EncodeClaims(const JwtClaims& c) {
  RETURN_IF_ERROR(ValidateForSigning(c));
  ASSIGN_OR_RETURN(int64_t exp, NumericDateOf("exp", c.exp));
  ASSIGN_OR_RETURN(int64_t iat, NumericDateOf("iat", c.iat));
  int64_t nbf = -1;
  if (c.nbf != absl::InfinitePast()) {
    ASSIGN_OR_RETURN(nbf, NumericDateOf("nbf", c.nbf));
  }
  rapidjson::Document extra;
  if (!c.extra_json.empty()) RETURN_IF_ERROR(ParseExtraClaims(c.extra_json, &extra));

  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  WriteMember(w, "iss", c.iss);
  WriteMember(w, "sub", c.sub);
  WriteAudience(w, c.aud);
  WriteKey(w, "exp");
  w.Int64(exp);
  if (nbf >= 0) {
    WriteKey(w, "nbf");
    w.Int64(nbf);
  }
  WriteKey(w, "iat");
  w.Int64(iat);
  WriteMember(w, "jti", c.jti);
  WriteMember(w, "client_id", c.client_id);
  if (!c.scope.empty()) WriteMember(w, "scope", c.scope);
  if (!c.sid.empty()) WriteMember(w, "sid", c.sid);
  if (!c.cnf.empty()) {
    WriteKey(w, "cnf");
    w.StartObject();
    if (!c.cnf.jkt.empty()) WriteMember(w, "jkt", c.cnf.jkt);
    if (!c.cnf.x5t_s256.empty()) WriteMember(w, "x5t#S256", c.cnf.x5t_s256);
    w.EndObject();
  }
  if (extra.IsObject()) {
    for (const auto& m : extra.GetObject()) {
      WriteKey(w, StringOf(m.name));
      m.value.Accept(w);
    }
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

absl::StatusOr<JwtClaims> DecodeClaims(absl::string_view payload_json) {
  rapidjson::Document doc;
  if (!internal::ParseJsonObject(payload_json, &doc).ok()) {
    return Malformed("claims are not a strict JSON object");
  }
  JwtClaims claims;
  rapidjson::StringBuffer extra;
  JsonWriter w(extra);
  bool has_extra = false;
  w.StartObject();
  for (const auto& m : doc.GetObject()) {
    absl::string_view name = StringOf(m.name);
    if (IsStandardClaim(name)) {
      RETURN_IF_ERROR(ReadStandardClaim(name, m.value, &claims));
      continue;
    }
    has_extra = true;
    WriteKey(w, name);
    m.value.Accept(w);
  }
  w.EndObject();
  if (has_extra) claims.extra_json.assign(extra.GetString(), extra.GetSize());
  RETURN_IF_ERROR(RequirePresent(claims));
  return claims;
}

absl::Status CheckClaims(const JwtClaims& c, const VerifyPolicy& policy, absl::Time now) {
  if (c.iss != policy.issuer) {
    return Unauthenticated(reason::kWrongIssuer, "token issuer is not accepted");
  }
  if (!policy.audience.empty()) {
    bool found = false;
    for (const std::string& a : c.aud) found = found || a == policy.audience;
    if (!found) return Unauthenticated(reason::kAudienceMismatch, "token audience differs");
  }
  if (now >= c.exp + policy.leeway) {
    return Unauthenticated(reason::kTokenExpired, "token has expired");
  }
  if (c.nbf != absl::InfinitePast() && now + policy.leeway < c.nbf) {
    return Unauthenticated(reason::kTokenNotYetValid, "token is not yet valid");
  }
  if (c.iat > now + policy.leeway) {
    return Unauthenticated(reason::kIatInFuture, "token issued in the future");
  }
  return absl::OkStatus();
}

bool TypMatches(absl::string_view typ, absl::string_view expected) {
  return NormalizeTyp(typ) == NormalizeTyp(expected);
}

}  // namespace ta::token

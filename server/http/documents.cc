#include "server/http/documents.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "token/base64url.h"
#include "token/crypto.h"
#include "token/dpop.h"
#include "token/introspection_json.h"
#include "token/jws.h"

namespace ta::http {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void Key(Writer& w, absl::string_view s) {
  w.Key(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}
void String(Writer& w, absl::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}
void Member(Writer& w, absl::string_view key, absl::string_view value) {
  Key(w, key);
  String(w, value);
}
template <typename Range>
void StringArray(Writer& w, absl::string_view key, const Range& values) {
  Key(w, key);
  w.StartArray();
  for (absl::string_view v : values) String(w, v);
  w.EndArray();
}
void Strings(Writer& w, absl::string_view key, std::initializer_list<absl::string_view> values) {
  StringArray(w, key, values);
}

// The scope claim of an access token this server just minted ("" when it cannot be read).
std::string ScopeOf(absl::string_view access_token) {
  absl::StatusOr<token::CompactJws> jws = token::SplitCompactJws(access_token);
  if (!jws.ok()) return "";
  absl::StatusOr<std::string> payload = token::Base64UrlDecode(jws->payload_b64);
  if (!payload.ok()) return "";
  absl::StatusOr<token::JwtClaims> claims = token::DecodeClaims(*payload);
  return claims.ok() ? claims->scope : "";
}

// The algorithms this server may sign with (DESIGN §2): all of them, so that a verifier's
// allow-list taken from the metadata survives a RotateSigningKey to another algorithm.
constexpr std::initializer_list<absl::string_view> kSigningAlgs = {"ES256", "EdDSA", "RS256",
                                                                   "PS256"};

}  // namespace

std::string ErrorJson(absl::string_view error, absl::string_view description) {
  return token::OAuthErrorJson(error, description);
}

std::string StatusJson(absl::string_view status, absl::string_view reason) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  Member(w, "status", status);
  if (!reason.empty()) Member(w, "reason", reason);
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string IntrospectionJson(const core::Introspection& in, absl::string_view issuer) {
  token::IntrospectionFields fields;
  fields.active = in.active;
  fields.token_type = in.token_type;
  fields.subject = in.subject;
  fields.family_id = in.family_id;
  fields.jti = in.jti;
  fields.client_id = in.client_id;
  fields.scope = in.scope;
  fields.audience = in.audience;
  fields.issued_at = in.issued_at;
  fields.expires_at = in.expires_at;
  fields.cnf = in.cnf;
  return token::IntrospectionResponseJson(fields, issuer);
}

std::string TokenResponseJson(const core::TokenPair& pair) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  Member(w, "access_token", pair.access_token);
  Member(w, "token_type", pair.token_type);
  Key(w, "expires_in");
  w.Int64(pair.expires_in);
  Member(w, "refresh_token", pair.refresh_token);
  Member(w, "scope", ScopeOf(pair.access_token));
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::vector<std::string> DpopSigningAlgs() {
  std::vector<std::string> out;
  for (token::Algorithm alg : token::DpopPolicy().algorithms) {
    out.emplace_back(token::AlgorithmName(alg));
    if (alg == token::Algorithm::kEdDSA) out.emplace_back("Ed25519");
  }
  return out;
}

std::string MetadataJson(const MetadataOptions& o) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  Member(w, "issuer", o.issuer);
  Member(w, "jwks_uri", absl::StrCat(o.base_url, "/.well-known/jwks.json"));
  // Refreshes only, by public clients (RFC 6749 §6: the refresh token, and for a bound
  // session its DPoP proof, are the only credentials): sessions start over gRPC.
  Member(w, "token_endpoint", absl::StrCat(o.base_url, "/oauth2/token"));
  Strings(w, "grant_types_supported", {"refresh_token"});
  Strings(w, "token_endpoint_auth_methods_supported", {"none"});
  StringArray(w, "dpop_signing_alg_values_supported", DpopSigningAlgs());
  Member(w, "introspection_endpoint", absl::StrCat(o.base_url, "/oauth2/introspect"));
  Strings(w, "introspection_endpoint_auth_methods_supported", {"client_secret_basic"});
  Member(w, "revocation_endpoint", absl::StrCat(o.base_url, "/oauth2/revoke"));
  Strings(w, "revocation_endpoint_auth_methods_supported", {"client_secret_basic"});
  // No authorization endpoint: tokens are issued over gRPC by a login service. RFC 8414 §2
  // requires the member; an empty list says so.
  Key(w, "response_types_supported");
  w.StartArray();
  w.EndArray();
  if (o.openid) Strings(w, "subject_types_supported", {"public"});
  // The algorithms of our access tokens. There is no metadata name for those alone; verifiers
  // that take an allow-list from discovery read this one (registered by RFC 8414 §7.1.2).
  Strings(w, "id_token_signing_alg_values_supported", kSigningAlgs);
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string JwksEtag(absl::string_view jwks_json) {
  const std::string digest = token::Base64UrlEncode(token::Sha256(jwks_json));
  return absl::StrCat("\"", digest.substr(0, 22), "\"");
}

bool EtagMatches(absl::string_view if_none_match, absl::string_view etag) {
  for (absl::string_view candidate : absl::StrSplit(if_none_match, ',')) {
    candidate = absl::StripAsciiWhitespace(candidate);
    if (candidate == "*") return true;
    absl::ConsumePrefix(&candidate, "W/");
    if (candidate == etag) return true;
  }
  return false;
}

}  // namespace ta::http

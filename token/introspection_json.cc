#include "token/introspection_json.h"

#include "token/json.h"

namespace ta::token {
namespace {

using internal::JsonWriter;
using internal::WriteKey;
using internal::WriteString;

void Member(JsonWriter& w, absl::string_view key, absl::string_view value) {
  WriteKey(w, key);
  WriteString(w, value);
}

// RFC 9449 §6.2: a DPoP-bound access token's token_type is "DPoP".
absl::string_view TokenType(const IntrospectionFields& in) {
  if (in.token_type != "access_token") return in.token_type;
  return in.cnf.jkt.empty() ? "Bearer" : "DPoP";
}

void Audience(JsonWriter& w, const std::vector<std::string>& audience) {
  WriteKey(w, "aud");
  if (audience.size() == 1) {
    WriteString(w, audience[0]);
    return;
  }
  w.StartArray();
  for (const std::string& a : audience) WriteString(w, a);
  w.EndArray();
}

}  // namespace

std::string IntrospectionResponseJson(const IntrospectionFields& in, absl::string_view issuer) {
  if (!in.active) return R"({"active":false})";
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  WriteKey(w, "active");
  w.Bool(true);
  Member(w, "scope", in.scope);
  Member(w, "client_id", in.client_id);
  Member(w, "sub", in.subject);
  Audience(w, in.audience);
  Member(w, "iss", issuer);
  WriteKey(w, "exp");
  w.Int64(absl::ToUnixSeconds(in.expires_at));
  WriteKey(w, "iat");
  w.Int64(absl::ToUnixSeconds(in.issued_at));
  if (!in.jti.empty()) Member(w, "jti", in.jti);
  Member(w, "token_type", TokenType(in));
  Member(w, "sid", in.family_id);
  if (!in.cnf.empty()) {  // RFC 7800 §3.1, RFC 9449 §6.2, RFC 8705 §3.2
    WriteKey(w, "cnf");
    w.StartObject();
    if (!in.cnf.jkt.empty()) Member(w, "jkt", in.cnf.jkt);
    if (!in.cnf.x5t_s256.empty()) Member(w, "x5t#S256", in.cnf.x5t_s256);
    w.EndObject();
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string OAuthErrorJson(absl::string_view error, absl::string_view description) {
  std::string clean(description);
  for (char& c : clean) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e || c == '"' || c == '\\') c = ' ';
  }
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  Member(w, "error", error);
  Member(w, "error_description", clean);
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace ta::token

// The JSON documents and the one error mapping of the HTTP face.
#include "server/http/documents.h"

#include <rapidjson/document.h>

#include <catch2/catch.hpp>

#include "base/error.h"
#include "server/http/errors.h"

namespace ta::http {
namespace {

rapidjson::Document Parse(const std::string& json) {
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  REQUIRE_FALSE(doc.HasParseError());
  return doc;
}

core::Introspection ActiveAccess() {
  core::Introspection in;
  in.active = true;
  in.token_type = "access_token";
  in.subject = "alice";
  in.client_id = "web";
  in.scope = "read write";
  in.jti = "j1";
  in.family_id = "fam";
  in.audience = {"api"};
  in.issued_at = absl::FromUnixSeconds(1000);
  in.expires_at = absl::FromUnixSeconds(1300);
  return in;
}

TEST_CASE("IntrospectionJson: an inactive token is exactly {\"active\":false}", "[http]") {
  core::Introspection in = ActiveAccess();
  in.active = false;
  in.inactive_reason = "token_revoked";
  CHECK(IntrospectionJson(in, "iss") == R"({"active":false})");
}

TEST_CASE("IntrospectionJson: an active access token carries RFC 7662 fields", "[http]") {
  rapidjson::Document doc = Parse(IntrospectionJson(ActiveAccess(), "https://auth.example"));
  CHECK(doc["active"].GetBool());
  CHECK(std::string(doc["token_type"].GetString()) == "Bearer");
  CHECK(std::string(doc["aud"].GetString()) == "api");
  CHECK(std::string(doc["iss"].GetString()) == "https://auth.example");
  CHECK(doc["exp"].GetInt64() == 1300);
  CHECK(doc["iat"].GetInt64() == 1000);
  CHECK(std::string(doc["sub"].GetString()) == "alice");
  CHECK(std::string(doc["client_id"].GetString()) == "web");
  CHECK(std::string(doc["scope"].GetString()) == "read write");
  CHECK(std::string(doc["jti"].GetString()) == "j1");
  CHECK(std::string(doc["sid"].GetString()) == "fam");

  core::Introspection two = ActiveAccess();
  two.audience = {"a", "b"};
  CHECK(Parse(IntrospectionJson(two, "i"))["aud"].Size() == 2);
}

TEST_CASE("MetadataJson: issuer verbatim, endpoints under the base URL", "[http]") {
  rapidjson::Document oauth = Parse(MetadataJson({"token-authority", "http://127.0.0.1:1", false}));
  CHECK(std::string(oauth["issuer"].GetString()) == "token-authority");
  CHECK(std::string(oauth["jwks_uri"].GetString()) == "http://127.0.0.1:1/.well-known/jwks.json");
  CHECK(std::string(oauth["introspection_endpoint"].GetString()) ==
        "http://127.0.0.1:1/oauth2/introspect");
  CHECK(std::string(oauth["revocation_endpoint"].GetString()) ==
        "http://127.0.0.1:1/oauth2/revoke");
  CHECK(oauth["response_types_supported"].IsArray());
  CHECK_FALSE(oauth.HasMember("subject_types_supported"));
  rapidjson::Document oidc =
      Parse(MetadataJson({"https://a.example/t", "https://a.example", true}));
  CHECK(oidc.HasMember("subject_types_supported"));
  CHECK(oidc["id_token_signing_alg_values_supported"].Size() == 4);
}

TEST_CASE("EtagMatches: lists, weak tags and *", "[http]") {
  CHECK(EtagMatches("\"abc\"", "\"abc\""));
  CHECK(EtagMatches("\"x\", W/\"abc\"", "\"abc\""));
  CHECK(EtagMatches("*", "\"abc\""));
  CHECK_FALSE(EtagMatches("\"abd\"", "\"abc\""));
  CHECK_FALSE(EtagMatches("abc", "\"abc\""));
  CHECK(JwksEtag("{}") != JwksEtag("{ }"));
  CHECK(JwksEtag("{}") == JwksEtag("{}"));
}

TEST_CASE("ErrorJson: descriptions keep to RFC 6749 5.2's characters", "[http]") {
  rapidjson::Document doc = Parse(ErrorJson("invalid_request", "a\"b\\c\n\xc3\xa9"));
  CHECK(std::string(doc["error_description"].GetString()) == "a b c   ");
}

TEST_CASE("ErrorResponse: the one status-to-HTTP mapping", "[http]") {
  struct Row {
    absl::Status status;
    int http;
    const char* error;
  };
  const Row rows[] = {
      {InvalidField("token", "x"), 400, "invalid_request"},
      {Error(absl::StatusCode::kUnauthenticated, "caller_revoked", "x"), 401, "invalid_client"},
      {Error(absl::StatusCode::kPermissionDenied, "permission_denied", "x"), 403,
       "unauthorized_client"},
      {Error(absl::StatusCode::kNotFound, "not_found", "x"), 404, "not_found"},
      {Error(absl::StatusCode::kUnavailable, "store_unavailable", "x"), 503,
       "temporarily_unavailable"},
      {Error(absl::StatusCode::kResourceExhausted, "overloaded", "x"), 503,
       "temporarily_unavailable"},
      {Error(absl::StatusCode::kInvalidArgument, "method_not_allowed", "x"), 405,
       "invalid_request"},
      {Error(absl::StatusCode::kInvalidArgument, "body_too_large", "x"), 413, "invalid_request"},
      {Error(absl::StatusCode::kInvalidArgument, "header_too_large", "x"), 431, "invalid_request"},
      {absl::InternalError("x"), 500, "server_error"},
      {absl::DataLossError("x"), 500, "server_error"},
  };
  for (const Row& row : rows) {
    INFO(row.status.ToString());
    HttpResponse r = ErrorResponse(row.status);
    CHECK(r.status == row.http);
    CHECK(r.content_type == "application/json");
    CHECK(std::string(Parse(r.body)["error"].GetString()) == row.error);
    bool challenge = false, retry = false;
    for (const auto& [name, value] : r.headers) {
      challenge = challenge || name == "WWW-Authenticate";
      retry = retry || name == "Retry-After";
    }
    CHECK(challenge == (row.http == 401));
    CHECK(retry == (row.http == 503));
  }
}

}  // namespace
}  // namespace ta::http

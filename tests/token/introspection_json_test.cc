// token::IntrospectionResponseJson and OAuthErrorJson (token/introspection_json.h): the RFC 7662
// answers both the authority's HTTP face and the verifier sidecar's render, compared as exact
// text so that a change of member, order or escaping in either face shows here.
#include "token/introspection_json.h"

#include <catch2/catch.hpp>

namespace ta::token {
namespace {

IntrospectionFields ActiveAccess() {
  return IntrospectionFields{.active = true,
                             .token_type = "access_token",
                             .subject = "alice",
                             .family_id = "fam",
                             .jti = "j1",
                             .client_id = "web",
                             .scope = "read write",
                             .audience = {"api"},
                             .issued_at = absl::FromUnixSeconds(1000),
                             .expires_at = absl::FromUnixSeconds(1300),
                             .cnf = {}};
}

TEST_CASE("IntrospectionResponseJson: an inactive token is exactly {\"active\":false}",
          "[token][introspection_json]") {
  IntrospectionFields in = ActiveAccess();
  in.active = false;
  CHECK(IntrospectionResponseJson(in, "https://auth.example") == R"({"active":false})");
}

TEST_CASE("IntrospectionResponseJson: an active bearer token's members, in order",
          "[token][introspection_json]") {
  CHECK(IntrospectionResponseJson(ActiveAccess(), "https://auth.example") ==
        R"({"active":true,"scope":"read write","client_id":"web","sub":"alice","aud":"api",)"
        R"("iss":"https://auth.example","exp":1300,"iat":1000,"jti":"j1",)"
        R"("token_type":"Bearer","sid":"fam"})");
  IntrospectionFields two = ActiveAccess();
  two.audience = {"a", "b"};
  two.jti.clear();
  CHECK(IntrospectionResponseJson(two, "i") ==
        R"({"active":true,"scope":"read write","client_id":"web","sub":"alice","aud":["a","b"],)"
        R"("iss":"i","exp":1300,"iat":1000,"token_type":"Bearer","sid":"fam"})");
}

TEST_CASE("IntrospectionResponseJson: a bound token says DPoP and carries its cnf",
          "[token][introspection_json]") {
  IntrospectionFields dpop = ActiveAccess();
  dpop.cnf.jkt = "thumb";
  CHECK(IntrospectionResponseJson(dpop, "i") ==
        R"({"active":true,"scope":"read write","client_id":"web","sub":"alice","aud":"api",)"
        R"("iss":"i","exp":1300,"iat":1000,"jti":"j1","token_type":"DPoP","sid":"fam",)"
        R"("cnf":{"jkt":"thumb"}})");
  IntrospectionFields mtls = ActiveAccess();
  mtls.cnf.x5t_s256 = "cert";
  const std::string json = IntrospectionResponseJson(mtls, "i");
  CHECK(json.find(R"("token_type":"Bearer")") != std::string::npos);  // RFC 8705: still Bearer
  CHECK(json.find(R"("cnf":{"x5t#S256":"cert"}})") != std::string::npos);
}

TEST_CASE("IntrospectionResponseJson: a refresh token keeps its token_type; strings escaped",
          "[token][introspection_json]") {
  IntrospectionFields refresh = ActiveAccess();
  refresh.token_type = "refresh_token";
  refresh.jti.clear();
  refresh.subject = "a\"b\\c\n";
  const std::string json = IntrospectionResponseJson(refresh, "i");
  CHECK(json.find(R"("token_type":"refresh_token")") != std::string::npos);
  CHECK(json.find(R"("sub":"a\"b\\c\n")") != std::string::npos);
  CHECK(json.find("jti") == std::string::npos);
}

TEST_CASE("OAuthErrorJson: error and description, what RFC 6749 §5.2 forbids as spaces",
          "[token][introspection_json]") {
  CHECK(OAuthErrorJson("invalid_request", "token: required") ==
        R"({"error":"invalid_request","error_description":"token: required"})");
  CHECK(OAuthErrorJson("invalid_request", "a\"b\\c\n\xc3\xa9") ==
        R"({"error":"invalid_request","error_description":"a b c   "})");
}

}  // namespace
}  // namespace ta::token

// The form body and Authorization parsing of the HTTP face (server/http/form.h).
#include "server/http/form.h"

#include <catch2/catch.hpp>

#include "absl/strings/escaping.h"
#include "base/error.h"

namespace ta::http {
namespace {

TEST_CASE("ParseForm: '+' and %-escapes are decoded", "[http][form]") {
  absl::StatusOr<Form> form = ParseForm("token=a%2Bb+c%3D&token_type_hint=access_token&empty=");
  REQUIRE(form.ok());
  CHECK(form->at("token") == "a+b c=");
  CHECK(form->at("token_type_hint") == "access_token");
  CHECK(form->at("empty").empty());
  CHECK(form->size() == 3);
}

TEST_CASE("ParseForm: malformed bodies are invalid_request, never echoed", "[http][form]") {
  for (const char* body : {"token=%zz", "token=%4", "token=%", "=value", "a=1&a=2",
                           "a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&j=10&k=11&l=12&m=13&n=14&o=15&"
                           "p=16&q=17"}) {
    INFO(body);
    absl::StatusOr<Form> form = ParseForm(body);
    REQUIRE_FALSE(form.ok());
    CHECK(form.status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(ReasonOf(form.status()) == "invalid_request");
    CHECK(form.status().message().find("zz") == absl::string_view::npos);
  }
}

TEST_CASE("IsFormContentType: the media type, parameters and case ignored", "[http][form]") {
  CHECK(IsFormContentType("application/x-www-form-urlencoded"));
  CHECK(IsFormContentType("Application/X-WWW-Form-Urlencoded; charset=UTF-8"));
  CHECK_FALSE(IsFormContentType("application/json"));
  CHECK_FALSE(IsFormContentType(""));
  CHECK_FALSE(IsFormContentType("application/x-www-form-urlencodedX"));
}

TEST_CASE("ParseAuthorization: Bearer and Basic (RFC 6749 2.3.1 encoding)", "[http][form]") {
  absl::StatusOr<ClientCredentials> bearer = ParseAuthorization("Bearer k3y");
  REQUIRE(bearer.ok());
  CHECK(bearer->key == "k3y");
  CHECK_FALSE(bearer->basic);

  absl::StatusOr<ClientCredentials> basic =
      ParseAuthorization("basic " + absl::Base64Escape("gate%20way:a%2Bb"));
  REQUIRE(basic.ok());
  CHECK(basic->basic);
  CHECK(basic->name == "gate way");
  CHECK(basic->key == "a+b");
}

TEST_CASE("ParseAuthorization: anything else is unauthenticated", "[http][form]") {
  for (const std::string& header :
       {std::string(""), std::string("Bearer "), std::string("Digest abc"),
        std::string("Basic !!!"), "Basic " + absl::Base64Escape("no-colon"),
        "Basic " + absl::Base64Escape(":key"), "Basic " + absl::Base64Escape("name:")}) {
    INFO(header);
    absl::StatusOr<ClientCredentials> c = ParseAuthorization(header);
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().code() == absl::StatusCode::kUnauthenticated);
  }
}

}  // namespace
}  // namespace ta::http

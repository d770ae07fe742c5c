#include "token/jwt.h"

#include <catch2/catch.hpp>
#include <string>

#include "base/error.h"
#include "tests/token/test_util.h"

namespace ta::token {
namespace {

using testing::MakeClaims;
using testing::MakePolicy;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

std::string ReasonOfDecode(const std::string& json) {
  auto c = DecodeClaims(json);
  return c.ok() ? "ok" : ta::ReasonOf(c.status());
}

TEST_CASE("Jwt: algorithm names round-trip and none is refused", "[token]") {
  for (Algorithm alg : testing::kAllAlgorithms) {
    CHECK(ParseAlgorithm(AlgorithmName(alg)).value() == alg);
  }
  CHECK(AlgorithmName(Algorithm::kEdDSA) == "EdDSA");
  CHECK_FALSE(ParseAlgorithm("none").ok());
  CHECK_FALSE(ParseAlgorithm("es256").ok());
  CHECK_FALSE(ParseAlgorithm("HS512").ok());
}

TEST_CASE("Jwt: claims encode and decode round-trip", "[token]") {
  JwtClaims c = MakeClaims(kNow);
  c.extra_json = R"({"roles":["a","b"],"tenant":{"id":7}})";
  std::string json = EncodeClaims(c).value();
  CHECK(json.find(R"("aud":"api://orders")") != std::string::npos);  // one audience: a string
  JwtClaims d = DecodeClaims(json).value();
  CHECK(d.iss == c.iss);
  CHECK(d.sub == c.sub);
  CHECK(d.aud == c.aud);
  CHECK(d.exp == c.exp);
  CHECK(d.nbf == c.nbf);
  CHECK(d.iat == c.iat);
  CHECK(d.jti == c.jti);
  CHECK(d.client_id == c.client_id);
  CHECK(d.scope == c.scope);
  CHECK(d.sid == c.sid);
  CHECK(d.extra_json == c.extra_json);
}

TEST_CASE("Jwt: several audiences encode as an array", "[token]") {
  JwtClaims c = MakeClaims(kNow);
  c.aud = {"a", "b"};
  std::string json = EncodeClaims(c).value();
  CHECK(json.find(R"("aud":["a","b"])") != std::string::npos);
  CHECK(DecodeClaims(json).value().aud == c.aud);
}

TEST_CASE("Jwt: optional claims are omitted when unset", "[token]") {
  JwtClaims c = MakeClaims(kNow);
  c.nbf = absl::InfinitePast();
  c.scope.clear();
  c.sid.clear();
  std::string json = EncodeClaims(c).value();
  CHECK(json.find("nbf") == std::string::npos);
  CHECK(json.find("scope") == std::string::npos);
  CHECK(json.find("sid") == std::string::npos);
  CHECK(DecodeClaims(json).value().nbf == absl::InfinitePast());
}

TEST_CASE("Jwt: signing refuses missing required claims", "[token]") {
  auto reason_without = [](void (*clear)(JwtClaims&)) {
    JwtClaims c = MakeClaims(kNow);
    clear(c);
    return ta::ReasonOf(EncodeClaims(c).status());
  };
  CHECK(reason_without([](JwtClaims& c) { c.iss.clear(); }) == "invalid_argument:iss");
  CHECK(reason_without([](JwtClaims& c) { c.sub.clear(); }) == "invalid_argument:sub");
  CHECK(reason_without([](JwtClaims& c) { c.aud.clear(); }) == "invalid_argument:aud");
  CHECK(reason_without([](JwtClaims& c) { c.jti.clear(); }) == "invalid_argument:jti");
  CHECK(reason_without([](JwtClaims& c) { c.client_id.clear(); }) == "invalid_argument:client_id");
  CHECK(reason_without([](JwtClaims& c) { c.exp = c.iat; }) == "invalid_argument:exp");
  CHECK(reason_without([](JwtClaims& c) { c.sub = "\xff"; }) == "invalid_argument:sub");
}

TEST_CASE("Jwt: extra claims are validated", "[token]") {
  CHECK(ValidateExtraClaims("").ok());
  CHECK(ValidateExtraClaims(R"({"roles":["admin"]})").ok());
  auto reason = [](const std::string& json) { return ta::ReasonOf(ValidateExtraClaims(json)); };
  const std::string kBad = "invalid_argument:extra_claims";
  CHECK(reason("[]") == kBad);
  CHECK(reason("not json") == kBad);
  CHECK(reason(R"({"sub":"admin"})") == kBad);
  CHECK(reason(R"({"cnf":{}})") == kBad);
  CHECK(reason(R"({"may_act":{}})") == kBad);
  CHECK(reason(R"({"active":true})") == kBad);
  CHECK(reason(R"({"a":1,"a":2})") == kBad);
  CHECK(reason("{\"a\":\"\xff\"}") == kBad);
  std::string many = "{";
  for (int i = 0; i <= 64; ++i) many += absl::StrCat(i ? "," : "", "\"c", i, "\":1");
  CHECK(reason(many + "}") == kBad);
  CHECK(reason(R"({"big":")" + std::string(16 * 1024, 'x') + "\"}") == kBad);
  std::string deep = "{\"a\":" + std::string(16, '[') + std::string(16, ']') + "}";
  CHECK(reason(deep) == kBad);
  CHECK(IsReservedClaim("aud"));
  CHECK_FALSE(IsReservedClaim("roles"));
}

TEST_CASE("Jwt: decoding checks claim types", "[token]") {
  const std::string base =
      R"("iss":"i","sub":"s","aud":"a","iat":1800000000,"jti":"j","client_id":"c")";
  CHECK(ReasonOfDecode("{" + base + R"(,"exp":1800000300})") == "ok");
  CHECK(ReasonOfDecode("{" + base + R"(,"exp":"1800000300"})") == "malformed_token");
  CHECK(ReasonOfDecode("{" + base + R"(,"exp":-1})") == "malformed_token");
  CHECK(ReasonOfDecode("{" + base + R"(,"exp":1e300})") == "malformed_token");
  CHECK(ReasonOfDecode("{" + base + R"(,"exp":1800000300,"nbf":true})") == "malformed_token");
  CHECK(ReasonOfDecode("{" + base + R"(,"exp":1800000300,"scope":7})") == "malformed_token");
  CHECK(ReasonOfDecode(
            R"({"iss":"i","sub":"s","aud":[1],"iat":1,"exp":2,"jti":"j","client_id":"c"})") ==
        "malformed_token");
  CHECK(DecodeClaims("{" + base + R"(,"exp":1800000300.9})").value().exp ==
        absl::FromUnixSeconds(1800000300));
}

TEST_CASE("Jwt: decoding requires the RFC 9068 claims", "[token]") {
  const char* kRequired[] = {"iss", "sub", "aud", "exp", "iat", "jti", "client_id"};
  for (const char* name : kRequired) {
    std::string json = "{";
    for (const char* other : kRequired) {
      if (std::string(other) == name) continue;
      bool time = std::string(other) == "exp" || std::string(other) == "iat";
      json += absl::StrCat(json.size() > 1 ? "," : "", "\"", other,
                           "\":", time ? "1800000000" : "\"v\"");
    }
    json += "}";
    INFO(name);
    CHECK(ReasonOfDecode(json) == "missing_claim");
  }
  CHECK(ReasonOfDecode(
            R"({"iss":"i","sub":"s","aud":[],"iat":1,"exp":2,"jti":"j","client_id":"c"})") ==
        "missing_claim");
}

TEST_CASE("Jwt: typ compares as a media type", "[token]") {
  CHECK(TypMatches("at+jwt", "at+jwt"));
  CHECK(TypMatches("AT+JWT", "at+jwt"));
  CHECK(TypMatches("application/at+jwt", "at+jwt"));
  CHECK(TypMatches("Application/At+Jwt", "at+jwt"));
  CHECK_FALSE(TypMatches("", "at+jwt"));
  CHECK_FALSE(TypMatches("JWT", "at+jwt"));
  CHECK_FALSE(TypMatches("rt+jwt", "at+jwt"));
  CHECK_FALSE(TypMatches("application/jwt", "at+jwt"));
}

TEST_CASE("Jwt: issuer and audience checks", "[token]") {
  JwtClaims c = MakeClaims(kNow);
  VerifyPolicy p = MakePolicy();
  CHECK(CheckClaims(c, p, kNow).ok());
  p.issuer = "https://other.example";
  CHECK(ta::ReasonOf(CheckClaims(c, p, kNow)) == "wrong_issuer");
  p = MakePolicy();
  p.issuer.clear();
  CHECK(ta::ReasonOf(CheckClaims(c, p, kNow)) == "wrong_issuer");
  p = MakePolicy();
  p.audience = "api://billing";
  CHECK(ta::ReasonOf(CheckClaims(c, p, kNow)) == "audience_mismatch");
  c.aud = {"api://x", "api://billing"};
  CHECK(CheckClaims(c, p, kNow).ok());
  p.audience.clear();
  CHECK(CheckClaims(c, p, kNow).ok());
}

TEST_CASE("Jwt: exp, nbf and iat honour the leeway exactly", "[token]") {
  JwtClaims c = MakeClaims(kNow);  // iat = nbf = now, exp = now + 5 min
  VerifyPolicy p = MakePolicy();   // leeway 30 s
  auto at = [&](absl::Time t) { return ta::ReasonOf(CheckClaims(c, p, t)); };
  CHECK(at(c.exp + absl::Seconds(29)) == "");
  CHECK(at(c.exp + absl::Seconds(30)) == "token_expired");
  c.nbf = kNow + absl::Minutes(1);
  CHECK(at(c.nbf - absl::Seconds(30)) == "");
  CHECK(at(c.nbf - absl::Seconds(31)) == "token_not_yet_valid");
  c.nbf = absl::InfinitePast();
  CHECK(at(c.iat - absl::Seconds(30)) == "");
  CHECK(at(c.iat - absl::Seconds(31)) == "iat_in_future");
  p.leeway = absl::ZeroDuration();
  CHECK(at(c.exp - absl::Seconds(1)) == "");
  CHECK(at(c.exp) == "token_expired");
}

}  // namespace
}  // namespace ta::token

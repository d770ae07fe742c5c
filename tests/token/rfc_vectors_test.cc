// Known-answer tests from the JOSE RFCs. Vectors copied from RFC 7515 Appendix A,
// RFC 8037 Appendix A and RFC 7638 §3.1. The RSA CRT members dp, dq and qi of RFC 7515
// A.2 were recomputed from its d, p and q (they match the RFC's values).
#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "token/base64url.h"
#include "token/jws.h"
#include "token/key.h"

namespace ta::token {
namespace {

constexpr char kA1Token[] =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    "."
    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
constexpr char kA1Jwk[] =
    R"({"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"})";
constexpr char kExamplePayload[] =
    "{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";

constexpr char kA2Token[] =
    "eyJhbGciOiJSUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    "."
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_"
    "O8W2Fp5jujG"
    "bds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_"
    "nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K"
    "0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-"
    "eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6"
    "LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
constexpr char kA2Jwk[] =
    R"({"kty":"RSA",)"
    R"("n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ",)"
    R"("e":"AQAB",)"
    R"("d":"Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ",)"
    R"("p":"4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_Py5PJdTJNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc",)"
    R"("q":"uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_YwD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc",)"
    R"("dp":"BwKfV3Akq5_MFZDFZCnW-wzl-CCo83WoZvnLQwCTeDv8uzluRSnm71I3QCLdhrqE2e9YkxvuxdBfpT_PI7Yz-FOKnu1R6HsJeDCjn12Sk3vmAktV2zb34MCdy7cpdTh_YVr7tss2u6vneTwrA86rZtu5Mbr1C1XsmvkxHQAdYo0",)"
    R"("dq":"h_96-mK1R_7glhsum81dZxjTnYynPbZpHziZjeeHcXYsXaaMwkOlODsWa7I9xXDoRwbKgB719rrmI2oKr6N3Do9U0ajaHF-NKJnwgjMd2w9cjz3_-kyNlxAr2v4IKhGNpmM5iIgOS1VZnOZ68m6_pbLBSp3nssTdlqvd0tIiTHU",)"
    R"("qi":"IYd7DHOhrWvxkwPQsRM2tOgrjbcrfvtQJipd-DlcxyVuuM9sQLdgjVk2oy26F0EmpScGLq2MowX7fhd_QJQ3ydy5cY7YIBi87w93IKLEdfnbJtoOPLUW0ITrJReOgo1cq9SbsxYawBgfp_gh6A5603k2-ZQwVK0JKSHuLFkuQ3U"})";

constexpr char kA3Token[] =
    "eyJhbGciOiJFUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    "."
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
constexpr char kA3Jwk[] =
    R"({"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",)"
    R"("y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI"})";

constexpr char kEd25519Jwk[] =
    R"({"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",)"
    R"("x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})";
constexpr char kEd25519SigningInput[] = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
constexpr char kEd25519Signature[] =
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

std::string SigningInputOf(const std::string& token) { return token.substr(0, token.rfind('.')); }
std::string SignatureOf(const std::string& token) { return token.substr(token.rfind('.') + 1); }

TEST_CASE("RfcVectors: RFC 7515 A.1 HS256 example verifies and re-signs identically", "[token]") {
  auto key = Key::FromJwk(kA1Jwk, Algorithm::kHS256);
  REQUIRE(key.ok());
  auto payload = VerifyJws(kA1Token, **key);
  REQUIRE(payload.ok());
  CHECK(*payload == kExamplePayload);
  CHECK(Base64UrlEncode((*key)->Sign(SigningInputOf(kA1Token)).value()) == SignatureOf(kA1Token));
}

TEST_CASE("RfcVectors: RFC 7515 A.2 RS256 example verifies and our signature is identical",
          "[token]") {
  auto key = Key::FromJwk(kA2Jwk, Algorithm::kRS256);
  REQUIRE(key.ok());
  CHECK((*key)->has_private());
  auto payload = VerifyJws(kA2Token, **key);
  REQUIRE(payload.ok());
  CHECK(*payload == kExamplePayload);
  // RSASSA-PKCS1-v1_5 is deterministic, so our signature must be the RFC's, byte for byte.
  CHECK(Base64UrlEncode((*key)->Sign(SigningInputOf(kA2Token)).value()) == SignatureOf(kA2Token));
}

TEST_CASE("RfcVectors: RFC 7515 A.3 ES256 example verifies", "[token]") {
  auto key = Key::FromJwk(kA3Jwk, Algorithm::kES256);
  REQUIRE(key.ok());
  auto payload = VerifyJws(kA3Token, **key);
  REQUIRE(payload.ok());
  CHECK(*payload == kExamplePayload);
  // ECDSA is randomized: our own signature differs but verifies, and is raw r||s.
  std::string sig = (*key)->Sign(SigningInputOf(kA3Token)).value();
  CHECK(sig.size() == 64);
  CHECK((*key)->Verify(SigningInputOf(kA3Token), sig));
}

TEST_CASE("RfcVectors: RFC 7515 examples are refused under another algorithm", "[token]") {
  auto es = Key::FromJwk(kA3Jwk, Algorithm::kES256).value();
  CHECK(ta::ReasonOf(VerifyJws(kA2Token, *es).status()) == "alg_mismatch");
  auto ps = Key::FromJwk(kA2Jwk, Algorithm::kPS256).value();
  CHECK(ta::ReasonOf(VerifyJws(kA2Token, *ps).status()) == "alg_mismatch");
  CHECK_FALSE(Key::FromJwk(kA3Jwk, Algorithm::kEdDSA).ok());  // key type must fit
}

TEST_CASE("RfcVectors: RFC 8037 A.4 Ed25519 signature is exact and A.5 verifies", "[token]") {
  auto key = Key::FromJwk(kEd25519Jwk, Algorithm::kEdDSA);
  REQUIRE(key.ok());
  CHECK(Base64UrlEncode((*key)->Sign(kEd25519SigningInput).value()) == kEd25519Signature);
  std::string token = std::string(kEd25519SigningInput) + "." + kEd25519Signature;
  auto payload = VerifyJws(token, **key);
  REQUIRE(payload.ok());
  CHECK(*payload == "Example of Ed25519 signing");
  // RFC 8037 A.3: the thumbprint of this key.
  CHECK((*key)->kid() == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
}

TEST_CASE("RfcVectors: RFC 7638 section 3.1 thumbprint", "[token]") {
  constexpr char kJwk[] =
      R"({"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",)"
      R"("e":"AQAB","alg":"RS256","kid":"2011-04-29"})";
  auto key = Key::FromJwk(kJwk, Algorithm::kRS256);
  REQUIRE(key.ok());
  CHECK_FALSE((*key)->has_private());
  CHECK((*key)->kid() == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
  CHECK_FALSE((*key)->Sign("x").ok());
}

TEST_CASE("RfcVectors: JWK export round-trips to the same thumbprint", "[token]") {
  for (const char* jwk : {kA3Jwk, kEd25519Jwk}) {
    Algorithm alg =
        std::string(jwk).find("OKP") != std::string::npos ? Algorithm::kEdDSA : Algorithm::kES256;
    auto key = Key::FromJwk(jwk, alg).value();
    std::string public_jwk = "{";
    for (const auto& [name, value] : key->PublicJwkMembers()) {
      public_jwk +=
          absl::StrCat(public_jwk.size() > 1 ? "," : "", "\"", name, "\":\"", value, "\"");
    }
    public_jwk += "}";
    auto reimported = Key::FromJwk(public_jwk, alg).value();
    CHECK(reimported->kid() == key->kid());
  }
}

}  // namespace
}  // namespace ta::token

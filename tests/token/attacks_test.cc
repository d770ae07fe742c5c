// Hostile tokens: each must be refused with its own machine-readable reason.
#include <openssl/pem.h>

#include <catch2/catch.hpp>
#include <string>

#include "tests/token/test_util.h"
#include "token/crypto.h"
#include "token/openssl_util.h"

namespace ta::token {
namespace {

using testing::MakeClaims;
using testing::MakePolicy;
using testing::ReasonOfVerify;
using testing::RingFixture;

std::string B64(const std::string& s) { return Base64UrlEncode(s); }

// header.payload.HMAC-SHA256(secret) with the given header JSON.
std::string HmacToken(const std::string& header, const std::string& payload,
                      const std::string& secret) {
  std::string input = B64(header) + "." + B64(payload);
  return input + "." + B64(HmacSha256(secret, input));
}

std::string PublicPem(const Key& key) {
  // Re-read the private PEM to reach the EVP_PKEY, then write SubjectPublicKeyInfo.
  std::string pem = key.PrivateFileContents().value();
  internal::BioPtr in(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  internal::EvpPkeyPtr pkey(PEM_read_bio_PrivateKey(in.get(), nullptr, nullptr, nullptr));
  internal::BioPtr out(BIO_new(BIO_s_mem()));
  PEM_write_bio_PUBKEY(out.get(), pkey.get());
  char* data = nullptr;
  long len = BIO_get_mem_data(out.get(), &data);  // NOLINT(runtime/int)
  return std::string(data, static_cast<size_t>(len));
}

TEST_CASE("Attacks: a well-formed token verifies for every algorithm", "[token]") {
  for (Algorithm alg : testing::kAllAlgorithms) {
    RingFixture f(alg);
    std::string token = f.ring->Sign(MakeClaims(f.clock.Now()), "at+jwt").value();
    INFO(AlgorithmName(alg));
    CHECK(ReasonOfVerify(*f.ring, token) == "ok");
    CHECK(ReasonOfVerify(*f.ring, f.SignRaw(f.Header(), f.Payload())) == "ok");
  }
}

TEST_CASE("Attacks: alg none is refused", "[token]") {
  RingFixture f;
  for (const char* alg : {"none", "None", "NONE"}) {
    std::string header =
        absl::StrCat(R"({"alg":")", alg, R"(","kid":")", f.key->kid(), R"(","typ":"at+jwt"})");
    CHECK(ReasonOfVerify(*f.ring, B64(header) + "." + B64(f.Payload()) + ".") == "alg_none");
  }
}

TEST_CASE("Attacks: unknown algorithms are refused", "[token]") {
  RingFixture f;
  for (const char* alg : {"HS512", "ES384", "es256", "RS1", ""}) {
    std::string header =
        absl::StrCat(R"({"alg":")", alg, R"(","kid":")", f.key->kid(), R"(","typ":"at+jwt"})");
    CHECK(ReasonOfVerify(*f.ring, f.SignRaw(header, f.Payload())) == "unsupported_alg");
  }
}

TEST_CASE("Attacks: HS256 keyed with the public key is refused", "[token]") {
  for (Algorithm alg : {Algorithm::kES256, Algorithm::kRS256, Algorithm::kEdDSA}) {
    RingFixture f(alg);
    std::string header = EncodeJwsHeader(Algorithm::kHS256, f.key->kid(), "at+jwt");
    std::string jwks = f.ring->JwksJson();
    for (const std::string& secret : {PublicPem(*f.key), jwks}) {
      INFO(AlgorithmName(alg));
      CHECK(ReasonOfVerify(*f.ring, HmacToken(header, f.Payload(), secret)) == "alg_mismatch");
    }
    std::string no_kid = EncodeJwsHeader(Algorithm::kHS256, "", "at+jwt");
    CHECK(ReasonOfVerify(*f.ring, HmacToken(no_kid, f.Payload(), jwks)) == "unknown_kid");
  }
}

TEST_CASE("Attacks: a kid naming another key of the ring is an alg mismatch", "[token]") {
  RingFixture f(Algorithm::kES256);
  std::string ed_kid = f.ring->Rotate(Algorithm::kEdDSA).value();
  // Signed by the (retired, still verifying) ES256 key but naming the EdDSA key.
  std::string forged = f.SignRaw(EncodeJwsHeader(Algorithm::kES256, ed_kid, "at+jwt"), f.Payload());
  CHECK(ReasonOfVerify(*f.ring, forged) == "alg_mismatch");
  std::string relabeled =
      f.SignRaw(EncodeJwsHeader(Algorithm::kEdDSA, ed_kid, "at+jwt"), f.Payload());
  CHECK(ReasonOfVerify(*f.ring, relabeled) == "bad_signature");
  CHECK(ReasonOfVerify(*f.ring, f.SignRaw(f.Header(), f.Payload())) == "ok");
}

TEST_CASE("Attacks: refresh-typed, untyped and plain JWTs are not access tokens", "[token]") {
  RingFixture f;
  CHECK(ReasonOfVerify(*f.ring, f.SignRaw(f.Header("rt+jwt"), f.Payload())) == "wrong_typ");
  CHECK(ReasonOfVerify(*f.ring, f.SignRaw(f.Header(""), f.Payload())) == "wrong_typ");
  CHECK(ReasonOfVerify(*f.ring, f.SignRaw(f.Header("JWT"), f.Payload())) == "wrong_typ");
  CHECK(ReasonOfVerify(*f.ring, f.ring->Sign(MakeClaims(f.clock.Now()), "rt+jwt").value()) ==
        "wrong_typ");
  CHECK(ReasonOfVerify(*f.ring, f.SignRaw(f.Header("application/at+jwt"), f.Payload())) == "ok");
  CHECK(ReasonOfVerify(*f.ring, f.SignRaw(f.Header("AT+JWT"), f.Payload())) == "ok");
}

TEST_CASE("Attacks: a flipped signature bit is refused for every algorithm", "[token]") {
  for (Algorithm alg : testing::kAllAlgorithms) {
    RingFixture f(alg);
    std::string token = f.SignRaw(f.Header(), f.Payload());
    size_t dot = token.rfind('.');
    std::string sig = Base64UrlDecode(token.substr(dot + 1)).value();
    for (size_t byte : {size_t{0}, sig.size() / 2, sig.size() - 1}) {
      std::string bad = sig;
      bad[byte] ^= 0x01;
      INFO(AlgorithmName(alg) << " byte " << byte);
      CHECK(ReasonOfVerify(*f.ring, token.substr(0, dot + 1) + B64(bad)) == "bad_signature");
    }
    // A payload bit flipped under the original signature.
    std::string payload = f.Payload();
    payload[payload.size() - 2] ^= 0x01;
    std::string swapped = B64(f.Header()) + "." + B64(payload) + token.substr(dot);
    CHECK(ReasonOfVerify(*f.ring, swapped) == "bad_signature");
  }
}

TEST_CASE("Attacks: ES256 signatures of the wrong length or zero are refused", "[token]") {
  RingFixture f;
  std::string input = B64(f.Header()) + "." + B64(f.Payload());
  for (const std::string& sig : {std::string(63, '\x01'), std::string(65, '\x01'),
                                 std::string(64, '\0'), std::string(72, '\x30')}) {
    CHECK(ReasonOfVerify(*f.ring, input + "." + B64(sig)) == "bad_signature");
  }
}

TEST_CASE("Attacks: truncated and mis-segmented tokens are refused", "[token]") {
  RingFixture f;
  std::string token = f.SignRaw(f.Header(), f.Payload());
  size_t first = token.find('.');
  size_t second = token.rfind('.');
  CHECK(ReasonOfVerify(*f.ring, token.substr(0, second)) == "malformed_token");
  CHECK(ReasonOfVerify(*f.ring, token.substr(0, first)) == "malformed_token");
  CHECK(ReasonOfVerify(*f.ring, token + ".x") == "malformed_token");
  CHECK(ReasonOfVerify(*f.ring, "") == "malformed_token");
  CHECK(ReasonOfVerify(*f.ring, "..") == "malformed_token");
  CHECK(ReasonOfVerify(*f.ring, token.substr(first)) == "malformed_token");
  CHECK(ReasonOfVerify(*f.ring, token.substr(0, second + 1)) == "bad_signature");
  for (size_t cut = first + 1; cut < token.size(); cut += 7) {
    std::string reason = ReasonOfVerify(*f.ring, token.substr(0, cut));
    INFO(cut);
    CHECK((reason == "malformed_token" || reason == "bad_signature"));
  }
  std::string padded = token + "==";
  CHECK(ReasonOfVerify(*f.ring, padded) == "malformed_token");
}

TEST_CASE("Attacks: a 1 MB token is refused before parsing", "[token]") {
  RingFixture f;
  std::string huge = B64(f.Header()) + "." + std::string(1 << 20, 'A') + ".AAAA";
  absl::StatusOr<VerifiedJwt> v = f.ring->Verify(huge, MakePolicy());
  CHECK(ta::ReasonOf(v.status()) == "token_too_large");
  CHECK(v.status().code() == absl::StatusCode::kInvalidArgument);
  VerifyPolicy roomy = MakePolicy();
  roomy.max_token_bytes = 2 << 20;
  CHECK(ReasonOfVerify(*f.ring, huge, roomy) == "bad_signature");
}

TEST_CASE("Attacks: hostile claims JSON under a valid signature is malformed", "[token]") {
  RingFixture f;
  VerifyPolicy roomy = MakePolicy();  // let hostile payloads reach the JSON parser
  roomy.max_token_bytes = 1 << 20;
  auto verify_payload = [&](const std::string& payload) {
    return ReasonOfVerify(*f.ring, f.SignRaw(f.Header(), payload), roomy);
  };
  std::string good = f.Payload();
  std::string body = good.substr(1, good.size() - 2);  // members without braces
  CHECK(verify_payload(good) == "ok");
  CHECK(verify_payload("{" + body + ",\"x\":\"\xff\xfe\"}") == "malformed_token");
  CHECK(verify_payload("{" + body + ",\"x\":\"\xed\xa0\x80\"}") == "malformed_token");
  std::string exp_as_string = good;
  size_t at = exp_as_string.find("\"exp\":") + 6;
  exp_as_string.insert(at, "\"");
  exp_as_string.insert(exp_as_string.find(',', at), "\"");
  CHECK(verify_payload(exp_as_string) == "malformed_token");
  std::string deep = "{" + body + ",\"x\":" + std::string(1000, '[') + std::string(1000, ']') + "}";
  CHECK(verify_payload(deep) == "malformed_token");
  std::string objects;
  for (int i = 0; i < 1000; ++i) objects += "{\"a\":";
  objects += "1" + std::string(1000, '}');
  CHECK(verify_payload("{" + body + ",\"x\":" + objects + "}") == "malformed_token");
  CHECK(verify_payload("{" + body + ",\"sub\":\"admin\"}") == "malformed_token");
  CHECK(verify_payload("[" + good + "]") == "malformed_token");
  CHECK(verify_payload(good + " x") == "malformed_token");
  CHECK(verify_payload("not json") == "malformed_token");
}

TEST_CASE("Attacks: hostile headers are refused", "[token]") {
  RingFixture f;
  const std::string kid = f.key->kid();
  auto verify_header = [&](const std::string& header) {
    return ReasonOfVerify(*f.ring, f.SignRaw(header, f.Payload()));
  };
  for (const char* member : {"jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256", "crit", "cty", "b64",
                             "zip", "enc", "kid2"}) {
    std::string header = absl::StrCat(R"({"alg":"ES256","kid":")", kid, R"(","typ":"at+jwt",")",
                                      member, R"(":"x"})");
    INFO(member);
    CHECK(verify_header(header) == "forbidden_header");
  }
  std::string dup = absl::StrCat(R"({"alg":"ES256","alg":"ES256","kid":")", kid, R"("})");
  CHECK(verify_header(dup) == "malformed_token");
  CHECK(verify_header(absl::StrCat(R"({"kid":")", kid, R"(","typ":"at+jwt"})")) ==
        "malformed_token");
  CHECK(verify_header(absl::StrCat(R"({"alg":["ES256"],"kid":")", kid, R"(","typ":"at+jwt"})")) ==
        "malformed_token");
  CHECK(verify_header(R"({"alg":"ES256","typ":"at+jwt"})") == "unknown_kid");
  CHECK(verify_header(R"({"alg":"ES256","kid":"nope","typ":"at+jwt"})") == "unknown_kid");
  std::string deep = std::string(1000, '[') + std::string(1000, ']');
  CHECK(verify_header(absl::StrCat(R"({"alg":"ES256","kid":)", deep, "}")) == "malformed_token");
  CHECK(verify_header("{\"alg\":\"ES256\",\"kid\":\"\xff\"}") == "malformed_token");
  CHECK(ReasonOfVerify(*f.ring, "!!!." + B64(f.Payload()) + ".AAAA") == "malformed_token");
}

TEST_CASE("Attacks: tokens missing required claims are refused", "[token]") {
  RingFixture f;
  for (const char* name : {"iss", "sub", "aud", "exp", "iat", "jti", "client_id"}) {
    JwtClaims c = MakeClaims(f.clock.Now());
    std::string payload = EncodeClaims(c).value();
    // Rename the member so the JSON stays valid but the claim is absent.
    size_t at = payload.find(absl::StrCat("\"", name, "\":"));
    payload.insert(at + 1, "x-");
    INFO(name);
    CHECK(ReasonOfVerify(*f.ring, f.SignRaw(f.Header(), payload)) == "missing_claim");
  }
}

TEST_CASE("Attacks: wrong issuer, audience and times are refused", "[token]") {
  RingFixture f;
  std::string token = f.ring->Sign(MakeClaims(f.clock.Now()), "at+jwt").value();
  VerifyPolicy p = MakePolicy();
  p.issuer = "https://evil.example";
  CHECK(ReasonOfVerify(*f.ring, token, p) == "wrong_issuer");
  p = MakePolicy();
  p.audience = "api://other";
  CHECK(ReasonOfVerify(*f.ring, token, p) == "audience_mismatch");
  f.clock.Advance(absl::Minutes(10));
  CHECK(ReasonOfVerify(*f.ring, token) == "token_expired");
}

TEST_CASE("Attacks: rejection messages carry no token material", "[token]") {
  RingFixture f;
  std::string token = f.SignRaw(f.Header("rt+jwt"), f.Payload());
  for (const std::string& t :
       {token, token + "x", token.substr(0, token.rfind('.')), std::string(9000, 'A')}) {
    absl::Status s = f.ring->Verify(t, MakePolicy()).status();
    REQUIRE_FALSE(s.ok());
    CHECK(std::string(s.message()).find(t.substr(0, 12)) == std::string::npos);
    CHECK(std::string(s.message()).find(f.key->kid()) == std::string::npos);
  }
}

}  // namespace
}  // namespace ta::token

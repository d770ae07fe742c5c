// DPoP proofs (RFC 9449 §4.3): the RFC's own example, then one failing case per check.
// Proofs made by implementations nobody here wrote (npm dpop, oauth4webapi, Python) are
// in dpop_interop_test.py; here our own signer builds the hostile ones.
#include "token/dpop.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/error.h"
#include "token/base64url.h"
#include "token/crypto.h"
#include "token/jws.h"
#include "token/key.h"

namespace ta::token {
namespace {

// RFC 9449 Figure 2 (line breaks removed) and the thumbprint §6.1 gives for its key.
constexpr char kRfcProof[] =
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0Vj"
    "NoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5"
    "VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVC"
    "IsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4"
    "vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
constexpr char kRfcJkt[] = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
const absl::Time kRfcIat = absl::FromUnixSeconds(1562262616);

constexpr char kUrl[] = "https://as.example.com/oauth2/token";
const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

std::string ReasonOfResult(const absl::StatusOr<DpopProof>& r) {
  return r.ok() ? "ok" : ReasonOf(r.status());
}

std::string JwkJson(const Key& key, absl::string_view extra = "") {
  std::string out = "{";
  for (const JwkMember& m : key.PublicJwkMembers()) {
    absl::StrAppend(&out, out.size() > 1 ? "," : "", "\"", m.first, "\":\"", m.second, "\"");
  }
  return absl::StrCat(out, extra, "}");
}

// A proof made with `key`; every piece can be set wrong on purpose.
struct ProofSpec {
  std::string typ = "dpop+jwt";
  std::string alg;        // default: the key's
  std::string jwk;        // default: the key's public JWK
  std::string extra_header;
  std::string htm = "POST";
  std::string htu = kUrl;
  std::string jti = "jti-1";
  std::string iat;        // default: kNow
  std::string extra_claims;
};

std::string MakeProof(const Key& key, const ProofSpec& spec) {
  std::string header = absl::StrCat(
      "{\"typ\":\"", spec.typ, "\",\"alg\":\"",
      spec.alg.empty() ? std::string(AlgorithmName(key.alg())) : spec.alg, "\",\"jwk\":",
      spec.jwk.empty() ? JwkJson(key) : spec.jwk, spec.extra_header, "}");
  std::string payload = absl::StrCat(
      "{\"jti\":\"", spec.jti, "\",\"htm\":\"", spec.htm, "\",\"htu\":\"", spec.htu,
      "\",\"iat\":", spec.iat.empty() ? absl::StrCat(absl::ToUnixSeconds(kNow)) : spec.iat,
      spec.extra_claims, "}");
  return SignCompactJws(header, payload, key).value();
}

absl::StatusOr<DpopProof> Check(absl::string_view proof, absl::string_view method = "POST",
                                absl::string_view url = kUrl) {
  DpopRequest request;
  request.proof = proof;
  request.method = method;
  request.url = url;
  return VerifyDpopProof(request, DpopPolicy(), kNow);
}

TEST_CASE("DPoP: the RFC 9449 example proof verifies and yields the RFC's thumbprint") {
  DpopRequest request;
  request.proof = kRfcProof;
  request.method = "POST";
  request.url = "https://server.example.com/token";
  absl::StatusOr<DpopProof> proof = VerifyDpopProof(request, DpopPolicy(), kRfcIat);
  REQUIRE(proof.ok());
  CHECK(proof->jkt == kRfcJkt);
  CHECK(proof->jti == "-BwC3ESc6acc2lTc");
  CHECK(proof->htu == "https://server.example.com/token");
  CHECK(proof->iat == kRfcIat);
  // Five minutes and one second later it is too old; a minute before it is from the future.
  CHECK(ReasonOfResult(VerifyDpopProof(request, DpopPolicy(), kRfcIat + absl::Seconds(301))) ==
        "dpop_iat_out_of_window");
  CHECK(ReasonOfResult(VerifyDpopProof(request, DpopPolicy(), kRfcIat - absl::Minutes(1))) ==
        "dpop_iat_out_of_window");
}

TEST_CASE("DPoP: a proof by each accepted algorithm verifies") {
  for (Algorithm alg : {Algorithm::kES256, Algorithm::kEdDSA, Algorithm::kRS256,
                        Algorithm::kPS256}) {
    std::unique_ptr<Key> key = Key::Generate(alg).value();
    absl::StatusOr<DpopProof> proof = Check(MakeProof(*key, {}));
    INFO(AlgorithmName(alg));
    REQUIRE(proof.ok());
    CHECK(proof->jkt == key->kid());
  }
}

TEST_CASE("DPoP: typ, alg and header members are strict") {
  std::unique_ptr<Key> key = Key::Generate(Algorithm::kES256).value();
  ProofSpec s;
  s.typ = "jwt";
  CHECK(ReasonOfResult(Check(MakeProof(*key, s))) == "dpop_wrong_typ");
  s.typ = "at+jwt";  // an access token's typ: type confusion
  CHECK(ReasonOfResult(Check(MakeProof(*key, s))) == "dpop_wrong_typ");
  s.typ = "DPoP+JWT";  // media types compare case-insensitively (RFC 7515 §4.1.9)
  CHECK(Check(MakeProof(*key, s)).ok());
  s = ProofSpec();
  s.extra_header = ",\"kid\":\"k\"";
  CHECK(ReasonOfResult(Check(MakeProof(*key, s))) == "dpop_forbidden_header");
  s.extra_header = ",\"jku\":\"https://evil.example/jwks\"";
  CHECK(ReasonOfResult(Check(MakeProof(*key, s))) == "dpop_forbidden_header");
  std::unique_ptr<Key> ed = Key::Generate(Algorithm::kEdDSA).value();
  s = ProofSpec();
  s.alg = "Ed25519";  // RFC 9864's name for the same algorithm
  CHECK(Check(MakeProof(*ed, s)).ok());
  s = ProofSpec();
  s.alg = "ES384";
  CHECK(ReasonOfResult(Check(MakeProof(*key, s))) == "dpop_bad_alg");
}

TEST_CASE("DPoP: alg none and HMAC proofs are refused") {
  std::unique_ptr<Key> es = Key::Generate(Algorithm::kES256).value();
  std::string header = Base64UrlEncode(
      absl::StrCat("{\"typ\":\"dpop+jwt\",\"alg\":\"none\",\"jwk\":", JwkJson(*es), "}"));
  std::string payload = Base64UrlEncode(absl::StrCat(
      "{\"jti\":\"a\",\"htm\":\"POST\",\"htu\":\"", kUrl, "\",\"iat\":",
      absl::ToUnixSeconds(kNow), "}"));
  CHECK(ReasonOfResult(Check(absl::StrCat(header, ".", payload, "."))) == "dpop_bad_alg");

  std::unique_ptr<Key> hmac = Key::FromHmacSecret(std::string(32, 'k')).value();
  ProofSpec s;
  s.jwk = absl::StrCat("{\"kty\":\"oct\",\"k\":\"", Base64UrlEncode(std::string(32, 'k')), "\"}");
  CHECK(ReasonOfResult(Check(MakeProof(*hmac, s))) == "dpop_bad_alg");
}

TEST_CASE("DPoP: a jwk with private members is refused, whatever else is right") {
  for (Algorithm alg : {Algorithm::kES256, Algorithm::kEdDSA, Algorithm::kRS256}) {
    std::unique_ptr<Key> key = Key::Generate(alg).value();
    ProofSpec s;
    // The signature is valid and the public part right: only the extra member is wrong.
    s.jwk = JwkJson(*key, ",\"d\":\"AAAA\"");
    INFO(AlgorithmName(alg));
    CHECK(ReasonOfResult(Check(MakeProof(*key, s))) == "dpop_private_key");
  }
  std::unique_ptr<Key> rsa = Key::Generate(Algorithm::kRS256).value();
  ProofSpec s;
  s.jwk = JwkJson(*rsa, ",\"p\":\"AAAA\"");
  CHECK(ReasonOfResult(Check(MakeProof(*rsa, s))) == "dpop_private_key");
}

TEST_CASE("DPoP: the signature must be by the header's jwk") {
  std::unique_ptr<Key> signer = Key::Generate(Algorithm::kES256).value();
  std::unique_ptr<Key> other = Key::Generate(Algorithm::kES256).value();
  ProofSpec s;
  s.jwk = JwkJson(*other);
  CHECK(ReasonOfResult(Check(MakeProof(*signer, s))) == "dpop_bad_signature");
  // A jwk of another key type than alg is not usable.
  std::unique_ptr<Key> ed = Key::Generate(Algorithm::kEdDSA).value();
  s.jwk = JwkJson(*ed);
  CHECK(ReasonOfResult(Check(MakeProof(*signer, s))) == "dpop_bad_jwk");
  // A tampered payload.
  std::string proof = MakeProof(*signer, {});
  std::string tampered = proof;
  tampered[proof.find('.') + 5] ^= 1;
  CHECK(ReasonOfResult(Check(tampered)) != "ok");
}

TEST_CASE("DPoP: htm is compared exactly") {
  std::unique_ptr<Key> key = Key::Generate(Algorithm::kES256).value();
  CHECK(ReasonOfResult(Check(MakeProof(*key, {}), "GET")) == "dpop_htm_mismatch");
  ProofSpec s;
  s.htm = "post";
  CHECK(ReasonOfResult(Check(MakeProof(*key, s))) == "dpop_htm_mismatch");
}

TEST_CASE("DPoP: htu matches after RFC 3986 normalisation, without query and fragment") {
  std::unique_ptr<Key> key = Key::Generate(Algorithm::kES256).value();
  const std::string same[] = {
      "https://as.example.com/oauth2/token",
      "HTTPS://AS.Example.COM/oauth2/token",
      "https://as.example.com:443/oauth2/token",
      "https://as.example.com/oauth2/token?x=1",
      "https://as.example.com/oauth2/token#frag",
      "https://as.example.com/oauth2/./x/../token",
      "https://as.example.com/%6Fauth2/token",  // %6F is 'o', unreserved
  };
  for (const std::string& htu : same) {
    ProofSpec s;
    s.htu = htu;
    INFO(htu);
    CHECK(Check(MakeProof(*key, s)).ok());
  }
  const std::string different[] = {
      "https://other.example.com/oauth2/token",  // host
      "https://as.example.com/oauth2/token2",     // path
      "https://as.example.com/OAuth2/token",      // path case matters
      "https://as.example.com:8443/oauth2/token", // port
      "http://as.example.com/oauth2/token",       // scheme
      "https://as.example.com/oauth2/token/",     // trailing slash
      "https://user@as.example.com/oauth2/token", // userinfo
      "/oauth2/token",                            // not absolute
      "ftp://as.example.com/oauth2/token",
  };
  for (const std::string& htu : different) {
    ProofSpec s;
    s.htu = htu;
    INFO(htu);
    CHECK(ReasonOfResult(Check(MakeProof(*key, s))) == "dpop_htu_mismatch");
  }
}

TEST_CASE("DPoP: two spellings of one URL give one replay key") {
  std::unique_ptr<Key> key = Key::Generate(Algorithm::kES256).value();
  ProofSpec a, b;
  b.htu = "HTTPS://as.example.com:443/oauth2/token?again=1";
  absl::StatusOr<DpopProof> pa = Check(MakeProof(*key, a));
  absl::StatusOr<DpopProof> pb = Check(MakeProof(*key, b));
  REQUIRE(pa.ok());
  REQUIRE(pb.ok());
  CHECK(pa->replay_key == pb->replay_key);
  ProofSpec c;
  c.jti = "jti-2";
  CHECK(Check(MakeProof(*key, c))->replay_key != pa->replay_key);
}

TEST_CASE("DPoP: NormalizeHtu canonicalises and refuses what is not an http(s) URL") {
  CHECK(NormalizeHtu("https://A.example:443").value() == "https://a.example/");
  CHECK(NormalizeHtu("http://a.example:80/x").value() == "http://a.example/x");
  CHECK(NormalizeHtu("http://a.example:0080/x").value() == "http://a.example/x");
  CHECK(NormalizeHtu("http://a.example:8080/x").value() == "http://a.example:8080/x");
  CHECK(NormalizeHtu("https://a.example/%7euser/%2f").value() == "https://a.example/~user/%2F");
  CHECK(NormalizeHtu("https://[2001:DB8::1]:8443/t").value() == "https://[2001:db8::1]:8443/t");
  // Reserved characters stay encoded ("%2F" is not "/"): Boost.URL 1.81's normalize()
  // decodes them, which is why the percent step is ours.
  CHECK(NormalizeHtu("https://a.example/a%2fb").value() == "https://a.example/a%2Fb");
  CHECK(NormalizeHtu("https://a.example/a%2Fb").value() != NormalizeHtu("https://a.example/a/b").value());
  // remove_dot_segments (RFC 3986 §5.2.4), also when the dots are percent-encoded.
  CHECK(NormalizeHtu("https://a.example/a/b/../c/./d").value() == "https://a.example/a/c/d");
  CHECK(NormalizeHtu("https://a.example/a/b/..").value() == "https://a.example/a/");
  CHECK(NormalizeHtu("https://a.example/../../x").value() == "https://a.example/x");
  CHECK(NormalizeHtu("https://a.example/a/%2E%2E/x").value() == "https://a.example/x");
  CHECK(NormalizeHtu("https://a.example/").value() == "https://a.example/");
  CHECK(NormalizeHtu("https://a.example:/x").value() == "https://a.example/x");
  CHECK(NormalizeHtu("https://a.example/x?q#f").value() == "https://a.example/x");
  CHECK(!NormalizeHtu("https://a.example:99999/").ok());  // 99999 is not 34463
  CHECK(!NormalizeHtu("https://a.example:0/").ok());
  CHECK(!NormalizeHtu("mailto:x@a.example").ok());
  CHECK(!NormalizeHtu("https:///path").ok());
  CHECK(!NormalizeHtu("not a url").ok());
  CHECK(!NormalizeHtu(std::string(3000, 'a')).ok());
}

TEST_CASE("DPoP: iat must be a number inside the window") {
  std::unique_ptr<Key> key = Key::Generate(Algorithm::kES256).value();
  ProofSpec s;
  s.iat = absl::StrCat(absl::ToUnixSeconds(kNow - absl::Minutes(5)));
  CHECK(Check(MakeProof(*key, s)).ok());
  s.iat = absl::StrCat(absl::ToUnixSeconds(kNow - absl::Minutes(5) - absl::Seconds(1)));
  CHECK(ReasonOfResult(Check(MakeProof(*key, s))) == "dpop_iat_out_of_window");
  s.iat = absl::StrCat(absl::ToUnixSeconds(kNow + absl::Seconds(30)));
  CHECK(Check(MakeProof(*key, s)).ok());
  s.iat = absl::StrCat(absl::ToUnixSeconds(kNow + absl::Seconds(31)));
  CHECK(ReasonOfResult(Check(MakeProof(*key, s))) == "dpop_iat_out_of_window");
  s.iat = absl::StrCat("\"", absl::ToUnixSeconds(kNow), "\"");
  CHECK(ReasonOfResult(Check(MakeProof(*key, s))) == "dpop_malformed");
  s.iat = "1e300";
  CHECK(ReasonOfResult(Check(MakeProof(*key, s))) == "dpop_malformed");
}

TEST_CASE("DPoP: missing claims are named") {
  std::unique_ptr<Key> key = Key::Generate(Algorithm::kES256).value();
  std::string payload_without_jti = absl::StrCat(
      "{\"htm\":\"POST\",\"htu\":\"", kUrl, "\",\"iat\":", absl::ToUnixSeconds(kNow), "}");
  std::string header = absl::StrCat("{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\",\"jwk\":",
                                    JwkJson(*key), "}");
  CHECK(ReasonOfResult(Check(SignCompactJws(header, payload_without_jti, *key).value())) ==
        "dpop_missing_claim");
  std::string no_jwk = "{\"typ\":\"dpop+jwt\",\"alg\":\"ES256\"}";
  CHECK(ReasonOfResult(Check(MakeProof(*key, {}).replace(0, MakeProof(*key, {}).find('.'),
                                                          Base64UrlEncode(no_jwk)))) ==
        "dpop_bad_jwk");
}

TEST_CASE("DPoP: with an access token the proof must carry its hash") {
  std::unique_ptr<Key> key = Key::Generate(Algorithm::kES256).value();
  const std::string access_token = "eyJhbGciOiJFUzI1NiJ9.e30.sig";
  DpopRequest request;
  request.method = "POST";
  request.url = kUrl;
  request.access_token = access_token;
  ProofSpec s;
  std::string without = MakeProof(*key, s);
  request.proof = without;
  CHECK(ReasonOfResult(VerifyDpopProof(request, DpopPolicy(), kNow)) == "dpop_missing_claim");
  s.extra_claims = absl::StrCat(",\"ath\":\"", AccessTokenHash("another token"), "\"");
  std::string wrong = MakeProof(*key, s);
  request.proof = wrong;
  CHECK(ReasonOfResult(VerifyDpopProof(request, DpopPolicy(), kNow)) == "dpop_ath_mismatch");
  s.extra_claims = absl::StrCat(",\"ath\":\"", AccessTokenHash(access_token), "\"");
  std::string right = MakeProof(*key, s);
  request.proof = right;
  CHECK(VerifyDpopProof(request, DpopPolicy(), kNow).ok());
  // RFC 9449 §4.2's example: ath of "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU".
  CHECK(AccessTokenHash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU") ==
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo");
}

TEST_CASE("DPoP: a demanded nonce must be the proof's") {
  std::unique_ptr<Key> key = Key::Generate(Algorithm::kES256).value();
  DpopRequest request;
  request.method = "POST";
  request.url = kUrl;
  request.nonce = "n-123";
  std::string without = MakeProof(*key, {});
  request.proof = without;
  CHECK(ReasonOfResult(VerifyDpopProof(request, DpopPolicy(), kNow)) == "dpop_nonce_mismatch");
  ProofSpec s;
  s.extra_claims = ",\"nonce\":\"n-123\"";
  std::string with = MakeProof(*key, s);
  request.proof = with;
  CHECK(VerifyDpopProof(request, DpopPolicy(), kNow).ok());
}

TEST_CASE("DPoP: garbage is refused with a reason, never a crash") {
  CHECK(ReasonOfResult(Check("")) == "dpop_malformed");
  CHECK(ReasonOfResult(Check("a.b.c")) == "dpop_malformed");
  CHECK(ReasonOfResult(Check("....")) == "dpop_malformed");
  CHECK(ReasonOfResult(Check(std::string(kMaxDpopProofBytes + 1, 'a'))) ==
        "dpop_proof_too_large");
  CHECK(ReasonOfResult(Check(absl::StrCat(Base64UrlEncode("[]"), ".e30.AA"))) ==
        "dpop_malformed");
}

}  // namespace
}  // namespace ta::token

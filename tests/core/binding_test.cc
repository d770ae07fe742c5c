// Sender-constrained sessions at the core (issue 26 items 1, 2, 4): the binding at
// IssueTokens, every check of RFC 9449 §4.3 refusing a proof before anything is stored, and a
// bound family's RefreshTokens, which spends nothing for a holder without the key.
#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/core/binding_env.h"
#include "token/base64url.h"
#include "token/crypto.h"
#include "token/jwt.h"

namespace ta::core {
namespace {

using ::ta::testing::DpopJwkJson;
using ::ta::testing::DpopSpec;
using ::ta::testing::Presented;

// The cnf claim of an access token, as its payload says.
std::string CnfOf(const std::string& access_token) {
  const size_t dot = access_token.find('.');
  const std::string payload =
      token::Base64UrlDecode(access_token.substr(dot + 1, access_token.rfind('.') - dot - 1))
          .value();
  absl::StatusOr<token::JwtClaims> claims = token::DecodeClaims(payload);
  REQUIRE(claims.ok());
  return claims->cnf.jkt.empty() ? claims->cnf.x5t_s256 : claims->cnf.jkt;
}

std::string Thumbprint(absl::string_view certificate_der) {
  return token::Base64UrlEncode(token::Sha256(certificate_der));
}

TEST_CASE("Binding: a DPoP-bound session carries cnf.jkt and token_type DPoP throughout") {
  BindingEnv env(Engine::kRocksDb);
  absl::StatusOr<TokenPair> issued = env.Issue(env.ForTokenUrl());
  INFO(issued.status().ToString());
  REQUIRE(issued.ok());
  CHECK(issued->token_type == "DPoP");
  CHECK(CnfOf(issued->access_token) == env.jkt);
  const storage::FamilyRecord family = env.Family(issued->family_id);
  CHECK(family.cnf_jkt == env.jkt);
  CHECK(family.cnf_x5t_s256.empty());

  absl::StatusOr<TokenPair> refreshed = env.Refresh(issued->refresh_token, env.ForTokenUrl());
  INFO(refreshed.status().ToString());
  REQUIRE(refreshed.ok());
  CHECK(refreshed->token_type == "DPoP");
  CHECK(CnfOf(refreshed->access_token) == env.jkt);
  CHECK(env.Family(issued->family_id).generation == 1);

  // A bearer session stays one: no cnf, Bearer.
  absl::StatusOr<TokenPair> bearer = env.Issue({}, 0, "bob");
  REQUIRE(bearer.ok());
  CHECK(bearer->token_type == "Bearer");
  CHECK(CnfOf(bearer->access_token).empty());
}

TEST_CASE("Binding: a certificate-bound session carries cnf x5t#S256 and needs the certificate") {
  BindingEnv env(Engine::kRocksDb);
  token::PresentedProof cert;
  cert.certificate_thumbprint = Thumbprint("client certificate DER");
  absl::StatusOr<TokenPair> issued = env.Issue(cert);
  REQUIRE(issued.ok());
  CHECK(issued->token_type == "Bearer");  // RFC 8705: used as a bearer token over mTLS
  CHECK(CnfOf(issued->access_token) == cert.certificate_thumbprint);
  CHECK(env.Family(issued->family_id).cnf_x5t_s256 == cert.certificate_thumbprint);

  token::PresentedProof other;
  other.certificate_thumbprint = Thumbprint("another certificate");
  CHECK(ReasonOrOk(env.Refresh(issued->refresh_token, {})) == "proof_required");
  CHECK(ReasonOrOk(env.Refresh(issued->refresh_token, other)) == "proof_key_mismatch");
  CHECK(ReasonOrOk(env.Refresh(issued->refresh_token, env.ForTokenUrl())) == "proof_key_mismatch");
  CHECK(env.Family(issued->family_id).generation == 0);
  absl::StatusOr<TokenPair> refreshed = env.Refresh(issued->refresh_token, cert);
  REQUIRE(refreshed.ok());
  CHECK(CnfOf(refreshed->access_token) == cert.certificate_thumbprint);
}

TEST_CASE("Binding: a malformed proof request is INVALID_ARGUMENT before anything else") {
  BindingEnv env(Engine::kRocksDb);
  token::PresentedProof both = env.ForTokenUrl();
  both.certificate_thumbprint = Thumbprint("cert");
  CHECK(ReasonOrOk(env.Issue(both)) == "invalid_argument:proof");
  token::PresentedProof no_url = env.ForTokenUrl();
  no_url.http_url.clear();
  CHECK(ReasonOrOk(env.Issue(no_url)) == "invalid_argument:proof");
  for (const std::string& bad : {std::string("abc"), std::string(43, '+'), Thumbprint("cert") + "A",
                                 std::string(43, 'A') + "="}) {
    token::PresentedProof cert;
    cert.certificate_thumbprint = bad;
    INFO(bad);
    CHECK(ReasonOrOk(env.Issue(cert)) == "invalid_argument:certificate_thumbprint");
  }
  CHECK(env.Sessions() == 0);
}

// One refused proof per check of RFC 9449 §4.3, at IssueTokens; nothing is stored for any.
TEST_CASE("Binding: every RFC 9449 §4.3 check refuses the proof at issue, storing nothing") {
  BindingEnv env(Engine::kRocksDb);
  const absl::Time now = env.clock.Now();
  std::unique_ptr<token::Key> other = token::Key::Generate(token::Algorithm::kES256).value();
  std::unique_ptr<token::Key> hmac = token::Key::FromHmacSecret(std::string(32, 'k')).value();
  struct Case {
    std::string name;
    DpopSpec spec;
    std::string method = "POST", url = kTokenUrl;
    const token::Key* by = nullptr;
    std::string want;
  };
  auto spec = [](auto edit) {
    DpopSpec s;
    s.htu = kTokenUrl;
    edit(s);
    return s;
  };
  std::vector<Case> cases = {
      {"wrong htm", spec([](DpopSpec& s) { s.htm = "GET"; }), "POST", kTokenUrl, nullptr,
       "dpop_htm_mismatch"},
      {"htm in lower case", spec([](DpopSpec& s) { s.htm = "post"; }), "POST", kTokenUrl, nullptr,
       "dpop_htm_mismatch"},
      {"htu of another host", spec([](DpopSpec& s) { s.htu = "https://evil.example.com/session"; }),
       "POST", kTokenUrl, nullptr, "dpop_htu_mismatch"},
      {"htu of another path", spec([](DpopSpec& s) { s.htu = "https://login.example.com/other"; }),
       "POST", kTokenUrl, nullptr, "dpop_htu_mismatch"},
      {"htu of another port",
       spec([](DpopSpec& s) { s.htu = "https://login.example.com:8443/session"; }), "POST",
       kTokenUrl, nullptr, "dpop_htu_mismatch"},
      {"htu over http", spec([](DpopSpec& s) { s.htu = "http://login.example.com/session"; }),
       "POST", kTokenUrl, nullptr, "dpop_htu_mismatch"},
      {"htu path in another case",
       spec([](DpopSpec& s) { s.htu = "https://login.example.com/SESSION"; }), "POST", kTokenUrl,
       nullptr, "dpop_htu_mismatch"},
      {"stale iat", spec([&](DpopSpec& s) { s.iat = now - absl::Minutes(6); }), "POST", kTokenUrl,
       nullptr, "dpop_iat_out_of_window"},
      {"future iat", spec([&](DpopSpec& s) { s.iat = now + absl::Minutes(2); }), "POST", kTokenUrl,
       nullptr, "dpop_iat_out_of_window"},
      {"typ at+jwt", spec([](DpopSpec& s) { s.typ = "at+jwt"; }), "POST", kTokenUrl, nullptr,
       "dpop_wrong_typ"},
      {"typ JWT", spec([](DpopSpec& s) { s.typ = "JWT"; }), "POST", kTokenUrl, nullptr,
       "dpop_wrong_typ"},
      {"symmetric alg", spec([](DpopSpec& s) {
         s.jwk = absl::StrCat("{\"kty\":\"oct\",\"k\":\"",
                              token::Base64UrlEncode(std::string(32, 'k')), "\"}");
       }),
       "POST", kTokenUrl, hmac.get(), "dpop_bad_alg"},
      {"private key in the header",
       spec([&](DpopSpec& s) { s.jwk = DpopJwkJson(*env.key, ",\"d\":\"AAAA\""); }), "POST",
       kTokenUrl, nullptr, "dpop_private_key"},
      {"jwk not the signer's", spec([&](DpopSpec& s) { s.jwk = DpopJwkJson(*other); }), "POST",
       kTokenUrl, nullptr, "dpop_bad_signature"},
      {"kid in the header", spec([](DpopSpec& s) { s.extra_header = ",\"kid\":\"k\""; }), "POST",
       kTokenUrl, nullptr, "dpop_forbidden_header"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    const std::string proof = env.Proof(c.spec, c.by);
    CHECK(ReasonOrOk(env.Issue(Presented(proof, c.method, c.url))) == c.want);
  }
  // alg none: no signature at all.
  const std::string unsigned_proof = absl::StrCat(
      token::Base64UrlEncode(absl::StrCat(
          "{\"typ\":\"dpop+jwt\",\"alg\":\"none\",\"jwk\":", DpopJwkJson(*env.key), "}")),
      ".",
      token::Base64UrlEncode(absl::StrCat("{\"jti\":\"n\",\"htm\":\"POST\",\"htu\":\"", kTokenUrl,
                                          "\",\"iat\":", absl::ToUnixSeconds(now), "}")),
      ".");
  CHECK(ReasonOrOk(env.Issue(Presented(unsigned_proof, "POST", kTokenUrl))) == "dpop_bad_alg");
  CHECK(env.Sessions() == 0);
}

TEST_CASE("Binding: htu variants that normalise to the request's URL match, once") {
  BindingEnv env(Engine::kRocksDb);
  // Each proof names a spelling of the URL the login service was called at.
  const std::vector<std::string> same = {
      "https://login.example.com/session",      "HTTPS://LOGIN.example.COM/session",
      "https://login.example.com:443/session",  "https://login.example.com/session?x=1",
      "https://login.example.com/session#frag", "https://login.example.com/a/../session",
      "https://login.example.com/%73ession",
  };
  for (const std::string& htu : same) {
    INFO(htu);
    DpopSpec spec;
    spec.htu = htu;
    CHECK(ReasonOrOk(env.Issue(Presented(env.Proof(spec), "POST", kTokenUrl))) == "ok");
  }
  // The replay key is over the normalised (jti, htu): the same jti under another spelling of
  // the same URL is a replay.
  DpopSpec spec;
  spec.jti = "one-jti";
  spec.htu = "https://login.example.com/session";
  CHECK(ReasonOrOk(env.Issue(Presented(env.Proof(spec), "POST", kTokenUrl))) == "ok");
  spec.htu = "https://LOGIN.example.com:443/session?again";
  CHECK(ReasonOrOk(env.Issue(Presented(env.Proof(spec), "POST", kTokenUrl))) == "dpop_replayed");
  // ...and the same proof passed on for a URL with a query string is the same request.
  CHECK(ReasonOrOk(env.Issue(Presented(
            env.Proof(spec), "POST", "https://login.example.com/session?a=b"))) == "dpop_replayed");
  CHECK(env.Sessions() == same.size() + 1);
}

TEST_CASE("Binding: a replayed proof is refused at issue and at refresh, nothing spent") {
  BindingEnv env(Engine::kRocksDb);
  const token::PresentedProof proof = env.ForTokenUrl();
  absl::StatusOr<TokenPair> issued = env.Issue(proof);
  REQUIRE(issued.ok());
  CHECK(ReasonOrOk(env.Issue(proof)) == "dpop_replayed");
  CHECK(env.Sessions() == 1);
  // The login's own proof again, at refresh: refused, the token not spent.
  CHECK(ReasonOrOk(env.Refresh(issued->refresh_token, proof)) == "dpop_replayed");
  const token::PresentedProof refresh_proof = env.ForTokenUrl();
  REQUIRE(env.Refresh(issued->refresh_token, refresh_proof).ok());
  // Past the proof window the jti is forgotten, but the proof is stale by then anyway.
  env.clock.Advance(absl::Minutes(6));
  CHECK(ReasonOrOk(env.Issue(proof)) == "dpop_iat_out_of_window");
}

// Issue 26 item 2: a holder of a bound refresh token without the key spends nothing.
TEST_CASE("Binding: a stolen bound refresh token without the key neither rotates nor burns it") {
  BindingEnv env(Engine::kRocksDb);
  absl::StatusOr<TokenPair> issued = env.Issue(env.ForTokenUrl());
  REQUIRE(issued.ok());
  const std::string stolen = issued->refresh_token;
  std::unique_ptr<token::Key> thief = token::Key::Generate(token::Algorithm::kES256).value();
  DpopSpec wrong_url;
  wrong_url.htu = "https://evil.example.com/session";
  token::PresentedProof cert;
  cert.certificate_thumbprint = Thumbprint("thief's certificate");
  const std::vector<std::pair<token::PresentedProof, std::string>> attempts = {
      {{}, "proof_required"},                                // presented as a bearer token
      {env.ForTokenUrl(thief.get()), "proof_key_mismatch"},  // the thief's own key
      {cert, "proof_key_mismatch"},                          // a certificate instead
      {Presented(env.Proof(wrong_url), "POST", kTokenUrl), "dpop_htu_mismatch"},
  };
  for (int round = 0; round < 3; ++round) {  // again and again: never reuse, never spent
    for (const auto& [proof, want] : attempts) {
      INFO(want);
      CHECK(ReasonOrOk(env.Refresh(stolen, proof)) == want);
    }
    CHECK(ReasonOrOk(env.Refresh(stolen, env.ForTokenUrl(), 0, "other-app")) == "client_mismatch");
  }
  const storage::FamilyRecord family = env.Family(issued->family_id);
  CHECK(family.generation == 0);
  CHECK_FALSE(family.revoked);
  // The legitimate client refreshes afterwards, as if nothing happened.
  absl::StatusOr<TokenPair> refreshed = env.Refresh(stolen, env.ForTokenUrl(), 0, "app");
  INFO(refreshed.status().ToString());
  REQUIRE(refreshed.ok());
  CHECK(env.Family(issued->family_id).generation == 1);
  CHECK_FALSE(env.Family(issued->family_id).revoked);
  // A bearer family with client_id set and different: refused too, nothing spent.
  absl::StatusOr<TokenPair> bearer = env.Issue({}, 0, "bob");
  REQUIRE(bearer.ok());
  CHECK(ReasonOrOk(env.Refresh(bearer->refresh_token, {}, 0, "other-app")) == "client_mismatch");
  CHECK(ReasonOrOk(env.Refresh(bearer->refresh_token, {}, 0, "app")) == "ok");
}

}  // namespace
}  // namespace ta::core

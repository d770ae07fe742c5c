// The local verifier with sender-constrained tokens (issue 26 item 3): Verify(token, proof)
// answers as the server's Introspect with the same proof, through the same decision
// (token::DecideAccessToken step 5), for a DPoP-bound and a certificate-bound session: the
// right proof, none (a bound token used as a bearer token), another key, a proof without or
// with a wrong ath, another URL, a replay (each side's own replay cache), and a bearer token.
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "client/verifier.h"
#include "tests/support/dpop_proofs.h"
#include "tests/support/local_verifier_server.h"
#include "tests/support/test_server.h"
#include "token/base64url.h"
#include "token/crypto.h"

namespace ta::testing {
namespace {

constexpr char kLogin[] = "https://login.example.com/session";
constexpr char kResource[] = "https://api.example.com/orders";

// A current verifier of any audience (the tokens here carry the server's default).
std::unique_ptr<client::LocalVerifier> Verifier(TestServer& server) {
  client::LocalVerifierOptions o = VerifierOptionsFor(server);
  o.audience.clear();
  std::unique_ptr<client::LocalVerifier> v = StartVerifier(std::move(o));
  REQUIRE(v->WaitUntilCurrent(absl::Seconds(10)));
  return v;
}

v1::ProofOfPossession ToProto(const token::PresentedProof& p) {
  v1::ProofOfPossession out;
  out.set_dpop_proof(p.dpop_proof);
  out.set_http_method(p.http_method);
  out.set_http_url(p.http_url);
  out.set_certificate_thumbprint(p.certificate_thumbprint);
  return out;
}

std::string Remote(TestServer& server, const std::string& token,
                   const token::PresentedProof& proof) {
  const v1::ProofOfPossession proto = ToProto(proof);
  return ServerAnswer(server, token, /*audience=*/"", &proto);
}

v1::TokenPair Issue(TestServer& server, const token::PresentedProof& proof) {
  v1::IssueTokensRequest req;
  req.set_subject("alice");
  req.set_client_id("spa");
  *req.mutable_proof() = ToProto(proof);
  v1::TokenPair pair;
  CallResult r = server.Issue(req, &pair);
  INFO(r.reason);
  REQUIRE(r.ok());
  return pair;
}

TEST_CASE("LocalVerifier: a bound token's proof is judged as Introspect judges it",
          "[client][verifier][dpop]") {
  TestServer server;
  std::unique_ptr<client::LocalVerifier> verifier = Verifier(server);
  std::unique_ptr<token::Key> key = token::Key::Generate(token::Algorithm::kES256).value();
  std::unique_ptr<token::Key> thief = token::Key::Generate(token::Algorithm::kEdDSA).value();
  const absl::Time now = server.clock().Now();
  auto proof = [&](const token::Key& by, const std::string& htm, const std::string& htu,
                   std::optional<std::string> ath) {
    DpopSpec spec;
    spec.htm = htm;
    spec.htu = htu;
    spec.ath = std::move(ath);
    return Presented(MakeDpopProof(by, spec, now), htm, htu);
  };
  const v1::TokenPair dpop = Issue(server, proof(*key, "POST", kLogin, std::nullopt));
  CHECK(dpop.token_type() == "DPoP");
  const std::string ath = token::AccessTokenHash(dpop.access_token());
  token::PresentedProof cert;
  cert.certificate_thumbprint = token::Base64UrlEncode(token::Sha256("client certificate"));
  const v1::TokenPair mtls = Issue(server, cert);
  const v1::TokenPair bearer = Issue(server, {});
  token::PresentedProof other_cert;
  other_cert.certificate_thumbprint = token::Base64UrlEncode(token::Sha256("another"));

  struct Case {
    std::string name, token;
    token::PresentedProof proof;
    std::string want;
  };
  const token::PresentedProof once = proof(*key, "GET", kResource, ath);
  token::PresentedProof elsewhere = proof(*key, "GET", kResource, ath);
  elsewhere.http_url = "https://api.example.com/admin";
  const std::vector<Case> cases = {
      {"the right proof", dpop.access_token(), once, "active"},
      {"the same proof again", dpop.access_token(), once, "dpop_replayed"},
      {"as a bearer token", dpop.access_token(), {}, "proof_required"},
      {"another key", dpop.access_token(), proof(*thief, "GET", kResource, ath),
       "proof_key_mismatch"},
      {"no ath", dpop.access_token(), proof(*key, "GET", kResource, std::nullopt),
       "dpop_missing_claim"},
      {"another token's ath", dpop.access_token(),
       proof(*key, "GET", kResource, token::AccessTokenHash(bearer.access_token())),
       "dpop_ath_mismatch"},
      {"another URL", dpop.access_token(), elsewhere, "dpop_htu_mismatch"},
      {"a certificate for a DPoP token", dpop.access_token(), cert, "proof_key_mismatch"},
      {"the certificate", mtls.access_token(), cert, "active"},
      {"another certificate", mtls.access_token(), other_cert, "proof_key_mismatch"},
      {"a certificate-bound token as bearer", mtls.access_token(), {}, "proof_required"},
      {"a bearer token with a proof", bearer.access_token(),
       proof(*key, "GET", kResource, token::AccessTokenHash(bearer.access_token())), "active"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    CHECK(VerifierAnswer(*verifier, c.token, c.proof) == c.want);
    CHECK(Remote(server, c.token, c.proof) == c.want);
  }
  // Checked by the caller: active with the cnf to compare, locally as on the server.
  absl::StatusOr<token::AccessDecision> d =
      verifier->Verify(dpop.access_token(), {}, /*binding_checked_by_caller=*/true);
  REQUIRE(d.ok());
  CHECK(d->active);
  CHECK(d->jwt->claims.cnf.jkt == token::JwkThumbprint(key->PublicJwkMembers()));
}

}  // namespace
}  // namespace ta::testing

// POST /oauth2/token with DPoP (issue 26 items 2 and 5, RFC 9449 §5 and §8): bound sessions
// refreshed with their key's proof, every way of presenting them without it (each refused as
// invalid_dpop_proof with nothing spent), nonces, and the error mapping of errors.cc.
#include <catch2/catch.hpp>

#include "tests/http/token_fixture.h"

namespace ta::http::token_test {
namespace {

TEST_CASE("TokenEndpoint: DPoP header handling (RFC 9449 5)", "[http][token][dpop]") {
  Fixture f;
  core::TokenPair pair = f.Issue();
  // Two DPoP headers: refused as invalid_dpop_proof before the core, nothing spent.
  HttpAnswer two = f.Post("grant_type=refresh_token&refresh_token=" + pair.refresh_token,
                          absl::StrCat(kForm, "DPoP: a.b.c\r\nDPoP: d.e.f\r\n"));
  CheckError(two, 400, "invalid_dpop_proof", "dpop_malformed");
  CHECK(absl::StartsWith(two.Header("www-authenticate"), "DPoP error=\"invalid_dpop_proof\""));
  CHECK(f.Refresh(pair.refresh_token).status == 200);
}

TEST_CASE("TokenEndpoint: a bound session refreshes with its key's proof (token_type DPoP)",
          "[http][token][dpop]") {
  Fixture f;
  std::unique_ptr<token::Key> key = *token::Key::Generate(token::Algorithm::kES256);
  core::TokenPair pair = f.IssueBound(*key);
  REQUIRE(pair.token_type == "DPoP");
  HttpAnswer a = f.RefreshWithProof(pair.refresh_token, f.Proof(*key), "&client_id=spa");
  INFO(a.body);
  REQUIRE(a.status == 200);
  rapidjson::Document doc = Json(a.body);
  CHECK(Str(doc["token_type"]) == "DPoP");
  CHECK(a.Header("dpop-nonce").empty());  // nonces are off
  core::IntrospectRequest in;
  in.token = Str(doc["access_token"]);
  in.binding_checked_by_caller = true;
  absl::StatusOr<core::Introspection> out = f.authority->Introspect(in);
  REQUIRE(out.ok());
  CHECK(out->active);
  // Bound to the key of the proofs: cnf.jkt is its RFC 7638 thumbprint.
  const std::string proof = f.Proof(*key);
  token::DpopRequest request;
  request.proof = proof;
  request.method = "POST";
  request.url = kTokenUrl;
  absl::StatusOr<token::DpopProof> checked =
      token::VerifyDpopProof(request, token::DpopPolicy(), absl::Now());
  REQUIRE(checked.ok());
  CHECK(out->cnf.jkt == checked->jkt);
}

TEST_CASE("TokenEndpoint: a bound session without its key is invalid_dpop_proof, nothing spent",
          "[http][token][dpop]") {
  Fixture f;
  std::unique_ptr<token::Key> key = *token::Key::Generate(token::Algorithm::kES256);
  std::unique_ptr<token::Key> thief = *token::Key::Generate(token::Algorithm::kEdDSA);
  core::TokenPair pair = f.IssueBound(*key);
  const int writes = f.store->writes;
  auto check_dpop_error = [&](const HttpAnswer& a, const std::string& reason) {
    CheckError(a, 400, "invalid_dpop_proof", reason);
    CHECK(absl::StartsWith(a.Header("www-authenticate"), "DPoP error=\"invalid_dpop_proof\""));
  };
  check_dpop_error(f.Refresh(pair.refresh_token), "proof_required");
  check_dpop_error(f.RefreshWithProof(pair.refresh_token, f.Proof(*thief)), "proof_key_mismatch");
  check_dpop_error(f.RefreshWithProof(pair.refresh_token, f.Proof(*key, "GET")),
                   "dpop_htm_mismatch");
  check_dpop_error(
      f.RefreshWithProof(pair.refresh_token, f.Proof(*key, "POST", "http://127.0.0.1:9/other")),
      "dpop_htu_mismatch");
  check_dpop_error(f.RefreshWithProof(pair.refresh_token, "not.a.proof"), "dpop_malformed");
  CheckError(f.RefreshWithProof(pair.refresh_token, f.Proof(*key), "&client_id=other"), 400,
             "invalid_grant", "client_mismatch");
  // Only proofs that verified reach the store (their jti in the replay cache): no rotation.
  CHECK(f.store->writes - writes <= 2);
  // The holder of the key still refreshes the same token; the same request again is a replay.
  const std::string proof = f.Proof(*key);
  HttpAnswer ok = f.RefreshWithProof(pair.refresh_token, proof);
  REQUIRE(ok.status == 200);
  check_dpop_error(f.RefreshWithProof(pair.refresh_token, proof), "dpop_replayed");
  // A replay spends nothing either: the successor refreshes.
  const std::string next = Str(Json(ok.body)["refresh_token"]);
  CHECK(f.RefreshWithProof(next, f.Proof(*key)).status == 200);
}

TEST_CASE("TokenEndpoint: with nonces on, use_dpop_nonce carries DPoP-Nonce; answers too",
          "[http][token][dpop]") {
  Fixture f(PeerRateOptions{}, /*dpop_nonce=*/true);
  std::unique_ptr<token::Key> key = *token::Key::Generate(token::Algorithm::kES256);
  core::TokenPair pair = f.IssueBound(*key);
  const std::string nonce = f.authority->CurrentDpopNonce();
  REQUIRE_FALSE(nonce.empty());
  HttpAnswer first =
      f.RefreshWithProof(pair.refresh_token, MakeProof(*key, "POST", kTokenUrl, /*nonce=*/""));
  CheckError(first, 400, "use_dpop_nonce", "use_dpop_nonce");
  CHECK(first.Header("dpop-nonce") == nonce);
  CHECK(absl::StartsWith(first.Header("www-authenticate"), "DPoP error=\"use_dpop_nonce\""));
  HttpAnswer ok = f.RefreshWithProof(pair.refresh_token, f.Proof(*key));
  INFO(ok.body);
  CHECK(ok.status == 200);
  CHECK(ok.Header("dpop-nonce") == nonce);
}

TEST_CASE("TokenErrorResponse: core reasons become RFC 6749 / RFC 9449 errors", "[http][token]") {
  struct Case {
    absl::StatusCode code;
    const char* reason;
    int status;
    const char* error;
  };
  const Case cases[] = {
      {absl::StatusCode::kUnauthenticated, "invalid_refresh_token", 400, "invalid_grant"},
      {absl::StatusCode::kUnauthenticated, "refresh_token_expired", 400, "invalid_grant"},
      {absl::StatusCode::kUnauthenticated, "refresh_token_reused", 400, "invalid_grant"},
      {absl::StatusCode::kUnauthenticated, "family_revoked", 400, "invalid_grant"},
      {absl::StatusCode::kUnauthenticated, "subject_blocked", 400, "invalid_grant"},
      {absl::StatusCode::kUnauthenticated, "client_mismatch", 400, "invalid_grant"},
      {absl::StatusCode::kPermissionDenied, "permission_denied", 400, "invalid_grant"},
      {absl::StatusCode::kInvalidArgument, "invalid_scope", 400, "invalid_scope"},
      {absl::StatusCode::kInvalidArgument, "invalid_argument:scope", 400, "invalid_request"},
      {absl::StatusCode::kUnauthenticated, "dpop_bad_signature", 400, "invalid_dpop_proof"},
      {absl::StatusCode::kUnauthenticated, "dpop_htu_mismatch", 400, "invalid_dpop_proof"},
      {absl::StatusCode::kUnauthenticated, "dpop_replayed", 400, "invalid_dpop_proof"},
      {absl::StatusCode::kInvalidArgument, "dpop_proof_too_large", 400, "invalid_dpop_proof"},
      {absl::StatusCode::kUnauthenticated, "proof_required", 400, "invalid_dpop_proof"},
      {absl::StatusCode::kUnauthenticated, "proof_key_mismatch", 400, "invalid_dpop_proof"},
      {absl::StatusCode::kUnauthenticated, "use_dpop_nonce", 400, "use_dpop_nonce"},
      {absl::StatusCode::kUnavailable, "store_unavailable", 503, "temporarily_unavailable"},
      {absl::StatusCode::kResourceExhausted, "overloaded", 503, "temporarily_unavailable"},
      {absl::StatusCode::kResourceExhausted, "rate_limited", 429, "temporarily_unavailable"},
      {absl::StatusCode::kInternal, "internal", 500, "server_error"},
  };
  for (const Case& c : cases) {
    INFO(c.reason);
    HttpResponse r = TokenErrorResponse(Error(c.code, c.reason, "why"), "n-1");
    CHECK(r.status == c.status);
    rapidjson::Document doc = Json(r.body);
    CHECK(Str(doc["error"]) == c.error);
    CHECK(Str(doc["error_description"]) == absl::StrCat(c.reason, ": why"));
    std::map<std::string, std::string> headers(r.headers.begin(), r.headers.end());
    const bool dpop_error = absl::string_view(c.error) == "invalid_dpop_proof" ||
                            absl::string_view(c.error) == "use_dpop_nonce";
    CHECK(headers.count("WWW-Authenticate") == (dpop_error ? 1 : 0));
    if (dpop_error) {
      CHECK(headers["WWW-Authenticate"] ==
            absl::StrCat("DPoP error=\"", c.error, "\", algs=\"ES256 EdDSA Ed25519 RS256 PS256\""));
    }
    CHECK(headers.count("DPoP-Nonce") == (c.error == std::string("use_dpop_nonce") ? 1 : 0));
    if (headers.count("DPoP-Nonce")) CHECK(headers["DPoP-Nonce"] == "n-1");
    CHECK(headers.count("Retry-After") == (c.status == 503 ? 1 : 0));
  }
}

}  // namespace
}  // namespace ta::http::token_test

// Attack suite, token part (issue 8): the RFC 8725 list and the session attacks, each over a
// real channel against an in-process server with a fake clock (ta::testing::TestServer), each
// pinned to its status and reason. Forged tokens are built here from the pieces of real ones;
// "signed by our own key" variants use a KeyRing opened on the server's key directory, i.e.
// the worst case of a token minted by us for another purpose.
#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/token/key_ring.h"
#include "tests/support/test_server.h"
#include "token/base64url.h"
#include "token/crypto.h"
#include "token/jws.h"

namespace ta::testing {
namespace {

using token::Base64UrlDecode;
using token::Base64UrlEncode;

struct Parts {
  std::string header, payload, signature;  // decoded JSON / raw signature bytes
};

Parts Split(const std::string& jwt) {
  std::vector<std::string> p = absl::StrSplit(jwt, '.');
  REQUIRE(p.size() == 3);
  return Parts{Base64UrlDecode(p[0]).value(), Base64UrlDecode(p[1]).value(),
               Base64UrlDecode(p[2]).value()};
}

std::string Join(absl::string_view header, absl::string_view payload, absl::string_view sig) {
  return absl::StrCat(Base64UrlEncode(header), ".", Base64UrlEncode(payload), ".",
                      Base64UrlEncode(sig));
}

std::string KidOf(const std::string& jwt) {
  const std::string h = Split(jwt).header;
  size_t at = h.find("\"kid\":\"");
  REQUIRE(at != std::string::npos);
  at += 7;
  return h.substr(at, h.find('"', at) - at);
}

// Introspection as the admin with the reason: must be inactive for `reason`.
void ExpectInactive(TestServer& s, const std::string& token, const std::string& reason) {
  v1::IntrospectResponse r = s.Introspect(token);
  INFO("expected inactive: " << reason);
  CHECK_FALSE(r.active());
  CHECK(r.inactive_reason() == reason);
  CHECK(r.subject().empty());  // nothing leaks from an inactive answer
}

v1::TokenPair MustIssue(TestServer& s, const std::string& subject = "alice") {
  v1::TokenPair pair;
  CallResult r = s.Issue(subject, &pair);
  INFO(r.status.error_message());
  REQUIRE(r.ok());
  return pair;
}

// A ring on the server's own key directory: signs with the server's active key.
std::unique_ptr<token::KeyRing> ServerKeys(TestServer& s) {
  token::KeyRingOptions o;
  o.key_dir = s.data_dir() + "/keys";
  o.clock = &s.clock();
  auto ring = token::KeyRing::Open(o);
  REQUIRE(ring.ok());
  return std::move(*ring);
}

token::JwtClaims GoodClaims(TestServer& s, const v1::TokenPair& pair) {
  token::JwtClaims c;
  c.iss = "token-authority";
  c.sub = "alice";
  c.aud = {"api"};
  c.iat = absl::FromUnixSeconds(absl::ToUnixSeconds(s.clock().Now()));
  c.nbf = c.iat;
  c.exp = c.iat + absl::Minutes(5);
  c.jti = Base64UrlEncode(token::RandomBytes(16));
  c.client_id = "web";
  c.sid = pair.family_id();
  return c;
}

TEST_CASE("Attack: alg none in every spelling is refused", "[reliability][attack]") {
  TestServer s;
  v1::TokenPair pair = MustIssue(s);
  const Parts p = Split(pair.access_token());
  const std::string kid = KidOf(pair.access_token());
  ExpectInactive(
      s, Join(absl::StrCat(R"({"alg":"none","kid":")", kid, R"(","typ":"at+jwt"})"), p.payload, ""),
      "alg_none");
  for (const char* alg : {"None", "NONE", "nOnE", ""}) {
    const std::string h =
        absl::StrCat(R"({"alg":")", alg, R"(","kid":")", kid, R"(","typ":"at+jwt"})");
    v1::IntrospectResponse r = s.Introspect(Join(h, p.payload, ""));
    INFO("alg " << alg << " -> " << r.inactive_reason());
    CHECK_FALSE(r.active());
    CHECK((r.inactive_reason() == "alg_none" || r.inactive_reason() == "unsupported_alg"));
  }
  // Signature stripped but alg kept.
  ExpectInactive(s, Join(p.header, p.payload, ""), "bad_signature");
}

TEST_CASE("Attack: algorithm confusion (HS256 keyed with our public key) is refused",
          "[reliability][attack]") {
  TestServer s;
  v1::TokenPair pair = MustIssue(s);
  const Parts p = Split(pair.access_token());
  const std::string kid = KidOf(pair.access_token());
  v1::GetJwksResponse jwks;
  REQUIRE(s.Call(s.api(), &v1::TokenAuthority::Stub::GetJwks, v1::GetJwksRequest(), &jwks).ok());
  const std::string header = absl::StrCat(R"({"alg":"HS256","kid":")", kid, R"(","typ":"at+jwt"})");
  const std::string input = absl::StrCat(Base64UrlEncode(header), ".", Base64UrlEncode(p.payload));
  // The public key as attackers feed it to HMAC: the JWKS text, and the JWK of our kid.
  for (const std::string& secret : {jwks.jwks_json(), kid, std::string()}) {
    const std::string forged =
        absl::StrCat(input, ".", Base64UrlEncode(token::HmacSha256(secret, input)));
    ExpectInactive(s, forged, "alg_mismatch");
  }
  // RS256 / EdDSA / PS256 claimed for an ES256 key: the key's algorithm wins.
  for (const char* alg : {"RS256", "PS256", "EdDSA", "ES384"}) {
    const std::string h =
        absl::StrCat(R"({"alg":")", alg, R"(","kid":")", kid, R"(","typ":"at+jwt"})");
    v1::IntrospectResponse r = s.Introspect(Join(h, p.payload, p.signature));
    INFO("alg " << alg << " -> " << r.inactive_reason());
    CHECK_FALSE(r.active());
    CHECK((r.inactive_reason() == "alg_mismatch" || r.inactive_reason() == "unsupported_alg"));
  }
}

TEST_CASE("Attack: kid tricks and key-carrying headers are refused", "[reliability][attack]") {
  TestServer s;
  v1::TokenPair pair = MustIssue(s);
  const Parts p = Split(pair.access_token());
  auto with_kid = [&](const std::string& kid) {
    return Join(absl::StrCat(R"({"alg":"ES256","kid":")", kid, R"(","typ":"at+jwt"})"), p.payload,
                p.signature);
  };
  for (const char* kid : {"unknown", "../../../../dev/null", "' OR '1'='1", "keys/admin.key", "%00",
                          "http://attacker.example/jwks"}) {
    ExpectInactive(s, with_kid(kid), "unknown_kid");
  }
  ExpectInactive(s, Join(R"({"alg":"ES256","typ":"at+jwt"})", p.payload, p.signature),
                 "unknown_kid");
  const std::string kid = KidOf(pair.access_token());
  for (const char* extra :
       {R"("jku":"https://attacker.example/jwks")", R"("x5u":"https://attacker.example/cert")",
        R"("jwk":{"kty":"oct","k":"AAAA"})", R"("x5c":["AAAA"])", R"("crit":["exp"])",
        R"("kid2":"x")"}) {
    const std::string h =
        absl::StrCat(R"({"alg":"ES256","kid":")", kid, R"(","typ":"at+jwt",)", extra, "}");
    ExpectInactive(s, Join(h, p.payload, p.signature), "forbidden_header");
  }
  // Our kid, a payload of the attacker's choosing: the signature does not match.
  std::string payload = p.payload;
  payload.replace(payload.find("\"alice\""), 7, "\"admin\"");
  ExpectInactive(s, Join(p.header, payload, p.signature), "bad_signature");
}

TEST_CASE("Attack: typ confusion is refused even when signed by our own key",
          "[reliability][attack]") {
  TestServer s;
  v1::TokenPair pair = MustIssue(s);
  std::unique_ptr<token::KeyRing> keys = ServerKeys(s);
  for (const char* typ : {"JWT", "jwt", "", "rt+jwt", "id_token", "application/jwt"}) {
    absl::StatusOr<std::string> t = keys->Sign(GoodClaims(s, pair), typ);
    REQUIRE(t.ok());
    INFO("typ '" << typ << "'");
    ExpectInactive(s, *t, "wrong_typ");
  }
  // RFC 7515 §4.1.9: the "application/" prefix may be present; a control that forging works.
  absl::StatusOr<std::string> ok = keys->Sign(GoodClaims(s, pair), "application/at+jwt");
  REQUIRE(ok.ok());
  CHECK(s.Introspect(*ok).active());
}

TEST_CASE("Attack: a refresh token never passes as an access token nor the reverse",
          "[reliability][attack]") {
  TestServer s;
  v1::TokenPair pair = MustIssue(s);
  // Refresh token where a JWT is expected: no JWS shape, so no local verifier accepts it...
  CHECK_FALSE(token::SplitCompactJws(pair.refresh_token()).ok());
  // ...and introspection says what it is, with no access-token claims.
  v1::IntrospectResponse r = s.Introspect(pair.refresh_token());
  CHECK(r.active());
  CHECK(r.token_type() == "refresh_token");
  CHECK(r.jti().empty());
  CHECK(r.claims().fields().empty());
  // A JWT dressed up as a refresh token.
  ExpectInactive(s, "tar_" + pair.access_token(), "invalid_refresh_token");

  // Access token presented to RefreshTokens.
  v1::TokenPair next;
  CallResult refresh = s.Refresh(pair.access_token(), &next);
  CHECK(refresh.status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(refresh.reason == "invalid_refresh_token");
  // A tampered refresh token (one secret bit flipped) is unknown, and revokes nothing.
  std::string tampered = pair.refresh_token();
  tampered[tampered.size() - 2] = tampered[tampered.size() - 2] == 'A' ? 'B' : 'A';
  refresh = s.Refresh(tampered, &next);
  CHECK(refresh.reason == "invalid_refresh_token");
  CHECK(s.Introspect(pair.refresh_token()).active());
}

TEST_CASE("Attack: replay after family revocation is refused with family_revoked",
          "[reliability][attack]") {
  TestServer s;
  v1::TokenPair a = MustIssue(s);
  v1::TokenPair b;
  REQUIRE(s.Refresh(a.refresh_token(), &b).ok());
  v1::RevokeFamilyRequest revoke;
  revoke.set_family_id(a.family_id());
  revoke.set_reason("logout");
  v1::RevokeFamilyResponse revoked;
  REQUIRE(s.Call(s.api(), &v1::TokenAuthority::Stub::RevokeFamily, revoke, &revoked).ok());
  for (const std::string& rt : {a.refresh_token(), b.refresh_token()}) {
    v1::TokenPair next;
    CallResult r = s.Refresh(rt, &next);
    CHECK(r.status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
    CHECK(r.reason == "family_revoked");
  }
  for (const std::string& t : {a.access_token(), b.access_token(), b.refresh_token()}) {
    ExpectInactive(s, t, "family_revoked");
  }
  s.Restart();  // and it stays so
  ExpectInactive(s, b.access_token(), "family_revoked");
}

TEST_CASE("Attack: a token of a retired key stops verifying when its window ends",
          "[reliability][attack]") {
  TestServer s([](ServerOptions& o) {
    o.authority.access_ttl = absl::Hours(24);
    o.retired_key_window = absl::Hours(1);
  });
  v1::TokenPair pair = MustIssue(s);
  v1::RotateSigningKeyResponse rotated;
  REQUIRE(s.Call(s.admin(), &v1::TokenAdmin::Stub::RotateSigningKey, v1::RotateSigningKeyRequest(),
                 &rotated)
              .ok());
  s.clock().Advance(absl::Minutes(59));
  CHECK(s.Introspect(pair.access_token()).active());  // inside the window (and now cached)
  s.clock().Advance(absl::Minutes(2));
  ExpectInactive(s, pair.access_token(), "unknown_kid");
  s.Restart();
  ExpectInactive(s, pair.access_token(), "unknown_kid");
}

TEST_CASE("Attack: tokens of another issuer are refused", "[reliability][attack]") {
  TestServer s;
  v1::TokenPair pair = MustIssue(s);
  // Another token-authority (its own key), same subject and audience.
  TestServer other([](ServerOptions& o) { o.authority.issuer = "other-authority"; });
  v1::TokenPair foreign = MustIssue(other);
  ExpectInactive(s, foreign.access_token(), "unknown_kid");
  ExpectInactive(s, foreign.refresh_token(), "invalid_refresh_token");
  v1::TokenPair next;
  CHECK(s.Refresh(foreign.refresh_token(), &next).reason == "invalid_refresh_token");
  // Our own key, someone else's iss.
  std::unique_ptr<token::KeyRing> keys = ServerKeys(s);
  token::JwtClaims claims = GoodClaims(s, pair);
  claims.iss = "https://attacker.example";
  absl::StatusOr<std::string> t = keys->Sign(claims, "at+jwt");
  REQUIRE(t.ok());
  ExpectInactive(s, *t, "wrong_issuer");
}

TEST_CASE("Attack: forged times and foreign audiences are refused", "[reliability][attack]") {
  TestServer s;
  v1::TokenPair pair = MustIssue(s);
  std::unique_ptr<token::KeyRing> keys = ServerKeys(s);
  const absl::Time now = absl::FromUnixSeconds(absl::ToUnixSeconds(s.clock().Now()));
  token::JwtClaims expired = GoodClaims(s, pair);
  expired.exp = now - absl::Minutes(1);
  expired.iat = expired.nbf = now - absl::Minutes(6);
  token::JwtClaims future = GoodClaims(s, pair);
  future.nbf = now + absl::Minutes(10);
  token::JwtClaims early = GoodClaims(s, pair);
  early.iat = now + absl::Minutes(10);
  early.nbf = absl::InfinitePast();
  early.exp = early.iat + absl::Minutes(5);
  ExpectInactive(s, keys->Sign(expired, "at+jwt").value(), "token_expired");
  ExpectInactive(s, keys->Sign(future, "at+jwt").value(), "token_not_yet_valid");
  ExpectInactive(s, keys->Sign(early, "at+jwt").value(), "iat_in_future");
  CHECK_FALSE(s.Introspect(pair.access_token(), "payments").active());
  // (A well-signed token naming a family that does not exist is no longer looked up: access
  // tokens are introspected without a store read (DESIGN §10), and signing one takes our
  // private key, with which anything could be forged.)
}

}  // namespace
}  // namespace ta::testing

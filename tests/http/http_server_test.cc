// The HTTP face of a real in-process server, over real sockets (issue 15): JWKS and its cache
// headers, metadata, RFC 7662/7009 with both credential forms and the shared role table,
// metrics and health, and malformed HTTP -- while gRPC callers keep being served.
#include <rapidjson/document.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <set>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/core/callers.h"
#include "tests/http/http_client.h"
#include "tests/support/test_server.h"

namespace ta::testing {
namespace {

constexpr char kForm[] = "Content-Type: application/x-www-form-urlencoded\r\n";

std::string WriteCallers(const std::string& dir) {
  const std::string path = dir + "/callers.txt";
  std::ofstream out(path);
  out << "login   issuer   " << core::CallerRegistry::KeyCredential("issuer-key") << "\n"
      << "webapp  client   " << core::CallerRegistry::KeyCredential("client-key")
      << " clients=web\n"
      << "other   client   " << core::CallerRegistry::KeyCredential("other-key")
      << " clients=mobile\n"
      << "gateway resource " << core::CallerRegistry::KeyCredential("resource-key") << "\n"
      << "ops     admin    " << core::CallerRegistry::KeyCredential("admin-key") << "\n";
  return path;
}

// A server with the HTTP face on a port of its own; request deadline 1 s for slowloris tests.
std::function<void(ServerOptions&)> WithHttp(std::string issuer = "") {
  return [issuer](ServerOptions& o) {
    o.http_listen = "127.0.0.1:0";
    o.callers_file = WriteCallers(o.data_dir.substr(0, o.data_dir.rfind('/')));
    o.http_limits.request_timeout = absl::Seconds(1);
    if (!issuer.empty()) o.authority.issuer = issuer;
  };
}

rapidjson::Document Json(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  INFO(text);
  REQUIRE_FALSE(doc.HasParseError());
  return doc;
}

std::string Str(const rapidjson::Value& v) {
  return std::string(v.GetString(), v.GetStringLength());
}

v1::TokenPair IssueAs(TestServer& s, const std::string& client_id = "web") {
  v1::IssueTokensRequest req;
  req.set_subject("alice");
  req.set_client_id(client_id);
  req.set_scope("read write");
  v1::TokenPair pair;
  REQUIRE(CallAs("issuer-key", s.api(), &v1::TokenAuthority::Stub::IssueTokens, req, &pair).ok());
  return pair;
}

HttpAnswer Post(TestServer& s, const std::string& path, const std::string& auth,
                const std::string& body) {
  absl::StatusOr<HttpAnswer> a = Fetch(s.http_address(), "POST", path,
                                       absl::StrCat(kForm, "Authorization: ", auth, "\r\n"), body);
  INFO(a.status().ToString());
  REQUIRE(a.ok());
  return *a;
}

HttpAnswer Get(TestServer& s, const std::string& path, const std::string& headers = "") {
  absl::StatusOr<HttpAnswer> a = Fetch(s.http_address(), "GET", path, headers);
  INFO(a.status().ToString());
  REQUIRE(a.ok());
  return *a;
}

std::string Basic(const std::string& name, const std::string& key) {
  return "Basic " + absl::Base64Escape(name + ":" + key);
}

bool GrpcIntrospectActive(TestServer& s, const std::string& token) {
  v1::IntrospectRequest req;
  req.set_token(token);
  v1::IntrospectResponse resp;
  REQUIRE(CallAs("resource-key", s.api(), &v1::TokenAuthority::Stub::Introspect, req, &resp).ok());
  return resp.active();
}

TEST_CASE("HTTP: the JWKS is GetJwks's, cacheable, with an ETag and 304", "[http]") {
  TestServer s(WithHttp());
  v1::GetJwksResponse grpc_jwks;
  REQUIRE(CallAs("resource-key", s.api(), &v1::TokenAuthority::Stub::GetJwks, v1::GetJwksRequest(),
                 &grpc_jwks)
              .ok());
  HttpAnswer a = Get(s, "/.well-known/jwks.json");
  CHECK(a.status == 200);
  CHECK(a.body == grpc_jwks.jwks_json());
  CHECK(a.Header("content-type") == "application/json");
  CHECK(a.Header("cache-control") == "public, max-age=60");
  const std::string etag = a.Header("etag");
  REQUIRE(etag.size() > 2);
  HttpAnswer again = Get(s, "/.well-known/jwks.json", "If-None-Match: " + etag + "\r\n");
  CHECK(again.status == 304);
  CHECK(again.body.empty());
  CHECK(again.Header("etag") == etag);
  CHECK(Get(s, "/.well-known/jwks.json", "If-None-Match: \"other\"\r\n").status == 200);

  v1::RotateSigningKeyResponse rotated;
  REQUIRE(CallAs("admin-key", s.admin(), &v1::TokenAdmin::Stub::RotateSigningKey,
                 v1::RotateSigningKeyRequest(), &rotated)
              .ok());
  HttpAnswer after = Get(s, "/.well-known/jwks.json", "If-None-Match: " + etag + "\r\n");
  CHECK(after.status == 200);  // a new key is a new document
  CHECK(after.Header("etag") != etag);
  CHECK(after.body.find(rotated.kid()) != std::string::npos);
}

TEST_CASE("HTTP: metadata names our issuer (the tokens' iss) and our endpoints", "[http]") {
  TestServer s(WithHttp("https://auth.example.test/tenant"));
  v1::TokenPair pair = IssueAs(s);
  HttpAnswer introspected =
      Post(s, "/oauth2/introspect", "Bearer resource-key", "token=" + pair.access_token());
  const std::string iss = Str(Json(introspected.body)["iss"]);
  CHECK(iss == "https://auth.example.test/tenant");
  // RFC 8414 3.1 and OIDC Discovery 4 locations for an issuer with a path, and the plain ones.
  for (const char* path :
       {"/.well-known/oauth-authorization-server", "/.well-known/oauth-authorization-server/tenant",
        "/.well-known/openid-configuration", "/tenant/.well-known/openid-configuration"}) {
    INFO(path);
    HttpAnswer a = Get(s, path);
    REQUIRE(a.status == 200);
    rapidjson::Document doc = Json(a.body);
    CHECK(Str(doc["issuer"]) == iss);
    // With no --public_url, an issuer that is a URL is the base of the endpoints.
    CHECK(Str(doc["jwks_uri"]) == iss + "/.well-known/jwks.json");
    CHECK(Str(doc["introspection_endpoint"]) == iss + "/oauth2/introspect");
    CHECK(Str(doc["revocation_endpoint"]) == iss + "/oauth2/revoke");
    // Issue 26 #5: refreshes by public clients, with DPoP.
    CHECK(Str(doc["token_endpoint"]) == iss + "/oauth2/token");
    REQUIRE(doc["grant_types_supported"].Size() == 1);
    CHECK(Str(doc["grant_types_supported"][0]) == "refresh_token");
    REQUIRE(doc["token_endpoint_auth_methods_supported"].Size() == 1);
    CHECK(Str(doc["token_endpoint_auth_methods_supported"][0]) == "none");
    std::set<std::string> algs;
    for (const auto& alg : doc["dpop_signing_alg_values_supported"].GetArray()) {
      algs.insert(Str(alg));
    }
    CHECK(algs == std::set<std::string>{"ES256", "EdDSA", "Ed25519", "RS256", "PS256"});
  }
}

// Issue 26 #5 through the whole server: a session started over gRPC, refreshed by a public
// client at the metadata's token_endpoint (under the issuer's path), the successor usable
// over gRPC, and the spent token's reuse seen by gRPC as a revoked session.
TEST_CASE("HTTP: POST /oauth2/token refreshes a gRPC-issued session for a public client",
          "[http]") {
  TestServer s(WithHttp("https://auth.example.test/tenant"));
  v1::TokenPair pair = IssueAs(s);
  absl::StatusOr<HttpAnswer> a = Fetch(
      s.http_address(), "POST", "/tenant/oauth2/token", kForm,
      "grant_type=refresh_token&client_id=web&scope=read&refresh_token=" + pair.refresh_token());
  REQUIRE(a.ok());
  INFO(a->body);
  REQUIRE(a->status == 200);
  rapidjson::Document doc = Json(a->body);
  CHECK(Str(doc["token_type"]) == "Bearer");
  CHECK(Str(doc["scope"]) == "read");
  auto active = [&s](const std::string& token) {
    v1::IntrospectRequest req;
    req.set_token(token);
    v1::IntrospectResponse out;
    REQUIRE(CallAs("resource-key", s.api(), &v1::TokenAuthority::Stub::Introspect, req, &out).ok());
    return out.active();
  };
  auto refresh = [&s](const std::string& token) {
    v1::RefreshTokensRequest req;
    req.set_refresh_token(token);
    v1::TokenPair out;
    return CallAs("client-key", s.api(), &v1::TokenAuthority::Stub::RefreshTokens, req, &out);
  };
  CHECK(active(Str(doc["access_token"])));
  CHECK(refresh(Str(doc["refresh_token"])).ok());
  CHECK(refresh(pair.refresh_token()).reason == "refresh_token_reused");
  CHECK_FALSE(active(Str(doc["access_token"])));
}

TEST_CASE("HTTP: RFC 7662 introspection with Bearer or Basic, role resource", "[http]") {
  TestServer s(WithHttp());
  v1::TokenPair pair = IssueAs(s);
  const std::string body = "token=" + pair.access_token() + "&token_type_hint=access_token";
  for (const std::string& auth :
       {std::string("Bearer resource-key"), Basic("gateway", "resource-key")}) {
    INFO(auth.substr(0, 6));
    HttpAnswer a = Post(s, "/oauth2/introspect", auth, body);
    REQUIRE(a.status == 200);
    CHECK(a.Header("cache-control") == "no-store");
    rapidjson::Document doc = Json(a.body);
    CHECK(doc["active"].GetBool());
    CHECK(Str(doc["sub"]) == "alice");
    CHECK(Str(doc["client_id"]) == "web");
    CHECK(Str(doc["scope"]) == "read write");
    CHECK(Str(doc["aud"]) == "api");
    CHECK(Str(doc["iss"]) == "token-authority");
    CHECK(Str(doc["token_type"]) == "Bearer");
    CHECK(Str(doc["sid"]) == pair.family_id());
    CHECK(doc["exp"].GetInt64() > doc["iat"].GetInt64());
    CHECK_FALSE(Str(doc["jti"]).empty());
  }
  // Unknown garbage and a refresh token are inactive for a protected resource (RFC 7662 4).
  CHECK(Post(s, "/oauth2/introspect", "Bearer resource-key", "token=garbage").body ==
        R"({"active":false})");
  CHECK(
      Post(s, "/oauth2/introspect", "Bearer resource-key", "token=" + pair.refresh_token()).body ==
      R"({"active":false})");
  // An admin may inspect a refresh token.
  rapidjson::Document admin =
      Json(Post(s, "/oauth2/introspect", "Bearer admin-key", "token=" + pair.refresh_token()).body);
  CHECK(admin["active"].GetBool());
  CHECK(Str(admin["token_type"]) == "refresh_token");
}

TEST_CASE("HTTP: introspection refuses callers the gRPC face refuses", "[http]") {
  TestServer s(WithHttp());
  const std::string body = "token=" + IssueAs(s).access_token();
  struct Row {
    std::string auth;
    int status;
    std::string error;
  };
  for (const Row& row : std::vector<Row>{
           {"", 401, "invalid_client"},
           {"Bearer wrong-key", 401, "invalid_client"},
           {Basic("ops", "resource-key"), 401, "invalid_client"},  // another caller's name
           {"Digest x", 401, "invalid_client"},
           {"Bearer client-key", 403, "unauthorized_client"},  // role client: not resource
           {"Bearer issuer-key", 403, "unauthorized_client"}}) {
    INFO(row.auth);
    absl::StatusOr<HttpAnswer> a = Fetch(
        s.http_address(), "POST", "/oauth2/introspect",
        absl::StrCat(kForm, row.auth.empty() ? "" : "Authorization: " + row.auth + "\r\n"), body);
    REQUIRE(a.ok());
    CHECK(a->status == row.status);
    CHECK(Str(Json(a->body)["error"]) == row.error);
    if (row.status == 401) CHECK(a->Header("www-authenticate").find("Basic") != std::string::npos);
  }
}

TEST_CASE("HTTP: RFC 7009 revocation, seen by both faces", "[http]") {
  TestServer s(WithHttp());
  v1::TokenPair pair = IssueAs(s);
  // Unknown tokens: 200 (RFC 7009 2.2).
  CHECK(Post(s, "/oauth2/revoke", "Bearer client-key", "token=not-a-token").status == 200);
  // Another client's token: refused, still active.
  HttpAnswer theirs = Post(s, "/oauth2/revoke", "Bearer other-key", "token=" + pair.access_token());
  CHECK(theirs.status == 403);
  CHECK(Str(Json(theirs.body)["error"]) == "unauthorized_client");
  CHECK(GrpcIntrospectActive(s, pair.access_token()));
  // A resource may not revoke.
  CHECK(Post(s, "/oauth2/revoke", "Bearer resource-key", "token=" + pair.access_token()).status ==
        403);
  HttpAnswer ok = Post(s, "/oauth2/revoke", Basic("webapp", "client-key"),
                       "token=" + pair.access_token() + "&token_type_hint=access_token");
  CHECK(ok.status == 200);
  CHECK(ok.body.empty());
  CHECK_FALSE(GrpcIntrospectActive(s, pair.access_token()));
  CHECK(Post(s, "/oauth2/introspect", "Bearer resource-key", "token=" + pair.access_token()).body ==
        R"({"active":false})");
  // A refresh token revokes its family: the access token of another refresh goes too.
  v1::TokenPair second = IssueAs(s);
  CHECK(Post(s, "/oauth2/revoke", "Bearer client-key", "token=" + second.refresh_token()).status ==
        200);
  CHECK_FALSE(GrpcIntrospectActive(s, second.access_token()));
}

TEST_CASE("HTTP: bad requests get RFC 6749 error JSON, never a crash", "[http]") {
  TestServer s(WithHttp());
  const std::string auth = "Authorization: Bearer resource-key\r\n";
  struct Row {
    std::string method, path, headers, body;
    int status;
  };
  for (const Row& row : std::vector<Row>{
           {"POST", "/oauth2/introspect", kForm + auth, "", 400},
           {"POST", "/oauth2/introspect", kForm + auth, "token=", 400},
           {"POST", "/oauth2/introspect", kForm + auth, "token=%zz", 400},
           {"POST", "/oauth2/introspect", kForm + auth, "token=a&token=b", 400},
           {"POST", "/oauth2/introspect", "Content-Type: application/json\r\n" + auth,
            R"({"token":"x"})", 400},
           {"POST", "/oauth2/introspect", kForm + auth, "token=" + std::string(9000, 'a'), 400},
           {"GET", "/oauth2/introspect", auth, "", 405},
           {"PUT", "/oauth2/revoke", auth, "", 405},
           {"POST", "/.well-known/jwks.json", "", "", 405},
           {"DELETE", "/metrics", "", "", 405},
           {"GET", "/nope", "", "", 404},
           {"GET", "/.well-known/jwks.json/../../etc/passwd", "", "", 404}}) {
    INFO(row.method << " " << row.path << " " << row.body.substr(0, 40));
    absl::StatusOr<HttpAnswer> a =
        Fetch(s.http_address(), row.method, row.path, row.headers, row.body);
    REQUIRE(a.ok());
    CHECK(a->status == row.status);
    rapidjson::Document doc = Json(a->body);
    CHECK(doc.HasMember("error"));
    if (row.status == 405) CHECK_FALSE(a->Header("allow").empty());
  }
}

TEST_CASE("HTTP: oversized, malformed and slow requests are cut off while gRPC is served",
          "[http]") {
  TestServer s(WithHttp());
  v1::TokenPair pair = IssueAs(s);
  SECTION("oversized header: 431, closed") {
    absl::StatusOr<HttpConnection> c = HttpConnection::Open(s.http_address());
    REQUIRE(c.ok());
    REQUIRE(c->Send("GET /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\nX-Big: " +
                    std::string(16 * 1024, 'a') + "\r\n\r\n")
                .ok());
    absl::StatusOr<HttpAnswer> a = c->Read();
    REQUIRE(a.ok());
    CHECK(a->status == 431);
    CHECK(c->ClosedWithin(absl::Seconds(2)));
  }
  SECTION("oversized body: 413, closed") {
    absl::StatusOr<HttpAnswer> a = Fetch(s.http_address(), "POST", "/oauth2/introspect", kForm,
                                         "token=" + std::string(100 * 1024, 'a'));
    REQUIRE(a.ok());
    CHECK(a->status == 413);
  }
  SECTION("not HTTP at all: 400, closed") {
    absl::StatusOr<HttpConnection> c = HttpConnection::Open(s.http_address());
    REQUIRE(c.ok());
    REQUIRE(c->Send("\x16\x03\x01\x02\x00garbage\r\n\r\n").ok());
    absl::StatusOr<HttpAnswer> a = c->Read();
    if (a.ok()) CHECK(a->status == 400);
    CHECK(c->ClosedWithin(absl::Seconds(2)));
  }
  SECTION("slowloris: half requests are closed at the request deadline") {
    std::vector<HttpConnection> slow;
    for (int i = 0; i < 64; ++i) {
      absl::StatusOr<HttpConnection> c = HttpConnection::Open(s.http_address());
      REQUIRE(c.ok());
      REQUIRE(c->Send("POST /oauth2/introspect HTTP/1.1\r\nHost: x\r\nX-Slow: ").ok());
      slow.push_back(*std::move(c));
    }
    // Meanwhile both faces serve everyone else.
    for (int i = 0; i < 5; ++i) {
      CHECK(GrpcIntrospectActive(s, pair.access_token()));
      CHECK(Get(s, "/healthz/live").status == 200);
      for (HttpConnection& c : slow) (void)c.Send("a");
      absl::SleepFor(absl::Milliseconds(200));
    }
    int closed = 0;
    for (HttpConnection& c : slow) closed += c.ClosedWithin(absl::Seconds(3)) ? 1 : 0;
    CHECK(closed == 64);
    CHECK(GrpcIntrospectActive(s, pair.access_token()));
  }
}

TEST_CASE("HTTP: keep-alive serves several requests on one connection, HEAD has no body",
          "[http]") {
  TestServer s(WithHttp());
  absl::StatusOr<HttpConnection> c = HttpConnection::Open(s.http_address());
  REQUIRE(c.ok());
  for (int i = 0; i < 3; ++i) {
    REQUIRE(c->Send("GET /healthz/ready HTTP/1.1\r\nHost: x\r\n\r\n").ok());
    absl::StatusOr<HttpAnswer> a = c->Read();
    REQUIRE(a.ok());
    CHECK(a->status == 200);
    CHECK(a->body == R"({"status":"ready"})");
  }
  REQUIRE(c->Send("HEAD /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /healthz/live HTTP/1.1\r\nHost: x\r\n\r\n")
              .ok());  // pipelined
  absl::StatusOr<HttpAnswer> head = c->Read(absl::Seconds(5), /*head=*/true);
  REQUIRE(head.ok());
  CHECK(head->status == 200);
  CHECK(std::stoi(head->Header("content-length")) > 0);
  absl::StatusOr<HttpAnswer> live = c->Read();
  REQUIRE(live.ok());
  CHECK(live->body == R"({"status":"live"})");
}

TEST_CASE("HTTP: /metrics counts both faces, refresh outcomes and revocations", "[http]") {
  TestServer s(WithHttp());
  v1::TokenPair pair = IssueAs(s);
  v1::RefreshTokensRequest refresh;
  refresh.set_refresh_token(pair.refresh_token());
  v1::TokenPair next;
  REQUIRE(
      CallAs("client-key", s.api(), &v1::TokenAuthority::Stub::RefreshTokens, refresh, &next).ok());
  CHECK_FALSE(
      CallAs("client-key", s.api(), &v1::TokenAuthority::Stub::RefreshTokens, refresh, &next).ok());
  Post(s, "/oauth2/introspect", "Bearer resource-key", "token=" + next.access_token());
  Post(s, "/oauth2/introspect", "Bearer resource-key", "token=" + next.access_token());
  Post(s, "/oauth2/revoke", "Bearer client-key", "token=" + next.access_token());
  HttpAnswer m = Get(s, "/metrics");
  REQUIRE(m.status == 200);
  CHECK(m.Header("content-type").find("text/plain; version=0.0.4") == 0);
  for (const char* line : {
           "ta_refresh_total{outcome=\"rotated\"} 1",
           "ta_refresh_total{outcome=\"reuse_detected\"} 1",
           "ta_revocations_total{width=\"token\"} 1",
           "ta_grpc_requests_total{code=\"OK\",method=\"IssueTokens\"} 1",
           "ta_grpc_requests_total{code=\"UNAUTHENTICATED\",method=\"RefreshTokens\"} 1",
           "ta_http_requests_total{code=\"200\",endpoint=\"introspect\"} 2",
           "ta_http_requests_total{code=\"200\",endpoint=\"revoke\"} 1",
           "ta_verify_cache_lookups_total{result=\"hit\"} 1",
           "ta_signing_keys{state=\"active\"} 1",
           "ta_store_operation_duration_seconds_count{operation=\"rotate\"} 2",
       }) {
    INFO(line);
    CHECK(m.body.find(line) != std::string::npos);
  }
  CHECK(m.body.find("ta_build_info{") != std::string::npos);
  CHECK(m.body.find("ta_signing_key_age_seconds{") != std::string::npos);
}

TEST_CASE("HTTP: health agrees with gRPC health", "[http]") {
  TestServer s(WithHttp());
  CHECK(Get(s, "/healthz/live").status == 200);
  CHECK(Get(s, "/healthz/ready").status == 200);
  auto channel = grpc::CreateChannel(s.address(), grpc::InsecureChannelCredentials());
  auto health = ::grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  ::grpc::health::v1::HealthCheckResponse resp;
  REQUIRE(health->Check(&ctx, ::grpc::health::v1::HealthCheckRequest(), &resp).ok());
  CHECK(resp.status() == ::grpc::health::v1::HealthCheckResponse::SERVING);
}

}  // namespace
}  // namespace ta::testing

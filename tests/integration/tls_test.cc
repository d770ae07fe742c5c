// TLS and mTLS (issue 6): a client certificate from the configured CA gets the roles of its
// identity; one from another CA is refused at the handshake; without a certificate a TLS
// client falls back to API keys only when configured.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "server/core/callers.h"
#include "tests/support/test_server.h"

namespace ta::testing {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class Pki {
 public:
  Pki() {
    std::string cmd = std::string(TA_MAKE_CERTS) + " " + dir_.path();
    REQUIRE(std::system(cmd.c_str()) == 0);
  }
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }
  std::string Pem(const std::string& name) const { return Slurp(Path(name)); }

 private:
  TempDir dir_;
};

// A TLS stub towards `address` trusting our CA, presenting `client` (a cert name or "").
std::unique_ptr<v1::TokenAuthority::Stub> TlsStub(const Pki& pki, const std::string& address,
                                                  const std::string& client) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = pki.Pem("ca.pem");
  if (!client.empty()) {
    ssl.pem_cert_chain = pki.Pem(client + ".pem");
    ssl.pem_private_key = pki.Pem(client + ".key");
  }
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  return v1::TokenAuthority::NewStub(
      grpc::CreateCustomChannel(address, grpc::SslCredentials(ssl), args));
}

CallResult Jwks(v1::TokenAuthority::Stub& stub, const std::string& key = "") {
  v1::GetJwksResponse resp;
  return CallAs(key, stub, &v1::TokenAuthority::Stub::GetJwks, v1::GetJwksRequest(), &resp);
}

CallResult IssueAs(v1::TokenAuthority::Stub& stub, const std::string& key = "") {
  v1::IssueTokensRequest req;
  req.set_subject("alice");
  req.set_client_id("web");
  v1::TokenPair pair;
  return CallAs(key, stub, &v1::TokenAuthority::Stub::IssueTokens, req, &pair);
}

std::function<void(ServerOptions&)> TlsOptions(const Pki& pki, bool allow_no_cert) {
  return [&pki, allow_no_cert](ServerOptions& o) {
    const std::string callers = pki.Path("callers.txt");
    std::ofstream(callers) << "gateway resource cert-uri:spiffe://test/gateway\n"
                           << "login issuer " << core::CallerRegistry::KeyCredential("login-key")
                           << "\n";
    o.callers_file = callers;
    o.tls_cert = pki.Path("server.pem");
    o.tls_key = pki.Path("server.key");
    o.tls_client_ca = pki.Path("ca.pem");
    o.tls_allow_no_client_cert = allow_no_cert;
  };
}

TEST_CASE("TLS: a client certificate from our CA carries its caller's roles", "[tls]") {
  Pki pki;
  TestServer s(TlsOptions(pki, /*allow_no_cert=*/false));
  auto stub = TlsStub(pki, s.address(), "client");
  CHECK(Jwks(*stub).ok());  // any known caller
  CallResult issue = IssueAs(*stub);
  CHECK(issue.status.error_code() == grpc::StatusCode::PERMISSION_DENIED);  // resource only
}

TEST_CASE("TLS: a certificate from another CA is refused at the handshake", "[tls]") {
  Pki pki;
  TestServer s(TlsOptions(pki, /*allow_no_cert=*/true));
  auto rogue = TlsStub(pki, s.address(), "rogue");
  CallResult r = Jwks(*rogue, "login-key");
  CHECK(r.status.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(r.reason.empty());  // no RPC ever reached the server
}

TEST_CASE("TLS: without a client certificate, API keys work only when allowed", "[tls]") {
  Pki pki;
  SECTION("required: refused at the handshake") {
    TestServer s(TlsOptions(pki, /*allow_no_cert=*/false));
    auto anonymous = TlsStub(pki, s.address(), "");
    CHECK(Jwks(*anonymous, "login-key").status.error_code() == grpc::StatusCode::UNAVAILABLE);
  }
  SECTION("allowed: the API key decides") {
    TestServer s(TlsOptions(pki, /*allow_no_cert=*/true));
    auto anonymous = TlsStub(pki, s.address(), "");
    CHECK(IssueAs(*anonymous, "login-key").ok());
    CHECK(Jwks(*anonymous).reason == "unauthenticated");
  }
}

// The caller a certificate authenticates as, read back from the session it issued (or the
// refusal's reason).
std::string IssuedBy(TestServer& s, const Pki& pki, const std::string& cert) {
  auto stub = TlsStub(pki, s.address(), cert);
  v1::IssueTokensRequest req;
  req.set_subject("alice");
  req.set_client_id("web");
  v1::TokenPair pair;
  CallResult issued = CallAs("", *stub, &v1::TokenAuthority::Stub::IssueTokens, req, &pair);
  if (!issued.ok()) return "refused:" + issued.reason;
  auto admin = v1::TokenAdmin::NewStub(grpc::CreateCustomChannel(
      s.address(), grpc::SslCredentials({pki.Pem("ca.pem"), "", ""}), [] {
        grpc::ChannelArguments args;
        args.SetSslTargetNameOverride("localhost");
        return args;
      }()));
  v1::GetFamilyRequest get;
  get.set_family_id(pair.family_id());
  v1::Family family;
  REQUIRE(CallAs("admin-key", *admin, &v1::TokenAdmin::Stub::GetFamily, get, &family).ok());
  return family.issued_by();
}

TEST_CASE("TLS: each SAN type matches only its own credential type, CN only without SANs",
          "[tls][security]") {
  // Issue 12: cert: matched any SAN type and the CN even when SANs existed.
  Pki pki;
  TestServer s([&pki](ServerOptions& o) {
    const std::string callers = pki.Path("callers.txt");
    std::ofstream(callers) << "by-uri issuer cert-uri:spiffe://test/ops\n"
                           << "by-dns issuer cert-dns:ops.test\n"
                           << "by-email issuer cert-email:ops@test.example\n"
                           << "by-ip issuer cert-ip:10.9.8.7\n"
                           << "by-cn issuer cert-cn:ops-cn\n"
                           // the same texts under the other types: must never match
                           << "x-dns issuer cert-dns:spiffe://test/ops\n"
                           << "x-uri issuer cert-uri:ops.test\n"
                           << "x-ip issuer cert-ip:ops@test.example\n"
                           << "x-cn issuer cert-cn:spiffe://test/ops\n"
                           << "x-cn-nobody issuer cert-cn:nobody\n"
                           << "ops admin " << core::CallerRegistry::KeyCredential("admin-key")
                           << "\n";
    o.callers_file = callers;
    o.tls_cert = pki.Path("server.pem");
    o.tls_key = pki.Path("server.key");
    o.tls_client_ca = pki.Path("ca.pem");
    o.tls_allow_no_client_cert = true;
  });
  CHECK(IssuedBy(s, pki, "id-uri") == "by-uri");
  CHECK(IssuedBy(s, pki, "id-dns") == "by-dns");
  CHECK(IssuedBy(s, pki, "id-email") == "by-email");
  CHECK(IssuedBy(s, pki, "id-ip") == "by-ip");
  CHECK(IssuedBy(s, pki, "id-cn") == "by-cn");
  // The review's certificates from the same CA: refused, not taken for spiffe://test/ops.
  CHECK(IssuedBy(s, pki, "attack-dns") == "refused:unauthenticated");
  CHECK(IssuedBy(s, pki, "attack-email") == "refused:unauthenticated");
}

TEST_CASE("TLS: a plaintext client cannot talk to a TLS server", "[tls]") {
  Pki pki;
  TestServer s(TlsOptions(pki, /*allow_no_cert=*/true));
  auto plain = v1::TokenAuthority::NewStub(
      grpc::CreateChannel(s.address(), grpc::InsecureChannelCredentials()));
  CHECK(Jwks(*plain, "login-key").status.error_code() == grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace ta::testing

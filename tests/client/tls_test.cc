// TLS and mTLS from ta::client::Client and tokenctl against the real server binary, with the
// test PKI of tests/integration/make_certs.sh and a caller file that makes the client
// certificate an admin.
#include <catch2/catch.hpp>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "base/error.h"
#include "client/client.h"
#include "tests/client/client_test_util.h"

namespace ta::testing {
namespace {

namespace v1 = ::tokenauthority::v1;

// Serves TLS with server.pem and requires client certificates from ca.pem; the one in
// client.pem is the admin caller "gateway". No API key exists.
std::vector<std::string> MtlsArgs(const Pki& pki) {
  std::ofstream(pki.Path("callers.txt")) << "gateway admin cert-uri:spiffe://test/gateway\n";
  return {"--tls_cert=" + pki.Path("server.pem"), "--tls_key=" + pki.Path("server.key"),
          "--tls_client_ca=" + pki.Path("ca.pem"), "--callers_file=" + pki.Path("callers.txt")};
}

client::ClientOptions TlsClient(const Pki& pki, const LiveServer& server, const std::string& cert) {
  client::ClientOptions options;
  options.target = server.address();
  options.use_tls = true;
  options.root_ca_pem = pki.Pem("ca.pem");
  options.tls_server_name = "localhost";
  options.max_attempts = 1;
  if (!cert.empty()) {
    options.cert_pem = pki.Pem(cert + ".pem");
    options.key_pem = pki.Pem(cert + ".key");
  }
  return options;
}

absl::Status Stats(const client::ClientOptions& options) {
  absl::StatusOr<std::unique_ptr<client::Client>> c = client::Client::Create(options);
  REQUIRE(c.ok());
  return (*c)->GetStats(v1::GetStatsRequest()).status();
}

TEST_CASE("Client: mTLS with a client certificate authenticates the caller", "[client][tls]") {
  Pki pki;
  LiveServer server(MtlsArgs(pki));
  CHECK(server.api_key().empty());  // a caller file: no generated key
  absl::Status admin = Stats(TlsClient(pki, server, "client"));
  INFO(admin.ToString());
  CHECK(admin.ok());

  // Refused at the handshake: no RPC reached the server, so no server reason.
  for (std::string cert : {"", "rogue"}) {
    absl::Status refused = Stats(TlsClient(pki, server, cert));
    CHECK(refused.code() == absl::StatusCode::kUnavailable);
    CHECK(ReasonOf(refused).empty());
  }
  client::ClientOptions untrusting = TlsClient(pki, server, "client");
  untrusting.root_ca_pem = pki.Pem("other-ca.pem");
  CHECK(Stats(untrusting).code() == absl::StatusCode::kUnavailable);
}

TEST_CASE("tokenctl: --tls_ca, --tls_cert and --tls_key speak mTLS", "[tokenctl][tls]") {
  Pki pki;
  LiveServer server(MtlsArgs(pki));
  std::vector<std::string> tls = {"--server=" + server.address(), "--tls_ca=" + pki.Path("ca.pem"),
                                  "--tls_server_name=localhost", "--max_attempts=1"};
  std::vector<std::string> with_cert = tls;
  with_cert.insert(with_cert.end(), {"--tls_cert=" + pki.Path("client.pem"),
                                     "--tls_key=" + pki.Path("client.key"), "stats"});
  ProcessResult ok = RunTokenctl(with_cert);
  INFO(ok.err);
  CHECK(ok.exit_code == 0);
  CHECK(std::regex_search(ok.out, std::regex("\nsigning keys +1\n")));

  tls.push_back("stats");
  CHECK(RunTokenctl(tls).exit_code == 4);  // no certificate: refused at the handshake
  ProcessResult half = RunTokenctl({"--tls_cert=" + pki.Path("client.pem"), "stats"});
  CHECK(half.exit_code == 2);
  CHECK(half.err.find("--tls_key") != std::string::npos);
}

}  // namespace
}  // namespace ta::testing

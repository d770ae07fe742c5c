// CallerRegistry: the caller file's grammar and certificate identity matching (issue 12:
// typed certificate identities, CN only without SANs, no fail-open `clients=`, '#' inside a
// credential).
#include "server/core/callers.h"

#include <catch2/catch.hpp>

#include <string>

#include "base/error.h"

namespace ta::core {
namespace {

std::unique_ptr<CallerRegistry> Parse(const std::string& text) {
  absl::StatusOr<std::unique_ptr<CallerRegistry>> registry = CallerRegistry::Parse(text, "callers");
  INFO(registry.status().ToString());
  REQUIRE(registry.ok());
  return *std::move(registry);
}

std::string ParseError(const std::string& text) {
  absl::StatusOr<std::unique_ptr<CallerRegistry>> registry = CallerRegistry::Parse(text, "callers");
  REQUIRE_FALSE(registry.ok());
  CHECK(ReasonOf(registry.status()) == "invalid_argument:callers_file");
  return std::string(registry.status().message());
}

// The name of the caller `peer` authenticates as, or the refusal's reason.
std::string Who(const CallerRegistry& registry, const PeerCertificate& peer) {
  absl::StatusOr<Caller> caller = registry.ByCertificate(peer);
  return caller.ok() ? caller->name : "refused:" + ReasonOf(caller.status());
}

TEST_CASE("Callers: each certificate identity type matches only its own SAN type", "[callers]") {
  // The same text under every credential type, each a different caller.
  const std::string name = "spiffe://prod/ops";
  auto registry = Parse("by-uri   admin cert-uri:" + name + "\n" +
                        "by-dns   admin cert-dns:" + name + "\n" +
                        "by-email admin cert-email:" + name + "\n" +
                        "by-ip    admin cert-ip:" + name + "\n" +
                        "by-cn    admin cert-cn:" + name + "\n");
  PeerCertificate uri, dns, email, ip, cn_only;
  uri.uris = {name};
  dns.dns_names = {name};
  email.emails = {name};
  ip.ips = {name};
  cn_only.common_name = name;
  CHECK(Who(*registry, uri) == "by-uri");
  CHECK(Who(*registry, dns) == "by-dns");
  CHECK(Who(*registry, email) == "by-email");
  CHECK(Who(*registry, ip) == "by-ip");
  CHECK(Who(*registry, cn_only) == "by-cn");
}

TEST_CASE("Callers: the CN counts only when the certificate has no SAN (RFC 6125 6.4.4)",
          "[callers]") {
  auto registry = Parse("ops admin cert-uri:spiffe://prod/ops\n"
                        "ops-cn admin cert-cn:spiffe://prod/ops\n");
  // The review's certificates: same CA, the right text in the wrong place.
  PeerCertificate dev_box;
  dev_box.dns_names = {"dev-box.example"};
  dev_box.common_name = "spiffe://prod/ops";
  CHECK(Who(*registry, dev_box) == "refused:unauthenticated");
  PeerCertificate as_email;
  as_email.emails = {"spiffe://prod/ops"};
  CHECK(Who(*registry, as_email) == "refused:unauthenticated");
  for (auto add_san : {+[](PeerCertificate& p) { p.uris = {"spiffe://other"}; },
                       +[](PeerCertificate& p) { p.dns_names = {"x.example"}; },
                       +[](PeerCertificate& p) { p.emails = {"a@b.example"}; },
                       +[](PeerCertificate& p) { p.ips = {"10.0.0.1"}; }}) {
    PeerCertificate peer;
    peer.common_name = "spiffe://prod/ops";
    CHECK(Who(*registry, peer) == "ops-cn");
    add_san(peer);
    CHECK(Who(*registry, peer) == "refused:unauthenticated");
  }
}

TEST_CASE("Callers: DNS identities compare case-insensitively, others exactly", "[callers]") {
  auto registry = Parse("gw resource cert-dns:Gateway.Prod.Example\n"
                        "svc resource cert-uri:spiffe://prod/Svc\n");
  PeerCertificate dns;
  dns.dns_names = {"gateway.prod.example"};
  CHECK(Who(*registry, dns) == "gw");
  PeerCertificate uri;
  uri.uris = {"spiffe://prod/svc"};
  CHECK(Who(*registry, uri) == "refused:unauthenticated");
}

TEST_CASE("Callers: a certificate naming two callers is refused, a revoked one reported",
          "[callers]") {
  auto registry = Parse("a admin cert-uri:spiffe://a\n"
                        "b resource cert-dns:b.example\n"
                        "gone admin cert-uri:spiffe://gone revoked\n");
  PeerCertificate both;
  both.uris = {"spiffe://a"};
  both.dns_names = {"b.example"};
  CHECK(Who(*registry, both) == "refused:unauthenticated");
  PeerCertificate gone;
  gone.uris = {"spiffe://gone"};
  CHECK(Who(*registry, gone) == "refused:caller_revoked");
}

TEST_CASE("Callers: an untyped cert: credential is refused at load", "[callers]") {
  std::string why = ParseError("ok admin cert-uri:spiffe://ok\ngw resource cert:spiffe://prod/gw\n");
  CHECK(why.find("callers:2") != std::string::npos);
  CHECK(why.find("ambiguous") != std::string::npos);
  CHECK(ParseError("gw resource cert-uri:\n").find("needs a name") != std::string::npos);
  CHECK(ParseError("gw resource cert-spiffe:x\n").find("credential must be") != std::string::npos);
}

TEST_CASE("Callers: an empty clients= is refused at load, never 'any client'", "[callers]") {
  const std::string key = CallerRegistry::KeyCredential("k");
  for (const std::string option : {"clients=", "clients=,", "clients=web,", "clients=,web"}) {
    INFO(option);
    std::string why = ParseError("ok admin " + CallerRegistry::KeyCredential("a") + "\n" +
                                 "web client " + key + " " + option + "\n");
    CHECK(why.find("callers:2") != std::string::npos);
    CHECK(why.find("clients=") != std::string::npos);
  }
  auto registry = Parse("web client " + key + " clients=web,mobile\n");
  absl::StatusOr<Caller> caller = registry->ByApiKey("k");
  REQUIRE(caller.ok());
  CHECK(caller->client_ids == std::vector<std::string>{"web", "mobile"});
  CHECK(caller->MayActFor("mobile"));
  CHECK_FALSE(caller->MayActFor("tv"));
}

TEST_CASE("Callers: '#' starts a comment only at a word's start", "[callers]") {
  auto registry = Parse("# a comment line\n"
                        "frag admin cert-uri:spiffe://prod/ops#blue   # the blue deployment\n");
  PeerCertificate peer;
  peer.uris = {"spiffe://prod/ops#blue"};
  CHECK(Who(*registry, peer) == "frag");
  peer.uris = {"spiffe://prod/ops"};
  CHECK(Who(*registry, peer) == "refused:unauthenticated");
  // A '#' glued to the key is part of the credential, so it no longer parses as one.
  ParseError("key admin " + CallerRegistry::KeyCredential("k") + "#x\n");
}

}  // namespace
}  // namespace ta::core

// ta-verifier-sidecar: the local verifier behind a loopback gRPC face (sidecar.h).
//   ta-verifier-sidecar --authority=HOST:PORT --api_key_file=resource.key
//       --issuer=https://auth.example --audience=api [--listen=127.0.0.1:50052]
//       [--tls_ca=ca.pem [--tls_cert=client.pem --tls_key=client.key]]
//       [--http_listen=127.0.0.1:8082 [--http_tls_cert=face.pem --http_tls_key=face.key]]
// The flags toward the authority (--tls, --tls_ca, --tls_cert, --tls_key, --tls_server_name)
// are tokenctl's: the same definitions and code (client/tls_flags.h).
// Stops on SIGINT or SIGTERM.
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/sidecar/sidecar.h"
#include "client/tls_flags.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50052", "host:port to serve on (keep it on loopback)");
ABSL_FLAG(std::string, http_listen, "",
          "host:port for RFC 7662 POST /oauth2/introspect (e.g. 127.0.0.1:8082); empty: none");
ABSL_FLAG(std::string, http_tls_cert, "",
          "PEM certificate chain of the HTTP face: serve https (with --http_tls_key)");
ABSL_FLAG(std::string, http_tls_key, "", "PEM private key of --http_tls_cert");
ABSL_FLAG(std::string, authority, "", "the token authority's host:port (required)");
ABSL_FLAG(std::string, api_key_file, "",
          "file holding an API key of a caller with role resource (WatchRevocations, GetJwks)");
ABSL_FLAG(std::string, issuer, "", "the tokens' iss, as the authority's --issuer (required)");
ABSL_FLAG(std::string, audience, "", "when set, a token must carry this aud to be active");
ABSL_FLAG(absl::Duration, max_staleness, absl::Seconds(1),
          "how old the last revocation bookmark may be before Introspect answers "
          "UNAVAILABLE revocations_stale and health turns NOT_SERVING");
ABSL_FLAG(absl::Duration, leeway, absl::Seconds(30), "clock skew allowed on exp, nbf and iat");

namespace {

absl::StatusOr<std::string> ReadFile(absl::string_view flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  if (!in || !(content << in.rdbuf())) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": cannot read ", path));
  }
  return content.str();
}

// The API key, the TLS files toward the authority and the HTTP face's certificate.
absl::Status LoadFiles(ta::client::SidecarOptions& options) {
  if (const std::string path = absl::GetFlag(FLAGS_api_key_file); !path.empty()) {
    absl::StatusOr<std::string> key = ReadFile("api_key_file", path);
    if (!key.ok()) return key.status();
    options.verifier.server.api_key = std::string(absl::StripAsciiWhitespace(*key));
  }
  if (absl::Status s = ta::client::ApplyTlsFlags(&options.verifier.server); !s.ok()) return s;
  const std::string cert = absl::GetFlag(FLAGS_http_tls_cert);
  const std::string key = absl::GetFlag(FLAGS_http_tls_key);
  if (cert.empty() != key.empty()) {
    return absl::InvalidArgumentError("--http_tls_cert and --http_tls_key go together");
  }
  if (cert.empty()) return absl::OkStatus();
  absl::StatusOr<std::string> cert_pem = ReadFile("http_tls_cert", cert);
  if (!cert_pem.ok()) return cert_pem.status();
  absl::StatusOr<std::string> key_pem = ReadFile("http_tls_key", key);
  if (!key_pem.ok()) return key_pem.status();
  options.http_tls_cert_pem = *std::move(cert_pem);
  options.http_tls_key_pem = *std::move(key_pem);
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Serves Introspect, IntrospectBatch and GetJwks of tokenauthority.v1.TokenAuthority on "
      "localhost from a local verifier that follows the authority's WatchRevocations stream.");
  absl::ParseCommandLine(argc, argv);

  // Signals are taken by sigwait below; blocked before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ta::client::SidecarOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.http_listen = absl::GetFlag(FLAGS_http_listen);
  options.verifier.server.target = absl::GetFlag(FLAGS_authority);
  options.verifier.issuer = absl::GetFlag(FLAGS_issuer);
  options.verifier.audience = absl::GetFlag(FLAGS_audience);
  options.verifier.max_staleness = absl::GetFlag(FLAGS_max_staleness);
  options.verifier.leeway = absl::GetFlag(FLAGS_leeway);
  if (options.verifier.server.target.empty()) {
    std::fprintf(stderr, "ta-verifier-sidecar: --authority: required\n");
    return 2;
  }
  if (absl::Status s = LoadFiles(options); !s.ok()) {
    std::fprintf(stderr, "ta-verifier-sidecar: %s\n", std::string(s.message()).c_str());
    return 2;
  }

  absl::StatusOr<std::unique_ptr<ta::client::VerifierSidecar>> sidecar =
      ta::client::VerifierSidecar::Start(std::move(options));
  if (!sidecar.ok()) {
    std::fprintf(stderr, "ta-verifier-sidecar: %s\n", sidecar.status().ToString().c_str());
    return 2;
  }
  std::printf("ta-verifier-sidecar listening on %s\n", (*sidecar)->address().c_str());
  if (!(*sidecar)->http_address().empty()) {
    std::printf("ta-verifier-sidecar http on %s\n", (*sidecar)->http_address().c_str());
  }
  std::fflush(stdout);
  int signal = 0;
  sigwait(&signals, &signal);
  (*sidecar)->Shutdown();
  return 0;
}

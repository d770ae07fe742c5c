// ta-verifier-sidecar: the local verifier behind a loopback gRPC face (sidecar.h).
//   ta-verifier-sidecar --authority=HOST:PORT --api_key_file=resource.key
//       --issuer=https://auth.example --audience=api [--listen=127.0.0.1:50052]
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
#include "absl/time/time.h"
#include "client/sidecar/sidecar.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50052", "host:port to serve on (keep it on loopback)");
ABSL_FLAG(std::string, http_listen, "",
          "host:port for RFC 7662 POST /oauth2/introspect (e.g. 127.0.0.1:8082); empty: none");
ABSL_FLAG(std::string, authority, "", "the token authority's host:port (required)");
ABSL_FLAG(std::string, api_key_file, "",
          "file holding an API key of a caller with role resource (WatchRevocations, GetJwks)");
ABSL_FLAG(std::string, issuer, "", "the tokens' iss, as the authority's --issuer (required)");
ABSL_FLAG(std::string, audience, "", "when set, a token must carry this aud to be active");
ABSL_FLAG(absl::Duration, max_staleness, absl::Seconds(1),
          "how old the last revocation bookmark may be before Introspect answers "
          "UNAVAILABLE revocations_stale and health turns NOT_SERVING");
ABSL_FLAG(absl::Duration, leeway, absl::Seconds(30), "clock skew allowed on exp, nbf and iat");

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
  if (const std::string path = absl::GetFlag(FLAGS_api_key_file); !path.empty()) {
    std::ifstream in(path);
    if (!in) {
      std::fprintf(stderr, "ta-verifier-sidecar: --api_key_file: cannot read %s\n", path.c_str());
      return 2;
    }
    std::stringstream key;
    key << in.rdbuf();
    options.verifier.server.api_key = std::string(absl::StripAsciiWhitespace(key.str()));
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

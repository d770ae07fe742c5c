#include "client/tls_flags.h"

#include <string>

#include "absl/flags/flag.h"

ABSL_FLAG(bool, tls, false,
          "reach the server over TLS with the system's root CAs (implied by --tls_ca)");
ABSL_FLAG(std::string, tls_ca, "", "PEM file of the CA that signs the server's certificate");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate chain for mTLS (with --tls_key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_server_name, "",
          "the name the server's certificate must carry (default: the host of the address "
          "dialled)");

namespace ta::client {

TlsFiles TlsFilesFromFlags() {
  TlsFiles tls;
  tls.tls = absl::GetFlag(FLAGS_tls);
  tls.ca = absl::GetFlag(FLAGS_tls_ca);
  tls.cert = absl::GetFlag(FLAGS_tls_cert);
  tls.key = absl::GetFlag(FLAGS_tls_key);
  tls.server_name = absl::GetFlag(FLAGS_tls_server_name);
  return tls;
}

absl::Status ApplyTlsFlags(ClientOptions* options) {
  return ApplyTlsFiles(TlsFilesFromFlags(), options);
}

}  // namespace ta::client

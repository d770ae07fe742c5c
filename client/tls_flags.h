// The command-line flags toward a token authority over TLS, defined once for the tools that
// dial it (tokenctl and ta-verifier-sidecar: the same names, help and meaning):
//   --tls              TLS with the system's root CAs (implied by --tls_ca)
//   --tls_ca           PEM file of the CA that signs the server's certificate
//   --tls_cert         PEM client certificate chain for mTLS (with --tls_key)
//   --tls_key          PEM private key of --tls_cert
//   --tls_server_name  the name the server's certificate must carry
// Flags belong to binaries (Abseil TotW #45): only a tool's main links ta_tls_flags, and reads
// them through this unit after absl::ParseCommandLine. Thread-safe after parsing.
#ifndef TA_CLIENT_TLS_FLAGS_H_
#define TA_CLIENT_TLS_FLAGS_H_

#include "absl/status/status.h"
#include "client/client.h"

namespace ta::client {

// The flags' values.
TlsFiles TlsFilesFromFlags();

// ApplyTlsFiles(TlsFilesFromFlags(), options): the TLS fields of `options` from the flags,
// the PEM files read; INVALID_ARGUMENT naming the flag (never a file's content).
absl::Status ApplyTlsFlags(ClientOptions* options);

}  // namespace ta::client

#endif  // TA_CLIENT_TLS_FLAGS_H_

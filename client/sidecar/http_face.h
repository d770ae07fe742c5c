// A minimal HTTP/1.1 listener for the sidecar (Boost.Beast, blocking, a thread per connection,
// at most kMaxConnections at once, keep-alive, 64 KiB bodies, 10 s idle reads), plain or TLS
// (TLS 1.2+, a certificate and key in PEM: some gateways, mod_auth_openidc among them, call
// only https introspection endpoints). For loopback use by a gateway or resource server; the
// authority's HTTP face is server/http.
#ifndef TA_CLIENT_SIDECAR_HTTP_FACE_H_
#define TA_CLIENT_SIDECAR_HTTP_FACE_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace ta::client {

struct HttpExchange {
  // Request.
  std::string method, path, content_type, body;
  // Response.
  int status = 200;
  std::string response_type = "application/json";
  std::string response_body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// The face's certificate chain and private key (PEM). Both empty (the default): plain HTTP.
struct HttpTls {
  std::string cert_pem;
  std::string key_pem;
};

class HttpFace {
 public:
  using Handler = std::function<void(HttpExchange&)>;
  static constexpr int kMaxConnections = 32;

  // Listens on `listen` ("host:port", port 0 picks one) and calls `handler` for each request
  // (from connection threads, concurrently); over TLS when `tls` has a certificate.
  static absl::StatusOr<std::unique_ptr<HttpFace>> Start(const std::string& listen, Handler handler,
                                                         const HttpTls& tls = {});
  ~HttpFace();  // closes the listener and every connection, joins their threads
  HttpFace(const HttpFace&) = delete;
  HttpFace& operator=(const HttpFace&) = delete;
  const std::string& address() const;

  class Impl;

 private:
  explicit HttpFace(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ta::client

#endif  // TA_CLIENT_SIDECAR_HTTP_FACE_H_

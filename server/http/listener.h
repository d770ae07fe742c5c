// Listener: the HTTP/1.1 server of the HTTP face, on Boost.Beast (Boost 1.81, Asio), plain or
// TLS (OpenSSL, the same PEM files as gRPC). The one file that includes Beast is listener.cc.
//
// Why Beast (README "Dependencies", BENCHMARKS.md "HTTP library"): asynchronous, so a slow or
// idle connection holds no thread; every limit is ours to set, including a deadline for a
// whole request (slowloris), which neither cpp-httplib 0.11 nor libmicrohttpd 0.9.75 gives.
//
// Limits (ListenerOptions): header and body size (431 / 413, then close), connections (past
// the limit a new connection is closed at once), a deadline for each request from its first
// byte to its last, an idle timeout between keep-alive requests, a write deadline. Malformed
// requests get 400 and the connection is closed. Pipelined requests are answered in order.
//
// Threads: `threads` event loops, each serving its own connections. The handler is called on
// a loop thread and must not block; it may answer later from any thread.
//
// Lifetime: Stop() (or the destructor) stops accepting, lets answers being written finish for
// up to `drain`, closes every connection and joins the threads. A Respond called after the
// listener is destroyed is undefined behaviour: stop whatever can still answer (worker pools)
// before destroying the listener. Thread-safe.
#ifndef TA_SERVER_HTTP_LISTENER_H_
#define TA_SERVER_HTTP_LISTENER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/http/message.h"

namespace ta::http {

struct ListenerOptions {
  // Host (IP literal, "[v6]" or a name) and port to bind; port 0 picks a free one.
  std::string host = "127.0.0.1";
  int port = 0;
  // TLS: PEM certificate chain and key, both or neither. tls_client_ca: require (or, with
  // tls_allow_no_client_cert, request) client certificates signed by this CA.
  std::string tls_cert, tls_key, tls_client_ca;
  bool tls_allow_no_client_cert = false;
  // Event-loop threads. Default 2.
  int threads = 2;
  // Open connections at most; more are closed at once. Default 1024.
  int max_connections = 1024;
  // Request line + headers, and body, in bytes. Defaults 8 KiB and 64 KiB (the gRPC face's
  // message limit).
  size_t header_limit = 8 * 1024;
  size_t body_limit = 64 * 1024;
  // From a request's first byte to its last (a slowloris client is cut off here). Default 10 s.
  absl::Duration request_timeout = absl::Seconds(10);
  // Wait for the next request on a kept-alive connection (and for a TLS handshake).
  // Default 60 s.
  absl::Duration idle_timeout = absl::Seconds(60);
  // Writing one answer. Default 10 s.
  absl::Duration write_timeout = absl::Seconds(10);
};

class Listener {
 public:
  // Binds (and loads the TLS files); serves nothing until Serve().
  static absl::StatusOr<std::unique_ptr<Listener>> Bind(const ListenerOptions& options);
  virtual ~Listener() = default;

  // Starts accepting and the event loops. `handler` is borrowed and must outlive the
  // listener. Once.
  virtual void Serve(HttpHandler* handler) = 0;

  // The bound port (the chosen one when port 0 was asked for).
  virtual int port() const = 0;
  // Open connections now.
  virtual int connections() const = 0;
  // See the header comment. Idempotent.
  virtual void Stop(absl::Duration drain = absl::Seconds(1)) = 0;
};

}  // namespace ta::http

#endif  // TA_SERVER_HTTP_LISTENER_H_

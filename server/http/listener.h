// Listener: the HTTP/1.1 server of the HTTP face, on Boost.Beast (Boost 1.81, Asio), plain or
// TLS (OpenSSL, the same PEM files as gRPC). The one file that includes Beast is listener.cc.
//
// Why Beast (README "Dependencies", BENCHMARKS.md "HTTP library"): asynchronous, so a slow or
// idle connection holds no thread; every limit is ours to set, including a deadline for a
// whole request (slowloris), which neither cpp-httplib 0.11 nor libmicrohttpd 0.9.75 gives.
//
// Limits (ListenerOptions; issue 22): header and body size (431 / 413, then close), and the
// read buffer under them (request_reader.h: a chunk line, chunk extensions and trailers are
// bounded too, 400); a deadline for each request from its first byte to its last, and for a
// new connection's first request from the accept (a connection that never sends a byte is
// gone after request_timeout, not idle_timeout); an idle timeout only between keep-alive
// requests; a write deadline. Connections: at most max_connections, at most
// max_connections_per_peer from one address (past it a new one is closed at once); when all
// places are taken, the connection silent the longest (waiting for a request's first byte)
// is closed to make room, and only when none is silent is the new one refused. Malformed
// requests get 400 and the connection is closed. Pipelined requests are answered in order.
//
// Threads: `threads` event loops, each serving its own connections. The handler is called on
// a loop thread and must never wait (on a store, a lock held across I/O, a follower): what
// may wait goes to a worker pool and answers later, from any thread.
// Memory per connection: RequestReader::MemoryBound (about 2 * header_limit + 2 * body_limit)
// plus the answer being written.
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
  // Open connections at most; when full, the longest-silent one makes room, else a new one
  // is closed at once. Default 1024.
  int max_connections = 1024;
  // Open connections from one peer address at most; more are closed at once. 0: no cap.
  // Default 256 (a quarter of the default budget: one address cannot take it all; raise it
  // when one proxy carries every client).
  int max_connections_per_peer = 256;
  // Request line + headers, and body, in bytes. Defaults 8 KiB and 64 KiB (the gRPC face's
  // message limit). header_limit also bounds the read buffer (a chunk line with its
  // extensions, the trailers, pipelined bytes), and a request on the wire is at most
  // header_limit + 2 * body_limit bytes with its chunk framing (request_reader.h).
  size_t header_limit = 8 * 1024;
  size_t body_limit = 64 * 1024;
  // From a request's first byte to its last (a slowloris client is cut off here), and from
  // the accept (and TLS handshake) to a new connection's first byte. Default 10 s.
  absl::Duration request_timeout = absl::Seconds(10);
  // Wait for the next request on a kept-alive connection, once a request was answered.
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

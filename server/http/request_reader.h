// RequestReader: turns the bytes of one connection into HttpRequests, one after the other
// (keep-alive, pipelining), within hard memory limits. The listener feeds it what the socket
// gives; the fuzz target (tests/fuzz/http_request_fuzz.cc) feeds it anything. It holds the
// Boost.Beast parser; its header shows no Beast type.
//
// Limits (issue 22 item 1). Beast 1.81 bounds the header (header_limit) and the body
// (body_limit), but not what its parser waits on in between: a chunk-size line with its
// extensions, and the trailers, stay in the read buffer until their CRLF comes, and the
// buffer grows without bound. So the buffer itself is bounded here:
//   - the read buffer holds at most `header_limit` bytes: request line and headers (431
//     header_too_large), a chunk line with its extensions, or the trailers (400 bad_request)
//     never need more, and body bytes are taken out of it as they come;
//   - the whole request on the wire (chunk framing included) is at most header_limit +
//     2 * body_limit bytes (413 body_too_large): chunk lines cannot stream for ever;
//   - the body, at most body_limit (413). Pipelined bytes wait in the same bounded buffer.
// Past a limit the reader answers an error status once; the connection must then be closed.
// Memory per connection: about 2 * header_limit + body_limit (see MemoryBytes()).
//
// Not thread-safe: one reader per connection, used from one thread at a time.
#ifndef TA_SERVER_HTTP_REQUEST_READER_H_
#define TA_SERVER_HTTP_REQUEST_READER_H_

#include <cstddef>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "server/http/message.h"

namespace ta::http {

struct RequestLimits {
  // Request line + headers; also the bound of the read buffer (a chunk line, the trailers,
  // pipelined bytes). Default 8 KiB; at least 1 KiB is used.
  size_t header_limit = size_t{8} << 10;
  // Body after de-chunking. Default 64 KiB.
  size_t body_limit = size_t{64} << 10;
};

class RequestReader {
 public:
  enum class Progress {
    kNeedMore,  // give it more bytes (Space(), then Received())
    kComplete,  // a request is ready: Take() it
  };

  explicit RequestReader(const RequestLimits& limits);
  ~RequestReader();
  RequestReader(const RequestReader&) = delete;
  RequestReader& operator=(const RequestReader&) = delete;

  // Where the next bytes from the peer go; never empty while Progress is kNeedMore.
  absl::Span<char> Space();
  // `n` bytes were written at the start of Space(): parse them (and whatever was buffered).
  // Errors carry the reason the listener answers with: "bad_request", "header_too_large",
  // "body_too_large" (errors.h). After an error the reader is spent.
  absl::StatusOr<Progress> Received(size_t n);
  // Parses bytes already buffered (the next pipelined request) without new ones.
  absl::StatusOr<Progress> Parse();

  // Whether any byte of the current request has arrived (a connection that has sent
  // nothing is "silent").
  bool started() const { return started_; }
  // The header is complete and asks for "100-continue" before a body that has not come yet;
  // true once per request (the caller answers 100 Continue).
  bool TakeContinueDue();

  // After kComplete: the request, and whether the connection stays open after the answer
  // and whether it was a HEAD. Starts the next request (pipelined bytes stay buffered).
  struct Taken {
    HttpRequest request;
    bool keep_alive = false;
    bool head = false;
  };
  Taken Take();

  // Bytes this reader holds now (buffer capacity, header fields, body), for the fuzz target's
  // memory bound.
  size_t MemoryBytes() const;
  // The bound MemoryBytes() stays within for `limits`.
  static size_t MemoryBound(const RequestLimits& limits);

 private:
  struct Impl;
  absl::StatusOr<Progress> Fail(absl::string_view reason, absl::string_view what);
  void StartRequest();

  const RequestLimits limits_;
  std::unique_ptr<Impl> impl_;
  size_t wire_bytes_ = 0;  // of the current request, consumed by the parser
  bool started_ = false;
  bool continue_checked_ = false;
  bool failed_ = false;
};

}  // namespace ta::http

#endif  // TA_SERVER_HTTP_REQUEST_READER_H_

// The HTTP face's own request and response values, and the handler interface the listener
// calls. Plain structs: handlers and their tests never see the HTTP library (listener.cc is
// the only file that includes Boost.Beast).
#ifndef TA_SERVER_HTTP_MESSAGE_H_
#define TA_SERVER_HTTP_MESSAGE_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace ta::http {

// A complete, size-checked request (the listener enforces the limits before a handler runs).
struct HttpRequest {
  std::string method{};  // "GET", "POST", ... (HEAD arrives as "HEAD")
  std::string path{};    // the target up to '?', not decoded
  std::string query{};   // after '?', may be empty
  std::string body{};
  // The only headers handlers read. Values as received, "" when absent; a header sent more
  // than once arrives joined with ", " (RFC 9110 §5.3).
  std::string content_type{};
  std::string authorization{};  // never logged or echoed
  std::string if_none_match{};
  std::string dpop{};  // RFC 9449 §4.1 DPoP header; never logged or echoed
  // Set by the listener: the peer's address (IP literal, no port), the key of per-peer limits.
  std::string peer{};
};

struct HttpResponse {
  int status = 200;
  std::string content_type;  // "" only with an empty body
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

// Called once per request; the answer may be given later and from any thread (e.g. a worker
// pool for a synced write), exactly once.
using Respond = std::function<void(HttpResponse)>;

class HttpHandler {
 public:
  virtual ~HttpHandler() = default;
  virtual void Handle(HttpRequest request, Respond respond) = 0;
  // The answer to a request the listener could not accept (malformed, over a limit); `status`
  // says why (reasons: "bad_request", "header_too_large", "body_too_large"). The connection is
  // closed after it.
  virtual HttpResponse Refused(const absl::Status& status) = 0;
};

}  // namespace ta::http

#endif  // TA_SERVER_HTTP_MESSAGE_H_

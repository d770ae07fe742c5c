// A deliberately small blocking HTTP/1.1 client for the HTTP face's tests, over POSIX
// sockets, so a test can send exactly the bytes it means (malformed ones included).
// Not thread-safe; one object per connection.
#ifndef TA_TESTS_HTTP_HTTP_CLIENT_H_
#define TA_TESTS_HTTP_HTTP_CLIENT_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ta::testing {

struct HttpAnswer {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class HttpConnection {
 public:
  // Connects to "host:port" (IPv4 literal), from `source_ip` when not empty (any address
  // of 127/8 is local: a test can be several peers).
  static absl::StatusOr<HttpConnection> Open(const std::string& address,
                                             const std::string& source_ip = "");
  HttpConnection(HttpConnection&& other) noexcept;
  HttpConnection& operator=(HttpConnection&&) = delete;
  ~HttpConnection();

  absl::Status Send(const std::string& bytes);
  // Reads one answer (status line, headers, Content-Length body; no body for HEAD/304).
  // DEADLINE_EXCEEDED after `timeout`, UNAVAILABLE ("closed") when the server closes first.
  absl::StatusOr<HttpAnswer> Read(absl::Duration timeout = absl::Seconds(10), bool head = false);
  // Whether the server has closed the connection (EOF or reset) within `timeout`.
  bool ClosedWithin(absl::Duration timeout);

 private:
  explicit HttpConnection(int fd) : fd_(fd) {}
  absl::StatusOr<size_t> Fill(absl::Time deadline);  // more bytes into buffer_

  int fd_ = -1;
  std::string buffer_;
};

// One request on a fresh connection: METHOD PATH, extra header lines ("Name: value\r\n"...),
// and a body (Content-Length added when non-empty).
absl::StatusOr<HttpAnswer> Fetch(const std::string& address, const std::string& method,
                                 const std::string& path, const std::string& headers = "",
                                 const std::string& body = "", const std::string& source_ip = "");

}  // namespace ta::testing

#endif  // TA_TESTS_HTTP_HTTP_CLIENT_H_

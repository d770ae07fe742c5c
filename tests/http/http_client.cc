#include "tests/http/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace ta::testing {

absl::StatusOr<HttpConnection> HttpConnection::Open(const std::string& address,
                                                    const std::string& source_ip) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError("address must be host:port");
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError("host must be an IPv4 literal");
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError("socket failed");
  if (!source_ip.empty()) {
    sockaddr_in source{};
    source.sin_family = AF_INET;
    if (inet_pton(AF_INET, source_ip.c_str(), &source.sin_addr) != 1 ||
        bind(fd, reinterpret_cast<sockaddr*>(&source), sizeof(source)) != 0) {
      close(fd);
      return absl::InvalidArgumentError(absl::StrCat("cannot bind to ", source_ip));
    }
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return absl::UnavailableError(absl::StrCat("connect failed: errno ", errno));
  }
  return HttpConnection(fd);
}

HttpConnection::HttpConnection(HttpConnection&& other) noexcept
    : fd_(other.fd_), buffer_(std::move(other.buffer_)) {
  other.fd_ = -1;
}

HttpConnection::~HttpConnection() {
  if (fd_ >= 0) close(fd_);
}

absl::Status HttpConnection::Send(const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return absl::UnavailableError("send failed (closed)");
    sent += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> HttpConnection::Fill(absl::Time deadline) {
  pollfd p{fd_, POLLIN, 0};
  const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  if (ms <= 0 || poll(&p, 1, static_cast<int>(ms)) == 0) {
    return absl::DeadlineExceededError("no answer in time");
  }
  char chunk[16384];
  const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
  if (n <= 0) return absl::UnavailableError("closed");
  buffer_.append(chunk, static_cast<size_t>(n));
  return static_cast<size_t>(n);
}

absl::StatusOr<HttpAnswer> HttpConnection::Read(absl::Duration timeout, bool head) {
  const absl::Time deadline = absl::Now() + timeout;
  size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    absl::StatusOr<size_t> n = Fill(deadline);
    if (!n.ok()) return n.status();
  }
  HttpAnswer answer;
  std::vector<std::string> lines = absl::StrSplit(buffer_.substr(0, end), "\r\n");
  std::vector<std::string> status_line = absl::StrSplit(lines[0], absl::MaxSplits(' ', 2));
  if (status_line.size() < 2 || !absl::SimpleAtoi(status_line[1], &answer.status)) {
    return absl::InternalError("malformed status line");
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    answer.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
        std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
  }
  buffer_.erase(0, end + 4);
  size_t length = 0;
  if (!head && answer.status != 304 && answer.status != 204) {
    absl::SimpleAtoi(answer.Header("content-length"), &length);
  }
  while (buffer_.size() < length) {
    absl::StatusOr<size_t> n = Fill(deadline);
    if (!n.ok()) return n.status();
  }
  answer.body = buffer_.substr(0, length);
  buffer_.erase(0, length);
  return answer;
}

bool HttpConnection::ClosedWithin(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    absl::StatusOr<size_t> n = Fill(deadline);
    if (absl::IsDeadlineExceeded(n.status())) return false;
    if (!n.ok()) return true;
    buffer_.clear();  // an answer before the close is fine
  }
}

absl::StatusOr<HttpAnswer> Fetch(const std::string& address, const std::string& method,
                                 const std::string& path, const std::string& headers,
                                 const std::string& body, const std::string& source_ip) {
  absl::StatusOr<HttpConnection> c = HttpConnection::Open(address, source_ip);
  if (!c.ok()) return c.status();
  std::string request =
      absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: ", address, "\r\n", headers);
  if (!body.empty() || method == "POST")
    absl::StrAppend(&request, "Content-Length: ", body.size(), "\r\n");
  absl::StrAppend(&request, "Connection: close\r\n\r\n", body);
  if (absl::Status s = c->Send(request); !s.ok()) return s;
  return c->Read(absl::Seconds(10), method == "HEAD");
}

}  // namespace ta::testing

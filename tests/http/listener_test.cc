// The HTTP listener on its own (a handler that answers "ok"), over real loopback sockets:
// the limits of issue 22 — a request's framing cannot grow memory (item 1), and silent
// connections cannot lock other clients out (item 6). Several peers are simulated by binding
// client sockets to 127.0.0.2, 127.0.0.3, ... (all of 127/8 is local).
#include "server/http/listener.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/http/errors.h"
#include "tests/http/http_client.h"

namespace ta::testing {
namespace {

using http::HttpHandler;
using http::HttpRequest;
using http::HttpResponse;
using http::Listener;
using http::ListenerOptions;
using http::Respond;

class OkHandler final : public HttpHandler {
 public:
  void Handle(HttpRequest request, Respond respond) override {
    respond(HttpResponse{200, "text/plain", "ok:" + request.body, {}});
  }
  HttpResponse Refused(const absl::Status& status) override { return http::ErrorResponse(status); }
};

struct Served {
  OkHandler handler;
  std::unique_ptr<Listener> listener;
  explicit Served(const ListenerOptions& options) {
    absl::StatusOr<std::unique_ptr<Listener>> bound = Listener::Bind(options);
    REQUIRE(bound.ok());
    listener = *std::move(bound);
    listener->Serve(&handler);
  }
  std::string address() const { return absl::StrCat("127.0.0.1:", listener->port()); }
};

constexpr char kChunkedPost[] = "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

HttpConnection Connect(const Served& s, const std::string& source_ip = "") {
  absl::StatusOr<HttpConnection> c = HttpConnection::Open(s.address(), source_ip);
  INFO(c.status().ToString());
  REQUIRE(c.ok());
  return *std::move(c);
}

// Sends `bytes` and expects the answer `status`, then the close, well before the request
// deadline (the bytes are exactly what fills the read buffer, so none is left unread and the
// close is a clean FIN after the answer).
void ExpectRefusedAtOnce(const Served& s, const std::string& bytes, int status) {
  HttpConnection c = Connect(s);
  REQUIRE(c.Send(bytes).ok());
  const absl::Time sent = absl::Now();
  absl::StatusOr<HttpAnswer> a = c.Read(absl::Seconds(2));
  INFO(a.status().ToString());
  REQUIRE(a.ok());
  CHECK(a->status == status);
  CHECK(c.ClosedWithin(absl::Seconds(1)));
  CHECK(absl::Now() - sent < absl::Seconds(2));
}

TEST_CASE("Listener: chunk lines, chunk extensions and trailers are bounded (issue 22 #1)",
          "[http][listener]") {
  ListenerOptions o;
  o.request_timeout = absl::Seconds(5);  // the old code answered nothing before it
  Served s(o);
  const size_t buffer = o.header_limit;

  SECTION("an endless chunk extension: 400 at the buffer's size, not at the deadline") {
    ExpectRefusedAtOnce(s, kChunkedPost + ("1;a=" + std::string(buffer - 4, 'b')), 400);
  }
  SECTION("an endless trailer: 400") {
    ExpectRefusedAtOnce(s, kChunkedPost + ("0\r\nX-T: " + std::string(buffer - 8, 'y')), 400);
  }
  SECTION("a flood of chunk extension: the connection is gone long before 64 MiB are in") {
    HttpConnection c = Connect(s);
    REQUIRE(c.Send(std::string(kChunkedPost) + "1;a=").ok());
    const std::string piece(64 * 1024, 'b');
    size_t sent = 0;
    while (sent < (64u << 20) && c.Send(piece).ok()) sent += piece.size();
    INFO("sent " << sent << " bytes before the server closed");
    CHECK(sent < (16u << 20));  // what the socket buffers can hold, not what the server read
    CHECK(c.ClosedWithin(absl::Seconds(1)));
  }
  SECTION("endless tiny chunks: 413 once the request passes its wire bound") {
    HttpConnection c = Connect(s);
    REQUIRE(c.Send(kChunkedPost).ok());
    std::string chunks;
    for (int i = 0; i < 1000; ++i) chunks += "1;pad=" + std::string(100, 'p') + "\r\na\r\n";
    bool open = true;
    for (int i = 0; i < 10 && open; ++i) open = c.Send(chunks).ok();
    absl::StatusOr<HttpAnswer> a = c.Read(absl::Seconds(2));
    if (a.ok()) CHECK(a->status == 413);  // else reset: the answer was lost to unread bytes
    CHECK(c.ClosedWithin(absl::Seconds(1)));
  }
  SECTION("a legitimate chunked request with extensions and trailers is served") {
    HttpConnection c = Connect(s);
    REQUIRE(c.Send(std::string(kChunkedPost) +
                   "3;ext=\"a b\"\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n")
                .ok());
    absl::StatusOr<HttpAnswer> a = c.Read(absl::Seconds(2));
    REQUIRE(a.ok());
    CHECK(a->status == 200);
    CHECK(a->body == "ok:abcde");
  }
  SECTION("pipelined requests are answered in order from the bounded buffer") {
    HttpConnection c = Connect(s);
    std::string requests;
    for (int i = 0; i < 20; ++i) {
      requests += absl::StrCat("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n",
                               i < 10 ? "0" : "", i);
    }
    REQUIRE(c.Send(requests).ok());
    for (int i = 0; i < 20; ++i) {
      absl::StatusOr<HttpAnswer> a = c.Read(absl::Seconds(2));
      REQUIRE(a.ok());
      CHECK(a->body == absl::StrCat("ok:", i < 10 ? "0" : "", i));
    }
  }
}

TEST_CASE(
    "Listener: a connection that sends nothing gets the request deadline, not the idle "
    "timeout (issue 22 #6)",
    "[http][listener]") {
  ListenerOptions o;
  o.request_timeout = absl::Milliseconds(500);
  o.idle_timeout = absl::Seconds(60);
  Served s(o);
  HttpConnection silent = Connect(s);
  CHECK(silent.ClosedWithin(absl::Seconds(3)));
  // Once a request was answered, a kept-alive connection may idle past the request deadline.
  HttpConnection kept = Connect(s);
  REQUIRE(kept.Send("GET /x HTTP/1.1\r\nHost: x\r\n\r\n").ok());
  REQUIRE(kept.Read(absl::Seconds(2)).ok());
  CHECK_FALSE(kept.ClosedWithin(absl::Seconds(1)));
  REQUIRE(kept.Send("GET /x HTTP/1.1\r\nHost: x\r\n\r\n").ok());
  absl::StatusOr<HttpAnswer> again = kept.Read(absl::Seconds(2));
  REQUIRE(again.ok());
  CHECK(again->status == 200);
}

TEST_CASE("Listener: one peer's silent connections lock nobody out (issue 22 #6)",
          "[http][listener]") {
  ListenerOptions o;
  o.max_connections = 16;
  o.max_connections_per_peer = 8;
  o.request_timeout = absl::Seconds(10);  // the silent ones stay for the whole test
  Served s(o);
  auto open_silent = [&](const std::string& source, int n) {
    std::vector<HttpConnection> out;
    for (int i = 0; i < n; ++i) out.push_back(Connect(s, source));
    return out;
  };
  auto count_closed = [](std::vector<HttpConnection>& connections, absl::Duration within) {
    int closed = 0;
    for (HttpConnection& c : connections) closed += c.ClosedWithin(within) ? 1 : 0;
    return closed;
  };

  // One address: only its share of the budget; the rest is closed at once.
  std::vector<HttpConnection> first = open_silent("127.0.0.2", 16);
  CHECK(count_closed(first, absl::Milliseconds(100)) == 8);
  // A second address fills the budget.
  std::vector<HttpConnection> second = open_silent("127.0.0.3", 8);
  CHECK(count_closed(second, absl::Milliseconds(100)) == 0);
  CHECK(s.listener->connections() == 16);

  // Full of silent connections: a client with a request (a health probe) still gets in; the
  // connection silent the longest (the first address's oldest) makes room. The probes stay
  // connected (keep-alive), so each one needs a place of its own.
  std::vector<HttpConnection> probes;
  for (const char* probe : {"127.0.0.1", "127.0.0.4", "127.0.0.5"}) {
    INFO(probe);
    probes.push_back(Connect(s, probe));
    REQUIRE(probes.back().Send("GET /healthz/live HTTP/1.1\r\nHost: x\r\n\r\n").ok());
    absl::StatusOr<HttpAnswer> a = probes.back().Read(absl::Seconds(2));
    INFO(a.status().ToString());
    REQUIRE(a.ok());
    CHECK(a->status == 200);
  }
  CHECK(count_closed(first, absl::Milliseconds(200)) == 8 + 3);
  CHECK(count_closed(second, absl::Milliseconds(100)) == 0);
  CHECK(s.listener->connections() <= 16);
}

}  // namespace
}  // namespace ta::testing

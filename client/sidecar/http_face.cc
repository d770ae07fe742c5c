#include "client/sidecar/http_face.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <list>
#include <mutex>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/error.h"

namespace ta::client {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

constexpr size_t kMaxBody = 64 * 1024;
constexpr size_t kMaxHeader = 16 * 1024;
constexpr int kIdleSeconds = 10;

struct Connection {
  explicit Connection(tcp::socket s) : socket(std::move(s)) {}
  tcp::socket socket;
  std::thread thread;
  std::atomic<bool> done{false};
};

}  // namespace

class HttpFace::Impl {
 public:
  explicit Impl(Handler handler) : handler_(std::move(handler)), acceptor_(io_) {}

  // Loads the certificate and key; until then (or when both are empty) the face is plain.
  absl::Status UseTls(const HttpTls& tls) {
    if (tls.cert_pem.empty() && tls.key_pem.empty()) return absl::OkStatus();
    auto context = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    boost::system::error_code ec;
    context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                             asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                             asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use,
                         ec);
    if (!ec) context->use_certificate_chain(asio::buffer(tls.cert_pem), ec);
    if (!ec) context->use_private_key(asio::buffer(tls.key_pem), asio::ssl::context::pem, ec);
    if (ec) {
      return Error(absl::StatusCode::kInvalidArgument, "invalid_argument:http_tls",
                   absl::StrCat("http_tls: cannot use the certificate and key: ", ec.message()));
    }
    tls_ = std::move(context);
    return absl::OkStatus();
  }

  absl::Status Listen(const std::string& listen) {
    const size_t colon = listen.rfind(':');
    if (colon == std::string::npos) {
      return Error(absl::StatusCode::kInvalidArgument, "invalid_argument:http_listen",
                   "http_listen: expected host:port");
    }
    boost::system::error_code ec;
    const asio::ip::address host = asio::ip::make_address(listen.substr(0, colon), ec);
    int port = 0;
    if (ec || !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 || port > 65535) {
      return Error(absl::StatusCode::kInvalidArgument, "invalid_argument:http_listen",
                   "http_listen: expected an IP address and a port");
    }
    const tcp::endpoint endpoint(host, static_cast<unsigned short>(port));
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Error(absl::StatusCode::kUnavailable, "http_listen_failed",
                   absl::StrCat("http_listen: cannot listen on ", listen, ": ", ec.message()));
    }
    address_ = absl::StrCat(listen.substr(0, colon), ":", acceptor_.local_endpoint().port());
    accept_thread_ = std::thread([this] { Accept(); });
    return absl::OkStatus();
  }

  ~Impl() {
    stopping_ = true;
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);  // wakes the blocking accept
    if (accept_thread_.joinable()) accept_thread_.join();
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& c : connections_) ::shutdown(c->socket.native_handle(), SHUT_RDWR);
    for (auto& c : connections_) c->thread.join();
  }

  const std::string& address() const { return address_; }

 private:
  void Accept() {
    while (!stopping_) {
      boost::system::error_code ec;
      tcp::socket socket(io_);
      acceptor_.accept(socket, ec);
      if (stopping_) return;
      if (ec) continue;
      std::lock_guard<std::mutex> lock(mu_);
      Reap();
      if (connections_.size() >= static_cast<size_t>(kMaxConnections)) {
        socket.close(ec);  // over the cap: the client reconnects
        continue;
      }
      timeval idle{kIdleSeconds, 0};
      ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &idle, sizeof(idle));
      ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &idle, sizeof(idle));
      auto conn = std::make_unique<Connection>(std::move(socket));
      Connection* raw = conn.get();
      conn->thread = std::thread([this, raw] { Serve(*raw); });
      connections_.push_back(std::move(conn));
    }
  }

  // Joins finished connections. Holds mu_.
  void Reap() {
    for (auto it = connections_.begin(); it != connections_.end();) {
      if ((*it)->done) {
        (*it)->thread.join();
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void Serve(Connection& conn) {
    boost::system::error_code ec;
    if (tls_ != nullptr) {
      asio::ssl::stream<tcp::socket&> stream(conn.socket, *tls_);
      stream.handshake(asio::ssl::stream_base::server, ec);
      if (!ec) Exchange(stream);
      stream.shutdown(ec);  // close_notify; a peer gone already is fine
    } else {
      Exchange(conn.socket);
    }
    conn.socket.shutdown(tcp::socket::shutdown_both, ec);
    conn.done = true;
  }

  // Requests and responses on one connection until it closes, idles out or fails.
  template <typename Stream>
  void Exchange(Stream& stream) {
    // Capped: Beast keeps a chunk line (extensions included) and trailers in this buffer,
    // which neither parser limit covers (issue 22 #1 on the server's face); an endless one
    // fills the cap and the read fails (buffer_overflow), closing the connection.
    boost::beast::flat_buffer buffer(kMaxHeader + kMaxBody);
    while (!stopping_) {
      boost::system::error_code ec;
      http::request_parser<http::string_body> parser;
      parser.body_limit(kMaxBody);
      parser.header_limit(kMaxHeader);
      http::read(stream, buffer, parser, ec);
      if (ec == http::error::body_limit || ec == http::error::header_limit) {
        http::response<http::string_body> tooBig{http::status::payload_too_large, 11};
        tooBig.set(http::field::content_type, "application/json");
        tooBig.body() = R"({"error":"invalid_request","error_description":"body_too_large"})";
        tooBig.keep_alive(false);
        tooBig.prepare_payload();
        http::write(stream, tooBig, ec);
        break;
      }
      if (ec) break;  // closed, idle past the timeout, or not HTTP
      const http::request<http::string_body>& req = parser.get();
      HttpExchange ex;
      ex.method = std::string(req.method_string());
      ex.path = std::string(req.target());
      if (const size_t q = ex.path.find('?'); q != std::string::npos) ex.path.resize(q);
      ex.content_type = std::string(req[http::field::content_type]);
      ex.body = req.body();
      handler_(ex);
      http::response<http::string_body> res{static_cast<http::status>(ex.status), req.version()};
      res.set(http::field::content_type, ex.response_type);
      for (const auto& [name, value] : ex.headers) res.set(name, value);
      res.body() = std::move(ex.response_body);
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      http::write(stream, res, ec);
      if (ec || !res.keep_alive()) break;
    }
  }

  Handler handler_;
  std::unique_ptr<asio::ssl::context> tls_;  // null: plain HTTP
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::string address_;
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  std::mutex mu_;
  std::list<std::unique_ptr<Connection>> connections_;
};

absl::StatusOr<std::unique_ptr<HttpFace>> HttpFace::Start(const std::string& listen,
                                                          Handler handler, const HttpTls& tls) {
  auto impl = std::make_unique<Impl>(std::move(handler));
  if (absl::Status s = impl->UseTls(tls); !s.ok()) return s;
  if (absl::Status s = impl->Listen(listen); !s.ok()) return s;
  return std::unique_ptr<HttpFace>(new HttpFace(std::move(impl)));
}

HttpFace::HttpFace(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpFace::~HttpFace() = default;
const std::string& HttpFace::address() const { return impl_->address(); }

}  // namespace ta::client

#include "server/http/listener.h"

#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <exception>
#include <iostream>
#include <optional>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/memory/memory.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "server/base/error.h"

namespace ta::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;

absl::Status Unavailable(absl::string_view reason, absl::string_view what, const ErrorCode& ec) {
  return Error(absl::StatusCode::kUnavailable, reason, absl::StrCat(what, ": ", ec.message()));
}

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

// What the listener shares with its connections.
struct Shared {
  const ListenerOptions options;
  HttpHandler* handler = nullptr;  // set by Serve() before any loop runs
  std::atomic<int> connections{0};
  std::atomic<bool> stopping{false};
};

// One connection's life, for a plain or a TLS stream. Owned by the shared_ptrs its pending
// operations hold; runs only on its own event loop's thread.
class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  virtual ~SessionBase() = default;
  // Closes the connection unless an answer is being prepared or written (that one closes
  // itself after the write, the listener stopping).
  virtual void CloseIfIdle() = 0;
  // The same, posted to the connection's own loop (callable from any thread).
  virtual void PostCloseIfIdle() = 0;
};

template <typename Stream>
class Session final : public SessionBase {
 public:
  Session(Stream stream, Shared* shared) : stream_(std::move(stream)), shared_(shared) {
    ++shared_->connections;
  }
  ~Session() override { --shared_->connections; }

  void Begin() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      AwaitRequest();
    } else {
      Lowest().expires_after(ToChrono(shared_->options.idle_timeout));
      stream_.async_handshake(asio::ssl::stream_base::server, [self = Self()](ErrorCode ec) {
        if (ec) return self->Close();
        self->AwaitRequest();
      });
    }
  }

  void CloseIfIdle() override {
    if (!busy_) Close();
  }
  void PostCloseIfIdle() override {
    asio::post(Lowest().get_executor(), [self = Self()] { self->CloseIfIdle(); });
  }

 private:
  std::shared_ptr<Session> Self() { return std::static_pointer_cast<Session>(shared_from_this()); }
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  // Waits (idle timeout) for the first byte of the next request, then reads it (request
  // timeout): a kept-alive connection may idle, a request may not dawdle.
  void AwaitRequest() {
    if (shared_->stopping) return Close();
    if (buffer_.size() > 0) return ReadHeader();  // pipelined: already here
    Lowest().expires_after(ToChrono(shared_->options.idle_timeout));
    stream_.async_read_some(buffer_.prepare(4096), [self = Self()](ErrorCode ec, size_t n) {
      if (ec) return self->Close();
      self->buffer_.commit(n);
      self->ReadHeader();
    });
  }

  void ReadHeader() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(shared_->options.header_limit));
    parser_->body_limit(shared_->options.body_limit);
    Lowest().expires_after(ToChrono(shared_->options.request_timeout));
    bhttp::async_read_header(stream_, buffer_, *parser_, [self = Self()](ErrorCode ec, size_t) {
      if (ec) return self->Refuse(ec);
      self->ContinueIfExpected();
    });
  }

  // RFC 9110 §10.1.1: a client that sent "Expect: 100-continue" waits for it before the body.
  void ContinueIfExpected() {
    auto& header = parser_->get();
    if (!absl::EqualsIgnoreCase(std::string(header[bhttp::field::expect]), "100-continue") ||
        parser_->is_done()) {
      return ReadBody();
    }
    continue_.emplace(bhttp::status::continue_, 11);
    bhttp::async_write(stream_, *continue_, [self = Self()](ErrorCode ec, size_t) {
      if (ec) return self->Close();
      self->ReadBody();
    });
  }

  void ReadBody() {
    bhttp::async_read(stream_, buffer_, *parser_, [self = Self()](ErrorCode ec, size_t) {
      if (ec) return self->Refuse(ec);
      self->Dispatch();
    });
  }

  // A request that could not be read: a reason for the handler to answer, or just close.
  void Refuse(const ErrorCode& ec) {
    absl::string_view reason;
    if (ec == bhttp::error::header_limit) {
      reason = "header_too_large";
    } else if (ec == bhttp::error::body_limit) {
      reason = "body_too_large";
    } else if (ec.category() == bhttp::make_error_code(bhttp::error::end_of_stream).category() &&
               ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
      reason = "bad_request";  // the parser's own errors: bad method, version, chunk, ...
    } else {
      return Close();  // timeout, reset, EOF: nobody to answer
    }
    const absl::Status why = Error(absl::StatusCode::kInvalidArgument, reason,
                                   absl::StrCat("malformed request: ", ec.message()));
    keep_alive_ = false;
    head_ = false;
    busy_ = true;
    Write(shared_->handler->Refused(why));
  }

  void Dispatch() {
    bhttp::request<bhttp::string_body> req = parser_->release();
    keep_alive_ = req.keep_alive();
    head_ = req.method() == bhttp::verb::head;
    busy_ = true;
    HttpRequest request;
    request.method = std::string(req.method_string());
    absl::string_view target(req.target().data(), req.target().size());
    const size_t q = target.find('?');
    request.path = std::string(target.substr(0, q));
    if (q != absl::string_view::npos) request.query = std::string(target.substr(q + 1));
    request.content_type = Joined(req, bhttp::field::content_type);
    request.authorization = Joined(req, bhttp::field::authorization);
    request.if_none_match = Joined(req, bhttp::field::if_none_match);
    request.body = std::move(req.body());
    // The answer may come from another thread: hop back onto this connection's loop.
    auto self = Self();
    shared_->handler->Handle(std::move(request), [self](HttpResponse response) {
      auto executor = self->Lowest().get_executor();
      asio::dispatch(executor, [self, response = std::move(response)]() mutable {
        self->Write(std::move(response));
      });
    });
  }

  static std::string Joined(const bhttp::request<bhttp::string_body>& req, bhttp::field name) {
    std::string out;
    for (auto [it, end] = req.equal_range(name); it != end; ++it) {
      if (!out.empty()) out += ", ";
      out.append(it->value().data(), it->value().size());
    }
    return out;
  }

  void Write(HttpResponse response) {
    const bool keep = keep_alive_ && !shared_->stopping;
    response_.emplace(static_cast<bhttp::status>(response.status), 11);
    auto& res = *response_;
    if (!response.content_type.empty()) res.set(bhttp::field::content_type, response.content_type);
    for (const auto& [name, value] : response.headers) res.insert(name, value);
    res.keep_alive(keep);
    const size_t length = response.body.size();
    if (!head_) res.body() = std::move(response.body);
    if (response.status != 204 && response.status != 304) res.content_length(length);
    Lowest().expires_after(ToChrono(shared_->options.write_timeout));
    bhttp::async_write(stream_, res, [self = Self(), keep](ErrorCode ec, size_t) {
      self->busy_ = false;
      if (ec || !keep) return self->Close();
      self->AwaitRequest();
    });
  }

  void Close() {
    ErrorCode ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Lowest().close();
  }

  Stream stream_;
  Shared* const shared_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<bhttp::response<bhttp::empty_body>> continue_;
  std::optional<bhttp::response<bhttp::string_body>> response_;
  bool keep_alive_ = false;
  bool head_ = false;
  bool busy_ = false;  // a request is with the handler, or its answer is being written
};

class BeastListener final : public Listener {
 public:
  explicit BeastListener(const ListenerOptions& options) : shared_{options} {}
  ~BeastListener() override { Stop(absl::ZeroDuration()); }

  absl::Status Open();
  int port() const override { return port_; }
  int connections() const override { return shared_.connections.load(); }
  void Serve(HttpHandler* handler) override;
  void Stop(absl::Duration drain) override;

 private:
  absl::Status SetUpTls();
  void Accept();
  void Adopt(tcp::socket socket);
  void Register(const std::shared_ptr<SessionBase>& session);

  Shared shared_;
  int port_ = 0;
  std::optional<asio::ssl::context> tls_;
  absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, std::weak_ptr<SessionBase>> sessions_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  size_t next_loop_ = 0;  // only on loop 0's thread (the acceptor's)
  std::vector<std::thread> threads_;
  // Last: destroyed first, taking the connections still queued on them along.
  std::vector<std::unique_ptr<asio::io_context>> loops_;
  // Keep each loop running while it has no connection (until Stop).
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> keep_running_;
  std::optional<tcp::acceptor> acceptor_;
};

absl::Status BeastListener::SetUpTls() {
  const ListenerOptions& o = shared_.options;
  if (o.tls_cert.empty()) return absl::OkStatus();
  tls_.emplace(asio::ssl::context::tls_server);
  ErrorCode ec;
  tls_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                        asio::ssl::context::no_tlsv1_1,
                    ec);
  if (!ec) tls_->use_certificate_chain_file(o.tls_cert, ec);
  if (ec) return InvalidField("tls_cert", absl::StrCat("--tls_cert: ", ec.message()));
  tls_->use_private_key_file(o.tls_key, asio::ssl::context::pem, ec);
  if (ec) return InvalidField("tls_key", absl::StrCat("--tls_key: ", ec.message()));
  if (!o.tls_client_ca.empty()) {
    tls_->load_verify_file(o.tls_client_ca, ec);
    if (ec) return InvalidField("tls_client_ca", absl::StrCat("--tls_client_ca: ", ec.message()));
    int mode = asio::ssl::verify_peer;
    if (!o.tls_allow_no_client_cert) mode |= asio::ssl::verify_fail_if_no_peer_cert;
    tls_->set_verify_mode(mode, ec);
  }
  return absl::OkStatus();
}

absl::Status BeastListener::Open() {
  const ListenerOptions& o = shared_.options;
  if (o.threads < 1) return absl::InvalidArgumentError("http listener needs >= 1 thread");
  absl::Status tls = SetUpTls();
  if (!tls.ok()) return tls;
  for (int i = 0; i < o.threads; ++i) loops_.push_back(std::make_unique<asio::io_context>(1));
  ErrorCode ec;
  absl::string_view host(o.host);
  if (absl::ConsumePrefix(&host, "[")) absl::ConsumeSuffix(&host, "]");
  tcp::resolver resolver(*loops_[0]);
  auto endpoints = resolver.resolve(std::string(host), std::to_string(o.port),
                                    tcp::resolver::numeric_service | tcp::resolver::passive, ec);
  if (ec || endpoints.empty()) return Unavailable("bind_failed", "cannot resolve " + o.host, ec);
  const tcp::endpoint endpoint = *endpoints.begin();
  acceptor_.emplace(*loops_[0]);
  acceptor_->open(endpoint.protocol(), ec);
  if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_->bind(endpoint, ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return Unavailable("bind_failed", absl::StrCat("cannot listen on ", o.host, ":", o.port), ec);
  port_ = acceptor_->local_endpoint(ec).port();
  return absl::OkStatus();
}

void BeastListener::Serve(HttpHandler* handler) {
  shared_.handler = handler;
  Accept();
  for (auto& loop : loops_) {
    keep_running_.push_back(asio::make_work_guard(*loop));
    threads_.emplace_back([io = loop.get()] {
      for (;;) {
        try {
          io->run();
          return;
        } catch (const std::exception& e) {  // nothing of ours throws; keep serving regardless
          std::cerr << "token-authority: http loop: " << e.what() << "\n";
        }
      }
    });
  }
}

void BeastListener::Accept() {
  asio::io_context& loop = *loops_[next_loop_++ % loops_.size()];
  acceptor_->async_accept(loop, [this](ErrorCode ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_->is_open()) return;
    if (!ec) Adopt(std::move(socket));
    Accept();
  });
}

void BeastListener::Adopt(tcp::socket socket) {
  if (shared_.stopping || shared_.connections.load() >= shared_.options.max_connections) {
    ErrorCode ignored;
    socket.close(ignored);  // over the limit: closed at once, nothing read
    return;
  }
  ErrorCode ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  // Start on the socket's own loop (Accept spread the sockets over the loops).
  auto executor = socket.get_executor();
  asio::post(executor, [this, socket = std::move(socket)]() mutable {
    if (tls_) {
      auto session = std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
          beast::ssl_stream<beast::tcp_stream>(std::move(socket), *tls_), &shared_);
      Register(session);
      session->Begin();
    } else {
      auto session = std::make_shared<Session<beast::tcp_stream>>(
          beast::tcp_stream(std::move(socket)), &shared_);
      Register(session);
      session->Begin();
    }
  });
}

void BeastListener::Register(const std::shared_ptr<SessionBase>& session) {
  absl::MutexLock lock(&mu_);
  // Forget the connections that are gone while we are here, so the map stays small.
  if (sessions_.size() >= 2 * static_cast<size_t>(shared_.options.max_connections)) {
    absl::erase_if(sessions_, [](const auto& entry) { return entry.second.expired(); });
  }
  sessions_[next_id_++] = session;
}

void BeastListener::Stop(absl::Duration drain) {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  shared_.stopping = true;
  if (acceptor_) {
    asio::post(*loops_[0], [this] {
      ErrorCode ignored;
      acceptor_->close(ignored);
    });
  }
  std::vector<std::weak_ptr<SessionBase>> sessions;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, session] : sessions_) sessions.push_back(session);
  }
  for (const std::weak_ptr<SessionBase>& weak : sessions) {
    if (std::shared_ptr<SessionBase> session = weak.lock()) {
      // Each connection is closed on its own loop's thread.
      session->PostCloseIfIdle();
    }
  }
  const absl::Time deadline = absl::Now() + drain;
  while (shared_.connections.load() > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  for (auto& loop : loops_) loop->stop();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Listener>> Listener::Bind(const ListenerOptions& options) {
  auto listener = std::make_unique<BeastListener>(options);
  try {
    absl::Status status = listener->Open();
    if (!status.ok()) return status;
  } catch (const std::exception& e) {  // Asio's edge: a throwing constructor (OpenSSL, epoll)
    return Error(absl::StatusCode::kUnavailable, "bind_failed",
                 absl::StrCat("cannot start the http listener: ", e.what()));
  }
  return std::unique_ptr<Listener>(std::move(listener));
}

}  // namespace ta::http

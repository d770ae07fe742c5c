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
#include <chrono>
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
#include "base/error.h"
#include "server/http/peer_limiter.h"
#include "server/http/request_reader.h"

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

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class SessionBase;

// What the listener shares with its connections: the options, and the connection budget
// (issue 22 item 6): how many are open, from which peer, which are silent.
struct Shared {
  explicit Shared(const ListenerOptions& o) : options(o) {}
  const ListenerOptions options;
  HttpHandler* handler = nullptr;  // set by Serve() before any loop runs
  std::atomic<int> connections{0};
  std::atomic<bool> stopping{false};
  absl::Mutex mu;
  absl::flat_hash_map<SessionBase*, std::weak_ptr<SessionBase>> sessions ABSL_GUARDED_BY(mu);
  absl::flat_hash_map<std::string, int> per_peer ABSL_GUARDED_BY(mu);
  int evicting ABSL_GUARDED_BY(mu) = 0;  // evicted, not yet gone

  // A connection ended: its place in the budget is free again.
  void Release(SessionBase* session, const std::string& peer, bool evicted) {
    absl::MutexLock lock(&mu);
    sessions.erase(session);
    auto it = per_peer.find(peer);
    if (it != per_peer.end() && --it->second <= 0) per_peer.erase(it);
    if (evicted) --evicting;
    --connections;
  }
};

// One connection's life, for a plain or a TLS stream. Owned by the shared_ptrs its pending
// operations hold; runs only on its own event loop's thread (the atomics are read by the
// acceptor, which picks connections to evict).
class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  virtual ~SessionBase() = default;
  // Closes the connection unless an answer is being prepared or written (that one closes
  // itself after the write, the listener stopping).
  virtual void CloseIfIdle() = 0;
  // The same, posted to the connection's own loop (callable from any thread).
  virtual void PostCloseIfIdle() = 0;
  // Closes it whatever it does, on its own loop (callable from any thread).
  virtual void PostEvict() = 0;

  // Since when (steady clock, ns) the connection waits for the first byte of a request
  // without having sent it; 0 while a request is read or answered.
  std::atomic<int64_t> silent_since{0};
  // Chosen for eviction (by the acceptor, under Shared::mu).
  std::atomic<bool> evicted{false};
};

template <typename Stream>
class Session final : public SessionBase {
 public:
  Session(Stream stream, Shared* shared, std::string peer)
      : stream_(std::move(stream)),
        shared_(shared),
        peer_(std::move(peer)),
        reader_(RequestLimits{shared->options.header_limit, shared->options.body_limit}) {
    silent_since = SteadyNanos();
  }
  ~Session() override { shared_->Release(this, peer_, evicted.load()); }

  void Begin() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      AwaitRequest();
    } else {
      // A handshake is part of the first request: it gets the request deadline.
      Lowest().expires_after(ToChrono(shared_->options.request_timeout));
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
  void PostEvict() override {
    asio::post(Lowest().get_executor(), [self = Self()] { self->Close(); });
  }

 private:
  std::shared_ptr<Session> Self() { return std::static_pointer_cast<Session>(shared_from_this()); }
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  // Waits for the first byte of the next request, then reads it within the request deadline.
  // Only a connection that has had a complete request answered may idle (idle timeout): a
  // new one must send its first request within the request deadline (issue 22 item 6).
  void AwaitRequest() {
    if (shared_->stopping || evicted) return Close();
    if (reader_.started()) return Continue(reader_.Parse());  // pipelined: already here
    const absl::Duration wait =
        answered_ ? shared_->options.idle_timeout : shared_->options.request_timeout;
    Lowest().expires_after(ToChrono(wait));
    silent_since = SteadyNanos();
    ReadSome();
  }

  void ReadSome() {
    absl::Span<char> space = reader_.Space();
    stream_.async_read_some(asio::buffer(space.data(), space.size()),
                            [self = Self()](ErrorCode ec, size_t n) {
                              if (ec) return self->Close();  // timeout, reset, EOF
                              self->OnBytes(n);
                            });
  }

  void OnBytes(size_t n) {
    if (!reader_.started() && n > 0) {
      silent_since = 0;
      Lowest().expires_after(ToChrono(shared_->options.request_timeout));
    }
    Continue(reader_.Received(n));
  }

  void Continue(absl::StatusOr<RequestReader::Progress> progress) {
    if (!progress.ok()) return Refuse(progress.status());
    if (*progress == RequestReader::Progress::kComplete) return Dispatch();
    // RFC 9110 §10.1.1: a client that sent "Expect: 100-continue" waits for it before the body.
    if (reader_.TakeContinueDue()) {
      continue_.emplace(bhttp::status::continue_, 11);
      bhttp::async_write(stream_, *continue_, [self = Self()](ErrorCode ec, size_t) {
        if (ec) return self->Close();
        self->ReadSome();
      });
      return;
    }
    ReadSome();
  }

  // A request that could not be read (malformed, over a limit): the handler answers with
  // the reason, then the connection is closed.
  void Refuse(const absl::Status& why) {
    keep_alive_ = false;
    head_ = false;
    busy_ = true;
    Write(shared_->handler->Refused(why));
  }

  void Dispatch() {
    RequestReader::Taken taken = reader_.Take();
    taken.request.peer = peer_;
    keep_alive_ = taken.keep_alive;
    head_ = taken.head;
    busy_ = true;
    // The answer may come from another thread: hop back onto this connection's loop.
    auto self = Self();
    shared_->handler->Handle(std::move(taken.request), [self](HttpResponse response) {
      auto executor = self->Lowest().get_executor();
      asio::dispatch(executor, [self, response = std::move(response)]() mutable {
        self->Write(std::move(response));
      });
    });
  }

  void Write(HttpResponse response) {
    const bool keep = keep_alive_ && !shared_->stopping && !evicted;
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
      self->answered_ = true;
      if (ec || !keep) return self->Close();
      self->AwaitRequest();
    });
  }

  void Close() {
    silent_since = 0;
    ErrorCode ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Lowest().close();
  }

  Stream stream_;
  Shared* const shared_;
  const std::string peer_;  // the peer's address, its key in Shared::per_peer
  RequestReader reader_;
  std::optional<bhttp::response<bhttp::empty_body>> continue_;
  std::optional<bhttp::response<bhttp::string_body>> response_;
  bool keep_alive_ = false;
  bool head_ = false;
  bool busy_ = false;      // a request is with the handler, or its answer is being written
  bool answered_ = false;  // a complete request was answered: the connection may idle
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
  // Whether a connection from `peer` fits the budget, evicting the oldest silent connection
  // when the budget is full; counts it in when it does.
  bool Admit(const std::string& peer);
  template <typename Stream>
  void Start(Stream stream, std::string peer);

  Shared shared_;
  int port_ = 0;
  std::optional<asio::ssl::context> tls_;
  absl::Mutex mu_;
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
  ErrorCode ec;
  const tcp::endpoint remote = socket.remote_endpoint(ec);
  std::string peer = ec ? std::string() : PeerKey(remote.address().to_string());
  if (ec || !Admit(peer)) {
    socket.close(ec);  // over a limit: closed at once, nothing read
    return;
  }
  socket.set_option(tcp::no_delay(true), ec);
  // Start on the socket's own loop (Accept spread the sockets over the loops).
  auto executor = socket.get_executor();
  asio::post(executor, [this, socket = std::move(socket), peer = std::move(peer)]() mutable {
    if (tls_) {
      Start(beast::ssl_stream<beast::tcp_stream>(std::move(socket), *tls_), std::move(peer));
    } else {
      Start(beast::tcp_stream(std::move(socket)), std::move(peer));
    }
  });
}

bool BeastListener::Admit(const std::string& peer) {
  const ListenerOptions& o = shared_.options;
  std::shared_ptr<SessionBase> victim;
  {
    absl::MutexLock lock(&shared_.mu);
    if (shared_.stopping) return false;
    if (o.max_connections_per_peer > 0) {
      auto it = shared_.per_peer.find(peer);
      if (it != shared_.per_peer.end() && it->second >= o.max_connections_per_peer) return false;
    }
    if (shared_.connections.load() - shared_.evicting >= o.max_connections) {
      // Full: the connection silent the longest makes room (a new client, a health probe,
      // must not be locked out by connections that send nothing).
      SessionBase* oldest = nullptr;
      int64_t oldest_since = 0;
      for (const auto& [raw, weak] : shared_.sessions) {
        const int64_t since = raw->silent_since.load();
        if (since == 0 || raw->evicted.load() || (oldest != nullptr && since >= oldest_since)) {
          continue;
        }
        oldest = raw;
        oldest_since = since;
      }
      // (Released after the lock: a session's last reference runs its destructor, which
      // takes the lock.)
      if (oldest != nullptr) victim = shared_.sessions[oldest].lock();
      if (victim == nullptr) return false;  // every connection is busy with a request
      victim->evicted = true;
      ++shared_.evicting;
    }
    ++shared_.connections;
    ++shared_.per_peer[peer];
  }
  if (victim != nullptr) victim->PostEvict();
  return true;
}

template <typename Stream>
void BeastListener::Start(Stream stream, std::string peer) {
  auto session = std::make_shared<Session<Stream>>(std::move(stream), &shared_, std::move(peer));
  {
    absl::MutexLock lock(&shared_.mu);
    shared_.sessions[session.get()] = session;
  }
  session->Begin();
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
    absl::MutexLock lock(&shared_.mu);
    for (const auto& [raw, session] : shared_.sessions) sessions.push_back(session);
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

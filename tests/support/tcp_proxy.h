// A loopback TCP proxy for tests: every connection accepted on 127.0.0.1 (port 0) is forwarded
// byte for byte to a target "host:port". A test points a client (a LocalVerifier, a sidecar) at
// the proxy and can then cut its connections and hold it off (a network partition that the
// server does not see), and send its next connections to another server (a restored copy)
// without the client knowing.
//
// One acceptor thread, one thread per forwarded connection; all joined by the destructor.
// Thread-safe.
#ifndef TA_TESTS_SUPPORT_TCP_PROXY_H_
#define TA_TESTS_SUPPORT_TCP_PROXY_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace ta::testing {

class TcpProxy {
 public:
  // Listens on 127.0.0.1:0 and forwards to `target` (an IPv4 "host:port").
  static absl::StatusOr<std::unique_ptr<TcpProxy>> Start(const std::string& target);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  // "127.0.0.1:port" to give the client.
  const std::string& address() const { return address_; }

  // Closes every forwarded connection at once and, until Resume, closes each new one as soon
  // as it is accepted (the client sees its connection reset and retries).
  void Cut();
  // Forwards new connections again; to `target` from now on when it is not empty.
  void Resume(const std::string& target = "");
  // Connections forwarded so far (accepted while not cut).
  int forwarded() const;

 private:
  TcpProxy() = default;
  void Accept();
  void Pump(int client, int server);

  std::string address_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};  // the destructor writes a byte: the acceptor returns
  mutable absl::Mutex mu_;
  std::string target_ ABSL_GUARDED_BY(mu_);
  bool cut_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int forwarded_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<int> open_ ABSL_GUARDED_BY(mu_);  // both ends of every forwarded connection
  std::vector<std::thread> pumps_ ABSL_GUARDED_BY(mu_);
  std::thread acceptor_;
};

}  // namespace ta::testing

#endif  // TA_TESTS_SUPPORT_TCP_PROXY_H_

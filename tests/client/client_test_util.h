// Test helpers for client/: the real server as a child process (port 0, temp data dir, its
// generated admin key when it writes one), addresses nobody serves, and tokenctl run as a
// subprocess. Not thread-safe; one object per test.
#ifndef TA_TESTS_CLIENT_CLIENT_TEST_UTIL_H_
#define TA_TESTS_CLIENT_CLIENT_TEST_UTIL_H_

#include <memory>
#include <string>
#include <vector>

#include "client/client.h"
#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"

namespace ta::testing {

// The token-authority binary started with --default_audience=api and `extra_args`;
// REQUIREs that it starts.
class LiveServer {
 public:
  explicit LiveServer(const std::vector<std::string>& extra_args = {});

  const std::string& address() const { return process_->address(); }
  // The key of <data_dir>/admin.key, or "" when the server wrote none (no auth yet).
  const std::string& api_key() const { return api_key_; }
  // Path of admin.key, or "" when there is none.
  std::string key_file() const;
  // Options for this server with the admin key; REQUIREs a working client.
  client::ClientOptions Options() const;
  std::unique_ptr<client::Client> NewClient() const;
  // A scratch directory that lives as long as the server.
  const std::string& scratch() const { return scratch_.path(); }
  // The server's --data_dir (its audit.log is there).
  const std::string& data_dir() const { return dir_.path(); }
  // Stops the server by `signal`; returns its exit code (ServerProcess::Stop).
  absl::StatusOr<int> Stop(int signal);
  // Starts it again on the same data directory (a new port: address() changes).
  void Restart();

 private:
  TempDir dir_;
  TempDir scratch_;
  std::vector<std::string> args_;
  std::unique_ptr<ServerProcess> process_;
  std::string api_key_;
};

// "127.0.0.1:<port>" where nothing listens: connections are refused (UNAVAILABLE).
std::string DeadAddress();

// A TCP listener that never accepts: connections hang, calls hit their deadline.
class BlackHole {
 public:
  BlackHole();
  ~BlackHole();
  BlackHole(const BlackHole&) = delete;
  BlackHole& operator=(const BlackHole&) = delete;
  const std::string& address() const { return address_; }

 private:
  int fd_ = -1;
  std::string address_;
};

// A test PKI made by tests/integration/make_certs.sh: ca.pem signs server.pem (localhost,
// 127.0.0.1) and client.pem (SAN URI spiffe://test/gateway); other-ca.pem signs rogue.pem.
class Pki {
 public:
  Pki();
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }
  std::string Pem(const std::string& name) const;

 private:
  TempDir dir_;
};

struct ProcessResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs tokenctl with `args` (after the program name), stdin from `input`, environment
// inherited minus TA_API_KEY and TA_SERVER plus `env` ("NAME=value"). Waits for it to exit.
ProcessResult RunTokenctl(const std::vector<std::string>& args,
                          const std::vector<std::string>& env = {}, const std::string& input = "");

}  // namespace ta::testing

#endif  // TA_TESTS_CLIENT_CLIENT_TEST_UTIL_H_

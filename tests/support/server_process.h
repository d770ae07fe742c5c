// Runs the real token-authority binary as a child process for end-to-end tests: starts it
// on port 0, reads the "listening on HOST:PORT" line, and stops it by signal.
// Not thread-safe; one object per child.
#ifndef TA_TESTS_SUPPORT_SERVER_PROCESS_H_
#define TA_TESTS_SUPPORT_SERVER_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ta::testing {

class ServerProcess {
 public:
  // Starts `binary` with `args` and waits (up to `timeout`) for its listening line.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const std::string& binary, const std::vector<std::string>& args,
      absl::Duration timeout = absl::Seconds(20));
  ~ServerProcess();  // SIGKILLs a child still running

  const std::string& address() const { return address_; }
  pid_t pid() const { return pid_; }

  // Sends `signal` and waits up to `timeout`; returns the exit code, or -signal when the
  // child died of a signal, or an error when it did not exit in time (it is then killed).
  absl::StatusOr<int> Stop(int signal, absl::Duration timeout = absl::Seconds(20));

  // Everything the child wrote to stderr so far (for log checks).
  std::string ReadStderr() const;

 private:
  ServerProcess() = default;

  pid_t pid_ = -1;
  std::string address_;
  std::string stderr_path_;
};

// The server binary's path, from the build (TA_SERVER_BINARY).
std::string ServerBinary();

// How a run of a binary to its end went (RunToExit).
struct ExitResult {
  int code = -1;       // exit code; -signal when killed; -1000 when it did not exit in time
  std::string output;  // stdout and stderr together
};

// Runs `binary` with `args` to its exit (SIGKILLed after `timeout`): for the command lines that
// must end at once (a refused start, --help, --version). When it cannot be started at all:
// code -1 and the reason in `output`.
ExitResult RunToExit(const std::string& binary, const std::vector<std::string>& args,
                     absl::Duration timeout = absl::Seconds(20));

}  // namespace ta::testing

#endif  // TA_TESTS_SUPPORT_SERVER_PROCESS_H_

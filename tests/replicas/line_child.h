// A child process spoken to in lines: the test writes to its stdin and reads its stdout line by
// line (with a deadline); its stderr goes to a temp file for failure messages. For the verifier
// consumers that are other programs: the sidecar binary (its "listening on" lines) and the
// Python and Node local verifiers (a token in, an answer out).
// Not thread-safe: one thread talks to one child. The destructor closes its stdin, sends
// SIGTERM and, after 5 s, SIGKILL.
#ifndef TA_TESTS_REPLICAS_LINE_CHILD_H_
#define TA_TESTS_REPLICAS_LINE_CHILD_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ta::testing {

class LineChild {
 public:
  // Runs argv[0] (searched in PATH when it has no '/') with `env` added to this environment.
  static absl::StatusOr<std::unique_ptr<LineChild>> Start(
      const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {});
  ~LineChild();
  LineChild(const LineChild&) = delete;
  LineChild& operator=(const LineChild&) = delete;

  absl::Status WriteLine(const std::string& line);
  // The next line of its stdout (without the newline). DEADLINE_EXCEEDED after `timeout`,
  // UNAVAILABLE once it closed its stdout (exited).
  absl::StatusOr<std::string> ReadLine(absl::Duration timeout = absl::Seconds(10));
  // WriteLine then ReadLine; the answer, or "error:<status>".
  std::string Ask(const std::string& line, absl::Duration timeout = absl::Seconds(10));
  // What it wrote to stderr so far (last 4 KiB).
  std::string Stderr() const;
  pid_t pid() const { return pid_; }

 private:
  LineChild() = default;
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1;
  std::string buffer_;  // read from stdout, not yet returned
  std::string stderr_path_;
};

}  // namespace ta::testing

#endif  // TA_TESTS_REPLICAS_LINE_CHILD_H_

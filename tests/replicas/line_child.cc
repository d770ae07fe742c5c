#include "tests/replicas/line_child.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace ta::testing {

absl::StatusOr<std::unique_ptr<LineChild>> LineChild::Start(
    const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
  signal(SIGPIPE, SIG_IGN);  // a child that died: WriteLine reports it instead
  std::unique_ptr<LineChild> child(new LineChild());
  char tmpl[] = "/tmp/ta-line-child-stderr-XXXXXX";
  const int err = mkstemp(tmpl);
  if (err < 0) return absl::InternalError("mkstemp failed");
  child->stderr_path_ = tmpl;
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
    close(err);
    return absl::InternalError("pipe failed");
  }
  std::vector<std::string> args = argv;
  std::vector<char*> raw;
  for (std::string& a : args) raw.push_back(a.data());
  raw.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    dup2(in[0], STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    for (const auto& [name, value] : env) setenv(name.c_str(), value.c_str(), 1);
    execvp(raw[0], raw.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err);
  child->pid_ = pid;
  child->in_ = in[1];
  child->out_ = out[0];
  return child;
}

LineChild::~LineChild() {
  if (in_ >= 0) close(in_);
  if (out_ >= 0) close(out_);
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (waitpid(pid_, nullptr, WNOHANG) == 0) {
      if (absl::Now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        break;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
  }
  if (!stderr_path_.empty()) unlink(stderr_path_.c_str());
}

absl::Status LineChild::WriteLine(const std::string& line) {
  const std::string bytes = line + "\n";
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(in_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::UnavailableError("the child's stdin is closed");
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> LineChild::ReadLine(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    const size_t newline = buffer_.find('\n');
    if (newline != std::string::npos) {
      std::string line = buffer_.substr(0, newline);
      buffer_.erase(0, newline + 1);
      return line;
    }
    const int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (left <= 0) return absl::DeadlineExceededError("no line from the child in time");
    pollfd p{out_, POLLIN, 0};
    if (poll(&p, 1, left) <= 0) continue;
    char chunk[4096];
    const ssize_t n = read(out_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::UnavailableError("the child closed its stdout");
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

std::string LineChild::Ask(const std::string& line, absl::Duration timeout) {
  if (absl::Status s = WriteLine(line); !s.ok()) return absl::StrCat("error:", s.ToString());
  absl::StatusOr<std::string> answer = ReadLine(timeout);
  return answer.ok() ? *answer : absl::StrCat("error:", answer.status().ToString());
}

std::string LineChild::Stderr() const {
  std::ifstream in(stderr_path_);
  std::stringstream text;
  text << in.rdbuf();
  const std::string all = text.str();
  return all.size() > 4096 ? all.substr(all.size() - 4096) : all;
}

}  // namespace ta::testing

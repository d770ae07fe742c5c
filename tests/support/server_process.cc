#include "tests/support/server_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace ta::testing {
namespace {

// Reads one line from `fd` within `deadline`.
absl::StatusOr<std::string> ReadLine(int fd, absl::Time deadline) {
  std::string line;
  char c;
  while (true) {
    int left_ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (left_ms <= 0) return absl::DeadlineExceededError("no listening line in time");
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, left_ms) <= 0) continue;
    ssize_t n = read(fd, &c, 1);
    if (n <= 0) return absl::UnavailableError(absl::StrCat("server exited early: ", line));
    if (c == '\n') return line;
    line.push_back(c);
  }
}

// Waits for `pid` up to `timeout` (then SIGKILLs it): the exit code, -signal, or -1000.
int WaitForExit(pid_t pid, absl::Duration timeout) {
  int status = 0;
  const absl::Time deadline = absl::Now() + timeout;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (absl::Now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1000;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

// All of the file behind `fd`, from its start.
std::string ReadAll(int fd) {
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = pread(fd, buf, sizeof(buf), static_cast<off_t>(text.size()))) > 0) {
    text.append(buf, static_cast<size_t>(n));
  }
  return text;
}

}  // namespace

ExitResult RunToExit(const std::string& binary, const std::vector<std::string>& args,
                     absl::Duration timeout) {
  std::vector<std::string> argv_storage = {binary};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  char tmpl[] = "/tmp/ta-run-output-XXXXXX";
  const int fd = mkstemp(tmpl);
  if (fd < 0) return {-1, "mkstemp failed"};
  unlink(tmpl);
  const pid_t pid = fork();
  if (pid < 0) {
    close(fd);
    return {-1, "fork failed"};
  }
  if (pid == 0) {
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  ExitResult result;
  result.code = WaitForExit(pid, timeout);
  result.output = ReadAll(fd);
  close(fd);
  return result;
}

std::string ServerBinary() { return TA_SERVER_BINARY; }

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const std::string& binary, const std::vector<std::string>& args, absl::Duration timeout) {
  auto proc = std::unique_ptr<ServerProcess>(new ServerProcess());
  char tmpl[] = "/tmp/ta-server-stderr-XXXXXX";
  int err_fd = mkstemp(tmpl);
  if (err_fd < 0) return absl::InternalError("mkstemp failed");
  proc->stderr_path_ = tmpl;
  int out[2];
  if (pipe(out) != 0) return absl::InternalError("pipe failed");

  std::vector<std::string> argv_storage = {binary};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);

  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    close(out[0]);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  close(out[1]);
  close(err_fd);
  proc->pid_ = pid;
  absl::StatusOr<std::string> line = ReadLine(out[0], absl::Now() + timeout);
  close(out[0]);  // the server writes nothing else to stdout
  if (!line.ok()) {
    return absl::Status(line.status().code(),
                        absl::StrCat(line.status().message(), "; stderr: ", proc->ReadStderr()));
  }
  absl::string_view rest = *line;
  if (!absl::ConsumePrefix(&rest, "listening on ")) {
    return absl::InternalError(absl::StrCat("unexpected first line: ", *line));
  }
  proc->address_ = std::string(rest);
  return proc;
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (!stderr_path_.empty()) unlink(stderr_path_.c_str());
}

absl::StatusOr<int> ServerProcess::Stop(int signal, absl::Duration timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError("not running");
  kill(pid_, signal);
  absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (absl::Now() < deadline) {
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      return -WTERMSIG(status);
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
  return absl::DeadlineExceededError("server did not exit in time");
}

std::string ServerProcess::ReadStderr() const {
  std::ifstream in(stderr_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace ta::testing

// tokenctl restore: a local operation with no server to call. Restoring means opening
// RocksDB, and client/ links no storage code (DESIGN §1: the client depends on the API only),
// so tokenctl runs the server binary's restore mode, `token-authority --restore_from=DIR
// --data_dir=DIR`, and relays what it prints and how it ends.
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "client/tokenctl/subcommands.h"

extern char** environ;

namespace ta::tokenctl::internal {
namespace {

struct Finished {
  int exit_code = -1;  // -1: killed by a signal
  std::string out, err;
};

// Reads both pipes to their end without letting either fill up.
void Drain(int out_fd, int err_fd, Finished* result) {
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  std::string* sinks[2] = {&result->out, &result->err};
  int open = 2;
  char buf[4096];
  while (open > 0) {
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) return;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        fds[i].fd = -1;
        --open;
        continue;
      }
      sinks[i]->append(buf, static_cast<size_t>(n));
    }
  }
}

// Runs argv[0] (found on PATH unless it names a path) with stdout and stderr captured.
absl::StatusOr<Finished> Run(const std::vector<std::string>& args) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return absl::InternalError(std::strerror(errno));
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    return absl::InternalError(std::strerror(errno));
  }
  absl::Cleanup close_reads = [&] {
    ::close(out[0]);
    ::close(err[0]);
  };
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int spawned = ::posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  ::close(err[1]);
  if (spawned != 0) {
    return absl::NotFoundError(absl::StrCat("cannot run ", args[0], ": ", std::strerror(spawned),
                                            " (give --server_binary=PATH)"));
  }
  Finished result;
  Drain(out[0], err[0], &result);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

// --server_binary, else token-authority beside this tokenctl, else on PATH.
std::string ServerBinary(const CommandInput& in) {
  if (!in.server_binary.empty()) return in.server_binary;
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    std::string path(self, static_cast<size_t>(n));
    std::string beside = path.substr(0, path.rfind('/') + 1) + "token-authority";
    if (::access(beside.c_str(), X_OK) == 0) return beside;
  }
  return "token-authority";
}

}  // namespace

int Restore(const CommandInput& in, client::Client& /*c*/, Io& io) {
  std::vector<std::string> args = {ServerBinary(in), "--restore_from=" + in.args[0],
                                   "--data_dir=" + in.args[1]};
  if (!in.key_dir.empty()) args.push_back("--key_dir=" + in.key_dir);
  if (in.json) args.push_back("--restore_json");
  absl::StatusOr<Finished> run = Run(args);
  if (!run.ok()) return UsageError(io, absl::StrCat("restore: ", run.status().message()));
  io.out << run->out;
  io.err << run->err;
  // token-authority exits 2 when it refused (a used or live DATA_DIR, no backup there).
  if (run->exit_code == 0 || run->exit_code == kExitUsage) return run->exit_code;
  return kExitRefused;
}

}  // namespace ta::tokenctl::internal

#include "tests/client/client_test_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

extern char** environ;

namespace ta::testing {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

// A socket bound to 127.0.0.1 on a free port; returns the fd and sets `address`.
int BindLoopback(std::string* address) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  socklen_t len = sizeof(addr);
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  *address = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));
  return fd;
}

std::vector<std::string> ChildEnvironment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, "TA_API_KEY=") && !absl::StartsWith(*e, "TA_SERVER=")) {
      env.emplace_back(*e);
    }
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

}  // namespace

LiveServer::LiveServer(const std::vector<std::string>& extra_args) {
  REQUIRE(!dir_.path().empty());
  std::vector<std::string> args = {"--listen=127.0.0.1:0", "--data_dir=" + dir_.path(),
                                   "--default_audience=api"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  args_ = args;
  Restart();
  // The server writes admin.key before it listens; without auth there is none.
  if (!key_file().empty()) {
    std::string content = ReadAll(key_file());
    api_key_ = std::string(absl::StripAsciiWhitespace(content));
  }
}

absl::StatusOr<int> LiveServer::Stop(int signal) { return process_->Stop(signal); }

void LiveServer::Restart() {
  absl::StatusOr<std::unique_ptr<ServerProcess>> process =
      ServerProcess::Start(ServerBinary(), args_);
  INFO(process.status().ToString());
  REQUIRE(process.ok());
  process_ = *std::move(process);
}

std::string LiveServer::key_file() const {
  std::string path = dir_.path() + "/admin.key";
  return std::filesystem::exists(path) ? path : std::string();
}

client::ClientOptions LiveServer::Options() const {
  client::ClientOptions options;
  options.target = address();
  options.api_key = api_key_;
  options.timeout = absl::Seconds(10);
  return options;
}

std::unique_ptr<client::Client> LiveServer::NewClient() const {
  absl::StatusOr<std::unique_ptr<client::Client>> c = client::Client::Create(Options());
  REQUIRE(c.ok());
  return *std::move(c);
}

std::string DeadAddress() {
  std::string address;
  close(BindLoopback(&address));  // the port is free again; nothing listens on it
  return address;
}

BlackHole::BlackHole() {
  fd_ = BindLoopback(&address_);
  REQUIRE(listen(fd_, 16) == 0);
}

BlackHole::~BlackHole() { close(fd_); }

Pki::Pki() {
  REQUIRE(!dir_.path().empty());
  std::string command = absl::StrCat(TA_MAKE_CERTS, " ", dir_.path());
  REQUIRE(std::system(command.c_str()) == 0);
}

std::string Pki::Pem(const std::string& name) const { return ReadAll(Path(name)); }

ProcessResult RunTokenctl(const std::vector<std::string>& args, const std::vector<std::string>& env,
                          const std::string& input) {
  TempDir io;
  std::string in_path = io.path() + "/in", out_path = io.path() + "/out",
              err_path = io.path() + "/err";
  std::ofstream(in_path) << input;
  std::vector<std::string> argv = {TA_TOKENCTL_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<std::string> envp = ChildEnvironment(env);
  std::vector<char*> argv_ptrs = Pointers(argv), envp_ptrs = Pointers(envp);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int in = open(in_path.c_str(), O_RDONLY);
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(in, STDIN_FILENO);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    execve(argv_ptrs[0], argv_ptrs.data(), envp_ptrs.data());
    _exit(127);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  ProcessResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  result.out = ReadAll(out_path);
  result.err = ReadAll(err_path);
  return result;
}

}  // namespace ta::testing

// Durability under SIGKILL: every write the store acknowledged is there after a restart.
//
// The child is a separate executable (fork + exec), so it starts with no RocksDB state
// inherited from this process: forking a process whose RocksDB background threads are running
// would leave the child with a thread pool that does not exist.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "tests/storage/test_util.h"

namespace ta::storage {
namespace {

constexpr int kRounds = 24;

// Starts the child, reads acknowledgments until a random moment after the store opened,
// SIGKILLs it, and returns every complete line it acknowledged.
std::vector<std::string> RunAndKill(const std::string& path, int round, std::mt19937& rng) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  std::string round_arg = std::to_string(round);
  char* const args[] = {const_cast<char*>(STORE_CRASH_CHILD), const_cast<char*>(path.c_str()),
                        round_arg.data(), nullptr};
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execv(STORE_CRASH_CHILD, args);
    _exit(127);
  }
  close(fds[1]);
  std::string received;
  auto read_some = [&](int timeout_ms) {
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    char buf[4096];
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n > 0) received.append(buf, n);
    return n > 0;
  };
  while (received.find("open\n") == std::string::npos && read_some(10000)) {
  }
  REQUIRE(received.find("open\n") != std::string::npos);
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 150)(rng));
  while (std::chrono::steady_clock::now() < deadline) read_some(5);
  kill(pid, SIGKILL);
  while (read_some(1000)) {
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFSIGNALED(status));
  std::vector<std::string> lines = absl::StrSplit(received, '\n');
  lines.pop_back();  // the part after the last newline: empty or a torn line, never acknowledged
  return lines;
}

void VerifyAcknowledged(TokenStore& store, const std::vector<std::string>& lines) {
  const absl::Time now = absl::Now();
  for (const std::string& line : lines) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    INFO(line);
    if (f[0] == "create" || f[0] == "revoke") {
      absl::StatusOr<FamilyRecord> family = store.GetFamily(absl::HexStringToBytes(f[1]), now);
      REQUIRE(family.ok());
      if (f[0] == "revoke") CHECK(family->revoked);
    } else if (f[0] == "rotate") {
      std::string id = absl::HexStringToBytes(f[1]);
      uint64_t gen = std::stoull(f[2]);
      absl::StatusOr<FamilyRecord> family = store.GetFamily(id, now);
      REQUIRE(family.ok());
      CHECK(family->generation >= gen);
      CHECK(store.GetRefresh(id, gen, now).ok());
      CHECK(store.GetRefresh(id, gen - 1, now)->spent_at.has_value());
    } else if (f[0] == "deny") {
      CHECK(*store.IsJtiDenied(f[1], now));
    } else if (f[0] == "subject") {
      absl::StatusOr<std::optional<SubjectRecord>> s = store.GetSubject(f[1], now);
      REQUIRE(s.ok());
      REQUIRE(s->has_value());
      CHECK(absl::ToUnixMicros((*s)->not_before) == std::stoll(f[2]));
    } else {
      CHECK(f[0] == "open");
    }
  }
}

TEST_CASE("RocksDbStore: acknowledged writes survive SIGKILL at a random moment",
          "[storage][crash]") {
  testing::TempDir dir;
  std::mt19937 rng(std::random_device{}());
  RocksDbStoreOptions options;
  options.path = dir.path();
  size_t total_acks = 0;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<std::string> acks = RunAndKill(dir.path(), round, rng);
    total_acks += acks.size();
    absl::StatusOr<std::unique_ptr<TokenStore>> store = OpenRocksDbStore(options);
    REQUIRE(store.ok());
    VerifyAcknowledged(**store, acks);
  }
  CHECK(total_acks > kRounds * 2);
}

}  // namespace
}  // namespace ta::storage

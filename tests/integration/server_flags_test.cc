// The server binary's command line (issue 23 (6)): flag errors name the flag and exit 2 before
// anything is opened; --help lists the flags by group, --version names the build.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "tests/support/server_process.h"
#include "tests/support/temp_dir.h"

namespace ta::testing {
namespace {

TEST_CASE("Server: a bad flag names itself and exits 2", "[integration]") {
  TempDir dir;
  for (const char* bad : {"--access_ttl=1s", "--listen=nonsense", "--reuse_grace=5m",
                          "--listen=0.0.0.0:0", "--signing_alg=none", "--watch_history=0"}) {
    absl::StatusOr<std::unique_ptr<ServerProcess>> proc = ServerProcess::Start(
        ServerBinary(), {std::string("--data_dir=") + dir.path(), bad}, absl::Seconds(10));
    REQUIRE_FALSE(proc.ok());
    std::string flag = std::string(bad).substr(0, std::string(bad).find('='));
    INFO(proc.status().message());
    CHECK(proc.status().message().find(flag) != std::string::npos);
  }
  // The shared key ring's flags: PostgreSQL without a KEK, a KEK file that is not one, and a
  // negative publish delay are refused before anything is opened.
  std::ofstream(dir.path() + "/not-a-kek") << "short\n";
  std::filesystem::permissions(dir.path() + "/not-a-kek", std::filesystem::perms::owner_read,
                               std::filesystem::perm_options::replace);
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--store=postgres", "--postgres_dsn=host=/nonexistent"}, "--key_encryption_key_file"},
      {{"--key_encryption_key_file=" + dir.path() + "/not-a-kek"}, "--key_encryption_key_file"},
      {{"--key_encryption_key_file=" + dir.path() + "/absent"}, "--key_encryption_key_file"},
      {{"--key_publish_delay=-1s"}, "--key_publish_delay"},
  };
  for (const auto& [args, flag] : cases) {
    std::vector<std::string> argv = {std::string("--data_dir=") + dir.path() + "/d"};
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<std::unique_ptr<ServerProcess>> proc =
        ServerProcess::Start(ServerBinary(), argv, absl::Seconds(10));
    REQUIRE_FALSE(proc.ok());
    INFO(proc.status().message());
    CHECK(proc.status().message().find(flag) != std::string::npos);
  }
}

// Issue 23 (6): --help said "No flags matched" and exited 1; --version on a Release build said
// "Debug build (NDEBUG not #defined)"; an unknown flag or a bad value exited 1 tersely.
TEST_CASE("Server: --help lists the flags by group with defaults, --version names the commit",
          "[integration][flags]") {
  for (const char* help : {"--help", "-h", "--helpfull"}) {
    ExitResult r = RunToExit(ServerBinary(), {help});
    INFO(help << ": " << r.output);
    CHECK(r.code == 0);
    for (const char* group : {"\nserving:\n", "\nstore:\n", "\nsigning keys:\n", "\ntokens:\n",
                              "\ncallers and TLS:\n"}) {
      CHECK(absl::StrContains(r.output, group));
    }
    CHECK(absl::StrContains(r.output, "(default: 127.0.0.1:50051)"));
    CHECK(absl::StrContains(r.output, "--access_ttl"));
    CHECK(absl::StrContains(r.output, "(default: 5m)"));
    CHECK_FALSE(absl::StrContains(r.output, "No flags matched"));
    CHECK_FALSE(absl::StrContains(r.output, "testing_clock_offset"));
  }
  ExitResult version = RunToExit(ServerBinary(), {"--version"});
  INFO(version.output);
  CHECK(version.code == 0);
  CHECK(absl::StartsWith(version.output, "token-authority "));
  CHECK(absl::StrContains(version.output, "(commit "));
  CHECK_FALSE(absl::StrContains(version.output, "NDEBUG"));
}

TEST_CASE("Server: every flag error exits 2 naming the flag", "[integration][flags]") {
  TempDir dir;
  std::ofstream(dir.Sub("flags")) << "# a flag file\n--listen=127.0.0.1:0\n--leeway=soon\n";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--frobnicate=1"}, "unknown flag --frobnicate"},
      {{"--access_ttl=abc"}, "--access_ttl"},
      {{"--sync_writes=maybe"}, "--sync_writes"},
      {{"--worker_threads"}, "--worker_threads: missing value"},
      {{"stray"}, "unexpected argument \"stray\""},
      {{"--flagfile=" + dir.Sub("flags")}, "--leeway"},
      {{"--flagfile=" + dir.Sub("absent")}, "--flagfile"},
      // Issue 23 (7): the option libpq refuses is named; the values are not echoed.
      {{"--store=postgres", "--postgres_dsn=host=/tmp pasword=hunter2"},
       "--postgres_dsn: not a libpq connection string or URI: invalid connection option "
       "\"pasword\""},
      {{"--callers_file=" + dir.Sub("no-callers.txt")}, "--callers_file: cannot read "},
      // Issue 26 #5: the token endpoint's per-peer limit.
      {{"--http_listen=127.0.0.1:0", "--token_endpoint_rate=-1"}, "--token_endpoint_rate"},
      {{"--http_listen=127.0.0.1:0", "--token_endpoint_burst=0.5"}, "--token_endpoint_burst"},
  };
  for (const auto& [args, expected] : cases) {
    std::vector<std::string> argv = {"--data_dir=" + dir.Sub("d")};
    argv.insert(argv.end(), args.begin(), args.end());
    ExitResult r = RunToExit(ServerBinary(), argv);
    INFO(args.back() << " -> " << r.code << ": " << r.output);
    CHECK(r.code == 2);
    CHECK(absl::StrContains(r.output, expected));
    CHECK_FALSE(absl::StrContains(r.output, "hunter2"));
  }
}

}  // namespace
}  // namespace ta::testing

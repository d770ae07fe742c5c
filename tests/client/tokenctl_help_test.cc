// tokenctl's help and bash completion (issue 16, 3 and 4e), run as a subprocess: every way
// of asking for help prints it on stdout and exits 0, every subcommand has help with an
// example, and the completion script completes what tokenctl accepts. Nothing here needs a
// server: each run is pointed at an address nobody serves.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/tokenctl/commands.h"
#include "tests/client/client_test_util.h"
#include "tests/support/temp_dir.h"

namespace ta::testing {
namespace {

ProcessResult Offline(std::vector<std::string> args) {
  args.insert(args.begin(), "--server=" + DeadAddress());
  return RunTokenctl(args);
}

TEST_CASE("tokenctl: --help, -h and help print the overview and exit 0", "[tokenctl][help]") {
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"--help"}, {"-h"}, {"help"}, {"--helpfull"}, {"--json", "--help"}}) {
    ProcessResult r = Offline(args);
    INFO(absl::StrJoin(args, " ") << " -> " << r.exit_code << "\n" << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(absl::StrContains(r.out, "usage: tokenctl [FLAGS] SUBCOMMAND"));
    for (const tokenctl::Command& c : tokenctl::Commands()) {
      CHECK(absl::StrContains(r.out, absl::StrCat("\n  ", c.name)));
    }
    CHECK(absl::StrContains(r.out, "--api_key_file=FILE"));
    CHECK(absl::StrContains(r.out, "\"-\" to read the token from stdin"));
  }
}

// Issue 23 (6): `tokenctl --version` was an unknown flag.
TEST_CASE("tokenctl: --version prints the version and commit and exits 0", "[tokenctl][help]") {
  ProcessResult r = Offline({"--version"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(absl::StartsWith(r.out, "tokenctl "));
  CHECK(absl::StrContains(r.out, "(commit "));
  ProcessResult bad = Offline({"stats", "--timeout=soon"});
  CHECK(bad.exit_code == 2);
  CHECK(absl::StrContains(bad.err, "--timeout"));
}

TEST_CASE("tokenctl: every subcommand has help with its flags and an example", "[tokenctl][help]") {
  for (const tokenctl::Command& c : tokenctl::Commands()) {
    std::string name(c.name);
    ProcessResult by_help = Offline({"help", name});
    ProcessResult by_flag = Offline({name, "--help"});
    INFO(name << ": " << by_help.err << by_flag.err);
    CHECK(by_help.exit_code == 0);
    CHECK(by_flag.exit_code == 0);
    CHECK(by_help.out == by_flag.out);
    CHECK(absl::StartsWith(by_help.out, absl::StrCat("usage: tokenctl ", name)));
    CHECK(absl::StrContains(by_help.out, absl::StrCat("example:\n  ", c.example, "\n")));
    for (absl::string_view flag : absl::StrSplit(c.flags, ' ', absl::SkipEmpty())) {
      CHECK(absl::StrContains(by_help.out, absl::StrCat("--", absl::StripSuffix(flag, "!"))));
    }
  }
  // Issue 23 (11): a required flag says so.
  ProcessResult issue = Offline({"issue", "--help"});
  for (absl::string_view line : absl::StrSplit(issue.out, '\n')) {
    if (absl::StartsWith(line, "  --client_id=")) CHECK(absl::StrContains(line, "REQUIRED: "));
    if (absl::StartsWith(line, "  --scope=")) CHECK_FALSE(absl::StrContains(line, "REQUIRED"));
  }
  ProcessResult missing = Offline({"issue", "alice"});
  CHECK(missing.exit_code == 2);
  CHECK(absl::StrContains(missing.err, "--client_id is required"));
  ProcessResult sessions = Offline({"sessions", "--help"});
  CHECK(absl::StrContains(sessions.out, "--include_revoked   also list revoked sessions"));
  ProcessResult unknown = Offline({"help", "frobnicate"});
  CHECK(unknown.exit_code == 2);
  CHECK(absl::StrContains(unknown.err, "unknown subcommand \"frobnicate\""));
}

TEST_CASE("tokenctl: flag names may use - for _", "[tokenctl][help]") {
  ProcessResult r = Offline({"--max-attempts=1", "--timeout=200ms", "sessions", "alice",
                             "--include-revoked", "--page-size=5"});
  INFO(r.err);
  CHECK(r.exit_code == 4);  // parsed; only the server is missing
  CHECK(Offline({"sessions", "alice", "--page-size=many"}).exit_code == 2);
}

// Runs the generated completion script in bash with COMP_WORDS = `line` split at spaces
// (a trailing space means an empty word being completed) and returns COMPREPLY.
std::string Complete(const std::string& script, const std::string& line) {
  TempDir dir;
  std::ofstream(dir.path() + "/completion.bash") << script;
  std::string command =
      absl::StrCat("cd ", dir.path(),
                   " && touch keys.pem && mkdir backups && bash --norc --noprofile -c 'source completion.bash;",
                   " read -ra COMP_WORDS <<< \"$0\"; [[ \"$0\" == *\" \" ]] && COMP_WORDS+=(\"\");",
                   " COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _tokenctl; echo \"${COMPREPLY[*]}\"' '",
                   line, "' > out 2>&1");
  REQUIRE(std::system(command.c_str()) == 0);
  std::ifstream in(dir.path() + "/out");
  std::string out;
  std::getline(in, out);
  return out;
}

TEST_CASE("tokenctl: completion bash completes subcommands, their flags and values",
          "[tokenctl][help]") {
  ProcessResult r = Offline({"completion", "bash"});
  REQUIRE(r.exit_code == 0);
  CHECK(absl::StrContains(r.out, "complete -F _tokenctl tokenctl"));
  CHECK(Complete(r.out, "tokenctl ses") == "sessions");
  CHECK(Complete(r.out, "tokenctl help revoke-") == "revoke-family revoke-subject");
  CHECK(Complete(r.out, "tokenctl sessions --inc") == "--include_revoked");
  CHECK(Complete(r.out, "tokenctl revoke-subject --from") == "--from_file= --from_line=");
  CHECK(Complete(r.out, "tokenctl --serv") == "--server=");
  CHECK(Complete(r.out, "tokenctl rotate-key --alg = E") == "ES256 EdDSA");
  CHECK(Complete(r.out, "tokenctl --tls_ca = ke") == "keys.pem");
  // bash splits "--server=127.0.0.1:1" at '=' and ':'; the subcommand is still found.
  CHECK(Complete(r.out, "tokenctl --server = 127.0.0.1 : 1 jwks --js") == "--json");
  CHECK(Complete(r.out, "tokenctl --server 127.0.0.1 : 1 stats --js") == "--json");
  CHECK(Complete(r.out, "tokenctl sessions al").empty());  // subjects are not guessed
  CHECK(Complete(r.out, "tokenctl completion ") == "bash");
  // backup and restore take directories (not files); --key_dir too.
  CHECK(Complete(r.out, "tokenctl backup ") == "backups");
  CHECK(Complete(r.out, "tokenctl restore backups ") == "backups");
  CHECK(Complete(r.out, "tokenctl restore --key_dir = ") == "backups");
  CHECK(Complete(r.out, "tokenctl restore --ser") == "--server_binary= --server=");

  ProcessResult zsh = Offline({"completion", "zsh"});
  CHECK(zsh.exit_code == 2);
  CHECK(absl::StrContains(zsh.err, "completion bash"));
}

}  // namespace
}  // namespace ta::testing

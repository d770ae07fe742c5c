// tokenctl as a subprocess against the real server: subcommands, --json parseable by the
// proto JSON parser, exit codes 0 / 2 / 3 / 4, and the API key never printed.
#include <catch2/catch.hpp>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/tokenctl/commands.h"
#include "tests/client/client_test_util.h"
#include "tests/client/tokenctl_test_util.h"
#include "tokenauthority/v1/token_authority.pb.h"

namespace ta::testing {
namespace {

namespace v1 = ::tokenauthority::v1;

TEST_CASE("tokenctl: issue, introspect, refresh, then reuse exits 3 with the reason",
          "[tokenctl]") {
  LiveServer server;
  v1::TokenPair pair = IssueJson(server, "alice");
  CHECK(!pair.access_token().empty());

  auto info =
      Json<v1::IntrospectResponse>(Tokenctl(server, {"introspect", pair.access_token(), "--json"}));
  CHECK(info.active());
  CHECK(info.subject() == "alice");
  ProcessResult human = Tokenctl(server, {"introspect", "-"}, pair.access_token() + "\n");
  CHECK(human.exit_code == 0);
  CHECK(absl::StrContains(human.out, "subject:    alice"));

  auto next = Json<v1::TokenPair>(Tokenctl(server, {"refresh", pair.refresh_token(), "--json"}));
  CHECK(next.family_id() == pair.family_id());
  ProcessResult reused = Tokenctl(server, {"refresh", pair.refresh_token()});
  CHECK(reused.exit_code == 3);
  CHECK(absl::StartsWith(reused.err, "error: refresh_token_reused: "));
  CHECK(!absl::StrContains(reused.err, "refresh_token_reused: refresh_token_reused"));
  CHECK(reused.out.empty());
}

TEST_CASE("tokenctl: introspect of an unusable token exits 0 with active=false", "[tokenctl]") {
  LiveServer server;
  ProcessResult human = Tokenctl(server, {"introspect", "not-a-token"});
  CHECK(human.exit_code == 0);
  CHECK(absl::StrContains(human.out, "active:     false"));
  ProcessResult json = Tokenctl(server, {"introspect", "not-a-token", "--json"});
  CHECK(absl::StrContains(json.out, "\"active\":false"));  // present, not omitted
  CHECK_FALSE(Json<v1::IntrospectResponse>(json).active());
}

TEST_CASE("tokenctl: revoke-family, revoke-subject and sessions", "[tokenctl]") {
  LiveServer server;
  v1::TokenPair pair = IssueJson(server, "alice");
  ProcessResult revoked = Tokenctl(server, {"revoke-family", "--reason=logout", "--", pair.family_id()});
  CHECK(revoked.exit_code == 0);
  CHECK(revoked.out == "revoked\n");
  auto again = Json<v1::RevokeFamilyResponse>(
      Tokenctl(server, {"revoke-family", "--json", "--", pair.family_id()}));
  CHECK_FALSE(again.changed());

  v1::TokenPair second = IssueJson(server, "alice");
  auto subject = Json<v1::RevokeSubjectResponse>(
      Tokenctl(server, {"revoke-subject", "alice", "--reason=password_change",
                        "--block_until=2030-01-01T00:00:00Z", "--json"}));
  CHECK(subject.block_until().seconds() == 1893456000);
  ProcessResult blocked = Tokenctl(server, {"issue", "alice", "--client_id=web"});
  CHECK(blocked.exit_code == 3);
  CHECK(absl::StartsWith(blocked.err, "error: subject_blocked: "));

  auto sessions = Json<v1::ListFamiliesResponse>(
      Tokenctl(server, {"sessions", "alice", "--include_revoked", "--json"}));
  REQUIRE(sessions.families_size() == 2);
  CHECK(sessions.families(0).family_id() == second.family_id());
  CHECK(sessions.families(1).revoked());  // revoke-subject sets a cutoff, not the flag
  ProcessResult table = Tokenctl(server, {"sessions", "alice", "--include_revoked"});
  CHECK(table.exit_code == 0);
  CHECK(absl::StrContains(table.out, pair.family_id()));
  CHECK(absl::StrContains(table.out, "device=laptop,ip=10.0.0.1"));
}

TEST_CASE("tokenctl: jwks, rotate-key, stats, revoke and family", "[tokenctl]") {
  LiveServer server;
  auto before = Json<v1::GetJwksResponse>(Tokenctl(server, {"jwks", "--json"}));
  REQUIRE(before.keys_size() == 1);
  ProcessResult rotated = Tokenctl(server, {"rotate-key"});
  REQUIRE(rotated.exit_code == 0);
  REQUIRE(absl::StartsWith(rotated.out, "kid: "));
  std::string kid = rotated.out.substr(5, rotated.out.find('\n') - 5);
  CHECK(absl::StrContains(rotated.out, "published now; signs "));
  ProcessResult jwks = Tokenctl(server, {"jwks"});
  CHECK(jwks.exit_code == 0);
  CHECK(absl::StrContains(jwks.out, kid));
  CHECK(absl::StrContains(jwks.out, before.keys(0).kid()));

  v1::TokenPair pair = IssueJson(server, "bob");
  CHECK(Tokenctl(server, {"revoke", pair.access_token()}).out == "ok\n");
  auto family = Json<v1::Family>(Tokenctl(server, {"family", "--json", "--", pair.family_id()}));
  CHECK(family.subject() == "bob");
  auto stats = Json<v1::GetStatsResponse>(Tokenctl(server, {"stats", "--json"}));
  CHECK(stats.signing_keys() == 2);
  CHECK(stats.families() >= 1);
  CHECK(Tokenctl(server, {"purge-expired"}).exit_code == 0);
}

// Issue 12 (suspected): `revoke-family --token=TOKEN` put a token in argv. Every subcommand
// that takes a token takes "-" for stdin; the list is checked against tokenctl's own table so
// that a new token-taking subcommand cannot skip this test.
TEST_CASE("tokenctl: every token argument takes - and reads the token from stdin",
          "[tokenctl][stdin]") {
  std::set<std::string> takes_token;
  for (const tokenctl::Command& c : tokenctl::Commands()) {
    std::vector<std::string> flags = absl::StrSplit(c.flags, ' ', absl::SkipEmpty());
    if (absl::StrContains(c.args, "TOKEN") || absl::c_linear_search(flags, "token")) {
      takes_token.insert(std::string(c.name));
    }
  }
  CHECK(takes_token == std::set<std::string>{"refresh", "introspect", "revoke", "revoke-family"});

  LiveServer server;
  v1::TokenPair pair = IssueJson(server, "erin");
  auto info = Json<v1::IntrospectResponse>(
      Tokenctl(server, {"introspect", "-", "--json"}, pair.access_token() + "\n"));
  CHECK(info.active());
  auto next = Json<v1::TokenPair>(
      Tokenctl(server, {"refresh", "-", "--json"}, "  " + pair.refresh_token() + "  \n"));
  CHECK(next.family_id() == pair.family_id());
  CHECK(Tokenctl(server, {"revoke", "-"}, next.access_token()).out == "ok\n");
  info = Json<v1::IntrospectResponse>(
      Tokenctl(server, {"introspect", "-", "--json"}, next.access_token() + "\n"));
  CHECK_FALSE(info.active());
  ProcessResult by_token =
      Tokenctl(server, {"revoke-family", "--token=-", "--reason=logout"}, next.refresh_token());
  INFO(by_token.err);
  CHECK(by_token.out == "revoked\n");

  for (std::vector<std::string> args :
       std::vector<std::vector<std::string>>{{"introspect", "-"},
                                             {"refresh", "-"},
                                             {"revoke", "-"},
                                             {"revoke-family", "--token=-"}}) {
    ProcessResult empty = Tokenctl(server, args, "");
    INFO(absl::StrJoin(args, " ") << ": " << empty.err);
    CHECK(empty.exit_code == 2);
    CHECK(absl::StrContains(empty.err, "no token on stdin"));
  }
}

// Issue 16 (4d): a fresh store holds its writes in the WAL until a flush; stats said 0 bytes.
TEST_CASE("tokenctl: stats counts the bytes of writes not yet flushed", "[tokenctl]") {
  LiveServer server;
  IssueJson(server, "dora");
  auto stats = Json<v1::GetStatsResponse>(Tokenctl(server, {"stats", "--json"}));
  CHECK(stats.disk_bytes() > 0);
}

TEST_CASE("tokenctl: usage errors exit 2 and name the problem", "[tokenctl]") {
  struct Case {
    std::vector<std::string> args;
    std::string names;
  };
  std::vector<Case> cases = {
      {{}, "missing subcommand"},
      {{"frobnicate"}, "frobnicate"},
      {{"--frobnicate", "stats"}, "--frobnicate"},
      {{"stats", "--nofrobnicate"}, "--nofrobnicate"},
      {{"--timeout=soon", "stats"}, "--timeout"},
      {{"--page_size=many", "sessions", "alice"}, "--page_size"},
      {{"stats", "--server"}, "--server"},
      {{"introspect"}, "introspect TOKEN"},
      {{"jwks", "extra"}, "jwks"},
      {{"revoke-subject", "alice", "--block_until=tomorrow"}, "--block_until"},
      {{"issue", "alice", "--metadata=novalue"}, "--metadata"},
      {{"issue", "alice", "--extra_claims=[1]"}, "--extra_claims"},
      {{"--api_key_file=/nonexistent/key", "stats"}, "--api_key_file"},
      {{"--tls_cert=/nonexistent/cert", "stats"}, "--tls_cert"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = c.args;
    args.insert(args.begin(), "--server=" + DeadAddress());  // nothing may be sent anyway
    ProcessResult r = RunTokenctl(args);
    INFO(absl::StrJoin(c.args, " ") << " -> " << r.exit_code << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(absl::StrContains(r.err, c.names));
  }
}

TEST_CASE("tokenctl: an unreachable server exits 4", "[tokenctl]") {
  for (std::string command : {"stats", "jwks"}) {
    ProcessResult r =
        RunTokenctl({"--server=" + DeadAddress(), "--timeout=500ms", "--max_attempts=2", command});
    INFO(r.err);
    CHECK(r.exit_code == 4);
    CHECK(absl::StartsWith(r.err, "error: unavailable: "));
  }
  BlackHole hole;
  ProcessResult r = RunTokenctl({"--server=" + hole.address(), "--timeout=200ms", "stats"});
  CHECK(r.exit_code == 4);
  CHECK(absl::StartsWith(r.err, "error: deadline_exceeded: "));
}

TEST_CASE("tokenctl: takes the key from --api_key_file or TA_API_KEY, never prints it",
          "[tokenctl]") {
  LiveServer server;
  std::string key = server.api_key();
  std::string key_file = server.key_file();
  if (key.empty()) {  // no authentication yet: still check that a key is never echoed
    key = "tokenctl-test-key-0123456789";
    key_file = server.scratch() + "/key";
    std::ofstream(key_file) << key << "\n";
  }
  std::string address = "--server=" + server.address();
  std::vector<ProcessResult> runs = {
      RunTokenctl({address, "--api_key_file=" + key_file, "stats"}),
      RunTokenctl({address, "stats"}, {"TA_API_KEY=" + key}),
      RunTokenctl({address, "--json", "stats"}, {"TA_API_KEY=" + key}),
  };
  for (const ProcessResult& r : runs) {
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(!absl::StrContains(r.out + r.err, key));
  }
  if (server.api_key().empty()) return;
  std::string wrong = "definitely-not-the-key";
  for (const ProcessResult& r : {RunTokenctl({address, "stats"}),
                                 RunTokenctl({address, "stats"}, {"TA_API_KEY=" + wrong})}) {
    CHECK(r.exit_code == 3);
    CHECK(absl::StartsWith(r.err, "error: unauthenticated"));
    CHECK(!absl::StrContains(r.err, wrong));
  }
}

// Issue 23 (11): like HYDRA_ADMIN_URL for hydra, the address can come from the environment.
TEST_CASE("tokenctl: the server address comes from --server, else TA_SERVER", "[tokenctl]") {
  LiveServer server;
  const std::string key = "--api_key_file=" + server.key_file();
  ProcessResult by_env = RunTokenctl({key, "stats"}, {"TA_SERVER=" + server.address()});
  INFO(by_env.err);
  CHECK(by_env.exit_code == 0);
  ProcessResult flag_wins = RunTokenctl({"--server=" + server.address(), key, "stats"},
                                        {"TA_SERVER=" + DeadAddress()});
  CHECK(flag_wins.exit_code == 0);
  ProcessResult dead = RunTokenctl({key, "--max_attempts=1", "stats"},
                                   {"TA_SERVER=" + DeadAddress()});
  CHECK(dead.exit_code == 4);
}

}  // namespace
}  // namespace ta::testing

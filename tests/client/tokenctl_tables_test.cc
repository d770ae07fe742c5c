// tokenctl for people, in pipes (issue 16, 3): sessions, jwks and stats as aligned tables
// with relative times and revoked rows marked; bulk revoke-subject --from_file; and no
// progress line or escape code ever reaching a stderr that is not a terminal. (The same
// under a real terminal: tty_test.sh.)
#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/client/tokenctl_test_util.h"

namespace ta::testing {
namespace {

namespace v1 = ::tokenauthority::v1;

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

// The line of `table` that contains `key`; REQUIREs one.
std::string Row(const std::string& table, const std::string& key) {
  for (const std::string& line : Lines(table)) {
    if (absl::StrContains(line, key)) return line;
  }
  FAIL("no row with " << key << " in\n" << table);
  return "";
}

// Column `header` starts at the same offset in the header and in `row`, after a space.
void CheckAligned(const std::string& table, const std::string& row, const std::string& header,
                  const std::string& cell) {
  size_t at = Lines(table).front().find(header);
  INFO(table);
  REQUIRE(at != std::string::npos);
  CHECK(row.substr(at, cell.size()) == cell);
  CHECK(row[at - 1] == ' ');
}

void CheckNoTerminalCodes(const ProcessResult& r) {
  CHECK(r.err.find('\r') == std::string::npos);
  CHECK(r.err.find('\033') == std::string::npos);
  CHECK(r.out.find('\033') == std::string::npos);
  CHECK_FALSE(absl::StrContains(r.err, "ETA"));
}

TEST_CASE("tokenctl: sessions is a table with relative times and revoked rows marked",
          "[tokenctl][tables]") {
  LiveServer server;
  v1::TokenPair laptop = IssueJson(server, "alice");
  v1::TokenPair phone = IssueJson(server, "alice");
  REQUIRE(Tokenctl(server, {"revoke-family", "--reason=logout", "--", laptop.family_id()}).exit_code ==
          0);

  ProcessResult table = Tokenctl(server, {"sessions", "alice", "--include_revoked"});
  INFO(table.out << table.err);
  REQUIRE(table.exit_code == 0);
  CheckNoTerminalCodes(table);
  CHECK(absl::StartsWith(table.out, "FAMILY_ID "));
  std::string live = Row(table.out, phone.family_id());
  std::string dead = Row(table.out, laptop.family_id());
  for (const std::string& row : {live, dead}) {
    CheckAligned(table.out, row, "CLIENT", "web ");
    CheckAligned(table.out, row, "CREATED", "just now");
    CheckAligned(table.out, row, "EXPIRES", "in 29 days");
    CheckAligned(table.out, row, "METADATA", "device=laptop,ip=10.0.0.1");
  }
  CheckAligned(table.out, live, "STATE", "active ");
  CheckAligned(table.out, dead, "STATE", "REVOKED");
  CheckAligned(table.out, dead, "NOTE", "revoked just now by local-admin: logout");
  CHECK(absl::EndsWith(live, "device=laptop,ip=10.0.0.1"));
  CHECK(absl::StrContains(table.out, "\n2 sessions, 1 revoked\n"));

  ProcessResult active = Tokenctl(server, {"sessions", "alice"});
  CHECK_FALSE(absl::StrContains(active.out, laptop.family_id()));
  CHECK(absl::StrContains(active.out, "\n1 session\n"));
  CHECK(Tokenctl(server, {"sessions", "nobody"}).out == "no active sessions for nobody\n");

  ProcessResult paged =
      Tokenctl(server, {"sessions", "alice", "--include_revoked", "--page_size=1"});
  CHECK(absl::StrContains(paged.out,
                          "more: tokenctl sessions alice --include_revoked --page_token="));
}

TEST_CASE("tokenctl: jwks marks the signing key, stats shows sizes", "[tokenctl][tables]") {
  LiveServer server;
  auto before = Json<v1::GetJwksResponse>(Tokenctl(server, {"jwks", "--json"}));
  REQUIRE(before.keys_size() == 1);
  REQUIRE(Tokenctl(server, {"rotate-key"}).exit_code == 0);
  ProcessResult jwks = Tokenctl(server, {"jwks"});
  INFO(jwks.out);
  CHECK(absl::StartsWith(jwks.out, "   KID "));
  std::string old_key = Row(jwks.out, before.keys(0).kid());
  CHECK(absl::StartsWith(old_key, "   "));                // not signing any more
  CheckAligned(jwks.out, old_key, "RETIRES", "in 23 h");  // --retired_key_window 24h
  CHECK(Lines(jwks.out)[1].front() == '*');               // the new key signs
  CheckAligned(jwks.out, Lines(jwks.out)[1], "CREATED", "just now");

  IssueJson(server, "bob");
  ProcessResult stats = Tokenctl(server, {"stats"});
  INFO(stats.out);
  CHECK(absl::StartsWith(stats.out, "RECORDS "));
  CHECK(absl::StrContains(Row(stats.out, "signing keys"), " 2"));
  CHECK(absl::StrContains(stats.out, "\non disk: "));
  CHECK_FALSE(absl::StrContains(stats.out, "on disk: 0 B"));
  // Issue 23 (7): the notes were RocksDB's only ("SST and WAL files"), on PostgreSQL too.
  CHECK(absl::StrContains(stats.out, "RocksDB's SST and WAL files, or PostgreSQL's tables"));
}

TEST_CASE("tokenctl: revoke-subject --from_file revokes each listed subject, no bar in a pipe",
          "[tokenctl][tables]") {
  LiveServer server;
  std::string file = server.scratch() + "/subjects.txt";
  std::vector<v1::TokenPair> sessions;
  {
    std::ofstream out(file);
    out << "# incident 42\n\n";
    for (int i = 0; i < 40; ++i) out << "user-" << i << "\n";
  }
  for (int i : {0, 39}) sessions.push_back(IssueJson(server, absl::StrCat("user-", i)));

  ProcessResult r = Tokenctl(server, {"revoke-subject", "--from-file", file, "--reason=incident"});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "revoked 40 of 40 subjects\n");
  CHECK(r.err.empty());
  CheckNoTerminalCodes(r);
  for (const v1::TokenPair& s : sessions) {
    auto info = Json<v1::IntrospectResponse>(
        Tokenctl(server, {"introspect", "-", "--json"}, s.access_token() + "\n"));
    CHECK_FALSE(info.active());
  }

  ProcessResult json =
      Tokenctl(server, {"revoke-subject", "--from_file=-", "--json"}, "alice\n\"quoted\"\n");
  CHECK(json.exit_code == 0);
  std::vector<std::string> lines = Lines(json.out);
  REQUIRE(lines.size() == 2);
  CHECK(absl::StartsWith(lines[0], "{\"subject\":\"alice\",\"notBefore\":\""));
  CHECK(absl::StartsWith(lines[1], "{\"subject\":\"\\\"quoted\\\"\","));
}

TEST_CASE(
    "tokenctl: revoke-subject --from_file reports each refused line, stops when "
    "unreachable",
    "[tokenctl][tables]") {
  LiveServer server;
  std::string file = server.scratch() + "/subjects.txt";
  std::ofstream(file) << "alice\n" << std::string(300, 'x') << "\nbob\n";
  ProcessResult r = Tokenctl(server, {"revoke-subject", "--from_file=" + file});
  CHECK(r.exit_code == 3);
  CHECK(r.out == "revoked 2 of 3 subjects\n");
  CHECK(absl::StartsWith(r.err, "line 2: xxx"));
  CHECK(absl::StrContains(r.err, "error: invalid_argument:subject"));

  ProcessResult dead = RunTokenctl(
      {"--server=" + DeadAddress(), "--max_attempts=1", "revoke-subject", "--from_file=" + file});
  CHECK(dead.exit_code == 4);
  CHECK(absl::StrContains(dead.err, "stopped at line 1 (not revoked): 0 of 3 subjects revoked; "
                                    "resume from line 1 (--from_line=1)"));

  CHECK(Tokenctl(server, {"revoke-subject", "alice", "--from_file=" + file}).exit_code == 2);
  CHECK(Tokenctl(server, {"revoke-subject", "--from_file=/nonexistent"}).exit_code == 2);
  CHECK(Tokenctl(server, {"revoke-subject", "--from_file=-"}, "# nothing\n").exit_code == 2);
}

TEST_CASE("tokenctl: purge-expired draws nothing on a stderr that is not a terminal",
          "[tokenctl][tables]") {
  LiveServer server;
  ProcessResult r = Tokenctl(server, {"purge-expired"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "ok\n");
  CHECK(r.err.empty());
}

}  // namespace
}  // namespace ta::testing

// Issue 23 (3): `tokenctl revoke-subject --from_file` resumed past a subject it never revoked.
// A line that failed with CANCELLED was counted and skipped; the run stopped one line later
// and said to resume there. Now a transport failure (CANCELLED, UNAVAILABLE,
// DEADLINE_EXCEEDED) stops the run at that very line, only answered revocations count, and
// --from_line resumes from it.
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <set>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "base/error.h"
#include "client/tokenctl/commands.h"
#include "tests/client/client_test_util.h"
#include "tests/client/tokenctl_test_util.h"
#include "tokenauthority/v1/token_authority.pb.h"

namespace ta::testing {
namespace {

namespace v1 = ::tokenauthority::v1;

// A Client whose RevokeSubject answers from a script, subject by subject; everything else
// is UNIMPLEMENTED.
class ScriptedClient : public client::Client {
 public:
  // `failures`: subject -> the status its RevokeSubject gets; others succeed.
  explicit ScriptedClient(std::map<std::string, absl::Status> failures)
      : failures_(std::move(failures)) {}

  // Subjects whose RevokeSubject succeeded, in the order the calls were made. Thread-safe
  // (tokenctl --parallel calls from several threads); read it after the run.
  std::vector<std::string> revoked;
  // Calls in flight now, and the most there were at once.
  std::atomic<int> in_flight{0}, max_in_flight{0};
  // Each call takes this long (to let parallel calls overlap).
  absl::Duration delay = absl::ZeroDuration();

  absl::StatusOr<v1::RevokeSubjectResponse> RevokeSubject(
      const v1::RevokeSubjectRequest& request) override {
    int now = ++in_flight;
    for (int seen = max_in_flight.load(); now > seen && !max_in_flight.compare_exchange_weak(seen, now);) {
    }
    absl::SleepFor(delay);
    --in_flight;
    auto it = failures_.find(request.subject());
    if (it != failures_.end()) return it->second;
    absl::MutexLock lock(&mu_);
    revoked.push_back(request.subject());
    return v1::RevokeSubjectResponse();
  }

  absl::StatusOr<v1::TokenPair> IssueTokens(const v1::IssueTokensRequest&) override {
    return No();
  }
  absl::StatusOr<v1::TokenPair> RefreshTokens(const v1::RefreshTokensRequest&) override {
    return No();
  }
  absl::StatusOr<v1::IntrospectResponse> Introspect(const v1::IntrospectRequest&) override {
    return No();
  }
  absl::StatusOr<v1::IntrospectBatchResponse> IntrospectBatch(
      const v1::IntrospectBatchRequest&) override {
    return No();
  }
  absl::StatusOr<v1::RevokeTokenResponse> RevokeToken(const v1::RevokeTokenRequest&) override {
    return No();
  }
  absl::StatusOr<v1::RevokeFamilyResponse> RevokeFamily(const v1::RevokeFamilyRequest&) override {
    return No();
  }
  absl::StatusOr<v1::GetJwksResponse> GetJwks(const v1::GetJwksRequest&) override { return No(); }
  absl::StatusOr<v1::ListFamiliesResponse> ListFamilies(const v1::ListFamiliesRequest&) override {
    return No();
  }
  absl::StatusOr<v1::Family> GetFamily(const v1::GetFamilyRequest&) override { return No(); }
  absl::StatusOr<v1::RotateSigningKeyResponse> RotateSigningKey(
      const v1::RotateSigningKeyRequest&) override {
    return No();
  }
  absl::StatusOr<v1::PurgeExpiredResponse> PurgeExpired(const v1::PurgeExpiredRequest&) override {
    return No();
  }
  absl::StatusOr<v1::GetStatsResponse> GetStats(const v1::GetStatsRequest&) override {
    return No();
  }
  absl::StatusOr<v1::CreateBackupResponse> CreateBackup(const v1::CreateBackupRequest&) override {
    return No();
  }

 private:
  static absl::Status No() { return absl::UnimplementedError("not scripted"); }
  std::map<std::string, absl::Status> failures_;
  absl::Mutex mu_;
};

struct Run {
  int code;
  std::string out, err;
};

Run RevokeFromStdin(ScriptedClient& client, const std::string& file, int from_line = 1,
                    int parallel = 1, bool json = false) {
  std::istringstream in(file);
  std::ostringstream out, err;
  tokenctl::Io io{out, err, in};
  tokenctl::CommandInput input;
  input.from_file = "-";
  input.from_line = from_line;
  input.parallel = parallel;
  input.json = json;
  int code = tokenctl::RunCommand(*tokenctl::FindCommand("revoke-subject"), input, client, io);
  return {code, out.str(), err.str()};
}

TEST_CASE("tokenctl: revoke-subject --from_file stops AT a line that failed in transit",
          "[tokenctl][resume]") {
  const std::string file = "# incident\ns1\ns2\ns3\ns4\ns5\n";  // s3 is on line 4
  for (absl::StatusCode code : {absl::StatusCode::kCancelled, absl::StatusCode::kUnavailable,
                                absl::StatusCode::kDeadlineExceeded}) {
    INFO(absl::StatusCodeToString(code));
    ScriptedClient client({{"s3", absl::Status(code, "the server went away")}});
    Run run = RevokeFromStdin(client, file);
    INFO(run.err);
    CHECK(run.code == tokenctl::kExitUnreachable);
    CHECK(client.revoked == std::vector<std::string>{"s1", "s2"});
    CHECK(absl::StrContains(run.err, "line 4: s3: error: "));
    CHECK(absl::StrContains(run.err, "stopped at line 4 (not revoked): 2 of 5 subjects revoked; "
                                     "resume from line 4 (--from_line=4)"));
    CHECK(run.out.empty());

    ScriptedClient resumed({});
    Run rest = RevokeFromStdin(resumed, file, 4);
    CHECK(rest.code == tokenctl::kExitOk);
    CHECK(resumed.revoked == std::vector<std::string>{"s3", "s4", "s5"});
    CHECK(rest.out == "revoked 3 of 3 subjects\n");
  }
}

TEST_CASE("tokenctl: revoke-subject --from_file counts only the subjects it revoked",
          "[tokenctl][resume]") {
  ScriptedClient client({{"bad", InvalidField("subject", "invalid_argument:subject: too long")},
                         {"gone", absl::PermissionDeniedError("no")}});
  Run run = RevokeFromStdin(client, "a\nbad\nb\ngone\nc\n");
  CHECK(run.code == tokenctl::kExitRefused);
  CHECK(run.out == "revoked 3 of 5 subjects\n");
  CHECK(absl::StrContains(run.err, "line 2: bad: "));
  CHECK(absl::StrContains(run.err, "line 4: gone: "));

  ScriptedClient none({});
  Run past_end = RevokeFromStdin(none, "a\nb\n", 3);
  CHECK(past_end.code == tokenctl::kExitUsage);
  CHECK(absl::StrContains(past_end.err, "--from_line"));
  Run zero = RevokeFromStdin(none, "a\n", 0);
  CHECK(zero.code == tokenctl::kExitUsage);
  CHECK(none.revoked.empty());
}

TEST_CASE("tokenctl: revoke-subject --from_file --parallel revokes every line, reports in "
          "line order, and stops at the first line lost in transit",
          "[tokenctl][resume]") {
  std::string file;
  for (int i = 1; i <= 200; ++i) absl::StrAppend(&file, "u", i, "\n");
  ScriptedClient client({});
  client.delay = absl::Milliseconds(1);
  Run run = RevokeFromStdin(client, file, 1, 16, /*json=*/true);
  CHECK(run.code == tokenctl::kExitOk);
  CHECK(client.revoked.size() == 200);
  CHECK(std::set<std::string>(client.revoked.begin(), client.revoked.end()).size() == 200);
  CHECK(client.max_in_flight.load() > 1);   // the calls did overlap
  CHECK(client.max_in_flight.load() <= 16);
  // --json lines come out in the file's order whatever order the answers came in.
  std::istringstream out(run.out);
  std::string line;
  for (int i = 1; std::getline(out, line); ++i) {
    INFO(line);
    REQUIRE(absl::StartsWith(line, absl::StrCat("{\"subject\":\"u", i, "\"")));
  }

  // u50 is lost in transit: every line before it was answered, the run resumes at it.
  ScriptedClient lossy({{"u50", absl::UnavailableError("connection reset")}});
  lossy.delay = absl::Milliseconds(1);
  Run stopped = RevokeFromStdin(lossy, file, 1, 8);
  INFO(stopped.err);
  CHECK(stopped.code == tokenctl::kExitUnreachable);
  CHECK(absl::StrContains(stopped.err, "resume from line 50 (--from_line=50)"));
  std::set<std::string> done(lossy.revoked.begin(), lossy.revoked.end());
  for (int i = 1; i < 50; ++i) CHECK(done.count(absl::StrCat("u", i)) == 1);
  CHECK(done.count("u50") == 0);
  CHECK(done.size() < 150);  // the hand-out of new lines stopped (the rest is timing)

  ScriptedClient none({});
  CHECK(RevokeFromStdin(none, file, 1, 0).code == tokenctl::kExitUsage);
  CHECK(RevokeFromStdin(none, file, 1, 65).code == tokenctl::kExitUsage);
  CHECK(none.revoked.empty());
}

int CountRevokeEvents(const std::string& audit_log) {
  std::ifstream in(audit_log);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    n += absl::StrContains(line, "\"action\":\"revoke.subject\"") &&
         absl::StrContains(line, "\"outcome\":\"ok\"");
  }
  return n;
}

// The resume line from "... resume from line N (--from_line=N)".
int ResumeLine(const std::string& err) {
  const std::string marker = "(--from_line=";
  size_t at = err.find(marker);
  REQUIRE(at != std::string::npos);
  int line = 0;
  std::string digits = err.substr(at + marker.size());
  digits = digits.substr(0, digits.find(')'));
  REQUIRE(absl::SimpleAtoi(digits, &line));
  return line;
}

TEST_CASE("tokenctl: revoke-subject --from_file, server stopped mid-run, resumed: all revoked",
          "[tokenctl][resume]") {
  constexpr int kSubjects = 1000;
  LiveServer server;
  const std::string file = server.scratch() + "/subjects.txt";
  {
    std::ofstream out(file);
    for (int i = 0; i < kSubjects; ++i) out << "user-" << i << "\n";
  }
  const std::vector<std::string> flags = {"--block_until=2030-01-01T00:00:00Z",
                                          "--reason=incident-42"};
  std::vector<std::string> args = Connect(server);
  args.insert(args.end(), {"revoke-subject", "--from_file=" + file});
  args.insert(args.end(), flags.begin(), flags.end());
  ProcessResult first;
  std::thread run([&] { first = RunTokenctl(args); });
  // Stop the server once a tenth of the subjects are revoked: the run is then mid-file.
  const std::string audit_log = server.data_dir() + "/audit.log";
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (CountRevokeEvents(audit_log) < kSubjects / 10 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  CHECK(server.Stop(SIGTERM).value_or(-1) == 0);
  run.join();
  INFO("first run: " << first.err);
  REQUIRE(first.exit_code == tokenctl::kExitUnreachable);
  const int resume = ResumeLine(first.err);
  CHECK(resume > 1);
  CHECK(resume < kSubjects);
  // Every line before the resume line was answered, so exactly those count.
  CHECK(absl::StrContains(first.err, absl::StrCat(resume - 1, " of ", kSubjects,
                                                  " subjects revoked; resume from line ", resume)));
  CHECK(CountRevokeEvents(audit_log) >= resume - 1);

  server.Restart();
  args = Connect(server);
  args.insert(args.end(), {"revoke-subject", "--from_file=" + file,
                           absl::StrCat("--from_line=", resume)});
  args.insert(args.end(), flags.begin(), flags.end());
  ProcessResult rest = RunTokenctl(args);
  INFO("resumed run: " << rest.err);
  CHECK(rest.exit_code == 0);
  const int left = kSubjects - resume + 1;
  CHECK(rest.out == absl::StrCat("revoked ", left, " of ", left, " subjects\n"));

  // Proof: every subject of the file is blocked, none was skipped.
  std::unique_ptr<client::Client> c = server.NewClient();
  int blocked = 0;
  for (int i = 0; i < kSubjects; ++i) {
    v1::IssueTokensRequest issue;
    issue.set_subject(absl::StrCat("user-", i));
    issue.set_client_id("web");
    absl::StatusOr<v1::TokenPair> pair = c->IssueTokens(issue);
    if (!pair.ok() && ReasonOf(pair.status()) == "subject_blocked") {
      ++blocked;
    } else {
      UNSCOPED_INFO("user-" << i << " is not blocked: " << pair.status().ToString());
    }
  }
  CHECK(blocked == kSubjects);
}

}  // namespace
}  // namespace ta::testing

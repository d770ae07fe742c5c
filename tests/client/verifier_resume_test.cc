// The local verifier (client/verifier.h) across a break in its stream that it cannot resume
// from (issue 25 item 5), on the embedded RocksDB server in this process, the verifier reaching
// it through a TCP proxy the test cuts (tests/support/tcp_proxy.h), so the server never knows:
//  - compaction past its position: while it is cut off, more revocations commit than the
//    server keeps (--watch_history 8); it resumes with since = its position and gets an
//    explicit reset (the same epoch) and a snapshot, and ends answering as Introspect, with
//    exactly the live set;
//  - restore from a backup: the server is stopped and a backup restored into a new data dir
//    and started (a log that reuses the sequence numbers the verifier has seen, already past
//    its position); the verifier resets to the new epoch and ends with exactly the restored
//    server's live set and answers, never active for what that server considers revoked.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "client/verifier.h"
#include "server/restore.h"
#include "tests/support/local_verifier_server.h"
#include "tests/support/tcp_proxy.h"
#include "tests/support/test_server.h"

namespace ta::testing {
namespace {

using client::LocalVerifier;

std::unique_ptr<TcpProxy> ProxyTo(const std::string& target) {
  absl::StatusOr<std::unique_ptr<TcpProxy>> proxy = TcpProxy::Start(target);
  INFO(proxy.status().ToString());
  REQUIRE(proxy.ok());
  return *std::move(proxy);
}

// Cuts the verifier off and waits until it has noticed.
void CutOff(TcpProxy& proxy, const LocalVerifier& v) {
  proxy.Cut();
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (v.state().connected && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  REQUIRE(!v.state().connected);
}

// Sessions and revocations of every width; `revoked` and `live` are the tokens each way, and
// `entries` the log entries the revocations made.
struct Corpus {
  explicit Corpus(TestServer& s) : s(s) {}
  v1::TokenPair Issue(const std::string& subject) {
    v1::TokenPair pair;
    REQUIRE(s.Issue(subject, &pair).ok());
    live.push_back(pair.access_token());
    return pair;
  }
  void Revoked(const std::string& token, int made) {
    live.erase(std::remove(live.begin(), live.end(), token), live.end());
    revoked.push_back(token);
    entries += made;
  }
  // Issues what RevokeEach will revoke (so the verifier saw them active first).
  std::vector<v1::TokenPair> IssueEach(const std::string& tag) {
    return {Issue(tag + "-jti"), Issue(tag + "-family"), Issue(tag + "-reuse"),
            Issue(tag + "-subject"), Issue(tag + "-subject")};
  }
  void RevokeEach(const std::string& tag, const std::vector<v1::TokenPair>& p) {
    v1::RevokeTokenRequest jti;
    jti.set_token(p[0].access_token());
    v1::RevokeTokenResponse jti_resp;
    REQUIRE(s.Call(s.api(), &v1::TokenAuthority::Stub::RevokeToken, jti, &jti_resp).ok());
    Revoked(p[0].access_token(), 1);
    v1::RevokeFamilyRequest family;
    family.set_family_id(p[1].family_id());
    v1::RevokeFamilyResponse family_resp;
    REQUIRE(s.Call(s.api(), &v1::TokenAuthority::Stub::RevokeFamily, family, &family_resp).ok());
    Revoked(p[1].access_token(), 1);
    v1::TokenPair next;
    REQUIRE(s.Refresh(p[2].refresh_token(), &next).ok());
    REQUIRE(!s.Refresh(p[2].refresh_token(), &next).ok());  // reuse: the family dies
    revoked.push_back(next.access_token());
    Revoked(p[2].access_token(), 1);
    s.clock().Advance(absl::Milliseconds(10));  // the cutoff after their iat
    v1::RevokeSubjectRequest subject;
    subject.set_subject(tag + "-subject");
    v1::RevokeSubjectResponse subject_resp;
    REQUIRE(s.Call(s.admin(), &v1::TokenAdmin::Stub::RevokeSubject, subject, &subject_resp).ok());
    Revoked(p[3].access_token(), 1);
    Revoked(p[4].access_token(), 1);
  }
  std::vector<std::string> all() const {
    std::vector<std::string> tokens = live;
    tokens.insert(tokens.end(), revoked.begin(), revoked.end());
    return tokens;
  }

  TestServer& s;
  std::vector<std::string> live, revoked;
  size_t entries = 0;
};

// The verifier answers as the server for every token of `tokens`; how many are inactive.
int CheckSameAnswers(TestServer& server, const LocalVerifier& v,
                     const std::vector<std::string>& tokens) {
  int inactive = 0;
  for (const std::string& t : tokens) {
    const std::string expected = ServerAnswer(server, t);
    INFO("server: " << expected);
    CHECK(VerifierAnswer(v, t) == expected);
    inactive += expected != "active";
  }
  return inactive;
}

TEST_CASE(
    "LocalVerifier: cut off while more revocations commit than the server keeps, it resumes "
    "into a reset and a snapshot and ends with exactly the live set",
    "[client][verifier][watch_history]") {
  TestServer server([](ServerOptions& o) { o.authority.watch_history = 8; });
  std::unique_ptr<TcpProxy> proxy = ProxyTo(server.address());
  std::unique_ptr<LocalVerifier> v = StartVerifier(VerifierOptionsFor(server, proxy->address()));
  Corpus corpus(server);
  corpus.RevokeEach("before", corpus.IssueEach("before"));
  REQUIRE(Sync(server, *v, 1));
  const client::VerifierState first = v->state();
  REQUIRE(first.resets == 1);
  std::vector<std::vector<v1::TokenPair>> away;
  for (int i = 0; i < 4; ++i) away.push_back(corpus.IssueEach(absl::StrCat("away-", i)));
  REQUIRE(Sync(server, *v));
  for (const std::string& t : corpus.live) REQUIRE(VerifierAnswer(*v, t) == "active");

  // Cut off at its position; 20 entries commit (every width), 12 of them past what is kept.
  CutOff(*proxy, *v);
  for (int i = 0; i < 4; ++i) corpus.RevokeEach(absl::StrCat("away-", i), away[i]);
  proxy->Resume();
  CHECK(Sync(server, *v, 2));  // a reset came
  REQUIRE(Sync(server, *v));   // and it is current (if only by a resume: then with a gap)
  const client::VerifierState back = v->state();
  CHECK(back.resets == 2);           // an explicit reset, not a resume into a gap
  CHECK(back.epoch == first.epoch);  // the same server: compaction, not a restart
  CHECK(back.reconnects >= 1);
  CHECK(back.entries == corpus.entries);  // exactly the live set (nothing expired yet)
  const int inactive = CheckSameAnswers(server, *v, corpus.all());
  CHECK(inactive == static_cast<int>(corpus.revoked.size()));
  CHECK(proxy->forwarded() >= 2);
}

TEST_CASE(
    "LocalVerifier: after a restore from a backup it resets to the restored server and ends "
    "with exactly its live set and answers",
    "[client][verifier][restore]") {
  TempDir backups;
  TestServer server;
  std::unique_ptr<TcpProxy> proxy = ProxyTo(server.address());
  std::unique_ptr<LocalVerifier> v = StartVerifier(VerifierOptionsFor(server, proxy->address()));
  Corpus before(server);
  before.RevokeEach("before", before.IssueEach("before"));
  const std::vector<v1::TokenPair> after_backup = before.IssueEach("after-backup");
  REQUIRE(Sync(server, *v, 1));
  const uint64_t epoch = v->state().epoch;

  v1::CreateBackupRequest backup;
  backup.set_backup_dir(backups.Sub("b"));
  v1::CreateBackupResponse made;
  REQUIRE(server.Call(server.admin(), &v1::TokenAdmin::Stub::CreateBackup, backup, &made).ok());
  // Revocations the backup does not hold; the verifier learns them.
  Corpus lost(server);
  lost.RevokeEach("after-backup", after_backup);
  REQUIRE(Sync(server, *v));
  for (const std::string& t : lost.revoked) REQUIRE(VerifierAnswer(*v, t) != "active");
  const uint64_t seen = v->state().seq;
  REQUIRE(seen == before.entries + lost.entries);

  // Stop; restore into a new data dir (the same admin key: the callers' config is kept) and
  // start on it, the verifier still cut off. The restored log goes on from the backup's seq:
  // new revocations there reuse the numbers the verifier saw, and go past its position.
  CutOff(*proxy, *v);
  const std::string old_dir = server.data_dir();
  const std::string restored = backups.Sub("restored");
  server.Restart([&](ServerOptions& o) {
    RestoreOptions restore;
    restore.backup_dir = backups.Sub("b");
    restore.data_dir = restored;
    absl::StatusOr<RestoreReport> report = RestoreBackup(restore);
    INFO(report.status().ToString());
    REQUIRE(report.ok());
    std::filesystem::copy_file(old_dir + "/admin.key", restored + "/admin.key");
    o.data_dir = restored;
  });
  Corpus again(server);
  for (int i = 0; i < 2; ++i) {
    again.RevokeEach(absl::StrCat("restored-", i), again.IssueEach(absl::StrCat("restored-", i)));
  }
  REQUIRE(before.entries + again.entries > seen);
  proxy->Resume(server.address());
  CHECK(Sync(server, *v, 2));
  REQUIRE(Sync(server, *v));
  const client::VerifierState state = v->state();
  CHECK(state.resets == 2);
  CHECK(state.epoch != epoch);
  CHECK(state.entries == before.entries + again.entries);
  std::vector<std::string> tokens = before.all();
  for (const std::string& t : lost.all()) tokens.push_back(t);
  for (const std::string& t : again.all()) tokens.push_back(t);
  const int inactive = CheckSameAnswers(server, *v, tokens);
  CHECK(inactive == static_cast<int>(before.revoked.size() + again.revoked.size()));
  // What was revoked after the backup is active again on the restored server, and so here.
  for (const std::string& t : lost.revoked) CHECK(ServerAnswer(server, t) == "active");
}

}  // namespace
}  // namespace ta::testing

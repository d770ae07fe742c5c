// A replica whose clock is off (issue 22, DESIGN §13), with the test-only clock offset on one
// of three replicas: it measures its offset to the database's clock at every poll and, past
// --max_clock_offset, reports NOT_SERVING and judges no token; and the purge it runs keeps
// every revocation the other replicas' clocks still need, so one that starts later loads them.
#include <catch2/catch.hpp>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/replicas/replica_set.h"

namespace ta::testing {
namespace {

TEST_CASE("Replicas: a replica whose clock runs 6 min ahead refuses to judge tokens, and its "
          "purge keeps the revocations the others need",
          "[replicas][clock]") {
  absl::StatusOr<PgEnv> pg = StartPg();
  INFO(pg.status().ToString());
  REQUIRE(pg.ok());
  ReplicaSetOptions options;
  options.dsn = pg->db->dsn();
  // Access tokens alive 1.5 min (ttl + leeway): dead by the fast clock, alive by the others.
  options.flags = {"--access_ttl=1m"};
  options.replica_flags = {{2, {"--testing_clock_offset=6m"}}};
  absl::StatusOr<std::unique_ptr<ReplicaSet>> started = ReplicaSet::Start(options);
  INFO(started.status().ToString());
  REQUIRE(started.ok());
  ReplicaSet& replicas = **started;
  RemoteServer& a = replicas.at(0);
  RemoteServer& fast = replicas.at(2);

  constexpr int kTokens = 20;
  std::vector<std::string> revoked;
  for (int i = 0; i < kTokens; ++i) {
    v1::TokenPair pair;
    REQUIRE(a.Issue(absl::StrCat("user-", i), &pair).ok());
    REQUIRE(a.RevokeToken(pair.access_token()).ok());
    revoked.push_back(pair.access_token());
  }
  v1::TokenPair live;
  REQUIRE(a.Issue("alive", &live).ok());

  // The fast replica knows it is off: NOT_SERVING, no verdict on any token, a log line.
  CHECK(PollUntil(absl::Seconds(5), [&] { return CheckHealth(fast) == Health::kNotServing; }));
  INFO(replicas.Logs());
  CHECK(IntrospectWord(fast, live.access_token()) == "error:clock_offset_exceeded");
  CHECK(IntrospectWord(fast, revoked[0]) == "error:clock_offset_exceeded");
  CHECK(absl::StrContains(fast.ReadStderr(), "clock offset exceeded"));
  CHECK(CheckHealth(a) == Health::kServing);
  CHECK(IntrospectWord(a, live.access_token()) == "active");

  // Its purge (the reaper's work, by its clock 6 min ahead) must not delete what the others'
  // clocks still need.
  v1::PurgeExpiredResponse purged;
  Outcome purge = Call(fast.admin_key(), fast.admin(), &v1::TokenAdmin::Stub::PurgeExpired,
                       v1::PurgeExpiredRequest(), &purged);
  REQUIRE(purge.ok());
  // A replica that starts now loads the log: every revocation is in it.
  REQUIRE(replicas.Restart(1).ok());
  RemoteServer& later = replicas.at(1);
  REQUIRE(PollUntil(absl::Seconds(10), [&] { return CheckHealth(later) == Health::kServing; }));
  int answered_revoked = 0;
  for (const std::string& token : revoked) {
    answered_revoked += IntrospectWord(later, token) == "token_revoked";
  }
  CHECK(answered_revoked == kTokens);
  std::cout << "clock 6 min ahead on 1 of 3 replicas: it answers clock_offset_exceeded and "
               "NOT_SERVING; after its purge a restarted replica finds "
            << answered_revoked << " of " << kTokens << " revoked tokens revoked" << std::endl;
}

}  // namespace
}  // namespace ta::testing

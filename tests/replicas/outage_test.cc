// PostgreSQL stopped or hung under three replicas (issue 14 item 4): writes fail UNAVAILABLE
// at once, access-token introspection answers from the view until the lag bound and then
// refuses (revocations_stale), health says NOT_SERVING; when PostgreSQL is back everything
// resumes by itself, with no restart of the servers.
#include <catch2/catch.hpp>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/replicas/replica_set.h"

namespace ta::testing {
namespace {

// How PostgreSQL goes away in a case.
enum class Outage { kStopped, kHung };

// Writes on every replica (at once) while PostgreSQL is away: each UNAVAILABLE within
// `bound`.
void ExpectWritesUnavailable(ReplicaSet& replicas, const v1::TokenPair& live,
                             absl::Duration bound) {
  std::vector<Outcome> outcomes(6);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      v1::TokenPair out;
      outcomes[2 * i] = replicas.at(i).Issue("bob", &out);
      outcomes[2 * i + 1] = replicas.at(i).Refresh(live.refresh_token(), &out);
    });
  }
  for (std::thread& t : threads) t.join();
  absl::Duration slowest;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    const Outcome& o = outcomes[i];
    INFO("replica " << i / 2 << (i % 2 == 0 ? " issue: " : " refresh: ") << o.status.error_code()
                    << " " << o.reason << " " << o.status.error_message() << " after " << o.took);
    CHECK(o.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(o.reason == "store_unavailable");
    CHECK(o.took < bound);
    slowest = std::max(slowest, o.took);
  }
  std::cout << "  writes (issue, then refresh) on 3 replicas: UNAVAILABLE store_unavailable, "
               "slowest answer "
            << slowest << std::endl;
}

void RunOutage(Outage outage) {
  Fixture fx = StartFixture({}, /*wait_serving=*/true);
  ReplicaSet& replicas = *fx.replicas;
  v1::TokenPair live, revoked;
  REQUIRE(replicas.at(0).Issue("alice", &live).ok());
  REQUIRE(replicas.at(1).Issue("carol", &revoked).ok());
  REQUIRE(replicas.at(1).RevokeToken(revoked.access_token()).ok());
  for (int i = 0; i < 3; ++i) {
    REQUIRE(PollUntil(absl::Seconds(5), [&] {
      return IntrospectWord(replicas.at(i), revoked.access_token()) == "token_revoked";
    }));
  }

  const absl::Time down_begin = absl::Now();
  REQUIRE((outage == Outage::kStopped ? fx.pg.cluster->Kill() : fx.pg.cluster->Pause()).ok());
  const absl::Time down = absl::Now();
  std::cout << (outage == Outage::kStopped ? "PostgreSQL stopped (pg_ctl stop -m immediate)"
                                           : "PostgreSQL hung (SIGSTOP of every process)")
            << " under 3 replicas:" << std::endl;

  // Until the bound, the view answers; a revoked token stays revoked whatever happens.
  for (int i = 0; i < 3; ++i) {
    const absl::Time sent = absl::Now();
    const std::string word = IntrospectWord(replicas.at(i), live.access_token());
    INFO("replica " << i << " answered " << word << ", sent " << sent - down_begin
                    << " after the outage began");
    CHECK((word == "active" || word == "error:revocations_stale"));
    if (sent - down_begin < absl::Milliseconds(300)) CHECK(word == "active");
    const std::string denied = IntrospectWord(replicas.at(i), revoked.access_token());
    CHECK((denied == "token_revoked" || denied == "error:revocations_stale"));
  }

  // Past the bound no replica may call a token active: its view is not proved current.
  absl::SleepFor(down + kMaxLag + absl::Milliseconds(50) - absl::Now());
  for (int i = 0; i < 3; ++i) {
    v1::IntrospectResponse resp;
    Outcome o = replicas.at(i).Introspect(live.access_token(), &resp);
    INFO("replica " << i << ": " << o.status.error_code() << " " << o.reason << " "
                    << o.status.error_message() << " active=" << resp.active() << " after "
                    << o.took);
    CHECK(o.status.error_code() == grpc::StatusCode::UNAVAILABLE);
    CHECK(o.reason == "revocations_stale");
    CHECK(o.took < absl::Seconds(2));
  }
  // A stopped server refuses connections at once. A hung one answers nothing: the store
  // gives a statement up after its reply timeout (statement_timeout 5 s + 1 s), a new
  // connection after connect_timeout (5 s).
  ExpectWritesUnavailable(replicas, live,
                          outage == Outage::kStopped ? absl::Seconds(1) : absl::Seconds(9));

  for (int i = 0; i < 3; ++i) {
    INFO("replica " << i);
    CHECK(PollUntil(absl::Seconds(15),
                    [&] { return CheckHealth(replicas.at(i)) == Health::kNotServing; },
                    absl::Milliseconds(100)));
  }
  std::cout << "  introspection revocations_stale and health NOT_SERVING on all three, "
            << absl::Now() - down << " after the outage began" << std::endl;

  const absl::Time back_begin = absl::Now();
  REQUIRE((outage == Outage::kStopped ? fx.pg.cluster->Restart() : fx.pg.cluster->Resume()).ok());
  const absl::Time back = absl::Now();
  for (int i = 0; i < 3; ++i) {
    INFO("replica " << i << "\n" << replicas.Logs());
    RemoteServer& r = replicas.at(i);
    CHECK(PollUntil(absl::Seconds(20), [&] {
      v1::TokenPair out;
      return r.Issue("dave", &out).ok() && IntrospectWord(r, live.access_token()) == "active" &&
             CheckHealth(r) == Health::kServing;
    }));
  }
  std::cout << "  PostgreSQL back (" << back - back_begin << " to start): writes, introspection "
            << "and health resumed on all three " << absl::Now() - back
            << " after it was back, no server restarted" << std::endl;
  // And the log is followed again: a revocation now reaches the others.
  REQUIRE(replicas.at(2).RevokeToken(live.access_token()).ok());
  for (int i = 0; i < 3; ++i) {
    CHECK(PollUntil(absl::Seconds(5), [&] {
      return IntrospectWord(replicas.at(i), live.access_token()) == "token_revoked";
    }));
  }
}

TEST_CASE("Replicas: PostgreSQL stopped: writes UNAVAILABLE, introspection stale after the "
          "bound, health NOT_SERVING, and all resumes when it is back",
          "[replicas][outage]") {
  RunOutage(Outage::kStopped);
}

TEST_CASE("Replicas: PostgreSQL hung (SIGSTOP): the same, bounded by the store's timeouts",
          "[replicas][outage]") {
  RunOutage(Outage::kHung);
}

}  // namespace
}  // namespace ta::testing

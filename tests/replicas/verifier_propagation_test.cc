// Revocation -> a local verifier's answer, the benchmark of issue 25 item 7: the delay from the
// revoking call's acknowledgement to client::LocalVerifier::Verify answering inactive (polled
// every 100 µs: Verify is a local call), under a mixed background load (3 client threads:
// issue, refresh, revoke, replay, introspect), in two set-ups:
//  - one node: one server on its embedded RocksDB store, the verifier following it, the
//    revocations made on it (the stream pushes entries as they commit);
//  - three replicas over one PostgreSQL: the verifier following replica 0, the revocations made
//    on replicas 1 and 2 in turn (replica 0 reads them from the shared log, then pushes them).
// Half the samples deny a jti (RevokeToken), half revoke a family. Prints p50/p99/max and
// appends "verifier_<setup>_..." lines to --stats_file for scripts/bench_verifier.sh.
// Asserted, generously for a loaded machine: never active after ack + lag + the verifier's
// bound; every sample seen inactive. Hidden from CI ([.]): the CI's verifier_replicas and
// verifier tests check the same guarantee with fewer samples.
//   replica_tests "[verifier_propagation]" --samples 500 --stats_file F
#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <iostream>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/error.h"
#include "client/verifier.h"
#include "tests/replicas/flags.h"
#include "tests/replicas/replica_set.h"
#include "tests/replicas/workload.h"
#include "tests/support/local_verifier.h"

namespace ta::testing {
namespace {

using client::LocalVerifier;

constexpr char kIssuer[] = "ta-verifier-propagation";
constexpr absl::Duration kStaleness = absl::Seconds(1);  // the verifier's max_staleness
constexpr absl::Duration kGiveUp = absl::Seconds(10);
constexpr int kLoadWorkers = 3;

// A current verifier of kIssuer's tokens with the bound kStaleness, following `server`.
std::unique_ptr<LocalVerifier> Follow(RemoteServer& server) {
  client::LocalVerifierOptions o = VerifierOptions(server.address(), server.admin_key(), kIssuer);
  o.max_staleness = kStaleness;
  std::unique_ptr<LocalVerifier> v = StartVerifier(std::move(o));
  REQUIRE(v->WaitUntilCurrent(absl::Seconds(15)));
  return v;
}

struct Timing {
  std::vector<absl::Duration> delays;
  int late_active = 0;  // active answers asked after ack + bound
  int stale = 0;        // revocations_stale answers while waiting
  int gave_up = 0;
};

// Issues on `on`, waits until `v` calls the token active, revokes it through `via` (sample `s`:
// a jti when even, the family when odd) and polls `v` from the acknowledgement until inactive.
void TimeOne(int s, const LocalVerifier& v, RemoteServer& on, RemoteServer& via,
             absl::Duration bound, Timing& t) {
  v1::TokenPair pair;
  REQUIRE(on.Issue(absl::StrCat("vp-", s), &pair).ok());
  REQUIRE(PollUntil(
      absl::Seconds(5), [&] { return VerifierAnswer(v, pair.access_token()) == "active"; },
      absl::Milliseconds(1)));
  const bool family = s % 2 == 1;
  Outcome r = family ? via.RevokeFamily(pair.family_id()) : via.RevokeToken(pair.access_token());
  const absl::Time ack = absl::Now();
  REQUIRE(r.ok());
  for (;;) {
    const absl::Time asked = absl::Now();
    const std::string word = VerifierAnswer(v, pair.access_token());
    if (word == "active") {
      if (asked > ack + bound) ++t.late_active;
    } else if (absl::StartsWith(word, "error:")) {
      ++t.stale;
    } else {
      CHECK(word == (family ? "family_revoked" : "token_revoked"));
      t.delays.push_back(absl::Now() - ack);
      return;
    }
    if (asked - ack > kGiveUp) {
      ++t.gave_up;
      return;
    }
    absl::SleepFor(absl::Microseconds(100));
  }
}

// Runs the background load on `servers` while `body` runs; the load's calls/s.
double UnderLoad(const std::vector<RemoteServer*>& servers, const std::function<void()>& body) {
  BackgroundLoad load(kLoadWorkers, /*first_index=*/200, /*first_seed=*/std::nullopt, servers);
  body();
  load.Stop();
  for (auto& w : load.workers()) {
    for (const std::string& e : w->errors()) FAIL_CHECK("background load: " << e);
  }
  return load.calls_per_second();
}

void Report(const std::string& setup, Timing& t, double load, absl::Duration bound) {
  const double p50 = absl::ToDoubleMilliseconds(Percentile(t.delays, 50));
  const double p99 = absl::ToDoubleMilliseconds(Percentile(t.delays, 99));
  const double max = absl::ToDoubleMilliseconds(Percentile(t.delays, 100));
  std::cout << absl::StrFormat(
                   "verifier propagation (%s): %d revocations, ack -> Verify inactive p50 %.1f "
                   "ms, p99 %.1f ms, max %.1f ms; stale answers %d; background load %.0f calls/s",
                   setup, t.delays.size(), p50, p99, max, t.stale, load)
            << std::endl;
  if (!g_stats_file.empty()) {
    std::ofstream(g_stats_file, std::ios::app) << absl::StrFormat(
        "verifier_%s_samples %d\nverifier_%s_p50_ms %.1f\nverifier_%s_p99_ms %.1f\n"
        "verifier_%s_max_ms %.1f\nverifier_%s_stale %d\nverifier_%s_load_calls_per_s %.0f\n",
        setup, t.delays.size(), setup, p50, setup, p99, setup, max, setup, t.stale, setup, load);
  }
  CHECK(t.late_active == 0);
  CHECK(t.gave_up == 0);
  CHECK(Percentile(t.delays, 100) <= bound);
}

TEST_CASE("Verifier propagation: one node, revocation -> Verify inactive under load",
          "[.][verifier_propagation]") {
  TempDir dir;
  RemoteServer server(dir.path(), {absl::StrCat("--issuer=", kIssuer)});
  REQUIRE(server.Start().ok());
  std::unique_ptr<LocalVerifier> v = Follow(server);
  Timing t;
  const double load = UnderLoad({&server}, [&] {
    for (int s = 0; s < g_samples; ++s) TimeOne(s, *v, server, server, kStaleness, t);
  });
  Report("node", t, load, kStaleness);
}

TEST_CASE(
    "Verifier propagation: three replicas, revocations on 1 and 2 -> Verify inactive on "
    "a verifier following 0, under load",
    "[.][verifier_propagation]") {
  Fixture fx = StartFixture({absl::StrCat("--issuer=", kIssuer)}, /*wait_serving=*/true);
  ReplicaSet& rs = *fx.replicas;
  std::unique_ptr<LocalVerifier> v = Follow(rs.at(0));
  Timing t;
  const double load = UnderLoad(rs.all(), [&] {
    for (int s = 0; s < g_samples; ++s) {
      TimeOne(s, *v, rs.at(1 + s % 2), rs.at(1 + (s + 1) % 2), kMaxLag + kStaleness, t);
    }
  });
  Report("replicas", t, load, kMaxLag + kStaleness);
}

}  // namespace
}  // namespace ta::testing

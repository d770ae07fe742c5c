// How fast a revocation on one replica reaches the others (issue 14 items 4 and 6), under a
// background mixed load on all three: the delay from the revoke's acknowledgement on the
// writer to the first inactive answer of each other replica, polled back to back. Prints
// p50/p99/max and appends them to --stats_file for scripts/bench.sh --replicas.
//
// What is asserted: p99 within --max_revocation_lag, and the guarantee itself — no replica
// calls the token active in answer to a request sent after ack + lag (whatever the load: a
// replica that cannot prove its view current refuses instead).
//   replica_tests "[propagation]" --samples 500 --stats_file F
#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/replicas/flags.h"
#include "tests/replicas/replica_set.h"
#include "tests/replicas/workload.h"

namespace ta::testing {
namespace {

constexpr int kLoadWorkers = 3;
constexpr absl::Duration kGiveUp = absl::Seconds(5);

struct Probe {
  absl::Duration delay = kGiveUp;  // ack -> first inactive answer received
  int late_active = 0;             // active answers to requests sent after ack + lag
  std::string last;                // the last answer
};

// Polls `token` on `server` back to back from `ack` until an answer other than "active".
Probe AwaitInactive(RemoteServer& server, const std::string& token, absl::Time ack) {
  Probe p;
  while (absl::Now() - ack < kGiveUp) {
    const absl::Time sent = absl::Now();
    p.last = IntrospectWord(server, token);
    if (p.last != "active") {
      p.delay = absl::Now() - ack;
      return p;
    }
    if (sent - ack > kMaxLag) ++p.late_active;
  }
  return p;
}

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

TEST_CASE(
    "Replicas: a revocation on one replica is inactive on the others within the lag "
    "bound (propagation p50/p99 under load)",
    "[replicas][propagation]") {
  Fixture fx = StartFixture();
  ReplicaSet& replicas = *fx.replicas;
  BackgroundLoad load(kLoadWorkers, /*first_index=*/100, /*first_seed=*/std::nullopt,
                      replicas.all());

  std::vector<absl::Duration> delays;
  int late_active = 0, stale_answers = 0, gave_up = 0;
  for (int s = 0; s < g_samples; ++s) {
    INFO("sample " << s);
    const int writer = s % 3;
    v1::TokenPair pair;
    REQUIRE(replicas.at(writer).Issue(absl::StrCat("p", s), &pair).ok());
    // Half the samples deny a jti, half revoke a family: the two kinds of log entry.
    const bool family = s % 2 == 1;
    Outcome revoke = family ? replicas.at(writer).RevokeFamily(pair.family_id())
                            : replicas.at(writer).RevokeToken(pair.access_token());
    const absl::Time ack = absl::Now();
    REQUIRE(revoke.ok());
    Probe probes[2];
    std::thread other([&] {
      probes[1] = AwaitInactive(replicas.at((writer + 2) % 3), pair.access_token(), ack);
    });
    probes[0] = AwaitInactive(replicas.at((writer + 1) % 3), pair.access_token(), ack);
    other.join();
    for (const Probe& p : probes) {
      INFO("answer " << p.last);
      CHECK((p.last == (family ? "family_revoked" : "token_revoked") ||
             p.last == "error:revocations_stale"));
      if (p.last == "error:revocations_stale") ++stale_answers;
      if (p.delay >= kGiveUp) ++gave_up;
      late_active += p.late_active;
      delays.push_back(p.delay);
    }
  }
  load.Stop();
  const WorkloadTally tally = load.Tally();
  for (auto& w : load.workers()) {
    for (const std::string& e : w->errors()) FAIL_CHECK("background load: " << e);
  }

  const absl::Duration p50 = Percentile(delays, 50), p99 = Percentile(delays, 99),
                       max = Percentile(delays, 100);
  const std::string summary = absl::StrFormat(
      "revocation propagation over 3 replicas: %d samples (%d revocations x 2 replicas), "
      "p50 %.1f ms, p99 %.1f ms, max %.1f ms; stale answers %d; background load %.0f calls/s "
      "(%s)",
      delays.size(), g_samples, Ms(p50), Ms(p99), Ms(max), stale_answers, load.calls_per_second(),
      tally.ToString());
  std::cout << summary << std::endl;
  if (!g_stats_file.empty()) {
    std::ofstream out(g_stats_file, std::ios::app);
    out << "propagation_samples " << delays.size() << "\n"
        << absl::StrFormat(
               "propagation_p50_ms %.1f\npropagation_p99_ms %.1f\n"
               "propagation_max_ms %.1f\n",
               Ms(p50), Ms(p99), Ms(max))
        << "propagation_stale_answers " << stale_answers << "\n"
        << absl::StrFormat("propagation_load_calls_per_s %.0f\n", load.calls_per_second());
  }
  CHECK(late_active == 0);  // the guarantee: never active past ack + lag
  CHECK(gave_up == 0);
  CHECK(p99 <= kMaxLag);
}

}  // namespace
}  // namespace ta::testing

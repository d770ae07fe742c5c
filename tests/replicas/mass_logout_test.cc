// A mass logout (issue 27 item 3): every session of many subjects revoked in one burst while
// three replicas over PostgreSQL serve introspection — the moment a breach response makes
// every live family an entry of every replica's view at once.
//
// Sessions are grouped under subjects (--sessions_per_subject; 1 in CI, 100 in the long
// form's 1 M: one RevokeSubject then kills a hundred families, as a breach response revoking
// every user would). The burst has two halves: RevokeSubject over the first half of the
// subjects from 16 threads spread over the replicas, then `tokenctl revoke-subject --from_file
// --parallel=16` over the second half. Meanwhile one thread per replica introspects a sample of the
// sessions' access tokens back to back. What is asserted: no replica answers active to a
// request sent later than a subject's acknowledgement + --max_revocation_lag (the guarantee,
// whatever the load), introspections refused revocations_stale stay under 1 % (the replicas
// keep up; 0 on a quiet machine), and after the burst every sampled token is inactive on
// every replica within the bound.
// What is reported (and appended to --stats_file): the burst's rate, each replica's
// propagation p50/p99/max during it, refusals, and each replica's RSS before and after.
//   replica_tests "[mass_logout]"              CI: 1,000 sessions of 1,000 subjects
//   replica_tests "[mass_logout]" --long       1,000,000 sessions of 10,000 subjects
//   replica_tests "[mass_logout]" --sessions N --sessions_per_subject K
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "tests/replicas/flags.h"
#include "tests/replicas/replica_set.h"

namespace ta::testing {
namespace {

constexpr int kBurstThreads = 16;
// Access tokens introspected during the burst (a sample when there are more sessions).
constexpr size_t kMaxSample = 1000;

// Resident memory of process `pid` in MiB, from /proc; 0 when unreadable.
double RssMiB(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    long kib = 0;
    if (std::sscanf(line.c_str(), "VmRSS: %ld kB", &kib) == 1) return kib / 1024.0;
  }
  return 0;
}

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

struct Session {
  size_t subject = 0;        // index into the subjects
  std::string access_token;  // kept for sampled sessions only
};

std::string SubjectName(size_t subject) { return absl::StrCat("mass-", subject); }

// Issues `count` sessions, session i for subject i / per_subject, from 16 threads over all
// replicas; keeps the access token of every `sample_every`-th.
std::vector<Session> IssueSessions(ReplicaSet& replicas, int count, int per_subject,
                                   size_t sample_every) {
  std::vector<Session> sessions(count);
  std::atomic<int> next{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      for (int i; (i = next++) < count;) {
        Session& s = sessions[i];
        s.subject = i / per_subject;
        v1::TokenPair pair;
        if (!replicas.at((i + t) % replicas.size()).Issue(SubjectName(s.subject), &pair).ok()) {
          ++failed;
          continue;
        }
        if (i % sample_every == 0) s.access_token = pair.access_token();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  REQUIRE(failed.load() == 0);
  return sessions;
}

// What one replica's introspection thread saw during the burst.
struct ReplicaWatch {
  int64_t calls = 0;
  int64_t stale_refusals = 0;  // error:revocations_stale
  int64_t other_errors = 0;
  int64_t late_active = 0;                  // active, asked after ack + lag: the guarantee broken
  std::vector<absl::Duration> propagation;  // ack -> first non-active answer, per token
  std::string first_error;
};

// The sampled sessions and when each subject's revocation was acknowledged.
class Burst {
 public:
  Burst(const std::vector<Session>& sessions, size_t subjects) : sessions_(sessions) {
    for (size_t i = 0; i < sessions.size(); ++i) {
      if (!sessions[i].access_token.empty()) sample_.push_back(i);
    }
    acked_ = std::vector<std::atomic<int64_t>>(subjects);
    precise_ = std::vector<std::atomic<bool>>(subjects);
  }
  const std::vector<size_t>& sample() const { return sample_; }
  // Subject `subject` acknowledged at `t`; `precise`: `t` is when its own call was answered.
  void Ack(size_t subject, absl::Time t, bool precise) {
    precise_[subject].store(precise);
    acked_[subject].store(absl::ToUnixMicros(t));
  }
  // Of session i's subject.
  bool Precise(size_t i) const { return precise_[sessions_[i].subject].load(); }
  // Of session i's subject; InfiniteFuture until acknowledged.
  absl::Time AckOf(size_t i) const {
    int64_t us = acked_[sessions_[i].subject].load();
    return us == 0 ? absl::InfiniteFuture() : absl::FromUnixMicros(us);
  }

 private:
  const std::vector<Session>& sessions_;
  std::vector<size_t> sample_;
  std::vector<std::atomic<int64_t>> acked_;
  std::vector<std::atomic<bool>> precise_;
};

// Introspects the sampled tokens back to back: those acknowledged and not yet seen inactive
// first (the propagation figures come from them, so a pass over them is short), then one
// not-yet-revoked token per pass, so the replica also serves live tokens meanwhile.
void WatchReplica(RemoteServer& server, const std::vector<Session>& sessions, const Burst& burst,
                  const std::atomic<bool>& stop, ReplicaWatch* out) {
  std::vector<bool> done(sessions.size(), false);  // seen non-active after its ack
  size_t live_cursor = 0;
  auto ask = [&](size_t i) {
    const absl::Time sent = absl::Now();
    const std::string word = IntrospectWord(server, sessions[i].access_token);
    const absl::Time ack = burst.AckOf(i);
    ++out->calls;
    if (word == "active") {
      if (sent > ack + kMaxLag) ++out->late_active;
    } else if (word == "error:revocations_stale") {
      ++out->stale_refusals;
    } else if (absl::StartsWith(word, "error:")) {
      ++out->other_errors;
      if (out->first_error.empty()) out->first_error = word;
    } else if (ack != absl::InfiniteFuture()) {
      // Timed only where the ack instant is the call's own (not tokenctl's exit).
      if (burst.Precise(i))
        out->propagation.push_back(std::max(absl::ZeroDuration(), absl::Now() - ack));
      done[i] = true;
    }
  };
  const std::vector<size_t>& sample = burst.sample();
  while (!stop.load()) {
    for (size_t i : sample) {
      if (stop.load()) return;
      if (!done[i] && burst.AckOf(i) != absl::InfiniteFuture()) ask(i);
    }
    for (size_t n = 0; n < sample.size(); ++n) {  // one live token
      size_t i = sample[live_cursor++ % sample.size()];
      if (burst.AckOf(i) == absl::InfiniteFuture()) {
        ask(i);
        break;
      }
    }
    if (std::all_of(sample.begin(), sample.end(), [&](size_t i) { return done[i]; })) {
      absl::SleepFor(absl::Milliseconds(1));
    }
  }
}

// RevokeSubject for subjects [begin, end) from kBurstThreads threads over all replicas.
void RevokeByRpc(ReplicaSet& replicas, size_t begin, size_t end, Burst& burst) {
  std::atomic<size_t> next{begin};
  std::atomic<int> failed{0};
  absl::Mutex mu;
  std::string first_error;
  std::vector<std::thread> threads;
  for (int t = 0; t < kBurstThreads; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i; (i = next++) < end;) {
        Outcome out = replicas.at((i + t) % replicas.size()).RevokeSubject(SubjectName(i));
        if (out.ok()) {
          burst.Ack(i, absl::Now(), /*precise=*/true);
          continue;
        }
        ++failed;
        absl::MutexLock lock(&mu);
        if (first_error.empty()) {
          first_error = absl::StrCat(out.status.error_code(), " ", out.reason, ": ",
                                     out.status.error_message());
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  INFO(first_error);
  REQUIRE(failed.load() == 0);
}

// `tokenctl revoke-subject --from_file --parallel=16` over subjects [begin, end) against
// `server`; each subject counts as acknowledged when tokenctl exits (the conservative
// reading: it acknowledges them one by one before that).
void RevokeByTokenctl(RemoteServer& server, size_t begin, size_t end, Burst& burst,
                      const std::string& dir) {
  const std::string subjects = dir + "/subjects.txt", key = dir + "/admin.key";
  {
    std::ofstream out(subjects);
    for (size_t i = begin; i < end; ++i) out << SubjectName(i) << "\n";
    std::ofstream(key) << server.admin_key() << "\n";
  }
  REQUIRE(::chmod(key.c_str(), 0600) == 0);
  const std::string command =
      absl::StrCat(TA_TOKENCTL_BINARY, " --server=", server.address(), " --api_key_file=", key,
                   " revoke-subject --from_file=", subjects,
                   " --parallel=16 --reason=mass-logout > ", dir, "/tokenctl.out 2>&1");
  const int rc = std::system(command.c_str());
  std::ifstream log(dir + "/tokenctl.out");
  std::string output((std::istreambuf_iterator<char>(log)), {});
  INFO(output);
  REQUIRE(rc == 0);
  REQUIRE(absl::StrContains(output, absl::StrCat("revoked ", end - begin, " of ", end - begin)));
  const absl::Time done = absl::Now();
  for (size_t i = begin; i < end; ++i) burst.Ack(i, done, /*precise=*/false);
}

TEST_CASE(
    "Replicas: a mass logout over three replicas under introspection load: nothing "
    "active after ack + lag, few stale refusals, every token inactive everywhere",
    "[replicas][mass_logout]") {
  const int count = g_mass_sessions;
  const int per_subject = std::min(g_mass_sessions_per_subject, count);
  const size_t subjects = (count + per_subject - 1) / per_subject;
  Fixture fx = StartFixture({}, /*wait_serving=*/true);
  ReplicaSet& replicas = *fx.replicas;
  TempDir dir;

  const size_t sample_every = std::max<size_t>(1, count / kMaxSample);
  absl::Time t0 = absl::Now();
  const std::vector<Session> sessions = IssueSessions(replicas, count, per_subject, sample_every);
  const absl::Duration issue_took = absl::Now() - t0;
  std::vector<double> rss_before;
  for (RemoteServer* r : replicas.all()) rss_before.push_back(RssMiB(r->pid()));

  Burst burst(sessions, subjects);
  std::atomic<bool> stop{false};
  std::vector<ReplicaWatch> watch(replicas.size());
  std::vector<std::thread> watchers;
  // Stops and joins the watchers however the test leaves this scope (a failed REQUIRE too).
  struct JoinOnExit {
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~JoinOnExit() {
      stop = true;
      for (std::thread& t : threads) {
        if (t.joinable()) t.join();
      }
    }
  } join_on_exit{stop, watchers};
  for (int r = 0; r < replicas.size(); ++r) {
    watchers.emplace_back(
        [&, r] { WatchReplica(replicas.at(r), sessions, burst, stop, &watch[r]); });
  }

  const size_t half = subjects / 2;
  t0 = absl::Now();
  RevokeByRpc(replicas, 0, half, burst);
  const absl::Duration rpc_took = absl::Now() - t0;
  t0 = absl::Now();
  RevokeByTokenctl(replicas.at(1), half, subjects, burst, dir.path());
  const absl::Duration tokenctl_took = absl::Now() - t0;
  const absl::Time last_ack = absl::Now();

  // Every sampled token inactive on every replica: how long after the last ack.
  std::vector<absl::Duration> caught_up(replicas.size(), absl::InfiniteDuration());
  for (int r = 0; r < replicas.size(); ++r) {
    std::vector<std::string> tokens;
    for (size_t i : burst.sample()) tokens.push_back(sessions[i].access_token);
    PollUntil(absl::Seconds(10), [&] {
      auto answers = IntrospectAll(replicas.at(r), tokens);
      if (!answers.ok()) return false;
      for (const auto& [token, answer] : *answers) {
        if (answer.active()) return false;
      }
      caught_up[r] = absl::Now() - last_ack;
      return true;
    });
  }
  stop = true;
  for (std::thread& t : watchers) t.join();  // before reading `watch`

  std::string report = absl::StrFormat(
      "mass logout: %d sessions of %d subjects (issued in %.1f s); burst: %d subjects by "
      "RevokeSubject in %.2f s (%.0f/s), %d by tokenctl --parallel=16 in %.2f s (%.0f/s)\n",
      count, static_cast<int>(subjects), absl::ToDoubleSeconds(issue_took), static_cast<int>(half),
      absl::ToDoubleSeconds(rpc_took), half / absl::ToDoubleSeconds(rpc_took),
      static_cast<int>(subjects - half), absl::ToDoubleSeconds(tokenctl_took),
      (subjects - half) / absl::ToDoubleSeconds(tokenctl_took));
  for (int r = 0; r < replicas.size(); ++r) {
    ReplicaWatch& w = watch[r];
    absl::StrAppendFormat(
        &report,
        "  replica %d: %d introspections, propagation p50 %.1f ms p99 %.1f ms max %.1f ms "
        "(%d tokens revoked by RPC), refused stale %d, other errors %d, active after ack+lag %d, "
        "all "
        "inactive %.0f ms after the last ack, RSS %.0f -> %.0f MiB\n",
        r, static_cast<int>(w.calls), Ms(Percentile(w.propagation, 50)),
        Ms(Percentile(w.propagation, 99)), Ms(Percentile(w.propagation, 100)),
        static_cast<int>(w.propagation.size()), static_cast<int>(w.stale_refusals),
        static_cast<int>(w.other_errors), static_cast<int>(w.late_active), Ms(caught_up[r]),
        rss_before[r], RssMiB(replicas.at(r).pid()));
  }
  std::cout << report << std::flush;
  if (!g_stats_file.empty()) std::ofstream(g_stats_file, std::ios::app) << report;
  INFO(report);
  for (int r = 0; r < replicas.size(); ++r) {
    INFO("replica " << r << ": " << watch[r].first_error);
    CHECK(watch[r].late_active == 0);
    // A replica starved of CPU may fail closed for a moment (revocations_stale: "ask
    // another"), which is the rule working, not broken; on a quiet machine it is 0. Measured
    // at 100,000 sessions with the machine at load 15-18 on 2 cores: 0, 43 and 13 of ~185,000.
    CHECK(watch[r].stale_refusals * 100 <= watch[r].calls);
    CHECK(watch[r].other_errors == 0);
    // The bound, plus what one batch of introspections takes to come back.
    CHECK(caught_up[r] <= kMaxLag + absl::Milliseconds(500));
  }
}

}  // namespace
}  // namespace ta::testing

// Crash under load (issue 8): the real binary serves a mixed workload (issue, refresh, replay,
// revoke-token, revoke-family, revoke-subject, introspect) from client threads that log every
// acknowledged result; the server is SIGKILLed at a random moment, restarted on the same data,
// and every acknowledged fact is checked against what the store now says:
//   - every acknowledged revocation is in force (tokens inactive, family revoked);
//   - every acknowledged rotation is what the store holds: the family's generation, the
//     successor active, the predecessor spent;
//   - the store opens cleanly each time (the server comes up and answers).
// An operation in flight at the kill is "uncertain": either outcome is allowed, and the test
// learns which one happened from the store before it goes on. After each restart it checks
// every family touched in the round before plus 1000 others at random; after the last, all.
// Rounds: 10 in CI; `reliability_tests "[crash]" --rounds N [--seed S]` for long runs.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <iostream>
#include <map>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/reliability/flags.h"
#include "tests/reliability/remote.h"
#include "tests/support/temp_dir.h"

namespace ta::testing {
namespace {

constexpr int kWorkers = 4;
constexpr int kSubjectsPerWorker = 4;
constexpr size_t kKeepTokens = 3;  // access tokens / spent refresh tokens remembered per family

struct Family {
  std::string id, subject;
  std::string current;  // acknowledged current refresh token; "" once lost (see Resolve)
  uint64_t generation = 0;
  std::vector<std::string> spent;          // acknowledged spent refresh tokens (latest few)
  std::vector<std::string> access;         // acknowledged access tokens, not revoked (latest few)
  std::vector<std::string> denied_access;  // acknowledged RevokeToken of an access token
  bool revoked = false;                    // an acknowledged revocation covers the family
  bool record_revoked = false;  // ... and it marked the family record (not a subject cutoff)
  // An operation on the family was in flight when the server died.
  bool uncertain_refresh = false;
  bool maybe_revoked = false;
  bool dirty = true;  // touched since it was last verified
};

void Remember(std::vector<std::string>* list, const std::string& token) {
  list->push_back(token);
  if (list->size() > kKeepTokens) list->erase(list->begin());
}

struct Tally {
  std::map<std::string, int64_t> acked;  // op -> acknowledged count
  int64_t uncertain = 0;
};

// One client thread: owns its families and subjects, so no state is shared while it runs.
class Worker {
 public:
  Worker(int index, uint64_t seed) : index_(index), rng_(seed) {}

  std::vector<Family>& families() { return families_; }
  std::vector<std::string>& errors() { return errors_; }
  Tally& tally() { return tally_; }

  // Runs until the server dies (`killing` set and a call fails).
  void Run(RemoteServer& server, const std::atomic<bool>& killing) {
    while (true) {
      bool in_flight_failed = Step(server, killing);
      if (in_flight_failed || killing.load()) return;
    }
  }

 private:
  std::string Subject() {
    return absl::StrCat("w", index_, "-u",
                        std::uniform_int_distribution<int>(0, kSubjectsPerWorker - 1)(rng_));
  }
  Family* PickLive() {
    std::vector<Family*> live;
    for (Family& f : families_) {
      if (!f.revoked && !f.maybe_revoked && !f.current.empty()) live.push_back(&f);
    }
    if (live.empty()) return nullptr;
    return live[std::uniform_int_distribution<size_t>(0, live.size() - 1)(rng_)];
  }
  // A failed call: in flight at the kill (true) or a real error (recorded).
  bool Failed(const Outcome& r, const std::atomic<bool>& killing, const std::string& what) {
    if (killing.load()) {
      ++tally_.uncertain;
      return true;
    }
    errors_.push_back(absl::StrCat(what, ": ", r.status.error_code(), " ", r.reason));
    return false;
  }

  bool Step(RemoteServer& server, const std::atomic<bool>& killing) {
    const int dice = std::uniform_int_distribution<int>(0, 99)(rng_);
    Family* f = PickLive();
    if (f == nullptr || dice < 22) return Issue(server, killing);
    f->dirty = true;
    if (dice < 55) return Refresh(server, *f, killing);
    if (dice < 62) return RevokeAccess(server, *f, killing);
    if (dice < 66) return RevokeByRefreshToken(server, *f, killing);
    if (dice < 73) return RevokeFamily(server, *f, killing);
    if (dice < 76) return RevokeSubject(server, f->subject, killing);
    if (dice < 80) return Replay(server, *f, killing);
    return IntrospectCurrent(server, *f, killing);
  }

  bool Issue(RemoteServer& server, const std::atomic<bool>& killing) {
    v1::TokenPair pair;
    const std::string subject = Subject();
    Outcome r = server.Issue(subject, &pair);
    if (!r.ok()) return Failed(r, killing, "issue");
    Family f;
    f.id = pair.family_id();
    f.subject = subject;
    f.current = pair.refresh_token();
    f.access.push_back(pair.access_token());
    families_.push_back(std::move(f));
    ++tally_.acked["issue"];
    return false;
  }

  bool Refresh(RemoteServer& server, Family& f, const std::atomic<bool>& killing) {
    v1::TokenPair pair;
    f.uncertain_refresh = true;
    Outcome r = server.Refresh(f.current, &pair);
    if (!r.ok()) return Failed(r, killing, "refresh of the acknowledged current token");
    f.uncertain_refresh = false;
    Remember(&f.spent, f.current);
    f.current = pair.refresh_token();
    ++f.generation;
    Remember(&f.access, pair.access_token());
    ++tally_.acked["refresh"];
    return false;
  }

  bool RevokeAccess(RemoteServer& server, Family& f, const std::atomic<bool>& killing) {
    if (f.access.empty()) return IntrospectCurrent(server, f, killing);
    const std::string token = f.access.back();
    f.access.pop_back();  // in flight: its fate is known only once acknowledged
    Outcome r = server.RevokeToken(token);
    if (!r.ok()) return Failed(r, killing, "revoke access token");
    f.denied_access.push_back(token);
    ++tally_.acked["revoke_token"];
    return false;
  }

  bool RevokeByRefreshToken(RemoteServer& server, Family& f, const std::atomic<bool>& killing) {
    f.maybe_revoked = true;
    Outcome r = server.RevokeToken(f.current);
    if (!r.ok()) return Failed(r, killing, "revoke refresh token");
    f.revoked = f.record_revoked = true;
    ++tally_.acked["revoke_refresh_token"];
    return false;
  }

  bool RevokeFamily(RemoteServer& server, Family& f, const std::atomic<bool>& killing) {
    f.maybe_revoked = true;
    v1::RevokeFamilyResponse resp;
    Outcome r = server.RevokeFamily(f.id, &resp);
    if (!r.ok()) return Failed(r, killing, "revoke family");
    if (!resp.changed()) errors_.push_back("revoke family: a live family reported unchanged");
    f.revoked = f.record_revoked = true;
    ++tally_.acked["revoke_family"];
    return false;
  }

  bool RevokeSubject(RemoteServer& server, const std::string& subject,
                     const std::atomic<bool>& killing) {
    for (Family& f : families_) {  // (already revoked ones cannot change)
      if (f.subject == subject && !f.revoked) f.maybe_revoked = f.dirty = true;
    }
    Outcome r = server.RevokeSubject(subject);
    if (!r.ok()) return Failed(r, killing, "revoke subject");
    for (Family& f : families_) {
      if (f.subject == subject && f.maybe_revoked) {
        f.revoked = true;
        f.maybe_revoked = false;
      }
    }
    ++tally_.acked["revoke_subject"];
    return false;
  }

  // Presents a spent token: reuse, so the family must be revoked.
  bool Replay(RemoteServer& server, Family& f, const std::atomic<bool>& killing) {
    if (f.spent.empty()) return IntrospectCurrent(server, f, killing);
    f.maybe_revoked = true;
    v1::TokenPair pair;
    Outcome r = server.Refresh(f.spent.back(), &pair);
    if (r.status.error_code() == grpc::StatusCode::UNAUTHENTICATED &&
        r.reason == "refresh_token_reused") {
      f.revoked = f.record_revoked = true;
      ++tally_.acked["reuse_detected"];
      return false;
    }
    if (r.ok()) {
      errors_.push_back("replay of a spent refresh token was accepted");
      return false;
    }
    return Failed(r, killing, "replay");
  }

  bool IntrospectCurrent(RemoteServer& server, Family& f, const std::atomic<bool>& killing) {
    v1::IntrospectResponse resp;
    Outcome r = server.Introspect(f.current, &resp);
    if (!r.ok()) return Failed(r, killing, "introspect");
    if (!resp.active()) {
      errors_.push_back(
          absl::StrCat("live current refresh token inactive: ", resp.inactive_reason()));
    }
    ++tally_.acked["introspect"];
    return false;
  }

  const int index_;
  std::mt19937_64 rng_;
  std::vector<Family> families_;
  std::vector<std::string> errors_;
  Tally tally_;
};

// Learns from the restarted store what happened to operations in flight at the kill.
void Resolve(RemoteServer& server, Family& f) {
  if (!f.uncertain_refresh && !f.maybe_revoked) return;
  v1::Family stored;
  Outcome r = server.GetFamily(f.id, &stored);
  INFO("GetFamily " << r.status.error_code() << " " << r.reason);
  REQUIRE(r.ok());
  if (f.uncertain_refresh) {
    INFO("generation stored " << stored.generation() << ", acknowledged " << f.generation);
    REQUIRE((stored.generation() == f.generation || stored.generation() == f.generation + 1));
    if (stored.generation() == f.generation + 1) {  // rotated; the successor never reached us
      Remember(&f.spent, f.current);
      f.current.clear();
      f.generation = stored.generation();
    }
    f.uncertain_refresh = false;
  }
  if (stored.revoked()) f.revoked = f.record_revoked = true;
  if (f.maybe_revoked && !f.revoked) {  // a subject cutoff in flight may have landed
    std::string probe = !f.current.empty() ? f.current : f.access.empty() ? "" : f.access.back();
    if (!probe.empty()) {
      v1::IntrospectResponse resp;
      REQUIRE(server.Introspect(probe, &resp).ok());
      if (!resp.active()) {
        INFO("inactive because " << resp.inactive_reason());
        REQUIRE(resp.inactive_reason() == "subject_revoked");
        f.revoked = true;
      }
    }
  }
  f.maybe_revoked = false;
}

// Every acknowledged fact of every family, against the store. Returns facts checked.
int64_t Verify(RemoteServer& server, std::vector<Family*>& families) {
  std::vector<std::string> tokens;
  for (Family* f : families) {
    Resolve(server, *f);
    if (!f->current.empty()) tokens.push_back(f->current);
    tokens.insert(tokens.end(), f->spent.begin(), f->spent.end());
    tokens.insert(tokens.end(), f->access.begin(), f->access.end());
    tokens.insert(tokens.end(), f->denied_access.begin(), f->denied_access.end());
  }
  absl::StatusOr<std::map<std::string, v1::IntrospectResponse>> answers =
      IntrospectAll(server, tokens);
  INFO(answers.status().ToString());
  REQUIRE(answers.ok());
  std::map<std::string, v1::IntrospectResponse>& seen = *answers;
  int64_t facts = 0;
  for (Family* f : families) {
    v1::Family stored;
    Outcome r = server.GetFamily(f->id, &stored);
    INFO("family " << f->id << ": " << r.status.error_code() << " " << r.reason);
    REQUIRE(r.ok());  // an acknowledged issue is never lost
    CHECK(stored.revoked() == f->record_revoked);
    if (!f->revoked) CHECK(stored.generation() == f->generation);
    for (const std::string& t : f->denied_access) CHECK_FALSE(seen[t].active());
    for (const std::string& t : f->spent) {
      CHECK_FALSE(seen[t].active());
      if (!f->revoked) CHECK(seen[t].inactive_reason() == "refresh_token_spent");
    }
    if (!f->current.empty()) CHECK(seen[f->current].active() == !f->revoked);
    for (const std::string& t : f->access) CHECK(seen[t].active() == !f->revoked);
    facts += 2 + f->denied_access.size() + f->spent.size() + f->access.size();
    f->dirty = false;
  }
  return facts;
}

TEST_CASE("Crash under load: every acknowledged rotation and revocation survives SIGKILL",
          "[reliability][crash]") {
  uint64_t seed = g_seed != 0 ? g_seed : std::random_device()();
  std::cout << "crash-under-load: seed " << seed << ", " << g_crash_rounds
            << " rounds (repeat with --seed " << seed << ")" << std::endl;
  std::mt19937_64 rng(seed);
  TempDir dir;
  RemoteServer server(dir.path() + "/data", {"--access_ttl=24h", "--block_cache_mb=16"});
  std::vector<std::unique_ptr<Worker>> workers;
  for (int i = 0; i < kWorkers; ++i) workers.push_back(std::make_unique<Worker>(i, rng()));

  Tally total;
  int64_t facts = 0;
  for (int round = 1; round <= g_crash_rounds; ++round) {
    absl::Status started = server.Start();  // the store must open cleanly, every time
    INFO("round " << round << ": " << started << "\n" << server.ReadStderr());
    REQUIRE(started.ok());
    REQUIRE(server.Healthy());
    // Every family touched in the last round, and a sample of the others (all of them at
    // the end), so long runs stay linear.
    std::vector<Family*> all, clean;
    for (auto& w : workers) {
      for (Family& f : w->families()) (f.dirty ? all : clean).push_back(&f);
    }
    std::shuffle(clean.begin(), clean.end(), rng);
    all.insert(all.end(), clean.begin(), clean.begin() + std::min<size_t>(clean.size(), 1000));
    const absl::Time verify_start = absl::Now();
    facts += Verify(server, all);
    const absl::Duration verify_took = absl::Now() - verify_start;

    std::atomic<bool> killing{false};
    std::vector<std::thread> threads;
    for (auto& w : workers) threads.emplace_back([&, w = w.get()] { w->Run(server, killing); });
    absl::SleepFor(absl::Milliseconds(std::uniform_int_distribution<int>(150, 1200)(rng)));
    killing = true;
    kill(server.pid(), SIGKILL);
    for (std::thread& t : threads) t.join();
    absl::StatusOr<int> code = server.Stop(SIGKILL);  // reaps it
    REQUIRE(code.ok());
    CHECK(*code == -SIGKILL);
    for (auto& w : workers) {
      for (const std::string& e : w->errors()) FAIL_CHECK("round " << round << ": " << e);
      w->errors().clear();
    }
    if (round % 25 == 0) {
      std::cout << "crash-under-load: round " << round << " done (" << all.size()
                << " families verified in " << verify_took << ")" << std::endl;
    }
  }
  // The last kill, checked too.
  REQUIRE(server.Start().ok());
  std::vector<Family*> all;
  for (auto& w : workers) {
    for (Family& f : w->families()) all.push_back(&f);
    for (const auto& [op, n] : w->tally().acked) total.acked[op] += n;
    total.uncertain += w->tally().uncertain;
  }
  facts += Verify(server, all);
  REQUIRE(server.Stop(SIGTERM).value_or(-1) == 0);

  std::cout << "crash-under-load: " << g_crash_rounds << " SIGKILL rounds survived; " << all.size()
            << " families; acknowledged:";
  for (const auto& [op, n] : total.acked) std::cout << " " << op << "=" << n;
  std::cout << "; in flight at a kill: " << total.uncertain << "; facts checked: " << facts
            << std::endl;
  CHECK(total.acked["refresh"] > 0);
  CHECK(total.acked["revoke_family"] + total.acked["revoke_subject"] > 0);
}

}  // namespace
}  // namespace ta::testing

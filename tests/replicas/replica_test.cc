// Three replicas over one PostgreSQL (issue 14 item 4): what must be atomic is atomic in the
// database, whichever replica a call reaches; revocations reach every replica's view; a
// replica that dies or loses its connections costs nothing acknowledged.
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <iostream>
#include <set>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/barrier.h"
#include "storage/postgres/sql_session.h"
#include "tests/replicas/flags.h"
#include "tests/replicas/replica_set.h"
#include "tests/replicas/workload.h"

namespace ta::testing {
namespace {

// Introspects `token` on `server` until the answer is `want` (or `timeout` passes); the last
// answer.
std::string AwaitWord(RemoteServer& server, const std::string& token, const std::string& want,
                      absl::Duration timeout = absl::Seconds(2)) {
  std::string word;
  PollUntil(timeout, [&] {
    word = IntrospectWord(server, token);
    return word == want;
  });
  return word;
}

TEST_CASE("Replicas: reuse on one replica of a token rotated on another revokes the family "
          "everywhere",
          "[replicas]") {
  Fixture fx = StartFixture();
  RemoteServer& a = fx.replicas->at(0);
  RemoteServer& b = fx.replicas->at(1);
  v1::TokenPair first, second, replayed;
  REQUIRE(a.Issue("alice", &first).ok());
  REQUIRE(a.Refresh(first.refresh_token(), &second).ok());
  // B knows the new access token as active (nothing revoked yet).
  CHECK(IntrospectWord(b, second.access_token()) == "active");

  Outcome reuse = b.Refresh(first.refresh_token(), &replayed);
  CHECK(reuse.status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(reuse.reason == "refresh_token_reused");

  const absl::Time revoked_at = absl::Now();
  for (int i = 0; i < 3; ++i) {
    INFO("replica " << i << "\n" << fx.replicas->Logs());
    RemoteServer& r = fx.replicas->at(i);
    CHECK(AwaitWord(r, second.access_token(), "family_revoked") == "family_revoked");
    CHECK(IntrospectWord(r, second.refresh_token()) == "family_revoked");
    // The successor cannot be used either.
    v1::TokenPair none;
    CHECK(r.Refresh(second.refresh_token(), &none).reason == "family_revoked");
  }
  std::cout << "reuse across replicas: the family's access token inactive on all three "
            << absl::Now() - revoked_at << " after the reuse was answered" << std::endl;
  v1::Family family;
  REQUIRE(a.GetFamily(first.family_id(), &family).ok());
  CHECK(family.revoked());
}

// 50 callers present the same refresh token at once, spread over the three replicas.
struct RaceResult {
  std::vector<Outcome> outcomes;
  std::vector<v1::TokenPair> pairs;
};

RaceResult Race(ReplicaSet& replicas, const std::string& refresh_token, int callers) {
  RaceResult result;
  result.outcomes.resize(callers);
  result.pairs.resize(callers);
  absl::Barrier* barrier = new absl::Barrier(callers);  // absl::Barrier deletes itself
  std::vector<std::thread> threads;
  for (int i = 0; i < callers; ++i) {
    threads.emplace_back([&, i] {
      RemoteServer& r = replicas.at(i % replicas.size());
      if (barrier->Block()) delete barrier;
      result.outcomes[i] = r.Refresh(refresh_token, &result.pairs[i]);
    });
  }
  for (std::thread& t : threads) t.join();
  return result;
}

TEST_CASE("Replicas: 50 concurrent refreshes of one token over three replicas mint one "
          "successor",
          "[replicas][race]") {
  constexpr int kCallers = 50;
  const bool grace = GENERATE(false, true);
  INFO("reuse grace " << (grace ? "10s" : "off"));
  Fixture fx = StartFixture(grace ? std::vector<std::string>{"--reuse_grace=10s"}
                                  : std::vector<std::string>{});
  int64_t winners_total = 0, losers_total = 0;
  for (int round = 0; round < g_race_rounds; ++round) {
    INFO("round " << round);
    v1::TokenPair issued;
    REQUIRE(fx.replicas->at(round % 3).Issue(absl::StrCat("racer", round), &issued).ok());
    RaceResult race = Race(*fx.replicas, issued.refresh_token(), kCallers);
    std::set<std::string> successors;
    int ok = 0;
    std::map<std::string, int> failures;  // reason -> count
    for (int i = 0; i < kCallers; ++i) {
      if (race.outcomes[i].ok()) {
        ++ok;
        successors.insert(race.pairs[i].refresh_token());
      } else {
        INFO("caller " << i << ": " << race.outcomes[i].status.error_code() << " "
                       << race.outcomes[i].status.error_message());
        CHECK(race.outcomes[i].status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
        ++failures[race.outcomes[i].reason];
      }
    }
    v1::Family family;
    REQUIRE(fx.replicas->at(0).GetFamily(issued.family_id(), &family).ok());
    CHECK(successors.size() == 1);  // never a second successor
    CHECK(family.generation() == 1);
    if (grace) {
      // Every caller got the one successor (idempotent retry within the grace).
      CHECK(ok == kCallers);
      CHECK_FALSE(family.revoked());
    } else {
      CHECK(ok == 1);
      for (const auto& [reason, n] : failures) {
        INFO(n << " callers: " << reason);
        CHECK((reason == "refresh_token_reused" || reason == "family_revoked"));
      }
      CHECK(failures["refresh_token_reused"] >= 1);
      CHECK(family.revoked());  // the reuse killed the family, successor included
      if (successors.size() == 1) {
        CHECK(IntrospectWord(fx.replicas->at(round % 3), *successors.begin()) == "family_revoked");
      }
    }
    winners_total += ok;
    losers_total += kCallers - ok;
  }
  std::cout << "refresh race (grace " << (grace ? "10s" : "off") << "): " << g_race_rounds
            << " rounds of " << kCallers << " callers over 3 replicas: " << winners_total
            << " OK, " << losers_total << " refused; one successor per round" << std::endl;
}

// The `kid` of a JWS's protected header ("" if none).
std::string KidOf(const std::string& jws) {
  std::string header;
  if (!absl::WebSafeBase64Unescape(jws.substr(0, jws.find('.')), &header)) return "";
  const std::string key = "\"kid\":\"";
  const size_t at = header.find(key);
  if (at == std::string::npos) return "";
  const size_t begin = at + key.size();
  return header.substr(begin, header.find('"', begin) - begin);
}

std::set<std::string> JwksKids(RemoteServer& server) {
  v1::GetJwksRequest req;
  v1::GetJwksResponse resp;
  std::set<std::string> kids;
  if (!Call(server.admin_key(), server.api(), &v1::TokenAuthority::Stub::GetJwks, req, &resp).ok()) {
    return kids;
  }
  for (const v1::KeyInfo& k : resp.keys()) kids.insert(k.kid());
  return kids;
}

Outcome Rotate(RemoteServer& server, v1::RotateSigningKeyResponse* out) {
  v1::RotateSigningKeyRequest req;
  return Call(server.admin_key(), server.admin(), &v1::TokenAdmin::Stub::RotateSigningKey, req,
              out);
}

TEST_CASE("Replicas: a key rotated on one replica signs everywhere after the publish delay, "
          "and every replica verifies old and new tokens",
          "[replicas][keys]") {
  constexpr absl::Duration kPublishDelay = absl::Seconds(3);
  Fixture fx = StartFixture({absl::StrCat("--key_publish_delay=",
                                          absl::FormatDuration(kPublishDelay))});
  ReplicaSet& replicas = *fx.replicas;
  v1::TokenPair before;
  REQUIRE(replicas.at(1).Issue("alice", &before).ok());
  const std::string old_kid = KidOf(before.access_token());
  REQUIRE_FALSE(old_kid.empty());

  v1::RotateSigningKeyResponse rotated;
  Outcome r = Rotate(replicas.at(0), &rotated);
  INFO(r.status.error_message() << " " << r.reason);
  REQUIRE(r.ok());
  const absl::Time rotated_at = absl::Now();
  const std::string new_kid = rotated.kid();
  CHECK(new_kid != old_kid);
  // Published everywhere within the lag bound, before it signs anywhere.
  for (int i = 0; i < 3; ++i) {
    INFO("replica " << i);
    CHECK(PollUntil(absl::Seconds(3), [&] { return JwksKids(replicas.at(i)).count(new_kid) == 1; }));
    v1::TokenPair pair;
    const absl::Time sent = absl::Now();
    REQUIRE(replicas.at(i).Issue("bob", &pair).ok());
    if (sent - rotated_at < kPublishDelay - absl::Milliseconds(500)) {
      CHECK(KidOf(pair.access_token()) == old_kid);
    }
  }
  // After the delay every replica signs with the new key.
  std::vector<std::string> after(3);
  for (int i = 0; i < 3; ++i) {
    INFO("replica " << i);
    CHECK(PollUntil(rotated_at + kPublishDelay + absl::Seconds(5) - absl::Now(), [&] {
      v1::TokenPair pair;
      if (!replicas.at(i).Issue("carol", &pair).ok()) return false;
      after[i] = pair.access_token();
      return KidOf(after[i]) == new_kid;
    }, absl::Milliseconds(100)));
  }
  // Every replica verifies tokens of both keys.
  for (int i = 0; i < 3; ++i) {
    INFO("replica " << i);
    CHECK(IntrospectWord(replicas.at(i), before.access_token()) == "active");
    for (const std::string& t : after) CHECK(IntrospectWord(replicas.at(i), t) == "active");
  }
  std::cout << "key rotation on replica 0: published on all three at once, signing on all "
               "three after the "
            << kPublishDelay << " publish delay; old and new tokens verify everywhere"
            << std::endl;

  // Rotations racing on the three: each either wins or is refused as a conflict, and every
  // winner's key reaches every replica.
  std::vector<Outcome> outcomes(3);
  std::vector<v1::RotateSigningKeyResponse> responses(3);
  absl::Barrier* barrier = new absl::Barrier(3);
  std::vector<std::thread> threads;
  for (int i = 0; i < 3; ++i) {
    threads.emplace_back([&, i] {
      if (barrier->Block()) delete barrier;
      outcomes[i] = Rotate(replicas.at(i), &responses[i]);
    });
  }
  for (std::thread& t : threads) t.join();
  int wins = 0;
  for (int i = 0; i < 3; ++i) {
    INFO("replica " << i << ": " << outcomes[i].status.error_code() << " " << outcomes[i].reason);
    if (outcomes[i].ok()) {
      ++wins;
      for (int j = 0; j < 3; ++j) {
        CHECK(PollUntil(absl::Seconds(3),
                        [&] { return JwksKids(replicas.at(j)).count(responses[i].kid()) == 1; }));
      }
    } else {
      CHECK(outcomes[i].status.error_code() == grpc::StatusCode::ABORTED);
      CHECK(outcomes[i].reason == "key_rotation_conflict");
    }
  }
  CHECK(wins >= 1);
  std::cout << "3 racing rotations: " << wins << " won, " << 3 - wins << " refused as conflicts"
            << std::endl;
}

TEST_CASE("Replicas: SIGKILL of one replica under load: the others serve on and nothing "
          "acknowledged is lost",
          "[replicas][kill]") {
  Fixture fx = StartFixture();
  constexpr int kVictim = 2;
  constexpr int kWorkers = 6;
  std::atomic<int> skip{-1};
  std::atomic<bool> killed{false};
  Excuse excuse = [&](int replica, const Outcome&) {
    return replica == kVictim && killed.load();
  };
  std::vector<std::unique_ptr<Worker>> workers;
  std::random_device seed;
  for (int i = 0; i < kWorkers; ++i) {
    workers.push_back(std::make_unique<Worker>(i, seed(), fx.replicas->all(), &skip, excuse));
  }
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&, w = w.get()] { w->Run(stop); });
  absl::SleepFor(absl::Milliseconds(1500));
  auto ok_so_far = [&](int replica) {
    int64_t n = 0;
    for (auto& w : workers) n += w->ok_by_replica(replica);
    return n;
  };
  const int64_t ok_a = ok_so_far(0), ok_b = ok_so_far(1);
  killed = true;
  skip = kVictim;
  const pid_t victim_pid = fx.replicas->at(kVictim).pid();
  kill(victim_pid, SIGKILL);
  absl::SleepFor(absl::Seconds(2));  // the survivors serve on alone
  stop = true;
  for (std::thread& t : threads) t.join();
  const absl::Time last_ack = absl::Now();
  REQUIRE(fx.replicas->at(kVictim).Stop(SIGKILL).value_or(0) == -SIGKILL);

  WorkloadTally total;
  std::vector<FamilyFacts*> families;
  for (auto& w : workers) {
    for (const std::string& e : w->errors()) FAIL_CHECK(e);  // no call to a survivor failed
    total.Add(w->tally());
    for (FamilyFacts& f : w->families()) families.push_back(&f);
  }
  // The survivors answered after the kill.
  const int64_t after_a = ok_so_far(0) - ok_a, after_b = ok_so_far(1) - ok_b;
  CHECK(after_a > 0);
  CHECK(after_b > 0);
  // Every acknowledged write is older than the lag bound: each survivor's view holds them.
  absl::SleepFor(last_ack + kMaxLag + absl::Milliseconds(100) - absl::Now());
  int64_t facts = 0;
  for (int i = 0; i < 2; ++i) {
    INFO("verified through replica " << i << "\n" << fx.replicas->Logs());
    facts += VerifyThrough(fx.replicas->at(i), families);
  }
  // The killed replica comes back on the same database and agrees.
  REQUIRE(fx.replicas->Restart(kVictim).ok());
  facts += VerifyThrough(fx.replicas->at(kVictim), families);
  std::cout << "replica SIGKILL under load: " << families.size() << " families; acknowledged "
            << total.ToString() << "; OK calls on the survivors after the kill " << after_a << "/" << after_b
            << "; facts checked on 2 survivors + the restarted one: " << facts
            << std::endl;
  CHECK(total.acked["refresh"] > 0);
}

TEST_CASE("Replicas: after pg_terminate_backend of every server connection, replicas "
          "reconnect and revocations still propagate",
          "[replicas][terminate]") {
  Fixture fx = StartFixture();
  absl::StatusOr<std::unique_ptr<storage::SqlSession>> sql =
      storage::SqlSession::Connect(fx.pg.cluster->dsn());
  REQUIRE(sql.ok());
  for (int round = 0; round < 3; ++round) {
    INFO("round " << round << "\n" << fx.replicas->Logs());
    const int writer = round % 3;
    v1::TokenPair pair;
    REQUIRE(fx.replicas->at(writer).Issue(absl::StrCat("t", round), &pair).ok());
    absl::StatusOr<std::vector<std::vector<std::string>>> killed = (*sql)->Query(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = 'token-authority' AND pid <> pg_backend_pid()");
    REQUIRE(killed.ok());
    const int terminated = std::stoi((*killed)[0][0]);
    CHECK(terminated >= 3);  // at least each replica's follower connection
    // Pooled connections turn out dead on first use; the store reconnects and runs the call.
    Outcome revoke = fx.replicas->at(writer).RevokeToken(pair.access_token());
    INFO(revoke.status.error_message());
    REQUIRE(revoke.ok());
    for (int i = 0; i < 3; ++i) {
      INFO("replica " << i);
      CHECK(AwaitWord(fx.replicas->at(i), pair.access_token(), "token_revoked", absl::Seconds(5)) ==
            "token_revoked");
    }
    std::cout << "pg_terminate_backend round " << round << ": " << terminated
              << " server connections terminated; the revocation reached all three" << std::endl;
  }
  for (int i = 0; i < 3; ++i) {
    CHECK(PollUntil(absl::Seconds(10),
                    [&] { return CheckHealth(fx.replicas->at(i)) == Health::kServing; },
                    absl::Milliseconds(100)));
  }
}

}  // namespace
}  // namespace ta::testing

// Storage conformance, a DPoP proof's replay record carried by the write it authorises
// (CreateFamily's proof_replay, RotateRequest::proof_replay; issue 26 item 6): the key is
// checked first and recorded in the same atomic write; a live key writes nothing at all (no
// family, no spent token, no reuse revocation); an expired key is accepted again; and of
// hundreds of racing rounds of CreateFamily, Rotate and RecordProofJti with one key exactly
// one call wins -- on every store kind (store_harness.h), and across two PostgreSQL replicas.
#include <atomic>
#include <catch2/catch.hpp>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/error.h"
#include "tests/storage/store_harness.h"
#include "tests/storage/test_util.h"

namespace ta::storage {
namespace {

using testing::FamilyIdFor;
using testing::MakeFamily;
using testing::MakeRefresh;
using testing::MakeRotate;

ProofReplay Replay(absl::string_view key, absl::Time keep_until) {
  return ProofReplay{std::string(key), keep_until};
}

absl::Status CreateWithProof(TokenStore& store, uint64_t n, absl::Time now,
                             const std::optional<ProofReplay>& replay,
                             absl::string_view subject = "alice") {
  FamilyRecord f = MakeFamily(FamilyIdFor(n), subject, now);
  return store.CreateFamily(f, MakeRefresh(f.family_id, 0, now), replay);
}

RotateResult RotateWithProof(TokenStore& store, uint64_t n, uint64_t generation, absl::Time now,
                             absl::string_view key, absl::Time keep_until) {
  RotateRequest request = MakeRotate(FamilyIdFor(n), generation, now);
  request.proof_replay = Replay(key, keep_until);
  absl::StatusOr<RotateOutcome> out = store.Rotate(request);
  INFO(out.status().ToString());
  REQUIRE(out.ok());
  return out->result;
}

// Whether `key` is live at `now` (RecordProofJti refuses it), without recording it when not:
// a key that is not live gets recorded with a keep_until already past.
bool Live(TokenStore& store, absl::string_view key, absl::Time now) {
  absl::StatusOr<bool> recorded = store.RecordProofJti(key, now - absl::Seconds(1), now);
  REQUIRE(recorded.ok());
  return !*recorded;
}

FamilyRecord Family(TokenStore& store, uint64_t n, absl::Time now) {
  absl::StatusOr<FamilyRecord> f = store.GetFamily(FamilyIdFor(n), now);
  REQUIRE(f.ok());
  return *f;
}

TEMPLATE_TEST_CASE("Store: CreateFamily records its proof, and a live key creates nothing",
                   "[storage][dpop]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  TokenStore& store = h->store();
  const absl::Time now = h->Now();
  const absl::Time until = now + absl::Minutes(5);
  REQUIRE(CreateWithProof(store, 1, now, Replay("k1", until)).ok());
  CHECK(Live(store, "k1", now));

  absl::Status again = CreateWithProof(store, 2, now, Replay("k1", until));
  CHECK(again.code() == absl::StatusCode::kAlreadyExists);
  CHECK(ReasonOf(again) == kProofReplayedReason);
  CHECK(store.GetFamily(FamilyIdFor(2), now).status().code() == absl::StatusCode::kNotFound);
  CHECK(store.GetRefresh(FamilyIdFor(2), 0, now).status().code() == absl::StatusCode::kNotFound);
  absl::StatusOr<FamilyPage> page = store.ListFamilies(testing::MakeQuery("alice", now));
  REQUIRE(page.ok());
  CHECK(page->families.size() == 1);

  // Once past its keep_until the key is accepted again, with its new expiry.
  h->clock().Advance(absl::Minutes(6));
  const absl::Time later = h->Now();
  REQUIRE(CreateWithProof(store, 3, later, Replay("k1", later + absl::Minutes(5))).ok());
  CHECK(Live(store, "k1", later + absl::Minutes(4)));

  // Without a proof nothing is recorded; a malformed key is refused before anything.
  REQUIRE(CreateWithProof(store, 4, later, std::nullopt).ok());
  for (const std::string& bad : {std::string(), std::string(kMaxReplayKeyBytes + 1, 'k')}) {
    CHECK(ReasonOf(CreateWithProof(store, 5, later, Replay(bad, until))) ==
          "invalid_argument:replay_key");
  }
  CHECK(store.GetFamily(FamilyIdFor(5), later).status().code() == absl::StatusCode::kNotFound);
}

TEMPLATE_TEST_CASE("Store: a CreateFamily refused for another reason does not spend its proof",
                   "[storage][dpop]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  TokenStore& store = h->store();
  const absl::Time now = h->Now();
  REQUIRE(CreateWithProof(store, 1, now, std::nullopt).ok());
  // The id is taken: refused, and the key stays unrecorded (the caller may retry with it).
  CHECK(CreateWithProof(store, 1, now, Replay("k", now + absl::Minutes(5))).code() ==
        absl::StatusCode::kAlreadyExists);
  CHECK_FALSE(Live(store, "k", now));
  // A banned subject: the same.
  REQUIRE(
      store
          .UpdateSubject(testing::MakeSubjectUpdate("bob", now, std::nullopt, now + absl::Hours(1)))
          .ok());
  CHECK(ReasonOf(CreateWithProof(store, 2, now, Replay("k2", now + absl::Minutes(5)), "bob")) ==
        "subject_blocked");
  CHECK_FALSE(Live(store, "k2", now));
}

TEMPLATE_TEST_CASE("Store: Rotate with a live proof key spends nothing and revokes nothing",
                   "[storage][dpop][rotate]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  TokenStore& store = h->store();
  const absl::Time now = h->Now();
  const absl::Time until = now + absl::Minutes(5);
  REQUIRE(CreateWithProof(store, 1, now, Replay("issue", until)).ok());
  // The proof that created the family cannot rotate it.
  CHECK(RotateWithProof(store, 1, 0, now, "issue", until) == RotateResult::kProofReplayed);
  CHECK(Family(store, 1, now).generation == 0);
  absl::StatusOr<RefreshRecord> first = store.GetRefresh(FamilyIdFor(1), 0, now);
  REQUIRE(first.ok());
  CHECK_FALSE(first->spent_at.has_value());

  CHECK(RotateWithProof(store, 1, 0, now, "r1", until) == RotateResult::kRotated);
  CHECK(Live(store, "r1", now));
  CHECK(Family(store, 1, now).generation == 1);
  // Generation 0 again would be reuse; with a replayed proof it is refused before that check.
  CHECK(RotateWithProof(store, 1, 0, now, "r1", until) == RotateResult::kProofReplayed);
  CHECK(RotateWithProof(store, 1, 1, now, "r1", until) == RotateResult::kProofReplayed);
  FamilyRecord f = Family(store, 1, now);
  CHECK_FALSE(f.revoked);
  CHECK(f.generation == 1);

  // Past keep_until the key is accepted again: the current token rotates.
  h->clock().Advance(absl::Minutes(6));
  const absl::Time later = h->Now();
  CHECK(RotateWithProof(store, 1, 1, later, "r1", later + absl::Minutes(5)) ==
        RotateResult::kRotated);
  CHECK(Family(store, 1, later).generation == 2);
}

TEMPLATE_TEST_CASE("Store: Rotate records its proof whatever the outcome",
                   "[storage][dpop][rotate]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  TokenStore& store = h->store();
  const absl::Time now = h->Now();
  const absl::Time until = now + absl::Minutes(5);
  REQUIRE(CreateWithProof(store, 1, now, std::nullopt).ok());
  // Nothing else written: the key alone.
  CHECK(RotateWithProof(store, 99, 0, now, "unknown", until) == RotateResult::kNotFound);
  CHECK(Live(store, "unknown", now));
  CHECK(RotateWithProof(store, 1, 5, now, "future", until) == RotateResult::kNotFound);
  CHECK(Live(store, "future", now));
  // Reuse: the revocation and the key in one write.
  CHECK(RotateWithProof(store, 1, 0, now, "a", until) == RotateResult::kRotated);
  CHECK(RotateWithProof(store, 1, 0, now, "b", until) == RotateResult::kReuseDetected);
  CHECK(Live(store, "b", now));
  CHECK(Family(store, 1, now).revoked);
  CHECK(RotateWithProof(store, 1, 1, now, "c", until) == RotateResult::kFamilyRevoked);
  CHECK(Live(store, "c", now));
  // A malformed key is refused before anything.
  RotateRequest bad = MakeRotate(FamilyIdFor(1), 1, now);
  bad.proof_replay = Replay("", until);
  CHECK(ReasonOf(store.Rotate(bad).status()) == "invalid_argument:replay_key");
}

// One round: `per_kind` CreateFamily calls (fresh ids), Rotate calls (each of its own family,
// so every one would rotate but for the key) and RecordProofJti calls race with one key, on
// `stores` round robin. Returns how many won; checks that the losers wrote nothing.
int RaceOneKey(const std::vector<TokenStore*>& stores, int round, int per_kind, absl::Time now) {
  const std::string key = absl::StrCat("race-", round);
  const absl::Time until = now + absl::Minutes(5);
  const uint64_t base = 1000 + static_cast<uint64_t>(round) * 100;  // rotated: base + i
  for (int i = 0; i < per_kind; ++i) {
    REQUIRE(CreateWithProof(*stores[0], base + i, now, std::nullopt).ok());
  }
  const int threads = 3 * per_kind;
  std::latch start(threads);
  std::atomic<int> winners{0}, errors{0};
  std::vector<int> won(threads, 0);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      TokenStore& store = *stores[t % stores.size()];
      const int i = t / 3;
      start.arrive_and_wait();
      bool win = false;
      if (t % 3 == 0) {  // a new family
        absl::Status s = CreateWithProof(store, base + 50 + i, now, Replay(key, until));
        if (!s.ok() && ReasonOf(s) != kProofReplayedReason) ++errors;
        win = s.ok();
      } else if (t % 3 == 1) {  // a rotation
        RotateRequest request = MakeRotate(FamilyIdFor(base + i), 0, now);
        request.proof_replay = Replay(key, until);
        absl::StatusOr<RotateOutcome> out = store.Rotate(request);
        if (!out.ok()) ++errors;
        win = out.ok() && out->result == RotateResult::kRotated;
        if (out.ok() && !win && out->result != RotateResult::kProofReplayed) ++errors;
      } else {  // Introspect's record
        absl::StatusOr<bool> recorded = store.RecordProofJti(key, until, now);
        if (!recorded.ok()) ++errors;
        win = recorded.ok() && *recorded;
      }
      won[t] = win ? 1 : 0;
      if (win) ++winners;
    });
  }
  for (std::thread& w : workers) w.join();
  CHECK(errors.load() == 0);
  for (int t = 0; t < threads; ++t) {  // the losers left no trace
    const int i = t / 3;
    if (t % 3 == 0) {
      CHECK((stores[0]->GetFamily(FamilyIdFor(base + 50 + i), now).ok() ? 1 : 0) == won[t]);
    } else if (t % 3 == 1) {
      CHECK(Family(*stores[0], base + i, now).generation == static_cast<uint64_t>(won[t]));
    }
  }
  return winners.load();
}

TEMPLATE_TEST_CASE("Store: racing CreateFamily, Rotate and RecordProofJti of one key: one wins",
                   "[storage][dpop][race]", TA_EVERY_STORE) {
  auto h = TestType::Make();
  constexpr int kRounds = 200;
  for (int round = 0; round < kRounds; ++round) {
    INFO("round " << round);
    REQUIRE(RaceOneKey({&h->store()}, round, 2, h->Now()) == 1);
  }
}

TEST_CASE("Store: racing proof writes of one key on two PostgreSQL replicas: one wins",
          "[storage][dpop][race][replicas]") {
  auto h = testing::Postgres::Make();
  std::unique_ptr<TokenStore> replica = h->OpenReplica();
  REQUIRE(replica != nullptr);
  constexpr int kRounds = 200;
  for (int round = 0; round < kRounds; ++round) {
    INFO("round " << round);
    REQUIRE(RaceOneKey({&h->store(), replica.get()}, round, 2, h->Now()) == 1);
  }
}

}  // namespace
}  // namespace ta::storage

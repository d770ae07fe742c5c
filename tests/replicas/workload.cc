#include "tests/replicas/workload.h"

#include <algorithm>
#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "storage/postgres/sql_session.h"

namespace ta::testing {
namespace {

constexpr size_t kKeepTokens = 3;  // tokens of each kind remembered per family
constexpr int kSubjects = 8;       // subjects per worker

void Remember(std::vector<std::string>* list, const std::string& token) {
  list->push_back(token);
  if (list->size() > kKeepTokens) list->erase(list->begin());
}

// Learns from the store what happened to an operation whose answer a fault hid.
void Resolve(RemoteServer& via, FamilyFacts& f, const v1::Family& stored) {
  if (f.uncertain_refresh) {
    INFO("family " << f.id << ": generation stored " << stored.generation() << ", acknowledged "
                   << f.generation);
    CHECK((stored.generation() == f.generation || stored.generation() == f.generation + 1));
    if (stored.generation() == f.generation + 1) {  // it rotated; the successor never reached us
      if (!f.current.empty()) Remember(&f.spent, f.current);
      f.current.clear();
      f.generation = stored.generation();
    }
    f.uncertain_refresh = false;
  }
  if (f.maybe_revoked) {
    f.revoked = f.revoked || stored.revoked();
    f.maybe_revoked = false;
  }
}

}  // namespace

int64_t WorkloadTally::writes_acked() const {
  int64_t n = 0;
  for (const auto& [op, count] : acked) {
    if (op != "introspect") n += count;
  }
  return n;
}

void WorkloadTally::Add(const WorkloadTally& other) {
  for (const auto& [op, n] : other.acked) acked[op] += n;
  uncertain += other.uncertain;
}

std::string WorkloadTally::ToString() const {
  std::string out;
  for (const auto& [op, n] : acked) absl::StrAppend(&out, op, "=", n, " ");
  absl::StrAppend(&out, "unknown-outcome=", uncertain);
  return out;
}

Worker::Worker(int index, uint64_t seed, std::vector<RemoteServer*> replicas,
               const std::atomic<int>* skip, Excuse excused)
    : index_(index),
      rng_(seed),
      replicas_(std::move(replicas)),
      skip_(skip),
      excused_(std::move(excused)) {}

BackgroundLoad::BackgroundLoad(int workers, int first_index, std::optional<uint64_t> first_seed,
                               const std::vector<RemoteServer*>& servers,
                               const std::atomic<int>* skip, const Excuse& excused) {
  std::random_device random;
  for (int i = 0; i < workers; ++i) {
    const uint64_t seed = first_seed.has_value() ? *first_seed + i : random();
    workers_.push_back(std::make_unique<Worker>(first_index + i, seed, servers, skip, excused));
  }
  started_ = stopped_ = absl::Now();
  for (auto& w : workers_) threads_.emplace_back([this, w = w.get()] { w->Run(stop_); });
}

void BackgroundLoad::Stop() {
  if (threads_.empty()) return;
  stop_ = true;
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  stopped_ = absl::Now();
}

WorkloadTally BackgroundLoad::Tally() const {
  WorkloadTally tally;
  for (const auto& w : workers_) tally.Add(w->tally());
  return tally;
}

double BackgroundLoad::calls_per_second() const {
  const WorkloadTally tally = Tally();
  auto introspect = tally.acked.find("introspect");
  const int64_t calls =
      tally.writes_acked() + (introspect == tally.acked.end() ? 0 : introspect->second);
  return static_cast<double>(calls) / absl::ToDoubleSeconds(duration());
}

void Worker::Run(const std::atomic<bool>& stop) {
  while (!stop.load()) Step();
}

int Worker::Pick() {
  const int n = static_cast<int>(replicas_.size());
  const int skip = skip_ != nullptr ? skip_->load() : -1;
  while (true) {
    int i = std::uniform_int_distribution<int>(0, n - 1)(rng_);
    if (i != skip || n == 1) return i;
  }
}

FamilyFacts* Worker::PickLive() {
  std::vector<FamilyFacts*> live;
  for (FamilyFacts& f : families_) {
    if (!f.revoked && !f.maybe_revoked && !f.uncertain_refresh && !f.current.empty()) {
      live.push_back(&f);
    }
  }
  if (live.empty()) return nullptr;
  return live[std::uniform_int_distribution<size_t>(0, live.size() - 1)(rng_)];
}

bool Worker::Failed(int replica, const Outcome& r, const std::string& what) {
  if (excused_ && excused_(replica, r)) {
    ++tally_.uncertain;
    absl::SleepFor(absl::Milliseconds(20));  // as a client backs off on UNAVAILABLE
    return true;
  }
  errors_.push_back(absl::StrCat(what, " on replica ", replica, ": ", r.status.error_code(), " ",
                                 r.reason, " ", r.status.error_message()));
  return false;
}

void Worker::Step() {
  const int dice = std::uniform_int_distribution<int>(0, 99)(rng_);
  FamilyFacts* f = PickLive();
  if (f == nullptr || dice < 20) return Issue();
  if (dice < 62) return Refresh(*f);
  if (dice < 72) return RevokeAccess(*f);
  if (dice < 78) return RevokeFamily(*f, /*by_refresh_token=*/false);
  if (dice < 81) return RevokeFamily(*f, /*by_refresh_token=*/true);
  if (dice < 85) return Replay(*f);
  return IntrospectCurrent(*f);
}

void Worker::Issue() {
  const int r = Pick();
  v1::TokenPair pair;
  const std::string subject =
      absl::StrCat("w", index_, "-u", std::uniform_int_distribution<int>(0, kSubjects - 1)(rng_));
  Outcome o = replicas_[r]->Issue(subject, &pair);
  if (!o.ok()) {
    Failed(r, o, "issue");
    return;
  }
  Ok(r);
  FamilyFacts f;
  f.id = pair.family_id();
  f.current = pair.refresh_token();
  f.access.push_back(pair.access_token());
  families_.push_back(std::move(f));
  ++tally_.acked["issue"];
}

void Worker::Refresh(FamilyFacts& f) {
  const int r = Pick();
  v1::TokenPair pair;
  Outcome o = replicas_[r]->Refresh(f.current, &pair);
  if (!o.ok()) {
    if (Failed(r, o, "refresh of the acknowledged current token")) f.uncertain_refresh = true;
    return;
  }
  Ok(r);
  Remember(&f.spent, f.current);
  f.current = pair.refresh_token();
  ++f.generation;
  Remember(&f.access, pair.access_token());
  ++tally_.acked["refresh"];
}

void Worker::RevokeAccess(FamilyFacts& f) {
  if (f.access.empty()) return IntrospectCurrent(f);
  const int r = Pick();
  const std::string token = f.access.back();
  f.access.pop_back();  // unknown until acknowledged: then it is checked as denied
  Outcome o = replicas_[r]->RevokeToken(token);
  if (!o.ok()) {
    Failed(r, o, "revoke access token");
    return;
  }
  Ok(r);
  f.denied_access.push_back(token);
  ++tally_.acked["revoke_access_token"];
}

void Worker::RevokeFamily(FamilyFacts& f, bool by_refresh_token) {
  const int r = Pick();
  Outcome o;
  v1::RevokeFamilyResponse resp;
  if (by_refresh_token) {
    o = replicas_[r]->RevokeToken(f.current);
  } else {
    o = replicas_[r]->RevokeFamily(f.id, &resp);
  }
  if (!o.ok()) {
    if (Failed(r, o, by_refresh_token ? "revoke refresh token" : "revoke family")) {
      f.maybe_revoked = true;
    }
    return;
  }
  Ok(r);
  if (!by_refresh_token && !resp.changed()) {
    errors_.push_back(absl::StrCat("revoke family on replica ", r, ": a live family unchanged"));
  }
  f.revoked = true;
  ++tally_.acked[by_refresh_token ? "revoke_refresh_token" : "revoke_family"];
}

void Worker::Replay(FamilyFacts& f) {
  if (f.spent.empty()) return IntrospectCurrent(f);
  const int r = Pick();
  v1::TokenPair pair;
  Outcome o = replicas_[r]->Refresh(f.spent.back(), &pair);
  if (o.status.error_code() == grpc::StatusCode::UNAUTHENTICATED &&
      o.reason == "refresh_token_reused") {
    Ok(r);
    f.revoked = true;
    ++tally_.acked["reuse_detected"];
    return;
  }
  if (o.ok()) {
    errors_.push_back(absl::StrCat("replay on replica ", r, " of a spent token was accepted"));
    return;
  }
  if (Failed(r, o, "replay")) f.maybe_revoked = true;
}

void Worker::IntrospectCurrent(FamilyFacts& f) {
  const int r = Pick();
  v1::IntrospectResponse resp;
  Outcome o = replicas_[r]->Introspect(f.current, &resp);
  if (!o.ok()) {
    Failed(r, o, "introspect");
    return;
  }
  Ok(r);
  if (!resp.active()) {
    errors_.push_back(absl::StrCat(
        "replica ", r, ": live current refresh token inactive: ", resp.inactive_reason()));
  }
  ++tally_.acked["introspect"];
}

int64_t VerifyThrough(RemoteServer& via, const std::vector<FamilyFacts*>& families) {
  std::map<std::string, v1::Family> stored;
  for (FamilyFacts* f : families) {
    v1::Family record;
    Outcome r = via.GetFamily(f->id, &record);
    INFO("GetFamily " << f->id << ": " << r.status.error_code() << " " << r.reason);
    REQUIRE(r.ok());  // an acknowledged issue is never lost
    Resolve(via, *f, record);
    stored[f->id] = record;
  }
  std::vector<std::string> tokens;
  for (FamilyFacts* f : families) {
    if (!f->current.empty()) tokens.push_back(f->current);
    for (auto* list : {&f->spent, &f->access, &f->denied_access}) {
      tokens.insert(tokens.end(), list->begin(), list->end());
    }
  }
  absl::StatusOr<std::map<std::string, v1::IntrospectResponse>> answers =
      IntrospectAll(via, tokens);
  INFO(answers.status().ToString());
  REQUIRE(answers.ok());
  std::map<std::string, v1::IntrospectResponse>& seen = *answers;
  int64_t facts = 0;
  for (FamilyFacts* f : families) {
    INFO("family " << f->id << " (acknowledged generation " << f->generation << ", revoked "
                   << f->revoked << ")");
    const v1::Family& record = stored[f->id];
    CHECK(record.generation() == f->generation);
    CHECK(record.revoked() == f->revoked);
    for (const std::string& t : f->denied_access) CHECK_FALSE(seen[t].active());
    for (const std::string& t : f->spent) CHECK_FALSE(seen[t].active());
    if (!f->current.empty()) CHECK(seen[f->current].active() == !f->revoked);
    for (const std::string& t : f->access) {
      INFO("access token: " << seen[t].inactive_reason());
      CHECK(seen[t].active() == !f->revoked);
    }
    facts += 2 + static_cast<int64_t>(f->denied_access.size() + f->spent.size() + f->access.size() +
                                      (f->current.empty() ? 0 : 1));
  }
  return facts;
}

int64_t VerifyInDatabase(const std::string& dsn, const std::vector<FamilyFacts*>& families,
                         int64_t* lost) {
  absl::StatusOr<std::unique_ptr<storage::SqlSession>> sql = storage::SqlSession::Connect(dsn);
  INFO(sql.status().ToString());
  REQUIRE(sql.ok());
  // Family ids travel as unpadded base64url of the 16 stored bytes.
  absl::StatusOr<std::vector<std::vector<std::string>>> rows = (*sql)->Query(
      "SELECT translate(encode(id, 'base64'), '+/=', '-_'), generation, revoked "
      "FROM ta_families");
  INFO(rows.status().ToString());
  REQUIRE(rows.ok());
  std::map<std::string, std::pair<std::string, std::string>> by_id;
  for (const auto& row : *rows) by_id[row[0]] = {row[1], row[2]};
  int64_t compared = 0;
  for (FamilyFacts* f : families) {
    INFO("family " << f->id);
    auto it = by_id.find(f->id);
    ++compared;
    if (it == by_id.end()) {
      FAIL_CHECK("family " << f->id << " missing from ta_families");
      ++*lost;
      continue;
    }
    const bool agrees = it->second.first == absl::StrCat(f->generation) &&
                        it->second.second == (f->revoked ? "t" : "f");
    CHECK(it->second.first == absl::StrCat(f->generation));
    CHECK(it->second.second == (f->revoked ? "t" : "f"));
    if (!agrees) ++*lost;
  }
  return compared;
}

}  // namespace ta::testing

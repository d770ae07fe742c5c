// Compaction past a watcher's position on a PostgreSQL replica (issue 25 item 5): replica 0
// keeps only 16 revocations for resuming watchers (--watch_history=16). A raw WatchRevocations
// stream and a LocalVerifier (through a TCP proxy the test cuts, so replica 0 never knows)
// follow it; while both are away, more revocations than that commit on replicas 1 and 2 (every
// width). Each resumes with since = its position and gets an explicit reset (replica 0's epoch:
// compaction, not a restart) and a snapshot — never a silent gap — and ends with exactly the
// live set: the raw stream's ids equal a new watcher's, and the verifier answers as replica 0.
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/error.h"
#include "client/verifier.h"
#include "tests/replicas/replica_set.h"
#include "tests/support/local_verifier.h"
#include "tests/support/tcp_proxy.h"
#include "token/base64url.h"

namespace ta::testing {
namespace {

using Response = v1::WatchRevocationsResponse;
constexpr char kIssuer[] = "ta-replicas";
constexpr int kHistory = 16;

// A raw stream on `server`, applying what it reads to a set of ids and a position.
class RawWatcher {
 public:
  RawWatcher(RemoteServer& server, const std::optional<std::pair<uint64_t, uint64_t>>& since) {
    ctx_.AddMetadata("authorization", "Bearer " + server.admin_key());
    ctx_.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    v1::WatchRevocationsRequest request;
    if (since.has_value()) {
      request.mutable_since()->set_epoch(since->first);
      request.mutable_since()->set_seq(since->second);
    }
    stub_ = v1::TokenAuthority::NewStub(server.NewChannel());
    reader_ = stub_->WatchRevocations(&ctx_, request);
  }
  ~RawWatcher() {
    ctx_.TryCancel();
    Response r;
    while (reader_->Read(&r)) {
    }
    (void)reader_->Finish();
  }
  // Reads until a bookmark after a complete snapshot finds every id of `want` held.
  bool ReadUntilHolding(const std::set<std::string>& want) {
    Response r;
    while (reader_->Read(&r)) {
      if (first_.empty()) first_ = r.has_reset() ? "reset" : r.has_keys() ? "keys" : "other";
      if (r.has_reset()) {
        ++resets_;
        ids_.clear();
        epoch_ = r.reset().epoch();
        in_snapshot_ = true;
      } else if (r.has_entry()) {
        ids_.insert(r.entry().id());
        seq_ = r.entry().seq();
      } else if (r.has_end_of_snapshot()) {
        in_snapshot_ = false;
        seq_ = r.end_of_snapshot().seq();
      } else if (r.has_bookmark() && !in_snapshot_) {
        seq_ = r.bookmark().seq();
        bool all = true;
        for (const std::string& id : want) all = all && ids_.count(id) > 0;
        if (all) return true;
      }
    }
    return false;
  }
  std::pair<uint64_t, uint64_t> position() const { return {epoch_, seq_}; }
  const std::set<std::string>& ids() const { return ids_; }
  const std::string& first() const { return first_; }
  int resets() const { return resets_; }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<v1::TokenAuthority::Stub> stub_;
  std::unique_ptr<grpc::ClientReader<Response>> reader_;
  std::set<std::string> ids_;
  uint64_t epoch_ = 0, seq_ = 0;
  bool in_snapshot_ = false;
  int resets_ = 0;
  std::string first_;
};

std::string JtiOf(const std::string& access_token) {
  std::vector<std::string> parts = absl::StrSplit(access_token, '.');
  const std::string claims = token::Base64UrlDecode(parts.at(1)).value();
  const size_t at = claims.find("\"jti\":\"") + 7;
  return claims.substr(at, claims.find('"', at) - at);
}

// Revokes session `k` (issued on replica 1) on replica 1 or 2 by one of four widths; adds the
// log ids it makes to `ids` and the access token it kills to `dead`.
void RevokeOne(ReplicaSet& rs, int k, std::set<std::string>* ids, std::vector<std::string>* dead) {
  RemoteServer& via = rs.at(1 + k % 2);
  const std::string subject = absl::StrCat("vh-", k);
  v1::TokenPair pair;
  REQUIRE(rs.at(1).Issue(subject, &pair).ok());
  switch (k % 4) {
    case 0:
      REQUIRE(via.RevokeToken(pair.access_token()).ok());
      ids->insert(JtiOf(pair.access_token()));
      break;
    case 1:
      REQUIRE(via.RevokeFamily(pair.family_id()).ok());
      ids->insert(pair.family_id());
      break;
    case 2: {
      v1::TokenPair next, again;
      REQUIRE(rs.at(1).Refresh(pair.refresh_token(), &next).ok());
      REQUIRE(!via.Refresh(pair.refresh_token(), &again).ok());  // reuse: the family dies
      dead->push_back(next.access_token());
      ids->insert(pair.family_id());
      break;
    }
    default:
      absl::SleepFor(absl::Milliseconds(5));  // the cutoff after its iat
      REQUIRE(via.RevokeSubject(subject).ok());
      ids->insert(pair.family_id());
      break;
  }
  dead->push_back(pair.access_token());
}

TEST_CASE(
    "Verifier on replicas: a raw stream and a verifier that were away while more revocations "
    "committed than replica 0 keeps resume into a reset and a snapshot, never a gap",
    "[replicas][verifier_replicas][watch_history]") {
  Fixture fx =
      StartFixture({absl::StrCat("--issuer=", kIssuer), absl::StrCat("--watch_history=", kHistory)},
                   /*wait_serving=*/true);
  ReplicaSet& rs = *fx.replicas;
  absl::StatusOr<std::unique_ptr<TcpProxy>> proxy = TcpProxy::Start(rs.at(0).address());
  REQUIRE(proxy.ok());
  std::unique_ptr<client::LocalVerifier> v =
      StartVerifier(VerifierOptions((*proxy)->address(), rs.at(0).admin_key(), kIssuer));
  REQUIRE(v->WaitUntilCurrent(absl::Seconds(15)));

  std::set<std::string> ids;
  std::vector<std::string> dead, live;
  for (int k = 0; k < 4; ++k) RevokeOne(rs, k, &ids, &dead);
  for (int k = 0; k < 4; ++k) {
    v1::TokenPair pair;
    REQUIRE(rs.at(2).Issue(absl::StrCat("vh-live-", k), &pair).ok());
    live.push_back(pair.access_token());
  }
  std::pair<uint64_t, uint64_t> at;
  {
    RawWatcher first(rs.at(0), std::nullopt);
    REQUIRE(first.ReadUntilHolding(ids));
    at = first.position();
  }
  REQUIRE(
      PollUntil(absl::Seconds(10), [&] { return VerifierAnswer(*v, dead.back()) != "active"; }));
  const client::VerifierState before = v->state();
  REQUIRE(before.resets == 1);

  // Away: the verifier cut off, the raw stream closed; 24 revocations on replicas 1 and 2.
  (*proxy)->Cut();
  REQUIRE(PollUntil(absl::Seconds(10), [&] { return !v->state().connected; }));
  for (int k = 4; k < 4 + kHistory + 8; ++k) RevokeOne(rs, k, &ids, &dead);
  // Replica 0 has read them all (its view, then its hub, in the same poll).
  REQUIRE(PollUntil(absl::Seconds(10), [&] {
    for (const std::string& t : dead) {
      if (IntrospectWord(rs.at(0), t) == "active") return false;
    }
    return true;
  }));
  absl::SleepFor(absl::Milliseconds(300));

  size_t live_set = 0;
  {
    RawWatcher back(rs.at(0), at);
    CHECK(back.ReadUntilHolding(ids));  // a gap: never (the stream ends at its deadline)
    CHECK(back.first() == "reset");     // before anything else
    CHECK(back.resets() == 1);
    CHECK(back.position().first == at.first);  // replica 0's own epoch: compaction, not restart
    RawWatcher fresh(rs.at(0), std::nullopt);
    REQUIRE(fresh.ReadUntilHolding(ids));
    CHECK(back.ids() == fresh.ids());  // the live set, no more and no less
    live_set = fresh.ids().size();
  }

  // Current again by a bookmark newer than the resume: until its new snapshot is complete and
  // proved current, the verifier may rightly answer from its old view while that is within
  // its bound (rule 3), which misses what was revoked while it was away.
  const absl::Time resumed = absl::Now();
  (*proxy)->Resume();
  CHECK(AwaitBookmarkAfter(*v, *Clock::Real(), resumed, absl::Seconds(15), /*resets=*/2));
  REQUIRE(v->WaitUntilCurrent(absl::Seconds(10)));
  const client::VerifierState after = v->state();
  CHECK(after.resets == 2);
  CHECK(after.epoch == before.epoch);
  CHECK(after.entries == live_set);
  std::vector<std::string> tokens = live;
  tokens.insert(tokens.end(), dead.begin(), dead.end());
  for (const std::string& t : tokens) {
    const std::string server = IntrospectWord(rs.at(0), t);
    INFO("replica 0: " << server);
    CHECK(CurrentAnswer(*v, t) == server);
  }
  for (const std::string& t : live) CHECK(CurrentAnswer(*v, t) == "active");
  for (const std::string& t : dead) CHECK(VerifierAnswer(*v, t) != "active");
}

}  // namespace
}  // namespace ta::testing

// RevocationView (DESIGN §10) on its own, and the authority's access-token introspection
// answered from it with a store that fails every read (issue 14: "introspection of an access
// token performs no store read").
#include "token/revocation_view.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/status_macros.h"
#include "server/core/authority.h"
#include "server/metrics/metered_store.h"
#include "server/metrics/prometheus_metrics.h"
#include "tests/core/test_authority.h"
#include "tests/support/forwarding_store.h"

namespace ta::core {
namespace {

using Kind = storage::RevocationEntry::Kind;
using token::RevocationView;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

storage::RevocationEntry Entry(uint64_t seq, Kind kind, const std::string& id, absl::Time until,
                               absl::Time revoked_at = kNow) {
  storage::RevocationEntry e;
  e.seq = seq;
  e.kind = kind;
  e.id = id;
  e.revoked_at = revoked_at;
  e.live_until = until;
  return e;
}

TEST_CASE("RevocationView: a jti or a family kills a token until the entry's live_until",
          "[core][view]") {
  FakeClock clock(kNow);
  RevocationView view(/*follows_shared_log=*/false, absl::Seconds(1), &clock);
  CHECK(view.Check("j1", "f1", kNow).empty());
  view.Apply(Entry(1, Kind::kJti, "j1", kNow + absl::Minutes(5)));
  view.Apply(Entry(2, Kind::kFamily, "f2", kNow + absl::Minutes(5)));
  view.Apply(Entry(3, Kind::kSubject, "f3", kNow + absl::Minutes(5)));
  CHECK(view.Check("j1", "f1", kNow) == "token_revoked");
  CHECK(view.Check("j9", "f2", kNow) == "family_revoked");
  CHECK(view.Check("j9", "f3", kNow) == "subject_revoked");
  CHECK(view.Check("f2", "j1", kNow).empty());  // a jti is not a family id, nor the reverse
  CHECK(view.Check("j1", "f2", kNow + absl::Minutes(5)).empty());  // nothing it kills verifies
  CHECK(view.last_seq() == 3);
  // The same revocation twice is one; the later live_until wins.
  view.Apply(Entry(2, Kind::kFamily, "f2", kNow + absl::Minutes(10)));
  CHECK(view.Check("j9", "f2", kNow + absl::Minutes(7)) == "family_revoked");
  CHECK(view.size() == 3);
}

TEST_CASE("RevocationView: dead entries are swept, so it holds only recent revocations",
          "[core][view]") {
  FakeClock clock(kNow);
  RevocationView view(false, absl::Seconds(1), &clock);
  absl::Time now = kNow;
  for (int i = 0; i < 100'000; ++i) {
    clock.Advance(absl::Milliseconds(10));  // 100 revocations/s, each mattering for 5 s
    now = clock.Now();
    view.Apply(Entry(i + 1, i % 2 ? Kind::kJti : Kind::kFamily, absl::StrCat("id-", i),
                     now + absl::Seconds(5), now));
  }
  INFO(view.size());
  CHECK(view.size() < 3 * 500 + 16 * 64);  // ~500 live, plus at most a sweep's slack per shard
  CHECK(view.Check("id-99999", "x", now) == "token_revoked");
}

TEST_CASE("RevocationView: following a shared log, it is trusted only within the lag bound",
          "[core][view]") {
  FakeClock clock(kNow);
  RevocationView alone(false, absl::Seconds(1), &clock);
  CHECK(alone.IsCurrent(kNow));
  RevocationView follower(true, absl::Seconds(1), &clock);
  CHECK_FALSE(follower.IsCurrent(kNow));  // nothing proved yet
  follower.MarkCurrent(kNow);
  CHECK(follower.IsCurrent(kNow + absl::Seconds(1)));
  CHECK_FALSE(follower.IsCurrent(kNow + absl::Seconds(1) + absl::Microseconds(1)));
  follower.MarkCurrent(kNow - absl::Seconds(5));  // an older proof never moves it back
  CHECK(follower.current_as_of() == kNow);
}

// Issue 22: with replica A's clock 6 min ahead, every revocation B applied from A swept B's
// view by A's clock: 40 of 40 revoked access tokens answered active on B.
TEST_CASE("RevocationView: revocations written by a replica whose clock runs ahead never sweep "
          "what this server's clock still needs",
          "[core][view]") {
  FakeClock clock(kNow);  // this server's clock (B)
  RevocationView view(true, absl::Seconds(1), &clock);
  for (int i = 0; i < 40; ++i) {  // revoked access tokens, alive 5 min more by B's clock
    view.Apply(Entry(i + 1, Kind::kJti, absl::StrCat("revoked-", i), kNow + absl::Minutes(5)));
  }
  const absl::Time ahead = kNow + absl::Minutes(6);  // A's clock
  for (int i = 0; i < 5000; ++i) {  // enough to sweep every shard many times
    view.Apply(Entry(100 + i, i % 2 ? Kind::kJti : Kind::kFamily, absl::StrCat("a-", i),
                     ahead + absl::Minutes(5), ahead));
  }
  int still_revoked = 0;
  for (int i = 0; i < 40; ++i) {
    still_revoked += view.Check(absl::StrCat("revoked-", i), "f", clock.Now()) == "token_revoked";
  }
  CHECK(still_revoked == 40);
  // By this server's own clock they do die, and are swept then.
  clock.Advance(absl::Minutes(5));
  for (int i = 0; i < 5000; ++i) {
    view.Apply(Entry(10'000 + i, Kind::kJti, absl::StrCat("b-", i), clock.Now() + absl::Seconds(1),
                     clock.Now()));
  }
  CHECK(view.Check("revoked-0", "f", clock.Now()).empty());
  CHECK(view.size() < 10'040);
}

TEST_CASE("RevocationView: a clock offset past the bound makes the view untrusted until it is "
          "back",
          "[core][view]") {
  FakeClock clock(kNow);
  RevocationView view(true, absl::Seconds(1), &clock);
  view.MarkCurrent(kNow);
  CHECK_FALSE(view.clock_offset().has_value());
  CHECK(view.IsCurrent(kNow));
  view.SetClockOffset(absl::Seconds(2), /*within_bound=*/false);
  CHECK(view.clock_offset_exceeded());
  CHECK_FALSE(view.IsCurrent(kNow));
  CHECK(view.clock_offset() == absl::Seconds(2));
  view.SetClockOffset(absl::Milliseconds(-3), /*within_bound=*/true);
  CHECK_FALSE(view.clock_offset_exceeded());
  CHECK(view.IsCurrent(kNow));
  CHECK(view.clock_offset() == absl::Milliseconds(-3));
}

// Delegates to a real store; once `fail_reads` is set every read fails UNAVAILABLE, and every
// read attempted is counted.
class FailingReads final : public ta::testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  std::atomic<bool> fail_reads{false};
  std::atomic<int> reads{0};
  // While set, every read waits until it is cleared (a store that hangs, not one that fails).
  std::atomic<bool> hang{false};

  absl::StatusOr<storage::FamilyRecord> GetFamily(absl::string_view id, absl::Time now) override {
    RETURN_IF_ERROR(Read());
    return inner().GetFamily(id, now);
  }
  absl::StatusOr<storage::RefreshRecord> GetRefresh(absl::string_view id, uint64_t gen,
                                                    absl::Time now) override {
    RETURN_IF_ERROR(Read());
    return inner().GetRefresh(id, gen, now);
  }
  absl::StatusOr<bool> IsJtiDenied(absl::string_view jti, absl::Time now) override {
    RETURN_IF_ERROR(Read());
    return inner().IsJtiDenied(jti, now);
  }
  absl::StatusOr<std::optional<storage::SubjectRecord>> GetSubject(absl::string_view s,
                                                                   absl::Time now) override {
    RETURN_IF_ERROR(Read());
    return inner().GetSubject(s, now);
  }
  absl::StatusOr<storage::FamilyPage> ListFamilies(const storage::ListFamiliesQuery& q) override {
    RETURN_IF_ERROR(Read());
    return inner().ListFamilies(q);
  }
  // The database's clock: the inner store's, minus `db_behind` (this server's offset to it).
  std::atomic<int64_t> db_behind_micros{0};
  // When set, each clock reading takes this long on `round_trip_clock` (a slow round trip).
  std::atomic<FakeClock*> round_trip_clock{nullptr};
  std::atomic<int64_t> round_trip_micros{0};
  // While set, the clock reading fails UNIMPLEMENTED (what the removed default answered).
  std::atomic<bool> clock_unimplemented{false};
  absl::StatusOr<absl::Time> ClockNow() override {
    RETURN_IF_ERROR(Read());
    if (clock_unimplemented) return absl::UnimplementedError("no clock (test)");
    ASSIGN_OR_RETURN(absl::Time now, inner().ClockNow());
    if (FakeClock* c = round_trip_clock.load(); c != nullptr) {
      c->Advance(absl::Microseconds(round_trip_micros.load()));
    }
    return now - absl::Microseconds(db_behind_micros.load());
  }
  absl::StatusOr<storage::KeyRingBlob> GetKeyRing(uint64_t if_newer_than) override {
    RETURN_IF_ERROR(Read());
    return inner().GetKeyRing(if_newer_than);
  }
  // While `silent`, writes reach the log but not this process's listener: what another
  // replica's writes look like from here.
  std::atomic<bool> silent{false};
  void SetRevocationListener(storage::RevocationListener listener) override {
    listener_ = std::move(listener);
    inner().SetRevocationListener([this](const storage::RevocationEntry& e) {
      if (!silent && listener_) listener_(e);
    });
  }
  absl::StatusOr<std::vector<storage::RevocationEntry>> ReadRevocations(uint64_t after,
                                                                        absl::Time now,
                                                                        size_t limit) override {
    RETURN_IF_ERROR(Read());
    return inner().ReadRevocations(after, now, limit);
  }

 private:
  absl::Status Read() {
    ++reads;
    while (hang) absl::SleepFor(absl::Milliseconds(5));
    if (!fail_reads) return absl::OkStatus();
    return Error(absl::StatusCode::kUnavailable, "store_unavailable", "reads fail (test)");
  }
  storage::RevocationListener listener_;
};

// Whether `done` turns true within 5 s (what a background thread does, on the real clock).
bool Eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 500; ++i) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return done();
}

struct Authority : TestAuthority<FailingReads> {
  explicit Authority(bool shared_store = false) { Start(shared_store); }
  void Start(bool shared_store) {
    AuthorityOptions options;
    options.shared_store = shared_store;
    TestAuthority::Start(options);
  }
  TokenPair Issue(const std::string& subject) {
    IssueRequest request;
    request.subject = subject;
    request.client_id = "web";
    return authority->IssueTokens(request, admin).value();
  }
  absl::StatusOr<Introspection> Introspect(const std::string& token) {
    return authority->Introspect(IntrospectRequest{token, ""});
  }
};

TEST_CASE("Introspect: an access token is judged from the view, with no store read",
          "[core][view]") {
  Authority a;
  TokenPair good = a.Issue("alice"), denied = a.Issue("bob"), logged_out = a.Issue("carol");
  TokenPair banned = a.Issue("dave");
  REQUIRE(a.authority->RevokeToken(denied.access_token, a.admin).ok());
  REQUIRE(a.authority->RevokeFamily(logged_out.family_id, "", "logout", a.admin).ok());
  a.clock.Advance(absl::Seconds(1));
  SubjectRevocation ban;
  ban.subject = "dave";
  REQUIRE(a.authority->RevokeSubject(ban, a.admin).ok());

  a.store->fail_reads = true;
  a.store->reads = 0;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<Introspection> r = a.Introspect(good.access_token);
    REQUIRE(r.ok());
    CHECK(r->active);
    CHECK(a.Introspect(denied.access_token)->inactive_reason == "token_revoked");
    CHECK(a.Introspect(logged_out.access_token)->inactive_reason == "family_revoked");
    CHECK(a.Introspect(banned.access_token)->inactive_reason == "subject_revoked");
  }
  CHECK(a.store->reads == 0);
  // A refresh token is still looked up in the store.
  absl::StatusOr<Introspection> refresh = a.Introspect(good.refresh_token);
  CHECK(refresh.status().code() == absl::StatusCode::kUnavailable);
  CHECK(a.store->reads == 1);
}

TEST_CASE("Introspect: a restarted authority rebuilds the view from the log", "[core][view]") {
  Authority a;
  TokenPair denied = a.Issue("bob"), logged_out = a.Issue("carol");
  REQUIRE(a.authority->RevokeToken(denied.access_token, a.admin).ok());
  REQUIRE(a.authority->RevokeFamily(logged_out.family_id, "", "logout", a.admin).ok());
  a.Start(/*shared_store=*/false);  // loads the log (a store read) ...
  a.store->fail_reads = true;       // ... and needs none after
  CHECK(a.Introspect(denied.access_token)->inactive_reason == "token_revoked");
  CHECK(a.Introspect(logged_out.access_token)->inactive_reason == "family_revoked");
}

TEST_CASE("Introspect: over a shared store, follows the log and refuses once it cannot",
          "[core][view]") {
  Authority a(/*shared_store=*/true);
  TokenPair good = a.Issue("alice");
  TokenPair other = a.Issue("bob");
  REQUIRE(a.Introspect(good.access_token)->active);  // the follower proved the view at start
  // Another replica revokes bob's token: it reaches this view through the log, within the lag
  // bound (here: the first introspection after the bound catches up before answering).
  token::VerifyPolicy policy;
  policy.issuer = "token-authority";
  absl::StatusOr<token::VerifiedJwt> jwt = a.keys->Verify(other.access_token, policy);
  REQUIRE(jwt.ok());
  a.store->silent = true;
  REQUIRE(a.store->DenyJti(jwt->claims.jti, jwt->claims.exp + absl::Seconds(30)).ok());
  a.store->silent = false;
  a.clock.Advance(absl::Seconds(1) + absl::Milliseconds(1));
  CHECK(a.Introspect(other.access_token)->inactive_reason == "token_revoked");
  // The store stops answering: after the bound, no answer rather than a guess ...
  a.store->fail_reads = true;
  a.clock.Advance(absl::Seconds(1) + absl::Milliseconds(1));
  absl::StatusOr<Introspection> r = a.Introspect(good.access_token);
  CHECK(r.status().code() == absl::StatusCode::kUnavailable);
  CHECK(ReasonOf(r.status()) == "revocations_stale");
  // ... and it resumes by itself when the store is back.
  a.store->fail_reads = false;
  r = a.Introspect(good.access_token);
  REQUIRE(r.ok());
  CHECK(r->active);
}

// Issue 22 / DESIGN §13: each replica measures its offset to the database's clock at every
// poll; past --max_clock_offset it calls no token active and says why.
TEST_CASE("Introspect: a replica whose clock is past the allowed offset from the database's "
          "refuses with clock_offset_exceeded until it is back",
          "[core][view]") {
  Authority a(/*shared_store=*/true);
  TokenPair good = a.Issue("alice");
  REQUIRE(a.Introspect(good.access_token)->active);
  REQUIRE(a.authority->view().clock_offset().has_value());
  CHECK(absl::AbsDuration(*a.authority->view().clock_offset()) < absl::Milliseconds(500));
  // The database's clock falls 2 s behind this server's (the default bound is 500 ms).
  a.store->db_behind_micros = 2'000'000;
  // The follower's next poll (every 100 ms) measures it.
  REQUIRE(Eventually([&] { return a.authority->view().clock_offset_exceeded(); }));
  CHECK(*a.authority->view().clock_offset() >= absl::Seconds(2));
  absl::StatusOr<Introspection> r = a.Introspect(good.access_token);
  CHECK(r.status().code() == absl::StatusCode::kUnavailable);
  CHECK(ReasonOf(r.status()) == "clock_offset_exceeded");
  CHECK_FALSE(a.authority->view().IsCurrent(a.clock.Now()));  // health: NOT_SERVING
  // 400 ms off is within the bound: answers again.
  a.store->db_behind_micros = -400'000;
  REQUIRE(Eventually([&] { return !a.authority->view().clock_offset_exceeded(); }));
  r = a.Introspect(good.access_token);
  REQUIRE(r.ok());
  CHECK(r->active);
}

// The store's clock used to have a default answering UNIMPLEMENTED, which the follower took
// as "nothing to measure" and went on serving: a wrapper that forgot to forward ClockNow
// switched the clock-offset check off unseen. Every store now has a clock, and a reading that
// fails, whatever the code, fails the poll like a failed read.
TEST_CASE("Introspect: a replica that cannot read the database's clock is not current",
          "[core][view]") {
  Authority a(/*shared_store=*/true);
  TokenPair good = a.Issue("alice");
  REQUIRE(a.Introspect(good.access_token)->active);
  REQUIRE(a.authority->view().clock_offset().has_value());  // measured at start
  a.store->clock_unimplemented = true;
  a.clock.Advance(absl::Seconds(1) + absl::Milliseconds(1));  // past the lag bound
  absl::StatusOr<Introspection> r = a.Introspect(good.access_token);
  CHECK(r.status().code() == absl::StatusCode::kUnavailable);
  CHECK(ReasonOf(r.status()) == "revocations_stale");
  a.store->clock_unimplemented = false;
  REQUIRE(Eventually([&] { return a.Introspect(good.access_token).ok(); }));
  CHECK(a.Introspect(good.access_token)->active);
}

// A decorator passes the clock through (MeteredStore is the one the server wraps every store
// in), so the follower measures the database's clock, not a wrapper's.
TEST_CASE("MeteredStore: ClockNow is the wrapped store's clock", "[core][view]") {
  Authority a;
  a.store->db_behind_micros = 2'000'000;
  auto metrics = metrics::PrometheusMetrics::Create({});
  REQUIRE(metrics.ok());
  metrics::MeteredStore metered(a.store.get(), metrics->get());
  absl::StatusOr<absl::Time> now = metered.ClockNow();
  REQUIRE(now.ok());
  CHECK(*now == a.clock.Now() - absl::Seconds(2));
  a.store->fail_reads = true;
  CHECK(metered.ClockNow().status().code() == absl::StatusCode::kUnavailable);
}

TEST_CASE("Introspect: a clock reading with a slow round trip changes no verdict it cannot "
          "prove",
          "[core][view]") {
  Authority a(/*shared_store=*/true);
  TokenPair good = a.Issue("alice");
  // Each reading takes 3 s (a wait for a pooled connection): the midpoint says 1.5 s off, the
  // error is as large, so nothing is proved and the replica keeps serving ...
  a.store->round_trip_clock = &a.clock;
  a.store->round_trip_micros = 3'000'000;
  REQUIRE(Eventually([&] {
    std::optional<absl::Duration> offset = a.authority->view().clock_offset();
    return offset.has_value() && *offset >= absl::Milliseconds(1500);
  }));
  CHECK_FALSE(a.authority->view().clock_offset_exceeded());
  // ... while an offset larger than the error is past the bound for certain.
  a.store->db_behind_micros = 3'000'000;
  REQUIRE(Eventually([&] { return a.authority->view().clock_offset_exceeded(); }));
  a.store->round_trip_micros = 0;
  a.store->db_behind_micros = 0;
  REQUIRE(Eventually([&] { return !a.authority->view().clock_offset_exceeded(); }));
  a.store->round_trip_clock = nullptr;
}

TEST_CASE("Metrics: ta_clock_offset_seconds reports the offset the follower measured",
          "[core][view]") {
  Authority a(/*shared_store=*/true);
  a.store->db_behind_micros = 2'500'000;
  REQUIRE(Eventually([&] { return a.authority->view().clock_offset_exceeded(); }));
  metrics::PrometheusMetricsOptions options;
  options.clock_offset = [&a] { return a.authority->view().clock_offset(); };
  auto metrics = metrics::PrometheusMetrics::Create(std::move(options));
  REQUIRE(metrics.ok());
  const std::string text = (*metrics)->Render();
  INFO(text);
  CHECK(absl::StrContains(text, "# TYPE ta_clock_offset_seconds gauge"));
  CHECK(absl::StrContains(text, "\nta_clock_offset_seconds 2.5\n"));
  // Nothing measured (no follower: a store no other process writes): no series.
  metrics::PrometheusMetricsOptions none;
  none.clock_offset = [] { return std::optional<absl::Duration>(); };
  CHECK_FALSE(absl::StrContains(metrics::PrometheusMetrics::Create(std::move(none)).value()->Render(),
                                "ta_clock_offset_seconds"));
}

TEST_CASE("Introspect: a store that hangs holds an introspection briefly, never for its timeouts",
          "[core][view]") {
  Authority a(/*shared_store=*/true);
  TokenPair good = a.Issue("alice");
  REQUIRE(a.Introspect(good.access_token)->active);
  a.store->hang = true;
  std::thread release([&] {
    absl::SleepFor(absl::Seconds(3));
    a.store->hang = false;
  });
  a.clock.Advance(absl::Seconds(2));  // past the lag bound: the view needs a poll
  const absl::Time start = absl::Now();
  absl::StatusOr<Introspection> r = a.Introspect(good.access_token);
  const absl::Duration took = absl::Now() - start;
  release.join();
  CHECK(ReasonOf(r.status()) == "revocations_stale");
  // Waits for the polling thread at most RevocationFollower::kCatchUpWait; the hang lasted 3 s.
  CHECK(took < absl::Seconds(2));
  // Once the store answers, the next call catches up.
  absl::StatusOr<Introspection> again;
  for (int i = 0; i < 100 && !again.ok(); ++i) {
    again = a.Introspect(good.access_token);
    if (!again.ok()) absl::SleepFor(absl::Milliseconds(20));
  }
  REQUIRE(again.ok());
  CHECK(again->active);
}

}  // namespace
}  // namespace ta::core

// RevocationView (DESIGN §10) on its own, and the authority's access-token introspection
// answered from it with a store that fails every read (issue 14: "introspection of an access
// token performs no store read").
#include "server/core/revocation_view.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "server/base/clock.h"
#include "server/base/error.h"
#include "server/base/status_macros.h"
#include "server/core/authority.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "tests/support/temp_dir.h"

namespace ta::core {
namespace {

using Kind = storage::RevocationEntry::Kind;

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
  RevocationView view(/*follows_shared_log=*/false, absl::Seconds(1));
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
  RevocationView view(false, absl::Seconds(1));
  absl::Time now = kNow;
  for (int i = 0; i < 100'000; ++i) {
    now += absl::Milliseconds(10);  // 100 revocations/s, each mattering for 5 s
    view.Apply(Entry(i + 1, i % 2 ? Kind::kJti : Kind::kFamily, absl::StrCat("id-", i),
                     now + absl::Seconds(5), now));
  }
  INFO(view.size());
  CHECK(view.size() < 3 * 500 + 16 * 64);  // ~500 live, plus at most a sweep's slack per shard
  CHECK(view.Check("id-99999", "x", now) == "token_revoked");
}

TEST_CASE("RevocationView: following a shared log, it is trusted only within the lag bound",
          "[core][view]") {
  RevocationView alone(false, absl::Seconds(1));
  CHECK(alone.IsCurrent(kNow));
  RevocationView follower(true, absl::Seconds(1));
  CHECK_FALSE(follower.IsCurrent(kNow));  // nothing proved yet
  follower.MarkCurrent(kNow);
  CHECK(follower.IsCurrent(kNow + absl::Seconds(1)));
  CHECK_FALSE(follower.IsCurrent(kNow + absl::Seconds(1) + absl::Microseconds(1)));
  follower.MarkCurrent(kNow - absl::Seconds(5));  // an older proof never moves it back
  CHECK(follower.current_as_of() == kNow);
}

// Delegates to a real store; once `fail_reads` is set every read fails UNAVAILABLE, and every
// read attempted is counted.
class FailingReads final : public storage::TokenStore {
 public:
  explicit FailingReads(std::unique_ptr<storage::TokenStore> inner) : inner_(std::move(inner)) {}
  std::atomic<bool> fail_reads{false};
  std::atomic<int> reads{0};
  // While set, every read waits until it is cleared (a store that hangs, not one that fails).
  std::atomic<bool> hang{false};

  absl::Status CreateFamily(const storage::FamilyRecord& f, const storage::RefreshRecord& r) override {
    return inner_->CreateFamily(f, r);
  }
  absl::StatusOr<storage::FamilyRecord> GetFamily(absl::string_view id, absl::Time now) override {
    RETURN_IF_ERROR(Read());
    return inner_->GetFamily(id, now);
  }
  absl::StatusOr<storage::RefreshRecord> GetRefresh(absl::string_view id, uint64_t gen,
                                                    absl::Time now) override {
    RETURN_IF_ERROR(Read());
    return inner_->GetRefresh(id, gen, now);
  }
  absl::StatusOr<storage::RotateOutcome> Rotate(const storage::RotateRequest& r) override {
    return inner_->Rotate(r);
  }
  absl::StatusOr<bool> RevokeFamily(absl::string_view id, absl::string_view reason,
                                    absl::string_view by, absl::Time now) override {
    return inner_->RevokeFamily(id, reason, by, now);
  }
  absl::Status DenyJti(absl::string_view jti, absl::Time until) override {
    return inner_->DenyJti(jti, until);
  }
  absl::StatusOr<bool> IsJtiDenied(absl::string_view jti, absl::Time now) override {
    RETURN_IF_ERROR(Read());
    return inner_->IsJtiDenied(jti, now);
  }
  absl::StatusOr<storage::SubjectRecord> UpdateSubject(const storage::SubjectUpdate& u) override {
    return inner_->UpdateSubject(u);
  }
  absl::StatusOr<std::optional<storage::SubjectRecord>> GetSubject(absl::string_view s,
                                                                   absl::Time now) override {
    RETURN_IF_ERROR(Read());
    return inner_->GetSubject(s, now);
  }
  absl::StatusOr<storage::FamilyPage> ListFamilies(const storage::ListFamiliesQuery& q) override {
    RETURN_IF_ERROR(Read());
    return inner_->ListFamilies(q);
  }
  absl::Status PurgeExpired() override { return inner_->PurgeExpired(); }
  absl::StatusOr<storage::BackupResult> CreateBackup(const storage::BackupRequest& r) override {
    return inner_->CreateBackup(r);
  }
  absl::StatusOr<storage::StoreStats> GetStats() override { return inner_->GetStats(); }
  absl::StatusOr<storage::KeyRingBlob> GetKeyRing(uint64_t if_newer_than) override {
    RETURN_IF_ERROR(Read());
    return inner_->GetKeyRing(if_newer_than);
  }
  absl::Status CompareAndSetKeyRing(uint64_t expected, absl::string_view document) override {
    return inner_->CompareAndSetKeyRing(expected, document);
  }
  // While `silent`, writes reach the log but not this process's listener: what another
  // replica's writes look like from here.
  std::atomic<bool> silent{false};
  void SetRevocationListener(storage::RevocationListener listener) override {
    listener_ = std::move(listener);
    inner_->SetRevocationListener([this](const storage::RevocationEntry& e) {
      if (!silent && listener_) listener_(e);
    });
  }
  absl::StatusOr<std::vector<storage::RevocationEntry>> ReadRevocations(uint64_t after,
                                                                        absl::Time now,
                                                                        size_t limit) override {
    RETURN_IF_ERROR(Read());
    return inner_->ReadRevocations(after, now, limit);
  }

 private:
  absl::Status Read() {
    ++reads;
    while (hang) absl::SleepFor(absl::Milliseconds(5));
    if (!fail_reads) return absl::OkStatus();
    return Error(absl::StatusCode::kUnavailable, "store_unavailable", "reads fail (test)");
  }
  std::unique_ptr<storage::TokenStore> inner_;
  storage::RevocationListener listener_;
};

struct Authority {
  explicit Authority(bool shared_store = false) {
    storage::RocksDbStoreOptions store_options;
    store_options.path = dir.Sub("db");
    store_options.clock = &clock;
    store = std::make_unique<FailingReads>(storage::OpenRocksDbStore(store_options).value());
    token::KeyRingOptions key_options;
    key_options.key_dir = dir.Sub("keys");
    key_options.clock = &clock;
    keys = token::KeyRing::Open(key_options).value();
    Start(shared_store);
    admin.name = "ops";
    admin.roles = {Role::kAdmin};
  }
  void Start(bool shared_store) {
    AuthorityOptions options;
    options.default_audience = {"api"};
    options.clock = &clock;
    options.shared_store = shared_store;
    authority.reset();
    authority = TokenAuthority::Create(options, store.get(), keys.get()).value();
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

  ta::testing::TempDir dir;
  FakeClock clock;
  std::unique_ptr<FailingReads> store;
  std::unique_ptr<token::KeyRing> keys;
  std::unique_ptr<TokenAuthority> authority;
  Caller admin;
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

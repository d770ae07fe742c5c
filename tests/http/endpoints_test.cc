// The HTTP face's handlers without a network: core::TokenAuthority over a RocksDB store that a
// test can make unreachable, so the store-failure answers (503) and readiness are checked.
#include "server/http/endpoints.h"

#include <catch2/catch.hpp>
#include <future>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "base/error.h"
#include "server/http/listener.h"
#include "server/readiness.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "tests/http/http_client.h"
#include "tests/support/temp_dir.h"

namespace ta::http {
namespace {

using storage::TokenStore;

// A store that answers UNAVAILABLE to everything while `down` is set, and whose revocation
// log and point reads hang (as a database that stopped answering) between Hang() and Resume().
class SwitchableStore final : public TokenStore {
 public:
  explicit SwitchableStore(TokenStore* real) : real_(real) {}
  std::atomic<bool> down{false};

  void Hang() {
    absl::MutexLock lock(&mu_);
    hung_ = true;
  }
  void Resume() {
    absl::MutexLock lock(&mu_);
    hung_ = false;
  }

  void SetRevocationListener(storage::RevocationListener listener) override {
    real_->SetRevocationListener(std::move(listener));
  }
  absl::StatusOr<std::vector<storage::RevocationEntry>> ReadRevocations(uint64_t after,
                                                                        absl::Time now,
                                                                        size_t limit) override {
    WaitWhileHung();
    if (down) return Down();
    return real_->ReadRevocations(after, now, limit);
  }

  absl::Status CreateFamily(const storage::FamilyRecord& f, const storage::RefreshRecord& r,
                            const std::optional<storage::ProofReplay>& p) override {
    return down ? Down() : real_->CreateFamily(f, r, p);
  }
  absl::StatusOr<storage::FamilyRecord> GetFamily(absl::string_view id, absl::Time now) override {
    if (down) return Down();
    return real_->GetFamily(id, now);
  }
  absl::StatusOr<storage::RefreshRecord> GetRefresh(absl::string_view id, uint64_t g,
                                                    absl::Time now) override {
    WaitWhileHung();
    if (down) return Down();
    return real_->GetRefresh(id, g, now);
  }
  absl::StatusOr<storage::RotateOutcome> Rotate(const storage::RotateRequest& r) override {
    if (down) return Down();
    return real_->Rotate(r);
  }
  absl::StatusOr<bool> RevokeFamily(absl::string_view id, absl::string_view reason,
                                    absl::string_view by, absl::Time now) override {
    if (down) return Down();
    return real_->RevokeFamily(id, reason, by, now);
  }
  absl::Status DenyJti(absl::string_view jti, absl::Time exp) override {
    return down ? Down() : real_->DenyJti(jti, exp);
  }
  absl::StatusOr<bool> IsJtiDenied(absl::string_view jti, absl::Time now) override {
    WaitWhileHung();
    if (down) return Down();
    return real_->IsJtiDenied(jti, now);
  }
  absl::StatusOr<bool> RecordProofJti(absl::string_view key, absl::Time keep_until,
                                      absl::Time now) override {
    if (down) return Down();
    return real_->RecordProofJti(key, keep_until, now);
  }
  absl::StatusOr<storage::SubjectRecord> UpdateSubject(const storage::SubjectUpdate& u) override {
    if (down) return Down();
    return real_->UpdateSubject(u);
  }
  absl::StatusOr<std::optional<storage::SubjectRecord>> GetSubject(absl::string_view s,
                                                                   absl::Time now) override {
    if (down) return Down();
    return real_->GetSubject(s, now);
  }
  absl::StatusOr<storage::FamilyPage> ListFamilies(const storage::ListFamiliesQuery& q) override {
    if (down) return Down();
    return real_->ListFamilies(q);
  }
  absl::Status PurgeExpired() override { return down ? Down() : real_->PurgeExpired(); }
  absl::StatusOr<storage::BackupResult> CreateBackup(const storage::BackupRequest& r) override {
    if (down) return Down();
    return real_->CreateBackup(r);
  }
  absl::StatusOr<storage::StoreStats> GetStats() override {
    if (down) return Down();
    return real_->GetStats();
  }
  absl::StatusOr<storage::KeyRingBlob> GetKeyRing(uint64_t if_newer_than) override {
    if (down) return Down();
    return real_->GetKeyRing(if_newer_than);
  }
  absl::Status CompareAndSetKeyRing(uint64_t expected, absl::string_view document) override {
    if (down) return Down();
    return real_->CompareAndSetKeyRing(expected, document);
  }
  // The database's clock is read like any row: it hangs and fails with the store.
  absl::StatusOr<absl::Time> ClockNow() override {
    WaitWhileHung();
    if (down) return Down();
    return real_->ClockNow();
  }

 private:
  static absl::Status Down() {
    return Error(absl::StatusCode::kUnavailable, "store_unavailable", "disk gone");
  }
  void WaitWhileHung() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](bool* hung) { return !*hung; }, &hung_));
  }
  TokenStore* real_;
  absl::Mutex mu_;
  bool hung_ ABSL_GUARDED_BY(mu_) = false;
};

constexpr char kResourceKey[] = "resource-key-0123456789";
constexpr char kClientKey[] = "client-key-0123456789";
constexpr char kAdminKey[] = "admin-key-0123456789";

// The pieces Server wires together, minus gRPC and the listener.
struct Fixture {
  ta::testing::TempDir dir;
  std::unique_ptr<TokenStore> rocks;
  std::unique_ptr<SwitchableStore> store;
  std::unique_ptr<token::KeyRing> keys;
  std::unique_ptr<core::TokenAuthority> authority;
  std::unique_ptr<core::CallerRegistry> callers;
  runtime::CallGate gate;
  std::unique_ptr<ReadinessMonitor> readiness;
  std::unique_ptr<Endpoints> endpoints;
  // Last: destroyed first, so a revocation still finishing on a pool thread (its answer is
  // already out) finds everything else alive.
  runtime::WorkerPool pool{8, 64};

  // `shared_store`: as over PostgreSQL, a follower keeps the view current from the store's log.
  explicit Fixture(EndpointsOptions options = {"token-authority", "http://x"},
                   bool shared_store = false) {
    storage::RocksDbStoreOptions so;
    so.path = dir.Sub("db");
    rocks = *storage::OpenRocksDbStore(so);
    store = std::make_unique<SwitchableStore>(rocks.get());
    token::KeyRingOptions ko;
    ko.key_dir = dir.Sub("keys");
    keys = *token::KeyRing::Open(ko);
    core::AuthorityOptions ao;
    ao.default_audience = {"api"};
    ao.shared_store = shared_store;
    ao.max_revocation_lag = absl::Milliseconds(200);
    authority = *core::TokenAuthority::Create(ao, store.get(), keys.get());
    callers = *core::CallerRegistry::Parse(
        "gateway resource " + core::CallerRegistry::KeyCredential(kResourceKey) + "\n" +
            "web-bff client " + core::CallerRegistry::KeyCredential(kClientKey) + "\n" +
            "ops admin " + core::CallerRegistry::KeyCredential(kAdminKey) + "\n",
        "test");
    readiness = std::make_unique<ReadinessMonitor>(
        [this] {
          absl::StatusOr<bool> r = store->IsJtiDenied("probe", absl::Now());
          return r.ok() ? absl::OkStatus() : r.status();
        },
        absl::Milliseconds(100), nullptr);
    EndpointsDeps deps{authority.get(), callers.get(), &pool, &gate};
    deps.readiness = [this] { return readiness->Current(); };
    endpoints = std::make_unique<Endpoints>(std::move(options), deps);
  }
  ~Fixture() { store->Resume(); }  // before the follower and readiness threads are joined

  std::string AccessToken() {
    core::IssueRequest req{"alice", "web", {}, "read", "", {}};
    core::Caller issuer{"login", {core::Role::kIssuer}, {}};
    return authority->IssueTokens(req, issuer)->access_token;
  }

  HttpResponse Call(HttpRequest request) {
    std::promise<HttpResponse> answer;
    endpoints->Handle(std::move(request), [&](HttpResponse r) { answer.set_value(std::move(r)); });
    return answer.get_future().get();
  }

  HttpResponse Post(const std::string& path, const std::string& key, const std::string& token) {
    HttpRequest r;
    r.method = "POST";
    r.path = path;
    r.content_type = "application/x-www-form-urlencoded";
    r.authorization = "Bearer " + key;
    r.body = "token=" + token;
    return Call(std::move(r));
  }
};

TEST_CASE("Endpoints: revocation answers 503 while the store cannot take it", "[http]") {
  Fixture f;
  const std::string token = f.AccessToken();
  f.store->down = true;
  HttpResponse r = f.Post("/oauth2/revoke", kClientKey, token);
  CHECK(r.status == 503);
  CHECK(r.body.find("temporarily_unavailable") != std::string::npos);
  f.store->down = false;
  CHECK(f.Post("/oauth2/revoke", kClientKey, token).status == 200);
  CHECK(f.Post("/oauth2/introspect", kResourceKey, token).body == R"({"active":false})");
}

TEST_CASE("Endpoints: introspection answers 503, never inactive, when it needs the store",
          "[http]") {
  Fixture f;
  core::IssueRequest req{"alice", "web", {}, "read", "", {}};
  core::TokenPair pair =
      *f.authority->IssueTokens(req, core::Caller{"login", {core::Role::kIssuer}, {}});
  f.store->down = true;
  // An access token is judged from the revocation view (DESIGN §10): no store read.
  CHECK(
      f.Post("/oauth2/introspect", kResourceKey, pair.access_token).body.find(R"("active":true)") ==
      1);
  // A refresh token (as an admin may ask) is judged from the store.
  HttpResponse r = f.Post("/oauth2/introspect", kAdminKey, pair.refresh_token);
  CHECK(r.status == 503);
  CHECK(r.body.find("temporarily_unavailable") != std::string::npos);
  f.store->down = false;
  CHECK(f.Post("/oauth2/introspect", kAdminKey, pair.refresh_token).status == 200);
}

TEST_CASE("Endpoints: /healthz/ready follows the store, /healthz/live does not", "[http]") {
  Fixture f;
  HttpRequest ready{"GET", "/healthz/ready"};
  HttpRequest live{"GET", "/healthz/live"};
  HttpRequest bare{"GET", "/healthz"};  // issue 23 (4): named by the README, was 404
  CHECK(f.Call(ready).status == 200);
  CHECK(f.Call(bare).body == R"({"status":"ready"})");
  f.store->down = true;
  for (int i = 0; i < 100 && f.Call(ready).status == 200; ++i)
    absl::SleepFor(absl::Milliseconds(20));
  HttpResponse r = f.Call(ready);
  CHECK(r.status == 503);
  CHECK(r.body == R"({"status":"not_ready","reason":"store_unavailable"})");
  CHECK(f.Call(bare).status == 503);
  CHECK(f.Call(live).status == 200);
  f.store->down = false;
  for (int i = 0; i < 100 && f.Call(ready).status != 200; ++i)
    absl::SleepFor(absl::Milliseconds(20));
  CHECK(f.Call(ready).status == 200);
}

// Issue 23 (5): with an issuer URL with a path, the metadata announced
// http://h/tenant1/.well-known/jwks.json and /tenant1/oauth2/..., which answered 404.
TEST_CASE("Endpoints: an issuer URL with a path serves every route under it", "[http]") {
  Fixture f(EndpointsOptions{"http://h/tenant1", "http://h/tenant1"});
  HttpResponse metadata = f.Call(HttpRequest{"GET", "/tenant1/.well-known/openid-configuration"});
  REQUIRE(metadata.status == 200);
  CHECK(metadata.body.find(R"("jwks_uri":"http://h/tenant1/.well-known/jwks.json")") !=
        std::string::npos);
  CHECK(f.Call(HttpRequest{"GET", "/.well-known/oauth-authorization-server/tenant1"}).status ==
        200);
  CHECK(f.Call(HttpRequest{"GET", "/tenant1/.well-known/jwks.json"}).status == 200);
  CHECK(f.Call(HttpRequest{"GET", "/.well-known/jwks.json"}).status == 200);
  CHECK(f.Call(HttpRequest{"GET", "/tenant1/healthz"}).status == 200);
  const std::string token = f.AccessToken();
  CHECK(f.Post("/tenant1/oauth2/introspect", kResourceKey, token).status == 200);
  CHECK(f.Post("/tenant1/oauth2/revoke", kClientKey, token).status == 200);
  CHECK(f.Post("/tenant1/oauth2/introspect", kResourceKey, token).body == R"({"active":false})");
  CHECK(f.Call(HttpRequest{"GET", "/tenant2/.well-known/jwks.json"}).status == 404);
  CHECK(f.Call(HttpRequest{"GET", "/tenant1"}).status == 404);
  CHECK(f.Call(HttpRequest{"GET", "/tenant1x/.well-known/jwks.json"}).status == 404);
}

TEST_CASE("Endpoints: a closed gate answers 503 shutting_down", "[http]") {
  Fixture f;
  f.gate.CloseAndWait(absl::Now());
  HttpResponse r = f.Call(HttpRequest{"GET", "/.well-known/jwks.json"});
  CHECK(r.status == 503);
  CHECK(r.body.find("shutting_down") != std::string::npos);
}

TEST_CASE("Endpoints: introspection answers 503 overloaded when the worker queue is full",
          "[http]") {
  Fixture f;
  const std::string token = f.AccessToken();
  // Every worker busy (8), then the queue full (64).
  absl::Notification release;
  std::atomic<int> running{0};
  for (int i = 0; i < 8; ++i) {
    REQUIRE(f.pool.Schedule([&] {
      ++running;
      release.WaitForNotification();
    }));
  }
  while (running < 8) absl::SleepFor(absl::Milliseconds(1));
  int queued = 0;
  while (f.pool.Schedule([&release] { release.WaitForNotification(); })) ++queued;
  REQUIRE(queued == 64);
  HttpResponse r = f.Post("/oauth2/introspect", kResourceKey, token);
  CHECK(r.status == 503);
  CHECK(r.body.find("overloaded") != std::string::npos);
  // What needs no worker is still answered.
  CHECK(f.Call(HttpRequest{"GET", "/healthz/live"}).status == 200);
  release.Notify();
}

TEST_CASE(
    "Endpoints: /healthz/live answers at once while introspections wait on a hung store "
    "(issue 22 #4)",
    "[http]") {
  Fixture f({"token-authority", "http://x"}, /*shared_store=*/true);
  const std::string token = f.AccessToken();
  http::ListenerOptions lo;
  lo.threads = 2;
  std::unique_ptr<Listener> listener = *Listener::Bind(lo);
  listener->Serve(f.endpoints.get());
  const std::string address = absl::StrCat("127.0.0.1:", listener->port());

  // The database stops answering: the follower hangs in its poll, the view goes stale, and
  // every introspection waits (up to 100 ms) for a poll that does not come.
  f.store->Hang();
  absl::SleepFor(absl::Milliseconds(300));
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0}, unexpected{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 40; ++i) {
    clients.emplace_back([&] {
      const std::string headers =
          absl::StrCat("Content-Type: application/x-www-form-urlencoded\r\n",
                       "Authorization: Bearer ", kResourceKey, "\r\n");
      while (!stop) {
        absl::StatusOr<ta::testing::HttpAnswer> a =
            ta::testing::Fetch(address, "POST", "/oauth2/introspect", headers, "token=" + token);
        if (a.ok() && a->status == 503) {
          ++answered;  // revocations_stale, or overloaded when the pool's queue is full
        } else {
          ++unexpected;
        }
      }
    });
  }
  absl::SleepFor(absl::Milliseconds(300));  // the loops would be full of waiting calls by now
  absl::Duration slowest;
  for (int i = 0; i < 10; ++i) {
    const absl::Time start = absl::Now();
    absl::StatusOr<ta::testing::HttpAnswer> live =
        ta::testing::Fetch(address, "GET", "/healthz/live");
    slowest = std::max(slowest, absl::Now() - start);
    REQUIRE(live.ok());
    CHECK(live->status == 200);
    absl::SleepFor(absl::Milliseconds(50));
  }
  stop = true;
  for (std::thread& t : clients) t.join();
  INFO("slowest /healthz/live: " << slowest << "; introspections answered " << answered
                                 << ", unexpected " << unexpected);
  std::cout << "hung store, 40 introspecting clients: slowest of 10 /healthz/live " << slowest
            << ", " << answered << " introspections answered 503" << std::endl;
  CHECK(slowest < absl::Milliseconds(200));
  CHECK(answered > 0);
  CHECK(unexpected == 0);
  f.store->Resume();
  listener->Stop(absl::Seconds(1));
}

}  // namespace
}  // namespace ta::http

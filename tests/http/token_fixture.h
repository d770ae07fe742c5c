// The fixture of the token endpoint's tests (token_endpoint_test.cc,
// token_endpoint_dpop_test.cc): Endpoints over a RocksDB store that counts its reads and
// writes (and can go down), served by a real listener on 127.0.0.1:0; DPoP proofs made here.
#ifndef TA_TESTS_HTTP_TOKEN_FIXTURE_H_
#define TA_TESTS_HTTP_TOKEN_FIXTURE_H_

#include <rapidjson/document.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "base/error.h"
#include "server/core/audit.h"
#include "server/core/refresh_token.h"
#include "server/http/endpoints.h"
#include "server/http/errors.h"
#include "server/http/listener.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "tests/http/http_client.h"
#include "tests/support/dpop_proofs.h"
#include "tests/support/forwarding_store.h"
#include "tests/support/temp_dir.h"
#include "token/crypto.h"
#include "token/dpop.h"
#include "token/jws.h"
#include "token/key.h"

namespace ta::http::token_test {

using ta::testing::Fetch;
using ta::testing::HttpAnswer;

// Counts the store's writes and reads; answers UNAVAILABLE to everything while `down`.
class CountingStore final : public ta::testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  std::atomic<int> writes{0}, reads{0};
  std::atomic<bool> down{false};

  absl::Status CreateFamily(const storage::FamilyRecord& f, const storage::RefreshRecord& r,
                            const std::optional<storage::ProofReplay>& p) override {
    ++writes;
    return down ? Down() : ForwardingStore::CreateFamily(f, r, p);
  }
  absl::StatusOr<storage::RotateOutcome> Rotate(const storage::RotateRequest& r) override {
    ++writes;
    if (down) return Down();
    return ForwardingStore::Rotate(r);
  }
  absl::StatusOr<bool> RevokeFamily(absl::string_view id, absl::string_view reason,
                                    absl::string_view by, absl::Time now) override {
    ++writes;
    if (down) return Down();
    return ForwardingStore::RevokeFamily(id, reason, by, now);
  }
  absl::Status DenyJti(absl::string_view jti, absl::Time exp) override {
    ++writes;
    return down ? Down() : ForwardingStore::DenyJti(jti, exp);
  }
  // The DPoP replay cache: a write per proof.
  absl::StatusOr<bool> RecordProofJti(absl::string_view key, absl::Time keep_until,
                                      absl::Time now) override {
    ++writes;
    if (down) return Down();
    return ForwardingStore::RecordProofJti(key, keep_until, now);
  }
  absl::StatusOr<storage::SubjectRecord> UpdateSubject(const storage::SubjectUpdate& u) override {
    ++writes;
    if (down) return Down();
    return ForwardingStore::UpdateSubject(u);
  }
  absl::StatusOr<storage::FamilyRecord> GetFamily(absl::string_view id, absl::Time now) override {
    ++reads;
    if (down) return Down();
    return ForwardingStore::GetFamily(id, now);
  }
  absl::StatusOr<storage::RefreshRecord> GetRefresh(absl::string_view id, uint64_t g,
                                                    absl::Time now) override {
    ++reads;
    if (down) return Down();
    return ForwardingStore::GetRefresh(id, g, now);
  }
  absl::StatusOr<std::optional<storage::SubjectRecord>> GetSubject(absl::string_view s,
                                                                   absl::Time now) override {
    ++reads;
    if (down) return Down();
    return ForwardingStore::GetSubject(s, now);
  }

 private:
  static absl::Status Down() {
    return Error(absl::StatusCode::kUnavailable, "store_unavailable", "disk gone");
  }
};

constexpr char kForm[] = "Content-Type: application/x-www-form-urlencoded\r\n";
constexpr char kLoginUrl[] = "https://login.example.com/session";
// The endpoint's public URL: the fixture's base URL + /oauth2/token.
constexpr char kTokenUrl[] = "http://127.0.0.1:9/oauth2/token";

// A valid DPoP proof (RFC 9449 §4.2) by `key` for (method, url), with its own jti, and
// `nonce` when not empty.
inline std::string MakeProof(const token::Key& key, const std::string& method,
                             const std::string& url, const std::string& nonce = "") {
  ta::testing::DpopSpec spec;
  spec.htm = method;
  spec.htu = url;
  if (!nonce.empty()) spec.nonce = nonce;
  return ta::testing::MakeDpopProof(key, spec, absl::Now());
}

// The audit events the authority reports (thread-safe).
class RecordingAudit final : public core::AuditSink {
 public:
  void Record(const core::AuditEvent& event) override {
    absl::MutexLock lock(&mu_);
    events_.push_back(event);
  }
  std::vector<core::AuditEvent> events() const {
    absl::MutexLock lock(&mu_);
    return events_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<core::AuditEvent> events_ ABSL_GUARDED_BY(mu_);
};

// Endpoints over a counting RocksDB store, served by a real listener on 127.0.0.1:0. The rate
// limit's clock is a FakeClock the test moves.
struct Fixture {
  RecordingAudit audit;
  ta::testing::TempDir dir;
  CountingStore* store = nullptr;
  std::unique_ptr<storage::TokenStore> owned_store;
  std::unique_ptr<token::KeyRing> keys;
  std::unique_ptr<core::TokenAuthority> authority;
  std::unique_ptr<core::CallerRegistry> callers;
  runtime::CallGate gate;
  FakeClock limiter_clock;
  std::unique_ptr<Endpoints> endpoints;
  std::unique_ptr<Listener> listener;
  std::string address;
  runtime::WorkerPool pool{4, 16};

  explicit Fixture(PeerRateOptions rate = {}, bool dpop_nonce = false) {
    storage::RocksDbStoreOptions so;
    so.path = dir.Sub("db");
    auto counting = std::make_unique<CountingStore>(*storage::OpenRocksDbStore(so));
    store = counting.get();
    owned_store = std::move(counting);
    token::KeyRingOptions ko;
    ko.key_dir = dir.Sub("keys");
    keys = *token::KeyRing::Open(ko);
    core::AuthorityOptions ao;
    ao.default_audience = {"api"};
    ao.dpop_nonce = dpop_nonce;
    ao.audit = &audit;
    authority = *core::TokenAuthority::Create(ao, owned_store.get(), keys.get());
    callers = *core::CallerRegistry::Parse(
        "ops admin " + core::CallerRegistry::KeyCredential("admin-key-0123456789") + "\n", "test");
    EndpointsOptions eo{"http://127.0.0.1:9", "http://127.0.0.1:9"};
    eo.token_rate = rate;
    eo.clock = &limiter_clock;
    endpoints = std::make_unique<Endpoints>(
        eo, EndpointsDeps{authority.get(), callers.get(), &pool, &gate});
    ListenerOptions lo;
    lo.threads = 1;
    lo.body_limit = 16 * 1024;
    listener = *Listener::Bind(lo);
    listener->Serve(endpoints.get());
    address = absl::StrCat("127.0.0.1:", listener->port());
  }
  ~Fixture() { listener->Stop(absl::Seconds(1)); }

  core::TokenPair Issue(const std::string& client_id = "spa") {
    core::IssueRequest req{"alice", client_id, {}, "read write", "", {}};
    absl::StatusOr<core::TokenPair> pair =
        authority->IssueTokens(req, core::Caller{"login", {core::Role::kIssuer}, {}});
    REQUIRE(pair.ok());
    return *pair;
  }

  // A session bound at login to `key` (the proof the app made for its login request).
  core::TokenPair IssueBound(const token::Key& key, const std::string& client_id = "spa") {
    core::IssueRequest req{"alice", client_id, {}, "read write", "", {}};
    req.proof.dpop_proof = Proof(key, "POST", kLoginUrl);
    req.proof.http_method = "POST";
    req.proof.http_url = kLoginUrl;
    absl::StatusOr<core::TokenPair> pair =
        authority->IssueTokens(req, core::Caller{"login", {core::Role::kIssuer}, {}});
    INFO(pair.status().ToString());
    REQUIRE(pair.ok());
    return *pair;
  }

  // A proof by `key` (the current nonce in it when nonces are on).
  std::string Proof(const token::Key& key, const std::string& method = "POST",
                    const std::string& url = kTokenUrl) {
    return MakeProof(key, method, url, authority->CurrentDpopNonce());
  }

  // A refresh at the endpoint with `proof` in a DPoP header.
  HttpAnswer RefreshWithProof(const std::string& refresh_token, const std::string& proof,
                              const std::string& extra = "") {
    return Post("grant_type=refresh_token&refresh_token=" + refresh_token + extra,
                absl::StrCat(kForm, "DPoP: ", proof, "\r\n"));
  }

  HttpAnswer Post(const std::string& body, const std::string& headers = kForm,
                  const std::string& source_ip = "") {
    absl::StatusOr<HttpAnswer> a =
        Fetch(address, "POST", "/oauth2/token", headers, body, source_ip);
    INFO(a.status().ToString());
    REQUIRE(a.ok());
    return *a;
  }
  HttpAnswer Refresh(const std::string& refresh_token, const std::string& extra = "") {
    return Post("grant_type=refresh_token&refresh_token=" + refresh_token + extra);
  }
};

inline rapidjson::Document Json(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  INFO(text);
  REQUIRE_FALSE(doc.HasParseError());
  REQUIRE(doc.IsObject());
  return doc;
}

inline std::string Str(const rapidjson::Value& v) {
  return std::string(v.GetString(), v.GetStringLength());
}

// An RFC 6749 §5.2 error answer: status, error, and the core's reason first in the
// description.
inline void CheckError(const HttpAnswer& a, int status, const std::string& error,
                       const std::string& reason) {
  INFO(a.body);
  CHECK(a.status == status);
  CHECK(a.Header("content-type") == "application/json");
  CHECK(a.Header("cache-control") == "no-store");
  CHECK(a.Header("pragma") == "no-cache");
  rapidjson::Document doc = Json(a.body);
  CHECK(Str(doc["error"]) == error);
  CHECK(absl::StartsWith(Str(doc["error_description"]), reason + ":"));
}

inline bool Active(Fixture& f, const std::string& token) {
  core::IntrospectRequest in;
  in.token = token;
  absl::StatusOr<core::Introspection> out = f.authority->Introspect(in);
  REQUIRE(out.ok());
  return out->active;
}

}  // namespace ta::http::token_test

#endif  // TA_TESTS_HTTP_TOKEN_FIXTURE_H_

// The core tests of sender-constrained sessions (issue 26): an authority over RocksDB, or two
// authorities over one PostgreSQL database (two replicas sharing the key directory), a fake
// clock, an admin caller, and the client's keys and proofs (tests/support/dpop_proofs.h).
#ifndef TA_TESTS_CORE_BINDING_ENV_H_
#define TA_TESTS_CORE_BINDING_ENV_H_

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/error.h"
#include "server/core/authority.h"
#include "server/token/key_ring.h"
#include "storage/postgres/postgres_store.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "tests/support/dpop_proofs.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/temp_dir.h"
#include "token/dpop.h"

namespace ta::core {

inline constexpr char kTokenUrl[] = "https://login.example.com/session";
inline constexpr char kResourceUrl[] = "https://api.example.com/orders";

enum class Engine { kRocksDb, kPostgres };

struct BindingEnv {
  // `replicas` authorities (PostgreSQL only for more than one), each with its own store on
  // the same data and the same key directory (so the same refresh secret and nonces).
  explicit BindingEnv(Engine engine, int replicas = 1, AuthorityOptions options = {})
      : engine(engine) {
    clock.Set(absl::FromUnixSeconds(1'800'000'000));
    if (engine == Engine::kPostgres) db = ::ta::testing::TestDatabase::Create().value();
    for (int i = 0; i < replicas; ++i) {
      stores.push_back(OpenStore());
      token::KeyRingOptions key_options;
      key_options.key_dir = dir.Sub("keys");
      key_options.clock = &clock;
      rings.push_back(token::KeyRing::Open(key_options).value());
    }
    options.clock = &clock;
    options.shared_store = engine == Engine::kPostgres;
    if (options.default_audience.empty()) options.default_audience = {"api"};
    for (int i = 0; i < replicas; ++i) {
      authorities.push_back(
          TokenAuthority::Create(options, stores[i].get(), rings[i].get()).value());
    }
    admin.name = "login";
    admin.roles = {Role::kAdmin};
    key = token::Key::Generate(token::Algorithm::kES256).value();
    jkt = token::JwkThumbprint(key->PublicJwkMembers());
  }
  ~BindingEnv() {
    authorities.clear();
    stores.clear();  // before the database is dropped
  }

  std::unique_ptr<storage::TokenStore> OpenStore() {
    if (engine == Engine::kPostgres) {
      storage::PostgresStoreOptions o;
      o.dsn = db->dsn();
      o.clock = &clock;
      o.database_clock = &clock;
      o.reap_interval = absl::ZeroDuration();
      return storage::OpenPostgresStore(o).value();
    }
    storage::RocksDbStoreOptions o;
    o.path = dir.Sub("db");
    o.clock = &clock;
    o.sync_writes = false;  // the rules, not the fsyncs, are under test
    o.block_cache_bytes = 8 << 20;
    return storage::OpenRocksDbStore(o).value();
  }

  TokenAuthority& authority(int i = 0) { return *authorities[i]; }

  // A proof by `by` (default: the client's key) for (htm, htu), at the clock's now.
  std::string Proof(::ta::testing::DpopSpec spec, const token::Key* by = nullptr) {
    return ::ta::testing::MakeDpopProof(by != nullptr ? *by : *key, spec, clock.Now());
  }
  token::PresentedProof ForTokenUrl(const token::Key* by = nullptr) {
    ::ta::testing::DpopSpec spec;
    spec.htu = kTokenUrl;
    return ::ta::testing::Presented(Proof(spec, by), "POST", kTokenUrl);
  }
  token::PresentedProof ForResource(absl::string_view access_token,
                                    const token::Key* by = nullptr) {
    ::ta::testing::DpopSpec spec;
    spec.htm = "GET";
    spec.htu = kResourceUrl;
    spec.ath = token::AccessTokenHash(access_token);
    return ::ta::testing::Presented(Proof(spec, by), "GET", kResourceUrl);
  }

  absl::StatusOr<TokenPair> Issue(const token::PresentedProof& proof, int replica = 0,
                                  const std::string& subject = "alice") {
    IssueRequest request;
    request.subject = subject;
    request.client_id = "app";
    request.scope = "read write";
    request.proof = proof;
    return authority(replica).IssueTokens(request, admin);
  }
  absl::StatusOr<TokenPair> Refresh(const std::string& refresh_token,
                                    const token::PresentedProof& proof, int replica = 0,
                                    const std::string& client_id = "") {
    RefreshRequest request;
    request.refresh_token = refresh_token;
    request.proof = proof;
    request.client_id = client_id;
    return authority(replica).RefreshTokens(request, admin);
  }
  Introspection Introspect(const std::string& token, const token::PresentedProof& proof,
                           bool checked_by_caller = false, int replica = 0) {
    IntrospectRequest request{token, ""};
    request.proof = proof;
    request.binding_checked_by_caller = checked_by_caller;
    absl::StatusOr<Introspection> out = authority(replica).Introspect(request);
    INFO(out.status().ToString());
    REQUIRE(out.ok());
    return *std::move(out);
  }
  storage::FamilyRecord Family(const std::string& family_id) {
    return authority().GetFamily(family_id, admin).value();
  }
  size_t Sessions(const std::string& subject = "alice") {
    ListFamiliesRequest request;
    request.subject = subject;
    request.include_revoked = true;
    return authority().ListFamilies(request, admin).value().families.size();
  }

  Engine engine;
  ::ta::testing::TempDir dir;
  FakeClock clock;
  std::unique_ptr<::ta::testing::TestDatabase> db;
  std::vector<std::unique_ptr<storage::TokenStore>> stores;
  std::vector<std::unique_ptr<token::KeyRing>> rings;
  std::vector<std::unique_ptr<TokenAuthority>> authorities;
  Caller admin;
  std::unique_ptr<token::Key> key;  // the client's DPoP key
  std::string jkt;                  // its RFC 7638 thumbprint
};

template <typename T>
std::string ReasonOrOk(const absl::StatusOr<T>& r) {
  return r.ok() ? "ok" : ReasonOf(r.status());
}

}  // namespace ta::core

#endif  // TA_TESTS_CORE_BINDING_ENV_H_

// The core tests' authority: a TokenAuthority over a RocksDB store in a temp dir (wrapped in
// the test's own decorator `Store`, a ForwardingStore), a key-directory ring, a fake clock and
// an admin caller. Not thread-safe to build; the authority itself is.
#ifndef TA_TESTS_CORE_TEST_AUTHORITY_H_
#define TA_TESTS_CORE_TEST_AUTHORITY_H_

#include <memory>
#include <utility>

#include "base/clock.h"
#include "server/core/authority.h"
#include "server/token/key_ring.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "tests/support/temp_dir.h"

namespace ta::core {

template <typename Store>
struct TestAuthority {
  // Opens the store and the ring; the authority comes with Start.
  TestAuthority() {
    storage::RocksDbStoreOptions store_options;
    store_options.path = dir.Sub("db");
    store_options.clock = &clock;
    store_options.block_cache_bytes = 8 << 20;
    store = std::make_unique<Store>(storage::OpenRocksDbStore(store_options).value());
    token::KeyRingOptions key_options;
    key_options.key_dir = dir.Sub("keys");
    key_options.clock = &clock;
    keys = token::KeyRing::Open(key_options).value();
    admin.name = "ops";
    admin.roles = {Role::kAdmin};
  }

  // (Re)creates the authority over the same store and ring: `options` with this clock, and the
  // default audience "api" when it names none.
  void Start(AuthorityOptions options = {}) {
    options.clock = &clock;
    if (options.default_audience.empty()) options.default_audience = {"api"};
    authority.reset();
    authority = TokenAuthority::Create(options, store.get(), keys.get()).value();
  }

  ta::testing::TempDir dir;
  FakeClock clock;
  std::unique_ptr<Store> store;
  std::unique_ptr<token::KeyRing> keys;
  std::unique_ptr<TokenAuthority> authority;
  Caller admin;
};

}  // namespace ta::core

#endif  // TA_TESTS_CORE_TEST_AUTHORITY_H_

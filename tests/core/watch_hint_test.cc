// The WatchRevocations reset's size hint (issue 27 item 4): a new stream's reset carries the
// server's view's counts (jtis, families), what the watcher sizes its tables from; a resumed
// stream sends no reset.
#include <catch2/catch.hpp>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "server/core/authority.h"
#include "server/core/watch_hub.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "tests/support/temp_dir.h"

namespace ta::core {
namespace {

struct HintNode {
  HintNode() {
    storage::RocksDbStoreOptions store_options;
    store_options.path = dir.Sub("db");
    store_options.clock = &clock;
    store = storage::OpenRocksDbStore(store_options).value();
    token::KeyRingOptions key_options;
    key_options.key_dir = dir.Sub("keys");
    key_options.clock = &clock;
    keys = token::KeyRing::Open(key_options).value();
    options.default_audience = {"api"};
    options.clock = &clock;
    authority = TokenAuthority::Create(options, store.get(), keys.get()).value();
  }
  // The first event of a new stream (its reset), within 3 s.
  WatchEvent FirstEvent() {
    std::shared_ptr<WatchStream> stream = authority->watch_hub().Watch(std::nullopt, true).value();
    const absl::Time deadline = absl::Now() + absl::Seconds(3);
    WatchEvent event;
    absl::Status end;
    while (stream->Next(&event, &end) != WatchStream::Poll::kEvent && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(2));
    }
    return event;
  }
  ta::testing::TempDir dir;
  FakeClock clock;
  std::unique_ptr<storage::TokenStore> store;
  std::unique_ptr<token::KeyRing> keys;
  AuthorityOptions options;
  std::unique_ptr<TokenAuthority> authority;
};

TEST_CASE("WatchHub: a reset carries the view's counts as the snapshot's size hint",
          "[watch_hub]") {
  HintNode node;
  WatchEvent reset = node.FirstEvent();
  REQUIRE(reset.type == WatchEvent::Type::kReset);
  CHECK(reset.hint.jtis == 0);
  CHECK(reset.hint.families == 0);

  for (int i = 0; i < 37; ++i) {
    REQUIRE(node.store->DenyJti(absl::StrCat("jti-", i), node.clock.Now() + absl::Minutes(5)).ok());
  }
  reset = node.FirstEvent();
  REQUIRE(reset.type == WatchEvent::Type::kReset);
  CHECK(reset.hint.jtis == 37);
  CHECK(reset.hint.families == 0);

  // A restarted server (its view loaded from the store) says the same.
  node.authority.reset();
  node.authority = TokenAuthority::Create(node.options, node.store.get(), node.keys.get()).value();
  reset = node.FirstEvent();
  REQUIRE(reset.type == WatchEvent::Type::kReset);
  CHECK(reset.hint.jtis == 37);
}

}  // namespace
}  // namespace ta::core

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
#include "tests/core/test_authority.h"
#include "tests/support/forwarding_store.h"

namespace ta::core {
namespace {

// The first event of a new stream (its reset), within 3 s.
WatchEvent FirstEvent(TokenAuthority& authority) {
  std::shared_ptr<WatchStream> stream = authority.watch_hub().Watch(std::nullopt, true).value();
  const absl::Time deadline = absl::Now() + absl::Seconds(3);
  WatchEvent event;
  absl::Status end;
  while (stream->Next(&event, &end) != WatchStream::Poll::kEvent && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  return event;
}

TEST_CASE("WatchHub: a reset carries the view's counts as the snapshot's size hint",
          "[watch_hub]") {
  TestAuthority<ta::testing::ForwardingStore> node;
  node.Start();
  WatchEvent reset = FirstEvent(*node.authority);
  REQUIRE(reset.type == WatchEvent::Type::kReset);
  CHECK(reset.hint.jtis == 0);
  CHECK(reset.hint.families == 0);

  for (int i = 0; i < 37; ++i) {
    REQUIRE(node.store->DenyJti(absl::StrCat("jti-", i), node.clock.Now() + absl::Minutes(5)).ok());
  }
  reset = FirstEvent(*node.authority);
  REQUIRE(reset.type == WatchEvent::Type::kReset);
  CHECK(reset.hint.jtis == 37);
  CHECK(reset.hint.families == 0);

  // A restarted server (its view loaded from the store) says the same.
  node.Start();
  reset = FirstEvent(*node.authority);
  REQUIRE(reset.type == WatchEvent::Type::kReset);
  CHECK(reset.hint.jtis == 37);
}

}  // namespace
}  // namespace ta::core

// Storage conformance, the shared key ring (storage/token_store.h GetKeyRing and
// CompareAndSetKeyRing): versioned compare-and-set with exactly one winner among racing
// writers of one version, documents returned only when newer, kept across a restart. On every
// store kind (store_harness.h).
#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "tests/storage/store_harness.h"

namespace ta::storage {
namespace {

TEMPLATE_TEST_CASE("KeyRing store: versions, compare-and-set and a restart",
                   "[storage][keyring]", TA_EVERY_STORE) {
  std::unique_ptr<testing::StoreHarness> h = TestType::Make();
  absl::StatusOr<KeyRingBlob> empty = h->store().GetKeyRing(0);
  REQUIRE(empty.ok());
  CHECK(empty->version == 0);
  CHECK(empty->document.empty());

  REQUIRE(h->store().CompareAndSetKeyRing(0, "ring one").ok());
  absl::Status again = h->store().CompareAndSetKeyRing(0, "ring two");
  CHECK(again.code() == absl::StatusCode::kAborted);
  CHECK(ReasonOf(again) == "key_ring_conflict");
  absl::Status ahead = h->store().CompareAndSetKeyRing(5, "ring two");
  CHECK(ReasonOf(ahead) == "key_ring_conflict");

  absl::StatusOr<KeyRingBlob> one = h->store().GetKeyRing(0);
  REQUIRE(one.ok());
  CHECK(one->version == 1);
  CHECK(one->document == "ring one");
  absl::StatusOr<KeyRingBlob> same = h->store().GetKeyRing(1);
  REQUIRE(same.ok());
  CHECK(same->version == 1);
  CHECK(same->document.empty());  // not newer: nothing sent

  // Binary-safe, and the version only moves forward.
  const std::string binary = std::string("\0\xff{\"x\"}\n", 8);
  REQUIRE(h->store().CompareAndSetKeyRing(1, binary).ok());
  h->Reopen();
  absl::StatusOr<KeyRingBlob> two = h->store().GetKeyRing(1);
  REQUIRE(two.ok());
  CHECK(two->version == 2);
  CHECK(two->document == binary);

  CHECK(h->store().CompareAndSetKeyRing(2, "").code() == absl::StatusCode::kInvalidArgument);
  CHECK(h->store().CompareAndSetKeyRing(2, std::string(kMaxKeyRingBytes + 1, 'x')).code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(h->store().GetKeyRing(0)->version == 2);
}

TEMPLATE_TEST_CASE("KeyRing store: racing writers of one version, exactly one wins",
                   "[storage][keyring][concurrency]", TA_EVERY_STORE) {
  std::unique_ptr<testing::StoreHarness> h = TestType::Make();
  constexpr int kWriters = 8;
  constexpr int kRounds = 100;
  for (int round = 0; round < kRounds; ++round) {
    const uint64_t expected = static_cast<uint64_t>(round);
    std::atomic<int> won{0}, lost{0}, failed{0};
    std::atomic<int> winner{-1};
    std::vector<std::thread> threads;
    for (int w = 0; w < kWriters; ++w) {
      threads.emplace_back([&, w] {
        absl::Status s = h->store().CompareAndSetKeyRing(expected, absl::StrCat("writer ", w));
        if (s.ok()) {
          ++won;
          winner = w;
        } else if (ReasonOf(s) == "key_ring_conflict") {
          ++lost;
        } else {
          ++failed;
        }
      });
    }
    for (std::thread& t : threads) t.join();
    INFO("round " << round);
    REQUIRE(won.load() == 1);
    REQUIRE(lost.load() == kWriters - 1);
    absl::StatusOr<KeyRingBlob> blob = h->store().GetKeyRing(expected);
    REQUIRE(blob.ok());
    CHECK(blob->version == expected + 1);
    CHECK(blob->document == absl::StrCat("writer ", winner.load()));
  }
}

}  // namespace
}  // namespace ta::storage

// VerifyCache: exact-match hits, expiry, and the capacity bound.
#include "server/core/verify_cache.h"

#include <catch2/catch.hpp>

namespace ta::core {
namespace {

std::shared_ptr<const token::VerifiedJwt> Verified(const std::string& kid) {
  auto v = std::make_shared<token::VerifiedJwt>();
  v->kid = kid;
  return v;
}

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

TEST_CASE("VerifyCache: a hit needs the exact token and ends at `until`", "[core]") {
  VerifyCache cache(100);
  cache.Insert("a.b.c", Verified("k1"), kNow + absl::Seconds(10), kNow);
  REQUIRE(cache.Find("a.b.c", kNow) != nullptr);
  CHECK(cache.Find("a.b.c", kNow)->kid == "k1");
  CHECK(cache.Find("a.b.cX", kNow) == nullptr);
  CHECK(cache.Find("a.b.c", kNow + absl::Seconds(9)) != nullptr);
  CHECK(cache.Find("a.b.c", kNow + absl::Seconds(10)) == nullptr);
  CHECK(cache.Find("a.b.c", kNow) == nullptr);  // the expired entry was dropped
}

TEST_CASE("VerifyCache: stays within its capacity", "[core]") {
  VerifyCache cache(32);  // two entries per shard
  for (int i = 0; i < 1000; ++i) {
    cache.Insert("token-" + std::to_string(i), Verified("k"), kNow + absl::Hours(1), kNow);
  }
  int present = 0;
  for (int i = 0; i < 1000; ++i) present += cache.Find("token-" + std::to_string(i), kNow) != nullptr;
  CHECK(present <= 32);
  CHECK(present > 0);
}

TEST_CASE("VerifyCache: capacity 0 disables it; past entries are not stored", "[core]") {
  VerifyCache off(0);
  off.Insert("t", Verified("k"), kNow + absl::Hours(1), kNow);
  CHECK(off.Find("t", kNow) == nullptr);
  VerifyCache on(10);
  on.Insert("t", Verified("k"), kNow, kNow);
  CHECK(on.Find("t", kNow) == nullptr);
}

}  // namespace
}  // namespace ta::core

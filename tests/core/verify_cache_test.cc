// VerifyCache: exact-match hits, expiry, and the bound on the bytes it holds.
#include "server/core/verify_cache.h"

#include <catch2/catch.hpp>

namespace ta::core {
namespace {

std::shared_ptr<const token::VerifiedJwt> Verified(const std::string& kid,
                                                   size_t claims_bytes = 100) {
  auto v = std::make_shared<token::VerifiedJwt>();
  v->kid = kid;
  v->claims_json = std::string(claims_bytes, 'x');
  return v;
}

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

TEST_CASE("VerifyCache: a hit needs the exact token and ends at `until`", "[core]") {
  VerifyCache cache(1 << 20);
  cache.Insert("a.b.c", Verified("k1"), kNow + absl::Seconds(10), kNow);
  REQUIRE(cache.Find("a.b.c", kNow) != nullptr);
  CHECK(cache.Find("a.b.c", kNow)->kid == "k1");
  CHECK(cache.Find("a.b.cX", kNow) == nullptr);
  CHECK(cache.Find("a.b.c", kNow + absl::Seconds(9)) != nullptr);
  CHECK(cache.Find("a.b.c", kNow + absl::Seconds(10)) == nullptr);
  CHECK(cache.Find("a.b.c", kNow) == nullptr);  // the expired entry was dropped
}

TEST_CASE("VerifyCache: stays within its bytes however large the tokens (issue 12)", "[core]") {
  // Bounded by entries, 100k cached tokens with ~16 KiB of claims each held ~2 GiB.
  constexpr size_t kCapacity = 1 << 20;
  for (size_t claims_bytes : {100, 2'000, 16'000}) {
    VerifyCache cache(kCapacity);
    const std::string padding(1'000, 't');
    for (int i = 0; i < 2'000; ++i) {
      cache.Insert(padding + std::to_string(i), Verified("k", claims_bytes),
                   kNow + absl::Hours(1), kNow);
      REQUIRE(cache.bytes() <= kCapacity);
    }
    size_t present = 0;
    for (int i = 0; i < 2'000; ++i) present += cache.Find(padding + std::to_string(i), kNow) != nullptr;
    const size_t charge = padding.size() + 4 + VerifyCache::ChargeOf(*Verified("k", claims_bytes)) +
                          ShardedCache<token::VerifiedJwt>::kEntryOverhead;
    INFO("claims " << claims_bytes << " present " << present);
    CHECK(present > 0);
    CHECK(present * charge <= kCapacity + 16 * charge);  // +1 entry of rounding per shard
    CHECK(present * charge >= kCapacity / 16);           // and it does keep a useful amount
  }
}

TEST_CASE("VerifyCache: an entry larger than a shard's share is not kept", "[core]") {
  VerifyCache cache(64 << 10);  // 4 KiB per shard
  cache.Insert("big", Verified("k", 10'000), kNow + absl::Hours(1), kNow);
  CHECK(cache.Find("big", kNow) == nullptr);
  CHECK(cache.bytes() == 0);
  cache.Insert("small", Verified("k", 100), kNow + absl::Hours(1), kNow);
  CHECK(cache.Find("small", kNow) != nullptr);
}

TEST_CASE("VerifyCache: capacity 0 disables it, past entries are not stored", "[core]") {
  VerifyCache off(0);
  off.Insert("t", Verified("k"), kNow + absl::Hours(1), kNow);
  CHECK(off.Find("t", kNow) == nullptr);
  VerifyCache on(1 << 20);
  on.Insert("t", Verified("k"), kNow, kNow);
  CHECK(on.Find("t", kNow) == nullptr);
}

}  // namespace
}  // namespace ta::core

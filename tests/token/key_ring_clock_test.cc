// Signing times of a rotated-in key on a shared ring (issue 22, suspected): a replica whose
// clock runs behind the store's set sign_from early, so its key could sign before verifiers'
// cached JWKS held it. The ring now starts signing from the later of its clock and the
// store's (SharedKeyStore::ClockNow), plus the publish delay.
#include <catch2/catch.hpp>
#include <string>

#include "absl/synchronization/mutex.h"
#include "server/token/key_ring.h"
#include "server/token/seal.h"

namespace ta::token {
namespace {

// An in-memory ring store with a clock of its own (the database's).
class ClockedKeyStore final : public SharedKeyStore {
 public:
  explicit ClockedKeyStore(const Clock* clock) : clock_(clock) {}
  absl::StatusOr<Versioned> Load(uint64_t if_newer_than) override {
    absl::MutexLock lock(&mu_);
    return Versioned{version_, version_ > if_newer_than ? document_ : std::string()};
  }
  absl::Status CompareAndSet(uint64_t expected, const std::string& document) override {
    absl::MutexLock lock(&mu_);
    if (expected != version_) return absl::AbortedError("key_ring_conflict");
    version_ = expected + 1;
    document_ = document;
    return absl::OkStatus();
  }
  absl::StatusOr<absl::Time> ClockNow() override {
    if (clock_code != absl::StatusCode::kOk) return absl::Status(clock_code, "clock (test)");
    return clock_->Now();
  }
  // When not kOk, reading the clock fails with it.
  absl::StatusCode clock_code = absl::StatusCode::kOk;
  uint64_t version() {
    absl::MutexLock lock(&mu_);
    return version_;
  }

 private:
  const Clock* const clock_;
  absl::Mutex mu_;
  uint64_t version_ = 0;
  std::string document_;
};

// The sign_from of key `kid` in `ring`.
absl::Time SignFrom(const KeyRing& ring, const std::string& kid) {
  for (const KeyInfo& k : ring.Keys()) {
    if (k.kid == kid) return k.sign_from;
  }
  FAIL("no key " << kid);
  return absl::InfinitePast();
}

TEST_CASE("Shared KeyRing: a replica whose clock runs behind the database's sets sign_from by "
          "the database's clock",
          "[token][shared]") {
  FakeClock database;
  FakeClock behind(database.Now() - absl::Minutes(2));  // this replica: 2 min slow
  ClockedKeyStore store(&database);
  KeyRingOptions o;
  o.clock = &behind;
  o.publish_delay = absl::Minutes(5);
  o.retired_verify_window = absl::Hours(1);
  auto ring = KeyRing::OpenShared(o, &store, KeyEncryptionKey::FromBytes(
                                                 std::string(kKekBytes, 'k')).value());
  REQUIRE(ring.ok());
  absl::StatusOr<std::string> kid = (*ring)->Rotate();
  REQUIRE(kid.ok());
  // Published now; signs only once the publish delay has passed by the database's clock (by
  // this replica's clock it would have been 2 min early).
  CHECK(SignFrom(**ring, *kid) == database.Now() + absl::Minutes(5));
}

TEST_CASE("Shared KeyRing: a replica whose clock runs ahead keeps its own later signing time",
          "[token][shared]") {
  FakeClock database;
  FakeClock ahead(database.Now() + absl::Minutes(2));
  ClockedKeyStore store(&database);
  KeyRingOptions o;
  o.clock = &ahead;
  o.publish_delay = absl::Minutes(5);
  o.retired_verify_window = absl::Hours(1);
  auto ring = KeyRing::OpenShared(o, &store, KeyEncryptionKey::FromBytes(
                                                 std::string(kKekBytes, 'k')).value());
  REQUIRE(ring.ok());
  absl::StatusOr<std::string> kid = (*ring)->Rotate();
  REQUIRE(kid.ok());
  CHECK(SignFrom(**ring, *kid) == ahead.Now() + absl::Minutes(5));
}

// The key store's clock had a default answering UNIMPLEMENTED, on which a rotation went ahead
// by the replica's clock alone: a store wrapper that forgot to forward ClockNow brought the
// early sign_from back unseen. Every key store has a clock now; a rotation that cannot read it
// fails and changes nothing.
TEST_CASE("Shared KeyRing: a rotation that cannot read the store's clock fails and changes "
          "nothing",
          "[token][shared]") {
  FakeClock database;
  FakeClock behind(database.Now() - absl::Minutes(2));
  ClockedKeyStore store(&database);
  KeyRingOptions o;
  o.clock = &behind;
  o.publish_delay = absl::Minutes(5);
  o.retired_verify_window = absl::Hours(1);
  auto ring = KeyRing::OpenShared(o, &store, KeyEncryptionKey::FromBytes(
                                                 std::string(kKekBytes, 'k')).value());
  REQUIRE(ring.ok());
  const uint64_t version = store.version();
  const std::string jwks = (*ring)->JwksJson();
  for (absl::StatusCode code : {absl::StatusCode::kUnimplemented, absl::StatusCode::kUnavailable}) {
    store.clock_code = code;
    absl::StatusOr<std::string> kid = (*ring)->Rotate();
    CHECK(kid.status().code() == code);
    CHECK(store.version() == version);
    CHECK((*ring)->JwksJson() == jwks);
  }
}

}  // namespace
}  // namespace ta::token

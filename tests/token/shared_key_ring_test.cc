// The shared key ring (KeyRing::OpenShared): replicas keep one ring in their store, sealed under
// a key-encryption key; rotation is a compare-and-set with one winner; a rotated-in key is
// published at once and signs after the publish delay. The store here is an in-memory
// SharedKeyStore with the contract of storage/token_store.h; both real stores' compare-and-set
// is in the storage conformance suite.
#include <atomic>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "base/error.h"
#include "server/token/key_ring.h"
#include "server/token/key_store.h"
#include "server/token/seal.h"
#include "tests/token/test_util.h"
#include "token/base64url.h"
#include "token/crypto.h"
#include "token/jws.h"
#include "token/key.h"

namespace ta::token {
namespace {

using testing::MakeClaims;
using testing::MakePolicy;
using testing::ReasonOfVerify;
using testing::TempDir;

// An in-memory ring store; its clock (the database's) is the one it is given.
class MemoryKeyStore final : public SharedKeyStore {
 public:
  explicit MemoryKeyStore(const Clock* clock) : clock_(clock) {}
  absl::StatusOr<Versioned> Load(uint64_t if_newer_than) override {
    absl::MutexLock lock(&mu_);
    if (down) return absl::UnavailableError("store down");
    ++loads;
    return Versioned{version_, version_ > if_newer_than ? document_ : std::string()};
  }
  absl::Status CompareAndSet(uint64_t expected, const std::string& document) override {
    absl::MutexLock lock(&mu_);
    if (down) return absl::UnavailableError("store down");
    if (expected != version_) return absl::AbortedError("key_ring_conflict");
    version_ = expected + 1;
    document_ = document;
    return absl::OkStatus();
  }
  absl::StatusOr<absl::Time> ClockNow() override {
    absl::MutexLock lock(&mu_);
    if (down) return absl::UnavailableError("store down");
    return clock_->Now();
  }
  std::string document() {
    absl::MutexLock lock(&mu_);
    return document_;
  }
  void set_document(std::string d) {
    absl::MutexLock lock(&mu_);
    document_ = std::move(d);
    ++version_;
  }
  uint64_t version() {
    absl::MutexLock lock(&mu_);
    return version_;
  }
  bool down = false;
  int loads = 0;

 private:
  const Clock* const clock_;
  absl::Mutex mu_;
  uint64_t version_ = 0;
  std::string document_;
};

KeyEncryptionKey Kek(char fill = 'k') {
  return KeyEncryptionKey::FromBytes(std::string(kKekBytes, fill)).value();
}

KeyRingOptions Options(const Clock* clock, absl::Duration publish_delay = absl::ZeroDuration()) {
  KeyRingOptions o;
  o.clock = clock;
  o.publish_delay = publish_delay;
  o.retired_verify_window = absl::Hours(1);
  return o;
}

std::unique_ptr<KeyRing> OpenShared(MemoryKeyStore* store, const Clock* clock,
                                    absl::Duration publish_delay = absl::ZeroDuration()) {
  auto ring = KeyRing::OpenShared(Options(clock, publish_delay), store, Kek());
  INFO(ring.status().ToString());
  REQUIRE(ring.ok());
  return *std::move(ring);
}

// A ring as the release before issue 22 stored it (format 1): the document in the clear, only
// the private keys and the refresh secret sealed. keys[0] is active; the others retire in 1 h.
std::string FormatOneRing(const KeyEncryptionKey& kek, const std::vector<const Key*>& keys,
                          const std::string& refresh_secret) {
  internal::SharedRingDocument doc;
  doc.kek_id = kek.Fingerprint();
  doc.sealed_refresh_secret = Base64UrlEncode(kek.Seal(refresh_secret, "ta-keyring/v1/refresh"));
  for (const Key* key : keys) {
    internal::ManifestEntry e;
    e.file = key->kid() + ".pem";
    e.alg = key->alg();
    e.created_at = absl::FromUnixSeconds(1'700'000'000);
    e.active = doc.entries.empty();
    if (!e.active) e.retire_at = absl::FromUnixSeconds(1'700'000'000) + absl::Hours(1);
    e.sealed = Base64UrlEncode(
        kek.Seal(key->PrivateFileContents().value(), "ta-keyring/v1/key/" + e.file));
    doc.entries.push_back(std::move(e));
  }
  return internal::SerializeSharedRing(doc);
}

std::string KidOf(const std::string& token) {
  CompactJws jws = SplitCompactJws(token).value();
  return ParseJwsHeader(jws.header_b64).value().kid;
}

std::string SignNow(const KeyRing& ring, const FakeClock& clock) {
  absl::StatusOr<std::string> token = ring.Sign(MakeClaims(clock.Now()), "at+jwt");
  REQUIRE(token.ok());
  return *token;
}

TEST_CASE("Shared KeyRing: replicas on one store share keys and the refresh secret",
          "[token][shared]") {
  FakeClock clock;
  MemoryKeyStore store(&clock);
  auto a = OpenShared(&store, &clock);
  auto b = OpenShared(&store, &clock);
  CHECK(store.version() == 1);  // created once; b read it
  CHECK(a->Keys().size() == 1);
  CHECK(a->Keys()[0].kid == b->Keys()[0].kid);
  CHECK(a->DeriveRefreshSecret("ctx") == b->DeriveRefreshSecret("ctx"));
  CHECK(a->JwksJson() == b->JwksJson());
  CHECK(ReasonOfVerify(*b, SignNow(*a, clock)) == "ok");

  // Sealed: neither the private key nor the refresh secret is in the stored document.
  const std::string doc = store.document();
  CHECK_FALSE(absl::StrContains(doc, "PRIVATE KEY"));
  CHECK_FALSE(absl::StrContains(doc, "BEGIN"));
  CHECK(absl::StrContains(doc, Kek().Fingerprint()));
}

TEST_CASE("Shared KeyRing: a rotation on one replica reaches the other through Reload",
          "[token][shared]") {
  FakeClock clock;
  MemoryKeyStore store(&clock);
  auto a = OpenShared(&store, &clock);
  auto b = OpenShared(&store, &clock);
  const std::string old_token = SignNow(*a, clock);
  absl::StatusOr<std::string> kid = a->Rotate(Algorithm::kEdDSA);
  REQUIRE(kid.ok());
  CHECK(KidOf(SignNow(*a, clock)) == *kid);
  CHECK(KidOf(SignNow(*b, clock)) != *kid);  // b has not looked yet
  CHECK(ReasonOfVerify(*b, SignNow(*a, clock)) == "unknown_kid");

  absl::StatusOr<bool> changed = b->Reload();
  REQUIRE(changed.ok());
  CHECK(*changed);
  CHECK_FALSE(b->Reload().value());  // nothing new: one version read, no document
  CHECK(KidOf(SignNow(*b, clock)) == *kid);
  CHECK(ReasonOfVerify(*b, old_token) == "ok");  // the old key verifies until retired
  CHECK(ReasonOfVerify(*a, SignNow(*b, clock)) == "ok");
  CHECK(a->DeriveRefreshSecret("x") == b->DeriveRefreshSecret("x"));

  clock.Advance(absl::Hours(1) + absl::Seconds(1));
  CHECK(ReasonOfVerify(*b, old_token) == "unknown_kid");
}

TEST_CASE("Shared KeyRing: concurrent rotations on several replicas have exactly one winner",
          "[token][shared][concurrency]") {
  FakeClock clock;
  MemoryKeyStore store(&clock);
  constexpr int kReplicas = 6;
  std::vector<std::unique_ptr<KeyRing>> rings;
  for (int i = 0; i < kReplicas; ++i) rings.push_back(OpenShared(&store, &clock));
  for (int round = 0; round < 40; ++round) {
    for (auto& ring : rings) REQUIRE(ring->Reload().ok());
    const uint64_t before = store.version();
    std::atomic<int> won{0}, conflicts{0}, other{0};
    absl::Mutex kids_mu;
    std::vector<std::string> kids;
    std::vector<std::thread> threads;
    for (auto& ring : rings) {
      threads.emplace_back([&, r = ring.get()] {
        absl::StatusOr<std::string> kid = r->Rotate();
        if (kid.ok()) {
          ++won;
          absl::MutexLock lock(&kids_mu);
          kids.push_back(*kid);
        } else if (ReasonOf(kid.status()) == "key_rotation_conflict") {
          ++conflicts;
        } else {
          ++other;
        }
      });
    }
    for (auto& t : threads) t.join();
    INFO("round " << round);
    // At least one wins; a replica that read the ring after the winner wrote rotates again,
    // on top of it (a later rotation, not a lost one): every success is one version.
    CHECK(won.load() >= 1);
    CHECK(other.load() == 0);
    CHECK(won.load() + conflicts.load() == kReplicas);
    CHECK(store.version() == before + static_cast<uint64_t>(won.load()));
    // Whoever won, every replica converges on one ring.
    for (auto& ring : rings) REQUIRE(ring->Reload().ok());
    for (auto& ring : rings) CHECK(ring->JwksJson() == rings[0]->JwksJson());
    // No rotation that was acknowledged is lost: every winner's key is in the ring.
    for (const std::string& kid : kids) CHECK(absl::StrContains(rings[0]->JwksJson(), kid));
    clock.Advance(absl::Seconds(1));
  }
}

TEST_CASE("Shared KeyRing: a rotated-in key is published at once and signs after the delay",
          "[token][shared]") {
  FakeClock clock;
  MemoryKeyStore store(&clock);
  const absl::Duration delay = absl::Seconds(61);
  auto a = OpenShared(&store, &clock, delay);
  auto b = OpenShared(&store, &clock, delay);
  const std::string old_kid = a->Keys()[0].kid;
  absl::StatusOr<std::string> kid = a->Rotate();
  REQUIRE(kid.ok());
  REQUIRE(b->Reload().ok());
  for (KeyRing* ring : {a.get(), b.get()}) {
    CHECK(absl::StrContains(ring->JwksJson(), *kid));      // published
    CHECK(absl::StrContains(ring->JwksJson(), old_kid));
    CHECK(KidOf(SignNow(*ring, clock)) == old_kid);       // still signing with the old key
    for (const KeyInfo& k : ring->Keys()) {
      if (k.kid == *kid) {
        CHECK_FALSE(k.active);
        CHECK(k.sign_from == clock.Now() + delay);
      } else {
        CHECK(k.active);
        CHECK(k.retire_at == clock.Now() + delay + absl::Hours(1));
      }
    }
  }
  clock.Advance(delay - absl::Seconds(1));
  CHECK(KidOf(SignNow(*b, clock)) == old_kid);
  clock.Advance(absl::Seconds(1));
  CHECK(KidOf(SignNow(*a, clock)) == *kid);
  CHECK(KidOf(SignNow(*b, clock)) == *kid);

  // Two rotations inside one delay: each key signs in its turn, none early.
  absl::StatusOr<std::string> k2 = a->Rotate();
  clock.Advance(absl::Seconds(10));
  absl::StatusOr<std::string> k3 = a->Rotate();
  REQUIRE(k2.ok());
  REQUIRE(k3.ok());
  CHECK(KidOf(SignNow(*a, clock)) == *kid);
  clock.Advance(delay - absl::Seconds(10));
  CHECK(KidOf(SignNow(*a, clock)) == *k2);
  clock.Advance(absl::Seconds(10));
  CHECK(KidOf(SignNow(*a, clock)) == *k3);
}

TEST_CASE("Shared KeyRing: another KEK, a tampered document and a down store are refused",
          "[token][shared]") {
  FakeClock clock;
  MemoryKeyStore store(&clock);
  auto a = OpenShared(&store, &clock);

  auto wrong = KeyRing::OpenShared(Options(&clock), &store, Kek('x'));
  REQUIRE_FALSE(wrong.ok());
  CHECK(ReasonOf(wrong.status()) == "kek_mismatch");
  CHECK(absl::StrContains(wrong.status().message(), Kek('x').Fingerprint()));

  // The sealed ring changed by one character no longer opens: the ring is not adopted.
  std::string doc = store.document();
  size_t at = doc.find("\"ring\":\"") + 20;
  REQUIRE(at < doc.size());
  doc[at] = doc[at] == 'A' ? 'B' : 'A';
  store.set_document(doc);
  absl::StatusOr<bool> reload = a->Reload();
  REQUIRE_FALSE(reload.ok());
  CHECK(ReasonOf(reload.status()) == "store_corrupt");
  CHECK(ReasonOfVerify(*a, SignNow(*a, clock)) == "ok");  // still serving the ring it had

  // In a format-1 ring, a key moved into another key's slot does not open either (the AAD
  // names the slot).
  MemoryKeyStore store2(&clock);
  auto k1 = Key::Generate(Algorithm::kES256).value();
  auto k2 = Key::Generate(Algorithm::kES256).value();
  std::string two = FormatOneRing(Kek(), {k1.get(), k2.get()}, std::string(32, 's'));
  auto first = two.find("\"sealed\":\"");
  auto second = two.find("\"sealed\":\"", first + 1);
  auto end1 = two.find('"', first + 10), end2 = two.find('"', second + 10);
  std::string s1 = two.substr(first + 10, end1 - first - 10);
  std::string s2 = two.substr(second + 10, end2 - second - 10);
  std::string swapped = two.substr(0, first + 10) + s2 + two.substr(end1, second + 10 - end1) +
                        s1 + two.substr(end2);
  store2.set_document(swapped);
  auto moved = KeyRing::OpenShared(Options(&clock), &store2, Kek());
  REQUIRE_FALSE(moved.ok());
  CHECK(ReasonOf(moved.status()) == "store_corrupt");

  store.down = true;
  CHECK_FALSE(a->Reload().ok());
  absl::StatusOr<std::string> rotated = a->Rotate();
  CHECK_FALSE(rotated.ok());
  CHECK(KidOf(SignNow(*a, clock)) == a->Keys()[0].kid);
  auto none = KeyRing::OpenShared(Options(&clock), &store, Kek());
  CHECK_FALSE(none.ok());
}

// Issue 22 (suspected, held): only the key bytes were authenticated; the ring's metadata
// (alg, signs-from, retire time), which keys it holds and its version were plain JSON a
// database writer could change.
TEST_CASE("Shared KeyRing: the whole stored ring is sealed: a stretched retire time is refused",
          "[token][shared]") {
  FakeClock clock;
  MemoryKeyStore store(&clock);
  auto a = OpenShared(&store, &clock);
  const std::string old_token = SignNow(*a, clock);
  REQUIRE(a->Rotate().ok());
  clock.Advance(absl::Hours(2));  // the first key's window (1 h) has passed
  REQUIRE(ReasonOfVerify(*a, old_token) == "unknown_kid");

  // What a writer without the KEK can do: change the stored bytes. Where a retire time is in
  // the clear it is pushed into the future; otherwise the sealed ring is changed.
  std::string doc = store.document();
  const size_t retire = doc.find("\"retire_at\":");
  if (retire != std::string::npos) {
    doc.replace(retire + 12, doc.find_first_not_of("0123456789", retire + 12) - retire - 12,
                "4102444800");  // 2100-01-01
  } else {
    const size_t at = doc.find("\"ring\":\"") + 30;
    REQUIRE(at < doc.size());
    doc[at] = doc[at] == 'A' ? 'B' : 'A';
  }
  store.set_document(doc);
  absl::StatusOr<bool> reload = a->Reload();
  CHECK_FALSE(reload.ok());
  CHECK(ReasonOfVerify(*a, old_token) == "unknown_kid");
  auto fresh = KeyRing::OpenShared(Options(&clock), &store, Kek());
  CHECK_FALSE(fresh.ok());
  if (fresh.ok()) CHECK(ReasonOfVerify(**fresh, old_token) == "unknown_kid");
}

TEST_CASE("Shared KeyRing: an older ring written back is refused (its generation went down)",
          "[token][shared]") {
  FakeClock clock;
  MemoryKeyStore store(&clock);
  auto a = OpenShared(&store, &clock);
  const std::string before = store.document();
  absl::StatusOr<std::string> kid = a->Rotate();
  REQUIRE(kid.ok());
  store.set_document(before);  // the store's version moves on; the ring is the old one
  absl::StatusOr<bool> reload = a->Reload();
  REQUIRE_FALSE(reload.ok());
  CHECK(ReasonOf(reload.status()) == "key_ring_rollback");
  CHECK(KidOf(SignNow(*a, clock)) == *kid);           // still the newer ring
  absl::StatusOr<std::string> rotated = a->Rotate();  // not built on the old ring either
  REQUIRE_FALSE(rotated.ok());
  CHECK(ReasonOf(rotated.status()) == "key_ring_rollback");
}

TEST_CASE(
    "Shared KeyRing: a format-1 ring still loads, becomes format 2 at the next rotation, "
    "and cannot come back",
    "[token][shared]") {
  FakeClock clock;
  MemoryKeyStore store(&clock);
  clock.Set(absl::FromUnixSeconds(1'700'000'100));
  auto key = Key::Generate(Algorithm::kES256).value();
  const std::string secret(32, 'r');
  const std::string legacy = FormatOneRing(Kek(), {key.get()}, secret);
  store.set_document(legacy);
  auto a = OpenShared(&store, &clock);
  REQUIRE(a->Keys().size() == 1);
  CHECK(a->Keys()[0].kid == key->kid());
  CHECK(a->DeriveRefreshSecret("ctx") == HmacSha256(secret, "ctx"));
  CHECK(store.document() == legacy);  // loading writes nothing

  REQUIRE(a->Rotate().ok());
  const std::string migrated = store.document();
  CHECK(absl::StrContains(migrated, "\"version\":2"));
  CHECK_FALSE(absl::StrContains(migrated, "retire_at"));
  CHECK_FALSE(absl::StrContains(migrated, key->kid()));
  auto b = OpenShared(&store, &clock);
  CHECK(b->JwksJson() == a->JwksJson());
  CHECK(b->DeriveRefreshSecret("ctx") == HmacSha256(secret, "ctx"));

  store.set_document(legacy);  // a downgrade to the unauthenticated format
  absl::StatusOr<bool> reload = b->Reload();
  REQUIRE_FALSE(reload.ok());
  CHECK(ReasonOf(reload.status()) == "key_ring_rollback");
}

TEST_CASE("Shared KeyRing: the first replica adopts a key directory's keys and secret",
          "[token][shared]") {
  TempDir tmp;
  FakeClock clock;
  KeyRingOptions dir_options = Options(&clock);
  dir_options.key_dir = tmp.Sub("keys");
  auto local = KeyRing::Open(dir_options);
  REQUIRE(local.ok());
  REQUIRE((*local)->Rotate(Algorithm::kEdDSA).ok());  // two keys: one active, one retiring
  const std::string token = SignNow(**local, clock);

  MemoryKeyStore store(&clock);
  auto shared = KeyRing::OpenShared(dir_options, &store, Kek());
  REQUIRE(shared.ok());
  CHECK((*shared)->Keys().size() == 2);
  CHECK((*shared)->JwksJson() == (*local)->JwksJson());
  CHECK((*shared)->DeriveRefreshSecret("family") == (*local)->DeriveRefreshSecret("family"));
  CHECK(ReasonOfVerify(**shared, token) == "ok");
  CHECK(KidOf(SignNow(**shared, clock)) == KidOf(token));

  // Once the store holds a ring, the directory is not read again.
  auto other = KeyRing::OpenShared(Options(&clock), &store, Kek());
  REQUIRE(other.ok());
  CHECK((*other)->JwksJson() == (*local)->JwksJson());
}

TEST_CASE("KeyRing: a key directory honours the publish delay across a restart", "[token]") {
  TempDir tmp;
  FakeClock clock;
  KeyRingOptions o = Options(&clock, absl::Seconds(30));
  o.key_dir = tmp.Sub("keys");
  auto ring = KeyRing::Open(o);
  REQUIRE(ring.ok());
  const std::string old_kid = (*ring)->Keys()[0].kid;
  absl::StatusOr<std::string> kid = (*ring)->Rotate();
  REQUIRE(kid.ok());
  CHECK(KidOf(SignNow(**ring, clock)) == old_kid);
  ring->reset();
  auto reopened = KeyRing::Open(o);
  REQUIRE(reopened.ok());
  CHECK(absl::StrContains((*reopened)->JwksJson(), *kid));
  CHECK(KidOf(SignNow(**reopened, clock)) == old_kid);
  clock.Advance(absl::Seconds(30));
  CHECK(KidOf(SignNow(**reopened, clock)) == *kid);
}

}  // namespace
}  // namespace ta::token

// RevocationView's compact entries (issue 27 item 1): fixed-size keys and values in flat tables.
// The answers are the same as a plain map of id strings (a property test against a reference
// model over random Apply/Check/clock sequences), a live entry costs ≤ 64 bytes, and the keyed
// hash is SipHash-2-4 (reference vectors).
#include <catch2/catch.hpp>

#include <array>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "token/revocation_view.h"

namespace ta::token {
namespace {

using Kind = RevocationEntry::Kind;

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

RevocationEntry Entry(uint64_t seq, Kind kind, std::string id, absl::Time until,
                               absl::Time revoked_at) {
  RevocationEntry e;
  e.seq = seq;
  e.kind = kind;
  e.id = std::move(id);
  e.revoked_at = revoked_at;
  e.live_until = until;
  return e;
}

std::string RandomBytes16(std::mt19937_64& rng) {
  std::string out(16, '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

TEST_CASE("RevocationView: the jti key is SipHash-2-4 as in the reference vectors",
          "[core][view]") {
  using revocation_view_internal::SipHash128;
  using revocation_view_internal::SipHash64;
  const std::array<uint64_t, 2> key = {0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
  std::string message;
  for (int i = 0; i < 64; ++i) message.push_back(static_cast<char>(i));
  auto prefix = [&](size_t n) { return absl::string_view(message).substr(0, n); };
  // SipHash-2-4-64: the reference vectors for messages 00..(n-1), n = 0, 7, 8, 15, 63.
  CHECK(SipHash64(key, prefix(0)) == 0x726fdb47dd0e0e31ULL);
  CHECK(SipHash64(key, prefix(7)) == 0xab0200f58b01d137ULL);
  CHECK(SipHash64(key, prefix(8)) == 0x93f5f5799a932462ULL);
  CHECK(SipHash64(key, prefix(15)) == 0xa129ca6149be45e5ULL);
  CHECK(SipHash64(key, prefix(63)) == 0x958a324ceb064572ULL);
  // SipHash-2-4-128, n = 0, 1, 2 (the 16 tag bytes read as two little-endian words).
  CHECK(SipHash128(key, prefix(0)) ==
        std::array<uint64_t, 2>{0xe6a825ba047f81a3ULL, 0x930255c71472f66dULL});
  CHECK(SipHash128(key, prefix(1)) ==
        std::array<uint64_t, 2>{0x44af996bd8c187daULL, 0x45fc229b11597634ULL});
  CHECK(SipHash128(key, prefix(2)) ==
        std::array<uint64_t, 2>{0xc75da4a48d227781ULL, 0xe4ff0af6de8ba3fcULL});
}

// The reference: the view's contract with strings and absl::Time, no hashing, no sweep.
class ReferenceView {
 public:
  void Apply(const RevocationEntry& e, absl::Time clock_now) {
    auto& map = e.kind == Kind::kJti ? jtis_ : families_;
    auto [it, inserted] = map.try_emplace(e.id, Model{e.live_until, e.kind, false});
    if (inserted) return;
    // An entry already dead by the clock may have been swept (or not): the first kind or the
    // new one may be the one kept. Either reason is a right answer; active is not.
    if (it->second.live_until <= clock_now && it->second.kind != e.kind) it->second.either = true;
    it->second.live_until = std::max(it->second.live_until, e.live_until);
  }
  // Whether `got` is a right answer for (jti, family) at `now`.
  bool Accepts(absl::string_view got, const std::string& jti, const std::string& family,
               absl::Time now) const {
    if (auto it = jtis_.find(jti); it != jtis_.end() && it->second.live_until > now) {
      return got == "token_revoked";
    }
    auto it = families_.find(family);
    if (it == families_.end() || it->second.live_until <= now) return got.empty();
    if (it->second.either) return got == "family_revoked" || got == "subject_revoked";
    return got == (it->second.kind == Kind::kSubject ? "subject_revoked" : "family_revoked");
  }
  size_t LiveAt(absl::Time now) const {
    size_t live = 0;
    for (const auto* map : {&jtis_, &families_}) {
      for (const auto& [id, m] : *map) live += m.live_until > now;
    }
    return live;
  }
  // An entry of the model (its id, whether a jti, its live_until), to probe the boundary.
  bool SomeEntry(std::mt19937_64& rng, std::string& id, bool& is_jti, absl::Time& until) const {
    is_jti = rng() % 2;
    const auto& map = is_jti ? jtis_ : families_;
    if (map.empty()) return false;
    auto it = map.begin();
    std::advance(it, rng() % map.size());
    id = it->first;
    until = it->second.live_until;
    return true;
  }

 private:
  struct Model {
    absl::Time live_until;
    Kind kind;
    bool either;
  };
  std::map<std::string, Model> jtis_, families_;
};

TEST_CASE("RevocationView: answers as a map of id strings would over random revocations "
          "checks and clock steps",
          "[core][view]") {
  for (uint64_t seed : {1u, 2u, 3u, 4u}) {
    INFO("seed " << seed);
    std::mt19937_64 rng(seed);
    // Ids: short strings (hashed) and 16-byte raw ids (a family's own key), used as jtis and
    // as family ids alike, so the two tables must stay apart.
    std::vector<std::string> ids;
    for (int i = 0; i < 150; ++i) ids.push_back(absl::StrCat("id-", i));
    for (int i = 0; i < 150; ++i) ids.push_back(RandomBytes16(rng));
    auto pick = [&] { return ids[rng() % ids.size()]; };
    auto micros = [&](int64_t lo, int64_t hi) {
      return absl::Microseconds(lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(hi - lo)));
    };

    FakeClock clock(kNow);
    RevocationView view(false, absl::Seconds(1), &clock);
    ReferenceView reference;
    uint64_t seq = 0;
    int checks = 0, revoked = 0;
    for (int step = 0; step < 20'000; ++step) {
      const uint64_t op = rng() % 100;
      if (op < 55) {  // Apply
        const Kind kind = static_cast<Kind>(1 + rng() % 3);
        absl::Time until = clock.Now() + micros(-2'000'000, 10'000'000);
        if (rng() % 50 == 0) until = absl::InfiniteFuture();
        if (rng() % 50 == 0) until = absl::InfinitePast();
        seq += 1 + rng() % 3;
        const RevocationEntry e = Entry(seq, kind, pick(), until, clock.Now());
        view.Apply(e);
        reference.Apply(e, clock.Now());
        CHECK(view.last_seq() == seq);
      } else if (op < 70) {  // the clock moves on (sweeps use it)
        clock.Advance(micros(0, 2'000'000));
      } else {  // Check at or after the clock, sometimes exactly at an entry's live_until
        absl::Time now = clock.Now() + micros(0, 3'000'000);
        std::string jti = pick(), family = pick();
        std::string id;
        bool is_jti = false;
        absl::Time until;
        if (rng() % 4 == 0 && reference.SomeEntry(rng, id, is_jti, until)) {
          const absl::Time edge = until - absl::Microseconds(rng() % 2);
          if (edge >= clock.Now() && edge != absl::InfiniteFuture()) {
            now = edge;
            (is_jti ? jti : family) = id;
          }
        }
        const absl::string_view got = view.Check(jti, family, now);
        ++checks;
        revoked += !got.empty();
        if (!reference.Accepts(got, jti, family, now)) {
          FAIL_CHECK("step " << step << ": got '" << got << "'");
        }
      }
    }
    // Every live entry is held; swept ones were dead.
    CHECK(view.size() >= reference.LiveAt(clock.Now()));
    // Both answers were exercised.
    CHECK(revoked > checks / 10);
    CHECK(revoked < checks * 9 / 10);
  }
}

TEST_CASE("RevocationView: a live entry costs at most 64 bytes up to 100k entries",
          "[core][view]") {
  FakeClock clock(kNow);
  RevocationView view(false, absl::Seconds(1), &clock);
  std::mt19937_64 rng(7);
  const absl::Time until = kNow + absl::Hours(1);
  size_t worst_at = 0;
  double worst = 0;
  for (int i = 1; i <= 100'000; ++i) {
    // As the server writes them: a jti (base64url of 16 bytes, 22 characters) or a raw id.
    view.Apply(i % 2 ? Entry(i, Kind::kJti, absl::StrCat("jti-", i, "-abcdefghijklmnop"), until,
                             kNow)
                     : Entry(i, i % 4 ? Kind::kFamily : Kind::kSubject, RandomBytes16(rng), until,
                             kNow));
    if (i >= 2'000 && i % 1'000 == 0) {
      const double per_entry = static_cast<double>(view.ApproximateMemoryBytes()) / i;
      if (per_entry > worst) worst = per_entry, worst_at = i;
    }
  }
  REQUIRE(view.size() == 100'000);
  const double at_100k = static_cast<double>(view.ApproximateMemoryBytes()) / 100'000;
  INFO("bytes per entry at 100k: " << at_100k << "; worst " << worst << " at " << worst_at);
  CHECK(at_100k <= 64);
  CHECK(worst <= 64);
}

TEST_CASE("RevocationView: once a burst of revocations has died and been swept its memory "
          "is given back",
          "[core][view]") {
  FakeClock clock(kNow);
  RevocationView view(false, absl::Seconds(1), &clock);
  std::mt19937_64 rng(11);
  uint64_t seq = 0;
  for (int i = 0; i < 100'000; ++i) {  // a mass logout: all dead a second later
    view.Apply(Entry(++seq, Kind::kJti, absl::StrCat("burst-", i), kNow + absl::Seconds(1), kNow));
  }
  clock.Advance(absl::Seconds(2));
  const absl::Time until = clock.Now() + absl::Hours(1);
  for (int i = 0; i < 60'000; ++i) {  // later revocations; their arrival sweeps every shard
    view.Apply(Entry(++seq, Kind::kFamily, RandomBytes16(rng), until, clock.Now()));
  }
  CHECK(view.Check("burst-1", "x", clock.Now()).empty());
  const double per_live = static_cast<double>(view.ApproximateMemoryBytes()) / 60'000;
  INFO("bytes per live entry: " << per_live << ", size " << view.size());
  CHECK(per_live <= 64);
}

}  // namespace
}  // namespace ta::token

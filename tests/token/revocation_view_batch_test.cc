// RevocationView::ApplyBatch and Reserve (issue 27 item 4: a big snapshot applied fast): a
// batch holds exactly what the same entries applied one by one hold, and a size hint —
// absent, exact, too small, too large — never loses or invents an entry; an exact hint fills
// the tables without a rehash.
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "token/revocation_view.h"

namespace ta::token {
namespace {

using Kind = RevocationEntry::Kind;
const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

// Random entries: jtis of 8..40 characters, 16-byte family ids, repeats (the same id again
// with another live_until).
std::vector<RevocationEntry> RandomEntries(std::mt19937_64& rng, size_t n) {
  std::vector<RevocationEntry> out;
  for (uint64_t seq = 1; seq <= n; ++seq) {
    RevocationEntry e;
    e.seq = seq;
    if (!out.empty() && rng() % 8 == 0) {
      const RevocationEntry& again = out[rng() % out.size()];
      e.kind = again.kind;
      e.id = again.id;
      // A family revoked again by its subject's cutoff (the first kind stays).
      if (e.kind == Kind::kFamily && rng() % 2 == 0) e.kind = Kind::kSubject;
    } else {
      const int pick = static_cast<int>(rng() % 3);
      e.kind = pick == 0 ? Kind::kJti : pick == 1 ? Kind::kFamily : Kind::kSubject;
      if (e.kind == Kind::kJti) {
        e.id = absl::StrCat("jti-", rng() % 1'000'000'000'000ULL, std::string(rng() % 24, 'x'));
      } else {
        e.id.resize(16);
        for (char& c : e.id) c = static_cast<char>(rng() & 0xff);
      }
    }
    // All live when applied (the clock stays at kNow), so no sweep removes one between two
    // applications of an id; some are dead by the second instant CheckSame asks at. (A dead
    // entry swept before its id comes again takes the new kind, one not yet swept keeps the
    // old: the reason would depend on when sweeps ran, not on batching.)
    e.live_until = kNow + absl::Seconds(1 + static_cast<int64_t>(rng() % 3600));
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<RevocationView::EntryRef> Refs(const std::vector<RevocationEntry>& entries,
                                           size_t begin, size_t end) {
  std::vector<RevocationView::EntryRef> refs;
  for (size_t i = begin; i < end; ++i) {
    refs.push_back({entries[i].seq, entries[i].kind, entries[i].id, entries[i].live_until});
  }
  return refs;
}

// Every id of `entries` (and ids never applied) answers in `view` as in `reference`.
void CheckSame(const RevocationView& view, const RevocationView& reference,
               const std::vector<RevocationEntry>& entries) {
  const std::string absent_family(16, '\x7f');
  for (const RevocationEntry& e : entries) {
    const bool jti = e.kind == Kind::kJti;
    for (absl::Time at : {kNow, kNow + absl::Minutes(30)}) {
      const std::string jti_id = jti ? e.id : "never-revoked";
      const std::string family = jti ? absent_family : e.id;
      REQUIRE(view.Check(jti_id, family, at) == reference.Check(jti_id, family, at));
    }
  }
  REQUIRE(view.Check("never-revoked", absent_family, kNow).empty());
  REQUIRE(view.size() == reference.size());
  REQUIRE(view.last_seq() == reference.last_seq());
}

TEST_CASE("RevocationView: ApplyBatch holds exactly what Apply one by one holds",
          "[revocation_view]") {
  FakeClock clock(kNow);
  std::mt19937_64 rng(20261207);
  for (int round = 0; round < 50; ++round) {
    const std::vector<RevocationEntry> entries = RandomEntries(rng, 1 + rng() % 3000);
    RevocationView reference(true, absl::Seconds(1), &clock);
    for (const RevocationEntry& e : entries) reference.Apply(e);
    RevocationView view(true, absl::Seconds(1), &clock);
    for (size_t begin = 0; begin < entries.size();) {
      const size_t end = std::min(entries.size(), begin + 1 + rng() % 1024);
      view.ApplyBatch(Refs(entries, begin, end));
      begin = end;
    }
    CheckSame(view, reference, entries);
  }
}

TEST_CASE(
    "RevocationView: a size hint absent, exact, too small or too large neither loses "
    "nor invents an entry",
    "[revocation_view]") {
  FakeClock clock(kNow);
  std::mt19937_64 rng(7);
  const std::vector<RevocationEntry> entries = RandomEntries(rng, 20'000);
  RevocationView reference(true, absl::Seconds(1), &clock);
  for (const RevocationEntry& e : entries) reference.Apply(e);
  const RevocationView::Counts n = reference.counts();
  const size_t huge = std::numeric_limits<size_t>::max();
  const std::pair<size_t, size_t> hints[] = {
      {0, 0},       {n.jtis, n.families}, {n.jtis / 10, 3}, {n.jtis * 10, n.families * 10},
      {huge, huge}, {0, n.families},      {n.jtis, 0}};
  for (const auto& [jtis, families] : hints) {
    CAPTURE(jtis, families);
    RevocationView view(true, absl::Seconds(1), &clock);
    // A hint that arrives after some entries keeps them.
    view.ApplyBatch(Refs(entries, 0, 100));
    view.Reserve(jtis, families);
    for (size_t begin = 100; begin < entries.size(); begin += 4096) {
      view.ApplyBatch(Refs(entries, begin, std::min(entries.size(), begin + 4096)));
    }
    CheckSame(view, reference, entries);
    REQUIRE(view.counts().jtis == n.jtis);
    REQUIRE(view.counts().families == n.families);
  }
}

TEST_CASE("RevocationView: filled after an exact size hint, its tables never rehash",
          "[revocation_view]") {
  FakeClock clock(kNow);
  std::mt19937_64 rng(11);
  std::vector<RevocationEntry> entries;
  for (uint64_t seq = 1; seq <= 200'000; ++seq) {
    RevocationEntry e;
    e.seq = seq;
    e.id = absl::StrCat("seed-jti-", seq);
    e.live_until = kNow + absl::Hours(1);
    entries.push_back(std::move(e));
  }
  RevocationView view(true, absl::Seconds(1), &clock);
  view.Reserve(entries.size(), 0);
  const size_t reserved = view.ApproximateMemoryBytes();
  for (size_t begin = 0; begin < entries.size(); begin += 4096) {
    view.ApplyBatch(Refs(entries, begin, std::min(entries.size(), begin + 4096)));
  }
  CHECK(view.size() == entries.size());
  // Same capacity before and after: no table grew (a growth rehashes every entry).
  CHECK(view.ApproximateMemoryBytes() == reserved);
  // And the reservation is not wasteful: within a power of two of what growth would reach.
  RevocationView grown(true, absl::Seconds(1), &clock);
  for (const RevocationEntry& e : entries) grown.Apply(e);
  CHECK(reserved <= 2 * grown.ApproximateMemoryBytes());
}

}  // namespace
}  // namespace ta::token

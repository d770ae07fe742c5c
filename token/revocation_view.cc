#include "token/revocation_view.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "base/time_micros.h"
#include "token/crypto.h"

namespace ta::token {
namespace {

using Kind = RevocationEntry::Kind;

// Stored live_until: microseconds since the epoch, within 62 bits so that twice it, plus the
// kind bit, fits an int64. InfinitePast/InfiniteFuture map to the ends (±146,000 years).
constexpr int64_t kMinMicros = std::numeric_limits<int64_t>::min() / 2;
constexpr int64_t kMaxMicros = std::numeric_limits<int64_t>::max() / 2;

// `t` in microseconds, rounded up (`up`) or down, clamped to [kMinMicros, kMaxMicros]. For a
// whole-microsecond live_until L, "L <= now" holds exactly when Up(L) <= Down(now), so the
// comparison in microseconds answers as the one in absl::Time did.
int64_t ClampedMicros(absl::Time t, bool up) {
  if (t == absl::InfinitePast()) return kMinMicros;
  if (t == absl::InfiniteFuture()) return kMaxMicros;
  const absl::Duration d = t - absl::UnixEpoch();
  int64_t us = absl::ToInt64Microseconds(d);  // truncated toward zero; saturates
  if (us >= kMaxMicros) return kMaxMicros;
  if (us <= kMinMicros) return kMinMicros;
  if (up && absl::Microseconds(us) < d) ++us;
  if (!up && absl::Microseconds(us) > d) --us;
  return us;
}

int64_t Pack(int64_t until_micros, Kind kind) {
  return until_micros * 2 + (kind == Kind::kSubject ? 1 : 0);
}
int64_t UntilMicros(int64_t packed) { return packed >> 1; }  // arithmetic shift (C++20)
bool IsSubject(int64_t packed) { return (packed & 1) != 0; }

uint64_t Load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;  // little-endian hosts only (x86-64, aarch64): the key is process-local
}

// SipHash-2-4 (the reference implementation's algorithm; key k0, k1 as little-endian words),
// `size` 8 or 16. Native rather than OpenSSL's EVP_MAC "SIPHASH", whose per-call init (key and
// parameters) cost more than the hash of a 20-byte id: this runs once per revocation applied
// (10 M for a big snapshot) and once per lookup. The reference-vector test holds it to the
// published vectors.
uint64_t Rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

struct SipState {
  uint64_t v0, v1, v2, v3;
  void Round() {
    v0 += v1;
    v1 = Rotl(v1, 13);
    v1 ^= v0;
    v0 = Rotl(v0, 32);
    v2 += v3;
    v3 = Rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = Rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = Rotl(v1, 17);
    v1 ^= v2;
    v2 = Rotl(v2, 32);
  }
  void Compress(uint64_t m) {
    v3 ^= m;
    Round();
    Round();
    v0 ^= m;
  }
  uint64_t Finish(uint64_t mark) {
    v2 ^= mark;
    for (int i = 0; i < 4; ++i) Round();
    return v0 ^ v1 ^ v2 ^ v3;
  }
};

std::array<uint64_t, 2> Siphash(const std::array<uint64_t, 2>& key, absl::string_view data,
                                size_t size) {
  SipState s{0x736f6d6570736575ULL ^ key[0], 0x646f72616e646f6dULL ^ key[1],
             0x6c7967656e657261ULL ^ key[0], 0x7465646279746573ULL ^ key[1]};
  if (size == 16) s.v1 ^= 0xee;
  const char* p = data.data();
  const char* const whole_end = p + (data.size() & ~size_t{7});
  for (; p != whole_end; p += 8) s.Compress(Load64(p));
  uint64_t last = static_cast<uint64_t>(data.size()) << 56;
  for (size_t i = 0; i < (data.size() & 7); ++i) {
    last |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  }
  s.Compress(last);
  const uint64_t first = s.Finish(size == 16 ? 0xee : 0xff);
  if (size != 16) return {first, 0};
  s.v1 ^= 0xdd;
  return {first, s.Finish(0)};
}

}  // namespace

namespace revocation_view_internal {

std::array<uint64_t, 2> SipHash128(const std::array<uint64_t, 2>& key, absl::string_view data) {
  return Siphash(key, data, 16);
}

uint64_t SipHash64(const std::array<uint64_t, 2>& key, absl::string_view data) {
  return Siphash(key, data, 8)[0];
}

}  // namespace revocation_view_internal

namespace {

std::array<uint64_t, 2> RandomSipKey() {
  const std::string bytes = RandomBytes(16);
  return {Load64(bytes.data()), Load64(bytes.data() + 8)};
}

}  // namespace

RevocationView::RevocationView(bool follows_shared_log, absl::Duration max_lag, const Clock* clock)
    : RevocationView(follows_shared_log, max_lag, clock, RandomSipKey()) {}

RevocationView::RevocationView(bool follows_shared_log, absl::Duration max_lag, const Clock* clock,
                               const std::array<uint64_t, 2>& sip_key)
    : sip_key_(sip_key),
      follows_shared_log_(follows_shared_log),
      max_lag_(max_lag),
      clock_(clock),
      current_as_of_micros_(
          TimeToMicros(follows_shared_log ? absl::InfinitePast() : absl::InfiniteFuture())) {}

RevocationView::Key RevocationView::JtiKey(absl::string_view jti) const {
  const std::array<uint64_t, 2> tag = revocation_view_internal::SipHash128(sip_key_, jti);
  return Key{tag[0], tag[1]};
}

RevocationView::Key RevocationView::FamilyKey(absl::string_view family_id) const {
  if (family_id.size() == 16) return Key{Load64(family_id.data()), Load64(family_id.data() + 8)};
  const std::array<uint64_t, 2> tag = revocation_view_internal::SipHash128(sip_key_, family_id);
  return Key{tag[0], tag[1]};
}

size_t RevocationView::ShardIndex(const Key& key) {
  // Not the tables' own hash (absl::Hash): its low bits pick the slot group's tag, and a shard
  // chosen from them would leave each table fewer distinct tags.
  static_assert(kShards == 16, "the shift below picks one of 16");
  return ((key.lo ^ key.hi) * 0x9E3779B97F4A7C15ULL) >> 60;
}

void RevocationView::Apply(const RevocationEntry& entry) {
  const EntryRef ref{entry.seq, entry.kind, entry.id, entry.live_until};
  ApplyBatch(absl::MakeConstSpan(&ref, 1));
}

void RevocationView::Upsert(Table& table, const Key& key, int64_t packed) {
  auto [it, inserted] = table.try_emplace(key, packed);
  // The same revocation twice is one: the later live_until wins, the first kind stays.
  if (!inserted && UntilMicros(it->second) < UntilMicros(packed)) {
    it->second = Pack(UntilMicros(packed), IsSubject(it->second) ? Kind::kSubject : Kind::kFamily);
  }
}

void RevocationView::ApplyBatch(absl::Span<const EntryRef> entries) {
  // Keys first, outside the locks, grouped by shard (a counting sort), then each shard locked
  // once. Reused per thread: no allocation per batch once warm.
  struct Prepared {
    Key key;
    int64_t packed;
    bool is_jti;
  };
  thread_local std::vector<Prepared> staged;
  std::array<uint32_t, kShards + 1> start{};
  thread_local std::vector<uint8_t> shard_of;
  shard_of.resize(entries.size());
  staged.resize(entries.size());
  uint64_t max_seq = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const Key key =
        entries[i].kind == Kind::kJti ? JtiKey(entries[i].id) : FamilyKey(entries[i].id);
    shard_of[i] = static_cast<uint8_t>(ShardIndex(key));
    ++start[shard_of[i] + 1];
    max_seq = std::max(max_seq, entries[i].seq);
    staged[i].key = key;  // moved to its shard's place below
  }
  for (size_t s = 0; s < kShards; ++s) start[s + 1] += start[s];
  std::array<uint32_t, kShards> next{};
  std::copy(start.begin(), start.end() - 1, next.begin());
  thread_local std::vector<Prepared> sorted;
  sorted.resize(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const int64_t until = ClampedMicros(entries[i].live_until, /*up=*/true);
    sorted[next[shard_of[i]]++] =
        Prepared{staged[i].key, Pack(until, entries[i].kind), entries[i].kind == Kind::kJti};
  }
  for (size_t s = 0; s < kShards; ++s) {
    if (start[s] == start[s + 1]) continue;
    Shard& shard = shards_[s];
    absl::MutexLock lock(&shard.mu);
    for (uint32_t i = start[s]; i < start[s + 1]; ++i) {
      // The slot's cache line is fetched a few entries ahead (a 10 M-entry table misses on
      // every insert).
      if (i + 4 < start[s + 1]) {
        (sorted[i + 4].is_jti ? shard.jtis : shard.families).prefetch(sorted[i + 4].key);
      }
      Upsert(sorted[i].is_jti ? shard.jtis : shard.families, sorted[i].key, sorted[i].packed);
    }
    MaybeSweepLocked(shard);
  }
  AdvanceLastSeq(max_seq);
}

void RevocationView::MaybeSweepLocked(Shard& shard) const {
  // Amortised sweep of what is dead by this server's clock. Never by entry.revoked_at: that
  // is the writer's clock, and a writer whose clock runs ahead would make this view forget
  // revocations this server still needs (issue 22).
  if (shard.jtis.size() + shard.families.size() <= 2 * shard.swept_size + 64) return;
  const int64_t now = ClampedMicros(clock_->Now(), /*up=*/false);
  auto dead = [now](const auto& kv) { return UntilMicros(kv.second) <= now; };
  for (Table* swept : {&shard.jtis, &shard.families}) {
    absl::erase_if(*swept, dead);
    // Give back what a burst left behind: a table under 7/16 full (what a doubling
    // leaves) is shrunk to fit, so after a sweep every entry costs ≤ 57 bytes. Amortised:
    // a sweep runs only once a shard has doubled since the last one.
    if (swept->capacity() * 7 > swept->size() * 16 + 64) swept->rehash(0);
  }
  shard.swept_size = shard.jtis.size() + shard.families.size();
}

void RevocationView::Reserve(size_t jtis, size_t families) {
  // Per shard: its share plus 1/16 (a shard's share of random keys varies by ~sqrt(n)).
  auto share = [](size_t n) {
    n = std::min(n, kMaxReserve) / kShards;
    return n + n / 16 + 16;
  };
  const size_t j = jtis == 0 ? 0 : share(jtis), f = families == 0 ? 0 : share(families);
  for (Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    if (j > shard.jtis.size()) shard.jtis.reserve(j);
    if (f > shard.families.size()) shard.families.reserve(f);
    // No sweep (it would shrink the tables back) before they pass what was reserved.
    shard.swept_size = std::max(shard.swept_size, (j + f) / 2);
  }
}

const int64_t* RevocationView::Find(const Table& table, const Key& key, int64_t now_micros) {
  auto it = table.find(key);
  if (it == table.end() || UntilMicros(it->second) <= now_micros) return nullptr;
  return &it->second;
}

absl::string_view RevocationView::Check(absl::string_view jti, absl::string_view family_id,
                                        absl::Time now) const {
  const int64_t now_micros = ClampedMicros(now, /*up=*/false);
  {
    const Key key = JtiKey(jti);
    const Shard& shard = ShardFor(key);
    absl::ReaderMutexLock lock(&shard.mu);
    if (Find(shard.jtis, key, now_micros) != nullptr) return "token_revoked";
  }
  const Key key = FamilyKey(family_id);
  const Shard& shard = ShardFor(key);
  absl::ReaderMutexLock lock(&shard.mu);
  const int64_t* family = Find(shard.families, key, now_micros);
  if (family == nullptr) return "";
  return IsSubject(*family) ? "subject_revoked" : "family_revoked";
}

void RevocationView::MarkCurrent(absl::Time as_of) {
  const int64_t micros = TimeToMicros(as_of);
  int64_t seen = current_as_of_micros_.load(std::memory_order_relaxed);
  while (micros > seen &&
         !current_as_of_micros_.compare_exchange_weak(seen, micros, std::memory_order_release)) {
  }
}

absl::Time RevocationView::current_as_of() const {
  return MicrosToTime(current_as_of_micros_.load(std::memory_order_acquire));
}

bool RevocationView::IsCurrent(absl::Time now) const {
  if (clock_offset_exceeded()) return false;
  return !follows_shared_log_ || now - current_as_of() <= max_lag_;
}

void RevocationView::SetClockOffset(absl::Duration offset, bool within_bound) {
  clock_offset_micros_.store(absl::ToInt64Microseconds(offset), std::memory_order_relaxed);
  clock_offset_measured_.store(true, std::memory_order_release);
  clock_offset_exceeded_.store(!within_bound, std::memory_order_release);
}

std::optional<absl::Duration> RevocationView::clock_offset() const {
  if (!clock_offset_measured_.load(std::memory_order_acquire)) return std::nullopt;
  return absl::Microseconds(clock_offset_micros_.load(std::memory_order_relaxed));
}

RevocationView::Counts RevocationView::counts() const {
  Counts counts;
  for (const Shard& shard : shards_) {
    absl::ReaderMutexLock lock(&shard.mu);
    counts.jtis += shard.jtis.size();
    counts.families += shard.families.size();
  }
  return counts;
}

size_t RevocationView::size() const {
  size_t total = 0;
  for (const Shard& shard : shards_) {
    absl::ReaderMutexLock lock(&shard.mu);
    total += shard.jtis.size() + shard.families.size();
  }
  return total;
}

size_t RevocationView::ApproximateMemoryBytes() const {
  // A SwissTable's one allocation: per slot the slot and one control byte, plus one group of
  // cloned control bytes (16) and a sentinel; 0 while nothing was ever inserted.
  constexpr size_t kSlotBytes = sizeof(Table::value_type);
  static_assert(sizeof(std::pair<const Key, int64_t>) == 24, "a slot is 16 + 8 bytes");
  auto table_bytes = [](const Table& t) -> size_t {
    return t.capacity() == 0 ? 0 : t.capacity() * (kSlotBytes + 1) + 16 + 1;
  };
  size_t total = sizeof(*this);
  for (const Shard& shard : shards_) {
    absl::ReaderMutexLock lock(&shard.mu);
    total += table_bytes(shard.jtis) + table_bytes(shard.families);
  }
  return total;
}

void RevocationView::ExportShard(size_t shard, absl::Time now, std::vector<RawEntry>* jtis,
                                 std::vector<RawEntry>* families) const {
  const int64_t now_micros = ClampedMicros(now, /*up=*/false);
  const Shard& s = shards_[shard];
  absl::ReaderMutexLock lock(&s.mu);
  for (auto [table, out] : {std::pair{&s.jtis, jtis}, std::pair{&s.families, families}}) {
    out->reserve(out->size() + table->size());
    for (const auto& [key, packed] : *table) {
      if (UntilMicros(packed) <= now_micros) continue;
      out->push_back(RawEntry{key.lo, key.hi, UntilMicros(packed), IsSubject(packed)});
    }
  }
}

bool RevocationView::ImportShard(size_t shard, absl::string_view jti_records,
                                 absl::string_view family_records, absl::Time now) {
  const int64_t now_micros = ClampedMicros(now, /*up=*/false);
  Shard& s = shards_[shard];
  absl::MutexLock lock(&s.mu);
  // Sized once for all the records (dead ones too: a checkpoint holds few).
  s.jtis.reserve(s.jtis.size() + jti_records.size() / kRecordBytes);
  s.families.reserve(s.families.size() + family_records.size() / kRecordBytes);
  const bool ok = ImportRecords(s.jtis, s, jti_records, /*is_jti=*/true, now_micros) &&
                  ImportRecords(s.families, s, family_records, /*is_jti=*/false, now_micros);
  s.swept_size = s.jtis.size() + s.families.size();
  return ok;
}

bool RevocationView::ImportRecords(Table& table, const Shard& shard, absl::string_view records,
                                   bool is_jti, int64_t now_micros) const {
  for (const char* p = records.data(); p + kRecordBytes <= records.data() + records.size();
       p += kRecordBytes) {
    const Key key{Load64(p), Load64(p + 8)};
    if (&ShardFor(key) != &shard) return false;
    const auto value = static_cast<int64_t>(Load64(p + 16));
    const int64_t until = std::clamp<int64_t>(UntilMicros(value), kMinMicros, kMaxMicros);
    if (until <= now_micros) continue;
    const Kind kind = !is_jti && IsSubject(value) ? Kind::kSubject : Kind::kFamily;
    auto [it, inserted] = table.try_emplace(key, Pack(until, kind));
    if (!inserted && UntilMicros(it->second) < until) {
      it->second = Pack(until, IsSubject(it->second) ? Kind::kSubject : Kind::kFamily);
    }
  }
  return true;
}

void RevocationView::AdvanceLastSeq(uint64_t seq) {
  uint64_t seen = last_seq_.load(std::memory_order_relaxed);
  while (seq > seen && !last_seq_.compare_exchange_weak(seen, seq, std::memory_order_release)) {
  }
}

}  // namespace ta::token

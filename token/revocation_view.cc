#include "token/revocation_view.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <limits>
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

// SipHash-2-4 by OpenSSL's EVP_MAC (key: k0, k1 as little-endian words), `size` 8 or 16.
// Failure here is an allocation failure; there is no safe answer without the key (Apply and
// Check must hash alike), so it ends the process like std::bad_alloc would.
std::array<uint64_t, 2> Siphash(const std::array<uint64_t, 2>& key, absl::string_view data,
                                size_t size) {
  static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "SIPHASH", nullptr);
  unsigned char key_bytes[16];
  std::memcpy(key_bytes, key.data(), 16);  // little-endian words, as the targets are
  OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size),
                         OSSL_PARAM_construct_end()};
  // One context per thread, re-keyed by each call's init (no allocation per lookup).
  thread_local std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)> ctx(
      mac != nullptr ? EVP_MAC_CTX_new(mac) : nullptr, EVP_MAC_CTX_free);
  unsigned char out[16] = {};
  size_t out_len = 0;
  if (ctx == nullptr || EVP_MAC_init(ctx.get(), key_bytes, sizeof key_bytes, params) != 1 ||
      EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1 ||
      EVP_MAC_final(ctx.get(), out, &out_len, sizeof out) != 1 || out_len != size) {
    std::fprintf(stderr, "revocation view: OpenSSL SIPHASH failed\n");
    std::abort();
  }
  return {Load64(reinterpret_cast<const char*>(out)),
          size == 16 ? Load64(reinterpret_cast<const char*>(out) + 8) : 0};
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

RevocationView::Shard& RevocationView::ShardFor(const Key& key) const {
  // Not the tables' own hash (absl::Hash): its low bits pick the slot group's tag, and a shard
  // chosen from them would leave each table fewer distinct tags.
  return shards_[((key.lo ^ key.hi) * 0x9E3779B97F4A7C15ULL) >> 60];
}

void RevocationView::Apply(const RevocationEntry& entry) {
  const bool is_jti = entry.kind == Kind::kJti;
  const Key key = is_jti ? JtiKey(entry.id) : FamilyKey(entry.id);
  const int64_t until = ClampedMicros(entry.live_until, /*up=*/true);
  Shard& shard = ShardFor(key);
  {
    absl::MutexLock lock(&shard.mu);
    Table& table = is_jti ? shard.jtis : shard.families;
    auto [it, inserted] = table.try_emplace(key, Pack(until, entry.kind));
    // The same revocation twice is one: the later live_until wins, the first kind stays.
    if (!inserted && UntilMicros(it->second) < until) {
      it->second = Pack(until, IsSubject(it->second) ? Kind::kSubject : Kind::kFamily);
    }
    // Amortised sweep of what is dead by this server's clock. Never by entry.revoked_at: that
    // is the writer's clock, and a writer whose clock runs ahead would make this view forget
    // revocations this server still needs (issue 22).
    if (shard.jtis.size() + shard.families.size() > 2 * shard.swept_size + 64) {
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
  }
  uint64_t seen = last_seq_.load(std::memory_order_relaxed);
  while (entry.seq > seen &&
         !last_seq_.compare_exchange_weak(seen, entry.seq, std::memory_order_release)) {
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

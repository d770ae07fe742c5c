#include "server/core/revocation_view.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "absl/hash/hash.h"
#include "base/status_macros.h"

namespace ta::core {
namespace {

using Kind = storage::RevocationEntry::Kind;

constexpr size_t kLoadBatch = 1000;

int64_t Micros(absl::Time t) {
  if (t == absl::InfinitePast()) return std::numeric_limits<int64_t>::min();
  if (t == absl::InfiniteFuture()) return std::numeric_limits<int64_t>::max();
  return absl::ToUnixMicros(t);
}

absl::Time FromMicros(int64_t micros) {
  if (micros == std::numeric_limits<int64_t>::min()) return absl::InfinitePast();
  if (micros == std::numeric_limits<int64_t>::max()) return absl::InfiniteFuture();
  return absl::FromUnixMicros(micros);
}

}  // namespace

RevocationView::RevocationView(bool follows_shared_log, absl::Duration max_lag, const Clock* clock)
    : follows_shared_log_(follows_shared_log),
      max_lag_(max_lag),
      clock_(clock),
      current_as_of_micros_(
          Micros(follows_shared_log ? absl::InfinitePast() : absl::InfiniteFuture())) {}

RevocationView::Shard& RevocationView::ShardFor(absl::string_view id) const {
  return shards_[absl::HashOf(id) % kShards];
}

void RevocationView::Apply(const storage::RevocationEntry& entry) {
  Shard& shard = ShardFor(entry.id);
  {
    absl::MutexLock lock(&shard.mu);
    Map& map = entry.kind == Kind::kJti ? shard.jtis : shard.families;
    auto [it, inserted] = map.try_emplace(entry.id, Entry{entry.live_until, entry.kind});
    if (!inserted) it->second.live_until = std::max(it->second.live_until, entry.live_until);
    // Amortised sweep of what is dead by this server's clock. Never by entry.revoked_at: that
    // is the writer's clock, and a writer whose clock runs ahead would make this view forget
    // revocations this server still needs (issue 22).
    if (shard.jtis.size() + shard.families.size() > 2 * shard.swept_size + 64) {
      const absl::Time now = clock_->Now();
      auto dead = [now](const auto& kv) { return kv.second.live_until <= now; };
      absl::erase_if(shard.jtis, dead);
      absl::erase_if(shard.families, dead);
      shard.swept_size = shard.jtis.size() + shard.families.size();
    }
  }
  uint64_t seen = last_seq_.load(std::memory_order_relaxed);
  while (entry.seq > seen &&
         !last_seq_.compare_exchange_weak(seen, entry.seq, std::memory_order_release)) {
  }
}

absl::Status RevocationView::Load(storage::TokenStore& store, absl::Time now) {
  uint64_t after = 0;
  while (true) {
    ASSIGN_OR_RETURN(std::vector<storage::RevocationEntry> batch,
                     store.ReadRevocations(after, now, kLoadBatch));
    for (const storage::RevocationEntry& entry : batch) Apply(entry);
    if (batch.size() < kLoadBatch) return absl::OkStatus();
    after = batch.back().seq;
  }
}

const RevocationView::Entry* RevocationView::Find(const Map& map, absl::string_view id,
                                                  absl::Time now) {
  auto it = map.find(id);
  if (it == map.end() || it->second.live_until <= now) return nullptr;
  return &it->second;
}

absl::string_view RevocationView::Check(absl::string_view jti, absl::string_view family_id,
                                        absl::Time now) const {
  {
    const Shard& shard = ShardFor(jti);
    absl::ReaderMutexLock lock(&shard.mu);
    if (Find(shard.jtis, jti, now) != nullptr) return "token_revoked";
  }
  const Shard& shard = ShardFor(family_id);
  absl::ReaderMutexLock lock(&shard.mu);
  const Entry* family = Find(shard.families, family_id, now);
  if (family == nullptr) return "";
  return family->kind == Kind::kSubject ? "subject_revoked" : "family_revoked";
}

void RevocationView::MarkCurrent(absl::Time as_of) {
  const int64_t micros = Micros(as_of);
  int64_t seen = current_as_of_micros_.load(std::memory_order_relaxed);
  while (micros > seen &&
         !current_as_of_micros_.compare_exchange_weak(seen, micros, std::memory_order_release)) {
  }
}

absl::Time RevocationView::current_as_of() const {
  return FromMicros(current_as_of_micros_.load(std::memory_order_acquire));
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

}  // namespace ta::core

// Which key signs and which verify when, and what a rotation makes of a ring.
#include <algorithm>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/token/key_ring_internal.h"

namespace ta::token::internal {

bool Verifies(const ManifestEntry& meta, absl::Time now) {
  return meta.active || now < meta.retire_at;
}

bool MaySign(const ManifestEntry& meta) {
  return meta.active || meta.retire_at != absl::InfiniteFuture();
}

const RingEntry* Signer(const std::vector<RingEntry>& entries, absl::Time now) {
  const RingEntry* best = nullptr;
  auto rank = [](const RingEntry& e) {
    return std::make_tuple(e.meta.sign_from, e.meta.active, e.meta.created_at);
  };
  for (const RingEntry& e : entries) {
    if (!MaySign(e.meta) || !Verifies(e.meta, now) || e.meta.sign_from > now) continue;
    if (best == nullptr || rank(*best) < rank(e)) best = &e;
  }
  return best;
}

std::vector<RingEntry> RotatedEntries(RingEntry fresh, const std::vector<RingEntry>& old,
                                      absl::Time now, absl::Duration window,
                                      std::vector<std::string>* expired) {
  std::vector<RingEntry> entries;
  const absl::Time sign_from = fresh.meta.sign_from;
  entries.push_back(std::move(fresh));
  for (RingEntry e : old) {
    if (e.meta.active) {
      e.meta.active = false;
      if (e.meta.sign_from == absl::InfinitePast()) e.meta.sign_from = e.meta.created_at;
      e.meta.retire_at = sign_from + window;
    }
    if (Verifies(e.meta, now)) {
      entries.push_back(std::move(e));
    } else if (expired != nullptr) {
      expired->push_back(e.meta.file);
    }
  }
  return entries;
}

ManifestEntry NewKeyEntry(const Key& key, absl::Time now, absl::Time sign_from) {
  ManifestEntry meta;
  meta.file = absl::StrCat(key.kid(), key.alg() == Algorithm::kHS256 ? ".hs256" : ".pem");
  meta.alg = key.alg();
  meta.created_at = now;
  meta.active = true;
  meta.sign_from = sign_from;
  return meta;
}

absl::Status Normalize(std::vector<RingEntry>* entries) {
  auto active = std::stable_partition(entries->begin(), entries->end(),
                                      [](const RingEntry& e) { return e.meta.active; });
  if (active - entries->begin() != 1) {
    return absl::FailedPreconditionError(
        absl::StrCat(kManifestFile, " must mark exactly one key active"));
  }
  for (size_t i = 0; i < entries->size(); ++i) {
    for (size_t j = i + 1; j < entries->size(); ++j) {
      if ((*entries)[i].key->kid() == (*entries)[j].key->kid()) {
        return absl::FailedPreconditionError(absl::StrCat(
            (*entries)[i].meta.file, " and ", (*entries)[j].meta.file, " hold the same key"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace ta::token::internal

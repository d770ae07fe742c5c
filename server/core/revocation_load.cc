#include "server/core/revocation_load.h"

#include <vector>

#include "base/status_macros.h"

namespace ta::core {

constexpr size_t kLoadBatch = 1000;

absl::Status LoadRevocations(storage::TokenStore& store, token::RevocationView& view,
                             absl::Time now) {
  uint64_t after = 0;
  while (true) {
    ASSIGN_OR_RETURN(std::vector<storage::RevocationEntry> batch,
                     store.ReadRevocations(after, now, kLoadBatch));
    for (const storage::RevocationEntry& entry : batch) view.Apply(entry);
    if (batch.size() < kLoadBatch) return absl::OkStatus();
    after = batch.back().seq;
  }
}

}  // namespace ta::core

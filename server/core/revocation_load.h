// Fills a RevocationView (token/revocation_view.h) from a store's revocation log at start:
// the one place the view meets the store, so the token library never includes storage/.
// Afterwards the store's listener and, for a shared store, the RevocationFollower keep it
// current. Stateless; as thread-safe as the store's ReadRevocations.
#ifndef TA_SERVER_CORE_REVOCATION_LOAD_H_
#define TA_SERVER_CORE_REVOCATION_LOAD_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "storage/token_store.h"
#include "token/revocation_view.h"

namespace ta::core {

// Reads the whole live log from `store` (as of `now`) and applies it to `view`.
absl::Status LoadRevocations(storage::TokenStore& store, token::RevocationView& view,
                             absl::Time now);

}  // namespace ta::core

#endif  // TA_SERVER_CORE_REVOCATION_LOAD_H_

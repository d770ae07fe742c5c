// One entry of the revocation log (DESIGN §10): a revocation that kills access tokens, kept
// while any token it kills can still verify.
//
// Here, below both its producer and its consumer, because two layers that must not know each
// other share it: storage/ appends and reads the log (storage::RevocationEntry is this type),
// and the token library's RevocationView (token/revocation_view.h) is built from it. One plain
// struct rather than a copy per layer: the store's listener hands every entry to the view on
// the write path, with no conversion. The Kind values are the log's stored values: never
// renumber. A plain struct; no behaviour.
#ifndef TA_BASE_REVOCATION_H_
#define TA_BASE_REVOCATION_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace ta {

struct RevocationEntry {
  enum class Kind : uint8_t {
    kJti = 1,      // one access token (RevokeToken): id = jti
    kFamily = 2,   // a family revoked (logout, admin, reuse detected): id = raw family id
    kSubject = 3,  // a family killed by its subject's cutoff (RevokeSubject): id = family id
  };
  uint64_t seq = 0;  // assigned by the store: unique, increasing with each append
  Kind kind = Kind::kJti;
  std::string id;
  absl::Time revoked_at;
  // No token this entry kills can verify after this instant: the entry may be forgotten then.
  // jti: the token's exp + leeway (DenyJti's expires_at); family: its access_live_until.
  absl::Time live_until;
};

}  // namespace ta

#endif  // TA_BASE_REVOCATION_H_

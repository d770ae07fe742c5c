// What the core reports while it works, for /metrics (DESIGN §12).
//
// The core calls this interface; server/metrics implements it with prometheus-cpp, so no
// metrics library type enters server/core. Implementations must be thread-safe and cheap:
// OnVerifyCache runs on the introspection hot path.
#ifndef TA_SERVER_CORE_METRICS_H_
#define TA_SERVER_CORE_METRICS_H_

#include "absl/status/status.h"

namespace ta::core {

// How one RefreshTokens call ended ("never reorder": exporters index by value).
enum class RefreshOutcome {
  kRotated,         // the current token was spent and a successor issued
  kGraceReplay,     // the predecessor within reuse_grace: the same successor again
  kReuseDetected,   // a spent token again: the family is now revoked
  kFamilyRevoked,   // the family was already revoked
  kFamilyExpired,   // past the family's absolute lifetime
  kTokenExpired,    // the refresh token's idle lifetime passed
  kSubjectRevoked,  // the subject's cutoff covers the family
  kSubjectBlocked,  // the subject is banned
  kInvalid,         // unknown, malformed or forged refresh token
  kRefused,         // a bad request or a caller without the right (scope, client_id)
  kError,           // the answer could not be given (store unavailable, ...)
};
inline constexpr int kRefreshOutcomeCount = static_cast<int>(RefreshOutcome::kError) + 1;

// Which width a successful revocation had (DESIGN §5).
enum class RevocationWidth { kToken, kFamily, kSubject };
inline constexpr int kRevocationWidthCount = static_cast<int>(RevocationWidth::kSubject) + 1;

class CoreMetrics {
 public:
  virtual ~CoreMetrics() = default;
  virtual void OnRefresh(RefreshOutcome outcome) = 0;
  // A revocation that changed something (a family already revoked is not counted again).
  virtual void OnRevocation(RevocationWidth width) = 0;
  // One lookup of the verified-token cache during introspection.
  virtual void OnVerifyCache(bool hit) = 0;

  // An implementation that records nothing (the default of AuthorityOptions::metrics).
  static CoreMetrics* None();
};

// The outcome a RefreshTokens result stands for (`replayed`: it was a grace replay).
RefreshOutcome RefreshOutcomeOf(const absl::Status& status, bool replayed);

}  // namespace ta::core

#endif  // TA_SERVER_CORE_METRICS_H_

#include "server/core/metrics.h"

#include <string>

#include "base/error.h"

namespace ta::core {
namespace {

class NoMetrics final : public CoreMetrics {
 public:
  void OnRefresh(RefreshOutcome) override {}
  void OnRevocation(RevocationWidth) override {}
  void OnVerifyCache(bool) override {}
};

}  // namespace

CoreMetrics* CoreMetrics::None() {
  static NoMetrics none;
  return &none;
}

RefreshOutcome RefreshOutcomeOf(const absl::Status& status, bool replayed) {
  if (status.ok()) return replayed ? RefreshOutcome::kGraceReplay : RefreshOutcome::kRotated;
  const std::string reason = ReasonOf(status);
  if (reason == "refresh_token_reused") return RefreshOutcome::kReuseDetected;
  if (reason == "family_revoked") return RefreshOutcome::kFamilyRevoked;
  if (reason == "family_expired") return RefreshOutcome::kFamilyExpired;
  if (reason == "refresh_token_expired") return RefreshOutcome::kTokenExpired;
  if (reason == "subject_revoked") return RefreshOutcome::kSubjectRevoked;
  if (reason == "subject_blocked") return RefreshOutcome::kSubjectBlocked;
  if (reason == "invalid_refresh_token") return RefreshOutcome::kInvalid;
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
      return RefreshOutcome::kRefused;
    default:
      return RefreshOutcome::kError;
  }
}

}  // namespace ta::core

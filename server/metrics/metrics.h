// ServerMetrics: what the server's layers report for /metrics (DESIGN §12), as an interface
// with no metrics-library type in it. The core reports through its base (core::CoreMetrics);
// the gRPC face, the HTTP face and the metered store (metered_store.h) through the rest.
// prometheus_metrics.h implements it. Implementations are thread-safe and cheap enough for
// the introspection hot path.
#ifndef TA_SERVER_METRICS_METRICS_H_
#define TA_SERVER_METRICS_METRICS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/core/metrics.h"
#include "server/core/roles.h"

namespace ta::metrics {

// The store operations that are timed ("never reorder": exporters index by value).
enum class StoreOp {
  kCreateFamily,
  kGetFamily,
  kGetRefresh,
  kRotate,
  kRevokeFamily,
  kDenyJti,
  kIsJtiDenied,
  kUpdateSubject,
  kGetSubject,
  kListFamilies,
  kPurgeExpired,
  kGetStats,
  kReadRevocations,
  kCreateBackup,
  kRecordProofJti,
};
inline constexpr int kStoreOpCount = static_cast<int>(StoreOp::kRecordProofJti) + 1;
inline absl::string_view StoreOpName(StoreOp op) {
  static constexpr absl::string_view kNames[kStoreOpCount] = {
      "create_family", "get_family",    "get_refresh",   "rotate",
      "revoke_family", "deny_jti",      "is_jti_denied", "update_subject",
      "get_subject",   "list_families", "purge_expired", "get_stats",
      "read_revocations", "create_backup", "record_proof_jti"};
  return kNames[static_cast<int>(op)];
}

class ServerMetrics : public core::CoreMetrics {
 public:
  // One gRPC call of `op`, finished with `code` after `latency` (from arrival to answer).
  virtual void OnRpc(core::Operation op, absl::StatusCode code, absl::Duration latency) = 0;
  // One HTTP request to `endpoint` (a fixed route name such as "introspect", never the raw
  // path), answered with `http_status`.
  virtual void OnHttp(absl::string_view endpoint, int http_status, absl::Duration latency) = 0;
  // One store call; `code` OK or the error it returned.
  virtual void OnStore(StoreOp op, absl::StatusCode code, absl::Duration latency) = 0;
};

}  // namespace ta::metrics

#endif  // TA_SERVER_METRICS_METRICS_H_

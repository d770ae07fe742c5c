// ServerMetrics kept in a prometheus-cpp registry and rendered in the Prometheus text format
// (version 0.0.4) for GET /metrics. Only prometheus-cpp's core and text serializer are used:
// the HTTP face (server/http) serves the text, not prometheus-cpp's own civetweb exposer.
//
// Names follow the Prometheus conventions (prefix ta_, base units, _total for counters,
// _seconds for durations); the README lists every series. Thread-safe.
#ifndef TA_SERVER_METRICS_PROMETHEUS_METRICS_H_
#define TA_SERVER_METRICS_PROMETHEUS_METRICS_H_

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/metrics/metrics.h"
#include "server/token/key_ring.h"

namespace prometheus {
class Counter;
template <typename T>
class Family;
class Gauge;
class Histogram;
class Registry;
}  // namespace prometheus

namespace ta::metrics {

struct PrometheusMetricsOptions {
  // Labels of ta_build_info, e.g. {"version", "1a2b3c4"}.
  std::vector<std::pair<std::string, std::string>> build_info;
  // The signing keys now (for ta_signing_keys, ta_signing_key_age_seconds and
  // ta_signing_key_retire_timestamp_seconds), read at each scrape. Empty: no key series.
  std::function<std::vector<token::KeyInfo>()> keys;
  // This replica's clock minus the database's as the follower last measured it (for
  // ta_clock_offset_seconds), read at each scrape. Empty, or nullopt: no series.
  std::function<std::optional<absl::Duration>()> clock_offset;
  // Readiness now (ta_ready, and ta_store_up: false only for "store_unavailable"), read at
  // each scrape. Empty: no readiness series.
  std::function<absl::Status()> readiness;
  // The instant the revocation view is proved current to (RevocationView::current_as_of;
  // InfiniteFuture when no other process writes the store), read at each scrape for
  // ta_revocation_view_lag_seconds. Empty: no view series.
  std::function<absl::Time()> view_current_as_of;
  // The view's bound (--max_revocation_lag): ta_revocation_view_max_lag_seconds.
  absl::Duration view_max_lag = absl::Seconds(1);
  // The store makes backups (CreateBackup on RocksDB): export
  // ta_backup_last_success_timestamp_seconds, 0 until the first successful one since start.
  bool backups = false;
  // Time source for key ages and the view's lag. Never null.
  const Clock* clock = Clock::Real();
};

class PrometheusMetrics final : public ServerMetrics {
 public:
  static absl::StatusOr<std::unique_ptr<PrometheusMetrics>> Create(
      PrometheusMetricsOptions options);
  ~PrometheusMetrics() override;

  void OnRefresh(core::RefreshOutcome outcome) override;
  void OnRevocation(core::RevocationWidth width) override;
  void OnVerifyCache(bool hit) override;
  void OnRpc(core::Operation op, absl::StatusCode code, absl::Duration latency) override;
  void OnHttp(absl::string_view endpoint, int http_status, absl::Duration latency) override;
  void OnStore(StoreOp op, absl::StatusCode code, absl::Duration latency) override;

  // Every series, in the text exposition format.
  std::string Render() const;

 private:
  static constexpr int kGrpcCodes = 17;
  explicit PrometheusMetrics(PrometheusMetricsOptions options);
  // prometheus-cpp reports bad names by throwing; Create turns that into a status.
  void Build();
  void BuildCallMetrics(prometheus::Registry& r);
  void BuildTokenMetrics(prometheus::Registry& r);
  void BuildStoreMetrics(prometheus::Registry& r);
  void BuildProcessMetrics(prometheus::Registry& r);

  const PrometheusMetricsOptions options_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* rpc_requests_ = nullptr;
  prometheus::Family<prometheus::Counter>* http_requests_ = nullptr;
  prometheus::Family<prometheus::Histogram>* http_latency_ = nullptr;
  prometheus::Family<prometheus::Counter>* store_errors_ = nullptr;
  prometheus::Gauge* last_backup_ = nullptr;  // set only with options_.backups
  // Per-call series looked up once: [operation][grpc code] is created on first use.
  std::array<std::array<std::atomic<prometheus::Counter*>, kGrpcCodes>, core::kOperationCount>
      rpc_counters_{};
  std::array<prometheus::Histogram*, core::kOperationCount> rpc_latency_{};
  std::array<prometheus::Counter*, core::kRefreshOutcomeCount> refresh_{};
  std::array<prometheus::Counter*, core::kRevocationWidthCount> revocations_{};
  std::array<prometheus::Counter*, 2> verify_cache_{};  // [miss, hit]
  std::array<prometheus::Histogram*, kStoreOpCount> store_latency_{};
};

}  // namespace ta::metrics

#endif  // TA_SERVER_METRICS_PROMETHEUS_METRICS_H_

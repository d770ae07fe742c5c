#include "server/metrics/prometheus_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <exception>
#include <map>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "base/error.h"

namespace ta::metrics {
namespace {

using prometheus::Histogram;

// 100 µs .. 5 s: a cached introspection takes tens of µs, a synced write milliseconds.
const Histogram::BucketBoundaries& LatencyBuckets() {
  static const Histogram::BucketBoundaries buckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
  return buckets;
}

absl::string_view OutcomeName(core::RefreshOutcome outcome) {
  static constexpr absl::string_view kNames[core::kRefreshOutcomeCount] = {
      "rotated",       "grace_replay",    "reuse_detected",  "family_revoked", "family_expired",
      "token_expired", "subject_revoked", "subject_blocked", "invalid",        "refused",
      "error"};
  return kNames[static_cast<int>(outcome)];
}

absl::string_view WidthName(core::RevocationWidth width) {
  static constexpr absl::string_view kNames[core::kRevocationWidthCount] = {"token", "family",
                                                                            "subject"};
  return kNames[static_cast<int>(width)];
}

std::string KeyState(const token::KeyInfo& key) {
  if (key.active) return "active";
  return key.retire_at == absl::InfiniteFuture() ? "verify_only" : "retiring";
}

prometheus::ClientMetric GaugeSample(double value, std::vector<prometheus::ClientMetric::Label> l) {
  prometheus::ClientMetric m;
  m.label = std::move(l);
  m.gauge.value = value;
  return m;
}

prometheus::MetricFamily GaugeFamily(std::string name, std::string help) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = prometheus::MetricType::Gauge;
  return f;
}

prometheus::MetricFamily OneGauge(std::string name, std::string help, double value) {
  prometheus::MetricFamily f = GaugeFamily(std::move(name), std::move(help));
  f.metric.push_back(GaugeSample(value, {}));
  return f;
}

double UnixSeconds(absl::Time t) { return absl::ToDoubleSeconds(t - absl::UnixEpoch()); }

// Lag of a view proved current to `as_of`: 0 when it has no other writer (InfiniteFuture),
// +Inf before its first proof.
double LagSeconds(absl::Time now, absl::Time as_of) {
  if (as_of == absl::InfiniteFuture()) return 0;
  return std::max(0.0, absl::ToDoubleSeconds(now - as_of));
}

// The key ring's gauges: keys by state, each key's age, each retiring key's retire time.
std::vector<prometheus::MetricFamily> KeyRingFamilies(const std::vector<token::KeyInfo>& keys,
                                                      absl::Time now) {
  prometheus::MetricFamily count =
      GaugeFamily("ta_signing_keys",
                  "Keys in the signing key ring, by state (active, retiring, verify_only)");
  prometheus::MetricFamily age =
      GaugeFamily("ta_signing_key_age_seconds", "Time since each key of the ring was created");
  prometheus::MetricFamily retire = GaugeFamily(
      "ta_signing_key_retire_timestamp_seconds",
      "When each rotated-out key stops verifying (Unix time; retiring keys only)");
  std::map<std::string, int> by_state = {{"active", 0}, {"retiring", 0}, {"verify_only", 0}};
  for (const token::KeyInfo& key : keys) {
    const std::string state = KeyState(key);
    ++by_state[state];
    age.metric.push_back(GaugeSample(absl::ToDoubleSeconds(now - key.created_at),
                                     {{"alg", std::string(token::AlgorithmName(key.alg))},
                                      {"kid", key.kid},
                                      {"state", state}}));
    if (key.retire_at != absl::InfiniteFuture()) {
      retire.metric.push_back(GaugeSample(
          UnixSeconds(key.retire_at),
          {{"alg", std::string(token::AlgorithmName(key.alg))}, {"kid", key.kid}}));
    }
  }
  for (const auto& [state, n] : by_state)
    count.metric.push_back(GaugeSample(n, {{"state", state}}));
  std::vector<prometheus::MetricFamily> families;
  families.push_back(std::move(count));
  families.push_back(std::move(age));
  families.push_back(std::move(retire));
  return families;
}

}  // namespace

PrometheusMetrics::PrometheusMetrics(PrometheusMetricsOptions options)
    : options_(std::move(options)), registry_(std::make_shared<prometheus::Registry>()) {}

PrometheusMetrics::~PrometheusMetrics() = default;

absl::StatusOr<std::unique_ptr<PrometheusMetrics>> PrometheusMetrics::Create(
    PrometheusMetricsOptions options) {
  if (options.clock == nullptr) return absl::InvalidArgumentError("metrics: clock is null");
  auto metrics = absl::WrapUnique(new PrometheusMetrics(std::move(options)));
  try {
    metrics->Build();
  } catch (const std::exception& e) {  // prometheus-cpp's edge: bad names or labels
    return Error(absl::StatusCode::kInternal, "internal",
                 absl::StrCat("cannot register metrics: ", e.what()));
  }
  return metrics;
}

void PrometheusMetrics::Build() {
  prometheus::Registry& r = *registry_;
  BuildCallMetrics(r);
  BuildTokenMetrics(r);
  BuildStoreMetrics(r);
  BuildProcessMetrics(r);
}

// Both faces: calls by method/endpoint and status, and their latency.
void PrometheusMetrics::BuildCallMetrics(prometheus::Registry& r) {
  rpc_requests_ = &prometheus::BuildCounter()
                       .Name("ta_grpc_requests_total")
                       .Help("gRPC calls answered, by method and status code")
                       .Register(r);
  auto& rpc_latency = prometheus::BuildHistogram()
                          .Name("ta_grpc_request_duration_seconds")
                          .Help("Time from a gRPC call's arrival to its answer, by method")
                          .Register(r);
  for (int i = 0; i < core::kOperationCount; ++i) {
    rpc_latency_[i] = &rpc_latency.Add(
        {{"method", std::string(core::OperationName(static_cast<core::Operation>(i)))}},
        LatencyBuckets());
  }
  http_requests_ = &prometheus::BuildCounter()
                        .Name("ta_http_requests_total")
                        .Help("HTTP requests answered, by endpoint and status code")
                        .Register(r);
  http_latency_ = &prometheus::BuildHistogram()
                       .Name("ta_http_request_duration_seconds")
                       .Help("Time from a complete HTTP request to its answer, by endpoint")
                       .Register(r);
}

// What happened to tokens: refreshes by outcome, revocations by width, verify-cache lookups.
void PrometheusMetrics::BuildTokenMetrics(prometheus::Registry& r) {
  auto& refresh = prometheus::BuildCounter()
                      .Name("ta_refresh_total")
                      .Help("RefreshTokens calls by outcome")
                      .Register(r);
  for (int i = 0; i < core::kRefreshOutcomeCount; ++i) {
    refresh_[i] =
        &refresh.Add({{"outcome", std::string(OutcomeName(static_cast<core::RefreshOutcome>(i)))}});
  }
  auto& revocations = prometheus::BuildCounter()
                          .Name("ta_revocations_total")
                          .Help("Revocations that changed something, by width")
                          .Register(r);
  for (int i = 0; i < core::kRevocationWidthCount; ++i) {
    revocations_[i] = &revocations.Add(
        {{"width", std::string(WidthName(static_cast<core::RevocationWidth>(i)))}});
  }
  auto& cache = prometheus::BuildCounter()
                    .Name("ta_verify_cache_lookups_total")
                    .Help("Lookups of the verified-token cache by introspection, by result")
                    .Register(r);
  verify_cache_[0] = &cache.Add({{"result", "miss"}});
  verify_cache_[1] = &cache.Add({{"result", "hit"}});
}

// The store: each operation's latency and failures.
void PrometheusMetrics::BuildStoreMetrics(prometheus::Registry& r) {
  auto& store_latency = prometheus::BuildHistogram()
                            .Name("ta_store_operation_duration_seconds")
                            .Help("Time of each store operation, by operation")
                            .Register(r);
  for (int i = 0; i < kStoreOpCount; ++i) {
    store_latency_[i] = &store_latency.Add(
        {{"operation", std::string(StoreOpName(static_cast<StoreOp>(i)))}}, LatencyBuckets());
  }
  store_errors_ = &prometheus::BuildCounter()
                       .Name("ta_store_errors_total")
                       .Help("Store operations that failed, by operation and status code")
                       .Register(r);
  // Zero from the start for the code a failing store answers (UNAVAILABLE), so the family is
  // there for dashboards and alerts before the first error (other codes appear when seen).
  for (int i = 0; i < kStoreOpCount; ++i) {
    store_errors_->Add({{"operation", std::string(StoreOpName(static_cast<StoreOp>(i)))},
                        {"code", absl::StatusCodeToString(absl::StatusCode::kUnavailable)}});
  }
}

// The process: what was built, when it started, and the last backup.
void PrometheusMetrics::BuildProcessMetrics(prometheus::Registry& r) {
  std::map<std::string, std::string> build(options_.build_info.begin(), options_.build_info.end());
  prometheus::BuildGauge()
      .Name("ta_build_info")
      .Help("Always 1; the labels say what was built")
      .Register(r)
      .Add(build)
      .Set(1);
  prometheus::BuildGauge()
      .Name("process_start_time_seconds")
      .Help("Start time of the process since the Unix epoch, in seconds")
      .Register(r)
      .Add({})
      .Set(absl::ToDoubleSeconds(options_.clock->Now() - absl::UnixEpoch()));
  if (options_.backups) {
    last_backup_ = &prometheus::BuildGauge()
                        .Name("ta_backup_last_success_timestamp_seconds")
                        .Help("When the last successful CreateBackup since start finished "
                              "(Unix time; 0: none yet)")
                        .Register(r)
                        .Add({});
  }
}

void PrometheusMetrics::OnRefresh(core::RefreshOutcome outcome) {
  refresh_[static_cast<int>(outcome)]->Increment();
}

void PrometheusMetrics::OnRevocation(core::RevocationWidth width) {
  revocations_[static_cast<int>(width)]->Increment();
}

void PrometheusMetrics::OnVerifyCache(bool hit) { verify_cache_[hit ? 1 : 0]->Increment(); }

void PrometheusMetrics::OnRpc(core::Operation op, absl::StatusCode code, absl::Duration latency) {
  const int i = static_cast<int>(op);
  const int c = static_cast<int>(code) < kGrpcCodes ? static_cast<int>(code) : 2;  // UNKNOWN
  std::atomic<prometheus::Counter*>& slot = rpc_counters_[i][c];
  prometheus::Counter* counter = slot.load(std::memory_order_acquire);
  if (counter == nullptr) {  // Family::Add returns the same series to racing callers
    counter =
        &rpc_requests_->Add({{"method", std::string(core::OperationName(op))},
                             {"code", absl::StatusCodeToString(static_cast<absl::StatusCode>(c))}});
    slot.store(counter, std::memory_order_release);
  }
  counter->Increment();
  rpc_latency_[i]->Observe(absl::ToDoubleSeconds(latency));
  if (op == core::Operation::kCreateBackup && code == absl::StatusCode::kOk &&
      last_backup_ != nullptr) {
    last_backup_->Set(UnixSeconds(options_.clock->Now()));
  }
}

void PrometheusMetrics::OnHttp(absl::string_view endpoint, int http_status,
                               absl::Duration latency) {
  const std::string name(endpoint);
  http_requests_->Add({{"endpoint", name}, {"code", absl::StrCat(http_status)}}).Increment();
  http_latency_->Add({{"endpoint", name}}, LatencyBuckets())
      .Observe(absl::ToDoubleSeconds(latency));
}

void PrometheusMetrics::OnStore(StoreOp op, absl::StatusCode code, absl::Duration latency) {
  store_latency_[static_cast<int>(op)]->Observe(absl::ToDoubleSeconds(latency));
  if (code != absl::StatusCode::kOk) {
    store_errors_
        ->Add(
            {{"operation", std::string(StoreOpName(op))}, {"code", absl::StatusCodeToString(code)}})
        .Increment();
  }
}

std::string PrometheusMetrics::Render() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  if (options_.keys) {
    for (auto& family : KeyRingFamilies(options_.keys(), options_.clock->Now())) {
      families.push_back(std::move(family));
    }
  }
  if (options_.readiness) {
    const absl::Status ready = options_.readiness();
    families.push_back(OneGauge("ta_ready",
                                "1 when the server is ready (both faces' health checks), else 0",
                                ready.ok() ? 1 : 0));
    families.push_back(OneGauge("ta_store_up", "0 when the store did not answer the last probe",
                                ReasonOf(ready) == "store_unavailable" ? 0 : 1));
  }
  if (options_.view_current_as_of) {
    families.push_back(OneGauge(
        "ta_revocation_view_lag_seconds",
        "How far behind now the revocation view is proved current (0: no other writer)",
        LagSeconds(options_.clock->Now(), options_.view_current_as_of())));
    families.push_back(OneGauge("ta_revocation_view_max_lag_seconds",
                                "The lag past which introspection answers revocations_stale",
                                absl::ToDoubleSeconds(options_.view_max_lag)));
  }
  if (options_.clock_offset) {
    if (std::optional<absl::Duration> offset = options_.clock_offset(); offset.has_value()) {
      prometheus::MetricFamily family = GaugeFamily(
          "ta_clock_offset_seconds",
          "This replica's clock minus the database's, measured at the last revocation poll");
      family.metric.push_back(GaugeSample(absl::ToDoubleSeconds(*offset), {}));
      families.push_back(std::move(family));
    }
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace ta::metrics

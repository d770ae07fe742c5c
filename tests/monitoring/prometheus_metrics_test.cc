// The series that dashboards and alerts need beyond the request counters (issue 23, item
// 14): readiness, the store's state, the revocation view's lag, key retire times and the
// time of the last backup, as PrometheusMetrics renders them.
#include "server/metrics/prometheus_metrics.h"

#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "base/clock.h"
#include "base/error.h"

namespace ta::metrics {
namespace {

std::unique_ptr<PrometheusMetrics> Make(PrometheusMetricsOptions options) {
  absl::StatusOr<std::unique_ptr<PrometheusMetrics>> m =
      PrometheusMetrics::Create(std::move(options));
  REQUIRE(m.ok());
  return *std::move(m);
}

bool Has(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST_CASE("Metrics: ta_ready and ta_store_up follow readiness and its reason", "[metrics]") {
  absl::Status ready = absl::OkStatus();
  PrometheusMetricsOptions o;
  o.readiness = [&ready] { return ready; };
  auto m = Make(o);
  CHECK(Has(m->Render(), "ta_ready 1"));
  CHECK(Has(m->Render(), "ta_store_up 1"));
  ready = Error(absl::StatusCode::kUnavailable, "revocations_stale", "stale");
  CHECK(Has(m->Render(), "ta_ready 0"));
  CHECK(Has(m->Render(), "ta_store_up 1"));
  ready = Error(absl::StatusCode::kUnavailable, "store_unavailable", "down");
  CHECK(Has(m->Render(), "ta_ready 0"));
  CHECK(Has(m->Render(), "ta_store_up 0"));
}

TEST_CASE("Metrics: the view's lag is now minus its proof, 0 without another writer",
          "[metrics]") {
  FakeClock clock;
  absl::Time as_of = clock.Now() - absl::Milliseconds(2500);
  PrometheusMetricsOptions o;
  o.clock = &clock;
  o.view_current_as_of = [&as_of] { return as_of; };
  o.view_max_lag = absl::Seconds(1);
  auto m = Make(o);
  CHECK(Has(m->Render(), "ta_revocation_view_lag_seconds 2.5"));
  CHECK(Has(m->Render(), "ta_revocation_view_max_lag_seconds 1"));
  as_of = absl::InfiniteFuture();  // RocksDB: this server is the only writer
  CHECK(Has(m->Render(), "ta_revocation_view_lag_seconds 0"));
  as_of = absl::InfinitePast();  // never proved current yet
  CHECK(Has(m->Render(), "ta_revocation_view_lag_seconds +Inf"));
}

TEST_CASE("Metrics: only retiring keys have a retire time", "[metrics]") {
  FakeClock clock;
  const absl::Time retire = absl::FromUnixSeconds(1'800'003'600);
  PrometheusMetricsOptions o;
  o.clock = &clock;
  o.keys = [&] {
    return std::vector<token::KeyInfo>{
        {"new", token::Algorithm::kES256, true, clock.Now(), absl::InfiniteFuture(), clock.Now()},
        {"old", token::Algorithm::kES256, false, clock.Now() - absl::Hours(1), retire,
         clock.Now() - absl::Hours(1)}};
  };
  const std::string text = Make(o)->Render();
  CHECK(Has(text, "ta_signing_key_retire_timestamp_seconds{alg=\"ES256\",kid=\"old\"} 1800003600"));
  CHECK(text.find("ta_signing_key_retire_timestamp_seconds{alg=\"ES256\",kid=\"new\"}") ==
        std::string::npos);
}

TEST_CASE("Metrics: a successful CreateBackup sets the last backup time, a failed one not",
          "[metrics]") {
  FakeClock clock;
  PrometheusMetricsOptions o;
  o.clock = &clock;
  o.backups = true;
  auto m = Make(o);
  CHECK(Has(m->Render(), "ta_backup_last_success_timestamp_seconds 0"));
  m->OnRpc(core::Operation::kCreateBackup, absl::StatusCode::kOk, absl::Milliseconds(200));
  CHECK(Has(m->Render(), "ta_backup_last_success_timestamp_seconds 1800000000"));
  clock.Advance(absl::Hours(1));
  m->OnRpc(core::Operation::kCreateBackup, absl::StatusCode::kResourceExhausted,
           absl::Milliseconds(1));
  m->OnRpc(core::Operation::kIssueTokens, absl::StatusCode::kOk, absl::Milliseconds(1));
  CHECK(Has(m->Render(), "ta_backup_last_success_timestamp_seconds 1800000000"));
}

TEST_CASE("Metrics: store errors are exported as zeros before the first one", "[metrics]") {
  auto m = Make(PrometheusMetricsOptions());
  CHECK(Has(m->Render(), "ta_store_errors_total{code=\"UNAVAILABLE\",operation=\"rotate\"} 0"));
  m->OnStore(StoreOp::kRotate, absl::StatusCode::kUnavailable, absl::Milliseconds(1));
  m->OnStore(StoreOp::kRotate, absl::StatusCode::kOk, absl::Milliseconds(1));
  CHECK(Has(m->Render(), "ta_store_errors_total{code=\"UNAVAILABLE\",operation=\"rotate\"} 1"));
}

TEST_CASE("Metrics: a store without backups exports no backup time", "[metrics]") {
  PrometheusMetricsOptions o;
  o.backups = false;  // PostgreSQL: CreateBackup always refuses
  auto m = Make(o);
  m->OnRpc(core::Operation::kCreateBackup, absl::StatusCode::kOk, absl::Milliseconds(1));
  CHECK(m->Render().find("ta_backup_last_success_timestamp_seconds") == std::string::npos);
}

}  // namespace
}  // namespace ta::metrics

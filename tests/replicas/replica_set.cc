#include "tests/replicas/replica_set.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace ta::testing {
namespace {

absl::StatusOr<std::string> RandomHex(size_t bytes) {
  std::ifstream in("/dev/urandom", std::ios::binary);
  std::string raw(bytes, '\0');
  if (!in.read(raw.data(), static_cast<std::streamsize>(bytes))) {
    return absl::InternalError("cannot read /dev/urandom");
  }
  return absl::BytesToHexString(raw);
}

absl::Status WritePrivateFile(const std::string& path, const std::string& content) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot create ", path));
  const bool ok = write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  close(fd);
  return ok ? absl::OkStatus() : absl::InternalError(absl::StrCat("cannot write ", path));
}

}  // namespace

absl::StatusOr<PgEnv> StartPg() {
  PgEnv env;
  absl::StatusOr<std::unique_ptr<PgCluster>> cluster = PgCluster::Start(/*watchdog=*/true);
  if (!cluster.ok()) return cluster.status();
  env.cluster = *std::move(cluster);
  absl::StatusOr<std::unique_ptr<TestDatabase>> db = TestDatabase::CreateIn(env.cluster->dsn());
  if (!db.ok()) return db.status();
  env.db = *std::move(db);
  return env;
}

std::vector<std::string> ReplicaFlags(const ReplicaSetOptions& options,
                                      const std::string& shared_dir) {
  std::vector<std::string> flags = {
      "--store=postgres",
      "--postgres_dsn=" + options.dsn,
      // The key ring lives in the store, sealed under the KEK every replica reads.
      "--key_encryption_key_file=" + shared_dir + "/kek",
      absl::StrCat("--max_revocation_lag=", absl::FormatDuration(kMaxLag)),
      // Long enough that no token of a long run expires while the test still checks it.
      "--access_ttl=2h",
  };
  flags.insert(flags.end(), options.flags.begin(), options.flags.end());
  return flags;
}

absl::StatusOr<std::unique_ptr<ReplicaSet>> ReplicaSet::Start(ReplicaSetOptions options) {
  auto set = std::unique_ptr<ReplicaSet>(new ReplicaSet());
  set->options_ = std::move(options);
  if (set->dir_.path().empty()) return absl::InternalError("no temp dir");
  absl::StatusOr<std::string> admin_key = RandomHex(32);
  if (!admin_key.ok()) return admin_key.status();
  // The KEK as `openssl rand -base64 32` writes it.
  absl::StatusOr<std::string> kek = RandomHex(32);
  if (!kek.ok()) return kek.status();
  absl::Status written = WritePrivateFile(
      set->dir_.Sub("kek"), absl::Base64Escape(absl::HexStringToBytes(*kek)) + "\n");
  if (!written.ok()) return written;
  const std::vector<std::string> flags = ReplicaFlags(set->options_, set->dir_.path());
  for (int i = 0; i < set->options_.replicas; ++i) {
    const std::string data_dir = set->dir_.Sub(absl::StrCat("replica-", i));
    std::error_code ec;
    std::filesystem::create_directories(data_dir, ec);
    chmod(data_dir.c_str(), 0700);
    // The same admin key everywhere: the server reads an existing admin.key.
    absl::Status s = WritePrivateFile(data_dir + "/admin.key", *admin_key + "\n");
    if (!s.ok()) return s;
    std::vector<std::string> own = flags;
    if (auto it = set->options_.replica_flags.find(i); it != set->options_.replica_flags.end()) {
      own.insert(own.end(), it->second.begin(), it->second.end());
    }
    set->servers_.push_back(std::make_unique<RemoteServer>(data_dir, own));
    s = set->servers_.back()->Start();
    if (!s.ok()) {
      return absl::Status(s.code(), absl::StrCat("replica ", i, ": ", s.message()));
    }
  }
  return set;
}

std::vector<RemoteServer*> ReplicaSet::all() {
  std::vector<RemoteServer*> out;
  for (auto& s : servers_) out.push_back(s.get());
  return out;
}

absl::Status ReplicaSet::Restart(int i) {
  if (servers_[i]->running()) servers_[i]->Stop(SIGKILL).IgnoreError();
  return servers_[i]->Start();
}

std::string ReplicaSet::Logs() const {
  std::string out;
  for (size_t i = 0; i < servers_.size(); ++i) {
    absl::StrAppend(&out, "--- replica ", i, " stderr:\n", servers_[i]->ReadStderr());
  }
  return out;
}

Health CheckHealth(const RemoteServer& server, absl::Duration deadline) {
  auto stub = grpc::health::v1::Health::NewStub(server.NewChannel());
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  if (!stub->Check(&ctx, req, &resp).ok()) return Health::kUnknown;
  return resp.status() == grpc::health::v1::HealthCheckResponse::SERVING ? Health::kServing
                                                                         : Health::kNotServing;
}

bool PollUntil(absl::Duration timeout, const std::function<bool()>& done, absl::Duration every) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (done()) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(every);
  }
}

std::string IntrospectWord(RemoteServer& server, const std::string& token) {
  v1::IntrospectResponse resp;
  Outcome r = server.Introspect(token, &resp);
  if (!r.ok()) return "error:" + (r.reason.empty() ? r.status.error_message() : r.reason);
  if (resp.active()) return "active";
  return resp.inactive_reason().empty() ? "inactive" : resp.inactive_reason();
}

absl::Duration Percentile(std::vector<absl::Duration>& values, double p) {
  if (values.empty()) return absl::ZeroDuration();
  std::sort(values.begin(), values.end());
  size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(rank, values.size() - 1)];
}

Fixture StartFixture(std::vector<std::string> flags, bool wait_serving) {
  Fixture fx;
  absl::StatusOr<PgEnv> pg = StartPg();
  INFO(pg.status().ToString());
  REQUIRE(pg.ok());
  fx.pg = *std::move(pg);
  ReplicaSetOptions options;
  options.dsn = fx.pg.db->dsn();
  options.flags = std::move(flags);
  absl::StatusOr<std::unique_ptr<ReplicaSet>> set = ReplicaSet::Start(options);
  INFO(set.status().ToString());
  REQUIRE(set.ok());
  fx.replicas = *std::move(set);
  for (int i = 0; wait_serving && i < fx.replicas->size(); ++i) {
    REQUIRE(PollUntil(absl::Seconds(10),
                      [&] { return CheckHealth(fx.replicas->at(i)) == Health::kServing; }));
  }
  return fx;
}

}  // namespace ta::testing

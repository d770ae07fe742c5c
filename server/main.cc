// token-authority server binary: flags -> options -> start -> wait for SIGINT/SIGTERM ->
// graceful shutdown -> close the store -> exit 0. Exit 2 for a bad flag (an unknown one, an
// unparsable value or a refused one, each named), 1 if start fails. --help lists the flags by
// group with their defaults and --version prints the version and commit; both exit 0.
// With --restore_from it restores a backup into --data_dir instead and exits (server/restore.h):
// 0 restored, 2 refused (the directory is not new, or no backup there), 1 failed.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <iostream>
#include <set>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "base/command_line.h"
#include "base/error.h"
#include "server/restore.h"
#include "server/server.h"

#ifdef TA_WITH_TCMALLOC
#include <gperftools/tcmalloc.h>
#endif

namespace {
const ta::ServerOptions kDefaults;
const ta::core::AuthorityOptions kPolicy;
}  // namespace

ABSL_FLAG(std::string, listen, kDefaults.listen, "host:port to serve on (port 0: any free port)");
ABSL_FLAG(std::string, data_dir, kDefaults.data_dir,
          "directory of the RocksDB store and of generated keys");
ABSL_FLAG(std::string, store, kDefaults.store.engine, "token store: rocksdb or postgres");
ABSL_FLAG(std::string, postgres_dsn, "",
          "with --store=postgres: libpq connection string or URI (password: prefer PGPASSFILE)");
ABSL_FLAG(int, postgres_pool_size, kDefaults.store.postgres_pool_size,
          "with --store=postgres: connections kept open");
ABSL_FLAG(std::string, key_dir, "",
          "directory of signing keys and the refresh secret "
          "(default <data_dir>/keys)");
ABSL_FLAG(std::string, key_encryption_key_file, "",
          "file with 32 random bytes, base64 (openssl rand -base64 32), mode 0600: the key ring "
          "then lives in the store, sealed under it, shared by every replica (required with "
          "--store=postgres; the same file on every replica)");
ABSL_FLAG(absl::Duration, key_publish_delay, absl::InfiniteDuration(),
          "how long a rotated-in key is in the JWKS before it signs (default: 0 with key files; "
          "with a shared ring --jwks_max_age + --max_revocation_lag)");
ABSL_FLAG(bool, allow_insecure, false, "serve plaintext on a non-loopback address");
ABSL_FLAG(std::string, signing_alg, kDefaults.signing_alg,
          "algorithm of a generated key: ES256, EdDSA, RS256, PS256");
ABSL_FLAG(absl::Duration, retired_key_window, kDefaults.retired_key_window,
          "how long a rotated-out key keeps verifying");
ABSL_FLAG(bool, allow_hs256, false, "accept HS256 keys placed in key_dir");
ABSL_FLAG(size_t, block_cache_mb, kDefaults.block_cache_mb, "RocksDB block cache size");
ABSL_FLAG(bool, sync_writes, true, "fsync the WAL before acknowledging (benchmarks only: false)");
ABSL_FLAG(int, worker_threads, kDefaults.worker_threads,
          "threads for blocking RPC work (synced writes); more share each fsync");
ABSL_FLAG(int, max_queued_calls, kDefaults.max_queued_calls,
          "calls waiting for a worker before RESOURCE_EXHAUSTED");
ABSL_FLAG(absl::Duration, shutdown_grace, kDefaults.shutdown_grace,
          "time in-flight calls get after SIGTERM");
ABSL_FLAG(std::string, issuer, "",
          "iss of issued access tokens and the HTTP metadata's issuer: the URL clients reach "
          "the HTTP face at (default: that URL, http(s)://<--public_url or --http_listen>, "
          "on one server with --http_listen on a fixed port; else token-authority)");
ABSL_FLAG(std::string, default_audience, "", "comma-separated aud used when a request names none");
ABSL_FLAG(absl::Duration, access_ttl, kPolicy.access_ttl, "access token lifetime");
ABSL_FLAG(absl::Duration, refresh_idle_ttl, kPolicy.refresh_idle_ttl,
          "refresh token idle lifetime");
ABSL_FLAG(absl::Duration, family_ttl, kPolicy.family_ttl, "absolute lifetime of a session");
ABSL_FLAG(absl::Duration, leeway, kPolicy.leeway, "clock skew allowed on exp/nbf/iat");
ABSL_FLAG(absl::Duration, reuse_grace, kPolicy.reuse_grace,
          "window in which the predecessor refresh token returns the same successor (0 = off)");
ABSL_FLAG(bool, dpop_nonce, false,
          "require RFC 9449 server nonces in DPoP proofs (use_dpop_nonce; replicas sharing the "
          "key ring agree on them)");
ABSL_FLAG(absl::Duration, dpop_max_age, kPolicy.dpop.max_age,
          "how old a DPoP proof (its iat) may be; the replay cache keeps jtis that long");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain: serve TLS");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "", "PEM CA bundle: require client certificates (mTLS)");
ABSL_FLAG(bool, tls_allow_no_client_cert, false,
          "with --tls_client_ca, also accept clients without a certificate (API key only)");
ABSL_FLAG(std::string, callers_file, "",
          "caller file (name, roles, credential); default: generated <data_dir>/admin.key");
ABSL_FLAG(std::string, http_listen, "",
          "host:port of the HTTP face (JWKS, metadata, RFC 7662/7009, /metrics, /healthz); "
          "port 0: any free port; empty: off");
ABSL_FLAG(std::string, public_url, "",
          "base of the URLs in the HTTP metadata when clients reach it under another name "
          "(default: --issuer if it is an http(s) URL, else the bound address)");
ABSL_FLAG(double, token_endpoint_rate, ta::http::PeerRateOptions().rate,
          "POST /oauth2/token: requests per second one client address may make on average "
          "(429 past it; 0: no limit; raise it behind a proxy)");
ABSL_FLAG(double, token_endpoint_burst, ta::http::PeerRateOptions().burst,
          "POST /oauth2/token: requests one client address may make at once");
ABSL_FLAG(absl::Duration, jwks_max_age, kDefaults.jwks_max_age,
          "Cache-Control max-age of the JWKS and metadata (keep below the key publish delay)");
ABSL_FLAG(size_t, verify_cache_mb, kPolicy.verify_cache_bytes >> 20,
          "memory for access tokens remembered as verified, MiB (0 disables the cache)");
ABSL_FLAG(absl::Duration, max_revocation_lag, kPolicy.max_revocation_lag,
          "with --store=postgres: how stale this replica's view of revocations may be before "
          "introspection answers UNAVAILABLE (revocations_stale) instead of guessing");
ABSL_FLAG(absl::Duration, max_clock_offset, kPolicy.max_clock_offset,
          "with --store=postgres: how far this replica's clock may be from the database's "
          "(measured at every poll) before it reports NOT_SERVING and calls no token active "
          "(clock_offset_exceeded); the reaper keeps revocations this much (+1m) past expiry");
ABSL_FLAG(absl::Duration, view_checkpoint_interval, kPolicy.view_checkpoint_interval,
          "how often the revocation view is checkpointed to <data_dir>/revocation_view.ckpt "
          "(also at clean shutdown), so a restart reads only the log after it; 0: never");
ABSL_FLAG(size_t, watch_history, kPolicy.watch_history,
          "WatchRevocations: revocations kept in memory for watchers that reconnect; one that "
          "fell further behind gets a reset and a snapshot (default 65536; 1..16777216)");
ABSL_FLAG(std::string, audit_log, "",
          "audit trail, one JSON line per security event: a file (reopened on SIGHUP), \"-\" "
          "for stdout, or \"off\"; default <data_dir>/audit.log");
ABSL_FLAG(std::string, restore_from, "",
          "restore the latest backup in this directory (made by TokenAdmin/CreateBackup) into "
          "a new --data_dir (and --key_dir), then exit; serves nothing");
ABSL_FLAG(bool, restore_json, false, "with --restore_from: report as one JSON line");
ABSL_FLAG(absl::Duration, testing_clock_offset, absl::ZeroDuration(),
          "TESTS ONLY: shift the server's clock by this much");

namespace {

constexpr int kExitUsage = 2;

std::string VersionText() {
#ifdef NDEBUG
  return ta::VersionLine("token-authority", TA_VERSION, TA_BUILD_VERSION, "optimized build");
#else
  return ta::VersionLine("token-authority", TA_VERSION, TA_BUILD_VERSION, "debug build");
#endif
}

// --help: the flags by what they are for, each with its default. Flags of main.cc not listed
// here still appear, under "other".
struct FlagGroup {
  const char* title;
  std::vector<const char*> flags;
};
const std::vector<FlagGroup>& FlagGroups() {
  static const auto* groups = new std::vector<FlagGroup>{
      {"serving", {"listen", "http_listen", "public_url", "allow_insecure", "shutdown_grace",
                   "worker_threads", "max_queued_calls", "token_endpoint_rate",
                   "token_endpoint_burst"}},
      {"store", {"data_dir", "store", "postgres_dsn", "postgres_pool_size", "block_cache_mb",
                 "sync_writes", "max_revocation_lag", "max_clock_offset",
                 "view_checkpoint_interval", "watch_history"}},
      {"signing keys", {"key_dir", "key_encryption_key_file", "key_publish_delay", "signing_alg",
                        "retired_key_window", "allow_hs256", "jwks_max_age"}},
      {"tokens", {"issuer", "default_audience", "access_ttl", "refresh_idle_ttl", "family_ttl",
                  "leeway", "reuse_grace", "verify_cache_mb", "dpop_nonce", "dpop_max_age"}},
      {"callers and TLS", {"callers_file", "tls_cert", "tls_key", "tls_client_ca",
                           "tls_allow_no_client_cert"}},
      {"audit", {"audit_log"}},
      {"restore (then exit)", {"restore_from", "restore_json"}},
  };
  return *groups;
}

std::string FlagLine(const absl::CommandLineFlag& flag) {
  std::string line = absl::StrFormat("  --%-26s %s", flag.Name(), flag.Help());
  const std::string value = flag.DefaultValue();
  if (!absl::StrContains(flag.Help(), "default")) {
    absl::StrAppend(&line, " (default: ", value.empty() ? "none" : value, ")");
  }
  return line + "\n";
}

std::string HelpText() {
  std::string text =
      "token-authority: issues, rotates, introspects and revokes JWTs (gRPC, and HTTP with "
      "--http_listen)\n\nusage: token-authority [--flag=value ...]   (also --flagfile=FILE, one "
      "flag a line)\n";
  std::set<std::string> listed = {"testing_clock_offset"};  // tests only: not advertised
  for (const FlagGroup& group : FlagGroups()) {
    absl::StrAppend(&text, "\n", group.title, ":\n");
    for (const char* name : group.flags) {
      if (const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name)) {
        absl::StrAppend(&text, FlagLine(*flag));
        listed.insert(name);
      }
    }
  }
  std::vector<std::string> other;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (absl::StrContains(flag->Filename(), "server/main.cc") &&
        listed.count(std::string(name)) == 0) {
      other.push_back(FlagLine(*flag));
    }
  }
  std::sort(other.begin(), other.end());
  if (!other.empty()) absl::StrAppend(&text, "\nother:\n", absl::StrJoin(other, ""));
  absl::StrAppend(&text,
                  "\n  --help                       this list, then exit 0\n"
                  "  --version                    the version and commit, then exit 0\n"
                  "\nA bad flag is named and exits 2; a start that fails exits 1. README: "
                  "\"Configuration\".\n");
  return text;
}

// absl::ParseCommandLine exits 1 with a terse line on an unknown flag or a bad value; the
// command line (and every --flagfile) is checked first (base/command_line.h), so that each
// mistake exits 2 naming its flag, and --help/--version are ours.
absl::StatusOr<ta::CommandLineScan> ScanArgs(int argc, char** argv) {
  ta::CommandLineRules rules;
  rules.program = "token-authority";
  rules.expand_flagfile = true;
  rules.unknown_flag_hint = " (--help lists them)";
  return ta::ScanCommandLine(std::vector<std::string>(argv + 1, argv + argc), rules);
}

ta::ServerOptions OptionsFromFlags(ta::OffsetClock* clock) {
  ta::ServerOptions o;
  o.listen = absl::GetFlag(FLAGS_listen);
  o.data_dir = absl::GetFlag(FLAGS_data_dir);
  o.store.engine = absl::GetFlag(FLAGS_store);
  o.store.postgres_dsn = absl::GetFlag(FLAGS_postgres_dsn);
  o.store.postgres_pool_size = absl::GetFlag(FLAGS_postgres_pool_size);
  o.key_dir = absl::GetFlag(FLAGS_key_dir);
  o.key_encryption_key_file = absl::GetFlag(FLAGS_key_encryption_key_file);
  if (absl::Duration d = absl::GetFlag(FLAGS_key_publish_delay); d != absl::InfiniteDuration()) {
    o.key_publish_delay = d;
  }
  o.allow_insecure = absl::GetFlag(FLAGS_allow_insecure);
  o.signing_alg = absl::GetFlag(FLAGS_signing_alg);
  o.retired_key_window = absl::GetFlag(FLAGS_retired_key_window);
  o.allow_hs256 = absl::GetFlag(FLAGS_allow_hs256);
  o.block_cache_mb = absl::GetFlag(FLAGS_block_cache_mb);
  o.sync_writes = absl::GetFlag(FLAGS_sync_writes);
  o.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  o.worker_threads = absl::GetFlag(FLAGS_worker_threads);
  o.max_queued_calls = absl::GetFlag(FLAGS_max_queued_calls);
  o.authority.issuer = absl::GetFlag(FLAGS_issuer);
  o.authority.default_audience =
      absl::StrSplit(absl::GetFlag(FLAGS_default_audience), ',', absl::SkipEmpty());
  o.authority.access_ttl = absl::GetFlag(FLAGS_access_ttl);
  o.authority.refresh_idle_ttl = absl::GetFlag(FLAGS_refresh_idle_ttl);
  o.authority.family_ttl = absl::GetFlag(FLAGS_family_ttl);
  o.authority.leeway = absl::GetFlag(FLAGS_leeway);
  o.authority.reuse_grace = absl::GetFlag(FLAGS_reuse_grace);
  o.authority.dpop_nonce = absl::GetFlag(FLAGS_dpop_nonce);
  o.authority.dpop.max_age = absl::GetFlag(FLAGS_dpop_max_age);
  o.authority.verify_cache_bytes = absl::GetFlag(FLAGS_verify_cache_mb) << 20;
  o.authority.clock = clock;
  o.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  o.tls_key = absl::GetFlag(FLAGS_tls_key);
  o.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  o.tls_allow_no_client_cert = absl::GetFlag(FLAGS_tls_allow_no_client_cert);
  o.callers_file = absl::GetFlag(FLAGS_callers_file);
  o.audit_log = absl::GetFlag(FLAGS_audit_log);
  o.authority.max_revocation_lag = absl::GetFlag(FLAGS_max_revocation_lag);
  o.authority.max_clock_offset = absl::GetFlag(FLAGS_max_clock_offset);
  o.authority.view_checkpoint_interval = absl::GetFlag(FLAGS_view_checkpoint_interval);
  o.authority.watch_history = absl::GetFlag(FLAGS_watch_history);
  o.http_listen = absl::GetFlag(FLAGS_http_listen);
  o.public_url = absl::GetFlag(FLAGS_public_url);
  o.jwks_max_age = absl::GetFlag(FLAGS_jwks_max_age);
  o.token_rate.rate = absl::GetFlag(FLAGS_token_endpoint_rate);
  o.token_rate.burst = absl::GetFlag(FLAGS_token_endpoint_burst);
  return o;
}

// --restore_from: restore, report, exit.
int Restore() {
  ta::RestoreOptions options;
  options.backup_dir = absl::GetFlag(FLAGS_restore_from);
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.key_dir = absl::GetFlag(FLAGS_key_dir);
  if (absl::GetFlag(FLAGS_store) != "rocksdb") {
    std::cerr << "token-authority: --restore_from restores the embedded RocksDB store; for "
                 "PostgreSQL use its own tools (README, \"Backup and restore\")\n";
    return 2;
  }
  absl::StatusOr<ta::RestoreReport> report = ta::RestoreBackup(options);
  if (!report.ok()) {
    std::cerr << "token-authority: restore: " << ta::ReasonOf(report.status()) << ": "
              << report.status().message() << "\n";
    return ta::RestoreRefused(report.status()) ? 2 : 1;
  }
  std::cout << (absl::GetFlag(FLAGS_restore_json) ? ta::RestoreReportJson(*report)
                                                   : ta::RestoreReportText(*report, options))
            << std::flush;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("token-authority: issues, rotates, introspects and revokes JWTs");
  absl::FlagsUsageConfig usage;
  usage.version_string = [] { return VersionText(); };
  absl::SetFlagsUsageConfig(usage);
  absl::StatusOr<ta::CommandLineScan> scan = ScanArgs(argc, argv);
  if (!scan.ok()) {
    std::cerr << "token-authority: " << scan.status().message() << "\n";
    return kExitUsage;
  }
  if (scan->help) {
    std::cout << HelpText();
    return 0;
  }
  if (scan->version) {
    std::cout << VersionText();
    return 0;
  }
  absl::ParseCommandLine(argc, argv);
  // Debian's Abseil keeps mutex deadlock detection on: a lock-graph update on every lock,
  // measurable on the introspection hot path. Our lock order is tested, not traced.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  if (!absl::GetFlag(FLAGS_restore_from).empty()) return Restore();

  // A reader of stdout that went away (`| head -1`, a test that read the listening line)
  // must not kill the server with SIGPIPE when it prints the next line.
  signal(SIGPIPE, SIG_IGN);
  // Block the signals we handle before any thread exists, so only the waiter below sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ta::OffsetClock clock(absl::GetFlag(FLAGS_testing_clock_offset));
  ta::ServerOptions options = OptionsFromFlags(&clock);
  if (absl::Status s = ta::ValidateServerOptions(options); !s.ok()) {
    std::cerr << "token-authority: " << s.message() << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<ta::Server>> server = ta::Server::Start(options);
  if (!server.ok()) {
    std::cerr << "token-authority: cannot start: " << server.status().message() << "\n";
    return 1;
  }
#ifdef TA_WITH_TCMALLOC
  std::cerr << "token-authority: allocator tcmalloc (" << tc_version(nullptr, nullptr, nullptr)
            << ")\n";
#endif
  std::cout << "listening on " << (*server)->address() << std::endl;
  if ((*server)->http_port() != 0) {
    std::cout << "http listening on " << (*server)->http_address() << std::endl;
  }
  if ((*server)->http_port() != 0 && !absl::StartsWith(options.authority.issuer, "https://") &&
      !absl::StartsWith(options.authority.issuer, "http://")) {
    std::cerr << "token-authority: warning: --issuer=" << options.authority.issuer
              << " is not a URL: OIDC discovery clients (go-oidc, Spring issuer-uri) refuse "
                 "its metadata; set --issuer to the URL they reach the HTTP face at (README, "
                 "\"The HTTP face\")\n";
  }

  std::thread waiter([&] {
    int signal = 0;
    while (sigwait(&signals, &signal) == 0 && signal == SIGHUP) {
      absl::Status reopened = (*server)->ReopenAuditLog();  // logrotate moved it
      std::cerr << "token-authority: SIGHUP, audit log reopened: " << reopened.ToString() << "\n";
    }
    std::cerr << "token-authority: signal " << signal << ", shutting down\n";
    (*server)->Shutdown(options.shutdown_grace);
  });
  (*server)->Wait();
  waiter.join();
  server->reset();  // closes the store after the last call finished
  std::cerr << "token-authority: stopped\n";
  return 0;
}

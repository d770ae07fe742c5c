// Every width of revocation reaches every kind of local verifier across replicas under mixed
// load (issue 25 item 5): while three PostgreSQL replicas serve a mixed load (issue, refresh,
// revoke, replay, introspect from three threads), revocations of each width — a jti
// (RevokeToken), a family (RevokeFamily), reuse detection (a replayed refresh token), a
// subject cutoff (RevokeSubject) — made on replicas 1 and 2 turn inactive in five consumers
// following replica 0, each polled by a thread of its own:
//   library       client::LocalVerifier in this process (the baseline),
//   sidecar-grpc  the ta-verifier-sidecar binary's gRPC Introspect,
//   sidecar-http  the same process's RFC 7662 POST /oauth2/introspect,
//   python        client/python/local_verifier.py run as its command line does (a token a
//                 line on stdin, an answer a line on stdout),
//   node          client/node/local_verifier.js behind tests/replicas/verifier_probe.js.
// Timed from each revocation's acknowledgement; p50/p99/max printed per consumer. Then every
// consumer answers as replica 0's Introspect for every token the test knows.
//
// A hidden case ("[.verifier_consumers]"): tests/replicas/consumers_test.sh runs it (CTest
// replicas_verifier_consumers) with the Python stubs and node_modules it prepares. 6 rounds
// of the four widths (24 revocations); --long or --consumer_rounds N for more.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/error.h"
#include "client/verifier.h"
#include "tests/http/http_client.h"
#include "tests/replicas/flags.h"
#include "tests/replicas/line_child.h"
#include "tests/replicas/replica_set.h"
#include "tests/replicas/samples.h"
#include "tests/replicas/workload.h"
#include "tests/support/local_verifier.h"

namespace ta::testing {
namespace {

constexpr char kIssuer[] = "ta-replicas";
constexpr absl::Duration kBound = absl::Seconds(1);  // the product's: "within a second"
constexpr absl::Duration kStaleness = absl::Seconds(1);
constexpr absl::Duration kMargin = absl::Seconds(1);

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

// One consumer. `ask` answers a token with "active", an inactive reason ("inactive" when the
// face gives none), "stale" (fails closed) or "error:..."; one thread calls it at a time.
struct Consumer {
  std::string name;
  std::function<std::string(const std::string&)> ask;
  std::vector<absl::Duration> took{};
  // Answers "active" later than ack + the bound, + lag + staleness + margin; fail-closed
  // answers while waiting.
  int64_t over_bound = 0, late_active = 0, stale = 0;
};

std::string LibraryWord(const client::LocalVerifier& v, const std::string& token) {
  absl::StatusOr<token::AccessDecision> d = v.Verify(token);
  const std::string reason = ::ta::ReasonOf(d.status());
  if (!d.ok()) return reason == "revocations_stale" ? "stale" : "error:" + reason;
  return d->active ? "active" : d->inactive_reason;
}

std::string ProbeWord(LineChild& probe, const std::string& token) {
  std::string line = probe.Ask(token);
  if (line == "active") return line;
  if (line == "inactive revocations_stale") return "stale";
  if (absl::StartsWith(line, "inactive ")) return line.substr(9);
  return "error:" + line;
}

std::string SidecarGrpcWord(v1::TokenAuthority::Stub& stub, const std::string& token) {
  v1::IntrospectRequest req;
  req.set_token(token);
  req.set_include_reason(true);
  v1::IntrospectResponse resp;
  Outcome r = Call("", stub, &v1::TokenAuthority::Stub::Introspect, req, &resp);
  if (!r.ok()) return r.reason == "revocations_stale" ? "stale" : "error:" + r.reason;
  return resp.active() ? "active" : resp.inactive_reason();
}

std::string SidecarHttpWord(const std::string& address, const std::string& token) {
  absl::StatusOr<HttpAnswer> a =
      Fetch(address, "POST", "/oauth2/introspect",
            "Content-Type: application/x-www-form-urlencoded\r\n", "token=" + token);
  if (!a.ok()) return "error:" + a.status().ToString();
  if (a->status == 503) return "stale";
  if (a->status != 200) return absl::StrCat("error:http ", a->status);
  if (absl::StartsWith(a->body, "{\"active\":true")) return "active";
  return a->body == "{\"active\":false}" ? "inactive" : "error:" + a->body;
}

// Polls `c` for every sample until each is inactive (or `give_up`), recording the delays.
void Measure(Consumer& c, const std::vector<std::unique_ptr<RevocationSample>>& samples,
             absl::Time give_up) {
  std::vector<bool> done(samples.size(), false);
  for (size_t pending = samples.size(); pending > 0 && absl::Now() < give_up;) {
    for (size_t i = 0; i < samples.size(); ++i) {
      const int64_t ack_us = done[i] ? 0 : samples[i]->ack_us.load();
      if (ack_us == 0) continue;
      const absl::Time ack = absl::FromUnixMicros(ack_us), asked = absl::Now();
      const std::string word = c.ask(samples[i]->token);
      if (word == "active") {
        if (asked > ack + kBound) ++c.over_bound;
        if (asked > ack + kMaxLag + kStaleness + kMargin) ++c.late_active;
      } else if (word == "stale" || absl::StartsWith(word, "error:")) {
        ++c.stale;
      } else {
        c.took.push_back(std::max(absl::ZeroDuration(), absl::Now() - ack));
        done[i] = true;
        --pending;
      }
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
}

const char* Env(const char* name) {
  const char* value = std::getenv(name);
  INFO(name << " is not set: run this case through tests/replicas/consumers_test.sh (CTest "
               "replicas_verifier_consumers), which prepares the Python and Node examples");
  REQUIRE(value != nullptr);
  return value;
}

std::unique_ptr<LineChild> StartChild(const std::vector<std::string>& argv,
                                      const std::map<std::string, std::string>& env = {}) {
  absl::StatusOr<std::unique_ptr<LineChild>> child = LineChild::Start(argv, env);
  INFO(absl::StrJoin(argv, " ") << ": " << child.status().ToString());
  REQUIRE(child.ok());
  return *std::move(child);
}

// The sidecar's two addresses, from its first two lines.
std::pair<std::string, std::string> SidecarAddresses(LineChild& sidecar) {
  absl::StatusOr<std::string> grpc_line = sidecar.ReadLine();
  absl::StatusOr<std::string> http_line = sidecar.ReadLine();
  INFO(sidecar.Stderr());
  REQUIRE(grpc_line.ok());
  REQUIRE(http_line.ok());
  const std::string grpc_prefix = "ta-verifier-sidecar listening on ";
  const std::string http_prefix = "ta-verifier-sidecar http on ";
  REQUIRE(absl::StartsWith(*grpc_line, grpc_prefix));
  REQUIRE(absl::StartsWith(*http_line, http_prefix));
  return {grpc_line->substr(grpc_prefix.size()), http_line->substr(http_prefix.size())};
}

void Report(Consumer& c, size_t samples) {
  const absl::Duration p50 = Percentile(c.took, 50), p99 = Percentile(c.took, 99),
                       max = Percentile(c.took, 100);
  std::cout << "verifier_consumers: " << c.name << ": " << c.took.size() << "/" << samples
            << " revocations inactive: p50 " << Ms(p50) << " ms, p99 " << Ms(p99) << " ms, max "
            << Ms(max) << " ms; active past 1 s " << c.over_bound << ", stale answers " << c.stale
            << "\n";
  INFO(c.name);
  CHECK(c.took.size() == samples);
  CHECK(c.late_active == 0);
  CHECK(max <= kBound);  // measured ~0.1 s on a loaded 2-core machine: 9x the headroom
  CHECK(c.over_bound == 0);
}

TEST_CASE(
    "Verifier consumers on replicas: every width made on replicas 1 and 2 turns inactive in "
    "the sidecar (gRPC and HTTP), the Python and the Node examples following replica 0",
    "[.verifier_consumers]") {
  const std::string python = Env("TA_PROBE_PYTHON"), pythonpath = Env("TA_PROBE_PYTHONPATH"),
                    python_script = Env("TA_PROBE_PYTHON_SCRIPT"),
                    node_script = Env("TA_PROBE_NODE_SCRIPT"), proto_dir = Env("TA_PROTO_DIR");
  const absl::Time started = absl::Now();
  Fixture fx = StartFixture({absl::StrCat("--issuer=", kIssuer)}, /*wait_serving=*/true);
  ReplicaSet& rs = *fx.replicas;
  const std::string address = rs.at(0).address(), key_file = rs.at(0).data_dir() + "/admin.key";

  std::unique_ptr<client::LocalVerifier> library =
      StartVerifier(VerifierOptions(address, rs.at(0).admin_key(), kIssuer));
  std::unique_ptr<LineChild> sidecar =
      StartChild({TA_SIDECAR_BINARY, "--listen=127.0.0.1:0", "--http_listen=127.0.0.1:0",
                  "--authority=" + address, "--api_key_file=" + key_file,
                  absl::StrCat("--issuer=", kIssuer), "--audience=api"});
  const auto [sidecar_grpc, sidecar_http] = SidecarAddresses(*sidecar);
  auto sidecar_stub = v1::TokenAuthority::NewStub(
      grpc::CreateChannel(sidecar_grpc, grpc::InsecureChannelCredentials()));
  std::unique_ptr<LineChild> py =
      StartChild({python, "-u", python_script, address, key_file, kIssuer, "api"},
                 {{"PYTHONPATH", pythonpath}});
  std::unique_ptr<LineChild> node = StartChild(
      {"node", node_script, address, key_file, kIssuer, "api"}, {{"TA_PROTO_DIR", proto_dir}});
  std::vector<Consumer> consumers = {
      {"library", [&](const std::string& t) { return LibraryWord(*library, t); }},
      {"sidecar-grpc", [&](const std::string& t) { return SidecarGrpcWord(*sidecar_stub, t); }},
      {"sidecar-http", [&](const std::string& t) { return SidecarHttpWord(sidecar_http, t); }},
      {"python", [&](const std::string& t) { return ProbeWord(*py, t); }},
      {"node", [&](const std::string& t) { return ProbeWord(*node, t); }},
  };

  // The mixed load, on every replica, from three threads.
  BackgroundLoad load(/*workers=*/3, /*first_index=*/0, /*first_seed=*/31, rs.all());

  std::vector<std::unique_ptr<RevocationSample>> samples;
  for (int k = 0; k < g_consumer_rounds; ++k) {
    for (const char* kind : {"jti", "family", "subject", "reuse"}) {
      samples.push_back(
          MakeRevocationSample("vc", kind, k, rs.at(1 + k % 2), rs.at(1 + (k + 1) % 2)));
    }
  }
  std::vector<std::string> live;
  for (int k = 0; k < 4; ++k) {
    v1::TokenPair pair;
    REQUIRE(rs.at(1 + k % 2).Issue(absl::StrCat("vc-live-", k), &pair).ok());
    live.push_back(pair.access_token());
  }
  // Every consumer is current and calls each sample active before any revocation.
  for (Consumer& c : consumers) {
    INFO(c.name << " "
                << (c.name == "python" ? py->Stderr()
                    : c.name == "node" ? node->Stderr()
                                       : sidecar->Stderr()));
    for (const auto& s : samples) {
      REQUIRE(PollUntil(absl::Seconds(20), [&] { return c.ask(s->token) == "active"; }));
    }
  }

  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  std::vector<std::thread> pollers;
  for (Consumer& c : consumers) pollers.emplace_back([&] { Measure(c, samples, give_up); });
  for (auto& s : samples) {
    Outcome r = s->revoke();
    INFO(s->kind << ": " << r.status.error_message());
    CHECK(r.ok());
    if (r.ok()) s->ack_us.store(absl::ToUnixMicros(absl::Now()));
    absl::SleepFor(absl::Milliseconds(40));
  }
  for (std::thread& t : pollers) t.join();
  load.Stop();
  const WorkloadTally tally = load.Tally();
  for (Consumer& c : consumers) Report(c, samples.size());

  // Every acknowledged write is now older than the lag: each consumer answers as replica 0.
  absl::SleepFor(kMaxLag + absl::Milliseconds(500));
  std::vector<std::pair<std::string, std::string>> expected;  // token, replica 0's word
  for (const std::string& t : live) expected.emplace_back(t, IntrospectWord(rs.at(0), t));
  for (auto& s : samples) expected.emplace_back(s->token, IntrospectWord(rs.at(0), s->token));
  for (auto& w : load.workers()) {
    INFO(absl::StrJoin(w->errors(), "\n"));
    CHECK(w->errors().empty());
    for (FamilyFacts& f : w->families()) {
      for (const std::string& t : f.access) expected.emplace_back(t, IntrospectWord(rs.at(0), t));
    }
  }
  for (Consumer& c : consumers) {
    int64_t differ = 0;
    for (const auto& [token, server] : expected) {
      std::string word = c.ask(token);
      // Failing closed for a moment (replica 0's follower lagging on a loaded machine) is by
      // design: ask again, for up to 5 s.
      for (int i = 0; i < 250 && word == "stale"; ++i) {
        absl::SleepFor(absl::Milliseconds(20));
        word = c.ask(token);
      }
      // The HTTP face gives no reason; the examples name only the revocation reasons.
      const bool same =
          c.name == "sidecar-http" ? (word == "active") == (server == "active") : word == server;
      if (!same) ++differ;
      if (!same) UNSCOPED_INFO(c.name << ": " << word << ", replica 0: " << server);
    }
    INFO(c.name);
    CHECK(differ == 0);
  }
  for (auto& s : samples) CHECK(IntrospectWord(rs.at(0), s->token) == s->reason);
  std::cout << "verifier_consumers: " << samples.size() << " revocations (" << g_consumer_rounds
            << " rounds of jti, family, subject, reuse) on replicas 1/2; " << expected.size()
            << " tokens compared per consumer; load (3 threads over 3 replicas, "
            << Ms(load.duration()) / 1000 << " s): " << tally.ToString() << ", "
            << static_cast<int>(tally.writes_acked() / absl::ToDoubleSeconds(load.duration()))
            << " writes/s; wall " << Ms(absl::Now() - started) / 1000 << " s\n";
}

}  // namespace
}  // namespace ta::testing

// ta-loadgen: drives a token-authority server with N channels x M calls in flight (async
// completion-queue API, one thread per channel group) and prints throughput and latency
// percentiles. Loopback only; every run is bounded by --duration and --count.
//
// Scenarios:
//   health               grpc.health.v1.Health/Check: the "empty handler" baseline
//   introspect_same      Introspect of one access token (verification cache warm)
//   introspect_distinct  Introspect of pre-issued tokens, each used once (cache cold)
//   refresh              RefreshTokens, each call a fresh pre-issued refresh token
//   issue                IssueTokens for distinct subjects
// Pre-issuing (for introspect_* and refresh) is done before the clock starts.
//
// Measured calls go through the generic stub with requests serialized before the clock
// starts, and answers are not parsed (h2load's approach): the generator shares the cores
// with the server, so its own per-call cost must be as small, and as alike across
// scenarios, as it can be. Status is checked on every call; Introspect answers are checked
// for active=true from their first bytes (field 1, serialized first).
#include <grpcpp/alarm.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <functional>
#include <iostream>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tokenauthority/v1/token_authority.grpc.pb.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051",
          "server address (loopback only); several, comma-separated: channel i goes to the "
          "(i mod n)-th (replicas sharing one store; the figures are the aggregate)");
ABSL_FLAG(std::string, api_key_file, "", "file holding the API key (e.g. data/admin.key)");
ABSL_FLAG(std::string, scenario, "health",
          "health | introspect_same | introspect_distinct | refresh | issue");
ABSL_FLAG(int, channels, 4, "client channels (connections)");
ABSL_FLAG(int, inflight, 32, "calls in flight per channel");
ABSL_FLAG(int, threads, 2, "client threads (each drives its own completion queue)");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "measured time, at most");
ABSL_FLAG(int64_t, count, 0, "stop after this many calls (0: duration only; pre-issued "
                             "scenarios default to 20000)");
ABSL_FLAG(double, rate, 0, "target calls/s across all channels (0: as fast as possible)");
ABSL_FLAG(std::string, issue_at, "",
          "pre-issue tokens at this server instead (loopback), e.g. the authority when --server "
          "is a verifier sidecar, which answers Introspect but refuses IssueTokens");
ABSL_FLAG(bool, print_token, false,
          "issue one token pair and print its access token (for h2load request bodies)");

namespace {

namespace v1 = ::tokenauthority::v1;
namespace health = ::grpc::health::v1;

struct Outcome {
  int64_t calls = 0;
  int64_t errors = 0;
  absl::Duration elapsed;
  std::vector<uint32_t> latencies_us;
  std::string first_error;
};

// Starts call number `seq` on `channel` and returns a reader whose Finish the driver calls.
// Type-erased over the response type by the templated driver below.
template <typename Resp>
using Starter = std::function<std::unique_ptr<grpc::ClientAsyncResponseReader<Resp>>(
    grpc::ClientContext*, grpc::CompletionQueue*, size_t channel, int64_t seq)>;

// Completion-queue tags: the slot index, with this bit set for a pacing alarm.
constexpr uintptr_t kAlarmBit = uintptr_t{1} << 62;

template <typename Resp>
struct Slot {
  grpc::Alarm alarm;  // paced runs: fires when the slot's next call is due
  std::unique_ptr<grpc::ClientContext> ctx;
  Resp resp;
  grpc::Status status;
  std::unique_ptr<grpc::ClientAsyncResponseReader<Resp>> reader;
  absl::Time started;
  // Paced runs: when this call was due. A call that was already overdue when its slot's
  // previous call finished (the server fell behind) is measured from here, so the server
  // is charged for the wait (no coordinated omission). A call started by its alarm is
  // measured from when it started: gRPC alarms fire up to about a millisecond late, and
  // that lateness is the generator's, not the server's.
  absl::Time due;
  bool overdue = false;
  size_t channel = 0;
};

struct Shared {
  std::atomic<int64_t> next_seq{0};
  int64_t limit = 0;  // 0: none
  absl::Time deadline;
  absl::Duration interval;  // per-slot pacing when --rate is set
  std::string api_key;
};

template <typename Resp>
void RunThread(const Starter<Resp>& start, std::vector<size_t> channels, int inflight,
               int thread_index, int threads, Shared* shared, Outcome* out,
               std::function<void(int64_t, const Resp&)> sink) {
  grpc::CompletionQueue cq;
  std::vector<Slot<Resp>> slots(channels.size() * inflight);
  std::vector<int64_t> seqs(slots.size());
  auto launch = [&](size_t i) -> bool {
    int64_t seq = shared->next_seq.fetch_add(1);
    if ((shared->limit > 0 && seq >= shared->limit) || absl::Now() >= shared->deadline) {
      return false;
    }
    Slot<Resp>& s = slots[i];
    s.ctx = std::make_unique<grpc::ClientContext>();
    s.ctx->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    if (!shared->api_key.empty()) s.ctx->AddMetadata("authorization", "Bearer " + shared->api_key);
    s.started = absl::Now();
    seqs[i] = seq;
    s.reader = start(s.ctx.get(), &cq, s.channel, seq);
    s.reader->Finish(&s.resp, &s.status, reinterpret_cast<void*>(i));
    return true;
  };
  size_t live = 0;
  const bool paced = shared->interval > absl::ZeroDuration();
  const absl::Time begin = absl::Now();
  for (size_t i = 0; i < slots.size(); ++i) {
    slots[i].channel = channels[i % channels.size()];
    if (paced) {
      // Spread the slots' phases evenly over one interval (across all threads), so calls
      // arrive at a steady rate instead of every slot firing at once.
      const size_t global = i * threads + thread_index;
      const size_t total = slots.size() * threads;
      slots[i].due = begin + shared->interval * (static_cast<double>(global) / total);
      slots[i].alarm.Set(&cq, absl::ToChronoTime(slots[i].due),
                         reinterpret_cast<void*>(i | kAlarmBit));
      ++live;
    } else if (launch(i)) {
      ++live;
    }
  }
  void* tag;
  bool ok;
  while (live > 0 && cq.Next(&tag, &ok)) {
    const uintptr_t raw = reinterpret_cast<uintptr_t>(tag);
    if (raw & kAlarmBit) {  // a paced slot is due: never sleep in this loop
      slots[raw & ~kAlarmBit].overdue = false;
      if (!launch(raw & ~kAlarmBit)) --live;
      continue;
    }
    size_t i = raw;
    Slot<Resp>& s = slots[i];
    absl::Time now = absl::Now();
    const absl::Time from = paced && s.overdue ? s.due : s.started;
    out->latencies_us.push_back(static_cast<uint32_t>(absl::ToInt64Microseconds(now - from)));
    ++out->calls;
    if (!s.status.ok()) {
      if (out->errors++ == 0) out->first_error = s.status.error_message();
    } else if (sink) {
      sink(seqs[i], s.resp);
    }
    if (paced) {
      s.due += shared->interval;
      if (s.due > now) {
        s.alarm.Set(&cq, absl::ToChronoTime(s.due), reinterpret_cast<void*>(i | kAlarmBit));
        continue;
      }
      s.overdue = true;  // starts at once, and is charged from its due time
    }
    if (!launch(i)) --live;
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

// Runs `start` over all channels/threads until the count or deadline; merges outcomes.
template <typename Resp>
Outcome Drive(const Starter<Resp>& start, size_t channels, int64_t limit,
              std::function<void(int64_t, const Resp&)> sink = nullptr, bool measured = true) {
  const int threads = std::max(1, absl::GetFlag(FLAGS_threads));
  const int inflight = std::max(1, absl::GetFlag(FLAGS_inflight));
  Shared shared;
  shared.limit = limit;
  absl::Time begin = absl::Now();
  // Set-up runs (pre-issuing) are bounded by a generous fixed time instead of --duration.
  shared.deadline = begin + (measured ? absl::GetFlag(FLAGS_duration) : absl::Minutes(5));
  const double rate = absl::GetFlag(FLAGS_rate);
  if (measured && rate > 0) {
    shared.interval = absl::Seconds(static_cast<double>(channels * inflight) / rate);
  }
  std::ifstream key_in(absl::GetFlag(FLAGS_api_key_file));
  std::getline(key_in, shared.api_key);
  std::vector<Outcome> outs(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    std::vector<size_t> mine;
    for (size_t c = t; c < channels; c += threads) mine.push_back(c);
    if (mine.empty()) continue;
    workers.emplace_back(RunThread<Resp>, std::cref(start), mine, inflight, t, threads, &shared,
                         &outs[t],
                         sink);
  }
  for (std::thread& w : workers) w.join();
  Outcome total;
  total.elapsed = absl::Now() - begin;
  for (Outcome& o : outs) {
    total.calls += o.calls;
    total.errors += o.errors;
    if (total.first_error.empty()) total.first_error = o.first_error;
    total.latencies_us.insert(total.latencies_us.end(), o.latencies_us.begin(),
                              o.latencies_us.end());
  }
  return total;
}

grpc::ByteBuffer Serialized(const google::protobuf::MessageLite& message) {
  grpc::Slice slice(message.SerializeAsString());
  return grpc::ByteBuffer(&slice, 1);
}

// IntrospectResponse{active = true} serializes as 0x08 0x01 before any other field.
bool AnswersActive(const grpc::ByteBuffer& response) {
  grpc::Slice slice;
  if (!response.TrySingleSlice(&slice).ok() && !response.DumpToSingleSlice(&slice).ok()) {
    return false;
  }
  return slice.size() >= 2 && slice.begin()[0] == 0x08 && slice.begin()[1] == 0x01;
}

// Measured calls: `method` with the pre-serialized request `request(seq)`.
Starter<grpc::ByteBuffer> RawCall(const std::vector<std::unique_ptr<grpc::GenericStub>>& stubs,
                                  const std::string& method,
                                  std::function<grpc::ByteBuffer(int64_t seq)> request) {
  return [&stubs, &method, request](grpc::ClientContext* ctx, grpc::CompletionQueue* cq,
                                    size_t ch, int64_t seq) {
    auto reader = stubs[ch]->PrepareUnaryCall(ctx, method, request(seq), cq);
    reader->StartCall();
    return reader;
  };
}

uint32_t Percentile(std::vector<uint32_t>& v, double p) {
  if (v.empty()) return 0;
  size_t k = std::min(v.size() - 1, static_cast<size_t>(p * v.size()));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

void Report(const std::string& scenario, Outcome& o) {
  double secs = absl::ToDoubleSeconds(o.elapsed);
  std::cout << absl::StrFormat(
                   "scenario=%s calls=%d errors=%d seconds=%.2f rps=%.0f p50_us=%u p99_us=%u "
                   "p999_us=%u",
                   scenario, o.calls, o.errors, secs, o.calls / secs,
                   Percentile(o.latencies_us, 0.50), Percentile(o.latencies_us, 0.99),
                   Percentile(o.latencies_us, 0.999))
            << std::endl;
  if (o.errors > 0) std::cerr << "first error: " << o.first_error << "\n";
}

// Pre-issues `n` token pairs (not measured) with distinct subjects.
std::vector<v1::TokenPair> PreIssue(const std::vector<std::unique_ptr<v1::TokenAuthority::Stub>>& api,
                                    int64_t n, const std::string& tag) {
  std::vector<v1::TokenPair> pairs(n);
  Starter<v1::TokenPair> start = [&](grpc::ClientContext* ctx, grpc::CompletionQueue* cq,
                                     size_t ch, int64_t seq) {
    v1::IssueTokensRequest req;
    req.set_subject(absl::StrCat("load-", tag, "-", seq));
    req.set_client_id("loadgen");
    req.set_scope("read write");
    return api[ch]->AsyncIssueTokens(ctx, req, cq);
  };
  Outcome o = Drive<v1::TokenPair>(
      start, api.size(), n, [&](int64_t seq, const v1::TokenPair& p) { pairs[seq] = p; },
      /*measured=*/false);
  if (o.errors > 0 || o.calls < n) {
    std::cerr << "pre-issue failed (" << o.errors << " errors of " << o.calls
              << "): " << o.first_error << "\n";
    std::exit(3);
  }
  return pairs;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // As in the server: Debian's Abseil traces every lock gRPC takes unless told not to, and
  // the generator's own cost shares the two cores with the server it measures.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const std::vector<std::string> servers =
      absl::StrSplit(absl::GetFlag(FLAGS_server), ',', absl::SkipEmpty());
  for (const std::string& server : servers) {
    if (!absl::StartsWith(server, "127.") && !absl::StartsWith(server, "localhost:") &&
        !absl::StartsWith(server, "[::1]:")) {
      std::cerr << "--server: the load generator only targets loopback addresses\n";
      return 2;
    }
  }
  if (servers.empty()) {
    std::cerr << "--server: give at least one address\n";
    return 2;
  }
  const std::string scenario = absl::GetFlag(FLAGS_scenario);
  const size_t n_channels = std::max(1, absl::GetFlag(FLAGS_channels));
  std::vector<std::unique_ptr<v1::TokenAuthority::Stub>> api;
  std::vector<std::unique_ptr<grpc::GenericStub>> raw;
  for (size_t i = 0; i < n_channels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("loadgen.channel", static_cast<int>(i));  // distinct args: distinct connections
    auto channel = grpc::CreateCustomChannel(servers[i % servers.size()],
                                             grpc::InsecureChannelCredentials(), args);
    api.push_back(v1::TokenAuthority::NewStub(channel));
    raw.push_back(std::make_unique<grpc::GenericStub>(channel));
  }
  std::vector<std::unique_ptr<v1::TokenAuthority::Stub>> issue_api;
  if (const std::string at = absl::GetFlag(FLAGS_issue_at); !at.empty()) {
    if (!absl::StartsWith(at, "127.") && !absl::StartsWith(at, "localhost:")) {
      std::cerr << "--issue_at: the load generator only targets loopback addresses\n";
      return 2;
    }
    issue_api.push_back(
        v1::TokenAuthority::NewStub(grpc::CreateChannel(at, grpc::InsecureChannelCredentials())));
  }
  const auto& issuers = issue_api.empty() ? api : issue_api;
  int64_t count = absl::GetFlag(FLAGS_count);
  const int64_t pre = count > 0 ? count : 20000;

  if (absl::GetFlag(FLAGS_print_token)) {
    std::cout << PreIssue(issuers, 1, "print")[0].access_token() << std::endl;
  } else if (scenario == "health") {
    static const std::string kMethod = "/grpc.health.v1.Health/Check";
    const grpc::ByteBuffer request = Serialized(health::HealthCheckRequest());
    Outcome o = Drive(RawCall(raw, kMethod, [&](int64_t) { return request; }), n_channels, count);
    Report(scenario, o);
  } else if (scenario == "introspect_same" || scenario == "introspect_distinct") {
    static const std::string kMethod = "/tokenauthority.v1.TokenAuthority/Introspect";
    const bool same = scenario == "introspect_same";
    std::vector<grpc::ByteBuffer> requests;
    for (const v1::TokenPair& pair : PreIssue(issuers, same ? 1 : pre, scenario)) {
      v1::IntrospectRequest req;
      req.set_token(pair.access_token());
      requests.push_back(Serialized(req));
    }
    std::atomic<int64_t> inactive{0};
    Outcome o = Drive<grpc::ByteBuffer>(
        RawCall(raw, kMethod, [&](int64_t seq) { return requests[same ? 0 : seq]; }), n_channels,
        same ? count : pre,
        [&](int64_t, const grpc::ByteBuffer& r) { inactive += AnswersActive(r) ? 0 : 1; });
    Report(scenario, o);
    if (inactive > 0) std::cerr << "warning: " << inactive.load() << " answers were inactive\n";
  } else if (scenario == "refresh") {
    static const std::string kMethod = "/tokenauthority.v1.TokenAuthority/RefreshTokens";
    std::vector<grpc::ByteBuffer> requests;
    for (const v1::TokenPair& pair : PreIssue(issuers, pre, "refresh")) {
      v1::RefreshTokensRequest req;
      req.set_refresh_token(pair.refresh_token());
      requests.push_back(Serialized(req));
    }
    Outcome o = Drive(RawCall(raw, kMethod, [&](int64_t seq) { return requests[seq]; }),
                      n_channels, pre);
    Report(scenario, o);
  } else if (scenario == "issue") {
    static const std::string kMethod = "/tokenauthority.v1.TokenAuthority/IssueTokens";
    const std::string run = absl::StrCat(absl::ToUnixMicros(absl::Now()));
    Outcome o = Drive(RawCall(raw, kMethod,
                              [&](int64_t seq) {
                                v1::IssueTokensRequest req;
                                req.set_subject(absl::StrCat("issue-", run, "-", seq));
                                req.set_client_id("loadgen");
                                req.set_scope("read");
                                return Serialized(req);
                              }),
                      n_channels, count);
    Report(scenario, o);
  } else {
    std::cerr << "--scenario: unknown scenario " << scenario << "\n";
    return 2;
  }
  return 0;
}

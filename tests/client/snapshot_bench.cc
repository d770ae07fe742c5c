// snapshot_bench: how long a new watcher takes to receive a WatchRevocations snapshot from a
// running server, and its bytes on the wire (issue 27 item 4; scripts/bench_snapshot.sh,
// BENCHMARKS.md "The stream's snapshot"). Not in ctest.
//
//   snapshot_bench --server=127.0.0.1:PORT --api_key_file=DATA/admin.key --mode=MODE
//
// Modes, each timed from the call's start (channel connected first) to end_of_snapshot:
//   raw        a plain gRPC reader asking for batches: parses every message, holds nothing;
//   raw1       the same without batches (one message per entry: a watcher built before them);
//   verifier   the C++ LocalVerifier (client/verifier.h) from Create until its view holds the
//              snapshot and a bookmark made it current (WaitUntilCurrent).
// Prints one line: mode, entries, messages, serialized bytes, bytes on the wire as counted
// (serialized + 5 per message, gRPC's length prefix, + 9 per HTTP/2 DATA frame of at most
// 16 KiB, the default frame size), ms, this process's CPU seconds (user + system: what the
// watcher costs whatever else the machine runs) and its peak RSS (VmHWM).
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/verifier.h"
#include "tokenauthority/v1/token_authority.grpc.pb.h"

ABSL_FLAG(std::string, server, "", "host:port of the server");
ABSL_FLAG(std::string, api_key_file, "", "file holding an API key (role resource or admin)");
ABSL_FLAG(std::string, mode, "raw", "raw | raw1 | verifier");
ABSL_FLAG(int64_t, timeout_s, 600, "give up after this many seconds");

namespace {

namespace v1 = ::tokenauthority::v1;

// CPU seconds (user + system) this process has used.
double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

long PeakRssMb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6)) / 1024;
  }
  return -1;
}

double MsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

int Raw(const std::string& key, bool batches) {
  auto channel = grpc::CreateChannel(absl::GetFlag(FLAGS_server),
                                     grpc::InsecureChannelCredentials());  // local benchmark
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    std::cerr << "cannot connect\n";
    return 1;
  }
  auto stub = v1::TokenAuthority::NewStub(channel);
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer " + key);
  v1::WatchRevocationsRequest request;
  request.set_batches(batches);
  const auto t0 = std::chrono::steady_clock::now();
  auto reader = stub->WatchRevocations(&context, request);
  v1::WatchRevocationsResponse message;
  uint64_t entries = 0, messages = 0, bytes = 0, frames = 0;
  bool done = false;
  while (!done && reader->Read(&message)) {
    const uint64_t size = message.ByteSizeLong();
    ++messages;
    bytes += size;
    frames += (size + 5 + 16383) / 16384;
    if (message.has_entry()) ++entries;
    if (message.has_batch()) entries += message.batch().entries_size();
    done = message.has_end_of_snapshot();
  }
  const double ms = MsSince(t0);
  context.TryCancel();
  (void)reader->Finish();
  if (!done) {
    std::cerr << "the stream ended before end_of_snapshot\n";
    return 1;
  }
  std::cout << "mode=" << (batches ? "raw" : "raw1") << " entries=" << entries
            << " messages=" << messages << " serialized_bytes=" << bytes
            << " wire_bytes=" << bytes + 5 * messages + 9 * frames << " ms=" << ms
            << " cpu_s=" << CpuSeconds() << " rss_mb=" << PeakRssMb() << "\n";
  return 0;
}

int Verifier(const std::string& key) {
  ta::client::LocalVerifierOptions options;
  options.server.target = absl::GetFlag(FLAGS_server);
  options.server.api_key = key;
  options.issuer = "snapshot-bench";
  const auto t0 = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<ta::client::LocalVerifier>> verifier =
      ta::client::LocalVerifier::Create(options);
  if (!verifier.ok()) {
    std::cerr << verifier.status() << "\n";
    return 1;
  }
  if (!(*verifier)->WaitUntilCurrent(absl::Seconds(absl::GetFlag(FLAGS_timeout_s)))) {
    std::cerr << "the verifier did not become current\n";
    return 1;
  }
  const double ms = MsSince(t0);
  const ta::client::VerifierState state = (*verifier)->state();
  std::cout << "mode=verifier entries=" << state.entries << " resets=" << state.resets
            << " ms=" << ms << " cpu_s=" << CpuSeconds() << " rss_mb=" << PeakRssMb() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::ifstream key_in(absl::GetFlag(FLAGS_api_key_file));
  std::string key;
  std::getline(key_in, key);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode == "raw" || mode == "raw1") return Raw(key, mode == "raw");
  if (mode == "verifier") return Verifier(key);
  std::cerr << "unknown --mode\n";
  return 2;
}

// Helpers shared by the reliability tests: the real token-authority binary as a child
// process on a data directory that outlives it (so it can be killed and restarted on the same
// state), with admin stubs over a real channel, and unary calls that collect status + reason.
// Not thread-safe except where noted: one RemoteServer per test; Call() may run on any thread.
#ifndef TA_TESTS_RELIABILITY_REMOTE_H_
#define TA_TESTS_RELIABILITY_REMOTE_H_

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/server_process.h"
#include "tokenauthority/v1/token_authority.grpc.pb.h"

namespace ta::testing {

namespace v1 = ::tokenauthority::v1;

// Status, `ta-reason` trailer and how long the call took.
struct Outcome {
  grpc::Status status;
  std::string reason;
  absl::Duration took;
  bool ok() const { return status.ok(); }
};

// Runs one unary call with `api_key` and a deadline; thread-safe.
template <typename Stub, typename Req, typename Resp>
Outcome Call(const std::string& api_key, Stub& stub,
             grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*), const Req& req,
             Resp* resp, absl::Duration deadline = absl::Seconds(10)) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  if (!api_key.empty()) ctx.AddMetadata("authorization", "Bearer " + api_key);
  const absl::Time start = absl::Now();
  grpc::Status status = (stub.*method)(&ctx, req, resp);
  Outcome out{status, "", absl::Now() - start};
  const auto& trailers = ctx.GetServerTrailingMetadata();
  auto it = trailers.find("ta-reason");
  if (it != trailers.end()) out.reason.assign(it->second.data(), it->second.size());
  return out;
}

// The binary on `data_dir` (which the caller owns and keeps across restarts).
class RemoteServer {
 public:
  RemoteServer(std::string data_dir, std::vector<std::string> extra_args = {})
      : data_dir_(std::move(data_dir)), extra_args_(std::move(extra_args)) {}

  // Starts the binary (port 0) and connects. Error when it does not come up.
  absl::Status Start();
  // Sends `signal`, waits, disconnects; the exit code (or -signal).
  absl::StatusOr<int> Stop(int signal, absl::Duration timeout = absl::Seconds(30));
  bool running() const { return proc_ != nullptr; }
  pid_t pid() const { return proc_ ? proc_->pid() : -1; }
  std::string ReadStderr() const { return proc_ ? proc_->ReadStderr() : last_stderr_; }

  const std::string& address() const { return address_; }
  const std::string& admin_key() const { return admin_key_; }
  const std::string& data_dir() const { return data_dir_; }
  v1::TokenAuthority::Stub& api() { return *api_; }
  v1::TokenAdmin::Stub& admin() { return *admin_; }
  // A fresh channel (its own TCP connection) to the running server.
  std::shared_ptr<grpc::Channel> NewChannel() const;

  // Unary calls as the local admin.
  Outcome Issue(const std::string& subject, v1::TokenPair* out);
  Outcome Refresh(const std::string& refresh_token, v1::TokenPair* out);
  Outcome Introspect(const std::string& token, v1::IntrospectResponse* out);
  Outcome RevokeToken(const std::string& token);
  Outcome RevokeFamily(const std::string& family_id, v1::RevokeFamilyResponse* out = nullptr);
  Outcome RevokeSubject(const std::string& subject);
  Outcome GetFamily(const std::string& family_id, v1::Family* out);
  // A cheap authenticated call (GetJwks) answered OK within `deadline`.
  bool Healthy(absl::Duration deadline = absl::Seconds(5));

 private:
  std::string data_dir_;
  std::vector<std::string> extra_args_;
  std::unique_ptr<ServerProcess> proc_;
  std::string last_stderr_;
  std::string address_;
  std::string admin_key_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TokenAuthority::Stub> api_;
  std::unique_ptr<v1::TokenAdmin::Stub> admin_;
};

// Introspects `tokens` through `server` in batches of 100, reasons included: token -> answer.
// The first batch that fails gives the error (its code and `ta-reason`).
absl::StatusOr<std::map<std::string, v1::IntrospectResponse>> IntrospectAll(
    RemoteServer& server, const std::vector<std::string>& tokens);

}  // namespace ta::testing

#endif  // TA_TESTS_RELIABILITY_REMOTE_H_

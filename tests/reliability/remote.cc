#include "tests/reliability/remote.h"

#include <algorithm>
#include <atomic>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace ta::testing {

absl::Status RemoteServer::Start() {
  std::vector<std::string> args = {"--listen=127.0.0.1:0", "--data_dir=" + data_dir_,
                                   "--default_audience=api"};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  absl::StatusOr<std::unique_ptr<ServerProcess>> proc =
      ServerProcess::Start(ServerBinary(), args, absl::Seconds(60));
  if (!proc.ok()) return proc.status();
  proc_ = std::move(*proc);
  address_ = proc_->address();
  std::ifstream key(data_dir_ + "/admin.key");
  std::getline(key, admin_key_);
  if (admin_key_.empty()) return absl::InternalError("no admin.key after start");
  channel_ = NewChannel();
  api_ = v1::TokenAuthority::NewStub(channel_);
  admin_ = v1::TokenAdmin::NewStub(channel_);
  return absl::OkStatus();
}

absl::StatusOr<int> RemoteServer::Stop(int signal, absl::Duration timeout) {
  if (!proc_) return absl::FailedPreconditionError("not running");
  absl::StatusOr<int> code = proc_->Stop(signal, timeout);
  last_stderr_ = proc_->ReadStderr();
  proc_.reset();
  api_.reset();
  admin_.reset();
  channel_.reset();
  return code;
}

std::shared_ptr<grpc::Channel> RemoteServer::NewChannel() const {
  grpc::ChannelArguments args;
  // A distinct argument set gets a distinct subchannel, so a distinct TCP connection.
  static std::atomic<int> n{0};
  args.SetInt("ta.test.channel_id", n++);
  return grpc::CreateCustomChannel(address_, grpc::InsecureChannelCredentials(), args);
}

Outcome RemoteServer::Issue(const std::string& subject, v1::TokenPair* out) {
  v1::IssueTokensRequest req;
  req.set_subject(subject);
  req.set_client_id("web");
  req.set_scope("read write");
  return Call(admin_key_, *api_, &v1::TokenAuthority::Stub::IssueTokens, req, out);
}

Outcome RemoteServer::Refresh(const std::string& refresh_token, v1::TokenPair* out) {
  v1::RefreshTokensRequest req;
  req.set_refresh_token(refresh_token);
  return Call(admin_key_, *api_, &v1::TokenAuthority::Stub::RefreshTokens, req, out);
}

Outcome RemoteServer::Introspect(const std::string& token, v1::IntrospectResponse* out) {
  v1::IntrospectRequest req;
  req.set_token(token);
  req.set_include_reason(true);
  return Call(admin_key_, *api_, &v1::TokenAuthority::Stub::Introspect, req, out);
}

Outcome RemoteServer::RevokeToken(const std::string& token) {
  v1::RevokeTokenRequest req;
  req.set_token(token);
  v1::RevokeTokenResponse resp;
  return Call(admin_key_, *api_, &v1::TokenAuthority::Stub::RevokeToken, req, &resp);
}

Outcome RemoteServer::RevokeFamily(const std::string& family_id, v1::RevokeFamilyResponse* out) {
  v1::RevokeFamilyRequest req;
  req.set_family_id(family_id);
  req.set_reason("test");
  v1::RevokeFamilyResponse resp;
  return Call(admin_key_, *api_, &v1::TokenAuthority::Stub::RevokeFamily, req,
              out != nullptr ? out : &resp);
}

Outcome RemoteServer::RevokeSubject(const std::string& subject) {
  v1::RevokeSubjectRequest req;
  req.set_subject(subject);
  req.set_reason("test");
  v1::RevokeSubjectResponse resp;
  return Call(admin_key_, *admin_, &v1::TokenAdmin::Stub::RevokeSubject, req, &resp);
}

Outcome RemoteServer::GetFamily(const std::string& family_id, v1::Family* out) {
  v1::GetFamilyRequest req;
  req.set_family_id(family_id);
  return Call(admin_key_, *admin_, &v1::TokenAdmin::Stub::GetFamily, req, out);
}

bool RemoteServer::Healthy(absl::Duration deadline) {
  if (!proc_) return false;
  // Its own connection: an attack may have (rightly) cost the shared one its connection.
  auto stub = v1::TokenAuthority::NewStub(NewChannel());
  v1::GetJwksRequest req;
  v1::GetJwksResponse resp;
  return Call(admin_key_, *stub, &v1::TokenAuthority::Stub::GetJwks, req, &resp, deadline).ok();
}

absl::StatusOr<std::map<std::string, v1::IntrospectResponse>> IntrospectAll(
    RemoteServer& server, const std::vector<std::string>& tokens) {
  std::map<std::string, v1::IntrospectResponse> out;
  for (size_t i = 0; i < tokens.size(); i += 100) {
    v1::IntrospectBatchRequest req;
    for (size_t j = i; j < std::min(tokens.size(), i + 100); ++j) {
      v1::IntrospectRequest* one = req.add_requests();
      one->set_token(tokens[j]);
      one->set_include_reason(true);
    }
    v1::IntrospectBatchResponse resp;
    Outcome r = Call(server.admin_key(), server.api(), &v1::TokenAuthority::Stub::IntrospectBatch,
                     req, &resp, absl::Seconds(30));
    if (!r.ok() || resp.responses_size() != req.requests_size()) {
      return absl::UnavailableError(absl::StrCat("IntrospectBatch: code ", r.status.error_code(),
                                                 " ", r.reason, " (", resp.responses_size(),
                                                 " of ", req.requests_size(), " answers)"));
    }
    for (int j = 0; j < resp.responses_size(); ++j) out[tokens[i + j]] = resp.responses(j);
  }
  return out;
}

}  // namespace ta::testing

#include "server/rpc/services.h"

#include <chrono>

#include "base/error.h"
#include "base/status_macros.h"
#include "server/rpc/auth.h"
#include "server/rpc/convert.h"
#include "server/rpc/status.h"
#include "server/rpc/watch.h"
#include "tokenauthority/v1/token_authority.grpc.pb.h"

namespace ta::rpc {
namespace {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

// Where a handler runs: inline on gRPC's thread (work that never waits: verification, reads
// of memory) or on the worker pool (anything that may wait on the store or block: store
// reads, synced writes, key generation, compaction). gRPC's callback threads also serve
// grpc.health.v1, so a store that hangs must never hold them (issue 22).
enum class Where { kInline, kPool };

bool TooLate(CallbackServerContext* ctx) {
  return ctx->IsCancelled() || ctx->deadline() < std::chrono::system_clock::now();
}

grpc::Status DeadlinePassed(CallbackServerContext* ctx) {
  return ToGrpcStatus(ctx, absl::DeadlineExceededError("deadline passed before serving"));
}

// Every RPC method goes through here. The caller is authorized at once, on gRPC's thread (it
// needs memory only), so a refused call never takes a worker; then `handler` runs inline or
// on the pool. `handler` must capture by value: a pooled handler runs after the method has
// returned (request and response live until Finish).
template <typename Handler>
ServerUnaryReactor* Serve(CallbackServerContext* ctx, const ServiceDeps& deps, Rpc rpc, Where where,
                          Handler handler) {
  ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const ServiceDeps* d = &deps;
  auto finish = [d, rpc, reactor, start = std::chrono::steady_clock::now()](grpc::Status status) {
    if (d->metrics != nullptr) {
      d->metrics->OnRpc(rpc, static_cast<absl::StatusCode>(status.error_code()),
                        absl::FromChrono(std::chrono::steady_clock::now() - start));
    }
    reactor->Finish(std::move(status));
  };
  if (!deps.gate->Enter()) {
    finish(ToGrpcStatus(ctx, Error(absl::StatusCode::kUnavailable, "shutting_down",
                                   "the server is shutting down; retry")));
    return reactor;
  }
  if (TooLate(ctx)) {
    finish(DeadlinePassed(ctx));
    deps.gate->Leave();
    return reactor;
  }
  absl::StatusOr<core::Caller> caller = Authorize(ctx, *deps.callers, rpc, deps.audit);
  if (!caller.ok()) {
    finish(ToGrpcStatus(ctx, caller.status()));
    deps.gate->Leave();
    return reactor;
  }
  auto run = [ctx, d, finish, handler, who = *std::move(caller)]() mutable {
    // A pooled call may have waited in the queue past its deadline.
    if (TooLate(ctx)) {
      finish(DeadlinePassed(ctx));
    } else {
      const absl::Status status = handler(who);
      // A refused DPoP proof learns the nonce to retry with (nonces on: --dpop_nonce).
      finish(ToGrpcStatus(ctx, status,
                          status.ok() ? std::string() : d->authority->CurrentDpopNonce()));
    }
    d->gate->Leave();
  };
  if (where == Where::kInline) {
    run();
  } else if (!deps.pool->Schedule(std::move(run))) {
    finish(ToGrpcStatus(ctx, Error(absl::StatusCode::kResourceExhausted, "overloaded",
                                   "too many calls waiting; retry with backoff")));
    deps.gate->Leave();
  }
  return reactor;
}

class AuthorityService final : public v1::TokenAuthority::CallbackService {
 public:
  explicit AuthorityService(const ServiceDeps& deps) : deps_(deps) {}

  ServerUnaryReactor* IssueTokens(CallbackServerContext* ctx, const v1::IssueTokensRequest* req,
                                  v1::TokenPair* resp) override {
    return Serve(ctx, deps_, Rpc::kIssueTokens, Where::kPool,
                 [=, this](const core::Caller& caller) -> absl::Status {
                   ASSIGN_OR_RETURN(core::IssueRequest in, FromProto(*req));
                   ASSIGN_OR_RETURN(core::TokenPair out, deps_.authority->IssueTokens(in, caller));
                   ToProto(out, resp);
                   return absl::OkStatus();
                 });
  }

  ServerUnaryReactor* RefreshTokens(CallbackServerContext* ctx, const v1::RefreshTokensRequest* req,
                                    v1::TokenPair* resp) override {
    return Serve(ctx, deps_, Rpc::kRefreshTokens, Where::kPool,
                 [=, this](const core::Caller& caller) -> absl::Status {
                   core::RefreshRequest in = FromProto(*req);
                   ASSIGN_OR_RETURN(core::TokenPair out,
                                    deps_.authority->RefreshTokens(in, caller));
                   ToProto(out, resp);
                   return absl::OkStatus();
                 });
  }

  ServerUnaryReactor* Introspect(CallbackServerContext* ctx, const v1::IntrospectRequest* req,
                                 v1::IntrospectResponse* resp) override {
    // Inline only when it cannot wait on the store: a hung store must not hold gRPC's own
    // threads, which also answer grpc.health.v1 (issue 22).
    // A DPoP proof is recorded in the store's replay cache: pooled too.
    const Where where =
        deps_.authority->IntrospectMayWait(req->token()) || !req->proof().dpop_proof().empty()
            ? Where::kPool
            : Where::kInline;
    return Serve(ctx, deps_, Rpc::kIntrospect, where,
                 [=, this](const core::Caller& caller) -> absl::Status {
                   ASSIGN_OR_RETURN(core::Introspection out,
                                    deps_.authority->Introspect(FromProto(*req)));
                   return ToProto(out, WithReason(*req, caller), claims_, resp);
                 });
  }

  ServerUnaryReactor* IntrospectBatch(CallbackServerContext* ctx,
                                      const v1::IntrospectBatchRequest* req,
                                      v1::IntrospectBatchResponse* resp) override {
    return Serve(ctx, deps_, Rpc::kIntrospectBatch, Where::kPool,
                 [=, this](const core::Caller& caller) -> absl::Status {
                   std::vector<core::IntrospectRequest> in;
                   in.reserve(req->requests_size());
                   for (const v1::IntrospectRequest& r : req->requests())
                     in.push_back(FromProto(r));
                   ASSIGN_OR_RETURN(std::vector<core::Introspection> out,
                                    deps_.authority->IntrospectBatch(in));
                   for (size_t i = 0; i < out.size(); ++i) {
                     RETURN_IF_ERROR(ToProto(out[i], WithReason(req->requests(i), caller),
                                             claims_, resp->add_responses()));
                   }
                   return absl::OkStatus();
                 });
  }

  ServerUnaryReactor* RevokeToken(CallbackServerContext* ctx, const v1::RevokeTokenRequest* req,
                                  v1::RevokeTokenResponse* /*resp*/) override {
    return Serve(ctx, deps_, Rpc::kRevokeToken, Where::kPool,
                 [=, this](const core::Caller& caller) {
                   return deps_.authority->RevokeToken(req->token(), caller);
                 });
  }

  ServerUnaryReactor* RevokeFamily(CallbackServerContext* ctx, const v1::RevokeFamilyRequest* req,
                                   v1::RevokeFamilyResponse* resp) override {
    return Serve(ctx, deps_, Rpc::kRevokeFamily, Where::kPool,
                 [=, this](const core::Caller& caller) -> absl::Status {
                   ASSIGN_OR_RETURN(bool changed,
                                    deps_.authority->RevokeFamily(req->family_id(), req->token(),
                                                                  req->reason(), caller));
                   resp->set_changed(changed);
                   return absl::OkStatus();
                 });
  }

  ServerUnaryReactor* GetJwks(CallbackServerContext* ctx, const v1::GetJwksRequest* /*req*/,
                              v1::GetJwksResponse* resp) override {
    return Serve(ctx, deps_, Rpc::kGetJwks, Where::kInline, [=, this](const core::Caller& caller) {
      resp->set_jwks_json(deps_.authority->JwksJson());
      for (const token::KeyInfo& key : deps_.authority->SigningKeys())
        ToProto(key, resp->add_keys());
      return absl::OkStatus();
    });
  }

  grpc::ServerWriteReactor<v1::WatchRevocationsResponse>* WatchRevocations(
      CallbackServerContext* ctx, const v1::WatchRevocationsRequest* req) override {
    return StartWatch(ctx, req, deps_);  // watch.h: a stream, not a unary call
  }

 private:
  // RFC 7662 §2.2: why a token is inactive is for privileged callers only.
  static bool WithReason(const v1::IntrospectRequest& req, const core::Caller& caller) {
    return req.include_reason() && caller.Has(core::Role::kAdmin);
  }

  const ServiceDeps deps_;
  // Tokens introspected again render their claims once (claims_cache.h).
  ClaimsCache claims_{16 << 20};
};

class AdminService final : public v1::TokenAdmin::CallbackService {
 public:
  explicit AdminService(const ServiceDeps& deps) : deps_(deps) {}

  ServerUnaryReactor* RevokeSubject(CallbackServerContext* ctx, const v1::RevokeSubjectRequest* req,
                                    v1::RevokeSubjectResponse* resp) override {
    return Serve(ctx, deps_, Rpc::kRevokeSubject, Where::kPool,
                 [=, this](const core::Caller& caller) -> absl::Status {
                   core::SubjectRevocation in;
                   in.subject = req->subject();
                   if (req->has_not_before()) in.not_before = FromTimestamp(req->not_before());
                   if (req->has_block_until()) in.block_until = FromTimestamp(req->block_until());
                   in.reason = req->reason();
                   ASSIGN_OR_RETURN(storage::SubjectRecord out,
                                    deps_.authority->RevokeSubject(in, caller));
                   *resp->mutable_not_before() = ToTimestamp(out.not_before);
                   if (out.block_until != absl::InfinitePast()) {
                     *resp->mutable_block_until() = ToTimestamp(out.block_until);
                   }
                   return absl::OkStatus();
                 });
  }

  ServerUnaryReactor* ListFamilies(CallbackServerContext* ctx, const v1::ListFamiliesRequest* req,
                                   v1::ListFamiliesResponse* resp) override {
    return Serve(ctx, deps_, Rpc::kListFamilies, Where::kPool,
                 [=, this](const core::Caller& caller) -> absl::Status {
                   core::ListFamiliesRequest in{req->subject(), req->page_size(), req->page_token(),
                                                req->include_revoked()};
                   ASSIGN_OR_RETURN(storage::FamilyPage page, deps_.authority->ListFamilies(in, caller));
                   for (const storage::FamilyRecord& f : page.families)
                     ToProto(f, resp->add_families());
                   resp->set_next_page_token(page.next_page_token);
                   return absl::OkStatus();
                 });
  }

  ServerUnaryReactor* GetFamily(CallbackServerContext* ctx, const v1::GetFamilyRequest* req,
                                v1::Family* resp) override {
    return Serve(ctx, deps_, Rpc::kGetFamily, Where::kPool,  // reads the store
                 [=, this](const core::Caller& caller) -> absl::Status {
                   ASSIGN_OR_RETURN(storage::FamilyRecord family,
                                    deps_.authority->GetFamily(req->family_id(), caller));
                   ToProto(family, resp);
                   return absl::OkStatus();
                 });
  }

  ServerUnaryReactor* RotateSigningKey(CallbackServerContext* ctx,
                                       const v1::RotateSigningKeyRequest* req,
                                       v1::RotateSigningKeyResponse* resp) override {
    return Serve(ctx, deps_, Rpc::kRotateSigningKey, Where::kPool,
                 [=, this](const core::Caller& caller) -> absl::Status {
                   ASSIGN_OR_RETURN(std::string kid, deps_.authority->RotateSigningKey(req->alg(), caller));
                   resp->set_kid(kid);
                   for (const token::KeyInfo& key : deps_.authority->SigningKeys()) {
                     if (key.kid == kid) *resp->mutable_signs_from() = ToTimestamp(key.sign_from);
                   }
                   return absl::OkStatus();
                 });
  }

  ServerUnaryReactor* PurgeExpired(CallbackServerContext* ctx,
                                   const v1::PurgeExpiredRequest* /*req*/,
                                   v1::PurgeExpiredResponse* /*resp*/) override {
    return Serve(ctx, deps_, Rpc::kPurgeExpired, Where::kPool,
                 [=, this](const core::Caller& caller) { return deps_.authority->PurgeExpired(); });
  }

  ServerUnaryReactor* GetStats(CallbackServerContext* ctx, const v1::GetStatsRequest* /*req*/,
                               v1::GetStatsResponse* resp) override {
    return Serve(ctx, deps_, Rpc::kGetStats, Where::kPool,  // reads the store
                 [=, this](const core::Caller& caller) -> absl::Status {
                   ASSIGN_OR_RETURN(core::Stats stats, deps_.authority->GetStats());
                   resp->set_families(stats.store.families);
                   resp->set_refresh_records(stats.store.refresh_records);
                   resp->set_denied_jtis(stats.store.denied_jtis);
                   resp->set_subjects(stats.store.subjects);
                   resp->set_disk_bytes(stats.store.disk_bytes);
                   resp->set_signing_keys(static_cast<uint32_t>(stats.signing_keys));
                   return absl::OkStatus();
                 });
  }

  ServerUnaryReactor* CreateBackup(CallbackServerContext* ctx, const v1::CreateBackupRequest* req,
                                   v1::CreateBackupResponse* resp) override {
    return Serve(ctx, deps_, Rpc::kCreateBackup, Where::kPool,
                 [=, this](const core::Caller& caller) -> absl::Status {
                   ASSIGN_OR_RETURN(core::BackupReport out,
                                    deps_.authority->CreateBackup(req->backup_dir(),
                                                                  req->keep_last(), caller));
                   ToProto(out, resp);
                   return absl::OkStatus();
                 });
  }

 private:
  const ServiceDeps deps_;
};

}  // namespace

std::unique_ptr<grpc::Service> MakeAuthorityService(const ServiceDeps& deps) {
  return std::make_unique<AuthorityService>(deps);
}

std::unique_ptr<grpc::Service> MakeAdminService(const ServiceDeps& deps) {
  return std::make_unique<AdminService>(deps);
}

}  // namespace ta::rpc

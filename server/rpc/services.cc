#include "server/rpc/services.h"

#include "server/base/status_macros.h"
#include "server/rpc/convert.h"
#include "server/rpc/status.h"
#include "tokenauthority/v1/token_authority.grpc.pb.h"

namespace ta::rpc {
namespace {

using grpc::ServerContext;

// Until caller authentication exists (issue 6) every call is attributed to this name.
core::Caller CallerOf(ServerContext* /*context*/) { return core::Caller{"local"}; }

class AuthorityService final : public v1::TokenAuthority::Service {
 public:
  AuthorityService(core::TokenAuthority* authority, const ServiceOptions& options)
      : authority_(authority), options_(options) {}

  grpc::Status IssueTokens(ServerContext* ctx, const v1::IssueTokensRequest* req,
                           v1::TokenPair* resp) override {
    return Serve(ctx, [&]() -> absl::Status {
      ASSIGN_OR_RETURN(core::IssueRequest in, FromProto(*req));
      ASSIGN_OR_RETURN(core::TokenPair out, authority_->IssueTokens(in, CallerOf(ctx)));
      ToProto(out, resp);
      return absl::OkStatus();
    });
  }

  grpc::Status RefreshTokens(ServerContext* ctx, const v1::RefreshTokensRequest* req,
                             v1::TokenPair* resp) override {
    return Serve(ctx, [&]() -> absl::Status {
      core::RefreshRequest in{req->refresh_token(), req->scope()};
      ASSIGN_OR_RETURN(core::TokenPair out, authority_->RefreshTokens(in, CallerOf(ctx)));
      ToProto(out, resp);
      return absl::OkStatus();
    });
  }

  grpc::Status Introspect(ServerContext* ctx, const v1::IntrospectRequest* req,
                          v1::IntrospectResponse* resp) override {
    return Serve(ctx, [&]() -> absl::Status {
      ASSIGN_OR_RETURN(core::Introspection out, authority_->Introspect(FromProto(*req)));
      return ToProto(out, WithReason(*req), resp);
    });
  }

  grpc::Status IntrospectBatch(ServerContext* ctx, const v1::IntrospectBatchRequest* req,
                               v1::IntrospectBatchResponse* resp) override {
    return Serve(ctx, [&]() -> absl::Status {
      std::vector<core::IntrospectRequest> in;
      in.reserve(req->requests_size());
      for (const v1::IntrospectRequest& r : req->requests()) in.push_back(FromProto(r));
      ASSIGN_OR_RETURN(std::vector<core::Introspection> out, authority_->IntrospectBatch(in));
      for (size_t i = 0; i < out.size(); ++i) {
        RETURN_IF_ERROR(ToProto(out[i], WithReason(req->requests(i)), resp->add_responses()));
      }
      return absl::OkStatus();
    });
  }

  grpc::Status RevokeToken(ServerContext* ctx, const v1::RevokeTokenRequest* req,
                           v1::RevokeTokenResponse* /*resp*/) override {
    return Serve(ctx, [&] { return authority_->RevokeToken(req->token(), CallerOf(ctx)); });
  }

  grpc::Status RevokeFamily(ServerContext* ctx, const v1::RevokeFamilyRequest* req,
                            v1::RevokeFamilyResponse* resp) override {
    return Serve(ctx, [&]() -> absl::Status {
      ASSIGN_OR_RETURN(bool changed, authority_->RevokeFamily(req->family_id(), req->token(),
                                                              req->reason(), CallerOf(ctx)));
      resp->set_changed(changed);
      return absl::OkStatus();
    });
  }

  grpc::Status GetJwks(ServerContext* ctx, const v1::GetJwksRequest* /*req*/,
                       v1::GetJwksResponse* resp) override {
    return Serve(ctx, [&] {
      resp->set_jwks_json(authority_->JwksJson());
      for (const token::KeyInfo& key : authority_->SigningKeys()) ToProto(key, resp->add_keys());
      return absl::OkStatus();
    });
  }

 private:
  bool WithReason(const v1::IntrospectRequest& req) const {
    return req.include_reason() && options_.expose_inactive_reason;
  }

  core::TokenAuthority* const authority_;
  const ServiceOptions options_;
};

class AdminService final : public v1::TokenAdmin::Service {
 public:
  explicit AdminService(core::TokenAuthority* authority) : authority_(authority) {}

  grpc::Status RevokeSubject(ServerContext* ctx, const v1::RevokeSubjectRequest* req,
                             v1::RevokeSubjectResponse* resp) override {
    return Serve(ctx, [&]() -> absl::Status {
      core::SubjectRevocation in;
      in.subject = req->subject();
      if (req->has_not_before()) in.not_before = FromTimestamp(req->not_before());
      if (req->has_block_until()) in.block_until = FromTimestamp(req->block_until());
      in.reason = req->reason();
      ASSIGN_OR_RETURN(storage::SubjectRecord out, authority_->RevokeSubject(in, CallerOf(ctx)));
      *resp->mutable_not_before() = ToTimestamp(out.not_before);
      if (out.block_until != absl::InfinitePast()) {
        *resp->mutable_block_until() = ToTimestamp(out.block_until);
      }
      return absl::OkStatus();
    });
  }

  grpc::Status ListFamilies(ServerContext* ctx, const v1::ListFamiliesRequest* req,
                            v1::ListFamiliesResponse* resp) override {
    return Serve(ctx, [&]() -> absl::Status {
      core::ListFamiliesRequest in{req->subject(), req->page_size(), req->page_token(),
                                   req->include_revoked()};
      ASSIGN_OR_RETURN(storage::FamilyPage page, authority_->ListFamilies(in));
      for (const storage::FamilyRecord& f : page.families) ToProto(f, resp->add_families());
      resp->set_next_page_token(page.next_page_token);
      return absl::OkStatus();
    });
  }

  grpc::Status GetFamily(ServerContext* ctx, const v1::GetFamilyRequest* req,
                         v1::Family* resp) override {
    return Serve(ctx, [&]() -> absl::Status {
      ASSIGN_OR_RETURN(storage::FamilyRecord family, authority_->GetFamily(req->family_id()));
      ToProto(family, resp);
      return absl::OkStatus();
    });
  }

  grpc::Status RotateSigningKey(ServerContext* ctx, const v1::RotateSigningKeyRequest* req,
                                v1::RotateSigningKeyResponse* resp) override {
    return Serve(ctx, [&]() -> absl::Status {
      ASSIGN_OR_RETURN(std::string kid, authority_->RotateSigningKey(req->alg()));
      resp->set_kid(kid);
      return absl::OkStatus();
    });
  }

  grpc::Status PurgeExpired(ServerContext* ctx, const v1::PurgeExpiredRequest* /*req*/,
                            v1::PurgeExpiredResponse* /*resp*/) override {
    return Serve(ctx, [&] { return authority_->PurgeExpired(); });
  }

  grpc::Status GetStats(ServerContext* ctx, const v1::GetStatsRequest* /*req*/,
                        v1::GetStatsResponse* resp) override {
    return Serve(ctx, [&]() -> absl::Status {
      ASSIGN_OR_RETURN(core::Stats stats, authority_->GetStats());
      resp->set_families(stats.store.families);
      resp->set_refresh_records(stats.store.refresh_records);
      resp->set_denied_jtis(stats.store.denied_jtis);
      resp->set_subjects(stats.store.subjects);
      resp->set_disk_bytes(stats.store.disk_bytes);
      resp->set_signing_keys(static_cast<uint32_t>(stats.signing_keys));
      return absl::OkStatus();
    });
  }

 private:
  core::TokenAuthority* const authority_;
};

}  // namespace

std::unique_ptr<grpc::Service> MakeAuthorityService(core::TokenAuthority* authority,
                                                    const ServiceOptions& options) {
  return std::make_unique<AuthorityService>(authority, options);
}

std::unique_ptr<grpc::Service> MakeAdminService(core::TokenAuthority* authority,
                                                const ServiceOptions& /*options*/) {
  return std::make_unique<AdminService>(authority);
}

}  // namespace ta::rpc

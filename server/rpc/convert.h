// Conversions between API messages and core types. Pure functions; thread-safe.
#ifndef TA_SERVER_RPC_CONVERT_H_
#define TA_SERVER_RPC_CONVERT_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"
#include "server/core/authority.h"
#include "server/rpc/claims_cache.h"
#include "tokenauthority/v1/token_authority.pb.h"

namespace ta::rpc {

namespace v1 = ::tokenauthority::v1;

google::protobuf::Timestamp ToTimestamp(absl::Time t);
absl::Time FromTimestamp(const google::protobuf::Timestamp& ts);

absl::StatusOr<core::IssueRequest> FromProto(const v1::IssueTokensRequest& in);
void ToProto(const core::TokenPair& in, v1::TokenPair* out);
core::IntrospectRequest FromProto(const v1::IntrospectRequest& in);
core::RefreshRequest FromProto(const v1::RefreshTokensRequest& in);
token::PresentedProof FromProto(const v1::ProofOfPossession& in);
// `with_reason`: keep inactive_reason on an inactive answer. `claims` renders the claims.
absl::Status ToProto(const core::Introspection& in, bool with_reason, ClaimsCache& claims,
                     v1::IntrospectResponse* out);
void ToProto(const storage::FamilyRecord& in, v1::Family* out);
void ToProto(const token::KeyInfo& in, v1::KeyInfo* out);
void ToProto(const core::BackupReport& in, v1::CreateBackupResponse* out);

}  // namespace ta::rpc

#endif  // TA_SERVER_RPC_CONVERT_H_

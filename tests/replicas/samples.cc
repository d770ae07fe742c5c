#include "tests/replicas/samples.h"

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"

namespace ta::testing {

std::unique_ptr<RevocationSample> MakeRevocationSample(const std::string& prefix,
                                                       const std::string& kind, int k,
                                                       RemoteServer& on, RemoteServer& via) {
  auto s = std::make_unique<RevocationSample>();
  s->kind = kind;
  const std::string subject = absl::StrCat(prefix, "-", kind, "-", k);
  v1::TokenPair pair;
  REQUIRE(on.Issue(subject, &pair).ok());
  s->token = pair.access_token();
  if (kind == "jti") {
    s->reason = "token_revoked";
    s->revoke = [&via, t = pair.access_token()] { return via.RevokeToken(t); };
  } else if (kind == "family") {
    s->reason = "family_revoked";
    s->revoke = [&via, f = pair.family_id()] { return via.RevokeFamily(f); };
  } else if (kind == "subject") {
    s->reason = "subject_revoked";
    s->revoke = [&via, subject] { return via.RevokeSubject(subject); };
  } else {  // reuse: the spent refresh token replayed on another replica kills the family
    s->reason = "family_revoked";
    v1::TokenPair next;
    REQUIRE(on.Refresh(pair.refresh_token(), &next).ok());
    s->token = next.access_token();
    s->revoke = [&via, spent = pair.refresh_token()] {
      v1::TokenPair again;
      Outcome r = via.Refresh(spent, &again);
      r.status = r.ok() ? grpc::Status(grpc::StatusCode::INTERNAL, "replay accepted")
                        : grpc::Status::OK;  // refused: the revocation is acknowledged
      return r;
    };
  }
  return s;
}

}  // namespace ta::testing

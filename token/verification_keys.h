// Verification keys: what checks an access token's signature (DESIGN §2), and the one sequence
// of checks a JWS access token goes through (VerifyJwt).
//
// VerificationKeys is what the access-token decision (access_decision.h) verifies with. Two
// kinds exist: the server's key ring behind its verify cache (server/core/introspect.cc), and
// KeySet below, a fixed set of public keys (a JWKS a verifier fetched, or keys in a test).
// Both run VerifyJwt (the server's KeyRing::Verify with its ring's lookup of a kid).
// Each key is bound to one algorithm (RFC 8725 §3.1): the header's alg must equal the key's.
// Thread-safety: VerifyJwt is a pure function; KeySet is immutable after construction.
#ifndef TA_TOKEN_VERIFICATION_KEYS_H_
#define TA_TOKEN_VERIFICATION_KEYS_H_

#include <memory>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "token/jwt.h"
#include "token/key.h"

namespace ta::token {

class VerificationKeys {
 public:
  virtual ~VerificationKeys() = default;
  // `token` checked against these keys and `policy` at `now`: as VerifyJwt, with the reasons
  // of jwt.h (`reason::`). An implementation may answer from a cache of tokens it verified
  // before, as long as it checks the claims against `policy` at `now` on every call.
  virtual absl::StatusOr<std::shared_ptr<const VerifiedJwt>> Verify(
      absl::string_view token, const VerifyPolicy& policy, absl::Time now) const = 0;
};

// The key for a header's kid at the time of the check, or null when none verifies.
using KeyLookup = absl::FunctionRef<const Key*(absl::string_view kid)>;

// The checks, in this order: size (INVALID_ARGUMENT token_too_large), shape and header
// (malformed_token, forbidden_header, alg_none, unsupported_alg), typ (wrong_typ), the kid
// (unknown_kid: empty, or `find` has none), the alg binding (alg_mismatch), the signature
// (bad_signature), the payload (malformed_token, missing_claim) and then the claims at `now`
// (CheckClaims: wrong_issuer, audience_mismatch, token_expired, token_not_yet_valid,
// iat_in_future). Errors are UNAUTHENTICATED unless noted; messages hold no token material.
absl::StatusOr<VerifiedJwt> VerifyJwt(absl::string_view token, const VerifyPolicy& policy,
                                      absl::Time now, KeyLookup find);

// A fixed set of public keys, each verifying until its retire_at.
class KeySet final : public VerificationKeys {
 public:
  struct Entry {
    std::shared_ptr<const Key> key;
    absl::Time retire_at = absl::InfiniteFuture();  // verifies while now < retire_at
  };
  explicit KeySet(std::vector<Entry> keys) : keys_(std::move(keys)) {}

  // The public keys of a JWK Set (RFC 7517 §5) such as GetJwks serves, each verifying with
  // its "alg" and found by its "kid". A key this library cannot hold (another kty or curve,
  // no or an unknown alg, "use" other than "sig", a private member, or a kid that is not its
  // RFC 7638 thumbprint, which is how every kid of ours is made) is skipped, not an error:
  // it can verify no token of ours. INVALID_ARGUMENT "invalid_jwks" when the text is not a
  // JSON object with a "keys" array of objects.
  static absl::StatusOr<std::shared_ptr<const KeySet>> FromJwks(absl::string_view jwks_json);

  size_t size() const { return keys_.size(); }

  absl::StatusOr<std::shared_ptr<const VerifiedJwt>> Verify(absl::string_view token,
                                                            const VerifyPolicy& policy,
                                                            absl::Time now) const override;

 private:
  const std::vector<Entry> keys_;
};

}  // namespace ta::token

#endif  // TA_TOKEN_VERIFICATION_KEYS_H_

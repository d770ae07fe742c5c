// Revocations to time across replicas (tests/replicas/verifier_*): a session issued on one
// replica and a revocation of one width, made through another when the test says so; the
// access token it must kill, the reason it must then be inactive for, and when the revocation
// was acknowledged (set by the thread that makes it, read by those that poll).
#ifndef TA_TESTS_REPLICAS_SAMPLES_H_
#define TA_TESTS_REPLICAS_SAMPLES_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "tests/reliability/remote.h"

namespace ta::testing {

struct RevocationSample {
  std::string kind;                 // jti, family, subject or reuse
  std::string token;                // the access token the revocation kills
  std::string reason;               // Introspect's inactive reason for it afterwards
  std::function<Outcome()> revoke;  // OK once acknowledged (for reuse: the replay refused)
  std::atomic<int64_t> ack_us{0};   // Unix µs of the acknowledgement; 0 before
  absl::Duration took = absl::InfiniteDuration();  // for the caller's timing
};

// Issues a session of subject "<prefix>-<kind>-<k>" on `on` and builds its revocation of
// `kind` through `via`: RevokeToken (jti), RevokeFamily (family), RevokeSubject (subject), or
// the spent refresh token replayed (reuse: the token is then its successor's access token).
// Catch2: REQUIREs the issue (and the refresh).
std::unique_ptr<RevocationSample> MakeRevocationSample(const std::string& prefix,
                                                       const std::string& kind, int k,
                                                       RemoteServer& on, RemoteServer& via);

}  // namespace ta::testing

#endif  // TA_TESTS_REPLICAS_SAMPLES_H_

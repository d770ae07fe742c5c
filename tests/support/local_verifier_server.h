// client::LocalVerifier over an in-process TestServer (tests/client): a verifier sharing the
// server's FakeClock, issuer and leeway; the server's Introspect as one word; and Sync, which
// waits until the verifier holds every revocation the server acknowledged so far.
#ifndef TA_TESTS_SUPPORT_LOCAL_VERIFIER_SERVER_H_
#define TA_TESTS_SUPPORT_LOCAL_VERIFIER_SERVER_H_

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/verifier.h"
#include "tests/support/local_verifier.h"
#include "tests/support/test_server.h"

namespace ta::testing {

// VerifierOptions toward `target` (default: the server's address, e.g. a proxy's instead) as
// the local admin, with the server's issuer, leeway and clock.
inline client::LocalVerifierOptions VerifierOptionsFor(TestServer& server,
                                                       const std::string& target = "") {
  client::LocalVerifierOptions o =
      VerifierOptions(target.empty() ? server.address() : target, server.admin_key(),
                      server.options().authority.issuer);
  o.leeway = server.options().authority.leeway;
  o.clock = &server.clock();
  return o;
}

// The server's Introspect of `token` for `audience` ("": any), with `proof` when not null, as
// VerifierAnswer words: "active", the inactive reason, or "error:<ta-reason>".
inline std::string ServerAnswer(TestServer& server, const std::string& token,
                                const std::string& audience = "api",
                                const v1::ProofOfPossession* proof = nullptr) {
  v1::IntrospectRequest req;
  req.set_token(token);
  req.set_audience(audience);
  req.set_include_reason(true);
  if (proof != nullptr) *req.mutable_proof() = *proof;
  v1::IntrospectResponse resp;
  CallResult r = server.Call(server.api(), &v1::TokenAuthority::Stub::Introspect, req, &resp);
  if (!r.ok()) return absl::StrCat("error:", r.reason);
  return resp.active() ? "active" : resp.inactive_reason();
}

// Moves the shared clock on and waits (real time, up to 10 s) until the verifier has a
// bookmark stamped at or after it, with at least `resets` resets: then it holds every
// revocation made before. Whether it did.
inline bool Sync(TestServer& server, const client::LocalVerifier& v, uint64_t resets = 0) {
  server.clock().Advance(absl::Milliseconds(1));
  return AwaitBookmarkAfter(v, server.clock(), server.clock().Now(), absl::Seconds(10), resets);
}

}  // namespace ta::testing

#endif  // TA_TESTS_SUPPORT_LOCAL_VERIFIER_SERVER_H_

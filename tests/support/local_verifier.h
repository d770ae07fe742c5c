// What tests of client::LocalVerifier share, whatever server it follows (an in-process
// TestServer in tests/client, replica processes in tests/replicas): the options they start
// from, creating one under Catch2, its answer as one word, and waiting until it has a view
// stamped after a given time.
//
// Thread-safety: as LocalVerifier's (every function here only reads it).
#ifndef TA_TESTS_SUPPORT_LOCAL_VERIFIER_H_
#define TA_TESTS_SUPPORT_LOCAL_VERIFIER_H_

#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "base/error.h"
#include "client/verifier.h"

namespace ta::testing {

// A verifier of `issuer`'s tokens for audience "api", following `target` as the holder of
// `api_key`, reconnecting quickly (after 20 ms, at most 200 ms apart) so that a test's cut
// or restart is noticed and healed at once. Every other field keeps its default.
inline client::LocalVerifierOptions VerifierOptions(const std::string& target,
                                                    const std::string& api_key,
                                                    const std::string& issuer) {
  client::LocalVerifierOptions o;
  o.server.target = target;
  o.server.api_key = api_key;
  o.issuer = issuer;
  o.audience = "api";
  o.initial_backoff = absl::Milliseconds(20);
  o.max_backoff = absl::Milliseconds(200);
  return o;
}

// Creates the verifier (Catch2: REQUIREs that it starts); it need not be current yet.
inline std::unique_ptr<client::LocalVerifier> StartVerifier(client::LocalVerifierOptions o) {
  absl::StatusOr<std::unique_ptr<client::LocalVerifier>> v =
      client::LocalVerifier::Create(std::move(o));
  INFO(v.status().ToString());
  REQUIRE(v.ok());
  return *std::move(v);
}

// "active", the inactive reason, or "error:<reason>" (error:revocations_stale when it fails
// closed): one word to compare with the server's Introspect.
inline std::string VerifierAnswer(const client::LocalVerifier& v, const std::string& token) {
  absl::StatusOr<token::AccessDecision> d = v.Verify(token);
  if (!d.ok()) return absl::StrCat("error:", ::ta::ReasonOf(d.status()));
  return d->active ? "active" : d->inactive_reason;
}
// The same for a request that came with `proof`.
inline std::string VerifierAnswer(const client::LocalVerifier& v, const std::string& token,
                                  const token::PresentedProof& proof) {
  absl::StatusOr<token::AccessDecision> d = v.Verify(token, proof);
  if (!d.ok()) return absl::StrCat("error:", ::ta::ReasonOf(d.status()));
  return d->active ? "active" : d->inactive_reason;
}

// The answer once the verifier is current: on a loaded machine the follower it reads may
// lag for a moment and the verifier then fails closed (by design), so an
// error:revocations_stale answer is asked again, every 20 ms for up to 5 s.
inline std::string CurrentAnswer(const client::LocalVerifier& v, const std::string& token) {
  std::string word = VerifierAnswer(v, token);
  for (int i = 0; i < 250 && word == "error:revocations_stale"; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
    word = VerifierAnswer(v, token);
  }
  return word;
}

// Waits (real time, polling every 5 ms) until the view in use has a bookmark stamped at or
// after `after` by `clock` (the verifier's) and at least `resets` resets; whether it did
// within `timeout`. Then it holds every revocation its server held at `after`; a view that is
// merely current (WaitUntilCurrent) may still be one stamped up to max_staleness earlier.
inline bool AwaitBookmarkAfter(const client::LocalVerifier& v, const Clock& clock, absl::Time after,
                               absl::Duration timeout, uint64_t resets = 0) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    const client::VerifierState s = v.state();
    if (s.resets >= resets && s.bookmark_age.has_value() &&
        clock.Now() - *s.bookmark_age >= after) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  return false;
}

}  // namespace ta::testing

#endif  // TA_TESTS_SUPPORT_LOCAL_VERIFIER_H_

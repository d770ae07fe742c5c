// The local verifier (client/verifier.h, issue 25 item 2) against a real server in this process
// (tests/support/test_server.h: RocksDB, port 0, a FakeClock shared with the verifier):
// Verify answers as Introspect on a shared corpus, each width of revocation reaches it within
// its bound (timed), and a lost stream fails closed at the bound and recovers by itself.
#include "client/verifier.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/error.h"
#include "tests/support/local_verifier_server.h"
#include "tests/support/test_server.h"
#include "token/base64url.h"

namespace ta::testing {
namespace {

using client::LocalVerifier;
using client::LocalVerifierOptions;

// `token` with its header's member `name` set to `value` (signature kept).
std::string WithHeader(const std::string& token, const std::string& name,
                       const std::string& value) {
  std::vector<std::string> parts = absl::StrSplit(token, '.');
  std::string header = token::Base64UrlDecode(parts[0]).value();
  const std::string key = absl::StrCat("\"", name, "\":\"");
  size_t at = header.find(key);
  REQUIRE(at != std::string::npos);
  size_t end = header.find('"', at + key.size());
  header.replace(at + key.size(), end - at - key.size(), value);
  return absl::StrCat(token::Base64UrlEncode(header), ".", parts[1], ".", parts[2]);
}

// `token` with one bit of its signature flipped (still canonical base64url).
std::string Forged(const std::string& token) {
  const size_t dot = token.rfind('.');
  std::string sig = token::Base64UrlDecode(token.substr(dot + 1)).value();
  sig[sig.size() / 2] ^= 0x01;
  return absl::StrCat(token.substr(0, dot + 1), token::Base64UrlEncode(sig));
}

v1::TokenPair Issue(TestServer& server, const std::string& subject,
                    std::vector<std::string> audience = {}) {
  v1::IssueTokensRequest req;
  req.set_subject(subject);
  req.set_client_id("web");
  for (const std::string& a : audience) req.add_audience(a);
  v1::TokenPair pair;
  CallResult r = server.Issue(req, &pair);
  INFO(r.reason);
  REQUIRE(r.ok());
  return pair;
}

void RevokeJti(TestServer& server, const std::string& access_token) {
  v1::RevokeTokenRequest req;
  req.set_token(access_token);
  v1::RevokeTokenResponse resp;
  REQUIRE(server.Call(server.api(), &v1::TokenAuthority::Stub::RevokeToken, req, &resp).ok());
}
void RevokeFamily(TestServer& server, const std::string& family_id) {
  v1::RevokeFamilyRequest req;
  req.set_family_id(family_id);
  v1::RevokeFamilyResponse resp;
  REQUIRE(server.Call(server.api(), &v1::TokenAuthority::Stub::RevokeFamily, req, &resp).ok());
}
void RevokeSubject(TestServer& server, const std::string& subject) {
  v1::RevokeSubjectRequest req;
  req.set_subject(subject);
  v1::RevokeSubjectResponse resp;
  CallResult r = server.Call(server.admin(), &v1::TokenAdmin::Stub::RevokeSubject, req, &resp);
  INFO(r.reason);
  REQUIRE(r.ok());
}

TEST_CASE("LocalVerifier: Verify answers as Introspect on a shared corpus", "[client][verifier]") {
  TestServer server;
  std::unique_ptr<LocalVerifier> verifier = StartVerifier(VerifierOptionsFor(server));
  REQUIRE(verifier->WaitUntilCurrent(absl::Seconds(5)));

  struct Case {
    std::string name, token, expected;
  };
  std::vector<Case> corpus;
  const v1::TokenPair valid = Issue(server, "alice");
  corpus.push_back({"valid", valid.access_token(), "active"});
  corpus.push_back({"forged signature", Forged(valid.access_token()), "bad_signature"});
  corpus.push_back(
      {"wrong aud", Issue(server, "alice", {"other"}).access_token(), "audience_mismatch"});
  corpus.push_back({"wrong typ", WithHeader(valid.access_token(), "typ", "JWT"), "wrong_typ"});
  corpus.push_back(
      {"unknown kid", WithHeader(valid.access_token(), "kid", "no-such-kid"), "unknown_kid"});
  corpus.push_back({"garbage", "not.a.jwt", "malformed_token"});

  // Revocations of each width, and reuse detection.
  const v1::TokenPair by_jti = Issue(server, "bob");
  RevokeJti(server, by_jti.access_token());
  corpus.push_back({"revoked jti", by_jti.access_token(), "token_revoked"});
  const v1::TokenPair by_family = Issue(server, "bob");
  RevokeFamily(server, by_family.family_id());
  corpus.push_back({"revoked family", by_family.access_token(), "family_revoked"});
  const v1::TokenPair reused = Issue(server, "carol");
  v1::TokenPair next;
  REQUIRE(server.Refresh(reused.refresh_token(), &next).ok());
  CHECK(!server.Refresh(reused.refresh_token(), &next).ok());  // reuse: the family dies
  corpus.push_back({"reuse detected", next.access_token(), "family_revoked"});
  const v1::TokenPair cut = Issue(server, "dave");
  server.clock().Advance(absl::Seconds(1));
  RevokeSubject(server, "dave");
  corpus.push_back({"subject cutoff", cut.access_token(), "subject_revoked"});

  // A token of another issuer, signed by the same keys (the server restarted with another
  // --issuer and back; the verifier keeps its stream or resumes it).
  const std::string issuer = server.options().authority.issuer;
  const std::string address = server.address();
  server.Restart([&](ServerOptions& o) {
    o.listen = address;
    o.authority.issuer = "https://elsewhere.example";
  });
  const std::string other_iss = Issue(server, "erin").access_token();
  server.Restart([&](ServerOptions& o) {
    o.listen = address;
    o.authority.issuer = issuer;
  });
  corpus.push_back({"wrong iss", other_iss, "wrong_issuer"});

  // A rotated key: the old one still verifies, the new one signs; the verifier learns it
  // from the keys event (or on the unknown kid).
  v1::RotateSigningKeyRequest rotate;
  v1::RotateSigningKeyResponse rotated;
  REQUIRE(
      server.Call(server.admin(), &v1::TokenAdmin::Stub::RotateSigningKey, rotate, &rotated).ok());
  const v1::TokenPair after_rotation = Issue(server, "frank");
  corpus.push_back({"issued after a rotation", after_rotation.access_token(), "active"});
  // `valid` was signed by the key rotated out, which still verifies: active on both.

  // Not yet valid: the clocks go back past the leeway (the verifier shares the server's).
  REQUIRE(Sync(server, *verifier));
  REQUIRE(verifier->WaitUntilCurrent(absl::Seconds(5)));
  for (const Case& c : corpus) {
    INFO(c.name);
    const std::string server_answer = ServerAnswer(server, c.token);
    CHECK(server_answer == c.expected);
    CHECK(VerifierAnswer(*verifier, c.token) == server_answer);
  }

  server.clock().Advance(-absl::Minutes(5));
  REQUIRE(Sync(server, *verifier));
  for (const std::string& t : {valid.access_token(), after_rotation.access_token()}) {
    const std::string server_answer = ServerAnswer(server, t);
    CHECK((server_answer == "token_not_yet_valid" || server_answer == "iat_in_future"));
    CHECK(VerifierAnswer(*verifier, t) == server_answer);
  }
  // Expired: every token of the corpus, judged again an hour later.
  server.clock().Advance(absl::Minutes(5) + absl::Hours(1));
  REQUIRE(Sync(server, *verifier));
  for (const Case& c : corpus) {
    INFO(c.name);
    const std::string server_answer = ServerAnswer(server, c.token);
    if (c.expected == "active") CHECK(server_answer == "token_expired");
    CHECK(VerifierAnswer(*verifier, c.token) == server_answer);
  }

  // A refresh token: Introspect describes it (the store is needed); a local verifier of
  // access tokens answers not_an_access_token, as Introspect does with access_tokens_only.
  CHECK(VerifierAnswer(*verifier, next.refresh_token()) == "not_an_access_token");

  const client::VerifierState state = verifier->state();
  CHECK(state.keys >= 2);
  CHECK(!state.jwks_version.empty());
  CHECK(state.resets >= 2);  // the first stream and one after the restarts
}

// Polls (real time) until `token` is inactive for the verifier; the time it took.
absl::Duration TimeUntilInactive(const LocalVerifier& v, const std::string& token,
                                 absl::Time start) {
  const absl::Time deadline = start + absl::Seconds(5);
  while (absl::Now() < deadline) {
    absl::StatusOr<token::AccessDecision> d = v.Verify(token);
    if (d.ok() && !d->active) return absl::Now() - start;
    absl::SleepFor(absl::Microseconds(200));
  }
  return absl::InfiniteDuration();
}

TEST_CASE("LocalVerifier: each width of revocation reaches it within its bound (measured)",
          "[client][verifier]") {
  TestServer server;
  std::unique_ptr<LocalVerifier> verifier = StartVerifier(VerifierOptionsFor(server));
  REQUIRE(verifier->WaitUntilCurrent(absl::Seconds(5)));
  constexpr int kSamples = 17;  // per width: 51 in all
  std::vector<absl::Duration> all;
  for (const char* width : {"jti", "family", "subject"}) {
    std::vector<absl::Duration> samples;
    for (int i = 0; i < kSamples; ++i) {
      const std::string subject = absl::StrCat("user-", width, "-", i);
      const v1::TokenPair pair = Issue(server, subject);
      REQUIRE(VerifierAnswer(*verifier, pair.access_token()) == "active");
      const absl::Time start = absl::Now();
      if (std::string(width) == "jti") RevokeJti(server, pair.access_token());
      if (std::string(width) == "family") RevokeFamily(server, pair.family_id());
      if (std::string(width) == "subject") {
        server.clock().Advance(absl::Milliseconds(10));  // the cutoff is after iat
        RevokeSubject(server, subject);
      }
      const absl::Duration took = TimeUntilInactive(*verifier, pair.access_token(), start);
      CHECK(took <= absl::Seconds(1));
      samples.push_back(took);
    }
    std::sort(samples.begin(), samples.end());
    std::printf("revocation -> verifier, %s: p50 %.2f ms, max %.2f ms (n=%d, incl. the RPC)\n",
                width, absl::ToDoubleMilliseconds(samples[samples.size() / 2]),
                absl::ToDoubleMilliseconds(samples.back()), kSamples);
    all.insert(all.end(), samples.begin(), samples.end());
  }
  std::sort(all.begin(), all.end());
  std::printf("revocation -> verifier, all: p50 %.2f ms, max %.2f ms (n=%zu)\n",
              absl::ToDoubleMilliseconds(all[all.size() / 2]),
              absl::ToDoubleMilliseconds(all.back()), all.size());
  CHECK(verifier->state().entries >= 3 * kSamples);
}

TEST_CASE(
    "LocalVerifier: a lost stream answers until the bound, then revocations_stale, and "
    "recovers by itself",
    "[client][verifier]") {
  TestServer server;
  std::unique_ptr<LocalVerifier> verifier = StartVerifier(VerifierOptionsFor(server));
  REQUIRE(verifier->WaitUntilCurrent(absl::Seconds(5)));
  const v1::TokenPair alive = Issue(server, "alice");
  const v1::TokenPair dead = Issue(server, "bob");
  RevokeFamily(server, dead.family_id());
  REQUIRE(Sync(server, *verifier));
  CHECK(VerifierAnswer(*verifier, alive.access_token()) == "active");
  CHECK(verifier->state().connected);
  const std::string address = server.address();
  const std::string forged = Forged(alive.access_token());

  // The server stops; while it is down (inside Restart's tweak), the verifier is judged.
  server.Restart([&](ServerOptions& o) {
    o.listen = address;  // back on the same address and data dir
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (verifier->state().connected && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    CHECK(!verifier->state().connected);
    server.clock().Advance(absl::Milliseconds(900));  // within the bound: still answers
    CHECK(VerifierAnswer(*verifier, alive.access_token()) == "active");
    CHECK(VerifierAnswer(*verifier, dead.access_token()) == "family_revoked");
    server.clock().Advance(absl::Milliseconds(200));  // past it: fails closed
    CHECK(VerifierAnswer(*verifier, alive.access_token()) == "error:revocations_stale");
    CHECK(VerifierAnswer(*verifier, dead.access_token()) == "error:revocations_stale");
    CHECK(VerifierAnswer(*verifier, forged) == "bad_signature");  // a bad token is still inactive
    absl::StatusOr<token::AccessDecision> d = verifier->Verify(alive.access_token());
    CHECK(d.status().code() == absl::StatusCode::kUnavailable);
  });
  REQUIRE(server.address() == address);
  // Back: it reconnects (a reset: the epoch is per process) and is current again.
  CHECK(verifier->WaitUntilCurrent(absl::Seconds(5)));
  CHECK(VerifierAnswer(*verifier, alive.access_token()) == "active");
  CHECK(VerifierAnswer(*verifier, dead.access_token()) == "family_revoked");
  RevokeFamily(server, alive.family_id());
  REQUIRE(Sync(server, *verifier));
  CHECK(VerifierAnswer(*verifier, alive.access_token()) == "family_revoked");
  const client::VerifierState state = verifier->state();
  CHECK(state.connected);
  CHECK(state.reconnects >= 1);
  CHECK(state.resets == 2);
  CHECK(state.bookmark_age.has_value());
}

TEST_CASE("LocalVerifier: Verify of a seen token vs an Introspect round trip (measured)",
          "[client][verifier]") {
  TestServer server;
  std::unique_ptr<LocalVerifier> verifier = StartVerifier(VerifierOptionsFor(server));
  REQUIRE(verifier->WaitUntilCurrent(absl::Seconds(5)));
  const v1::TokenPair pair = Issue(server, "alice");
  constexpr int kRounds = 2000;
  absl::Time start = absl::Now();
  for (int i = 0; i < kRounds; ++i)
    REQUIRE(VerifierAnswer(*verifier, pair.access_token()) == "active");
  const absl::Duration local = (absl::Now() - start) / kRounds;
  start = absl::Now();
  for (int i = 0; i < kRounds; ++i) REQUIRE(ServerAnswer(server, pair.access_token()) == "active");
  const absl::Duration remote = (absl::Now() - start) / kRounds;
  std::printf("Verify (local): %.1f us/token; Introspect (gRPC, loopback): %.1f us/token\n",
              absl::ToDoubleMicroseconds(local), absl::ToDoubleMicroseconds(remote));
  CHECK(local < remote);
}

TEST_CASE("LocalVerifier: bad options are refused with the field named", "[client][verifier]") {
  LocalVerifierOptions o;
  o.server.target = "127.0.0.1:1";
  CHECK(LocalVerifier::Create(o).status().message() == "issuer: required");
  o.issuer = "x";
  o.max_staleness = absl::ZeroDuration();
  CHECK(LocalVerifier::Create(o).status().code() == absl::StatusCode::kInvalidArgument);
  o.max_staleness = absl::Seconds(1);
  // Nobody listens: it builds, and fails closed until a bookmark comes.
  absl::StatusOr<std::unique_ptr<LocalVerifier>> v = LocalVerifier::Create(o);
  REQUIRE(v.ok());
  CHECK(!(*v)->state().connected);
  CHECK(!(*v)->state().bookmark_age.has_value());
}

}  // namespace
}  // namespace ta::testing

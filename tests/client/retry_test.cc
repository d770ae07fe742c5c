// ta::client::Client's retry policy: idempotent calls retry on UNAVAILABLE and
// DEADLINE_EXCEEDED with backoff; IssueTokens, RefreshTokens and RotateSigningKey never
// retry; refusals never retry. Attempts are counted with the on_attempt hook.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/error.h"
#include "client/client.h"
#include "tests/client/client_test_util.h"

namespace ta::testing {
namespace {

namespace v1 = ::tokenauthority::v1;

// Options for `target` whose hook appends "<method>#<attempt>" to `attempts`.
client::ClientOptions CountingOptions(const std::string& target,
                                      std::vector<std::string>* attempts) {
  client::ClientOptions options;
  options.target = target;
  options.timeout = absl::Seconds(2);
  options.on_attempt = [attempts](absl::string_view method, int attempt) {
    attempts->push_back(absl::StrCat(method, "#", attempt));
  };
  return options;
}

std::unique_ptr<client::Client> MustCreate(const client::ClientOptions& options) {
  absl::StatusOr<std::unique_ptr<client::Client>> c = client::Client::Create(options);
  INFO(c.status().ToString());
  REQUIRE(c.ok());
  return *std::move(c);
}

TEST_CASE("Client: an idempotent call retries UNAVAILABLE max_attempts times with backoff",
          "[client][retry]") {
  std::vector<std::string> attempts;
  client::ClientOptions options = CountingOptions(DeadAddress(), &attempts);
  options.max_attempts = 3;
  options.initial_backoff = absl::Milliseconds(200);
  std::unique_ptr<client::Client> c = MustCreate(options);

  absl::Time start = absl::Now();
  absl::StatusOr<v1::GetStatsResponse> r = c->GetStats(v1::GetStatsRequest());
  absl::Duration elapsed = absl::Now() - start;
  REQUIRE(!r.ok());
  CHECK(r.status().code() == absl::StatusCode::kUnavailable);
  CHECK(ReasonOf(r.status()).empty());  // not the server's answer: no server reason
  CHECK(attempts == std::vector<std::string>{"/tokenauthority.v1.TokenAdmin/GetStats#1",
                                             "/tokenauthority.v1.TokenAdmin/GetStats#2",
                                             "/tokenauthority.v1.TokenAdmin/GetStats#3"});
  // Backoffs are at least half of 200 ms and 400 ms.
  CHECK(elapsed >= absl::Milliseconds(300));
}

TEST_CASE("Client: every idempotent method retries", "[client][retry]") {
  std::vector<std::string> attempts;
  client::ClientOptions options = CountingOptions(DeadAddress(), &attempts);
  options.max_attempts = 2;
  options.initial_backoff = absl::Milliseconds(1);
  options.max_backoff = absl::Milliseconds(1);
  std::unique_ptr<client::Client> c = MustCreate(options);
  CHECK(!c->Introspect(v1::IntrospectRequest()).ok());
  CHECK(!c->IntrospectBatch(v1::IntrospectBatchRequest()).ok());
  CHECK(!c->GetJwks(v1::GetJwksRequest()).ok());
  CHECK(!c->GetFamily(v1::GetFamilyRequest()).ok());
  CHECK(!c->ListFamilies(v1::ListFamiliesRequest()).ok());
  CHECK(!c->GetStats(v1::GetStatsRequest()).ok());
  CHECK(!c->RevokeToken(v1::RevokeTokenRequest()).ok());
  CHECK(!c->RevokeFamily(v1::RevokeFamilyRequest()).ok());
  CHECK(!c->RevokeSubject(v1::RevokeSubjectRequest()).ok());
  CHECK(!c->PurgeExpired(v1::PurgeExpiredRequest()).ok());
  REQUIRE(attempts.size() == 20);
  for (size_t i = 0; i < attempts.size(); i += 2) {  // each call: attempt 1, then attempt 2
    CHECK(absl::EndsWith(attempts[i], "#1"));
    CHECK(attempts[i + 1] == absl::StrCat(attempts[i].substr(0, attempts[i].size() - 2), "#2"));
  }
}

TEST_CASE("Client: IssueTokens, RefreshTokens and RotateSigningKey are never retried",
          "[client][retry]") {
  std::vector<std::string> attempts;
  client::ClientOptions options = CountingOptions(DeadAddress(), &attempts);
  options.max_attempts = 5;
  std::unique_ptr<client::Client> c = MustCreate(options);

  absl::StatusOr<v1::TokenPair> issued = c->IssueTokens(v1::IssueTokensRequest());
  REQUIRE(!issued.ok());
  CHECK(issued.status().code() == absl::StatusCode::kUnavailable);
  CHECK(!c->RefreshTokens(v1::RefreshTokensRequest()).ok());
  CHECK(!c->RotateSigningKey(v1::RotateSigningKeyRequest()).ok());
  CHECK(attempts == std::vector<std::string>{"/tokenauthority.v1.TokenAuthority/IssueTokens#1",
                                             "/tokenauthority.v1.TokenAuthority/RefreshTokens#1",
                                             "/tokenauthority.v1.TokenAdmin/RotateSigningKey#1"});
}

TEST_CASE("Client: DEADLINE_EXCEEDED is retried for idempotent calls only", "[client][retry]") {
  BlackHole hole;
  std::vector<std::string> attempts;
  client::ClientOptions options = CountingOptions(hole.address(), &attempts);
  options.timeout = absl::Milliseconds(200);
  options.max_attempts = 2;
  options.initial_backoff = absl::Milliseconds(1);
  options.max_backoff = absl::Milliseconds(1);
  std::unique_ptr<client::Client> c = MustCreate(options);

  absl::Time start = absl::Now();
  absl::StatusOr<v1::IntrospectResponse> r = c->Introspect(v1::IntrospectRequest());
  REQUIRE(!r.ok());
  CHECK(r.status().code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(attempts.size() == 2);
  CHECK(absl::Now() - start >= absl::Milliseconds(400));  // each attempt had its own deadline

  attempts.clear();
  absl::StatusOr<v1::TokenPair> issued = c->IssueTokens(v1::IssueTokensRequest());
  REQUIRE(!issued.ok());
  CHECK(issued.status().code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(attempts.size() == 1);
}

TEST_CASE("Client: a refusal from the server is not retried", "[client][retry]") {
  LiveServer server;
  std::vector<std::string> attempts;
  client::ClientOptions options = CountingOptions(server.address(), &attempts);
  options.api_key = server.api_key();
  std::unique_ptr<client::Client> c = MustCreate(options);
  v1::GetFamilyRequest req;
  req.set_family_id("AAAAAAAAAAAAAAAAAAAAAA");
  absl::StatusOr<v1::Family> r = c->GetFamily(req);
  REQUIRE(!r.ok());
  CHECK(r.status().code() == absl::StatusCode::kNotFound);
  CHECK(attempts.size() == 1);
}

TEST_CASE("Client: max_attempts = 1 disables retries", "[client][retry]") {
  std::vector<std::string> attempts;
  client::ClientOptions options = CountingOptions(DeadAddress(), &attempts);
  options.max_attempts = 1;
  std::unique_ptr<client::Client> c = MustCreate(options);
  CHECK(!c->GetJwks(v1::GetJwksRequest()).ok());
  CHECK(attempts.size() == 1);
}

TEST_CASE("ValidateClientOptions: names the bad field and never echoes the key", "[client]") {
  client::ClientOptions good;
  good.target = "127.0.0.1:1";
  REQUIRE(client::ValidateClientOptions(good).ok());

  auto refused = [](const client::ClientOptions& o, absl::string_view field) {
    absl::Status s = client::ValidateClientOptions(o);
    INFO(s.ToString());
    CHECK(s.code() == absl::StatusCode::kInvalidArgument);
    CHECK(absl::StrContains(s.message(), field));
    CHECK(!client::Client::Create(o).ok());
  };
  client::ClientOptions o = good;
  o.target = "";
  refused(o, "target");
  o = good;
  o.timeout = absl::ZeroDuration();
  refused(o, "timeout");
  o = good;
  o.max_attempts = 0;
  refused(o, "max_attempts");
  o = good;
  o.initial_backoff = absl::Seconds(5);
  refused(o, "initial_backoff");
  o = good;
  o.use_tls = true;
  o.cert_pem = "cert";
  refused(o, "key_pem");
  o = good;
  o.root_ca_pem = "ca";
  refused(o, "use_tls");
  o = good;
  o.api_key = "secret\nkey";
  refused(o, "api_key");
  CHECK(!absl::StrContains(client::ValidateClientOptions(o).message(), "secret"));
}

TEST_CASE("Client: TLS to a plaintext server fails as UNAVAILABLE", "[client]") {
  LiveServer server;
  client::ClientOptions options = server.Options();
  options.use_tls = true;
  options.timeout = absl::Seconds(2);
  options.max_attempts = 1;
  std::unique_ptr<client::Client> c = MustCreate(options);
  absl::StatusOr<v1::GetJwksResponse> r = c->GetJwks(v1::GetJwksRequest());
  REQUIRE(!r.ok());
  CHECK(r.status().code() == absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace ta::testing

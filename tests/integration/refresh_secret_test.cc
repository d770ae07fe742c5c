// Issue 22 (suspected): after refresh.secret was replaced, a refresh token minted under the
// old secret still refreshed, because only the stored hash of the token's secret was checked.
// Every secret is derived from the ring's refresh secret (DESIGN §3), so the check now
// re-derives it: replacing the secret invalidates every refresh token minted under the old
// one (a way to log everyone out after the secret leaked), and access tokens are unaffected.
#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "tests/support/test_server.h"
#include "token/base64url.h"

namespace ta::testing {
namespace {

// The key-directory ring (refresh.secret is a file there); a shared ring keeps its secret
// sealed in the store, where no file replaces it.
void KeyFiles(ServerOptions& o) {
  o.store.engine = "rocksdb";
  o.store.postgres_dsn.clear();
  o.key_encryption_key_file.clear();
  o.key_publish_delay.reset();
}

TEST_CASE(
    "RefreshTokens: a replaced refresh.secret invalidates refresh tokens minted under "
    "the old one",
    "[integration][refresh]") {
  TestServer s(KeyFiles);
  v1::TokenPair kept, dropped;
  REQUIRE(s.Issue("alice", &kept).ok());
  REQUIRE(s.Issue("bob", &dropped).ok());

  s.Restart();  // the same secret: tokens survive a restart
  v1::TokenPair next;
  REQUIRE(s.Refresh(kept.refresh_token(), &next).ok());

  {
    std::ofstream secret(s.options().key_dir + "/refresh.secret", std::ios::trunc);
    secret << token::Base64UrlEncode(std::string(32, 'N')) << "\n";
  }
  s.Restart();
  v1::TokenPair out;
  CallResult r = s.Refresh(dropped.refresh_token(), &out);
  CHECK(r.status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(r.reason == "invalid_refresh_token");
  r = s.Refresh(next.refresh_token(), &out);
  CHECK(r.reason == "invalid_refresh_token");
  v1::IntrospectResponse seen = s.Introspect(dropped.refresh_token());
  CHECK_FALSE(seen.active());
  CHECK(seen.inactive_reason() == "invalid_refresh_token");
  // Access tokens do not depend on it; new sessions rotate under the new secret.
  CHECK(s.Introspect(next.access_token()).active());
  v1::TokenPair fresh;
  REQUIRE(s.Issue("carol", &fresh).ok());
  CHECK(s.Refresh(fresh.refresh_token(), &out).ok());
}

}  // namespace
}  // namespace ta::testing

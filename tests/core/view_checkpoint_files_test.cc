// The revocation view checkpoint as a file (issue 27 item 2): mode 0600 and refused when others
// may read it (it holds the SipHash key), not used when written by a clock ahead of this one,
// rewritten only when the log moved with the same key, and a PostgreSQL replica that restarts
// from it and follows the shared log.
#include <catch2/catch.hpp>

#include "tests/core/view_checkpoint_env.h"

namespace ta::core {
namespace {

using namespace checkpoint_testing;  // NOLINT: the fixture of these tests

TEST_CASE(
    "ViewCheckpoint: the file is 0600, and one others may read (it holds the SipHash "
    "key) or a symbolic link is not used",
    "[core][view][checkpoint]") {
  Env env(Engine::kRocksDb);
  env.Revoke(50);
  env.FullLoadAndWrite();
  struct stat st;
  REQUIRE(::stat(env.path().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  ::chmod(env.path().c_str(), 0644);
  CHECK(ReasonOfRestore(env) == "checkpoint_permissions");
  ::chmod(env.path().c_str(), 0600);
  CHECK(ReasonOfRestore(env) == "used");
  std::filesystem::rename(env.path(), env.path() + ".real");
  std::filesystem::create_symlink(env.path() + ".real", env.path());
  CHECK(ReasonOfRestore(env) == "checkpoint_permissions");
}

TEST_CASE(
    "ViewCheckpoint: a clock before the instant the checkpoint was written reads the "
    "whole log (entries it left out as dead may live again)",
    "[core][view][checkpoint]") {
  Env env(Engine::kRocksDb);
  env.Revoke(50);
  env.FullLoadAndWrite();
  env.clock.Advance(absl::Seconds(-5));
  CHECK(ReasonOfRestore(env) == "checkpoint_clock");
  env.clock.Advance(absl::Seconds(10));
  CHECK(ReasonOfRestore(env) == "used");
}

TEST_CASE(
    "ViewCheckpointer: writes only when the log moved, and keeps the view's SipHash key "
    "across a restart",
    "[core][view][checkpoint]") {
  Env env(Engine::kRocksDb);
  token::KeyRingOptions key_options;
  key_options.key_dir = env.dir.Sub("keys");
  key_options.clock = &env.clock;
  std::unique_ptr<token::KeyRing> keys = token::KeyRing::Open(key_options).value();
  AuthorityOptions options;
  options.default_audience = {"api"};
  options.clock = &env.clock;
  options.view_checkpoint_path = env.path();
  auto authority = TokenAuthority::Create(options, env.store.get(), keys.get()).value();
  // An empty log: nothing to write.
  REQUIRE(authority->SaveViewCheckpoint().ok());
  CHECK_FALSE(std::filesystem::exists(env.path()));

  const Caller admin = Admin();
  const IssueRequest issue = Alice();
  TokenPair denied = authority->IssueTokens(issue, admin).value();
  TokenPair logged_out = authority->IssueTokens(issue, admin).value();
  TokenPair good = authority->IssueTokens(issue, admin).value();
  REQUIRE(authority->RevokeToken(denied.access_token, admin).ok());
  REQUIRE(authority->SaveViewCheckpoint().ok());
  REQUIRE(std::filesystem::exists(env.path()));
  const auto key = authority->view().sip_key();
  const auto written_at = std::filesystem::last_write_time(env.path());
  REQUIRE(authority->SaveViewCheckpoint().ok());  // nothing new: not rewritten
  CHECK(std::filesystem::last_write_time(env.path()) == written_at);
  // Revoked after the last checkpoint: the restart replays it.
  REQUIRE(authority->RevokeFamily(logged_out.family_id, "", "logout", admin).ok());

  authority.reset();
  env.Reopen();
  env.store->entries_read = 0;
  authority = TokenAuthority::Create(options, env.store.get(), keys.get()).value();
  CHECK(authority->view().sip_key() == key);  // the checkpoint's view, not a fresh one
  CHECK(env.store->entries_read <= 2);        // the anchor and the family revoked after it
  auto answer = [&](const std::string& token) {
    return authority->Introspect(IntrospectRequest{token, ""})->inactive_reason;
  };
  CHECK(answer(denied.access_token) == "token_revoked");
  CHECK(answer(logged_out.access_token) == "family_revoked");
  CHECK(answer(good.access_token).empty());
}

TEST_CASE(
    "ViewCheckpoint: a replica over PostgreSQL restarts from its checkpoint and follows "
    "the shared log from there",
    "[core][view][checkpoint][pg]") {
  Env env(Engine::kPostgres);
  token::KeyRingOptions key_options;
  key_options.key_dir = env.dir.Sub("keys");
  key_options.clock = &env.clock;
  std::unique_ptr<token::KeyRing> keys = token::KeyRing::Open(key_options).value();
  AuthorityOptions options;
  options.default_audience = {"api"};
  options.clock = &env.clock;
  options.shared_store = true;
  options.max_revocation_lag = absl::Minutes(1);  // the fake clock does not move by itself
  options.view_checkpoint_path = env.path();
  // Another replica on the same database (no checkpoint of its own here).
  std::unique_ptr<storage::TokenStore> other_store;
  {
    storage::PostgresStoreOptions o;
    o.dsn = env.db->dsn();
    o.clock = &env.clock;
    o.database_clock = &env.clock;
    o.reap_interval = absl::ZeroDuration();
    other_store = storage::OpenPostgresStore(o).value();
  }
  AuthorityOptions other_options = options;
  other_options.view_checkpoint_path = "";
  auto other = TokenAuthority::Create(other_options, other_store.get(), keys.get()).value();
  const Caller admin = Admin();
  const IssueRequest issue = Alice();
  std::vector<TokenPair> before, after;
  for (int i = 0; i < 20; ++i) before.push_back(other->IssueTokens(issue, admin).value());
  for (int i = 0; i < 20; ++i) after.push_back(other->IssueTokens(issue, admin).value());
  TokenPair good = other->IssueTokens(issue, admin).value();
  for (int i = 0; i < 20; i += 2) {
    REQUIRE(other->RevokeToken(before[i].access_token, admin).ok());
    REQUIRE(other->RevokeFamily(before[i + 1].family_id, "", "logout", admin).ok());
  }
  env.Revoke(300);  // more entries, so that reading the whole log again would show

  auto replica = TokenAuthority::Create(options, env.store.get(), keys.get()).value();
  REQUIRE(replica->SaveViewCheckpoint().ok());
  replica.reset();
  // While it is down, the other replica revokes more.
  for (int i = 0; i < 20; i += 2) {
    REQUIRE(other->RevokeToken(after[i].access_token, admin).ok());
    REQUIRE(other->RevokeFamily(after[i + 1].family_id, "", "logout", admin).ok());
  }
  env.Reopen();
  env.store->entries_read = 0;
  replica = TokenAuthority::Create(options, env.store.get(), keys.get()).value();
  // The anchor and the 20 entries after the checkpoint; the follower resumes after them.
  CHECK(env.store->entries_read <= 1 + 20);
  auto answer = [&](const std::string& token) {
    absl::StatusOr<Introspection> r = replica->Introspect(IntrospectRequest{token, ""});
    REQUIRE(r.ok());
    return r->inactive_reason;
  };
  for (const std::vector<TokenPair>* pairs : {&before, &after}) {
    for (int i = 0; i < 20; i += 2) {
      CHECK(answer((*pairs)[i].access_token) == "token_revoked");
      CHECK(answer((*pairs)[i + 1].access_token) == "family_revoked");
    }
  }
  CHECK(answer(good.access_token).empty());
  // And it still follows: a revocation by the other replica now reaches it.
  REQUIRE(other->RevokeFamily(good.family_id, "", "logout", admin).ok());
  env.clock.Advance(absl::Milliseconds(1));
  REQUIRE(replica->Introspect(IntrospectRequest{good.access_token, ""}).ok());
  bool seen = false;
  for (int i = 0; i < 500 && !seen; ++i) {
    seen = answer(good.access_token) == "family_revoked";
    if (!seen) absl::SleepFor(absl::Milliseconds(10));
  }
  CHECK(seen);
  CHECK(Mismatches(replica->view(), *env.FullLoad(), env.ids, env.clock.Now()) == 0);
}

}  // namespace
}  // namespace ta::core

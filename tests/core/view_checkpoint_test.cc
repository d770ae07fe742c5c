// The revocation view's checkpoint (issue 27 item 2): a restart loads it and replays only the
// log after it, with the same answers as a full load of the log; a file that is torn, corrupt,
// of another format version, readable by others, newer than the store's log (a restored
// store) or written by a clock ahead of this one is not used and the whole log is read; a
// crash between the temp file and the rename leaves the previous checkpoint in use. On the
// RocksDB store and on PostgreSQL (a replica following the shared log).
#include <catch2/catch.hpp>
#include <cstring>
#include <utility>

#include "tests/core/view_checkpoint_env.h"
#include "token/crypto.h"

namespace ta::core {
namespace {

using namespace checkpoint_testing;  // NOLINT: the fixture of these tests

TEST_CASE(
    "ViewCheckpoint: a restart from a checkpoint answers as a full load of the log, "
    "entries appended after the checkpoint included",
    "[core][view][checkpoint][pg]") {
  for (Engine engine : {Engine::kRocksDb, Engine::kPostgres}) {
    INFO(Name(engine));
    Env env(engine);
    env.Revoke(400);
    const LogPosition written = env.FullLoadAndWrite();
    CHECK(written.seq > 0);
    env.Revoke(200);  // after the checkpoint: only the replay brings these
    env.clock.Advance(absl::Seconds(20));
    env.Reopen();

    env.store->entries_read = 0;
    LogPosition covered;
    std::unique_ptr<RevocationView> restarted = env.RestoreAndReplay(&covered);
    CHECK(covered.seq == written.seq);
    CHECK(restarted->last_seq() >= written.seq);
    // The anchor (1 entry) and the entries after the checkpoint: never the whole log again.
    const size_t read_by_restart = env.store->entries_read;
    std::unique_ptr<RevocationView> reference = env.FullLoad();
    const size_t whole_log = env.store->entries_read - read_by_restart;
    CHECK(read_by_restart < whole_log);
    CHECK(read_by_restart <= 1 + 200 * 3);  // a subject update appends up to 2 entries
    size_t revoked = 0;
    CHECK(Mismatches(*restarted, *reference, env.ids, env.clock.Now(), &revoked) == 0);
    CHECK(revoked > 100);
  }
}

// Section k of `file` (the format in server/core/view_checkpoint.h): its offset and size.
std::pair<size_t, size_t> SectionAt(const std::string& file, size_t k) {
  auto count = [&](size_t shard, size_t which) {
    uint64_t n;
    std::memcpy(&n, file.data() + 64 + shard * 16 + which * 8, 8);
    return static_cast<size_t>(n);
  };
  size_t offset = 352;
  for (size_t i = 0; i < k; ++i) offset += (count(i, 0) + count(i, 1)) * 24 + 32;
  return {offset, (count(k, 0) + count(k, 1)) * 24 + 32};
}

TEST_CASE(
    "ViewCheckpoint: a file whose digests all match but whose sections hold another shard's "
    "entries is not used",
    "[core][view][checkpoint]") {
  Env env(Engine::kRocksDb);
  env.Revoke(300);
  env.FullLoadAndWrite();
  const std::string good = ReadFile(env.path());
  REQUIRE(ReasonOfRestore(env) == "used");
  // Shards 0 and 1 swapped: their sections (each with its own SHA-256) and their counts in
  // the header, whose SHA-256 is then made again. Every digest matches; the layout does not.
  const auto [off0, size0] = SectionAt(good, 0);
  const auto [off1, size1] = SectionAt(good, 1);
  REQUIRE(off1 == off0 + size0);
  REQUIRE(size0 > 32);
  REQUIRE(size1 > 32);
  std::string swapped = good.substr(0, off0) + good.substr(off1, size1) + good.substr(off0, size0) +
                        good.substr(off1 + size1);
  std::string counts0 = good.substr(64, 16);
  swapped.replace(64, 16, good.substr(80, 16));
  swapped.replace(80, 16, counts0);
  swapped.replace(320, 32, token::Sha256(swapped.substr(0, 320)));
  WriteFile(env.path(), swapped);
  CHECK(ReasonOfRestore(env) == "checkpoint_corrupt");
}

TEST_CASE(
    "ViewCheckpoint: a torn, corrupt or foreign-version checkpoint is not used, and the "
    "full load answers the same",
    "[core][view][checkpoint]") {
  Env env(Engine::kRocksDb);
  env.Revoke(300);
  env.FullLoadAndWrite();
  const std::string good = ReadFile(env.path());
  REQUIRE(good.size() > 352 + 16 * 32);
  REQUIRE(ReasonOfRestore(env) == "used");
  struct Damage {
    std::string what, bytes, reason;
  };
  std::string flipped_header = good, flipped_entry = good, flipped_digest = good;
  std::string other_version = good;
  flipped_header[20] ^= 0x01;               // the covered seq
  flipped_entry[good.size() / 2] ^= 0x40;   // inside some section's entries
  flipped_digest[good.size() - 1] ^= 0x01;  // the last section's SHA-256
  other_version[8] = 2;                     // format version 2
  const std::vector<Damage> damages = {
      {"empty", "", "checkpoint_corrupt"},
      {"torn in the header", good.substr(0, 100), "checkpoint_corrupt"},
      {"only the header", good.substr(0, 352), "checkpoint_corrupt"},
      {"torn in a section", good.substr(0, good.size() / 2), "checkpoint_corrupt"},
      {"one byte short", good.substr(0, good.size() - 1), "checkpoint_corrupt"},
      {"one byte more", good + "x", "checkpoint_corrupt"},
      {"a header bit flipped", flipped_header, "checkpoint_corrupt"},
      {"an entry bit flipped", flipped_entry, "checkpoint_corrupt"},
      {"a digest bit flipped", flipped_digest, "checkpoint_corrupt"},
      {"another format version", other_version, "checkpoint_version"},
      {"not a checkpoint", std::string(good.size(), 'z'), "checkpoint_corrupt"},
  };
  for (const Damage& d : damages) {
    INFO(d.what);
    WriteFile(env.path(), d.bytes);
    CHECK(ReasonOfRestore(env) == d.reason);
  }

  // The authority then loads the whole log, and a later checkpoint replaces the bad file.
  WriteFile(env.path(), flipped_entry);
  token::KeyRingOptions key_options;
  key_options.key_dir = env.dir.Sub("keys");
  key_options.clock = &env.clock;
  std::unique_ptr<token::KeyRing> keys = token::KeyRing::Open(key_options).value();
  AuthorityOptions options;
  options.default_audience = {"api"};
  options.clock = &env.clock;
  options.view_checkpoint_path = env.path();
  std::unique_ptr<TokenAuthority> authority =
      TokenAuthority::Create(options, env.store.get(), keys.get()).value();
  CHECK(Mismatches(authority->view(), *env.FullLoad(), env.ids, env.clock.Now()) == 0);
  REQUIRE(authority->SaveViewCheckpoint().ok());
  CHECK(ReasonOfRestore(env) == "used");
}

TEST_CASE(
    "ViewCheckpoint: a checkpoint newer than the store's log (a restored store) is not "
    "used, and the full load answers the same",
    "[core][view][checkpoint][pg]") {
  for (Engine engine : {Engine::kRocksDb, Engine::kPostgres}) {
    INFO(Name(engine));
    Env env(engine);
    env.Revoke(100);
    const LogPosition backup_point = env.FullLoadAndWrite();
    // The backup: the store as it is now.
    const std::string backup = env.dir.Sub("backup");
    if (engine == Engine::kRocksDb) {
      env.store.reset();
      std::filesystem::copy(env.dir.Sub("db"), backup, std::filesystem::copy_options::recursive);
      env.Reopen();
    }
    const Ids ids_at_backup = env.ids;
    env.Revoke(100);
    const LogPosition written = env.FullLoadAndWrite();
    REQUIRE(written.seq > backup_point.seq);

    // Restored: the log ends before the checkpoint's entry ...
    if (engine == Engine::kRocksDb) {
      env.store.reset();
      std::filesystem::remove_all(env.dir.Sub("db"));
      std::filesystem::copy(backup, env.dir.Sub("db"), std::filesystem::copy_options::recursive);
      env.Reopen();
    } else {
      // ... as a point-in-time recovery of the database would leave it.
      auto sql = storage::SqlSession::Connect(env.db->dsn()).value();
      REQUIRE(sql->Execute(absl::StrCat("DELETE FROM ta_revocations WHERE seq > ", backup_point.seq,
                                        "; UPDATE ta_meta SET value = ", backup_point.seq,
                                        " WHERE name = 'revocation_seq'"))
                  .ok());
      env.Reopen();
    }
    CHECK(ReasonOfRestore(env) == "checkpoint_other_log");
    // ... and then new revocations take the numbers the checkpoint covered, with other ids.
    env.ids = ids_at_backup;
    while (env.store->ReadRevocations(written.seq - 1, absl::InfinitePast(), 1)->empty()) {
      env.Revoke(20);
    }
    CHECK(ReasonOfRestore(env) == "checkpoint_other_log");

    token::KeyRingOptions key_options;
    key_options.key_dir = env.dir.Sub("keys");
    key_options.clock = &env.clock;
    std::unique_ptr<token::KeyRing> keys = token::KeyRing::Open(key_options).value();
    AuthorityOptions options;
    options.default_audience = {"api"};
    options.clock = &env.clock;
    options.view_checkpoint_path = env.path();
    std::unique_ptr<TokenAuthority> authority =
        TokenAuthority::Create(options, env.store.get(), keys.get()).value();
    size_t revoked = 0;
    CHECK(Mismatches(authority->view(), *env.FullLoad(), env.ids, env.clock.Now(), &revoked) == 0);
    CHECK(revoked > 50);
  }
}

TEST_CASE(
    "ViewCheckpoint: a crash between the temp file and the rename leaves the previous "
    "checkpoint in use",
    "[core][view][checkpoint]") {
  Env env(Engine::kRocksDb);
  env.Revoke(200);
  const LogPosition first = env.FullLoadAndWrite();
  const std::string first_bytes = ReadFile(env.path());
  env.Revoke(100);

  auto view = std::make_unique<RevocationView>(false, absl::Seconds(1), &env.clock);
  const LogPosition loaded = ReplayRevocationLog(*env.store, *view, {}, env.clock.Now()).value();
  REQUIRE(loaded.seq > first.seq);
  const absl::Status crashed = env.Write(*view, loaded, /*fail_before_rename=*/true);
  REQUIRE(crashed.code() == absl::StatusCode::kInternal);
  // The new file is complete in <path>.tmp, the old one untouched at <path>.
  CHECK(std::filesystem::exists(env.path() + ".tmp"));
  CHECK(ReadFile(env.path()) == first_bytes);

  for (bool torn_tmp : {false, true}) {
    INFO("temp file torn: " << torn_tmp);
    if (torn_tmp) {
      const std::string tmp = ReadFile(env.path() + ".tmp");
      WriteFile(env.path() + ".tmp", tmp.substr(0, tmp.size() / 3));
    }
    LogPosition covered;
    std::unique_ptr<RevocationView> restarted = env.RestoreAndReplay(&covered);
    CHECK(covered.seq == first.seq);  // the previous checkpoint, then the log after it
    CHECK(Mismatches(*restarted, *env.FullLoad(), env.ids, env.clock.Now()) == 0);
  }
  // The next write replaces both.
  REQUIRE(env.Write(*view, loaded).ok());
  CHECK_FALSE(std::filesystem::exists(env.path() + ".tmp"));
  LogPosition covered;
  env.RestoreAndReplay(&covered);
  CHECK(covered.seq == loaded.seq);
}

}  // namespace
}  // namespace ta::core

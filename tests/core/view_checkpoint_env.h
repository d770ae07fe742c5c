// Shared by the view checkpoint tests (view_checkpoint_test.cc, view_checkpoint_files_test.cc):
// a store on either engine with a fake clock, a workload that revokes, and comparisons of
// two views over every id the workload revoked.
#ifndef TA_TESTS_CORE_VIEW_CHECKPOINT_ENV_H_
#define TA_TESTS_CORE_VIEW_CHECKPOINT_ENV_H_

#include "server/core/view_checkpoint.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/error.h"
#include "server/core/authority.h"
#include "token/revocation_view.h"
#include "server/token/key_ring.h"
#include "storage/postgres/postgres_store.h"
#include "storage/postgres/sql_session.h"
#include "storage/rocksdb/rocksdb_store.h"
#include "tests/storage/test_util.h"
#include "tests/support/pg_cluster.h"
#include "tests/support/forwarding_store.h"
#include "tests/support/temp_dir.h"


namespace ta::core::checkpoint_testing {

using storage::testing::MakeFamily;
using storage::testing::MakeRefresh;
using storage::testing::MakeSubjectUpdate;

enum class Engine { kRocksDb, kPostgres };

inline const char* Name(Engine e) { return e == Engine::kRocksDb ? "rocksdb" : "postgres"; }

// Counts the log entries a store hands out (ReadRevocations); forwards everything.
class CountingStore final : public ta::testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  std::atomic<size_t> entries_read{0};

  absl::StatusOr<std::vector<storage::RevocationEntry>> ReadRevocations(uint64_t after,
                                                                        absl::Time now,
                                                                        size_t limit) override {
    auto read = ForwardingStore::ReadRevocations(after, now, limit);
    if (read.ok()) entries_read += read->size();
    return read;
  }
};

// The ids the workload revoked, to ask every one of them afterwards.
struct Ids {
  std::vector<std::string> jtis, families;
};

inline std::string RandomId(std::mt19937_64& rng) {
  std::string id(16, '\0');
  for (char& c : id) c = static_cast<char>(rng() & 0xff);
  return id;
}

// A store (RocksDB in a temp dir, or a fresh PostgreSQL database), a fake clock, and the
// checkpoint's path.
struct Env {
  explicit Env(Engine engine) : engine(engine) {
    if (engine == Engine::kPostgres) {
      absl::StatusOr<std::unique_ptr<ta::testing::TestDatabase>> created =
          ta::testing::TestDatabase::Create();
      INFO(created.status().ToString());
      REQUIRE(created.ok());
      db = *std::move(created);
    }
    Reopen();
  }
  // Closes and opens the store again (a process restart, as far as the store goes).
  void Reopen() {
    store.reset();
    absl::StatusOr<std::unique_ptr<storage::TokenStore>> opened;
    if (engine == Engine::kPostgres) {
      storage::PostgresStoreOptions o;
      o.dsn = db->dsn();
      o.clock = &clock;
      o.database_clock = &clock;
      o.reap_interval = absl::ZeroDuration();
      opened = storage::OpenPostgresStore(o);
    } else {
      storage::RocksDbStoreOptions o;
      o.path = dir.Sub("db");
      o.clock = &clock;
      opened = storage::OpenRocksDbStore(o);
    }
    INFO(opened.status().ToString());
    REQUIRE(opened.ok());
    store = std::make_unique<CountingStore>(*std::move(opened));
  }
  std::string path() const { return dir.Sub("revocation_view.ckpt"); }

  // Appends `n` revocations of every kind (jtis, some denied again; families revoked;
  // families killed by their subject's cutoff), live for 1 s .. 10 min, the clock moving.
  void Revoke(int n) {
    for (int i = 0; i < n; ++i) {
      const absl::Time now = clock.Now();
      const absl::Duration life = absl::Seconds(1 + static_cast<int64_t>(rng() % 600));
      switch (rng() % 4) {
        case 0:
        case 1: {
          std::string jti = !ids.jtis.empty() && rng() % 5 == 0
                                ? ids.jtis[rng() % ids.jtis.size()]
                                : absl::StrCat("jti-", ids.jtis.size(), "-", rng() % 1000000);
          REQUIRE(store->DenyJti(jti, now + life).ok());
          ids.jtis.push_back(std::move(jti));
          break;
        }
        case 2: {
          const std::string id = NewFamily("someone", life);
          REQUIRE(store->RevokeFamily(id, "logout", "tests", now).ok());
          break;
        }
        default: {
          const std::string subject = absl::StrCat("subject-", ++subjects);
          NewFamily(subject, life);
          NewFamily(subject, life / 2);
          clock.Advance(absl::Milliseconds(1));
          REQUIRE(store->UpdateSubject(MakeSubjectUpdate(subject, clock.Now())).ok());
        }
      }
      clock.Advance(absl::Milliseconds(static_cast<int64_t>(rng() % 50)));
    }
  }
  std::string NewFamily(const std::string& subject, absl::Duration access_life) {
    const std::string id = RandomId(rng);
    storage::FamilyRecord f = MakeFamily(id, subject, clock.Now());
    f.access_live_until = clock.Now() + access_life;
    REQUIRE(store->CreateFamily(f, MakeRefresh(id, 0, clock.Now()), std::nullopt).ok());
    ids.families.push_back(id);
    return id;
  }

  ViewSettings Settings() const { return ViewSettings{false, absl::Seconds(1), &clock}; }
  // What a start does without a checkpoint: the reference.
  std::unique_ptr<RevocationView> FullLoad() {
    auto view = std::make_unique<RevocationView>(false, absl::Seconds(1), &clock);
    REQUIRE(ReplayRevocationLog(*store, *view, {}, clock.Now()).ok());
    return view;
  }
  // A start from the checkpoint: restore, then replay the log after it.
  std::unique_ptr<RevocationView> RestoreAndReplay(LogPosition* covered = nullptr) {
    absl::StatusOr<RestoredView> restored =
        RestoreViewCheckpoint(path(), Settings(), *store, clock.Now(), 2);
    INFO(restored.status().ToString());
    REQUIRE(restored.ok());
    REQUIRE(ReplayRevocationLog(*store, *restored->view, restored->covered, clock.Now()).ok());
    if (covered != nullptr) *covered = restored->covered;
    return std::move(restored->view);
  }
  // Writes a checkpoint of `view` (which holds the log up to `loaded`).
  absl::Status Write(RevocationView& view, LogPosition loaded, bool fail_before_rename = false) {
    ViewCheckpointOptions o;
    o.path = path();
    o.clock = &clock;
    o.fail_before_rename_for_testing = fail_before_rename;
    ViewCheckpointer writer(o, store.get(), &view, loaded);
    return writer.WriteNow();
  }
  // A view loaded in full now, checkpointed; returns the position the checkpoint covers.
  LogPosition FullLoadAndWrite() {
    auto view = std::make_unique<RevocationView>(false, absl::Seconds(1), &clock);
    absl::StatusOr<LogPosition> loaded = ReplayRevocationLog(*store, *view, {}, clock.Now());
    REQUIRE(loaded.ok());
    REQUIRE(Write(*view, *loaded).ok());
    return *loaded;
  }

  Engine engine;
  ta::testing::TempDir dir;
  FakeClock clock;
  std::mt19937_64 rng{27};
  int subjects = 0;
  Ids ids;
  std::unique_ptr<ta::testing::TestDatabase> db;
  std::unique_ptr<CountingStore> store;
};

// How many (id, instant) questions `got` answers differently from `want`, over every id the
// workload revoked (and ids it did not) at instants from now to past every entry's end.
// `revoked`: how many of `want`'s answers at now were "revoked" (so the comparison is not
// vacuous).
inline size_t Mismatches(const RevocationView& got, const RevocationView& want, const Ids& ids,
                  absl::Time now, size_t* revoked = nullptr) {
  size_t wrong = 0;
  const std::string no_family(16, '\x01');
  for (absl::Duration ahead : {absl::ZeroDuration(), absl::Seconds(1), absl::Seconds(30),
                               absl::Minutes(3), absl::Minutes(7), absl::Minutes(11)}) {
    const absl::Time t = now + ahead;
    for (const std::string& jti : ids.jtis) {
      const absl::string_view answer = want.Check(jti, no_family, t);
      wrong += got.Check(jti, no_family, t) != answer;
      if (revoked != nullptr && ahead == absl::ZeroDuration()) *revoked += !answer.empty();
    }
    for (const std::string& family : ids.families) {
      const absl::string_view answer = want.Check("never-revoked", family, t);
      wrong += got.Check("never-revoked", family, t) != answer;
      if (revoked != nullptr && ahead == absl::ZeroDuration()) *revoked += !answer.empty();
    }
    wrong += !got.Check("never-revoked", no_family, t).empty();
  }
  return wrong;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  ::chmod(path.c_str(), 0600);
}

inline Caller Admin() {
  Caller admin;
  admin.name = "ops";
  admin.roles = {Role::kAdmin};
  return admin;
}

inline IssueRequest Alice() {
  IssueRequest issue;
  issue.subject = "alice";
  issue.client_id = "web";
  return issue;
}

inline std::string ReasonOfRestore(Env& env) {
  absl::StatusOr<RestoredView> restored =
      RestoreViewCheckpoint(env.path(), env.Settings(), *env.store, env.clock.Now(), 2);
  return restored.ok() ? "used" : ReasonOf(restored.status());
}

}  // namespace ta::core::checkpoint_testing

#endif  // TA_TESTS_CORE_VIEW_CHECKPOINT_ENV_H_

// PostgresStore: opening, the plain reads and writes, the reaper and stats. The operations
// ordered by the subject lock are in ordered_ops.cc.
#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "base/status_macros.h"
#include "storage/codec.h"  // kFamilyIdSize, kMaxSubjectSize
#include "storage/postgres/schema.h"
#include "storage/postgres/store_impl.h"
#include "storage/store_rules.h"

namespace ta::storage {
namespace pg {
namespace {

constexpr size_t kMaxJtiSize = 1024;
constexpr int kMaxPageSize = 1000;
constexpr int kDefaultPageSize = 50;
// Below this many rows (by the planner's estimate) GetStats counts exactly.
constexpr int64_t kExactCountBelow = 100'000;

absl::Status NotFound(absl::string_view what) {
  return ta::Error(absl::StatusCode::kNotFound, "not_found",
                   absl::StrCat("token store: ", what, " not found"));
}

absl::Status ValidateOptions(const PostgresStoreOptions& o) {
  if (o.pool_size < 1) return ta::InvalidField("pool_size", "pool_size must be >= 1");
  if (o.max_attempts < 1) return ta::InvalidField("max_attempts", "max_attempts must be >= 1");
  if (o.reap_batch < 1) return ta::InvalidField("reap_batch", "reap_batch must be >= 1");
  if (o.clock == nullptr) return ta::InvalidField("clock", "PostgresStoreOptions.clock is null");
  if (o.statement_timeout <= absl::ZeroDuration() || o.acquire_timeout <= absl::ZeroDuration()) {
    return ta::InvalidField("timeout", "statement_timeout and acquire_timeout must be > 0");
  }
  if (o.family_retention < absl::ZeroDuration() || o.refresh_retention < absl::ZeroDuration() ||
      o.reap_interval < absl::ZeroDuration()) {
    return ta::InvalidField("retention", "retentions and reap_interval must be >= 0");
  }
  if (o.purge_margin < absl::ZeroDuration()) {
    return ta::InvalidField("purge_margin", "purge_margin must be >= 0");
  }
  return absl::OkStatus();
}

std::string SessionSetup(const PostgresStoreOptions& o) {
  return absl::StrCat("SET statement_timeout = ", absl::ToInt64Milliseconds(o.statement_timeout),
                      "; SET synchronous_commit = on;"
                      " SET default_transaction_isolation = 'read committed'");
}

}  // namespace

PostgresStore::PostgresStore(const PostgresStoreOptions& options, ConnectParams params)
    : options_(options),
      pool_(std::move(params), SessionSetup(options), options.pool_size, options.acquire_timeout) {}

PostgresStore::~PostgresStore() {
  stopping_.Notify();
  if (reaper_.has_value()) reaper_->join();
}

absl::Status PostgresStore::Start() {
  {
    ASSIGN_OR_RETURN(Pool::Lease conn, pool_.Acquire());
    RETURN_IF_ERROR(Migrate(*conn));
  }
  if (options_.reap_interval > absl::ZeroDuration()) reaper_.emplace([this] { ReaperLoop(); });
  return absl::OkStatus();
}

absl::Status PostgresStore::RunOnce(Body body, bool transaction, bool* lost) {
  *lost = false;
  ASSIGN_OR_RETURN(Pool::Lease conn, pool_.Acquire());
  absl::Status s = transaction ? conn->Command("BEGIN") : absl::OkStatus();
  if (!s.ok()) {
    // Nothing of the body ran, so a dead connection (a server restart) is safely retried;
    // not one that timed out: the server is hung, and another attempt would only wait again.
    *lost = conn->broken() && !conn->timed_out();
  } else {
    s = body(*conn);
    if (transaction) {
      if (s.ok()) {
        s = conn->Command("COMMIT");
      } else if (!conn->broken()) {
        conn->Command("ROLLBACK").IgnoreError();  // the body's status is the one to report
      }
    } else if (!s.ok()) {
      *lost = conn->broken() && !conn->timed_out();  // only idempotent bodies run outside one
    }
  }
  if (conn->broken()) pool_.DropIdle();
  return s;
}

absl::Status PostgresStore::Run(Body body) {
  bool lost = false;
  absl::Status s = RunOnce(body, /*transaction=*/false, &lost);
  if (lost) s = RunOnce(body, /*transaction=*/false, &lost);
  return s;
}

absl::Status PostgresStore::RunTransaction(Body body) {
  bool reconnected = false;
  for (int attempt = 1;; ++attempt) {
    bool lost = false;
    absl::Status s = RunOnce(body, /*transaction=*/true, &lost);
    if (lost && !reconnected) {
      reconnected = true;
      --attempt;
      continue;
    }
    if (!IsRetryable(s) || attempt >= options_.max_attempts) return s;
  }
}

absl::StatusOr<std::optional<FamilyRecord>> PostgresStore::LoadFamily(Connection& c,
                                                                      absl::string_view id,
                                                                      absl::Time now) {
  if (id.size() != kFamilyIdSize) return std::nullopt;
  ASSIGN_OR_RETURN(Rows rows, c.Exec(sql::kGetFamily, Params().Bytes(id)));
  if (rows.size() == 0) return std::nullopt;
  ASSIGN_OR_RETURN(WithDropAfter<FamilyRecord> f, FamilyAt(rows, 0));
  if (now > f.drop_after) return std::nullopt;
  return std::move(f.record);
}

absl::StatusOr<FamilyRecord> PostgresStore::GetFamily(absl::string_view family_id,
                                                      absl::Time now) {
  std::optional<FamilyRecord> family;
  RETURN_IF_ERROR(Run([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(family, LoadFamily(c, family_id, now));
    return absl::OkStatus();
  }));
  if (!family.has_value()) return NotFound("family");
  return *std::move(family);
}

absl::StatusOr<RefreshRecord> PostgresStore::GetRefresh(absl::string_view family_id,
                                                        uint64_t generation, absl::Time now) {
  if (family_id.size() != kFamilyIdSize) return NotFound("refresh record");
  std::optional<WithDropAfter<RefreshRecord>> record;
  RETURN_IF_ERROR(Run([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(Rows rows, c.Exec(sql::kGetRefresh, Params().Bytes(family_id).Int64(
                                                             static_cast<int64_t>(generation))));
    if (rows.size() == 0) return absl::OkStatus();
    ASSIGN_OR_RETURN(record, RefreshAt(rows, 0));
    return absl::OkStatus();
  }));
  if (!record.has_value() || now > record->drop_after) return NotFound("refresh record");
  return std::move(record->record);
}

absl::StatusOr<bool> PostgresStore::RevokeFamily(absl::string_view family_id,
                                                 absl::string_view reason,
                                                 absl::string_view revoked_by, absl::Time now) {
  if (family_id.size() != kFamilyIdSize) return NotFound("family");
  bool found = false;
  std::vector<RevocationEntry> logged;
  RETURN_IF_ERROR(RunTransaction([&](Connection& c) -> absl::Status {
    logged.clear();
    ASSIGN_OR_RETURN(Rows rows, c.Exec(sql::kRevokeFamily, Params().Bytes(family_id).Time(now)
                                                               .Bytes(reason).Bytes(revoked_by)));
    if (rows.size() == 1) {  // a corrupt row is reported, and the transaction rolled back
      ASSIGN_OR_RETURN(WithDropAfter<FamilyRecord> f, FamilyAt(rows, 0));
      logged.push_back(FamilyRevocation(f.record, RevocationEntry::Kind::kFamily, now));
      return Append(c, logged.back());
    }
    ASSIGN_OR_RETURN(std::optional<FamilyRecord> family, LoadFamily(c, family_id, now));
    found = family.has_value();
    return absl::OkStatus();
  }));
  Announce(logged);
  if (logged.empty() && !found) return NotFound("family");
  return !logged.empty();
}

absl::Status PostgresStore::DenyJti(absl::string_view jti, absl::Time expires_at) {
  if (jti.empty() || jti.size() > kMaxJtiSize) {
    return ta::InvalidField("jti", "jti must be 1 to 1024 bytes");
  }
  RevocationEntry entry;
  entry.kind = RevocationEntry::Kind::kJti;
  entry.id = std::string(jti);
  entry.revoked_at = options_.clock->Now();
  entry.live_until = expires_at;
  RETURN_IF_ERROR(RunTransaction([&](Connection& c) -> absl::Status {
    // A second denial never shortens the first: the row keeps the later expiry (the upsert
    // returns it) and the log entry carries the same, so the reaper drops both together.
    ASSIGN_OR_RETURN(Rows rows, c.Exec(sql::kDenyJti, Params().Bytes(jti).Time(expires_at)));
    if (rows.size() != 1) return absl::InternalError("ta_deny_jti returned no row");
    ASSIGN_OR_RETURN(entry.live_until, rows.Time(0, 0));
    return Append(c, entry);
  }));
  Announce({entry});
  return absl::OkStatus();
}

absl::Status PostgresStore::Append(Connection& c, RevocationEntry& entry) {
  Params params;
  params.Int64(static_cast<int64_t>(entry.kind)).Bytes(entry.id).Time(entry.revoked_at);
  params.Time(entry.live_until);
  ASSIGN_OR_RETURN(Rows rows, c.Exec(sql::kAppendRevocation, params));
  if (rows.size() != 1) {
    return ta::Error(absl::StatusCode::kDataLoss, "store_corrupt",
                     "token store: ta_meta has no revocation_seq");
  }
  ASSIGN_OR_RETURN(int64_t seq, rows.Int64(0, 0));
  entry.seq = static_cast<uint64_t>(seq);
  return absl::OkStatus();
}

absl::Status PostgresStore::AppendAll(Connection& c, std::vector<RevocationEntry>& entries) {
  if (entries.empty()) return absl::OkStatus();
  if (entries.size() == 1) return Append(c, entries.front());
  std::vector<int64_t> kinds, revoked_at, live_until;
  std::vector<std::string> ids;
  for (const RevocationEntry& e : entries) {
    kinds.push_back(static_cast<int64_t>(e.kind));
    ids.push_back(e.id);
    revoked_at.push_back(TimeToMicros(e.revoked_at));
    live_until.push_back(TimeToMicros(e.live_until));
  }
  Params params;
  params.Int64Array(kinds).BytesArray(ids).Int64Array(revoked_at).Int64Array(live_until);
  ASSIGN_OR_RETURN(Rows rows, c.Exec(sql::kAppendRevocations, params));
  if (rows.size() != static_cast<int>(entries.size())) {
    return ta::Error(absl::StatusCode::kDataLoss, "store_corrupt",
                     "token store: ta_meta has no revocation_seq");
  }
  int64_t first = std::numeric_limits<int64_t>::max();
  for (int i = 0; i < rows.size(); ++i) {
    ASSIGN_OR_RETURN(int64_t seq, rows.Int64(i, 0));
    first = std::min(first, seq);
  }
  for (size_t i = 0; i < entries.size(); ++i) entries[i].seq = static_cast<uint64_t>(first) + i;
  return absl::OkStatus();
}

void PostgresStore::Announce(const std::vector<RevocationEntry>& entries) const {
  if (!listener_) return;
  for (const RevocationEntry& entry : entries) listener_(entry);
}

absl::StatusOr<std::vector<RevocationEntry>> PostgresStore::ReadRevocations(uint64_t after_seq,
                                                                            absl::Time now,
                                                                            size_t limit) {
  std::vector<RevocationEntry> entries;
  constexpr uint64_t kMaxSeq = std::numeric_limits<int64_t>::max();
  if (limit == 0 || after_seq >= kMaxSeq) return entries;
  RETURN_IF_ERROR(Run([&](Connection& c) -> absl::Status {
    entries.clear();
    Params params;
    params.Int64(static_cast<int64_t>(after_seq)).Time(now);
    params.Int64(static_cast<int64_t>(std::min<uint64_t>(limit, kMaxSeq)));
    ASSIGN_OR_RETURN(Rows rows, c.Exec(sql::kReadRevocations, params));
    for (int i = 0; i < rows.size(); ++i) {
      ASSIGN_OR_RETURN(RevocationEntry entry, RevocationAt(rows, i));
      entries.push_back(std::move(entry));
    }
    return absl::OkStatus();
  }));
  return entries;
}

absl::StatusOr<bool> PostgresStore::IsJtiDenied(absl::string_view jti, absl::Time now) {
  if (jti.empty() || jti.size() > kMaxJtiSize) return false;
  bool denied = false;
  RETURN_IF_ERROR(Run([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(Rows rows, c.Exec(sql::kIsJtiDenied, Params().Bytes(jti)));
    if (rows.size() == 0) return absl::OkStatus();
    ASSIGN_OR_RETURN(absl::Time expires_at, rows.Time(0, 0));
    denied = now <= expires_at;
    return absl::OkStatus();
  }));
  return denied;
}

absl::StatusOr<bool> PostgresStore::RecordProofJti(absl::string_view replay_key,
                                                   absl::Time keep_until, absl::Time now) {
  RETURN_IF_ERROR(ValidateReplayKey(replay_key));
  bool recorded = false;
  // One statement (its own transaction): atomic across every replica sharing the database.
  // Committed without waiting for the WAL flush (token_store.h): a crash of the database
  // server, its process as well as its machine, may lose such commits of the last moments
  // (up to 3 x wal_writer_delay, 600 ms by default); our own process crashing loses nothing.
  RETURN_IF_ERROR(Run([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(Rows rows, c.Exec(sql::kRecordProofJtiUnsynced,
                                       Params().Bytes(replay_key).Time(keep_until).Time(now)));
    recorded = rows.size() == 1;
    return absl::OkStatus();
  }));
  return recorded;
}

absl::StatusOr<std::optional<SubjectRecord>> PostgresStore::GetSubject(absl::string_view subject,
                                                                       absl::Time now) {
  if (subject.empty() || subject.size() > kMaxSubjectSize) return std::nullopt;
  std::optional<SubjectRecord> record;
  RETURN_IF_ERROR(Run([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(Rows rows, c.Exec(sql::kGetSubject, Params().Bytes(subject)));
    if (rows.size() == 0) return absl::OkStatus();
    ASSIGN_OR_RETURN(record, SubjectAt(rows, 0));
    return absl::OkStatus();
  }));
  if (record.has_value() && now > record->expires_at) return std::nullopt;
  return record;
}

absl::StatusOr<FamilyPage> PostgresStore::ListFamilies(const ListFamiliesQuery& q) {
  if (q.subject.empty() || q.subject.size() > kMaxSubjectSize) {
    return ta::InvalidField("subject", "subject must be 1 to 256 bytes");
  }
  const int page_size = q.page_size <= 0 ? kDefaultPageSize : std::min(q.page_size, kMaxPageSize);
  PagePosition after{absl::InfiniteFuture(), ""};
  if (!q.page_token.empty()) {
    ASSIGN_OR_RETURN(after, DecodePageToken(q.page_token));
  }
  FamilyPage page;
  RETURN_IF_ERROR(Run([&](Connection& c) -> absl::Status {
    page = FamilyPage();
    Params params;
    params.Bytes(q.subject).Time(q.now).Bool(q.include_revoked).Time(after.created_at);
    params.Bytes(after.family_id).Int64(page_size + 1);  // one more: is there a next page?
    ASSIGN_OR_RETURN(Rows rows, c.Exec(sql::kListFamilies, params));
    for (int i = 0; i < std::min(rows.size(), page_size); ++i) {
      ASSIGN_OR_RETURN(WithDropAfter<FamilyRecord> f, FamilyAt(rows, i));
      page.families.push_back(std::move(f.record));
    }
    if (rows.size() > page_size) {
      const FamilyRecord& last = page.families.back();
      page.next_page_token = EncodePageToken({last.created_at, last.family_id});
    }
    return absl::OkStatus();
  }));
  return page;
}

absl::Status PostgresStore::ReapOnce(absl::Time now, bool wait, bool* more) {
  return RunTransaction([&](Connection& c) -> absl::Status {
    *more = false;
    // kReaperLock waits for the lock; kTryReaperLock answers whether it got it.
    ASSIGN_OR_RETURN(Rows locked, c.Exec(wait ? sql::kReaperLock : sql::kTryReaperLock,
                                         Params().Int64(kReaperLockKey)));
    ASSIGN_OR_RETURN(bool mine, locked.Bool(0, 0));
    if (!mine) return absl::OkStatus();  // another replica is reaping
    for (const Statement* reap :
         {&sql::kReapRefresh, &sql::kReapFamilies, &sql::kReapDenylist, &sql::kReapSubjects,
          &sql::kReapRevocations, &sql::kReapProofJtis}) {
      ASSIGN_OR_RETURN(Rows rows, c.Exec(*reap, Params().Time(now).Int64(options_.reap_batch)));
      ASSIGN_OR_RETURN(int64_t deleted, rows.Int64(0, 0));
      if (deleted >= options_.reap_batch) *more = true;
    }
    return absl::OkStatus();
  });
}

void PostgresStore::ReaperLoop() {
  while (!stopping_.WaitForNotificationWithTimeout(options_.reap_interval)) {
    bool more = true;
    // Errors (server down, timeouts) are retried at the next interval; readers hide expired
    // rows meanwhile, so a late reaper costs disk only.
    absl::StatusOr<absl::Time> cutoff = ReapCutoff();
    while (cutoff.ok() && more && !stopping_.HasBeenNotified()) {
      if (!ReapOnce(*cutoff, /*wait=*/false, &more).ok()) break;
    }
  }
}

absl::StatusOr<BackupResult> PostgresStore::CreateBackup(const BackupRequest& /*request*/) {
  return ta::Error(absl::StatusCode::kFailedPrecondition, "backup_not_supported",
                   "CreateBackup copies the embedded RocksDB store; back PostgreSQL up with its "
                   "own tools: pg_basebackup and WAL archiving for point-in-time recovery "
                   "(README, \"Backup and restore\"); the key ring is in the database, sealed, "
                   "but the key-encryption key file is not: keep a copy of it apart");
}

absl::Status PostgresStore::PurgeExpired() {
  ASSIGN_OR_RETURN(const absl::Time cutoff, ReapCutoff());
  bool more = true;
  while (more) RETURN_IF_ERROR(ReapOnce(cutoff, /*wait=*/true, &more));
  return absl::OkStatus();
}

absl::StatusOr<absl::Time> PostgresStore::ClockNow() {
  if (options_.database_clock != nullptr) return options_.database_clock->Now();
  absl::Time now;
  RETURN_IF_ERROR(Run([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(Rows rows, c.Exec(sql::kClockNow, Params()));
    ASSIGN_OR_RETURN(now, rows.Time(0, 0));
    return absl::OkStatus();
  }));
  return now;
}

absl::StatusOr<absl::Time> PostgresStore::ReapCutoff() {
  // One clock decides for every replica: a replica whose clock runs ahead must not delete
  // what replicas with slower clocks still need (issue 22).
  const absl::Time own = options_.clock->Now();
  ASSIGN_OR_RETURN(const absl::Time database, ClockNow());
  return std::min(own, database) - options_.purge_margin;
}

absl::StatusOr<KeyRingBlob> PostgresStore::GetKeyRing(uint64_t if_newer_than) {
  KeyRingBlob blob;
  RETURN_IF_ERROR(Run([&](Connection& c) -> absl::Status {
    ASSIGN_OR_RETURN(Rows rows, c.Exec(sql::kGetKeyRing,
                                       Params().Int64(static_cast<int64_t>(if_newer_than))));
    if (rows.size() == 0) return absl::OkStatus();
    ASSIGN_OR_RETURN(int64_t version, rows.Int64(0, 0));
    blob.version = static_cast<uint64_t>(version);
    blob.document = std::string(rows.Bytes(0, 1));
    return absl::OkStatus();
  }));
  return blob;
}

absl::Status PostgresStore::CompareAndSetKeyRing(uint64_t expected_version,
                                                 absl::string_view document) {
  if (document.empty() || document.size() > kMaxKeyRingBytes) {
    return ta::InvalidField("document", "key ring document must be 1 byte..1 MiB");
  }
  return Run([&](Connection& c) -> absl::Status {
    // One statement each, so atomic on its own: the primary key makes one of several first
    // inserts win; the version predicate under the row lock makes one of several updates win.
    ASSIGN_OR_RETURN(Rows rows,
                     expected_version == 0
                         ? c.Exec(sql::kInsertKeyRing, Params().Bytes(document))
                         : c.Exec(sql::kUpdateKeyRing,
                                  Params().Int64(static_cast<int64_t>(expected_version))
                                      .Bytes(document)));
    if (rows.affected() != 1) {
      return ta::Error(absl::StatusCode::kAborted, "key_ring_conflict",
                   "the key ring changed since it was read");
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<StoreStats> PostgresStore::GetStats() {
  struct Table {
    const char* name;
    const Statement* count;
    uint64_t StoreStats::*field;
  };
  const Table tables[] = {
      {"ta_families", &sql::kCountFamilies, &StoreStats::families},
      {"ta_refresh", &sql::kCountRefresh, &StoreStats::refresh_records},
      {"ta_denylist", &sql::kCountDenylist, &StoreStats::denied_jtis},
      {"ta_subjects", &sql::kCountSubjects, &StoreStats::subjects},
  };
  StoreStats stats;
  RETURN_IF_ERROR(Run([&](Connection& c) -> absl::Status {
    stats = StoreStats();
    for (const Table& t : tables) {
      ASSIGN_OR_RETURN(Rows rows, c.Exec(sql::kTableStats, Params().Bytes(t.name)));
      if (rows.size() != 1) return NotFound(absl::StrCat("table ", t.name));
      ASSIGN_OR_RETURN(int64_t estimate, rows.Int64(0, 0));
      ASSIGN_OR_RETURN(int64_t bytes, rows.Int64(0, 1));
      if (estimate < kExactCountBelow) {
        ASSIGN_OR_RETURN(Rows counted, c.Exec(*t.count, Params()));
        ASSIGN_OR_RETURN(estimate, counted.Int64(0, 0));
      }
      stats.*t.field = static_cast<uint64_t>(std::max<int64_t>(estimate, 0));
      stats.disk_bytes += static_cast<uint64_t>(bytes);
    }
    return absl::OkStatus();
  }));
  return stats;
}

}  // namespace pg

absl::StatusOr<std::unique_ptr<TokenStore>> OpenPostgresStore(const PostgresStoreOptions& options) {
  RETURN_IF_ERROR(pg::ValidateOptions(options));
  ASSIGN_OR_RETURN(pg::ConnectParams params,
                   pg::ConnectParamsFor(options.dsn, options.connect_timeout));
  // The server's own timeout answers first; this one catches a server that cannot answer.
  params.reply_timeout = options.statement_timeout + absl::Seconds(1);
  auto store = std::make_unique<pg::PostgresStore>(options, std::move(params));
  RETURN_IF_ERROR(store->Start());
  return store;
}

}  // namespace ta::storage

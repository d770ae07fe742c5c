// The only file of token-authority that includes RocksDB headers (STYLE practice 1).
#include "storage/rocksdb_store.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/cache.h"
#include "rocksdb/compaction_filter.h"
#include "rocksdb/convenience.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "server/base/error.h"
#include "server/base/status_macros.h"
#include "storage/codec.h"
#include "storage/store_rules.h"

namespace ta::storage {
namespace {

constexpr size_t kMaxJtiSize = 1024;
constexpr int kMaxPageSize = 1000;
constexpr int kDefaultPageSize = 50;

// Corruption is the one RocksDB failure a retry cannot fix; everything else (I/O error, full
// or read-only disk, lock held) is reported as retryable.
absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.IsCorruption()) {
    return ta::Error(absl::StatusCode::kDataLoss, "store_corrupt",
                     absl::StrCat("token store: ", what, ": ", s.ToString()));
  }
  return ta::Error(absl::StatusCode::kUnavailable, "store_unavailable",
                   absl::StrCat("token store: ", what, ": ", s.ToString()));
}

absl::Status NotFound(absl::string_view what) {
  return ta::Error(absl::StatusCode::kNotFound, "not_found",
                   absl::StrCat("token store: ", what, " not found"));
}

// Drops every record whose header says it is dead. One filter per compaction, so "now" is
// read once per compaction and the filter itself needs no synchronisation.
class ExpiryFilter final : public rocksdb::CompactionFilter {
 public:
  explicit ExpiryFilter(uint64_t now_micros) : now_micros_(now_micros) {}
  bool Filter(int /*level*/, const rocksdb::Slice& /*key*/, const rocksdb::Slice& value,
              std::string* /*new_value*/, bool* /*value_changed*/) const override {
    return ValueExpired(absl::string_view(value.data(), value.size()), now_micros_);
  }
  const char* Name() const override { return "ta.ExpiryFilter"; }

 private:
  const uint64_t now_micros_;
};

// Shared by every expiring column family; only reads the (thread-safe) clock.
class ExpiryFilterFactory final : public rocksdb::CompactionFilterFactory {
 public:
  explicit ExpiryFilterFactory(const ta::Clock* clock) : clock_(clock) {}
  std::unique_ptr<rocksdb::CompactionFilter> CreateCompactionFilter(
      const rocksdb::CompactionFilter::Context& /*context*/) override {
    return std::make_unique<ExpiryFilter>(DropAfterMicros(clock_->Now()));
  }
  const char* Name() const override { return "ta.ExpiryFilterFactory"; }

 private:
  const ta::Clock* const clock_;
};

// RocksDB's info LOG, written so that a failing write is dropped, never fatal. RocksDB's own
// file logger keeps writing after an error and Debian's librocksdb is built with assertions, so
// on a full disk the next log line aborted the process (issue 8, found by the storage-fault
// test "a full disk refuses writes"). Same file and naming as RocksDB's: <db>/LOG, the previous
// one renamed LOG.old.<micros> (RocksDB prunes those to keep_log_file_num).
class FailSafeLogger final : public rocksdb::Logger {
 public:
  static std::shared_ptr<rocksdb::Logger> Open(const std::string& dir) {
    const std::string path = dir + "/LOG";
    std::rename(path.c_str(), absl::StrCat(path, ".old.", absl::ToUnixMicros(absl::Now())).c_str());
    std::FILE* file = std::fopen(path.c_str(), "a");
    return std::make_shared<FailSafeLogger>(file);
  }
  // Takes ownership of `file`; nullptr discards every line.
  explicit FailSafeLogger(std::FILE* file) : file_(file) {}
  ~FailSafeLogger() override {
    if (file_ != nullptr) std::fclose(file_);
  }
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    if (file_ == nullptr) return;
    char line[1024];
    std::vsnprintf(line, sizeof(line), format, ap);
    const std::string stamp = absl::FormatTime("%Y/%m/%d-%H:%M:%E6S ", absl::Now(), absl::UTCTimeZone());
    absl::MutexLock lock(&mu_);
    // Errors (a full or read-only disk) are ignored: losing a log line beats losing the server.
    std::fputs(stamp.c_str(), file_);
    std::fputs(line, file_);
    std::fputc('\n', file_);
    std::fflush(file_);
  }

 private:
  absl::Mutex mu_;
  std::FILE* const file_;
};

absl::Status ValidateOptions(const RocksDbStoreOptions& o) {
  if (o.path.empty()) return ta::InvalidField("path", "RocksDbStoreOptions.path is required");
  if (o.clock == nullptr) return ta::InvalidField("clock", "RocksDbStoreOptions.clock is null");
  if (o.lock_stripes < 1) {
    return ta::InvalidField("lock_stripes", "RocksDbStoreOptions.lock_stripes must be >= 1");
  }
  if (o.family_retention < absl::ZeroDuration() || o.refresh_retention < absl::ZeroDuration()) {
    return ta::InvalidField("retention", "RocksDbStoreOptions retentions must be >= 0");
  }
  return absl::OkStatus();
}

rocksdb::CompressionType PickCompression(bool wanted) {
  if (!wanted) return rocksdb::kNoCompression;
  std::vector<rocksdb::CompressionType> supported = rocksdb::GetSupportedCompressions();
  bool has_lz4 = std::find(supported.begin(), supported.end(), rocksdb::kLZ4Compression) !=
                 supported.end();
  return has_lz4 ? rocksdb::kLZ4Compression : rocksdb::kNoCompression;
}

rocksdb::ColumnFamilyOptions CfOptions(const CfInfo& info, const RocksDbStoreOptions& o,
                                       const std::shared_ptr<rocksdb::Cache>& cache,
                                       const std::shared_ptr<ExpiryFilterFactory>& filter) {
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  if (info.point_lookups) {
    // Whole-key bloom: a miss (unknown jti, unknown family) is answered from memory.
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    table.whole_key_filtering = true;
  }
  rocksdb::ColumnFamilyOptions cf;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  if (info.point_lookups) {
    // The same for keys still in the memtable.
    cf.memtable_prefix_bloom_size_ratio = 0.02;
    cf.memtable_whole_key_filtering = true;
  }
  cf.compression = PickCompression(o.compression);
  cf.level_compaction_dynamic_level_bytes = true;
  cf.periodic_compaction_seconds = o.periodic_compaction_seconds;
  if (info.expires) cf.compaction_filter_factory = filter;
  return cf;
}

// Reads the format version of an existing database without writing a byte to it, so a
// database from a newer binary is refused before RocksDB (or our compaction filter) touches
// it. Returns nullopt for a new or version-less database.
absl::StatusOr<std::optional<uint32_t>> PeekFormatVersion(const std::string& path) {
  rocksdb::Options options;
  options.info_log = std::make_shared<FailSafeLogger>(nullptr);  // a quick look: no LOG
  if (!options.env->FileExists(path + "/CURRENT").ok()) return std::nullopt;
  std::vector<std::string> names;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(options, path, &names);
  if (!s.ok()) return FromRocks(s, "list column families");
  if (std::find(names.begin(), names.end(), CfInfoOf(Cf::kMeta).name) == names.end()) {
    return std::nullopt;
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : names) descriptors.emplace_back(name, options);
  std::vector<rocksdb::ColumnFamilyHandle*> raw_handles;
  rocksdb::DB* raw_db = nullptr;
  s = rocksdb::DB::OpenForReadOnly(options, path, descriptors, &raw_handles, &raw_db);
  if (!s.ok()) return FromRocks(s, "open read-only to check the format version");
  std::unique_ptr<rocksdb::DB> db(raw_db);
  std::vector<std::unique_ptr<rocksdb::ColumnFamilyHandle>> handles(raw_handles.begin(),
                                                                    raw_handles.end());
  size_t meta = std::find(names.begin(), names.end(), CfInfoOf(Cf::kMeta).name) - names.begin();
  std::string value;
  s = db->Get(rocksdb::ReadOptions(), handles[meta].get(), std::string(kFormatVersionKey), &value);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) return FromRocks(s, "read the format version");
  ASSIGN_OR_RETURN(uint32_t version, DecodeFormatVersion(value));
  return version;
}

absl::Status CheckFormatVersion(uint32_t version, const std::string& path) {
  if (version <= kStoreFormatVersion) return absl::OkStatus();
  return ta::Error(absl::StatusCode::kFailedPrecondition, "store_format_too_new",
                   absl::StrCat("token store at ", path, " has on-disk format version ", version,
                                ", but this binary only knows versions up to ",
                                kStoreFormatVersion, "; upgrade the binary"));
}

class RocksDbStore final : public TokenStore {
 public:
  static absl::StatusOr<std::unique_ptr<TokenStore>> Open(const RocksDbStoreOptions& options);

  // Use Open(). Takes ownership of an open DB and its handles (indexed by Cf).
  RocksDbStore(const RocksDbStoreOptions& options, std::unique_ptr<rocksdb::DB> db,
               std::vector<std::unique_ptr<rocksdb::ColumnFamilyHandle>> handles)
      : options_(options),
        db_(std::move(db)),
        handles_(std::move(handles)),
        stripes_(static_cast<size_t>(options.lock_stripes)),
        subject_stripes_(static_cast<size_t>(options.lock_stripes)) {
    write_options_.sync = options.sync_writes;
  }

  ~RocksDbStore() override {
    handles_.clear();  // handles must go before the DB
    db_->Close().PermitUncheckedError();
  }

  absl::Status CreateFamily(const FamilyRecord& family, const RefreshRecord& first) override;
  absl::StatusOr<FamilyRecord> GetFamily(absl::string_view family_id, absl::Time now) override;
  absl::StatusOr<RefreshRecord> GetRefresh(absl::string_view family_id, uint64_t generation,
                                           absl::Time now) override;
  absl::StatusOr<RotateOutcome> Rotate(const RotateRequest& request) override;
  absl::StatusOr<bool> RevokeFamily(absl::string_view family_id, absl::string_view reason,
                                    absl::string_view revoked_by, absl::Time now) override;
  absl::Status DenyJti(absl::string_view jti, absl::Time expires_at) override;
  absl::StatusOr<bool> IsJtiDenied(absl::string_view jti, absl::Time now) override;
  absl::StatusOr<SubjectRecord> UpdateSubject(const SubjectUpdate& update) override;
  absl::StatusOr<std::optional<SubjectRecord>> GetSubject(absl::string_view subject,
                                                          absl::Time now) override;
  absl::StatusOr<FamilyPage> ListFamilies(const ListFamiliesQuery& query) override;
  absl::Status PurgeExpired() override;
  absl::StatusOr<StoreStats> GetStats() override;

 private:
  rocksdb::ColumnFamilyHandle* Handle(Cf cf) const { return handles_[static_cast<int>(cf)].get(); }
  absl::Mutex& StripeOf(absl::string_view family_id) {
    return stripes_[absl::Hash<absl::string_view>()(family_id) % stripes_.size()];
  }
  absl::Mutex& SubjectStripeOf(absl::string_view subject) {
    return subject_stripes_[absl::Hash<absl::string_view>()(subject) % subject_stripes_.size()];
  }
  absl::Time FamilyDropAfter(const FamilyRecord& f) const {
    return f.expires_at + options_.family_retention;
  }
  absl::Time RefreshDropAfter(const RefreshRecord& r) const {
    return r.expires_at + options_.refresh_retention;
  }

  absl::Status EnsureFormatVersion();
  absl::StatusOr<std::optional<std::string>> Read(Cf cf, const std::string& key);
  absl::Status Write(rocksdb::WriteBatch* batch, absl::string_view what);
  // Records past their drop-after are reported as absent (nullopt).
  absl::StatusOr<std::optional<FamilyRecord>> LoadFamily(absl::string_view id, absl::Time now);
  absl::StatusOr<std::optional<RefreshRecord>> LoadRefresh(absl::string_view id, uint64_t gen,
                                                           absl::Time now);
  absl::StatusOr<std::optional<SubjectRecord>> LoadSubject(absl::string_view subject,
                                                           absl::Time now);
  // The subject's families created at or before `cutoff`: the newest created_at of all its
  // families, and the latest expires_at among those at or before the cutoff.
  struct SubjectFamiliesSummary {
    absl::Time newest_created_at = absl::InfinitePast();
    absl::Time latest_expiry_before_cutoff = absl::InfinitePast();
  };
  absl::StatusOr<SubjectFamiliesSummary> SummariseSubjectFamilies(absl::string_view subject,
                                                                  absl::Time cutoff,
                                                                  absl::Time now);
  void PutFamily(rocksdb::WriteBatch* batch, const FamilyRecord& f);
  void PutRefresh(rocksdb::WriteBatch* batch, const RefreshRecord& r);
  // Caller holds the family's stripe.
  absl::Status WriteRevocation(FamilyRecord* family, absl::string_view reason,
                               absl::string_view revoked_by, absl::Time now);
  absl::StatusOr<RotateOutcome> RotateLocked(const RotateRequest& request);
  absl::StatusOr<RotateOutcome> SpendAndAdvance(const RotateRequest& request, RefreshRecord spent,
                                                RotateOutcome outcome);

  const RocksDbStoreOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<std::unique_ptr<rocksdb::ColumnFamilyHandle>> handles_;  // indexed by Cf
  rocksdb::WriteOptions write_options_;
  // Serialises read-check-write per family. Plain reads take no lock: RocksDB reads are
  // atomic per key and each write is one atomic batch. Chosen over a pessimistic
  // TransactionDB (GetForUpdate) after measuring both: equal when the WAL fsync dominates,
  // 10-30% faster when it does not, and no lock timeouts or deadlock errors to handle.
  std::vector<absl::Mutex> stripes_;
  // Orders a subject's CreateFamily and Rotate (shared) against its UpdateSubject
  // (exclusive). Always taken before a family stripe, never the other way round.
  std::vector<absl::Mutex> subject_stripes_;
};

absl::StatusOr<std::unique_ptr<TokenStore>> RocksDbStore::Open(const RocksDbStoreOptions& o) {
  RETURN_IF_ERROR(ValidateOptions(o));
  ASSIGN_OR_RETURN(std::optional<uint32_t> on_disk, PeekFormatVersion(o.path));
  if (on_disk.has_value()) RETURN_IF_ERROR(CheckFormatVersion(*on_disk, o.path));

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  db_options.keep_log_file_num = 4;
  // Many writers (the server's worker pool) share each WAL fsync through the write group.
  // On a small machine, followers spinning and yielding while they wait, and writing
  // the memtable in parallel, cost CPU the signing needs: off (BENCHMARKS.md, "RocksDB
  // write options": ~4% less server CPU per IssueTokens, enable_pipelined_write worse).
  db_options.enable_write_thread_adaptive_yield = false;
  db_options.allow_concurrent_memtable_write = false;
  // (When the directory cannot be made, DB::Open below reports why.)
  if (rocksdb::Env::Default()->CreateDirIfMissing(o.path).ok()) {
    db_options.info_log = FailSafeLogger::Open(o.path);
  }
  auto cache = rocksdb::NewLRUCache(o.block_cache_bytes);
  auto filter = std::make_shared<ExpiryFilterFactory>(o.clock);
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const CfInfo& info : kColumnFamilies) {
    descriptors.emplace_back(std::string(info.name), CfOptions(info, o, cache, filter));
  }
  std::vector<rocksdb::ColumnFamilyHandle*> raw_handles;
  rocksdb::DB* raw_db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, o.path, descriptors, &raw_handles, &raw_db);
  if (!s.ok()) return FromRocks(s, absl::StrCat("open ", o.path));
  auto store = std::make_unique<RocksDbStore>(
      o, std::unique_ptr<rocksdb::DB>(raw_db),
      std::vector<std::unique_ptr<rocksdb::ColumnFamilyHandle>>(raw_handles.begin(),
                                                                raw_handles.end()));
  RETURN_IF_ERROR(store->EnsureFormatVersion());
  return store;
}

absl::Status RocksDbStore::EnsureFormatVersion() {
  ASSIGN_OR_RETURN(std::optional<std::string> value,
                   Read(Cf::kMeta, std::string(kFormatVersionKey)));
  if (value.has_value()) {
    ASSIGN_OR_RETURN(uint32_t version, DecodeFormatVersion(*value));
    return CheckFormatVersion(version, options_.path);
  }
  rocksdb::WriteBatch batch;
  batch.Put(Handle(Cf::kMeta), std::string(kFormatVersionKey),
            EncodeFormatVersion(kStoreFormatVersion));
  return Write(&batch, "write the format version");
}

absl::StatusOr<std::optional<std::string>> RocksDbStore::Read(Cf cf, const std::string& key) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), Handle(cf), key, &value);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) return FromRocks(s, absl::StrCat("read ", CfInfoOf(cf).name));
  return value;
}

absl::Status RocksDbStore::Write(rocksdb::WriteBatch* batch, absl::string_view what) {
  rocksdb::Status s = db_->Write(write_options_, batch);
  return s.ok() ? absl::OkStatus() : FromRocks(s, what);
}

absl::StatusOr<std::optional<FamilyRecord>> RocksDbStore::LoadFamily(absl::string_view id,
                                                                     absl::Time now) {
  if (id.size() != kFamilyIdSize) return std::nullopt;
  ASSIGN_OR_RETURN(std::optional<std::string> value, Read(Cf::kFamilies, FamilyKey(id)));
  if (!value.has_value()) return std::nullopt;
  ASSIGN_OR_RETURN(ValueHeader header, DecodeValueHeader(*value));
  if (!IsLive(header.drop_after_micros, now)) return std::nullopt;
  ASSIGN_OR_RETURN(FamilyRecord family, DecodeFamily(*value));
  return family;
}

absl::StatusOr<std::optional<RefreshRecord>> RocksDbStore::LoadRefresh(absl::string_view id,
                                                                       uint64_t gen,
                                                                       absl::Time now) {
  if (id.size() != kFamilyIdSize) return std::nullopt;
  ASSIGN_OR_RETURN(std::optional<std::string> value, Read(Cf::kRefresh, RefreshKey(id, gen)));
  if (!value.has_value()) return std::nullopt;
  ASSIGN_OR_RETURN(ValueHeader header, DecodeValueHeader(*value));
  if (!IsLive(header.drop_after_micros, now)) return std::nullopt;
  ASSIGN_OR_RETURN(RefreshRecord record, DecodeRefresh(*value));
  return record;
}

void RocksDbStore::PutFamily(rocksdb::WriteBatch* batch, const FamilyRecord& f) {
  batch->Put(Handle(Cf::kFamilies), FamilyKey(f.family_id), EncodeFamily(f, FamilyDropAfter(f)));
}

void RocksDbStore::PutRefresh(rocksdb::WriteBatch* batch, const RefreshRecord& r) {
  batch->Put(Handle(Cf::kRefresh), RefreshKey(r.family_id, r.generation),
             EncodeRefresh(r, RefreshDropAfter(r)));
}

absl::Status RocksDbStore::CreateFamily(const FamilyRecord& family, const RefreshRecord& first) {
  if (family.family_id.size() != kFamilyIdSize) {
    return ta::InvalidField("family_id", "family_id must be 16 bytes");
  }
  if (family.subject.empty() || family.subject.size() > kMaxSubjectSize) {
    return ta::InvalidField("subject", "subject must be 1 to 256 bytes");
  }
  if (first.family_id != family.family_id || first.generation != family.generation) {
    return ta::InvalidField("first", "first refresh record must be the family's current one");
  }
  absl::ReaderMutexLock subject_lock(&SubjectStripeOf(family.subject));
  ASSIGN_OR_RETURN(std::optional<SubjectRecord> subject,
                   LoadSubject(family.subject, family.created_at));
  if (subject.has_value()) RETURN_IF_ERROR(AdmitNewFamily(*subject, family.created_at));
  absl::MutexLock lock(&StripeOf(family.family_id));
  ASSIGN_OR_RETURN(std::optional<std::string> existing,
                   Read(Cf::kFamilies, FamilyKey(family.family_id)));
  if (existing.has_value()) {
    return ta::Error(absl::StatusCode::kAlreadyExists, "already_exists",
                     "token store: family id already taken");
  }
  rocksdb::WriteBatch batch;
  PutFamily(&batch, family);
  batch.Put(Handle(Cf::kSubjectFamilies),
            SubjectFamilyKey(family.subject, family.created_at, family.family_id),
            EncodeSubjectFamilyEntry(FamilyDropAfter(family)));
  PutRefresh(&batch, first);
  return Write(&batch, "create family");
}

absl::StatusOr<FamilyRecord> RocksDbStore::GetFamily(absl::string_view family_id,
                                                     absl::Time now) {
  ASSIGN_OR_RETURN(std::optional<FamilyRecord> family, LoadFamily(family_id, now));
  if (!family.has_value()) return NotFound("family");
  return *std::move(family);
}

absl::StatusOr<RefreshRecord> RocksDbStore::GetRefresh(absl::string_view family_id,
                                                       uint64_t generation, absl::Time now) {
  ASSIGN_OR_RETURN(std::optional<RefreshRecord> record, LoadRefresh(family_id, generation, now));
  if (!record.has_value()) return NotFound("refresh record");
  return *std::move(record);
}

absl::StatusOr<RotateOutcome> RocksDbStore::Rotate(const RotateRequest& request) {
  absl::ReaderMutexLock subject_lock(&SubjectStripeOf(request.subject));
  absl::MutexLock lock(&StripeOf(request.family_id));
  return RotateLocked(request);
}

absl::StatusOr<RotateOutcome> RocksDbStore::RotateLocked(const RotateRequest& request) {
  RotateOutcome outcome;
  auto done = [&outcome](RotateResult result) {
    outcome.result = result;
    return std::move(outcome);
  };
  const absl::Time now = request.now;
  const uint64_t gen = request.generation;
  ASSIGN_OR_RETURN(std::optional<FamilyRecord> family, LoadFamily(request.family_id, now));
  if (!family.has_value()) return done(RotateResult::kNotFound);
  outcome.family = *std::move(family);
  FamilyRecord& f = outcome.family;
  if (f.subject != request.subject) {
    return ta::InvalidField("subject", "RotateRequest.subject is not the family's subject");
  }
  if (f.revoked) return done(RotateResult::kFamilyRevoked);
  if (now >= f.expires_at) return done(RotateResult::kFamilyExpired);
  ASSIGN_OR_RETURN(std::optional<SubjectRecord> subject, LoadSubject(f.subject, now));
  if (subject.has_value()) {
    std::optional<RotateResult> refused = SubjectRefusesRotation(*subject, f, now);
    if (refused.has_value()) return done(*refused);
  }
  ASSIGN_OR_RETURN(std::optional<RefreshRecord> presented,
                   LoadRefresh(request.family_id, gen, now));
  if (!presented.has_value()) return done(RotateResult::kNotFound);
  if (now >= presented->expires_at) return done(RotateResult::kTokenExpired);
  if (gen == f.generation) return SpendAndAdvance(request, *std::move(presented), std::move(outcome));
  if (gen > f.generation) return done(RotateResult::kNotFound);
  if (gen + 1 == f.generation && request.grace > absl::ZeroDuration() &&
      now - f.rotated_at < request.grace) {
    ASSIGN_OR_RETURN(std::optional<RefreshRecord> current,
                     LoadRefresh(request.family_id, f.generation, now));
    if (!current.has_value()) {
      return ta::Error(absl::StatusCode::kDataLoss, "store_corrupt",
                       "token store: family's current refresh record is missing");
    }
    outcome.current = *std::move(current);
    return done(RotateResult::kReplayWithinGrace);
  }
  RETURN_IF_ERROR(WriteRevocation(&f, "refresh_token_reuse", "reuse-detector", now));
  return done(RotateResult::kReuseDetected);
}

absl::StatusOr<RotateOutcome> RocksDbStore::SpendAndAdvance(const RotateRequest& request,
                                                            RefreshRecord spent,
                                                            RotateOutcome outcome) {
  // One batch: the spend, the successor and the family's new generation land together or not
  // at all, so a crash never leaves two current tokens or none.
  spent.spent_at = request.now;
  RefreshRecord successor = request.successor;
  successor.family_id = request.family_id;
  successor.generation = request.generation + 1;
  FamilyRecord updated = outcome.family;
  updated.generation = successor.generation;
  updated.rotated_at = request.now;
  rocksdb::WriteBatch batch;
  PutRefresh(&batch, spent);
  PutRefresh(&batch, successor);
  PutFamily(&batch, updated);
  RETURN_IF_ERROR(Write(&batch, "rotate"));
  outcome.result = RotateResult::kRotated;
  outcome.family = std::move(updated);
  outcome.current = std::move(successor);
  return outcome;
}

absl::Status RocksDbStore::WriteRevocation(FamilyRecord* family, absl::string_view reason,
                                           absl::string_view revoked_by, absl::Time now) {
  FamilyRecord updated = *family;
  updated.revoked = true;
  updated.revoked_at = now;
  updated.revoke_reason = std::string(reason);
  updated.revoked_by = std::string(revoked_by);
  rocksdb::WriteBatch batch;
  PutFamily(&batch, updated);
  RETURN_IF_ERROR(Write(&batch, "revoke family"));
  *family = std::move(updated);  // only once durable, so callers never see an unwritten state
  return absl::OkStatus();
}

absl::StatusOr<bool> RocksDbStore::RevokeFamily(absl::string_view family_id,
                                                absl::string_view reason,
                                                absl::string_view revoked_by, absl::Time now) {
  absl::MutexLock lock(&StripeOf(family_id));
  ASSIGN_OR_RETURN(std::optional<FamilyRecord> family, LoadFamily(family_id, now));
  if (!family.has_value()) return NotFound("family");
  if (family->revoked) return false;
  RETURN_IF_ERROR(WriteRevocation(&*family, reason, revoked_by, now));
  return true;
}

absl::Status RocksDbStore::DenyJti(absl::string_view jti, absl::Time expires_at) {
  if (jti.empty() || jti.size() > kMaxJtiSize) {
    return ta::InvalidField("jti", "jti must be 1 to 1024 bytes");
  }
  rocksdb::WriteBatch batch;
  batch.Put(Handle(Cf::kDenylist), DenylistKey(jti), EncodeDeniedJti(expires_at));
  return Write(&batch, "deny jti");
}

absl::StatusOr<bool> RocksDbStore::IsJtiDenied(absl::string_view jti, absl::Time now) {
  if (jti.empty() || jti.size() > kMaxJtiSize) return false;
  ASSIGN_OR_RETURN(std::optional<std::string> value, Read(Cf::kDenylist, DenylistKey(jti)));
  if (!value.has_value()) return false;
  ASSIGN_OR_RETURN(absl::Time expires_at, DecodeDeniedJti(*value));
  return now <= expires_at;
}

absl::StatusOr<SubjectRecord> RocksDbStore::UpdateSubject(const SubjectUpdate& update) {
  RETURN_IF_ERROR(ValidateSubjectUpdate(update));
  absl::MutexLock lock(&SubjectStripeOf(update.subject));
  ASSIGN_OR_RETURN(std::optional<SubjectRecord> stored, LoadSubject(update.subject, update.now));
  // The cutoff first (it decides which families the record must outlive), then the rest.
  absl::Time cutoff = update.not_before.value_or(update.now);
  if (stored.has_value()) cutoff = std::max(cutoff, stored->not_before);
  ASSIGN_OR_RETURN(SubjectFamiliesSummary families,
                   SummariseSubjectFamilies(update.subject, absl::InfiniteFuture(), update.now));
  if (!update.not_before.has_value()) cutoff = std::max(cutoff, families.newest_created_at);
  ASSIGN_OR_RETURN(families, SummariseSubjectFamilies(update.subject, cutoff, update.now));
  SubjectRecord merged = MergeSubject(stored, update, cutoff,
                                      families.latest_expiry_before_cutoff + update.token_leeway);
  rocksdb::WriteBatch batch;
  batch.Put(Handle(Cf::kSubjects), SubjectKey(merged.subject), EncodeSubject(merged));
  RETURN_IF_ERROR(Write(&batch, "update subject"));
  return merged;
}

absl::StatusOr<RocksDbStore::SubjectFamiliesSummary> RocksDbStore::SummariseSubjectFamilies(
    absl::string_view subject, absl::Time cutoff, absl::Time now) {
  SubjectFamiliesSummary summary;
  const std::string prefix = SubjectFamiliesPrefix(subject);
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), Handle(Cf::kSubjectFamilies)));
  it->Seek(prefix);  // newest first
  if (it->Valid() && it->key().starts_with(prefix)) {
    ASSIGN_OR_RETURN(SubjectFamilyKeyParts newest,
                     DecodeSubjectFamilyKey(absl::string_view(it->key().data(), it->key().size())));
    summary.newest_created_at = newest.created_at;
  }
  // Index entries of families created at or before the cutoff; each value's drop-after is
  // its family's expires_at + family_retention.
  for (it->Seek(SubjectFamilyKey(subject, cutoff, "")); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    ASSIGN_OR_RETURN(ValueHeader header, DecodeValueHeader(absl::string_view(
                                             it->value().data(), it->value().size())));
    if (!IsLive(header.drop_after_micros, now)) continue;
    absl::Time expires_at =
        MicrosToTime(static_cast<int64_t>(std::min<uint64_t>(
            header.drop_after_micros, std::numeric_limits<int64_t>::max()))) -
        options_.family_retention;
    summary.latest_expiry_before_cutoff = std::max(summary.latest_expiry_before_cutoff, expires_at);
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scan subject families");
  return summary;
}

absl::StatusOr<std::optional<SubjectRecord>> RocksDbStore::GetSubject(absl::string_view subject,
                                                                      absl::Time now) {
  return LoadSubject(subject, now);
}

absl::StatusOr<std::optional<SubjectRecord>> RocksDbStore::LoadSubject(absl::string_view subject,
                                                                       absl::Time now) {
  if (subject.empty() || subject.size() > kMaxSubjectSize) return std::nullopt;
  ASSIGN_OR_RETURN(std::optional<std::string> value, Read(Cf::kSubjects, SubjectKey(subject)));
  if (!value.has_value()) return std::nullopt;
  ASSIGN_OR_RETURN(ValueHeader header, DecodeValueHeader(*value));
  if (!IsLive(header.drop_after_micros, now)) return std::nullopt;
  ASSIGN_OR_RETURN(SubjectRecord record, DecodeSubject(*value));
  return record;
}

absl::StatusOr<FamilyPage> RocksDbStore::ListFamilies(const ListFamiliesQuery& q) {
  if (q.subject.empty() || q.subject.size() > kMaxSubjectSize) {
    return ta::InvalidField("subject", "subject must be 1 to 256 bytes");
  }
  const size_t page_size = q.page_size <= 0 ? kDefaultPageSize : std::min(q.page_size, kMaxPageSize);
  const std::string prefix = SubjectFamiliesPrefix(q.subject);
  std::string start = prefix;
  if (!q.page_token.empty()) {
    ASSIGN_OR_RETURN(std::string suffix, DecodePageToken(q.page_token));
    start += suffix;
  }
  FamilyPage page;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), Handle(Cf::kSubjectFamilies)));
  for (it->Seek(start); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    absl::string_view key(it->key().data(), it->key().size());
    if (key == start) continue;  // the page token names the last entry already returned
    if (page.families.size() == page_size) {
      const FamilyRecord& last = page.families.back();
      page.next_page_token = EncodePageToken(last.created_at, last.family_id);
      return page;
    }
    ASSIGN_OR_RETURN(SubjectFamilyKeyParts parts, DecodeSubjectFamilyKey(key));
    ASSIGN_OR_RETURN(std::optional<FamilyRecord> family, LoadFamily(parts.family_id, q.now));
    if (!family.has_value()) continue;  // expired: the index entry outlives it a moment
    bool live = !family->revoked && q.now < family->expires_at;
    if (live || q.include_revoked) page.families.push_back(*std::move(family));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "list families");
  return page;
}

absl::Status RocksDbStore::PurgeExpired() {
  rocksdb::CompactRangeOptions compact;
  // Rewrite the bottommost level too, or records already there would never be filtered.
  compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (const CfInfo& info : kColumnFamilies) {
    if (!info.expires) continue;
    rocksdb::Status s = db_->CompactRange(compact, Handle(info.id), nullptr, nullptr);
    if (!s.ok()) return FromRocks(s, absl::StrCat("compact ", info.name));
  }
  return absl::OkStatus();
}

absl::StatusOr<StoreStats> RocksDbStore::GetStats() {
  auto count = [this](Cf cf) {
    uint64_t n = 0;
    db_->GetIntProperty(Handle(cf), "rocksdb.estimate-num-keys", &n);
    return n;
  };
  StoreStats stats;
  stats.families = count(Cf::kFamilies);
  stats.refresh_records = count(Cf::kRefresh);
  stats.denied_jtis = count(Cf::kDenylist);
  stats.subjects = count(Cf::kSubjects);
  for (const CfInfo& info : kColumnFamilies) {
    uint64_t bytes = 0;
    db_->GetIntProperty(Handle(info.id), "rocksdb.total-sst-files-size", &bytes);
    stats.disk_bytes += bytes;
  }
  // Writes not yet flushed to an SST are on disk only in the WAL: count its files too, or a
  // store holding only recent writes reports 0 (issue 16).
  rocksdb::VectorLogPtr wal_files;
  rocksdb::Status s = db_->GetSortedWalFiles(wal_files);
  if (!s.ok()) return FromRocks(s, "list WAL files");
  for (const std::unique_ptr<rocksdb::LogFile>& wal : wal_files) {
    stats.disk_bytes += wal->SizeFileBytes();
  }
  return stats;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TokenStore>> OpenRocksDbStore(const RocksDbStoreOptions& options) {
  return RocksDbStore::Open(options);
}

}  // namespace ta::storage

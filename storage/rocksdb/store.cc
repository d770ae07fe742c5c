// RocksDbStore: opening (options, column families, format version), purge and stats.
#include <algorithm>
#include <cstdio>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/status_macros.h"
#include "rocksdb/cache.h"
#include "rocksdb/compaction_filter.h"
#include "rocksdb/convenience.h"
#include "rocksdb/env.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/table.h"
#include "storage/rocksdb/store.h"

namespace ta::storage {
namespace rocksdb_store {
namespace {

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
  ExpiryFilterFactory(const ta::Clock* clock, absl::Duration margin)
      : clock_(clock), margin_(margin) {}
  std::unique_ptr<rocksdb::CompactionFilter> CreateCompactionFilter(
      const rocksdb::CompactionFilter::Context& /*context*/) override {
    return std::make_unique<ExpiryFilter>(DropAfterMicros(clock_->Now() - margin_));
  }
  const char* Name() const override { return "ta.ExpiryFilterFactory"; }

 private:
  const ta::Clock* const clock_;
  const absl::Duration margin_;
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
  if (o.purge_margin < absl::ZeroDuration()) {
    return ta::InvalidField("purge_margin", "RocksDbStoreOptions.purge_margin must be >= 0");
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

}  // namespace

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
  auto filter = std::make_shared<ExpiryFilterFactory>(o.clock, o.purge_margin);
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
  RETURN_IF_ERROR(store->LoadLogState());
  return store;
}

absl::Status RocksDbStore::EnsureFormatVersion() {
  ASSIGN_OR_RETURN(std::optional<std::string> value,
                   Read(Cf::kMeta, std::string(kFormatVersionKey)));
  if (value.has_value()) {
    ASSIGN_OR_RETURN(uint32_t version, DecodeFormatVersion(*value));
    RETURN_IF_ERROR(CheckFormatVersion(version, options_.path));
    if (version == kStoreFormatVersion) return absl::OkStatus();
    // Version 1 had no revocation log: write its live revocations into it once. The new
    // version is stored only after that succeeded, so an interrupted upgrade runs again.
    // Version 2 lacked only the replay cache's column family, made at open.
    if (version < 2) RETURN_IF_ERROR(BackfillLog());
  }
  rocksdb::WriteBatch batch;
  batch.Put(Handle(Cf::kMeta), std::string(kFormatVersionKey),
            EncodeFormatVersion(kStoreFormatVersion));
  return Write(&batch, "write the format version");
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

}  // namespace rocksdb_store

absl::StatusOr<std::unique_ptr<TokenStore>> OpenRocksDbStore(const RocksDbStoreOptions& options) {
  return rocksdb_store::RocksDbStore::Open(options);
}

}  // namespace ta::storage

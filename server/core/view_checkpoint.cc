#include "server/core/view_checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "base/status_macros.h"
#include "token/crypto.h"

namespace ta::core {
namespace {

static_assert(std::endian::native == std::endian::little,
              "checkpoints store the view's little-endian key words as they are");

using RawEntry = RevocationView::RawEntry;

constexpr char kMagic[8] = {'T', 'A', 'V', 'I', 'E', 'W', 'C', 'K'};
constexpr uint32_t kVersion = 1;
constexpr size_t kShards = RevocationView::shard_count();
constexpr size_t kDigestBytes = 32;
constexpr size_t kEntryBytes = RevocationView::kRecordBytes;
static_assert(kEntryBytes == 24, "the format's entries are 24 bytes");
constexpr size_t kFixedBytes = 64;  // magic .. written_at
constexpr size_t kHeaderBodyBytes = kFixedBytes + kShards * 16;
constexpr size_t kHeaderBytes = kHeaderBodyBytes + kDigestBytes;
constexpr size_t kReplayBatch = 4096;
constexpr int kMaxThreads = 8;

void Put32(char* p, uint32_t v) { std::memcpy(p, &v, 4); }
void Put64(char* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint32_t Get32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t Get64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

absl::Status Corrupt(const std::string& path, absl::string_view what) {
  return Error(absl::StatusCode::kDataLoss, "checkpoint_corrupt",
               absl::StrCat("checkpoint ", path, ": ", what));
}

absl::Status IoError(absl::string_view reason, absl::string_view what, const std::string& path,
                     int err) {
  return Error(absl::StatusCode::kUnavailable, reason,
               absl::StrCat(what, " ", path, ": ", std::strerror(err)));
}

// The first 16 bytes of the SHA-256 of an entry's kind, times and id.
std::array<uint8_t, 16> Fingerprint(const storage::RevocationEntry& e) {
  std::string bytes(17, '\0');
  bytes[0] = static_cast<char>(e.kind);
  Put64(&bytes[1], static_cast<uint64_t>(absl::ToUnixMicros(e.revoked_at)));
  Put64(&bytes[9], static_cast<uint64_t>(absl::ToUnixMicros(e.live_until)));
  bytes += e.id;
  const std::string digest = token::Sha256(bytes);
  std::array<uint8_t, 16> out;
  std::memcpy(out.data(), digest.data(), out.size());
  return out;
}

struct Header {
  LogPosition covered;
  std::array<uint64_t, 2> sip_key{};
  int64_t written_at_micros = 0;
  std::array<std::array<uint64_t, 2>, kShards> counts{};  // per shard: jtis, families
};

std::string EncodeHeader(const Header& h) {
  std::string out(kHeaderBodyBytes, '\0');
  char* p = out.data();
  std::memcpy(p, kMagic, 8);
  Put32(p + 8, kVersion);
  Put32(p + 12, kShards);
  Put64(p + 16, h.covered.seq);
  std::memcpy(p + 24, h.covered.fingerprint.data(), 16);
  Put64(p + 40, h.sip_key[0]);
  Put64(p + 48, h.sip_key[1]);
  Put64(p + 56, static_cast<uint64_t>(h.written_at_micros));
  for (size_t i = 0; i < kShards; ++i) {
    Put64(p + kFixedBytes + i * 16, h.counts[i][0]);
    Put64(p + kFixedBytes + i * 16 + 8, h.counts[i][1]);
  }
  return out + token::Sha256(out);
}

absl::StatusOr<Header> DecodeHeader(absl::string_view bytes, const std::string& path) {
  const char* p = bytes.data();
  if (bytes.size() != kHeaderBytes || std::memcmp(p, kMagic, 8) != 0) {
    return Corrupt(path, "not a revocation view checkpoint");
  }
  if (Get32(p + 8) != kVersion) {
    return Error(absl::StatusCode::kFailedPrecondition, "checkpoint_version",
                 absl::StrCat("checkpoint ", path, ": format version ", Get32(p + 8),
                              ", this server reads version ", kVersion));
  }
  if (token::Sha256(bytes.substr(0, kHeaderBodyBytes)) != bytes.substr(kHeaderBodyBytes)) {
    return Corrupt(path, "the header's SHA-256 does not match");
  }
  if (Get32(p + 12) != kShards) return Corrupt(path, "another shard layout");
  Header h;
  h.covered.seq = Get64(p + 16);
  std::memcpy(h.covered.fingerprint.data(), p + 24, 16);
  h.sip_key = {Get64(p + 40), Get64(p + 48)};
  h.written_at_micros = static_cast<int64_t>(Get64(p + 56));
  for (size_t i = 0; i < kShards; ++i) {
    h.counts[i] = {Get64(p + kFixedBytes + i * 16), Get64(p + kFixedBytes + i * 16 + 8)};
  }
  return h;
}

// Owns a file descriptor.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now; the error close reports (a failed write-back), or 0.
  int Close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc == 0 ? 0 : errno;
  }

 private:
  int fd_;
};

// 0, or the errno of a failed write.
int WriteAt(int fd, absl::string_view data, off_t offset) {
  while (!data.empty()) {
    const ssize_t n = ::pwrite(fd, data.data(), data.size(), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    data.remove_prefix(static_cast<size_t>(n));
    offset += n;
  }
  return 0;
}

// Reads exactly out->size() bytes at `offset`: 0, the errno of a failed read, or -1 when the
// file ends first.
int ReadAt(int fd, std::string* out, off_t offset) {
  size_t done = 0;
  while (done < out->size()) {
    const ssize_t n = ::pread(fd, out->data() + done, out->size() - done, offset + done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return -1;
    done += static_cast<size_t>(n);
  }
  return 0;
}

void EncodeEntries(const std::vector<RawEntry>& entries, std::string* out) {
  const size_t start = out->size();
  out->resize(start + entries.size() * kEntryBytes);
  char* p = out->data() + start;
  for (const RawEntry& e : entries) {
    Put64(p, e.key_lo);
    Put64(p + 8, e.key_hi);
    Put64(p + 16, static_cast<uint64_t>(e.live_until_micros * 2 + (e.by_subject ? 1 : 0)));
    p += kEntryBytes;
  }
}

// Checks that `path` is a regular file of this user that nobody else may read or write.
absl::Status CheckOwnership(const struct stat& st, const std::string& path) {
  if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
    return Error(absl::StatusCode::kFailedPrecondition, "checkpoint_permissions",
                 absl::StrCat("checkpoint ", path,
                              " is not a regular file of this user with mode 0600 (it holds a "
                              "secret key); not used"));
  }
  return absl::OkStatus();
}

// The store must hold entry `covered.seq` as the writer read it (header comment).
absl::Status CheckAnchor(storage::TokenStore& store, const LogPosition& covered,
                         const std::string& path) {
  if (covered.seq == 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<storage::RevocationEntry> at,
                   store.ReadRevocations(covered.seq - 1, absl::InfinitePast(), 1));
  if (at.empty() || at[0].seq != covered.seq || Fingerprint(at[0]) != covered.fingerprint) {
    return Error(absl::StatusCode::kFailedPrecondition, "checkpoint_other_log",
                 absl::StrCat("checkpoint ", path, " covers the log up to entry ", covered.seq,
                              ", which this store does not hold as it was (a restored or "
                              "another store, or the entry has been purged)"));
  }
  return absl::OkStatus();
}

// Reads, checks and imports the sections of shards first, first + step, ... of the file.
absl::Status ImportSections(int fd, const Header& h, const std::vector<off_t>& offsets,
                            size_t first, size_t step, RevocationView& view, absl::Time now,
                            const std::string& path, const std::atomic<bool>& failed,
                            std::atomic<size_t>& entries) {
  std::string buffer;
  for (size_t i = first; i < kShards && !failed.load(std::memory_order_relaxed); i += step) {
    const size_t jtis = h.counts[i][0], families = h.counts[i][1];
    buffer.resize((jtis + families) * kEntryBytes + kDigestBytes);
    if (int err = ReadAt(fd, &buffer, offsets[i]); err != 0) {
      return err < 0 ? Corrupt(path, "the file ends early")
                     : IoError("checkpoint_unreadable", "cannot read", path, err);
    }
    const absl::string_view body(buffer.data(), buffer.size() - kDigestBytes);
    if (token::Sha256(body) != absl::string_view(buffer).substr(body.size())) {
      return Corrupt(path, absl::StrCat("section ", i, "'s SHA-256 does not match"));
    }
    if (!view.ImportShard(i, body.substr(0, jtis * kEntryBytes), body.substr(jtis * kEntryBytes),
                          now)) {
      return Corrupt(path, absl::StrCat("section ", i, " holds another shard's entries"));
    }
    entries.fetch_add(jtis + families, std::memory_order_relaxed);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LogPosition> ReplayRevocationLog(storage::TokenStore& store, RevocationView& view,
                                                LogPosition from, absl::Time now, size_t* read) {
  LogPosition at = from;
  while (true) {
    ASSIGN_OR_RETURN(std::vector<storage::RevocationEntry> batch,
                     store.ReadRevocations(at.seq, now, kReplayBatch));
    for (const storage::RevocationEntry& entry : batch) view.Apply(entry);
    if (read != nullptr) *read += batch.size();
    if (!batch.empty()) at = LogPosition{batch.back().seq, Fingerprint(batch.back())};
    if (batch.size() < kReplayBatch) return at;
  }
}

absl::StatusOr<RestoredView> RestoreViewCheckpoint(const std::string& path,
                                                   const ViewSettings& settings,
                                                   storage::TokenStore& store, absl::Time now,
                                                   int threads) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) {
    const int err = errno;
    if (err == ENOENT) {
      return Error(absl::StatusCode::kNotFound, "checkpoint_absent",
                   absl::StrCat("no checkpoint ", path));
    }
    if (err == ELOOP) {
      return Error(absl::StatusCode::kFailedPrecondition, "checkpoint_permissions",
                   absl::StrCat("checkpoint ", path, " is a symbolic link; not used"));
    }
    return IoError("checkpoint_unreadable", "cannot open", path, err);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0)
    return IoError("checkpoint_unreadable", "cannot stat", path, errno);
  RETURN_IF_ERROR(CheckOwnership(st, path));
  std::string header_bytes(kHeaderBytes, '\0');
  if (int err = ReadAt(fd.get(), &header_bytes, 0); err != 0) {
    return err < 0 ? Corrupt(path, "shorter than its header")
                   : IoError("checkpoint_unreadable", "cannot read", path, err);
  }
  ASSIGN_OR_RETURN(Header h, DecodeHeader(header_bytes, path));
  // Where each shard's section starts; the file must end right after the last one.
  std::vector<off_t> offsets(kShards);
  uint64_t end = kHeaderBytes;
  for (size_t i = 0; i < kShards; ++i) {
    const uint64_t n = h.counts[i][0] + h.counts[i][1];
    if (h.counts[i][0] > static_cast<uint64_t>(st.st_size) / kEntryBytes ||
        h.counts[i][1] > static_cast<uint64_t>(st.st_size) / kEntryBytes) {
      return Corrupt(path, "entry counts larger than the file");
    }
    offsets[i] = static_cast<off_t>(end);
    end += n * kEntryBytes + kDigestBytes;
  }
  if (end != static_cast<uint64_t>(st.st_size)) {
    return Corrupt(path, absl::StrCat(st.st_size, " bytes where its header says ", end));
  }
  if (absl::FromUnixMicros(h.written_at_micros) > now) {
    return Error(absl::StatusCode::kFailedPrecondition, "checkpoint_clock",
                 absl::StrCat("checkpoint ", path, " was written at ",
                              absl::FormatTime(absl::FromUnixMicros(h.written_at_micros)),
                              ", after this server's clock (", absl::FormatTime(now),
                              "): entries it left out as dead may live"));
  }
  RETURN_IF_ERROR(CheckAnchor(store, h.covered, path));

  auto view = std::make_unique<RevocationView>(settings.follows_shared_log, settings.max_lag,
                                               settings.clock, h.sip_key);
  if (threads <= 0) {
    threads = std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 1, kMaxThreads);
  }
  threads = std::min<int>(threads, kShards);
  std::atomic<bool> failed{false};
  std::atomic<size_t> entries{0};
  std::vector<absl::Status> results(threads);
  std::vector<std::thread> workers;
  for (int t = 1; t < threads; ++t) {
    workers.emplace_back([&, t] {
      results[t] =
          ImportSections(fd.get(), h, offsets, t, threads, *view, now, path, failed, entries);
      if (!results[t].ok()) failed = true;
    });
  }
  results[0] = ImportSections(fd.get(), h, offsets, 0, threads, *view, now, path, failed, entries);
  if (!results[0].ok()) failed = true;
  for (std::thread& w : workers) w.join();
  for (const absl::Status& s : results) RETURN_IF_ERROR(s);
  view->AdvanceLastSeq(h.covered.seq);
  return RestoredView{std::move(view), h.covered, entries.load()};
}

ViewCheckpointer::ViewCheckpointer(const ViewCheckpointOptions& options, storage::TokenStore* store,
                                   RevocationView* view, LogPosition loaded,
                                   std::optional<LogPosition> on_disk)
    : options_(options), store_(store), view_(view), cursor_(loaded), on_disk_(on_disk) {}

ViewCheckpointer::~ViewCheckpointer() { Stop(); }

absl::Status ViewCheckpointer::WriteNow() {
  absl::MutexLock lock(&write_mu_);
  return WriteLocked();
}

absl::Status ViewCheckpointer::WriteLocked() {
  const absl::Time started = absl::Now();  // pacing only: real time, whatever the clock
  // Catch up first: afterwards every live entry numbered <= cursor_ is in the view.
  ASSIGN_OR_RETURN(cursor_, ReplayRevocationLog(*store_, *view_, cursor_, options_.clock->Now()));
  if (cursor_.seq == 0) return absl::OkStatus();  // an empty log: a restart reads nothing
  struct stat st;
  if (on_disk_.has_value() && on_disk_->seq == cursor_.seq &&
      ::stat(options_.path.c_str(), &st) == 0) {
    return absl::OkStatus();  // the file already covers the log as it is
  }
  const std::string tmp = options_.path + ".tmp";
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  auto failed = [&](absl::string_view what, int err) {
    return IoError("checkpoint_write_failed", what, tmp, err);
  };
  if (fd.get() < 0) return failed("cannot create", errno);
  if (::fchmod(fd.get(), 0600) != 0) return failed("cannot chmod", errno);
  Header h;
  h.covered = cursor_;
  h.sip_key = view_->sip_key();
  // Sections first (the header, which counts them, last): one shard's entries at a time.
  off_t offset = kHeaderBytes;
  std::vector<RawEntry> jtis, families;
  std::string section;
  size_t total = 0;
  for (size_t i = 0; i < kShards; ++i) {
    jtis.clear();
    families.clear();
    view_->ExportShard(i, options_.clock->Now(), &jtis, &families);
    section.clear();
    EncodeEntries(jtis, &section);
    EncodeEntries(families, &section);
    section += token::Sha256(section);
    if (int err = WriteAt(fd.get(), section, offset); err != 0) return failed("cannot write", err);
    offset += static_cast<off_t>(section.size());
    h.counts[i] = {jtis.size(), families.size()};
    total += jtis.size() + families.size();
  }
  // After the export: every entry it left out (dead, or swept by Apply) was dead by then.
  h.written_at_micros = absl::ToUnixMicros(options_.clock->Now());
  if (int err = WriteAt(fd.get(), EncodeHeader(h), 0); err != 0) return failed("cannot write", err);
  if (::fsync(fd.get()) != 0) return failed("cannot fsync", errno);
  if (int err = fd.Close(); err != 0) return failed("cannot close", err);
  if (options_.fail_before_rename_for_testing) {
    return absl::InternalError("checkpoint: stopped before the rename (testing)");
  }
  if (::rename(tmp.c_str(), options_.path.c_str()) != 0) return failed("cannot rename", errno);
  // The rename itself must survive a crash: sync the directory that holds it.
  const std::string dir = std::filesystem::path(options_.path).parent_path().string();
  Fd dir_fd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0 || ::fsync(dir_fd.get()) != 0)
    return failed("cannot fsync the directory of", errno);
  on_disk_ = cursor_;
  ++writes_;
  last_entries_ = total;
  last_duration_ = absl::Now() - started;
  return absl::OkStatus();
}

void ViewCheckpointer::Start() {
  if (thread_.has_value()) return;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = false;
  }
  thread_.emplace([this] { Loop(); });
}

void ViewCheckpointer::Stop() {
  if (!thread_.has_value()) return;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_->join();
  thread_.reset();
}

void ViewCheckpointer::Loop() {
  absl::Duration wait = options_.interval;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), wait);
      if (stopping_) return;
    }
    if (absl::Status s = WriteNow(); !s.ok()) {
      std::cerr << "token-authority: revocation view checkpoint not written: " << s.message()
                << " (retried in " << absl::FormatDuration(options_.interval) << ")\n";
    }
    // Writing takes at most 1/20 of the time, however large the view.
    wait = std::max(options_.interval, 20 * last_duration());
  }
}

uint64_t ViewCheckpointer::writes() const {
  absl::MutexLock lock(&write_mu_);
  return writes_;
}

size_t ViewCheckpointer::last_entries() const {
  absl::MutexLock lock(&write_mu_);
  return last_entries_;
}

absl::Duration ViewCheckpointer::last_duration() const {
  absl::MutexLock lock(&write_mu_);
  return last_duration_;
}

}  // namespace ta::core

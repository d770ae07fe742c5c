// The subcommands over many records: revoke-subject (one subject, or each in a file, with a
// progress line), sessions, jwks and stats as tables for people, rotate-key, purge-expired,
// backup.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/tokenctl/progress.h"
#include "client/tokenctl/subcommands.h"
#include "client/tokenctl/table.h"

namespace ta::tokenctl::internal {
namespace {

namespace v1 = ::tokenauthority::v1;
using google::protobuf::util::TimeUtil;

// Calls one --from_file run may have in flight.
constexpr int kMaxParallel = 64;

constexpr absl::string_view kTimeHint = ": want RFC 3339, e.g. 2030-01-01T00:00:00Z";

// The request for every subject, times parsed once. nullopt after a usage error was printed.
std::optional<v1::RevokeSubjectRequest> RevokeSubjectTemplate(const CommandInput& in, Io& io) {
  v1::RevokeSubjectRequest req;
  req.set_reason(in.reason);
  if (!in.not_before.empty() && !TimeUtil::FromString(in.not_before, req.mutable_not_before())) {
    UsageError(io, absl::StrCat("--not_before", kTimeHint));
    return std::nullopt;
  }
  if (!in.block_until.empty() && !TimeUtil::FromString(in.block_until, req.mutable_block_until())) {
    UsageError(io, absl::StrCat("--block_until", kTimeHint));
    return std::nullopt;
  }
  return req;
}

struct Line {
  int number;
  std::string subject;
};

// Subjects one per line from `path` ("-": stdin), from line `from_line` on (1: all); blank
// lines and lines starting with # are skipped.
absl::StatusOr<std::vector<Line>> ReadSubjects(const std::string& path, int from_line, Io& io) {
  std::ifstream file;
  if (path != "-") {
    file.open(path);
    if (!file) return absl::InvalidArgumentError(absl::StrCat("--from_file: cannot read ", path));
  }
  std::istream& in = path == "-" ? io.in : file;
  std::vector<Line> lines;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    absl::string_view subject = absl::StripAsciiWhitespace(line);
    if (number < from_line || subject.empty() || subject[0] == '#') continue;
    lines.push_back({number, std::string(subject)});
  }
  if (lines.empty()) {
    return absl::InvalidArgumentError(
        from_line > 1 ? absl::StrCat("--from_line: no subjects in ", path, " at line ", from_line,
                                     " or after")
                      : absl::StrCat("--from_file: no subjects in ", path));
  }
  return lines;
}

// A failure that says nothing about the subject: the call may never have reached the server
// (or its answer was lost). The run stops at that line, so resuming from it loses nothing.
bool IsTransportFailure(const absl::Status& status) {
  return status.code() == absl::StatusCode::kCancelled ||
         status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kDeadlineExceeded;
}

// {"subject":"...", <the response's fields>} on one line.
std::string SubjectJson(const std::string& subject, const v1::RevokeSubjectResponse& r) {
  google::protobuf::Value name;
  name.set_string_value(subject);
  std::string fields = JsonLine(r).value_or("{}");
  return absl::StrCat("{\"subject\":", JsonLine(name).value_or("\"\""),
                      fields == "{}" ? "}" : absl::StrCat(",", fields.substr(1)));
}

// The calls of one --from_file run, made by `parallel` threads taking lines in order.
// Answers are reported in line order as they arrive, so the report (and --json) reads as a
// serial run's; a transport failure stops the hand-out of new lines.
class SubjectRevoker {
 public:
  SubjectRevoker(const std::vector<Line>& lines, const v1::RevokeSubjectRequest& tmpl,
                 client::Client& c, int parallel)
      : lines_(lines), tmpl_(tmpl), client_(c), answers_(lines.size()) {
    for (int i = 0; i < parallel; ++i) threads_.emplace_back([this] { Work(); });
  }
  ~SubjectRevoker() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    for (std::thread& t : threads_) t.join();
  }

  // The answer for line index `i`, waiting for it; nullopt when it was never sent (a
  // transport failure stopped the run before).
  std::optional<absl::StatusOr<v1::RevokeSubjectResponse>> Await(size_t i) {
    absl::MutexLock lock(&mu_);
    auto ready = [this, i]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return answers_[i].has_value() || (i >= next_ && stop_);
    };
    mu_.Await(absl::Condition(&ready));
    return answers_[i];
  }

 private:
  void Work() {
    while (true) {
      size_t i;
      {
        absl::MutexLock lock(&mu_);
        if (stop_ || next_ == lines_.size()) return;
        i = next_++;
        ++in_flight_;
      }
      v1::RevokeSubjectRequest req = tmpl_;
      req.set_subject(lines_[i].subject);
      absl::StatusOr<v1::RevokeSubjectResponse> result = client_.RevokeSubject(req);
      absl::MutexLock lock(&mu_);
      --in_flight_;
      if (!result.ok() && IsTransportFailure(result.status())) stop_ = true;
      answers_[i] = std::move(result);
    }
  }

  const std::vector<Line>& lines_;
  const v1::RevokeSubjectRequest& tmpl_;
  client::Client& client_;
  absl::Mutex mu_;
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::optional<absl::StatusOr<v1::RevokeSubjectResponse>>> answers_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

// Revokes each subject of the file, --parallel calls at a time (1: one after the other). A
// refusal (a bad subject) is reported with its line and the run goes on; a transport failure
// stops the run at that line, which is then the line to resume from (--from_line): every
// line before it was answered. Only answered revocations count as revoked.
int RevokeSubjectsFromFile(const CommandInput& in, const v1::RevokeSubjectRequest& tmpl,
                           client::Client& c, Io& io) {
  if (in.from_line < 1) return UsageError(io, "--from_line: must be 1 or more");
  if (in.parallel < 1 || in.parallel > kMaxParallel) {
    return UsageError(io, absl::StrCat("--parallel: 1..", kMaxParallel));
  }
  absl::StatusOr<std::vector<Line>> lines = ReadSubjects(in.from_file, in.from_line, io);
  if (!lines.ok()) return UsageError(io, lines.status().message());
  Progress progress(io.err, io.progress,
                    {.label = "revoking", .total = lines->size(), .columns = io.columns});
  SubjectRevoker revoker(*lines, tmpl, c, in.parallel);
  size_t attempted = 0, revoked = 0;
  for (size_t i = 0; i < lines->size(); ++i) {
    const Line& line = (*lines)[i];
    std::optional<absl::StatusOr<v1::RevokeSubjectResponse>> result = revoker.Await(i);
    if (result.has_value() && result->ok()) {
      ++revoked;
      if (in.json) io.out << SubjectJson(line.subject, **result) << "\n" << std::flush;
      progress.Set(++attempted);
      continue;
    }
    progress.Erase();  // the error gets a line of its own; the bar comes back below it
    if (result.has_value()) {
      io.err << "line " << line.number << ": " << line.subject << ": ";
      CallError(io, result->status());
    }
    if (!result.has_value() || IsTransportFailure(result->status())) {
      io.err << "stopped at line " << line.number << " (not revoked): " << revoked << " of "
             << lines->size() << " subjects revoked; resume from line " << line.number
             << " (--from_line=" << line.number << ")";
      if (in.parallel > 1) {
        io.err << "; lines after it may have been revoked already and are revoked again "
                  "(give --not_before for the same cutoff both times)";
      }
      io.err << "\n";
      return kExitUnreachable;
    }
    progress.Set(++attempted);
  }
  progress.Finish();
  if (!in.json) io.out << "revoked " << revoked << " of " << lines->size() << " subjects\n";
  return revoked == lines->size() ? kExitOk : kExitRefused;
}

void PrintSubject(const v1::RevokeSubjectResponse& r, Io& io) {
  io.out << "not_before:  " << Time(r.not_before()) << "\n"
         << "block_until: " << Time(r.block_until()) << "\n";
}

std::string State(const v1::Family& f, absl::Time now) {
  if (f.revoked()) return "REVOKED";
  return FromProto(f.expires_at()) <= now ? "expired" : "active";
}

// When, by whom and why a session was revoked.
std::string Note(const v1::Family& f, absl::Time now) {
  if (!f.revoked()) return "";
  return absl::StrCat("revoked ", RelativeTime(FromProto(f.revoked_at()), now),
                      f.revoked_by().empty() ? "" : " by ", f.revoked_by(),
                      f.revoke_reason().empty() ? "" : ": ", f.revoke_reason());
}

void PrintSessions(const v1::ListFamiliesResponse& r, const CommandInput& in, Io& io) {
  if (r.families().empty()) {
    io.out << "no " << (in.include_revoked ? "" : "active ") << "sessions for " << in.args[0]
           << "\n";
    return;
  }
  using A = Table::Align;
  // A narrow terminal loses METADATA first; then NOTE (who revoked a session and why) moves
  // under its row rather than being cut away; then the times people need least go.
  Table table({{"FAMILY_ID"},
               {"STATE"},
               {"CLIENT"},
               {"CREATED", A::kLeft, 4},
               {"LAST_REFRESH", A::kLeft, 3},
               {"EXPIRES"},
               {"GEN", A::kRight},
               {"METADATA", A::kLeft, 1},
               {"NOTE", A::kLeft, 2, true}});
  int revoked = 0;
  for (const v1::Family& f : r.families()) {
    revoked += f.revoked();
    table.AddRow({f.family_id(), State(f, io.now), f.client_id(),
                  RelativeTime(FromProto(f.created_at()), io.now),
                  RelativeTime(FromProto(f.last_refreshed_at()), io.now),
                  RelativeTime(FromProto(f.expires_at()), io.now), absl::StrCat(f.generation()),
                  Metadata(f), Note(f, io.now)});
  }
  table.Print(io.out, io.out_columns);
  io.out << r.families_size() << (r.families_size() == 1 ? " session" : " sessions");
  if (in.include_revoked) io.out << ", " << revoked << " revoked";
  io.out << "\n";
  if (!r.next_page_token().empty()) {
    io.out << "more: tokenctl sessions " << in.args[0]
           << (in.include_revoked ? " --include_revoked" : "")
           << " --page_token=" << r.next_page_token() << "\n";
  }
}

void PrintJwks(const v1::GetJwksResponse& r, Io& io) {
  Table table({{" "}, {"KID"}, {"ALG"}, {"CREATED"}, {"SIGNS FROM"}, {"RETIRES"}});
  for (const v1::KeyInfo& k : r.keys()) {
    table.AddRow({k.active() ? "*" : "", k.kid(), k.alg(),
                  RelativeTime(FromProto(k.created_at()), io.now),
                  k.has_signs_from() ? RelativeTime(FromProto(k.signs_from()), io.now) : "never",
                  k.has_retire_at() ? RelativeTime(FromProto(k.retire_at()), io.now) : "-"});
  }
  table.Print(io.out, io.out_columns);
  io.out << "* signs new tokens; a key whose SIGNS FROM is ahead is published and pending; "
            "the others only verify, until RETIRES\n";
}

void PrintStats(const v1::GetStatsResponse& r, Io& io) {
  using A = Table::Align;
  Table table({{"RECORDS"}, {"COUNT", A::kRight}});
  table.AddRow({"families (sessions)", absl::StrCat(r.families())});
  table.AddRow({"refresh records", absl::StrCat(r.refresh_records())});
  table.AddRow({"denied access tokens", absl::StrCat(r.denied_jtis())});
  table.AddRow({"revoked subjects", absl::StrCat(r.subjects())});
  table.AddRow({"signing keys", absl::StrCat(r.signing_keys())});
  table.Print(io.out, io.out_columns);
  // The answer does not say which engine made it: the notes cover both (issue 23: on
  // PostgreSQL this printed RocksDB's wording).
  io.out << "on disk: " << HumanBytes(r.disk_bytes()) << " (" << r.disk_bytes()
         << " bytes: RocksDB's SST and WAL files, or PostgreSQL's tables with indexes)\n"
         << "record counts are the store's estimates: on RocksDB exact after purge-expired, on "
            "PostgreSQL exact below 100,000 rows a table\n";
}

void PrintBackup(const v1::CreateBackupResponse& r, const CommandInput& in, Io& io) {
  const uint32_t shared = r.file_count() - std::min(r.file_count(), r.new_files());
  io.out << "backup " << r.backup_id() << " in " << in.args[0] << ", verified\n"
         << "files:    " << r.file_count() << " (" << r.new_files() << " new, " << shared
         << " shared with earlier backups)\n"
         << "size:     " << HumanBytes(r.size_bytes()) << " (" << HumanBytes(r.new_bytes())
         << " new)\n"
         << "took:     " << absl::FormatDuration(absl::Milliseconds(r.duration_ms())) << "\n"
         << "kept:     " << r.backups_kept() << (r.backups_kept() == 1 ? " backup" : " backups")
         << " in the directory\n"
         << "keys:     "
         << (r.keys_sealed_in_store()
                 ? "sealed in the store's copy; the key-encryption key file is not in the backup: "
                   "keep it apart from it\n"
                 : absl::StrCat(r.key_files(), " files in ", r.key_dir(),
                                ": private signing keys; protect the backup like the key "
                                "directory\n"))
         << "restore:  tokenctl restore " << in.args[0] << " NEW_DATA_DIR\n";
}

}  // namespace

int RevokeSubject(const CommandInput& in, client::Client& c, Io& io) {
  if (in.args.empty() == in.from_file.empty()) {
    return UsageError(io, "revoke-subject: give a SUBJECT or --from_file, not both");
  }
  std::optional<v1::RevokeSubjectRequest> req = RevokeSubjectTemplate(in, io);
  if (!req.has_value()) return kExitUsage;
  if (!in.from_file.empty()) return RevokeSubjectsFromFile(in, *req, c, io);
  req->set_subject(in.args[0]);
  return Finish(c.RevokeSubject(*req), in, io, PrintSubject);
}

int Sessions(const CommandInput& in, client::Client& c, Io& io) {
  v1::ListFamiliesRequest req;
  req.set_subject(in.args[0]);
  req.set_include_revoked(in.include_revoked);
  req.set_page_size(in.page_size);
  req.set_page_token(in.page_token);
  return Finish(c.ListFamilies(req), in, io,
                [&in](const v1::ListFamiliesResponse& r, Io& io) { PrintSessions(r, in, io); });
}

int Jwks(const CommandInput& in, client::Client& c, Io& io) {
  return Finish(c.GetJwks(v1::GetJwksRequest()), in, io, PrintJwks);
}

int RotateKey(const CommandInput& in, client::Client& c, Io& io) {
  v1::RotateSigningKeyRequest req;
  req.set_alg(in.alg);
  return Finish(c.RotateSigningKey(req), in, io, [](const v1::RotateSigningKeyResponse& r, Io& io) {
    io.out << "kid: " << r.kid() << "\n";
    if (r.has_signs_from()) {
      io.out << "published now; signs " << RelativeTime(FromProto(r.signs_from()), io.now)
             << " (" << absl::FormatTime(absl::RFC3339_sec, FromProto(r.signs_from()),
                                         absl::UTCTimeZone())
             << ")\n";
    }
  });
}

int Purge(const CommandInput& in, client::Client& c, Io& io) {
  absl::StatusOr<v1::PurgeExpiredResponse> result;
  {
    // One call with no progress from the server: a spinner and the time it has taken.
    Progress progress(io.err, io.progress,
                      {.label = "purging expired records", .columns = io.columns});
    std::optional<Ticker> ticker;
    if (io.progress) ticker.emplace(progress, absl::Milliseconds(100));
    result = c.PurgeExpired(v1::PurgeExpiredRequest());
  }
  return Finish(result, in, io, [](const v1::PurgeExpiredResponse&, Io& io) { io.out << "ok\n"; });
}

int Stats(const CommandInput& in, client::Client& c, Io& io) {
  return Finish(c.GetStats(v1::GetStatsRequest()), in, io, PrintStats);
}

int Backup(const CommandInput& in, client::Client& c, Io& io) {
  if (in.keep < 0) return UsageError(io, "--keep: must be 0 (keep all) or more");
  v1::CreateBackupRequest req;
  req.set_backup_dir(in.args[0]);
  req.set_keep_last(static_cast<uint32_t>(in.keep));
  absl::StatusOr<v1::CreateBackupResponse> result;
  {
    // One call; the server reports no progress while it copies: a spinner and elapsed time.
    Progress progress(io.err, io.progress, {.label = "backing up", .columns = io.columns});
    std::optional<Ticker> ticker;
    if (io.progress) ticker.emplace(progress, absl::Milliseconds(100));
    result = c.CreateBackup(req);
  }
  return Finish(result, in, io, [&in](const v1::CreateBackupResponse& r, Io& io) {
    PrintBackup(r, in, io);
  });
}

}  // namespace ta::tokenctl::internal

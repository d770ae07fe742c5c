#include "server/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <iostream>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace ta {
namespace {

absl::StatusOr<int> OpenFile(const std::string& path) {
  if (path == "-") return STDOUT_FILENO;
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("cannot open --audit_log ", path));
  return fd;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path,
                                                         core::RefusalLimiterOptions refusals,
                                                         const Clock* clock) {
  absl::StatusOr<int> fd = OpenFile(path);
  if (!fd.ok()) return fd.status();
  return absl::WrapUnique(new AuditLog(path, *fd, refusals, clock));
}

AuditLog::~AuditLog() {
  absl::MutexLock lock(&mu_);
  for (const core::AuditEvent& e : refusals_.Due(clock_->Now(), /*force=*/true)) WriteLocked(e);
  if (fd_ != STDOUT_FILENO && fd_ >= 0) close(fd_);
}

std::string AuditLog::Format(const core::AuditEvent& e) {
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  w.StartObject();
  auto field = [&w](const char* name, const std::string& value) {
    if (value.empty()) return;
    w.Key(name);
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  };
  field("time", absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", e.time, absl::UTCTimeZone()));
  field("action", e.action);
  field("outcome", e.outcome);
  field("reason", e.reason);
  field("caller", e.caller);
  field("rpc", e.rpc);
  field("subject", e.subject);
  field("client_id", e.client_id);
  field("family_id", e.family_id);
  field("jti", e.jti);
  field("kid", e.kid);
  field("note", e.note);
  field("peer", e.peer);
  if (e.count > 0) field("count", absl::StrCat(e.count));
  w.EndObject();
  // JSON allows these raw inside strings, but line-oriented readers (JavaScript's split,
  // Python's splitlines, many log shippers) end a line at them. Their UTF-8 forms occur only
  // inside strings (names are ASCII), so replacing the bytes is exact.
  std::string line = absl::StrReplaceAll(
      absl::string_view(out.GetString(), out.GetSize()),
      {{"\xE2\x80\xA8", "\\u2028"}, {"\xE2\x80\xA9", "\\u2029"}, {"\xC2\x85", "\\u0085"}});
  line += '\n';
  return line;
}

void AuditLog::Record(const core::AuditEvent& event) {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  if (core::IsCollapsibleRefusal(event)) {
    for (const core::AuditEvent& e : refusals_.Admit(event, now)) WriteLocked(e);
    return;
  }
  for (const core::AuditEvent& e : refusals_.Due(now)) WriteLocked(e);
  WriteLocked(event);
}

void AuditLog::WriteLocked(const core::AuditEvent& event) {
  const std::string line = Format(event);
  if (fd_ >= 0 && write(fd_, line.data(), line.size()) == static_cast<ssize_t>(line.size())) {
    return;
  }
  if (dropped_.fetch_add(1) == 0) {
    std::cerr << "token-authority: cannot write the audit log " << path_
              << "; dropping events (counted) until it can\n";
  }
}

absl::Status AuditLog::Reopen() {
  if (path_ == "-") return absl::OkStatus();
  absl::StatusOr<int> fd = OpenFile(path_);
  absl::MutexLock lock(&mu_);
  if (!fd.ok()) return fd.status();  // keep writing to the old file rather than nowhere
  if (fd_ >= 0) close(fd_);
  fd_ = *fd;
  return absl::OkStatus();
}

}  // namespace ta

#include "server/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <iostream>

#include "absl/strings/str_cat.h"
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

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path) {
  absl::StatusOr<int> fd = OpenFile(path);
  if (!fd.ok()) return fd.status();
  return std::unique_ptr<AuditLog>(new AuditLog(path, *fd));
}

AuditLog::~AuditLog() {
  absl::MutexLock lock(&mu_);
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
  w.EndObject();
  return absl::StrCat(absl::string_view(out.GetString(), out.GetSize()), "\n");
}

void AuditLog::Record(const core::AuditEvent& event) {
  const std::string line = Format(event);
  absl::MutexLock lock(&mu_);
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

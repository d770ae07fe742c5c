// AuditLog: the audit trail's sink (core/audit.h) as JSON lines, one event per line, to a file
// or to stdout.
//
//   {"time":"2026-11-30T07:30:01.123456Z","action":"revoke.family","outcome":"ok",
//    "reason":"revoked","caller":"ops","rpc":"RevokeFamily","family_id":"...","note":"logout"}
//
// Empty fields are left out. Lines are written whole (one write per event, O_APPEND) and
// flushed, so a tail -f or a log shipper sees each event at once. Reopen() (on SIGHUP, after
// logrotate moved the file) starts a new file at the same path. A failing write (full disk)
// drops the event and counts it (dropped()), never blocks the call or stops the server; the
// first drop is reported on stderr.
//
// Refused callers ("auth.refused") and refreshes refused to unauthenticated public clients go
// through a RefusalLimiter (core/audit.h IsCollapsibleRefusal): per interval, the first
// refusal of each (action, peer, caller, reason) and then one counted summary, so refused
// traffic cannot fill the disk (issue 22). Summaries of an ended interval are written with the
// next event, and at destruction. Strings are JSON-escaped, and so are U+2028, U+2029 and
// U+0085, which line-oriented readers take for line ends (issue 22).
//
// Thread-safe.
#ifndef TA_SERVER_AUDIT_LOG_H_
#define TA_SERVER_AUDIT_LOG_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/clock.h"
#include "server/core/audit.h"

namespace ta {

class AuditLog final : public core::AuditSink {
 public:
  // `path` "-" writes to stdout. The file is created 0600 if missing and appended to.
  // `clock` times the refusal intervals (default: the real clock).
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(const std::string& path,
                                                        core::RefusalLimiterOptions refusals = {},
                                                        const Clock* clock = Clock::Real());
  ~AuditLog() override;

  void Record(const core::AuditEvent& event) override;
  // Closes and opens the path again (stdout: nothing to do).
  absl::Status Reopen();
  uint64_t dropped() const { return dropped_.load(); }

  // The JSON line for `event` (with the trailing newline).
  static std::string Format(const core::AuditEvent& event);

 private:
  AuditLog(std::string path, int fd, core::RefusalLimiterOptions refusals, const Clock* clock)
      : path_(std::move(path)), clock_(clock), fd_(fd), refusals_(refusals) {}
  void WriteLocked(const core::AuditEvent& event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  const Clock* const clock_;
  absl::Mutex mu_;
  int fd_ ABSL_GUARDED_BY(mu_);
  core::RefusalLimiter refusals_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace ta

#endif  // TA_SERVER_AUDIT_LOG_H_

#include "server/core/audit.h"

#include "absl/strings/str_cat.h"
#include "base/error.h"

namespace ta::core {

void SetOutcome(const absl::Status& status, AuditEvent* event) {
  if (status.ok()) {
    event->outcome = "ok";
    return;
  }
  switch (status.code()) {
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAborted:
      event->outcome = "refused";
      break;
    default:
      event->outcome = "error";
  }
  event->reason = ReasonOf(status);
}

bool IsCollapsibleRefusal(const AuditEvent& event) {
  if (event.action == "auth.refused") return true;
  return event.action == "session.refresh" && event.outcome == "refused" && !event.peer.empty();
}

std::vector<AuditEvent> RefusalLimiter::Due(absl::Time now, bool force) {
  std::vector<AuditEvent> out;
  if (!force && now < interval_start_ + options_.interval) return out;
  for (const auto& [key, pending] : keys_) {
    if (pending.more == 0) continue;
    AuditEvent summary;
    summary.outcome = "refused";
    summary.time = now;
    std::tie(summary.action, summary.peer, summary.caller, summary.reason) = key;
    summary.rpc = pending.rpc;
    summary.count = pending.more;
    summary.note = absl::StrCat(
        "summary: refusals like this one not written since ",
        absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", interval_start_, absl::UTCTimeZone()));
    out.push_back(std::move(summary));
  }
  keys_.clear();
  interval_start_ = now;
  return out;
}

std::vector<AuditEvent> RefusalLimiter::Admit(const AuditEvent& event, absl::Time now) {
  std::vector<AuditEvent> out = Due(now);
  Key key{event.action, event.peer, event.caller, event.reason};
  if (keys_.count(key) == 0 && keys_.size() >= options_.max_keys) {
    key = Key{event.action, "*", "*", "*"};
  }
  auto [it, first] = keys_.try_emplace(key);
  if (first) {
    out.push_back(event);
    if (std::get<1>(key) == "*") {  // the shared key's first: say that it is one
      out.back().peer = "*";
      out.back().note = "more distinct refused peers than the trail lists per interval";
    }
  } else {
    ++it->second.more;
    it->second.rpc = event.rpc;
  }
  return out;
}

}  // namespace ta::core

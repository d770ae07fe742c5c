// The revocation view at start (DESIGN §10, issue 27 item 2): from its checkpoint when one is
// usable, then the log after it; and the checkpoint written at clean shutdown.
#include <iostream>
#include <optional>

#include "absl/strings/str_cat.h"
#include "base/error.h"
#include "base/status_macros.h"
#include "server/core/authority.h"

namespace ta::core {

absl::StatusOr<LogPosition> TokenAuthority::LoadView() {
  const absl::Time started = absl::Now();  // for the log line only
  const std::string path = options_.view_checkpoint_interval > absl::ZeroDuration()
                               ? options_.view_checkpoint_path
                               : std::string();
  LogPosition from;
  std::optional<LogPosition> on_disk;
  size_t restored_entries = 0;
  if (!path.empty()) {
    const ViewSettings settings{options_.shared_store, options_.max_revocation_lag, options_.clock};
    absl::StatusOr<RestoredView> restored =
        RestoreViewCheckpoint(path, settings, *store_, options_.clock->Now());
    if (restored.ok()) {
      view_ = std::move(restored->view);
      from = restored->covered;
      on_disk = restored->covered;
      restored_entries = restored->entries;
    } else if (!absl::IsNotFound(restored.status())) {
      // Never a partial view: the whole log is read instead (slower, same answers).
      std::cerr << "token-authority: revocation view checkpoint not used ("
                << ReasonOf(restored.status()) << "): " << restored.status().message()
                << "; reading the whole revocation log\n";
    }
  }
  const absl::Time restored_at = absl::Now();
  // Listen first, then replay: an entry appended in between is applied twice, never missed.
  // Alone on its store, the watch hub takes entries as they commit (in seq order,
  // watch_hub.h); a replica's hub takes them from the follower, which reads every replica's
  // in order.
  RevocationView* view = view_.get();
  WatchHub* hub = options_.shared_store ? nullptr : watch_hub_.get();
  store_->SetRevocationListener([view, hub](const storage::RevocationEntry& e) {
    view->Apply(e);
    if (hub != nullptr) hub->Publish(e);
  });
  size_t replayed = 0;
  ASSIGN_OR_RETURN(const LogPosition loaded,
                   ReplayRevocationLog(*store_, *view_, from, options_.clock->Now(), &replayed));
  if (on_disk.has_value()) {
    std::cerr << "token-authority: revocation view: " << restored_entries
              << " entries from the checkpoint (log entry " << from.seq << "), " << replayed
              << " log entries after it, in "
              << absl::FormatDuration(absl::Trunc(absl::Now() - started, absl::Milliseconds(1)))
              << " (checkpoint "
              << absl::FormatDuration(absl::Trunc(restored_at - started, absl::Milliseconds(1)))
              << ", log "
              << absl::FormatDuration(absl::Trunc(absl::Now() - restored_at, absl::Milliseconds(1)))
              << ")\n";
  }
  if (!path.empty()) {
    ViewCheckpointOptions checkpoint;
    checkpoint.path = path;
    checkpoint.interval = options_.view_checkpoint_interval;
    checkpoint.clock = options_.clock;
    checkpointer_ =
        std::make_unique<ViewCheckpointer>(checkpoint, store_, view_.get(), loaded, on_disk);
  }
  return loaded;
}

absl::Status TokenAuthority::SaveViewCheckpoint() {
  if (checkpointer_ == nullptr) return absl::OkStatus();
  checkpointer_->Stop();
  return checkpointer_->WriteNow();
}

}  // namespace ta::core

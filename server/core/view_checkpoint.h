// View checkpoints (issue 27 item 2): a restart serves within seconds however many live
// revocations there are, because it loads the RevocationView from a file in the data directory
// and reads only the part of the revocation log appended after that file was written, instead
// of the whole log (~9 s at 10 M entries).
//
// What a checkpoint holds: the view's live entries exactly as its tables hold them (16-byte
// key, live_until), the SipHash key the jti keys were made under, and the log position it
// covers: a sequence number S such that every entry of the log numbered <= S that was live when
// the checkpoint was written is in it, plus a fingerprint of entry S itself (the anchor).
// How S is proved: the writer first reads the log after its cursor (the last entry it or the
// load read) and applies what it reads, then exports the view. Stores make entries visible in
// sequence order (storage/token_store.h), so every live entry <= S was read and applied by then;
// entries the store's listener added with numbers > S may be in the file too (harmless: the
// restart replays them again, and Apply is idempotent).
//
// When a checkpoint is used (RestoreViewCheckpoint), and otherwise the whole log is read:
//   - the file is a regular file of this user with mode 0600 (it holds the SipHash key, so it
//     is protected like the other secrets of the data directory; a file others could read
//     may have leaked the key and is not used: the full load draws a fresh key, and the next
//     write replaces the file);
//   - magic, format version, shard layout, length and every SHA-256 (header, each section)
//     check out, and every entry is in its own shard's section: a torn, truncated or corrupt
//     file is never half-used;
//   - this server's clock is not before the instant the checkpoint was written (entries it
//     left out as dead must still be dead);
//   - the store holds entry S with the same fingerprint. A store restored from a backup
//     taken before S, another store, or a log whose entry S has been purged (dead, past the
//     purge margin) fails this: the same entry S proves the same history up to S, so every
//     entry the checkpoint does not hold has a number > S and the replay reads it.
// Whatever makes a checkpoint unusable costs time only (a full load), never an answer.
//
// Writes (ViewCheckpointer): periodically and at clean shutdown; into <path>.tmp (0600),
// fsync, rename over <path>, fsync of the directory, so a crash at any point leaves either the
// previous checkpoint or the new one, and at worst a stray .tmp that is never read. A write
// is skipped when the log has not moved since the last one; periodic writes are spaced so
// that writing takes at most 1/20 of the time.
//
// File format (version 1; integers little-endian, as the view's keys are — little-endian
// hosts only):
//   header (352 bytes): "TAVIEWCK" | u32 version | u32 shard count (16) | u64 S |
//     16-byte anchor fingerprint (zero when S = 0) | 16-byte SipHash key | i64 written_at
//     (µs since the epoch) | per shard: u64 jti entries, u64 family entries |
//     SHA-256 of the 320 bytes before it
//   one section per shard: its jti entries, then its family entries, 24 bytes each
//     (u64 key low word, u64 key high word, i64 live_until µs × 2 + 1 for a family killed
//     by its subject's cutoff), then the SHA-256 of those entries.
//
// Thread-safety: RestoreViewCheckpoint and ReplayRevocationLog are plain functions (the view
// they fill may be in use: Apply and ImportShard are thread-safe). ViewCheckpointer: WriteNow from
// any thread (writes are serialised); Start/Stop from one thread.
#ifndef TA_SERVER_CORE_VIEW_CHECKPOINT_H_
#define TA_SERVER_CORE_VIEW_CHECKPOINT_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "token/revocation_view.h"
#include "storage/token_store.h"

namespace ta::core {

using token::RevocationView;

// A point of the revocation log: the view holds every entry numbered <= seq that was live
// when it was read. fingerprint: the first 16 bytes of the SHA-256 of entry `seq` (kind, id,
// revoked_at, live_until); all zero for seq 0 (nothing read).
struct LogPosition {
  uint64_t seq = 0;
  std::array<uint8_t, 16> fingerprint{};
};

// Reads every entry of `store`'s log numbered after `from.seq` and live at `now`, applies it to
// `view`, and returns the position of the last one read (`from` when there is none); adds the
// number of entries read to `*read` when given. With from.seq = 0 this is the full load.
absl::StatusOr<LogPosition> ReplayRevocationLog(storage::TokenStore& store, RevocationView& view,
                                                LogPosition from, absl::Time now,
                                                size_t* read = nullptr);

// The view's own settings (RevocationView's constructor).
struct ViewSettings {
  bool follows_shared_log = false;
  absl::Duration max_lag = absl::Seconds(1);
  const Clock* clock = Clock::Real();
};

struct RestoredView {
  std::unique_ptr<RevocationView> view;
  LogPosition covered;  // what the checkpoint covers; replay the log after it
  size_t entries = 0;   // live entries imported
};

// A view holding the checkpoint at `path`, when it is usable for `store` at `now` (see the
// header comment); it covers the log up to `covered` only: replay the rest
// (ReplayRevocationLog) before serving. Errors, each with its reason: NOT_FOUND
// "checkpoint_absent"; FAILED_PRECONDITION "checkpoint_permissions" (not a regular file of
// this user with mode 0600), "checkpoint_version", "checkpoint_clock" (this clock is before
// the checkpoint's), "checkpoint_other_log" (the store does not hold its anchor);
// DATA_LOSS "checkpoint_corrupt" (magic, length, shard layout or a SHA-256 wrong);
// UNAVAILABLE "checkpoint_unreadable" (an I/O error) or the store's own error. Never a
// partial view. `threads`: sections read and imported in parallel (0: one per core, at most 8).
absl::StatusOr<RestoredView> RestoreViewCheckpoint(const std::string& path,
                                                   const ViewSettings& settings,
                                                   storage::TokenStore& store, absl::Time now,
                                                   int threads = 0);

struct ViewCheckpointOptions {
  // The checkpoint file (the server: <data_dir>/revocation_view.ckpt). Its directory must
  // exist. Required.
  std::string path;
  // Time between periodic writes (Start). Default 1 min. A write that found the log where the
  // last one left it writes nothing; a write that took d waits at least 20 × d before the next.
  absl::Duration interval = absl::Minutes(1);
  // Time source for written_at and for which entries are dead. Never null.
  const Clock* clock = Clock::Real();
  // Tests: WriteNow stops after the temp file is written and synced, before the rename, and
  // returns INTERNAL (the state a crash at that point leaves).
  bool fail_before_rename_for_testing = false;
};

class ViewCheckpointer {
 public:
  // Borrows `store` and `view`; they must outlive it. `loaded`: the log position the view
  // already holds (what its load or replay returned). `on_disk`: the position of the
  // checkpoint file it was restored from, if any (a write is needed only once the log moves
  // past it).
  ViewCheckpointer(const ViewCheckpointOptions& options, storage::TokenStore* store,
                   RevocationView* view, LogPosition loaded,
                   std::optional<LogPosition> on_disk = std::nullopt);
  ~ViewCheckpointer();  // stops

  // Catches the view up with the log, then writes the checkpoint (unless the file already
  // covers where the log is). Errors: UNAVAILABLE "checkpoint_write_failed" (I/O), the
  // store's error, INTERNAL for the testing option. A failed write leaves the previous file.
  absl::Status WriteNow();
  // A thread that calls WriteNow every interval (failures go to stderr and are retried at
  // the next interval).
  void Start();
  void Stop();

  // Checkpoints written since construction, and what the last one held (tests, logs).
  uint64_t writes() const;
  size_t last_entries() const;
  absl::Duration last_duration() const;

 private:
  absl::Status WriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  void Loop();

  const ViewCheckpointOptions options_;
  storage::TokenStore* const store_;
  RevocationView* const view_;
  mutable absl::Mutex write_mu_;  // serialises writes
  LogPosition cursor_ ABSL_GUARDED_BY(write_mu_);
  std::optional<LogPosition> on_disk_ ABSL_GUARDED_BY(write_mu_);
  uint64_t writes_ ABSL_GUARDED_BY(write_mu_) = 0;
  size_t last_entries_ ABSL_GUARDED_BY(write_mu_) = 0;
  absl::Duration last_duration_ ABSL_GUARDED_BY(write_mu_);
  std::optional<std::thread> thread_;
  absl::Mutex mu_;  // the thread's schedule
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace ta::core

#endif  // TA_SERVER_CORE_VIEW_CHECKPOINT_H_

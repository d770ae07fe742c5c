// A progress line for long tokenctl operations, drawn on a terminal's stderr:
//   revoking  [##########..........]  412/1000  41%  35/s  ETA 0:17
// or, when the amount of work is unknown (one long call such as purge-expired):
//   purging expired records  |  12s
// It is redrawn in place (carriage return, erase to end of line) at most every
// `redraw_every`, and erased by Finish(), so the terminal keeps only the command's answer.
// When not enabled (tokenctl: stderr is not a terminal, or TERM=dumb) it writes nothing at
// all: pipes, files and CI logs get no escape codes.
//
// Used by revoke-subject --from-file (one step per subject) and purge-expired (unknown
// total). It is the hook for tokenctl backup (issue 16 item 1): feed it bytes copied.
//
// Thread-safe: Set() may be called from the working thread while a Ticker redraws.
#ifndef TA_CLIENT_TOKENCTL_PROGRESS_H_
#define TA_CLIENT_TOKENCTL_PROGRESS_H_

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace ta::tokenctl {

class Progress {
 public:
  struct Options {
    std::string label;   // what is being done, e.g. "revoking"
    uint64_t total = 0;  // units of work; 0: unknown (spinner and elapsed time, no ETA)
    int columns = 80;    // terminal width; the line stays one column short of it
    absl::Duration redraw_every = absl::Milliseconds(100);
    std::function<absl::Time()> now = [] { return absl::Now(); };  // injectable for tests
  };

  // Draws the first frame at once when `enabled`.
  Progress(std::ostream& out, bool enabled, Options options);
  ~Progress();  // Finish()
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // `done` units of the total are finished; redraws when the last frame is old enough.
  void Set(uint64_t done);
  // Redraws now (the spinner moves on). Called by Ticker.
  void Redraw();
  // Erases the line so that a message can be printed; the next Set() draws it again.
  void Erase();
  // Erases the line for good. Idempotent.
  void Finish();

  // The frame for `done` units at `now` (no control characters); for tests.
  std::string Frame(uint64_t done, absl::Time now, int spin) const;

 private:
  void DrawLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::ostream& out_;
  const bool enabled_;
  const Options options_;
  const absl::Time start_;
  absl::Mutex mu_;
  uint64_t done_ ABSL_GUARDED_BY(mu_) = 0;
  int spin_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_draw_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

// Redraws a Progress every `every` on a thread of its own until destroyed: for a single long
// call, where nothing else would move the line.
class Ticker {
 public:
  Ticker(Progress& progress, absl::Duration every);
  ~Ticker();
  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;

 private:
  absl::Notification stop_;
  std::thread thread_;
};

// "0:07", "1:02:03".
std::string Clock(absl::Duration d);

}  // namespace ta::tokenctl

#endif  // TA_CLIENT_TOKENCTL_PROGRESS_H_

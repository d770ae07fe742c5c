#include "client/tokenctl/progress.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ta::tokenctl {
namespace {

constexpr char kSpinner[] = "|/-\\";
constexpr char kEraseLine[] = "\r\033[K";

std::string Bar(uint64_t done, uint64_t total, int width) {
  int filled = static_cast<int>(width * std::min(done, total) / total);
  return absl::StrCat("[", std::string(filled, '#'), std::string(width - filled, '.'), "]");
}

}  // namespace

std::string Clock(absl::Duration d) {
  int64_t s = absl::ToInt64Seconds(d);
  if (s >= 3600) return absl::StrFormat("%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
  return absl::StrFormat("%d:%02d", s / 60, s % 60);
}

Progress::Progress(std::ostream& out, bool enabled, Options options)
    : out_(out), enabled_(enabled), options_(std::move(options)), start_(options_.now()) {
  absl::MutexLock lock(&mu_);
  DrawLocked(start_);
}

Progress::~Progress() { Finish(); }

std::string Progress::Frame(uint64_t done, absl::Time now, int spin) const {
  absl::Duration elapsed = now - start_;
  if (options_.total == 0) {
    return absl::StrCat(options_.label, "  ", std::string(1, kSpinner[spin % 4]), "  ",
                        absl::ToInt64Seconds(elapsed), "s");
  }
  std::string counts = absl::StrFormat("%d/%d  %d%%", done, options_.total,
                                       100 * std::min(done, options_.total) / options_.total);
  std::string rate = "";
  std::string eta = "ETA -:--";
  double seconds = absl::ToDoubleSeconds(elapsed);
  if (done > 0 && seconds > 0) {
    rate = absl::StrFormat("  %.0f/s", static_cast<double>(done) / seconds);
    uint64_t left = options_.total - std::min(done, options_.total);
    eta = absl::StrCat("ETA ",
                       Clock(elapsed * (static_cast<double>(left) / static_cast<double>(done))));
  }
  std::string tail = absl::StrCat("  ", counts, rate, "  ", eta);
  int bar = std::max<int>(10, options_.columns - 1 - static_cast<int>(options_.label.size()) - 2 -
                                  2 - static_cast<int>(tail.size()));
  return absl::StrCat(options_.label, "  ", Bar(done, options_.total, bar), tail);
}

void Progress::Set(uint64_t done) {
  absl::MutexLock lock(&mu_);
  done_ = done;
  absl::Time now = options_.now();
  if (now - last_draw_ >= options_.redraw_every) DrawLocked(now);
}

void Progress::Redraw() {
  absl::MutexLock lock(&mu_);
  ++spin_;
  DrawLocked(options_.now());
}

void Progress::Erase() {
  absl::MutexLock lock(&mu_);
  if (!enabled_ || finished_) return;
  out_ << kEraseLine << std::flush;
  last_draw_ = absl::InfinitePast();
}

void Progress::Finish() {
  absl::MutexLock lock(&mu_);
  if (finished_) return;
  finished_ = true;
  if (enabled_) out_ << kEraseLine << std::flush;
}

void Progress::DrawLocked(absl::Time now) {
  if (!enabled_ || finished_) return;
  last_draw_ = now;
  out_ << "\r" << Frame(done_, now, spin_) << "\033[K" << std::flush;
}

Ticker::Ticker(Progress& progress, absl::Duration every)
    : thread_([this, &progress, every] {
        while (!stop_.WaitForNotificationWithTimeout(every)) progress.Redraw();
      }) {}

Ticker::~Ticker() {
  stop_.Notify();
  thread_.join();
}

}  // namespace ta::tokenctl

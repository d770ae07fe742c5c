// tokenctl's output for people, in process: aligned tables, relative times, byte sizes, and
// the progress line (drawn only when enabled, erased when done, ETA from a fake clock).
#include <catch2/catch.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "client/tokenctl/progress.h"
#include "client/tokenctl/table.h"

namespace ta::tokenctl {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

TEST_CASE("Table: columns are as wide as their widest cell, numbers right-aligned",
          "[tokenctl][format]") {
  Table table({{"ID"}, {"N", Table::Align::kRight}, {"NOTE"}});
  table.AddRow({"a", "7", "short"});
  table.AddRow({"long-id", "1234", ""});
  table.AddRow({"é", "0"});  // one character, two bytes; the missing cell prints empty
  std::ostringstream out;
  table.Print(out);
  CHECK(out.str() ==
        "ID          N  NOTE\n"
        "a           7  short\n"
        "long-id  1234\n"
        "é           0\n");
}

TEST_CASE("Table: a width cuts long lines with ... instead of wrapping", "[tokenctl][format]") {
  Table table({{"A"}, {"B"}});
  table.AddRow({"1", "ééééééééé"});
  std::ostringstream cut, whole;
  table.Print(cut, 8);
  table.Print(whole);
  CHECK(cut.str() == "A  B\n1  éé...\n");
  CHECK(whole.str() == "A  B\n1  ééééééééé\n");
}

// Issue 23 (11): at 80 columns `sessions` cut NOTE (who revoked and why) first.
TEST_CASE("Table: too wide, it gives up columns in order; a below_when_narrow one moves under",
          "[tokenctl][format]") {
  using A = Table::Align;
  Table table({{"ID"}, {"WHEN", A::kLeft, 3}, {"META", A::kLeft, 1}, {"NOTE", A::kLeft, 2, true}});
  table.AddRow({"a1", "just now", "device=laptop,ip=10.0.0.1", "revoked by ops: logout"});
  table.AddRow({"b2", "in 3 min", "device=phone", ""});
  std::ostringstream wide, medium, narrow;
  table.Print(wide);
  CHECK(wide.str() ==
        "ID  WHEN      META                       NOTE\n"
        "a1  just now  device=laptop,ip=10.0.0.1  revoked by ops: logout\n"
        "b2  in 3 min  device=phone\n");
  table.Print(medium, 40);  // META goes first; then the row with NOTE fits
  CHECK(medium.str() ==
        "ID  WHEN      NOTE\n"
        "a1  just now  revoked by ops: logout\n"
        "b2  in 3 min\n"
        "(hidden: META; --json has all)\n");
  table.Print(narrow, 30);  // NOTE then moves under its row, uncut
  CHECK(narrow.str() ==
        "ID  WHEN\n"
        "a1  just now\n"
        "  NOTE: revoked by ops: logout\n"
        "b2  in 3 min\n"
        "(hidden: META; --json has all)\n");
}

TEST_CASE("RelativeTime: one unit, past and future, far times as dates", "[tokenctl][format]") {
  CHECK(RelativeTime(kNow, kNow) == "just now");
  CHECK(RelativeTime(kNow - absl::Seconds(42), kNow) == "42 s ago");
  CHECK(RelativeTime(kNow - absl::Seconds(200), kNow) == "3 min ago");
  CHECK(RelativeTime(kNow + absl::Minutes(90), kNow) == "in 1 h");
  CHECK(RelativeTime(kNow - absl::Hours(47), kNow) == "47 h ago");
  CHECK(RelativeTime(kNow + absl::Hours(24 * 30) - absl::Seconds(1), kNow) == "in 29 days");
  CHECK(RelativeTime(kNow + absl::Hours(24 * 365), kNow) == "2028-01-15");
  CHECK(RelativeTime(absl::UnixEpoch(), kNow) == "-");
  CHECK(RelativeTime(absl::InfinitePast(), kNow) == "-");
}

TEST_CASE("HumanBytes: binary units with one decimal", "[tokenctl][format]") {
  CHECK(HumanBytes(0) == "0 B");
  CHECK(HumanBytes(1023) == "1023 B");
  CHECK(HumanBytes(1536) == "1.5 KiB");
  CHECK(HumanBytes(12 * 1024 * 1024) == "12.0 MiB");
  CHECK(HumanBytes(uint64_t{3} << 40) == "3.0 TiB");
}

// A Progress on a fake clock that the test moves.
struct FakeProgress {
  absl::Time now = kNow;
  std::ostringstream out;
  Progress::Options Options(uint64_t total) {
    return {.label = "revoking", .total = total, .columns = 60, .now = [this] { return now; }};
  }
};

TEST_CASE("Progress: a bar with count, rate and ETA, redrawn in place, erased at the end",
          "[tokenctl][format]") {
  FakeProgress f;
  {
    Progress progress(f.out, /*enabled=*/true, f.Options(100));
    f.now += absl::Seconds(10);
    progress.Set(30);
    std::string frame = progress.Frame(30, f.now, 0);
    CHECK(frame.size() == 59);  // one column short of the terminal: no wrap
    CHECK(absl::StartsWith(frame, "revoking  [#####......."));
    CHECK(absl::EndsWith(frame, ".]  30/100  30%  3/s  ETA 0:23"));
    f.now += absl::Milliseconds(50);
    progress.Set(31);  // within redraw_every: not drawn
  }
  std::string written = f.out.str();
  std::vector<std::string> frames = absl::StrSplit(written, '\r', absl::SkipEmpty());
  REQUIRE(frames.size() == 3);  // first frame, 30/100, erase
  CHECK(absl::StrContains(frames[0], "0/100  0%  ETA -:--"));
  CHECK(absl::StrContains(frames[1], "30/100"));
  CHECK(frames[2] == "\033[K");
  CHECK_FALSE(absl::StrContains(written, "31/100"));
}

TEST_CASE("Progress: Erase clears the line for a message, the next Set draws again",
          "[tokenctl][format]") {
  FakeProgress f;
  Progress progress(f.out, true, f.Options(10));
  progress.Erase();
  progress.Set(1);  // drawn at once although the first frame is not 100 ms old
  CHECK(absl::EndsWith(f.out.str(), "\r\033[K\r" + progress.Frame(1, f.now, 0) + "\033[K"));
}

TEST_CASE("Progress: unknown total shows a spinner and the elapsed time", "[tokenctl][format]") {
  FakeProgress f;
  Progress progress(f.out, true, f.Options(0));
  f.now += absl::Seconds(12);
  CHECK(progress.Frame(0, f.now, 1) == "revoking  /  12s");
  progress.Redraw();
  CHECK(absl::StrContains(f.out.str(), "revoking  /  12s"));
}

TEST_CASE("Progress: disabled (not a terminal) writes nothing at all", "[tokenctl][format]") {
  FakeProgress f;
  {
    Progress progress(f.out, /*enabled=*/false, f.Options(10));
    f.now += absl::Seconds(1);
    progress.Set(5);
    progress.Redraw();
  }
  CHECK(f.out.str().empty());
}

TEST_CASE("Clock: minutes and seconds, hours when needed", "[tokenctl][format]") {
  CHECK(Clock(absl::Seconds(7)) == "0:07");
  CHECK(Clock(absl::Seconds(3723)) == "1:02:03");
}

}  // namespace
}  // namespace ta::tokenctl

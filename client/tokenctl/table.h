// Output for people: aligned text tables, times relative to now ("3 min ago", "in 29 days")
// and byte sizes ("1.2 MiB"). tokenctl prints these unless --json is given; scripts should
// use --json, which keeps every value exact. Pure functions and a plain value type: no I/O
// besides the stream handed in, thread-compatible.
#ifndef TA_CLIENT_TOKENCTL_TABLE_H_
#define TA_CLIENT_TOKENCTL_TABLE_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ta::tokenctl {

// Rows of cells under a header, printed with every column as wide as its widest cell
// (counted in UTF-8 characters) and two spaces between columns. The last column is not
// padded, so no line carries trailing blanks. Given a width (a terminal's), a table too wide
// for it gives up columns in hide_order (lowest first) until it fits: a column marked
// below_when_narrow then moves to a line of its own under each row, the others are hidden
// (and a line under the table says so); lines still too long are cut and end in "..."
// instead of wrapping, as ps and systemctl do. Put the columns people need first.
class Table {
 public:
  enum class Align { kLeft, kRight };
  struct Column {
    std::string header;
    Align align = Align::kLeft;
    int hide_order = 0;              // > 0: given up when too wide, lowest first; 0: never
    bool below_when_narrow = false;  // given up: printed under its row instead of hidden
  };

  explicit Table(std::vector<Column> columns);

  // A row with one cell per column (missing cells print empty, extra ones are dropped).
  void AddRow(std::vector<std::string> cells);
  // `max_width` 0: lines are never cut (pipes, files).
  void Print(std::ostream& out, size_t max_width = 0) const;

 private:
  size_t LineWidth(const std::vector<size_t>& visible, const std::vector<size_t>& widths) const;

  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

// `t` relative to `now`, rounded down to one unit: "just now" (within 10 s), "42 s ago",
// "3 min ago", "5 h ago", "3 days ago", "in 3 min", "in 29 days"; a time more than 90 days
// away prints as its UTC date ("2031-01-01"). absl::InfinitePast() and the Unix epoch (an
// unset proto Timestamp) print as "-".
std::string RelativeTime(absl::Time t, absl::Time now);

// "512 B", "1.5 KiB", "12.0 MiB", "3.2 GiB".
std::string HumanBytes(uint64_t bytes);

// Characters (UTF-8 code points) in `s`: the width of a cell on a terminal for the text we
// print (no wide or combining characters).
size_t DisplayWidth(absl::string_view s);

// `s` cut to `width` characters, its last three replaced by "..." when it was longer.
std::string Truncate(absl::string_view s, size_t width);

}  // namespace ta::tokenctl

#endif  // TA_CLIENT_TOKENCTL_TABLE_H_

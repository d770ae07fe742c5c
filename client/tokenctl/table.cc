#include "client/tokenctl/table.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace ta::tokenctl {

Table::Table(std::vector<Column> columns) : columns_(std::move(columns)) {}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(columns_.size());
  rows_.push_back(std::move(cells));
}

size_t Table::LineWidth(const std::vector<size_t>& visible,
                        const std::vector<size_t>& widths) const {
  size_t width = 0;
  for (size_t i : visible) width += widths[i] + 2;
  return visible.empty() ? 0 : width - 2;
}

void Table::Print(std::ostream& out, size_t max_width) const {
  std::vector<size_t> widths;
  for (const Column& c : columns_) widths.push_back(DisplayWidth(c.header));
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], DisplayWidth(row[i]));
  }
  std::vector<size_t> visible;
  for (size_t i = 0; i < columns_.size(); ++i) visible.push_back(i);
  std::vector<std::string> hidden;
  std::optional<size_t> below;
  while (max_width > 0 && LineWidth(visible, widths) > max_width) {
    auto next = std::min_element(visible.begin(), visible.end(), [&](size_t a, size_t b) {
      int ha = columns_[a].hide_order, hb = columns_[b].hide_order;
      return ha > 0 && (hb == 0 || ha < hb);
    });
    if (next == visible.end() || columns_[*next].hide_order == 0) break;
    if (columns_[*next].below_when_narrow) {
      below = *next;
    } else {
      hidden.push_back(columns_[*next].header);
    }
    visible.erase(next);
  }
  auto print_row = [&](auto cell_of) {
    std::string line;
    for (size_t k = 0; k < visible.size(); ++k) {
      const size_t i = visible[k];
      absl::string_view cell = cell_of(i);
      std::string pad(widths[i] - DisplayWidth(cell), ' ');
      bool last = k + 1 == visible.size();
      if (columns_[i].align == Align::kRight) {
        absl::StrAppend(&line, pad, cell);
      } else {
        absl::StrAppend(&line, cell, last ? "" : pad);
      }
      if (!last) line += "  ";
    }
    line.erase(line.find_last_not_of(' ') + 1);
    out << (max_width == 0 ? line : Truncate(line, max_width)) << "\n";
  };
  print_row([&](size_t i) -> absl::string_view { return columns_[i].header; });
  for (const auto& row : rows_) {
    print_row([&](size_t i) -> absl::string_view { return row[i]; });
    if (below.has_value() && !row[*below].empty()) {
      out << Truncate(absl::StrCat("  ", columns_[*below].header, ": ", row[*below]), max_width)
          << "\n";
    }
  }
  if (!hidden.empty()) {
    out << Truncate(absl::StrCat("(hidden: ", absl::StrJoin(hidden, ", "), "; --json has all)"),
                    max_width)
        << "\n";
  }
}

size_t DisplayWidth(absl::string_view s) {
  return std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; });
}

std::string Truncate(absl::string_view s, size_t width) {
  if (DisplayWidth(s) <= width) return std::string(s);
  size_t keep = width < 3 ? 0 : width - 3, chars = 0, end = 0;
  while (end < s.size() && chars <= keep) {
    if ((s[end] & 0xC0) != 0x80 && chars++ == keep) break;
    ++end;
  }
  return absl::StrCat(s.substr(0, end), std::string(std::min<size_t>(width, 3), '.'));
}

std::string RelativeTime(absl::Time t, absl::Time now) {
  if (t == absl::InfinitePast() || t == absl::UnixEpoch()) return "-";
  absl::Duration d = absl::AbsDuration(now - t);
  if (d > absl::Hours(24 * 90)) return absl::FormatTime("%Y-%m-%d", t, absl::UTCTimeZone());
  if (d < absl::Seconds(10)) return "just now";
  std::string amount;
  if (d < absl::Minutes(1)) {
    amount = absl::StrCat(absl::ToInt64Seconds(d), " s");
  } else if (d < absl::Hours(1)) {
    amount = absl::StrCat(absl::ToInt64Minutes(d), " min");
  } else if (d < absl::Hours(48)) {
    amount = absl::StrCat(absl::ToInt64Hours(d), " h");
  } else {
    amount = absl::StrCat(absl::ToInt64Hours(d) / 24, " days");
  }
  return t <= now ? absl::StrCat(amount, " ago") : absl::StrCat("in ", amount);
}

std::string HumanBytes(uint64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", value, kUnits[unit]);
}

}  // namespace ta::tokenctl

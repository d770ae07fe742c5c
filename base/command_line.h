// The command-line pre-check both binaries (token-authority, tokenctl) run before
// absl::ParseCommandLine, and their --version line.
//
// absl::ParseCommandLine exits 1 with a terse line on an unknown flag or a bad value, and
// treats --help as "flags of the file named like the program". Our binaries promise exit 2
// naming the flag, and their own --help and --version; so the command line is first checked
// here with Abseil's grammar (--name=value, --name value, --bool, --nobool), each flag's value
// parsed by the flag itself, and --help/--version only noted. Flags only in main (STYLE 6):
// this header is for main files. Header-only; stateless (reads the flag registry).
#ifndef TA_BASE_COMMAND_LINE_H_
#define TA_BASE_COMMAND_LINE_H_

#include <cstddef>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "base/status_macros.h"

// Set by the build for each binary (the project's version and the commit configured from).
#ifndef TA_VERSION
#define TA_VERSION "0.0.0"
#endif
#ifndef TA_BUILD_VERSION
#define TA_BUILD_VERSION "unknown"
#endif

namespace ta {

// What a command line asks for before any flag is applied.
struct CommandLineScan {
  bool help = false;                    // a help flag was given
  bool version = false;                 // --version was given
  std::vector<std::string> positional;  // with CommandLineRules::positional only
};

// Abseil's own help flags: --help, -h, --helpfull, --helpshort, --helppackage, --helpon,
// --helpmatch.
inline bool IsAbseilHelpFlag(absl::string_view name) {
  return name == "help" || name == "helpfull" || name == "helpshort" || name == "h" ||
         name == "helppackage" || name == "helpon" || name == "helpmatch";
}

// How one binary's command line differs from the other's.
struct CommandLineRules {
  // The program's name, for "PROGRAM takes no arguments after --".
  std::string program;
  // true: arguments that are not flags, and everything after "--", are collected in
  // CommandLineScan::positional. false (default): each is an error.
  bool positional = false;
  // true: --flagfile=F[,G...] is read and each of its lines (blank lines and # comments
  // skipped) checked the same way, nested up to 8 deep. false (default): its value is only
  // handed to the flagfile flag, like any other value.
  bool expand_flagfile = false;
  // Which names (after the dashes) ask for help. Default: Abseil's help flags.
  bool (*is_help)(absl::string_view name) = IsAbseilHelpFlag;
  // Appended to "unknown flag --NAME", e.g. " (--help lists them)". Default: nothing.
  std::string unknown_flag_hint;
};

namespace command_line_internal {

inline absl::Status UsageError(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

// The flag `name` (as written after the dashes) sets; --noBOOL sets BOOL (*negated).
inline absl::CommandLineFlag* FindFlag(absl::string_view name, bool* negated) {
  *negated = false;
  if (absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name)) return flag;
  if (!absl::ConsumePrefix(&name, "no")) return nullptr;
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  *negated = flag != nullptr && flag->IsOfType<bool>();
  return *negated ? flag : nullptr;
}

inline absl::Status ScanArgs(const std::vector<std::string>& args, const CommandLineRules& rules,
                             int depth, CommandLineScan* scan);

// --flagfile's value: each file's meaningful lines, scanned as arguments.
inline absl::Status ScanFlagFiles(absl::string_view value, const CommandLineRules& rules, int depth,
                                  CommandLineScan* scan) {
  if (depth > 8) return UsageError("--flagfile: nested too deep");
  for (absl::string_view path : absl::StrSplit(value, ',', absl::SkipEmpty())) {
    std::ifstream in{std::string(path)};
    if (!in) return UsageError(absl::StrCat("--flagfile: cannot read ", path));
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) {
      absl::string_view l = absl::StripAsciiWhitespace(line);
      if (!l.empty() && l[0] != '#') lines.emplace_back(l);
    }
    if (absl::Status s = ScanArgs(lines, rules, depth + 1, scan); !s.ok()) {
      return UsageError(absl::StrCat(s.message(), " (in --flagfile ", path, ")"));
    }
  }
  return absl::OkStatus();
}

// The flag at args[*i] (its value may be the next argument: *i then moves past it).
inline absl::Status ScanFlag(const std::vector<std::string>& args, size_t* i,
                             const CommandLineRules& rules, int depth, CommandLineScan* scan) {
  absl::string_view arg = args[*i];
  absl::ConsumePrefix(&arg, "-");
  absl::ConsumePrefix(&arg, "-");
  const size_t eq = arg.find('=');
  const std::string name(arg.substr(0, eq));
  if (rules.is_help(name)) {
    scan->help = true;
    return absl::OkStatus();
  }
  if (name == "version") {
    scan->version = true;
    return absl::OkStatus();
  }
  bool negated = false;
  absl::CommandLineFlag* flag = FindFlag(name, &negated);
  if (flag == nullptr) {
    return UsageError(absl::StrCat("unknown flag --", name, rules.unknown_flag_hint));
  }
  if (negated || (eq == absl::string_view::npos && flag->IsOfType<bool>())) {
    return absl::OkStatus();
  }
  std::string value;
  if (eq != absl::string_view::npos) {
    value = std::string(arg.substr(eq + 1));
  } else if (*i + 1 < args.size()) {
    value = args[++*i];
  } else {
    return UsageError(absl::StrCat("--", name, ": missing value"));
  }
  if (rules.expand_flagfile && name == "flagfile") {
    return ScanFlagFiles(value, rules, depth, scan);
  }
  std::string error;
  if (!flag->ParseFrom(value, &error)) return UsageError(absl::StrCat("--", name, ": ", error));
  return absl::OkStatus();
}

inline absl::Status ScanArgs(const std::vector<std::string>& args, const CommandLineRules& rules,
                             int depth, CommandLineScan* scan) {
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "--") {
      if (!rules.positional) {
        return UsageError(absl::StrCat(rules.program, " takes no arguments after --"));
      }
      scan->positional.insert(scan->positional.end(), args.begin() + i + 1, args.end());
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {  // an argument, or "-" for stdin
      if (!rules.positional) {
        return UsageError(
            absl::StrCat("unexpected argument \"", arg, "\" (flags are --name=value)"));
      }
      scan->positional.emplace_back(arg);
      continue;
    }
    RETURN_IF_ERROR(ScanFlag(args, &i, rules, depth, scan));
  }
  return absl::OkStatus();
}

}  // namespace command_line_internal

// Checks `args` (the command line without the program name) against the registered flags:
// INVALID_ARGUMENT with a message naming the flag or argument at the first mistake. Values
// of the flags it checks are parsed into them (absl::ParseCommandLine then sets them again).
inline absl::StatusOr<CommandLineScan> ScanCommandLine(const std::vector<std::string>& args,
                                                       const CommandLineRules& rules) {
  CommandLineScan scan;
  RETURN_IF_ERROR(command_line_internal::ScanArgs(args, rules, 0, &scan));
  return scan;
}

// The --version line: "PROGRAM VERSION (commit COMMIT)\n", or with `detail`
// "PROGRAM VERSION (commit COMMIT, DETAIL)\n".
inline std::string VersionLine(absl::string_view program, absl::string_view version,
                               absl::string_view commit, absl::string_view detail = "") {
  return absl::StrCat(program, " ", version, " (commit ", commit, detail.empty() ? "" : ", ",
                      detail, ")\n");
}

}  // namespace ta

#endif  // TA_BASE_COMMAND_LINE_H_

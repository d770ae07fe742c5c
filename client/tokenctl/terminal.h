// What tokenctl needs to know about the terminal it runs in: whether stderr is one (progress
// lines are drawn only then), how wide it is, and reading a secret typed at it without echo.
// Each function looks at the process's file descriptors; not thread-safe against another
// thread changing the terminal's modes.
#ifndef TA_CLIENT_TOKENCTL_TERMINAL_H_
#define TA_CLIENT_TOKENCTL_TERMINAL_H_

#include <istream>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ta::tokenctl {

// Whether `fd` is a terminal that understands cursor control (TERM is not "dumb").
bool IsInteractive(int fd);

// Columns of the terminal on `fd`, or 80 when it is not one or does not say.
int TerminalColumns(int fd);

// One line from `in` with surrounding whitespace stripped. When `prompt_on_terminal` and
// stdin is a terminal, first writes `prompt` to `err` and turns echo off while the line is
// typed, so the secret is neither shown nor left in the scrollback. INVALID_ARGUMENT when
// the line is empty (nothing piped in).
absl::StatusOr<std::string> ReadSecretLine(std::istream& in, std::ostream& err,
                                           absl::string_view prompt, bool prompt_on_terminal);

}  // namespace ta::tokenctl

#endif  // TA_CLIENT_TOKENCTL_TERMINAL_H_

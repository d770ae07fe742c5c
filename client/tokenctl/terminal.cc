#include "client/tokenctl/terminal.h"

#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"

namespace ta::tokenctl {

bool IsInteractive(int fd) {
  const char* term = std::getenv("TERM");
  return isatty(fd) == 1 && !(term != nullptr && absl::string_view(term) == "dumb");
}

int TerminalColumns(int fd) {
  struct winsize size = {};
  if (isatty(fd) != 1 || ioctl(fd, TIOCGWINSZ, &size) != 0 || size.ws_col == 0) return 80;
  return size.ws_col;
}

absl::StatusOr<std::string> ReadSecretLine(std::istream& in, std::ostream& err,
                                           absl::string_view prompt, bool prompt_on_terminal) {
  struct termios saved = {};
  bool hide =
      prompt_on_terminal && isatty(STDIN_FILENO) == 1 && tcgetattr(STDIN_FILENO, &saved) == 0;
  if (hide) {
    err << prompt << std::flush;
    struct termios quiet = saved;
    quiet.c_lflag &= ~ECHO;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  absl::Cleanup restore = [&] {
    if (!hide) return;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    err << "\n";
  };
  std::string line;
  std::getline(in, line);
  std::string secret(absl::StripAsciiWhitespace(line));
  if (secret.empty()) return absl::InvalidArgumentError("no token on stdin");
  return secret;
}

}  // namespace ta::tokenctl

// tokenctl's subcommands: each turns the command line (already parsed into CommandInput by
// main) into requests, makes the calls through ta::client::Client, and prints the answer for
// people (aligned tables, relative times; table.h) or, with --json, as the response's proto
// JSON for scripts. Long operations draw a progress line on a terminal's stderr
// (progress.h). Every token argument accepts "-": the token is then read from stdin, so it
// stays out of argv (ps, /proc) and shell history.
//
// Flags live in main only (Tip of the Week #45); this unit sees plain values, so it can be
// driven by a fake Client. Never prints the API key. Not thread-safe (one command per run).
#ifndef TA_CLIENT_TOKENCTL_COMMANDS_H_
#define TA_CLIENT_TOKENCTL_COMMANDS_H_

#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/client.h"

namespace ta::tokenctl {

// Process exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 2;        // unknown subcommand, bad flag or argument
inline constexpr int kExitRefused = 3;      // the server answered with an error
inline constexpr int kExitUnreachable = 4;  // UNAVAILABLE / DEADLINE_EXCEEDED after retries,
                                            // CANCELLED (the server stopped mid-call)

// Everything a subcommand may use, from the command line. Empty / zero means "not given".
struct CommandInput {
  std::vector<std::string> args;      // positional arguments after the subcommand
  std::string client_id;              // issue
  std::string scope;                  // issue, refresh
  std::vector<std::string> audience;  // issue (all), introspect (the first)
  std::vector<std::string> metadata;  // issue: key=value session metadata
  std::string extra_claims;           // issue: a JSON object
  std::string reason;                 // revoke-family, revoke-subject
  std::string token;                  // revoke-family by token ("-": stdin) instead of id
  std::string not_before;             // revoke-subject, RFC 3339
  std::string block_until;            // revoke-subject, RFC 3339
  std::string from_file;              // revoke-subject: subjects, one a line ("-": stdin)
  int from_line = 1;                  // revoke-subject --from_file: start at this line
  int parallel = 1;                   // revoke-subject --from_file: calls in flight
  bool include_revoked = false;       // sessions
  int page_size = 0;                  // sessions
  std::string page_token;             // sessions
  bool include_reason = false;        // introspect
  std::string alg;                    // rotate-key
  std::string key_dir;                // restore: where the keys go (default DATA_DIR/keys)
  std::string server_binary;          // restore: the token-authority binary that restores
  int keep = 0;                       // backup: keep the newest N backups (0: all)
  bool json = false;                  // print proto JSON instead of tables and lines
};

// Where a command reads and writes, and what the terminal can do.
struct Io {
  std::ostream& out;      // the answer
  std::ostream& err;      // errors, progress
  std::istream& in;       // tokens and subject lists given as "-"
  bool progress = false;  // draw progress lines on `err` (it is a terminal)
  int columns = 80;       // width of that terminal
  int out_columns = 0;    // width of `out` when it is a terminal (tables are cut to it), else 0
  bool prompt_for_secrets = false;  // stdin is a terminal: prompt, echo off
  absl::Time now = absl::Now();     // what relative times in tables are relative to
};

using RunFn = int (*)(const CommandInput&, client::Client&, Io&);

// One subcommand, as help, completion and the dispatcher see it.
struct Command {
  absl::string_view name;
  absl::string_view args;     // positional arguments, e.g. "SUBJECT"; "" for none
  absl::string_view summary;  // one line
  absl::string_view flags;    // the subcommand's own flags, space-separated names; a name
                              // ending in '!' is required (help marks it)
  absl::string_view example;  // one command line
  size_t min_args, max_args;
  RunFn run;  // nullptr: handled by main without a server (help, completion)
};

// Every subcommand, in the order help lists them.
absl::Span<const Command> Commands();

// The subcommand called `name`, or nullptr.
const Command* FindCommand(absl::string_view name);

// Runs `command` (one with a run function) and returns the process exit code. The answer
// goes to io.out; errors go to io.err as "error: <reason>: <message>".
int RunCommand(const Command& command, const CommandInput& input, client::Client& client, Io& io);

// The exit code for a failed call: kExitUnreachable or kExitRefused.
int ExitCodeFor(const absl::Status& status);

}  // namespace ta::tokenctl

#endif  // TA_CLIENT_TOKENCTL_COMMANDS_H_

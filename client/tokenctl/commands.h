// tokenctl's subcommands: each turns the command line (already parsed into CommandInput by
// main) into one request, makes the call through ta::client::Client, and prints the answer
// as short human lines or, with --json, as the response's proto JSON.
//
// Flags live in main only (Tip of the Week #45); this unit sees plain values, so it can be
// driven by a fake Client. Never prints the API key. Not thread-safe (one command per run).
#ifndef TA_CLIENT_TOKENCTL_COMMANDS_H_
#define TA_CLIENT_TOKENCTL_COMMANDS_H_

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "client/client.h"

namespace ta::tokenctl {

// Process exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 2;        // unknown subcommand, bad flag or argument
inline constexpr int kExitRefused = 3;      // the server answered with an error
inline constexpr int kExitUnreachable = 4;  // UNAVAILABLE / DEADLINE_EXCEEDED after retries

// Everything a subcommand may use, from the command line. Empty / zero means "not given".
struct CommandInput {
  std::vector<std::string> args;      // positional arguments after the subcommand
  std::string client_id;              // issue
  std::string scope;                  // issue, refresh
  std::vector<std::string> audience;  // issue (all), introspect (the first)
  std::vector<std::string> metadata;  // issue: key=value session metadata
  std::string extra_claims;           // issue: a JSON object
  std::string reason;                 // revoke-family, revoke-subject
  std::string token;                  // revoke-family by token instead of family id
  std::string not_before;             // revoke-subject, RFC 3339
  std::string block_until;            // revoke-subject, RFC 3339
  bool include_revoked = false;       // sessions
  int page_size = 0;                  // sessions
  std::string page_token;             // sessions
  bool include_reason = false;        // introspect
  std::string alg;                    // rotate-key
  bool json = false;                  // print proto JSON instead of lines
};

// One line per subcommand, for usage messages.
std::string CommandsHelp();

// Whether `name` is a subcommand.
bool IsCommand(absl::string_view name);

// Runs subcommand `name` (IsCommand must hold) and returns the process exit code. The answer
// goes to `out`; errors go to `err` as "error: <reason>: <message>".
int RunCommand(absl::string_view name, const CommandInput& input, client::Client& client,
               std::ostream& out, std::ostream& err);

// The exit code for a failed call: kExitUnreachable or kExitRefused.
int ExitCodeFor(const absl::Status& status);

}  // namespace ta::tokenctl

#endif  // TA_CLIENT_TOKENCTL_COMMANDS_H_

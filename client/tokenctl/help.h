// tokenctl's help and shell completion, generated from the subcommand table (commands.h) and
// the flags main defines, so neither can drift from what tokenctl accepts. Pure functions.
#ifndef TA_CLIENT_TOKENCTL_HELP_H_
#define TA_CLIENT_TOKENCTL_HELP_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "client/tokenctl/commands.h"

namespace ta::tokenctl {

// One flag as help shows it. main fills these from its ABSL_FLAGs.
struct FlagDoc {
  std::string value;          // placeholder after "=", e.g. "FILE"; "" for a bool flag
  std::string help;           // the flag's help text
  std::string default_value;  // "" when there is nothing worth saying
};
// The FlagDoc of flag `name`, or nullopt when there is no such flag.
using FlagLookup = std::function<std::optional<FlagDoc>(absl::string_view name)>;

// `tokenctl help` / `tokenctl --help`: the subcommands, the `global_flags` every subcommand
// takes, how tokens and the API key are passed, and the exit codes.
std::string OverviewHelp(absl::Span<const absl::string_view> global_flags,
                         const FlagLookup& lookup);

// `tokenctl help NAME` / `tokenctl NAME --help`: usage, summary, its flags, an example.
std::string SubcommandHelp(const Command& command, const FlagLookup& lookup);

// `tokenctl completion bash`: a script defining _tokenctl and registering it with
// `complete`; it completes subcommands, the flags of the subcommand on the line, file names
// after file flags and the algorithms after --alg.
std::string BashCompletion(absl::Span<const absl::string_view> global_flags,
                           const FlagLookup& lookup);

}  // namespace ta::tokenctl

#endif  // TA_CLIENT_TOKENCTL_HELP_H_

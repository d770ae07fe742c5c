#include "client/tokenctl/help.h"

#include <algorithm>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace ta::tokenctl {
namespace {

// A subcommand's flag names (Command::flags), without the '!' that marks a required one.
std::vector<std::string> FlagNames(absl::string_view names) {
  std::vector<std::string> out = absl::StrSplit(names, ' ', absl::SkipEmpty());
  for (std::string& name : out) {
    if (absl::EndsWith(name, "!")) name.pop_back();
  }
  return out;
}

bool IsRequired(absl::string_view names, absl::string_view name) {
  for (absl::string_view n : absl::StrSplit(names, ' ', absl::SkipEmpty())) {
    if (n == absl::StrCat(name, "!")) return true;
  }
  return false;
}

std::string Usage(const Command& c) {
  return absl::StrCat("tokenctl ", c.name, c.args.empty() ? "" : " ", c.args);
}

// "  --name=VALUE   help (default: x)" lines, the help column aligned.
std::string FlagLines(const std::vector<std::string>& names, const FlagLookup& lookup,
                      absl::string_view marked = "") {
  std::vector<std::pair<std::string, std::string>> rows;
  size_t width = 0;
  for (const std::string& name : names) {
    std::optional<FlagDoc> doc = lookup(name);
    if (!doc.has_value()) continue;
    std::string left = absl::StrCat("--", name, doc->value.empty() ? "" : "=", doc->value);
    std::string right = doc->help;
    if (IsRequired(marked, name)) right = absl::StrCat("REQUIRED: ", right);
    if (!doc->default_value.empty())
      absl::StrAppend(&right, " (default: ", doc->default_value, ")");
    width = std::max(width, left.size());
    rows.emplace_back(std::move(left), std::move(right));
  }
  std::string text;
  for (const auto& [left, right] : rows) {
    absl::StrAppendFormat(&text, "  %-*s  %s\n", static_cast<int>(width), left, right);
  }
  return text;
}

constexpr absl::string_view kNotes =
    "Tokens never need to be on the command line, where ps and shell history would keep them:\n"
    "every TOKEN argument and --token take \"-\" to read the token from stdin (on a terminal\n"
    "it is prompted for and not echoed). The API key comes from --api_key_file or $TA_API_KEY.\n"
    "Flag names may be written with - or _ (--include-revoked = --include_revoked).\n"
    "Output is for people (tables, relative times); --json prints the responses for scripts.\n"
    "The server is --server, else $TA_SERVER, else 127.0.0.1:50051. tokenctl --version prints\n"
    "its version and commit.\n"
    "Exit codes: 0 ok, 2 usage error, 3 refused by the server, 4 server unreachable.\n";

// The words bash may complete for a subcommand: its flags and the global ones.
std::string FlagWords(const std::vector<std::string>& names, const FlagLookup& lookup) {
  std::vector<std::string> words;
  for (const std::string& name : names) {
    std::optional<FlagDoc> doc = lookup(name);
    if (doc.has_value()) words.push_back(absl::StrCat("--", name, doc->value.empty() ? "" : "="));
  }
  return absl::StrJoin(words, " ");
}

}  // namespace

std::string OverviewHelp(absl::Span<const absl::string_view> global_flags,
                         const FlagLookup& lookup) {
  std::string text =
      "tokenctl: the operator's command line for token-authority\n\n"
      "usage: tokenctl [FLAGS] SUBCOMMAND [ARGS] [FLAGS]\n\nsubcommands:\n";
  size_t width = 0;
  for (const Command& c : Commands()) width = std::max(width, Usage(c).size() - 9);
  for (const Command& c : Commands()) {
    absl::StrAppendFormat(&text, "  %-*s  %s\n", static_cast<int>(width), Usage(c).substr(9),
                          c.summary);
  }
  absl::StrAppend(&text, "\nflags of every subcommand:\n",
                  FlagLines({global_flags.begin(), global_flags.end()}, lookup), "\n", kNotes,
                  "\"tokenctl help SUBCOMMAND\" or \"tokenctl SUBCOMMAND --help\" shows its flags "
                  "and an example.\n");
  return text;
}

std::string SubcommandHelp(const Command& command, const FlagLookup& lookup) {
  std::string text = absl::StrCat("usage: ", Usage(command), command.run ? " [FLAGS]" : "", "\n\n",
                                  command.summary, "\n");
  std::vector<std::string> flags = FlagNames(command.flags);
  if (!flags.empty()) {
    absl::StrAppend(&text, "\nflags:\n", FlagLines(flags, lookup, command.flags));
  }
  if (command.run != nullptr) {
    absl::StrAppend(&text, "  (and the flags of every subcommand: tokenctl help)\n");
  }
  std::vector<std::string> own = FlagNames(command.flags);
  if (absl::StrContains(command.args, "TOKEN") ||
      std::find(own.begin(), own.end(), "token") != own.end()) {
    absl::StrAppend(&text,
                    "\nA token given as \"-\" is read from stdin, so it stays out of ps "
                    "and shell history.\n");
  }
  absl::StrAppend(&text, "\nexample:\n  ", command.example, "\n");
  return text;
}

std::string BashCompletion(absl::Span<const absl::string_view> global_flags,
                           const FlagLookup& lookup) {
  std::vector<std::string> names, value_flags, dir_commands;
  std::string cases;
  std::string global = FlagWords({global_flags.begin(), global_flags.end()}, lookup);
  for (const Command& c : Commands()) {
    names.emplace_back(c.name);
    if (absl::StrContains(c.args, "DIR")) dir_commands.emplace_back(c.name);
    if (c.run == nullptr) continue;  // help and completion: handled in the script's case
    absl::StrAppend(&cases, "    ", c.name, ") words=\"", FlagWords(FlagNames(c.flags), lookup),
                    " ", global, " --help\" ;;\n");
  }
  // Flags whose value may follow as the next word (--server HOST) rather than after '='.
  for (const Command& c : Commands()) {
    for (const std::string& name : FlagNames(c.flags)) value_flags.push_back(name);
  }
  for (absl::string_view name : global_flags) value_flags.emplace_back(name);
  std::vector<std::string> takes_value;
  for (const std::string& name : value_flags) {
    std::optional<FlagDoc> doc = lookup(name);
    if (doc.has_value() && !doc->value.empty()) takes_value.push_back("--" + name);
  }
  return absl::StrCat(
      "# bash completion for tokenctl (generated by `tokenctl completion bash`).\n"
      "# Load it with: source <(tokenctl completion bash)\n"
      "_tokenctl() {\n"
      "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
      "  local commands=\"",
      absl::StrJoin(names, " "), "\"\n", "  local global=\"", global, " --help\"\n",
      "  local value_flags=\" ", absl::StrJoin(takes_value, " "), " \"\n",
      "  local dir_commands=\" ", absl::StrJoin(dir_commands, " "), " \"\n",
      "  local cmd= i word words\n"
      "  # bash splits --flag=value at '=': complete the value of the flag before it.\n"
      "  if [[ $cur == = ]]; then prev=${COMP_WORDS[COMP_CWORD-1]}; cur=; fi\n"
      "  if [[ ${COMP_WORDS[COMP_CWORD-1]} == = ]]; then prev=${COMP_WORDS[COMP_CWORD-2]}; fi\n"
      "  if [[ $cur == '' || $cur != -* ]]; then\n"
      "    case $prev in\n"
      "      --api_key_file|--tls_ca|--tls_cert|--tls_key|--from_file|--api-key-file|--tls-ca|"
      "--tls-cert|--tls-key|--from-file)\n"
      "        COMPREPLY=($(compgen -f -- \"$cur\")); return 0 ;;\n"
      "      --alg) COMPREPLY=($(compgen -W \"ES256 EdDSA RS256 PS256\" -- \"$cur\")); return 0 "
      ";;\n"
      "      --key_dir|--key-dir) COMPREPLY=($(compgen -d -- \"$cur\")); return 0 ;;\n"
      "      --server_binary|--server-binary) COMPREPLY=($(compgen -f -- \"$cur\")); return 0 ;;\n"
      "    esac\n"
      "  fi\n"
      "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
      "    word=${COMP_WORDS[i]}\n"
      "    case $word in\n"
      "      -*) [[ $value_flags == *\" $word \"* && ${COMP_WORDS[i+1]-} != = ]] && ((i++)) ;;\n"
      "      =|:) ((i++)) ;;  # bash splits HOST:PORT and --flag=value into words\n"
      "      *) cmd=$word; break ;;\n"
      "    esac\n"
      "  done\n"
      "  case $cmd in\n"
      "    '') if [[ $cur == -* ]]; then words=$global; else words=$commands; fi ;;\n"
      "    help) words=$commands ;;\n"
      "    completion) words=bash ;;\n",
      cases,
      "    *) words=$global ;;\n"
      "  esac\n"
      "  if [[ $dir_commands == *\" $cmd \"* && $cur != -* ]]; then\n"
      "    COMPREPLY=($(compgen -d -- \"$cur\"))  # backup and restore take directories\n"
      "    return 0\n"
      "  fi\n"
      "  if [[ $cmd != '' && $cmd != help && $cmd != completion && $cur != -* ]]; then\n"
      "    COMPREPLY=()  # positional arguments (subjects, ids, tokens) are not guessed\n"
      "    return 0\n"
      "  fi\n"
      "  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
      "  [[ ${COMPREPLY[0]-} == *= ]] && compopt -o nospace 2>/dev/null\n"
      "  return 0\n"
      "}\n"
      "complete -F _tokenctl tokenctl\n");
}

}  // namespace ta::tokenctl

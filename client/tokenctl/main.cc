// tokenctl: the operator's command line for token-authority.
//   tokenctl [flags] SUBCOMMAND [ARGS] [flags]
// flags -> client options (API key from --api_key_file or $TA_API_KEY) -> the subcommand's
// calls -> tables for people or --json. `tokenctl help [SUBCOMMAND]`, `--help` anywhere and
// `tokenctl completion bash` need no server and exit 0.
// Exit codes: 0 ok, 2 usage error, 3 the server refused, 4 the server could not be reached.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "base/command_line.h"
#include "client/client.h"
#include "client/tls_flags.h"
#include "client/tokenctl/commands.h"
#include "client/tokenctl/help.h"
#include "client/tokenctl/terminal.h"

namespace {
const ta::client::ClientOptions kDefaults;
constexpr char kDefaultServer[] = "127.0.0.1:50051";
}  // namespace

// Connection and output: every subcommand takes these (kGlobalFlags).
ABSL_FLAG(std::string, server, "",
          "token-authority address, host:port (default: $TA_SERVER, else 127.0.0.1:50051)");
ABSL_FLAG(std::string, api_key_file, "",
          "file holding the API key (default: $TA_API_KEY; the key is never printed)");
// --tls, --tls_ca, --tls_cert, --tls_key, --tls_server_name: client/tls_flags.h.
ABSL_FLAG(absl::Duration, timeout, kDefaults.timeout, "deadline of each attempt of a call");
ABSL_FLAG(int, max_attempts, kDefaults.max_attempts,
          "attempts of an idempotent call when the server is unavailable (1: no retry)");
ABSL_FLAG(bool, json, false, "print the responses as proto JSON, for scripts");
// Subcommand arguments (each subcommand lists its own in commands.cc).
ABSL_FLAG(std::string, client_id, "", "the OAuth client of the session");
ABSL_FLAG(std::string, scope, "", "space-separated scope (refresh: narrow it)");
ABSL_FLAG(std::vector<std::string>, audience, {},
          "issue: comma-separated audiences; introspect: the audience to require");
ABSL_FLAG(std::vector<std::string>, metadata, {}, "session metadata, key=value,...");
ABSL_FLAG(std::string, extra_claims, "", "extra access-token claims, a JSON object");
ABSL_FLAG(std::string, reason, "", "why, recorded with the revocation");
ABSL_FLAG(std::string, token, "",
          "any token of the session instead of its id; - reads it from stdin");
ABSL_FLAG(std::string, not_before, "", "cutoff: sessions issued before it end (default now)");
ABSL_FLAG(std::string, block_until, "", "no new sessions until then, RFC 3339");
ABSL_FLAG(std::string, from_file, "",
          "revoke each subject in FILE, one a line (# comments; - reads stdin)");
ABSL_FLAG(int, from_line, 1,
          "with --from_file: start at this line (the one a stopped run says to resume from)");
ABSL_FLAG(int, parallel, 1,
          "with --from_file: revocations in flight at once, 1..64 (a mass logout: 16)");
ABSL_FLAG(bool, include_revoked, false, "also list revoked sessions");
ABSL_FLAG(int, page_size, 0, "sessions per page, 1..500 (default 50)");
ABSL_FLAG(std::string, page_token, "", "the page after a previous one (printed under it)");
ABSL_FLAG(bool, include_reason, false, "ask why a token is inactive (admin)");
ABSL_FLAG(std::string, alg, "", "ES256 (default), EdDSA, RS256 or PS256");
ABSL_FLAG(int, keep, 0, "backup: then delete all but the newest N backups of DIR (0: keep all)");
ABSL_FLAG(std::string, key_dir, "", "restore: where the keys go (default DATA_DIR/keys)");
ABSL_FLAG(std::string, server_binary, "",
          "restore: the token-authority binary to run (default: the one beside tokenctl, "
          "else token-authority on PATH)");

namespace {

using ta::tokenctl::kExitOk;
using ta::tokenctl::kExitUsage;

constexpr absl::string_view kGlobalFlags[] = {
    "server",  "api_key_file",    "tls",     "tls_ca",       "tls_cert",
    "tls_key", "tls_server_name", "timeout", "max_attempts", "json"};

absl::Status UsageStatus(absl::string_view message) { return absl::InvalidArgumentError(message); }

// --help, --helpfull, -h ...: Abseil would print its own list and exit 1; tokenctl prints
// its help and exits 0.
bool IsHelpFlag(absl::string_view name) { return absl::StartsWith(name, "help") || name == "h"; }

// The command line as Abseil and the rest of main see it: "--include-revoked" spelled
// "--include_revoked" (flag names only, never values or positional arguments).
std::vector<std::string> NormalizeFlagNames(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size() && args[i] != "--"; ++i) {
    if (!absl::StartsWith(args[i], "-") || args[i] == "-") continue;
    size_t eq = std::min(args[i].find('='), args[i].size());
    for (size_t k = std::min(args[i].find_first_not_of('-'), eq); k < eq; ++k) {
      if (args[i][k] == '-') args[i][k] = '_';
    }
  }
  return args;
}

// absl::ParseCommandLine exits 1 on an unknown flag or a bad value; tokenctl promises 2 and
// the flag's name, so the command line is checked first (base/command_line.h); arguments that
// are not flags are the subcommand and its operands.
absl::StatusOr<ta::CommandLineScan> ScanCommandLine(const std::vector<std::string>& args) {
  ta::CommandLineRules rules;
  rules.program = "tokenctl";
  rules.positional = true;
  rules.is_help = IsHelpFlag;
  return ta::ScanCommandLine(std::vector<std::string>(args.begin() + 1, args.end()), rules);
}

// Help's view of a flag: a placeholder for its value from its type and name.
std::optional<ta::tokenctl::FlagDoc> DescribeFlag(absl::string_view name) {
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  if (flag == nullptr) return std::nullopt;
  ta::tokenctl::FlagDoc doc;
  doc.help = flag->Help();
  if (!flag->IsOfType<bool>()) {
    doc.value = absl::EndsWith(name, "file") || absl::StartsWith(name, "tls_") ? "FILE"
                : flag->IsOfType<int>()                                        ? "N"
                : flag->IsOfType<absl::Duration>()                             ? "DURATION"
                : flag->IsOfType<std::vector<std::string>>()                   ? "A,B"
                                                                               : "VALUE";
    if (name == "tls_server_name") doc.value = "NAME";
    if (name == "server") doc.value = "HOST:PORT";
    if (name == "not_before" || name == "block_until") doc.value = "TIME";
    if (name == "token") doc.value = "TOKEN|-";
    if (name == "key_dir") doc.value = "DIR";
    if (name == "server_binary") doc.value = "FILE";
  }
  std::string default_value = flag->DefaultValue();
  if (!default_value.empty() && default_value != "false" && default_value != "0" &&
      !absl::StrContains(doc.help, "default")) {
    doc.default_value = default_value;
  }
  return doc;
}

// help, completion, and --help anywhere. nullopt when the command line asks for none.
std::optional<int> LocalCommand(const ta::CommandLineScan& scan) {
  std::vector<std::string> words = scan.positional;
  bool help = scan.help;
  // "help X" is X's help; "help --help" is help's own, like "help help".
  if (!words.empty() && words[0] == "help" && !(scan.help && words.size() == 1)) {
    words.erase(words.begin());
    help = true;
  }
  if (!help && !(!words.empty() && words[0] == "completion")) return std::nullopt;
  if (!help) {
    if (words.size() != 2 || words[1] != "bash") {
      std::cerr << "tokenctl: usage: tokenctl completion bash (the only shell supported)\n";
      return kExitUsage;
    }
    std::cout << ta::tokenctl::BashCompletion(kGlobalFlags, DescribeFlag);
    return kExitOk;
  }
  if (words.empty()) {
    std::cout << ta::tokenctl::OverviewHelp(kGlobalFlags, DescribeFlag);
    return kExitOk;
  }
  const ta::tokenctl::Command* command = ta::tokenctl::FindCommand(words[0]);
  if (command == nullptr) {
    std::cerr << "tokenctl: unknown subcommand \"" << words[0] << "\" (tokenctl help lists them)\n";
    return kExitUsage;
  }
  std::cout << ta::tokenctl::SubcommandHelp(*command, DescribeFlag);
  return kExitOk;
}

absl::StatusOr<std::string> ReadFile(absl::string_view flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  if (!in || !(content << in.rdbuf())) {
    return UsageStatus(absl::StrCat("--", flag, ": cannot read ", path));
  }
  return content.str();
}

// The key from --api_key_file, else $TA_API_KEY, else none. Errors never include the key.
absl::StatusOr<std::string> LoadApiKey() {
  std::string path = absl::GetFlag(FLAGS_api_key_file);
  if (path.empty()) {
    const char* env = std::getenv("TA_API_KEY");
    return std::string(absl::StripAsciiWhitespace(env == nullptr ? "" : env));
  }
  absl::StatusOr<std::string> key = ReadFile("api_key_file", path);
  if (!key.ok()) return key.status();
  std::string stripped(absl::StripAsciiWhitespace(*key));
  if (stripped.empty()) return UsageStatus(absl::StrCat("--api_key_file: ", path, " is empty"));
  return stripped;
}

absl::StatusOr<ta::client::ClientOptions> ClientOptionsFromFlags() {
  ta::client::ClientOptions o;
  o.target = absl::GetFlag(FLAGS_server);
  if (o.target.empty()) {
    const char* env = std::getenv("TA_SERVER");  // like HYDRA_ADMIN_URL for hydra
    o.target = env != nullptr && *env != '\0' ? env : kDefaultServer;
  }
  o.timeout = absl::GetFlag(FLAGS_timeout);
  o.max_attempts = absl::GetFlag(FLAGS_max_attempts);
  absl::StatusOr<std::string> key = LoadApiKey();
  if (!key.ok()) return key.status();
  o.api_key = *key;
  if (absl::Status s = ta::client::ApplyTlsFlags(&o); !s.ok()) return s;
  if (absl::Status s = ta::client::ValidateClientOptions(o); !s.ok()) return s;
  return o;
}

ta::tokenctl::CommandInput InputFromFlags(std::vector<std::string> args) {
  ta::tokenctl::CommandInput in;
  in.args = std::move(args);
  in.client_id = absl::GetFlag(FLAGS_client_id);
  in.scope = absl::GetFlag(FLAGS_scope);
  in.audience = absl::GetFlag(FLAGS_audience);
  in.metadata = absl::GetFlag(FLAGS_metadata);
  in.extra_claims = absl::GetFlag(FLAGS_extra_claims);
  in.reason = absl::GetFlag(FLAGS_reason);
  in.token = absl::GetFlag(FLAGS_token);
  in.not_before = absl::GetFlag(FLAGS_not_before);
  in.block_until = absl::GetFlag(FLAGS_block_until);
  in.from_file = absl::GetFlag(FLAGS_from_file);
  in.from_line = absl::GetFlag(FLAGS_from_line);
  in.parallel = absl::GetFlag(FLAGS_parallel);
  in.include_revoked = absl::GetFlag(FLAGS_include_revoked);
  in.page_size = absl::GetFlag(FLAGS_page_size);
  in.page_token = absl::GetFlag(FLAGS_page_token);
  in.include_reason = absl::GetFlag(FLAGS_include_reason);
  in.alg = absl::GetFlag(FLAGS_alg);
  in.key_dir = absl::GetFlag(FLAGS_key_dir);
  in.keep = absl::GetFlag(FLAGS_keep);
  in.server_binary = absl::GetFlag(FLAGS_server_binary);
  in.json = absl::GetFlag(FLAGS_json);
  return in;
}

int Usage(absl::string_view problem) {
  std::cerr << "tokenctl: " << problem << "\n\n"
            << ta::tokenctl::OverviewHelp(kGlobalFlags, DescribeFlag);
  return kExitUsage;
}

// A usage problem that the subcommand list would not help with (a file, a TLS flag).
int Fail(absl::string_view problem) {
  std::cerr << "tokenctl: " << problem << "\n";
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args = NormalizeFlagNames(argc, argv);
  absl::StatusOr<ta::CommandLineScan> scan = ScanCommandLine(args);
  if (!scan.ok()) return Fail(absl::StrCat(scan.status().message(), " (tokenctl help)"));
  if (scan->version && !scan->help) {
    std::cout << ta::VersionLine("tokenctl", TA_VERSION, TA_BUILD_VERSION);
    return kExitOk;
  }
  if (std::optional<int> code = LocalCommand(*scan)) return *code;

  std::vector<char*> arg_ptrs;
  arg_ptrs.reserve(args.size());
  for (std::string& a : args) arg_ptrs.push_back(a.data());
  absl::ParseCommandLine(static_cast<int>(arg_ptrs.size()), arg_ptrs.data());
  if (scan->positional.empty()) return Usage("missing subcommand");
  const ta::tokenctl::Command* command = ta::tokenctl::FindCommand(scan->positional[0]);
  if (command == nullptr) {
    return Usage(absl::StrCat("unknown subcommand \"", scan->positional[0], "\""));
  }
  absl::StatusOr<ta::client::ClientOptions> options = ClientOptionsFromFlags();
  if (!options.ok()) return Fail(options.status().message());
  absl::StatusOr<std::unique_ptr<ta::client::Client>> client = ta::client::Client::Create(*options);
  if (!client.ok()) return Fail(client.status().message());
  ta::tokenctl::CommandInput input = InputFromFlags(
      std::vector<std::string>(scan->positional.begin() + 1, scan->positional.end()));
  ta::tokenctl::Io io{std::cout, std::cerr, std::cin};
  io.progress = ta::tokenctl::IsInteractive(STDERR_FILENO);
  io.columns = ta::tokenctl::TerminalColumns(STDERR_FILENO);
  if (isatty(STDOUT_FILENO) == 1) io.out_columns = ta::tokenctl::TerminalColumns(STDOUT_FILENO);
  io.prompt_for_secrets = ta::tokenctl::IsInteractive(STDIN_FILENO);
  return ta::tokenctl::RunCommand(*command, input, **client, io);
}

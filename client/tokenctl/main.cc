// tokenctl: the operator's command line for token-authority.
//   tokenctl [flags] SUBCOMMAND [ARGS] [flags]
// flags -> client options (API key from --api_key_file or $TA_API_KEY) -> one call -> print.
// Exit codes: 0 ok, 2 usage error, 3 the server refused, 4 the server could not be reached.
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/tokenctl/commands.h"

namespace {
const ta::client::ClientOptions kDefaults;
}  // namespace

// Connection.
ABSL_FLAG(std::string, server, "127.0.0.1:50051", "token-authority address, host:port");
ABSL_FLAG(std::string, api_key_file, "",
          "file holding the API key (default: $TA_API_KEY; the key is never printed)");
ABSL_FLAG(bool, tls, false, "use TLS with the system's root CAs (implied by --tls_ca)");
ABSL_FLAG(std::string, tls_ca, "", "PEM file of the CA that signs the server's certificate");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate chain for mTLS (with --tls_key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_server_name, "",
          "name the server certificate must carry (default: the host of --server)");
ABSL_FLAG(absl::Duration, timeout, kDefaults.timeout, "deadline of each attempt of a call");
ABSL_FLAG(int, max_attempts, kDefaults.max_attempts,
          "attempts of an idempotent call when the server is unavailable (1: no retry)");
ABSL_FLAG(bool, json, false, "print the response as proto JSON");
// Subcommand arguments.
ABSL_FLAG(std::string, client_id, "", "issue: the OAuth client of the session");
ABSL_FLAG(std::string, scope, "", "issue/refresh: space-separated scope");
ABSL_FLAG(std::vector<std::string>, audience, {},
          "issue: comma-separated audiences; introspect: the audience to require");
ABSL_FLAG(std::vector<std::string>, metadata, {}, "issue: session metadata, key=value,...");
ABSL_FLAG(std::string, extra_claims, "", "issue: extra access-token claims, a JSON object");
ABSL_FLAG(std::string, reason, "", "revoke-family/revoke-subject: why, recorded");
ABSL_FLAG(std::string, token, "", "revoke-family: any token of the family instead of its id");
ABSL_FLAG(std::string, not_before, "", "revoke-subject: cutoff, RFC 3339 (default now)");
ABSL_FLAG(std::string, block_until, "", "revoke-subject: no new sessions until, RFC 3339");
ABSL_FLAG(bool, include_revoked, false, "sessions: also list revoked sessions");
ABSL_FLAG(int, page_size, 0, "sessions: 1..500 (default 50)");
ABSL_FLAG(std::string, page_token, "", "sessions: next_page_token of a previous page");
ABSL_FLAG(bool, include_reason, false, "introspect: ask why a token is inactive (admin)");
ABSL_FLAG(std::string, alg, "", "rotate-key: ES256 (default), EdDSA, RS256 or PS256");

namespace {

using ta::tokenctl::kExitUsage;

absl::Status UsageStatus(absl::string_view message) { return absl::InvalidArgumentError(message); }

// Finds the flag that `name` (as written after the dashes) sets; handles --noBOOL.
absl::CommandLineFlag* FindFlag(absl::string_view name, bool* negated) {
  *negated = false;
  if (absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name)) return flag;
  if (!absl::ConsumePrefix(&name, "no")) return nullptr;
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  *negated = flag != nullptr && flag->IsOfType<bool>();
  return *negated ? flag : nullptr;
}

// --help and friends are not registered flags: absl::ParseCommandLine recognises them by name.
bool IsUsageFlag(absl::string_view name) {
  return absl::StartsWith(name, "help") || name == "version" || name == "only_check_args";
}

// absl::ParseCommandLine exits 1 on an unknown flag or a bad value; tokenctl promises 2 and
// the flag's name, so the command line is checked first with the same grammar.
absl::Status CheckFlags(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg.size() < 2 || arg[0] != '-') continue;  // positional, or "-" for stdin
    absl::ConsumePrefix(&arg, "-");
    absl::ConsumePrefix(&arg, "-");
    size_t eq = arg.find('=');
    absl::string_view name = arg.substr(0, eq);
    if (IsUsageFlag(name)) continue;  // absl handles these itself
    bool negated = false;
    absl::CommandLineFlag* flag = FindFlag(name, &negated);
    if (flag == nullptr) return UsageStatus(absl::StrCat("unknown flag --", name));
    if (negated || (eq == absl::string_view::npos && flag->IsOfType<bool>())) continue;
    std::string value;
    if (eq != absl::string_view::npos) {
      value = std::string(arg.substr(eq + 1));
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return UsageStatus(absl::StrCat("--", name, ": missing value"));
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) return UsageStatus(absl::StrCat("--", name, ": ", error));
  }
  return absl::OkStatus();
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
  o.timeout = absl::GetFlag(FLAGS_timeout);
  o.max_attempts = absl::GetFlag(FLAGS_max_attempts);
  absl::StatusOr<std::string> key = LoadApiKey();
  if (!key.ok()) return key.status();
  o.api_key = *key;
  std::string ca = absl::GetFlag(FLAGS_tls_ca);
  std::string cert = absl::GetFlag(FLAGS_tls_cert);
  std::string private_key = absl::GetFlag(FLAGS_tls_key);
  if (cert.empty() != private_key.empty()) {
    return UsageStatus("--tls_cert and --tls_key go together");
  }
  o.use_tls = absl::GetFlag(FLAGS_tls) || !ca.empty() || !cert.empty();
  o.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  if (!o.use_tls && !o.tls_server_name.empty()) {
    return UsageStatus("--tls_server_name needs --tls or --tls_ca");
  }
  for (auto [flag, path, pem] :
       {std::tuple("tls_ca", ca, &o.root_ca_pem), std::tuple("tls_cert", cert, &o.cert_pem),
        std::tuple("tls_key", private_key, &o.key_pem)}) {
    if (path.empty()) continue;
    absl::StatusOr<std::string> content = ReadFile(flag, path);
    if (!content.ok()) return content.status();
    *pem = *std::move(content);
  }
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
  in.include_revoked = absl::GetFlag(FLAGS_include_revoked);
  in.page_size = absl::GetFlag(FLAGS_page_size);
  in.page_token = absl::GetFlag(FLAGS_page_token);
  in.include_reason = absl::GetFlag(FLAGS_include_reason);
  in.alg = absl::GetFlag(FLAGS_alg);
  in.json = absl::GetFlag(FLAGS_json);
  return in;
}

int Usage(absl::string_view problem) {
  std::cerr << "tokenctl: " << problem << "\n"
            << "usage: tokenctl [--server=HOST:PORT] [--api_key_file=F] [--json] SUBCOMMAND\n"
            << ta::tokenctl::CommandsHelp() << "tokenctl --help lists every flag.\n";
  return kExitUsage;
}

// A usage problem that the subcommand list would not help with (a file, a TLS flag).
int Fail(absl::string_view problem) {
  std::cerr << "tokenctl: " << problem << "\n";
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      absl::StrCat("token-authority operator CLI\n", ta::tokenctl::CommandsHelp()));
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::StrContains(file, "tokenctl/main.cc");
  };
  absl::SetFlagsUsageConfig(usage);
  if (absl::Status s = CheckFlags(argc, argv); !s.ok()) {
    return Fail(absl::StrCat(s.message(), " (tokenctl --help lists every flag)"));
  }
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() < 2) return Usage("missing subcommand");
  std::string command = positional[1];
  if (!ta::tokenctl::IsCommand(command)) {
    return Usage(absl::StrCat("unknown subcommand \"", command, "\""));
  }
  absl::StatusOr<ta::client::ClientOptions> options = ClientOptionsFromFlags();
  if (!options.ok()) return Fail(options.status().message());
  absl::StatusOr<std::unique_ptr<ta::client::Client>> client = ta::client::Client::Create(*options);
  if (!client.ok()) return Fail(client.status().message());
  ta::tokenctl::CommandInput input =
      InputFromFlags(std::vector<std::string>(positional.begin() + 2, positional.end()));
  return ta::tokenctl::RunCommand(command, input, **client, std::cout, std::cerr);
}

#include "client/tokenctl/commands.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "base/error.h"
#include "client/tokenctl/subcommands.h"
#include "client/tokenctl/terminal.h"

namespace ta::tokenctl {
namespace internal {

int UsageError(Io& io, absl::string_view message) {
  io.err << "tokenctl: " << message << "\n";
  return kExitUsage;
}

int CallError(Io& io, const absl::Status& status) {
  std::string reason = ReasonOf(status);
  if (reason.empty()) reason = absl::AsciiStrToLower(absl::StatusCodeToString(status.code()));
  absl::string_view message = status.message();
  absl::ConsumePrefix(&message, absl::StrCat(reason, ": "));
  io.err << "error: " << reason << ": " << message << "\n";
  return ExitCodeFor(status);
}

absl::StatusOr<std::string> JsonLine(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok()) {
    return absl::InternalError("cannot print the response as JSON");
  }
  return json;
}

absl::StatusOr<std::string> TokenArg(const std::string& arg, Io& io) {
  if (arg != "-") return arg;
  return ReadSecretLine(io.in, io.err, "token (not echoed): ", io.prompt_for_secrets);
}

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

std::string Time(int64_t unix_seconds) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(unix_seconds),
                          absl::UTCTimeZone());
}

std::string Time(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "-";
  return Time(t.seconds());
}

std::string Metadata(const ::tokenauthority::v1::Family& f) {
  std::map<std::string, std::string> sorted(f.session_metadata().begin(),
                                            f.session_metadata().end());
  return absl::StrJoin(sorted, ",", absl::PairFormatter("="));
}

}  // namespace internal

namespace {

// Help and completion are generated from this table (client/tokenctl/help.cc).
constexpr Command kCommands[] = {
    {"issue", "SUBJECT", "start a session for SUBJECT; prints its token pair",
     "client_id! scope audience metadata extra_claims",
     "tokenctl issue alice --client_id=web --scope=\"read write\" --metadata=device=laptop", 1, 1,
     internal::Issue},
    {"refresh", "REFRESH_TOKEN|-",
     "spend a refresh token for the next pair (reuse ends the session)", "scope",
     "tokenctl refresh - < refresh_token.txt", 1, 1, internal::Refresh},
    {"introspect", "TOKEN|-", "whether a token is active now, and its claims",
     "audience include_reason", "tokenctl introspect - --include_reason <<<\"$ACCESS_TOKEN\"", 1, 1,
     internal::Introspect},
    {"revoke", "TOKEN|-", "revoke a token (a refresh token ends its session)", "",
     "tokenctl revoke - <<<\"$ACCESS_TOKEN\"", 1, 1, internal::Revoke},
    {"revoke-family", "FAMILY_ID | --token=TOKEN|-",
     "end one session, by its id or any of its tokens", "token reason",
     "tokenctl revoke-family --token=- --reason=logout < refresh_token.txt", 0, 1,
     internal::RevokeFamily},
    {"revoke-subject", "SUBJECT | --from_file=FILE|-",
     "end SUBJECT's sessions (or each listed subject's)",
     "reason not_before block_until from_file from_line parallel",
     "tokenctl revoke-subject --from_file=leaked-users.txt --reason=incident-42", 0, 1,
     internal::RevokeSubject},
    {"sessions", "SUBJECT", "SUBJECT's sessions, newest first",
     "include_revoked page_size page_token", "tokenctl sessions alice --include_revoked", 1, 1,
     internal::Sessions},
    {"family", "FAMILY_ID", "one session in full", "", "tokenctl family 3ZfRSMpyS7htF1VpPM3rAg", 1,
     1, internal::Family},
    {"jwks", "", "the signing keys (* signs new tokens)", "", "tokenctl jwks", 0, 0,
     internal::Jwks},
    {"rotate-key", "", "make a new signing key active; the old one still verifies", "alg",
     "tokenctl rotate-key --alg=EdDSA", 0, 0, internal::RotateKey},
    {"purge-expired", "", "drop expired records now, not at compaction", "",
     "tokenctl purge-expired", 0, 0, internal::Purge},
    {"stats", "", "record counts and the store's size on disk", "", "tokenctl stats", 0, 0,
     internal::Stats},
    {"backup", "DIR",
     "online backup of the store and its keys into DIR, an absolute path on the server's machine: "
     "new, empty, or where earlier backups went",
     "keep", "tokenctl backup /var/backups/token-authority --keep=7", 1, 1, internal::Backup},
    {"restore", "BACKUP_DIR DATA_DIR",
     "restore the latest backup into a new DATA_DIR, locally (no server: runs token-authority "
     "--restore_from)",
     "key_dir server_binary",
     "tokenctl restore /var/backups/token-authority /var/lib/token-authority.restored", 2, 2,
     internal::Restore},
    {"help", "[SUBCOMMAND]", "this overview, or a subcommand's flags and example", "",
     "tokenctl help sessions", 0, 1, nullptr},
    {"completion", "bash", "print the bash completion script", "",
     "source <(tokenctl completion bash)", 1, 1, nullptr},
};

}  // namespace

absl::Span<const Command> Commands() { return kCommands; }

const Command* FindCommand(absl::string_view name) {
  for (const Command& c : kCommands) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

int ExitCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:  // the server went away mid-call: nothing was refused
      return kExitUnreachable;
    default:
      return kExitRefused;
  }
}

int RunCommand(const Command& command, const CommandInput& input, client::Client& client, Io& io) {
  if (input.args.size() < command.min_args || input.args.size() > command.max_args) {
    return internal::UsageError(
        io, absl::StrCat("usage: tokenctl ", command.name, " ", command.args, " (tokenctl help ",
                         command.name, ")"));
  }
  return command.run(input, client, io);
}

}  // namespace ta::tokenctl

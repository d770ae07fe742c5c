// Internal to tokenctl: what every subcommand shares for reading its input and printing its
// answer (errors as "error: <reason>: <message>", --json as proto JSON, tokens from "-"),
// and the subcommands themselves, implemented in token_commands.cc and admin_commands.cc and
// listed in commands.cc. Not thread-safe (one command per run).
#ifndef TA_CLIENT_TOKENCTL_SUBCOMMANDS_H_
#define TA_CLIENT_TOKENCTL_SUBCOMMANDS_H_

#include <google/protobuf/message.h>
#include <google/protobuf/timestamp.pb.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/tokenctl/commands.h"

namespace ta::tokenctl::internal {

// A local mistake in the command line: "tokenctl: <message>", exit 2, nothing sent.
int UsageError(Io& io, absl::string_view message);

// A failed call: "error: <reason>: <message>" (the server's message already starts with
// "<reason>: "; printed once; without a server reason the code stands in). Returns the exit
// code (ExitCodeFor).
int CallError(Io& io, const absl::Status& status);

// `message` as one line of proto JSON with every field, zeros and false included (scripts
// read `active: false` and zero counts; proto3 JSON would omit them).
absl::StatusOr<std::string> JsonLine(const google::protobuf::Message& message);

// Prints `result` as JSON (--json) or through `print`, or reports its error.
template <typename Response, typename Print>
int Finish(const absl::StatusOr<Response>& result, const CommandInput& in, Io& io, Print print) {
  if (!result.ok()) return CallError(io, result.status());
  if (in.json) {
    absl::StatusOr<std::string> json = JsonLine(*result);
    if (!json.ok()) return CallError(io, json.status());
    io.out << *json << "\n";
    return kExitOk;
  }
  print(*result, io);
  return kExitOk;
}

// A token given on the command line; "-" reads it from stdin (prompting with echo off when
// stdin is a terminal). INVALID_ARGUMENT when "-" finds nothing.
absl::StatusOr<std::string> TokenArg(const std::string& arg, Io& io);

absl::Time FromProto(const google::protobuf::Timestamp& t);
// Exact UTC time to the second, "-" when unset: for single-record views.
std::string Time(const google::protobuf::Timestamp& t);
std::string Time(int64_t unix_seconds);
// A session's metadata as "k=v,k=v", keys sorted.
std::string Metadata(const ::tokenauthority::v1::Family& f);

// The subcommands (commands.cc lists them).
int Issue(const CommandInput& in, client::Client& c, Io& io);
int Refresh(const CommandInput& in, client::Client& c, Io& io);
int Introspect(const CommandInput& in, client::Client& c, Io& io);
int Revoke(const CommandInput& in, client::Client& c, Io& io);
int RevokeFamily(const CommandInput& in, client::Client& c, Io& io);
int RevokeSubject(const CommandInput& in, client::Client& c, Io& io);
int Sessions(const CommandInput& in, client::Client& c, Io& io);
int Family(const CommandInput& in, client::Client& c, Io& io);
int Jwks(const CommandInput& in, client::Client& c, Io& io);
int RotateKey(const CommandInput& in, client::Client& c, Io& io);
int Purge(const CommandInput& in, client::Client& c, Io& io);
int Stats(const CommandInput& in, client::Client& c, Io& io);
int Backup(const CommandInput& in, client::Client& c, Io& io);
// Local: runs `token-authority --restore_from` (restore.cc); the client is not used.
int Restore(const CommandInput& in, client::Client& c, Io& io);

}  // namespace ta::tokenctl::internal

#endif  // TA_CLIENT_TOKENCTL_SUBCOMMANDS_H_

// Helpers for the tests that run tokenctl as a subprocess against a LiveServer: its
// connection flags, --json output parsed back into the response message, a session issued.
#ifndef TA_TESTS_CLIENT_TOKENCTL_TEST_UTIL_H_
#define TA_TESTS_CLIENT_TOKENCTL_TEST_UTIL_H_

#include <google/protobuf/util/json_util.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/client/client_test_util.h"
#include "tokenauthority/v1/token_authority.pb.h"

namespace ta::testing {

// Connection flags for `server`, with its admin key file when it has one.
inline std::vector<std::string> Connect(const LiveServer& server) {
  std::vector<std::string> flags = {"--server=" + server.address()};
  if (!server.key_file().empty()) flags.push_back("--api_key_file=" + server.key_file());
  return flags;
}

// tokenctl with `server`'s connection flags, then `args`, with `input` on stdin.
inline ProcessResult Tokenctl(const LiveServer& server, std::vector<std::string> args,
                              const std::string& input = "") {
  std::vector<std::string> all = Connect(server);
  all.insert(all.end(), args.begin(), args.end());
  return RunTokenctl(all, {}, input);
}

// Parses tokenctl --json output into `Message`; REQUIREs exit 0 and valid JSON.
template <typename Message>
Message Json(const ProcessResult& result) {
  INFO("stdout: " << result.out << "\nstderr: " << result.err);
  REQUIRE(result.exit_code == 0);
  Message message;
  REQUIRE(google::protobuf::util::JsonStringToMessage(result.out, &message).ok());
  return message;
}

// A session of `subject` for client "web", audience "api", metadata device=laptop,ip=10.0.0.1.
inline ::tokenauthority::v1::TokenPair IssueJson(const LiveServer& server,
                                                 const std::string& subject) {
  return Json<::tokenauthority::v1::TokenPair>(
      Tokenctl(server, {"issue", subject, "--client_id=web", "--scope=read write", "--audience=api",
                        "--metadata=device=laptop,ip=10.0.0.1", "--json"}));
}

}  // namespace ta::testing

#endif  // TA_TESTS_CLIENT_TOKENCTL_TEST_UTIL_H_

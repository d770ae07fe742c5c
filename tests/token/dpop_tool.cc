// dpop_tool: a thin command line over VerifyDpopProof, so proofs made by implementations
// nobody here wrote (dpop_interop_test.py: PyJWT + cryptography; tests/token/dpop_node/:
// npm dpop and oauth4webapi) are checked by our code.
//
//   dpop_tool --method M --url U [--now UNIX_SECONDS] [--access_token T] [--nonce N]
//     proof on stdin; prints "jkt htu" on stdout, or the rejection reason on stderr with
//     exit status 1. Usage errors exit 2.
#include <iostream>
#include <iterator>
#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "base/error.h"
#include "token/dpop.h"

int main(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  for (int i = 1; i + 1 < argc; i += 2) {
    absl::string_view name = argv[i];
    if (!absl::ConsumePrefix(&name, "--")) return 2;
    flags[std::string(name)] = argv[i + 1];
  }
  if (argc % 2 != 1 || !flags.count("method") || !flags.count("url")) {
    std::cerr << "usage: dpop_tool --method M --url U [--now S] [--access_token T] [--nonce N]\n";
    return 2;
  }
  absl::Time now = absl::Now();
  if (flags.count("now")) {
    int64_t seconds = 0;
    if (!absl::SimpleAtoi(flags["now"], &seconds)) return 2;
    now = absl::FromUnixSeconds(seconds);
  }
  std::string proof(std::istreambuf_iterator<char>(std::cin), {});
  ta::token::DpopRequest request;
  request.proof = absl::StripAsciiWhitespace(proof);
  request.method = flags["method"];
  request.url = flags["url"];
  if (flags.count("access_token")) request.access_token = flags["access_token"];
  if (flags.count("nonce")) request.nonce = flags["nonce"];
  absl::StatusOr<ta::token::DpopProof> verified =
      ta::token::VerifyDpopProof(request, ta::token::DpopPolicy(), now);
  if (!verified.ok()) {
    std::cerr << ta::ReasonOf(verified.status()) << ": " << verified.status().message() << "\n";
    return 1;
  }
  std::cout << verified->jkt << " " << verified->htu << "\n";
  return 0;
}

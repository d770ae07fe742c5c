// seal_tool: a thin command line over KeyEncryptionKey, so python3-cryptography's AESGCM
// (seal_interop_test.py) can open what we seal and hand us what it sealed.
//   seal_tool seal   KEK_FILE AAD   plaintext on stdin -> base64 sealed value on stdout
//   seal_tool unseal KEK_FILE AAD   base64 sealed value on stdin -> plaintext on stdout
//                                   (or the reason on stderr, exit 1)
#include <iostream>
#include <iterator>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "base/error.h"
#include "server/token/seal.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: seal_tool seal|unseal KEK_FILE AAD\n";
    return 2;
  }
  const std::string verb = argv[1];
  absl::StatusOr<ta::token::KeyEncryptionKey> kek = ta::token::KeyEncryptionKey::FromFile(argv[2]);
  if (!kek.ok()) {
    std::cerr << kek.status().message() << "\n";
    return 1;
  }
  std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  if (verb == "seal") {
    std::cout << absl::Base64Escape(kek->Seal(input, argv[3])) << "\n";
    return 0;
  }
  std::string sealed;
  if (verb != "unseal" || !absl::Base64Unescape(absl::StripAsciiWhitespace(input), &sealed)) {
    std::cerr << "bad arguments or input\n";
    return 2;
  }
  absl::StatusOr<std::string> plain = kek->Unseal(sealed, argv[3]);
  if (!plain.ok()) {
    std::cerr << ta::ReasonOf(plain.status()) << "\n";
    return 1;
  }
  std::cout << *plain;
  return 0;
}

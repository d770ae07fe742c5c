// KeyEncryptionKey (server/token/seal.h): AES-256-GCM against the GCM specification's test
// case 16 (checked against python3-cryptography too), tamper and misuse, and KEK files.
#include "server/token/seal.h"

#include <catch2/catch.hpp>
#include <sys/stat.h>

#include <fstream>
#include <string>

#include "absl/strings/escaping.h"
#include "base/error.h"
#include "tests/support/temp_dir.h"

namespace ta::token {
namespace {

std::string Hex(absl::string_view hex) { return absl::HexStringToBytes(hex); }

KeyEncryptionKey Kek(char fill = 'k') { return *KeyEncryptionKey::FromBytes(std::string(32, fill)); }

TEST_CASE("Seal: AES-256-GCM matches the GCM specification's test case 16", "[seal]") {
  // McGrew & Viega, "The Galois/Counter Mode of Operation", test case 16 (AES-256, AAD).
  auto kek = KeyEncryptionKey::FromBytes(
      Hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"));
  REQUIRE(kek.ok());
  const std::string plaintext = Hex(
      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449"
      "a6b525b16aedf5aa0de657ba637b39");
  const std::string aad = Hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  const std::string nonce = Hex("cafebabefacedbaddecaf888");
  const std::string expected =
      std::string(1, '\x01') + nonce +
      Hex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b10"
          "56828838c5f61e6393ba7a0abcc9f662") +
      Hex("76fc6ece0f4e1768cddf8853bb2d551b");
  CHECK(kek->SealWithNonceForTesting(plaintext, aad, nonce) == expected);
  absl::StatusOr<std::string> opened = kek->Unseal(expected, aad);
  REQUIRE(opened.ok());
  CHECK(*opened == plaintext);
}

TEST_CASE("Seal: only the same KEK and AAD open a value, and any change is refused", "[seal]") {
  KeyEncryptionKey kek = Kek();
  const std::string sealed = kek.Seal("private key bytes", "keyring/v1/kid-1");
  CHECK(sealed != kek.Seal("private key bytes", "keyring/v1/kid-1"));  // fresh nonce each time
  CHECK(*kek.Unseal(sealed, "keyring/v1/kid-1") == "private key bytes");
  CHECK(ReasonOf(kek.Unseal(sealed, "keyring/v1/kid-2").status()) == "sealed_value_rejected");
  CHECK(ReasonOf(Kek('x').Unseal(sealed, "keyring/v1/kid-1").status()) == "sealed_value_rejected");
  for (size_t byte = 1; byte < sealed.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string altered = sealed;
      altered[byte] = static_cast<char>(altered[byte] ^ (1 << bit));
      absl::StatusOr<std::string> r = kek.Unseal(altered, "keyring/v1/kid-1");
      REQUIRE_FALSE(r.ok());
      CHECK(r.status().code() == absl::StatusCode::kUnauthenticated);
    }
  }
  CHECK(kek.Unseal(sealed.substr(0, 28), "keyring/v1/kid-1").status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(kek.Unseal("\x02" + sealed.substr(1), "keyring/v1/kid-1").status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(*kek.Unseal(kek.Seal("", "a"), "a") == "");
  CHECK(kek.Fingerprint() == Kek().Fingerprint());
  CHECK(kek.Fingerprint() != Kek('x').Fingerprint());
  CHECK(kek.Fingerprint().size() == 16);
}

TEST_CASE("Seal: a KEK file must be private and hold 32 base64 bytes", "[seal]") {
  ta::testing::TempDir dir;
  auto write = [&](const std::string& name, const std::string& text, mode_t mode) {
    const std::string path = dir.Sub(name);
    std::ofstream(path) << text;
    chmod(path.c_str(), mode);
    return path;
  };
  const std::string good = absl::Base64Escape(std::string(32, 'k'));
  absl::StatusOr<KeyEncryptionKey> ok = KeyEncryptionKey::FromFile(write("ok", good + "\n", 0600));
  REQUIRE(ok.ok());
  CHECK(ok->Fingerprint() == Kek().Fingerprint());
  absl::Status open = KeyEncryptionKey::FromFile(write("open", good, 0644)).status();
  CHECK(open.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(open.message().find(good) == std::string::npos);  // never echoes the key
  CHECK(KeyEncryptionKey::FromFile(write("short", absl::Base64Escape(std::string(31, 'k')), 0600))
            .status()
            .code() == absl::StatusCode::kInvalidArgument);
  absl::Status garbage = KeyEncryptionKey::FromFile(write("garbage", "not base64 at all!", 0400)).status();
  CHECK(garbage.code() == absl::StatusCode::kInvalidArgument);
  CHECK(KeyEncryptionKey::FromFile(dir.Sub("missing")).status().code() ==
        absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace ta::token

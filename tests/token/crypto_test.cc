#include "token/crypto.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "tests/token/test_util.h"
#include "token/key.h"

namespace ta::token {
namespace {

TEST_CASE("Crypto: SHA-256 of \"abc\" matches FIPS 180-2", "[token]") {
  CHECK(absl::BytesToHexString(Sha256("abc")) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("Crypto: HMAC-SHA256 matches RFC 4231 test case 2", "[token]") {
  CHECK(absl::BytesToHexString(HmacSha256("Jefe", "what do ya want for nothing?")) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST_CASE("Crypto: RandomBytes gives the requested length and fresh bytes", "[token]") {
  CHECK(RandomBytes(0).empty());
  CHECK(RandomBytes(32).size() == 32);
  CHECK(RandomBytes(32) != RandomBytes(32));
}

TEST_CASE("Crypto: ConstantTimeEquals compares content and length", "[token]") {
  CHECK(ConstantTimeEquals("", ""));
  CHECK(ConstantTimeEquals("abc", "abc"));
  CHECK_FALSE(ConstantTimeEquals("abc", "abd"));
  CHECK_FALSE(ConstantTimeEquals("abc", "abcd"));
  CHECK_FALSE(ConstantTimeEquals("", "a"));
}


// HmacSha256 re-keys one context per thread: a key must never carry over to the next call.
TEST_CASE("Crypto: HMAC-SHA256 re-keys every call (RFC 4231 cases 1 and 2 interleaved)",
          "[token]") {
  const std::string case1_key(20, '\x0b');
  const char* case1 = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
  const char* case2 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
  // HMAC-SHA256 with an empty key and message (a well-known value).
  const char* empty = "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad";
  for (int round = 0; round < 3; ++round) {
    CHECK(absl::BytesToHexString(HmacSha256(case1_key, "Hi There")) == case1);
    CHECK(absl::BytesToHexString(HmacSha256("Jefe", "what do ya want for nothing?")) == case2);
    CHECK(absl::BytesToHexString(HmacSha256("", "")) == empty);
  }
}

TEST_CASE("Crypto: SHA-256 of the empty string and of a million 'a's (FIPS 180-2)", "[token]") {
  CHECK(absl::BytesToHexString(Sha256("")) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(absl::BytesToHexString(Sha256(std::string(1'000'000, 'a'))) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  CHECK(absl::BytesToHexString(Sha256("abc")) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("Crypto: digests and MACs agree across threads", "[token]") {
  const std::string expected_mac = HmacSha256("Jefe", "what do ya want for nothing?");
  const std::string expected_sha = Sha256("abc");
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const std::string own_key(32, static_cast<char>('a' + t));
      const std::string own_mac = HmacSha256(own_key, "x");
      for (int i = 0; i < 500; ++i) {
        if (HmacSha256("Jefe", "what do ya want for nothing?") != expected_mac) ++wrong;
        if (HmacSha256(own_key, "x") != own_mac) ++wrong;
        if (Sha256("abc") != expected_sha) ++wrong;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  CHECK(wrong == 0);
}

// Key copies one initialised signing/verifying context per operation (key.h): concurrent
// use of one key must give signatures that verify, and tampering must still fail.
TEST_CASE("Key: concurrent Sign and Verify on one key, every algorithm", "[token]") {
  for (Algorithm alg : testing::kAllAlgorithms) {
    INFO(AlgorithmName(alg));
    std::unique_ptr<Key> key = Key::Generate(alg).value();
    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        const int rounds = alg == Algorithm::kRS256 || alg == Algorithm::kPS256 ? 5 : 40;
        for (int i = 0; i < rounds; ++i) {
          const std::string input = "input-" + std::to_string(t) + "-" + std::to_string(i);
          absl::StatusOr<std::string> sig = key->Sign(input);
          if (!sig.ok() || !key->Verify(input, *sig) || key->Verify(input + "!", *sig)) ++wrong;
        }
      });
    }
    for (std::thread& th : threads) th.join();
    CHECK(wrong == 0);
  }
}

}  // namespace
}  // namespace ta::token

#include "server/token/key_ring.h"

#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/token/test_util.h"
#include "token/json.h"
#include "token/openssl_util.h"

namespace ta::token {
namespace {

using testing::MakeClaims;
using testing::MakePolicy;
using testing::ModeOf;
using testing::ReasonOfVerify;
using testing::TempDir;
using testing::WriteFile;

KeyRingOptions Options(const std::string& dir, const Clock* clock) {
  KeyRingOptions o;
  o.key_dir = dir;
  o.clock = clock;
  return o;
}

// A 1024-bit RSA key: too small for RS256/PS256.
std::string SmallRsaPem() {
  internal::EvpPkeyPtr pkey(EVP_RSA_gen(1024));
  internal::BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);  // NOLINT(runtime/int)
  return std::string(data, static_cast<size_t>(len));
}

std::string OpenError(const KeyRingOptions& o) {
  auto ring = KeyRing::Open(o);
  return ring.ok() ? "ok" : std::string(ring.status().message());
}

TEST_CASE("KeyRing: first open generates an ES256 key and reopen keeps it", "[token]") {
  TempDir tmp;
  FakeClock clock;
  const std::string dir = tmp.Sub("keys");  // absent: Open creates it
  auto ring = KeyRing::Open(Options(dir, &clock));
  REQUIRE(ring.ok());
  std::vector<KeyInfo> keys = (*ring)->Keys();
  REQUIRE(keys.size() == 1);
  CHECK(keys[0].alg == Algorithm::kES256);
  CHECK(keys[0].active);
  CHECK(keys[0].created_at == clock.Now());
  CHECK(keys[0].retire_at == absl::InfiniteFuture());
  std::string token = (*ring)->Sign(MakeClaims(clock.Now()), "at+jwt").value();
  std::string refresh = (*ring)->DeriveRefreshSecret("family-1/0");
  CHECK(refresh.size() == 32);
  CHECK(refresh != (*ring)->DeriveRefreshSecret("family-1/1"));
  ring->reset();

  auto reopened = KeyRing::Open(Options(dir, &clock));
  REQUIRE(reopened.ok());
  CHECK((*reopened)->Keys()[0].kid == keys[0].kid);
  CHECK(ReasonOfVerify(**reopened, token) == "ok");
  CHECK((*reopened)->DeriveRefreshSecret("family-1/0") == refresh);
}

TEST_CASE("KeyRing: key directory and files are private", "[token]") {
  TempDir tmp;
  FakeClock clock;
  const std::string dir = tmp.Sub("keys");
  auto ring = KeyRing::Open(Options(dir, &clock)).value();
  CHECK(ModeOf(dir) == 0700);
  CHECK(ModeOf(dir + "/keyring.json") == 0600);
  CHECK(ModeOf(dir + "/refresh.secret") == 0600);
  CHECK(ModeOf(dir + "/" + ring->Keys()[0].kid + ".pem") == 0600);
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    (void)entry;
    ++files;
  }
  CHECK(files == 3);  // no temporary files left behind
}

TEST_CASE("KeyRing: rotated key verifies until its window passes", "[token]") {
  TempDir tmp;
  FakeClock clock;
  KeyRingOptions o = Options(tmp.Sub("keys"), &clock);
  o.retired_verify_window = absl::Hours(1);
  auto ring = KeyRing::Open(o).value();
  const std::string old_kid = ring->Keys()[0].kid;
  std::string old_token = ring->Sign(MakeClaims(clock.Now(), absl::Hours(3)), "at+jwt").value();

  std::string new_kid = ring->Rotate().value();
  CHECK(new_kid != old_kid);
  std::vector<KeyInfo> keys = ring->Keys();
  REQUIRE(keys.size() == 2);
  CHECK((keys[0].kid == new_kid && keys[0].active));
  CHECK((keys[1].kid == old_kid && !keys[1].active));
  CHECK(keys[1].retire_at == clock.Now() + absl::Hours(1));
  CHECK(ReasonOfVerify(*ring, old_token) == "ok");
  std::string new_token = ring->Sign(MakeClaims(clock.Now(), absl::Hours(3)), "at+jwt").value();
  CHECK(ring->Verify(new_token, MakePolicy()).value().kid == new_kid);

  clock.Advance(absl::Minutes(59));
  CHECK(ReasonOfVerify(*ring, old_token) == "ok");
  CHECK(ring->JwksJson().find(old_kid) != std::string::npos);
  clock.Advance(absl::Minutes(1));
  CHECK(ReasonOfVerify(*ring, old_token) == "unknown_kid");
  CHECK(ring->JwksJson().find(old_kid) == std::string::npos);
  CHECK(ReasonOfVerify(*ring, new_token) == "ok");

  // A restart keeps the rotation and drops the expired key and its file.
  ring.reset();
  auto reopened = KeyRing::Open(o).value();
  REQUIRE(reopened->Keys().size() == 1);
  CHECK(reopened->Keys()[0].kid == new_kid);
  CHECK_FALSE(std::filesystem::exists(o.key_dir + "/" + old_kid + ".pem"));
  CHECK(ReasonOfVerify(*reopened, new_token) == "ok");
}

TEST_CASE("KeyRing: rotation survives a restart within the window", "[token]") {
  TempDir tmp;
  FakeClock clock;
  KeyRingOptions o = Options(tmp.Sub("keys"), &clock);
  auto ring = KeyRing::Open(o).value();
  std::string old_token = ring->Sign(MakeClaims(clock.Now()), "at+jwt").value();
  std::string new_kid = ring->Rotate(Algorithm::kEdDSA).value();
  ring.reset();
  auto reopened = KeyRing::Open(o).value();
  REQUIRE(reopened->Keys().size() == 2);
  CHECK(reopened->Keys()[0].kid == new_kid);
  CHECK(reopened->Keys()[0].alg == Algorithm::kEdDSA);
  CHECK(ReasonOfVerify(*reopened, old_token) == "ok");
}

TEST_CASE("KeyRing: JWKS publishes public members only", "[token]") {
  TempDir tmp;
  FakeClock clock;
  KeyRingOptions o = Options(tmp.Sub("keys"), &clock);
  o.allow_hs256 = true;
  auto ring = KeyRing::Open(o).value();
  ring->Rotate(Algorithm::kRS256).value();
  ring->Rotate(Algorithm::kEdDSA).value();
  std::string hs_kid = ring->Rotate(Algorithm::kHS256).value();
  rapidjson::Document jwks;
  REQUIRE(internal::ParseJsonObject(ring->JwksJson(), &jwks).ok());
  const auto& keys = jwks["keys"];
  REQUIRE(keys.Size() == 3);  // ES256, RS256, EdDSA; never HS256
  for (const auto& k : keys.GetArray()) {
    CHECK_FALSE(k.HasMember("d"));
    CHECK_FALSE(k.HasMember("p"));
    CHECK_FALSE(k.HasMember("k"));
    CHECK(std::string(k["use"].GetString()) == "sig");
    CHECK(k.HasMember("alg"));
    CHECK(std::string(k["kid"].GetString()) != hs_kid);
    if (std::string(k["kty"].GetString()) == "EC") {
      CHECK(Base64UrlDecode(k["x"].GetString()).value().size() == 32);
      CHECK(Base64UrlDecode(k["y"].GetString()).value().size() == 32);
    }
    // kid is the RFC 7638 thumbprint of the published key.
    auto key = Key::FromJwk(internal::ToJson(k), ParseAlgorithm(k["alg"].GetString()).value());
    REQUIRE(key.ok());
    CHECK((*key)->kid() == k["kid"].GetString());
  }
}

TEST_CASE("KeyRing: EC coordinates keep leading zero bytes", "[token]") {
  // About 1 in 128 P-256 keys has a coordinate under 2^248; generate until one shows up.
  bool seen = false;
  for (int i = 0; i < 2000 && !seen; ++i) {
    auto key = Key::Generate(Algorithm::kES256).value();
    for (const auto& [name, value] : key->PublicJwkMembers()) {
      if (name != "x" && name != "y") continue;
      std::string raw = Base64UrlDecode(value).value();
      CHECK(raw.size() == 32);
      seen = seen || raw[0] == '\0';
    }
  }
  CHECK(seen);
}

TEST_CASE("KeyRing: a single operator PEM is adopted with its natural algorithm", "[token]") {
  for (Algorithm alg : {Algorithm::kES256, Algorithm::kEdDSA, Algorithm::kRS256}) {
    TempDir tmp;
    FakeClock clock;
    auto key = Key::Generate(alg).value();
    WriteFile(tmp.Sub("operator.pem"), key->PrivateFileContents().value());
    auto ring = KeyRing::Open(Options(tmp.path(), &clock));
    REQUIRE(ring.ok());
    CHECK((*ring)->Keys()[0].kid == key->kid());
    CHECK((*ring)->Keys()[0].alg == alg);
  }
}

TEST_CASE("KeyRing: the manifest binds an RSA key to PS256", "[token]") {
  TempDir tmp;
  FakeClock clock;
  auto key = Key::Generate(Algorithm::kRS256).value();
  WriteFile(tmp.Sub("rsa.pem"), key->PrivateFileContents().value());
  WriteFile(tmp.Sub("keyring.json"),
            R"({"version":1,"keys":[{"file":"rsa.pem","alg":"PS256","active":true}]})");
  auto ring = KeyRing::Open(Options(tmp.path(), &clock)).value();
  CHECK(ring->Keys()[0].alg == Algorithm::kPS256);
  std::string token = ring->Sign(MakeClaims(clock.Now()), "at+jwt").value();
  CHECK(ring->Verify(token, MakePolicy()).value().alg == Algorithm::kPS256);
  CHECK(ring->JwksJson().find(R"("alg":"PS256")") != std::string::npos);
}

TEST_CASE("KeyRing: unusable directories and keys are refused", "[token]") {
  TempDir tmp;
  FakeClock clock;
  KeyRingOptions o = Options(tmp.path(), &clock);
  SECTION("several PEM files and no manifest") {
    WriteFile(tmp.Sub("a.pem"),
              Key::Generate(Algorithm::kES256).value()->PrivateFileContents().value());
    WriteFile(tmp.Sub("b.pem"),
              Key::Generate(Algorithm::kES256).value()->PrivateFileContents().value());
    CHECK(OpenError(o).find("several PEM files") != std::string::npos);
  }
  SECTION("a key file readable by others") {
    WriteFile(tmp.Sub("a.pem"),
              Key::Generate(Algorithm::kES256).value()->PrivateFileContents().value(), 0644);
    CHECK(OpenError(o).find("0600") != std::string::npos);
  }
  SECTION("an RSA key under 2048 bits") {
    WriteFile(tmp.Sub("small.pem"), SmallRsaPem());
    CHECK(OpenError(o).find("2048") != std::string::npos);
  }
  SECTION("an HS256 key without allow_hs256") {
    WriteFile(tmp.Sub("k.hs256"), Base64UrlEncode(std::string(32, 'k')));
    WriteFile(tmp.Sub("keyring.json"),
              R"({"version":1,"keys":[{"file":"k.hs256","alg":"HS256","active":true}]})");
    CHECK(OpenError(o).find("allow_hs256") != std::string::npos);
    o.allow_hs256 = true;
    CHECK(OpenError(o) == "ok");
  }
  SECTION("an HS256 secret under 32 bytes") {
    WriteFile(tmp.Sub("k.hs256"), Base64UrlEncode(std::string(31, 'k')));
    WriteFile(tmp.Sub("keyring.json"),
              R"({"version":1,"keys":[{"file":"k.hs256","alg":"HS256","active":true}]})");
    o.allow_hs256 = true;
    CHECK(OpenError(o).find("32 bytes") != std::string::npos);
  }
  SECTION("a manifest escaping the directory or with typos") {
    WriteFile(tmp.Sub("keyring.json"),
              R"({"version":1,"keys":[{"file":"../x.pem","alg":"ES256","active":true}]})");
    CHECK(OpenError(o) != "ok");
    WriteFile(tmp.Sub("keyring.json"),
              R"({"version":1,"keys":[{"file":"x.pem","alg":"ES256","actve":true}]})");
    CHECK(OpenError(o).find("actve") != std::string::npos);
  }
  SECTION("no active key") {
    WriteFile(tmp.Sub("a.pem"),
              Key::Generate(Algorithm::kES256).value()->PrivateFileContents().value());
    WriteFile(tmp.Sub("keyring.json"), R"({"version":1,"keys":[{"file":"a.pem","alg":"ES256"}]})");
    CHECK(OpenError(o).find("exactly one") != std::string::npos);
  }
  SECTION("bad options") {
    o.key_dir.clear();
    CHECK(OpenError(o) != "ok");
    o.key_dir = tmp.path();
    o.generate_algorithm = Algorithm::kHS256;
    CHECK(OpenError(o) != "ok");
  }
}

TEST_CASE("KeyRing: verify-only keys listed by the operator verify but never sign", "[token]") {
  TempDir tmp;
  FakeClock clock;
  auto signer = Key::Generate(Algorithm::kES256).value();
  auto foreign = Key::Generate(Algorithm::kEdDSA).value();
  WriteFile(tmp.Sub("a.pem"), signer->PrivateFileContents().value());
  WriteFile(tmp.Sub("b.pem"), foreign->PrivateFileContents().value());
  WriteFile(tmp.Sub("keyring.json"),
            R"({"version":1,"keys":[)"
            R"({"file":"b.pem","alg":"EdDSA"},{"file":"a.pem","alg":"ES256","active":true}]})");
  auto ring = KeyRing::Open(Options(tmp.path(), &clock)).value();
  CHECK(ring->Keys()[0].kid == signer->kid());
  std::string token = SignCompactJws(EncodeJwsHeader(Algorithm::kEdDSA, foreign->kid(), "at+jwt"),
                                     EncodeClaims(MakeClaims(clock.Now())).value(), *foreign)
                          .value();
  clock.Advance(absl::Hours(1000));
  VerifyPolicy p = MakePolicy();
  p.leeway = absl::Hours(2000);
  CHECK(ReasonOfVerify(*ring, token, p) == "ok");
}

TEST_CASE("KeyRing: Sign and Verify run concurrently with Rotate", "[token]") {
  TempDir tmp;
  FakeClock clock;
  auto ring = KeyRing::Open(Options(tmp.Sub("keys"), &clock)).value();
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 3; ++t) {
    workers.emplace_back([&] {
      while (!stop.load()) {
        auto token = ring->Sign(MakeClaims(clock.Now()), "at+jwt");
        if (!token.ok() || !ring->Verify(*token, MakePolicy()).ok()) ++failures;
      }
    });
  }
  for (int i = 0; i < 5; ++i) REQUIRE(ring->Rotate().ok());
  stop = true;
  for (std::thread& w : workers) w.join();
  CHECK(failures.load() == 0);
  CHECK(ring->Keys().size() == 6);
}

}  // namespace
}  // namespace ta::token

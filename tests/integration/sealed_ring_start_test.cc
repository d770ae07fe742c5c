// Issue 22 (suspected, held): a RocksDB server whose key ring was sealed in the store (it ran
// with --key_encryption_key_file) started without the flag on the key files left in key_dir,
// signing and verifying with a stale ring. It must refuse to start and name the flag.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "base/error.h"
#include "server/server.h"
#include "tests/support/temp_dir.h"

namespace ta::testing {
namespace {

TEST_CASE(
    "Server: a store holding a sealed key ring is refused without "
    "--key_encryption_key_file",
    "[integration][keys]") {
  TempDir dir;
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.data_dir = dir.Sub("data");
  options.audit_log = "off";
  // Stale key files in key_dir, as a server without a KEK had left them.
  {
    ServerOptions plain = options;
    REQUIRE(ValidateServerOptions(plain).ok());
    absl::StatusOr<std::unique_ptr<Server>> first = Server::Start(plain);
    REQUIRE(first.ok());
    (*first)->Shutdown(absl::ZeroDuration());
  }
  REQUIRE(std::filesystem::exists(options.data_dir + "/keys/keyring.json"));
  std::filesystem::remove_all(options.data_dir + "/db");
  options.key_encryption_key_file = dir.Sub("kek");
  std::ofstream(options.key_encryption_key_file)
      << "q83vEjRWeJq8vMrU3u/wEjRWeJq8vMrU3u/wEjRWeJo=\n";
  std::filesystem::permissions(
      options.key_encryption_key_file,
      std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
      std::filesystem::perm_options::replace);
  {
    ServerOptions sealed = options;
    REQUIRE(ValidateServerOptions(sealed).ok());
    absl::StatusOr<std::unique_ptr<Server>> second = Server::Start(sealed);
    INFO(second.status().ToString());
    REQUIRE(second.ok());
    (*second)->Shutdown(absl::ZeroDuration());
  }
  ServerOptions without = options;
  without.key_encryption_key_file.clear();
  REQUIRE(ValidateServerOptions(without).ok());
  absl::StatusOr<std::unique_ptr<Server>> third = Server::Start(without);
  REQUIRE_FALSE(third.ok());
  CHECK(ReasonOf(third.status()) == "invalid_argument:key_encryption_key_file");
  CHECK(absl::StrContains(third.status().message(), "--key_encryption_key_file"));
  // With the flag it starts again.
  ServerOptions again = options;
  REQUIRE(ValidateServerOptions(again).ok());
  absl::StatusOr<std::unique_ptr<Server>> fourth = Server::Start(again);
  INFO(fourth.status().ToString());
  CHECK(fourth.ok());
  if (fourth.ok()) (*fourth)->Shutdown(absl::ZeroDuration());
}

}  // namespace
}  // namespace ta::testing

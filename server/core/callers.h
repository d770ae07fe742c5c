// Who may call: the caller registry (DESIGN §7).
//
// Callers prove themselves with a bearer API key (we keep only its SHA-256) or an mTLS client
// certificate (matched by SAN or CN). Each has roles: issuer, client, resource, admin. The
// registry is loaded once at start from a caller file, or generated for local development
// (one admin key written 0600 into the data directory). Immutable after construction, so
// thread-safe. Keys are never logged or echoed; errors name the file and line only.
//
// Caller file, one caller per line ('#' starts a comment):
//   NAME  ROLES  CREDENTIAL  [clients=ID,ID]  [revoked]
//   ROLES       comma-separated: issuer, client, resource, admin
//   CREDENTIAL  key-sha256:<64 hex digits of SHA-256(api key)>  or  cert:<SAN or CN>
//   clients=    restricts a `client` caller to tokens of these client_ids
//   revoked     the entry is kept for the record but its credential is refused
#ifndef TA_SERVER_CORE_CALLERS_H_
#define TA_SERVER_CORE_CALLERS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/core/authority.h"

namespace ta::core {

class CallerRegistry {
 public:
  // Parses a caller file. INVALID_ARGUMENT naming the line for any malformed entry.
  static absl::StatusOr<std::unique_ptr<CallerRegistry>> Load(const std::string& path);
  static absl::StatusOr<std::unique_ptr<CallerRegistry>> Parse(absl::string_view text,
                                                               absl::string_view origin);
  // Local development: reads `key_path`, or creates it (0600) with a fresh random key, and
  // returns a registry with one admin caller named "local-admin" holding that key.
  static absl::StatusOr<std::unique_ptr<CallerRegistry>> LocalAdmin(const std::string& key_path);

  // The caller holding `api_key`; UNAUTHENTICATED ("unauthenticated" / "caller_revoked").
  absl::StatusOr<Caller> ByApiKey(absl::string_view api_key) const;
  // The caller whose cert: identity is one of `names` (SANs then CN).
  absl::StatusOr<Caller> ByCertificate(const std::vector<std::string>& names) const;

  // "key-sha256:<hex>" for an API key: what an operator writes into the caller file.
  static std::string KeyCredential(absl::string_view api_key);

 private:
  struct Entry {
    Caller caller;
    bool revoked = false;
  };
  CallerRegistry() = default;
  absl::Status Add(absl::string_view line, absl::string_view where);

  absl::flat_hash_map<std::string, Entry> by_credential_;  // "key-sha256:..." / "cert:..."
};

}  // namespace ta::core

#endif  // TA_SERVER_CORE_CALLERS_H_

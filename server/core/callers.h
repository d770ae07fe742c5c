// Who may call: the caller registry (DESIGN §7).
//
// Callers prove themselves with a bearer API key (we keep only its SHA-256) or an mTLS client
// certificate (matched by a typed SAN, or by CN only when it has no SAN). Each has roles:
// issuer, client, resource, admin. The
// registry is loaded once at start from a caller file, or generated for local development
// (one admin key written 0600 into the data directory). Immutable after construction, so
// thread-safe. Keys are never logged or echoed; errors name the file and line only.
//
// Caller file, one caller per line ('#' at the start of a line or after white space starts a
// comment; a '#' inside a word, e.g. a URI fragment, is part of it):
//   NAME  ROLES  CREDENTIAL  [clients=ID,ID]  [revoked]
//   ROLES       comma-separated: issuer, client, resource, admin
//   CREDENTIAL  key-sha256:<64 hex digits of SHA-256(api key)>, or a certificate identity:
//     cert-uri:<URI SAN>      e.g. cert-uri:spiffe://prod/gateway
//     cert-dns:<DNS SAN>      compared case-insensitively
//     cert-email:<email SAN>  (rfc822Name)
//     cert-ip:<IP SAN>        e.g. cert-ip:10.0.0.7
//     cert-cn:<subject CN>    only for certificates without any SAN (RFC 6125 §6.4.4)
//     An untyped `cert:` is refused at load: it would match a name of any type.
//   clients=    restricts a `client` caller to tokens of these client_ids, and an `issuer` to
//               starting sessions for them; at least one id (an empty list is refused)
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

// The identities an mTLS client certificate carries, by type (filled by server/rpc from the
// verified peer).
struct PeerCertificate {
  std::vector<std::string> uris, dns_names, emails, ips;  // subjectAltName entries
  std::string common_name;                                // subject CN ("" if none)
  bool HasSan() const {
    return !uris.empty() || !dns_names.empty() || !emails.empty() || !ips.empty();
  }
};

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
  // The caller a certificate identity of `peer` names: a typed SAN entry, or cert-cn: when
  // the certificate has no SAN. UNAUTHENTICATED ("unauthenticated" when none matches or
  // several callers do, "caller_revoked").
  absl::StatusOr<Caller> ByCertificate(const PeerCertificate& peer) const;

  // "key-sha256:<hex>" for an API key: what an operator writes into the caller file.
  static std::string KeyCredential(absl::string_view api_key);

 private:
  struct Entry {
    Caller caller;
    bool revoked = false;
  };
  CallerRegistry() = default;
  absl::Status Add(absl::string_view line, absl::string_view where);

  // "key-sha256:<hex>" / "cert-<type>:<name>" (dns names lowercased)
  absl::flat_hash_map<std::string, Entry> by_credential_;
};

}  // namespace ta::core

#endif  // TA_SERVER_CORE_CALLERS_H_

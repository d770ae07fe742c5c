// Host names as the listeners see them. Header-only; thread-safe.
#ifndef TA_BASE_NET_H_
#define TA_BASE_NET_H_

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace ta {

// Whether `host` (as written in a HOST:PORT listen address: "127.0.0.1", "[::1]",
// "localhost") names only this machine. An IP literal is parsed, never matched by prefix
// ("127.example.com" is a name someone else's DNS answers for, not loopback); of names, only
// "localhost" counts (RFC 6761 §6.3: it must resolve to loopback).
inline bool IsLoopbackHost(absl::string_view host) {
  if (absl::EqualsIgnoreCase(host, "localhost")) return true;
  absl::string_view literal = host;
  if (absl::ConsumePrefix(&literal, "[") && !absl::ConsumeSuffix(&literal, "]")) return false;
  const std::string text(literal);
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;  // 127.0.0.0/8
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&v6)) return v6.s6_addr[12] == 127;  // ::ffff:127.x.y.z
  }
  return false;
}

}  // namespace ta

#endif  // TA_BASE_NET_H_

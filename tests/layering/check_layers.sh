#!/usr/bin/env bash
# The layering check (issue 24, docs/architecture.md): reads every `#include "..."` line of
# our sources and fails when an arrow runs the wrong way. The rules, as "folder: may not
# include":
#   base/          anything of ours (only base/ itself, the standard library and Abseil)
#   token/         anything of ours but base/ and token/ (the token library: no gRPC, no
#                  storage engine, no server types)
#   server/token/  anything of ours but base/, token/ and server/token/ (the server's keys)
#   storage/       anything of ours but base/ and storage/
#   server/core/   server/rpc/, server/http/, server/metrics/, server/*.h, client/ (the core
#                  is below both faces and the binary)
#   client/        anything of ours but base/, token/ and client/ (never server/)
#   server/http/   server/rpc/ (the two faces are siblings over server/core)
#   server/runtime/ anything of ours but base/ and server/runtime/ (the worker pool and call
#                  gate, below both faces)
# KNOWN lists wrong arrows tolerated for now (none left); a NEW wrong arrow fails the check,
# and so does a KNOWN one that is gone (shorten the list).
#
# check_layers.sh [ROOT]     checks the tree at ROOT (default: this repository)
# check_layers.sh --self-test  shows the check fails on each kind of bad include
set -euo pipefail

# file -> included path, one per line. Empty: the tree has no wrong arrow left (issue 24).
KNOWN=()

# Our top-level include roots; anything else (absl/, rocksdb/, grpcpp/, generated
# tokenauthority/...) is a third-party or generated header.
OURS='^(base|server|storage|client|token|tests)/'

# rule: folder, then the ERE of included paths it may not have.
RULES=(
  "base/|${OURS}"
  "token/|^(server|storage|client|tests)/"
  "server/token/|^(server|storage|client|tests)/"
  "storage/|^(server|client|token|tests)/"
  "server/core/|^(server/(rpc|http|metrics)/|server/[^/]+\.h$|client/|tests/)"
  "client/|^(server|storage|tests)/"
  "server/http/|^server/rpc/"
  "server/runtime/|^(server|storage|client|token|tests)/"
)

check() {
  local root=$1 bad=0 seen=()
  local rule dir deny file inc line
  for rule in "${RULES[@]}"; do
    dir=${rule%%|*} deny=${rule#*|}
    [[ -d "$root/$dir" ]] || continue
    while IFS= read -r line; do
      file=${line%%:*}
      inc=$(sed -E 's/^[^:]*:[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]*)".*/\1/' <<<"$line")
      file=${file#"$root"/}
      [[ $inc =~ $deny ]] || continue
      if [[ $inc == "${dir}"* ]] && [[ $dir != base/ ]]; then continue; fi  # its own folder
      if [[ $dir == base/ && $inc == base/* ]]; then continue; fi
      local arrow="$file -> $inc" known=0 k
      for k in "${KNOWN[@]}"; do [[ $k == "$arrow" ]] && known=1; done
      if ((known)); then
        seen+=("$arrow")
      else
        echo "layering: $arrow (a $dir file may not include that)" >&2
        bad=1
      fi
    done < <(grep -rE --include='*.h' --include='*.cc' '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$root/$dir" || true)
  done
  local k s found
  for k in "${KNOWN[@]}"; do
    found=0
    for s in "${seen[@]+"${seen[@]}"}"; do [[ $s == "$k" ]] && found=1; done
    if ((!found)); then
      echo "layering: known exception '$k' is gone; remove it from KNOWN in $0" >&2
      bad=1
    fi
  done
  return $bad
}

self_test() {
  local tmp status=0
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  # A minimal tree with the known exceptions and only allowed arrows: passes.
  mkdir -p "$tmp/ok"/{base,token,server/token,server/core,server/http,server/rpc,server/runtime}
  mkdir -p "$tmp/ok"/{storage,client}
  printf '#include "absl/status/status.h"\n#include "base/clock.h"\n' >"$tmp/ok/base/a.h"
  printf '#include "base/error.h"\n#include "token/jwt.h"\n' >"$tmp/ok/token/a.cc"
  printf '#include "token/jwt.h"\n#include "server/token/key_ring.h"\n' \
    >"$tmp/ok/server/token/a.cc"
  printf '#include "base/error.h"\n#include "storage/codec.h"\n' >"$tmp/ok/storage/a.cc"
  printf '#include "token/jwt.h"\n#include "storage/token_store.h"\n' \
    >"$tmp/ok/server/core/a.cc"
  printf '#include "base/error.h"\n#include "token/jwt.h"\n#include "client/client.h"\n' \
    >"$tmp/ok/client/a.cc"
  printf '#include "server/core/authority.h"\n#include "server/runtime/call_gate.h"\n' \
    >"$tmp/ok/server/http/endpoints.h"
  printf '#include "server/runtime/call_gate.h"\n#include "server/core/authority.h"\n' \
    >"$tmp/ok/server/rpc/services.h"
  printf '#include "base/error.h"\n#include "server/runtime/worker_pool.h"\n' \
    >"$tmp/ok/server/runtime/worker_pool.cc"
  if ! check "$tmp/ok" 2>/dev/null; then
    echo "self-test: a clean tree failed the check" >&2
    check "$tmp/ok" || true
    return 1
  fi
  # Each bad include, alone in a copy of that tree: fails.
  local cases=(
    'base/b.h|server/core/authority.h'
    'base/b.h|storage/token_store.h'
    'token/b.cc|server/core/authority.h'
    'token/b.cc|server/token/key_ring.h'
    'token/b.cc|storage/token_store.h'
    'server/token/b.cc|storage/token_store.h'
    'server/token/b.cc|server/core/authority.h'
    'storage/b.cc|token/jwt.h'
    'storage/b.cc|server/token/key_ring.h'
    'storage/rocksdb/b.cc|server/core/roles.h'
    'server/core/b.cc|server/rpc/status.h'
    'server/core/b.cc|server/server.h'
    'client/b.cc|server/token/key_ring.h'
    'client/b.cc|storage/token_store.h'
    'client/tokenctl/b.cc|server/core/authority.h'
    'server/http/b.cc|server/rpc/services.h'
    'server/http/endpoints.h|server/rpc/worker_pool.h'
    'server/runtime/b.cc|server/rpc/services.h'
    'server/runtime/b.cc|server/core/authority.h'
    'server/runtime/b.cc|token/jwt.h'
  )
  local c file inc
  for c in "${cases[@]}"; do
    file=${c%%|*} inc=${c#*|}
    rm -rf "$tmp/bad" && cp -r "$tmp/ok" "$tmp/bad"
    mkdir -p "$(dirname "$tmp/bad/$file")"
    printf '#include "%s"\n' "$inc" >"$tmp/bad/$file"
    if check "$tmp/bad" 2>/dev/null; then
      echo "self-test: '$file -> $inc' passed the check" >&2
      status=1
    fi
  done
  # A known exception that is gone: fails (so the list only shrinks).
  if (KNOWN=("server/http/endpoints.h -> server/rpc/call_gate.h") && check "$tmp/ok" 2>/dev/null)
  then
    echo "self-test: a removed known exception went unnoticed" >&2
    status=1
  fi
  ((status == 0)) && echo "self-test: ok (${#cases[@]} bad includes caught)"
  return $status
}

if [[ ${1:-} == --self-test ]]; then
  self_test
else
  root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
  check "$root" && echo "layering: ok"
fi

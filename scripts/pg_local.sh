#!/usr/bin/env bash
# pg_local.sh start|stop [DIR]: a local PostgreSQL 15 cluster for trying the server on
# PostgreSQL (README, "PostgreSQL"). Unix socket only (no TCP), trust authentication, data in
# DIR (default /tmp/token-authority-pg). `start` prints the --postgres_dsn to use. Never
# touches a system cluster. Runs initdb/pg_ctl as the postgres user when started as root.
set -euo pipefail
cmd=${1:-}
dir=${2:-/tmp/token-authority-pg}
bin=/usr/lib/postgresql/15/bin
if [[ ! -x $bin/initdb ]]; then
  echo "pg_local.sh: PostgreSQL 15 is not installed: run bash scripts/setup.sh" >&2
  exit 1
fi
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case $cmd in
  start)
    if [[ ! -d $dir/data ]]; then
      mkdir -p "$dir"
      if [[ $(id -u) -eq 0 ]]; then chown postgres: "$dir"; fi
      chmod 700 "$dir"
      as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale >/dev/null
      printf "listen_addresses = ''\nunix_socket_directories = '%s'\n" "$dir" >>"$dir/data/postgresql.conf"
    fi
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
    echo "host=$dir user=postgres dbname=postgres"
    ;;
  stop)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  *)
    echo "usage: pg_local.sh start|stop [DIR]" >&2
    exit 2
    ;;
esac

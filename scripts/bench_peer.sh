# Sourced by scripts/bench.sh (uses its WORK, SECS, PIDS, PEER, FULL, PGROWS and PGDIR): the peer,
# Django REST Framework SimpleJWT, seeded and served by gunicorn and measured with wrk, on SQLite
# and, with the PostgreSQL rows, on the same PostgreSQL. Sets SJ_* and SJPG_* for the tables.
SJ_REFRESH=""; SJ_VERIFY=""; SJ_REFRESH_ERR=""; SJ_VERIFY_ERR=""
SJPG_REFRESH=""; SJPG_VERIFY=""; SJPG_REFRESH_ERR=""; SJPG_VERIFY_ERR=""
# peer NAME [VAR=VALUE...]: seeds and serves SimpleJWT (settings from the environment given),
# runs verify and refresh with wrk, and prints "verify non2xx refresh non2xx".
peer() {
  local name=$1 dir=$WORK/peer-$1 port pid
  shift
  mkdir -p "$dir"
  cp scripts/peers/simplejwt/*.py "$dir/"
  (cd "$dir" && env PEER_DIR="$dir" DJANGO_SETTINGS_MODULE=settings "$@" \
     /usr/bin/python3 seed.py "$((SECS * 1500))" "$dir")
  port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  (cd "$dir" && exec env PEER_DIR="$dir" DJANGO_SETTINGS_MODULE=settings "$@" \
     gunicorn --workers 2 --bind "127.0.0.1:$port" --log-level warning \
     django.core.wsgi:get_wsgi_application\(\) >"$WORK/peer-$name.log" 2>&1) &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  local script out
  for script in verify.lua refresh.lua; do
    out=$(PEER_TOKENS="$dir/tokens.txt" PEER_ACCESS="$dir/access.txt" PEER_THREADS=2 \
          wrk -t 2 -c 8 -d "${SECS}s" -s "scripts/peers/simplejwt/$script" "http://127.0.0.1:$port")
    printf '%s %s ' "$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out")" \
      "$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' <<<"$out" | grep . || echo 0)"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo
}
if ((PEER)); then
  if ((FULL)); then
    echo "== Django REST Framework SimpleJWT (gunicorn, 2 workers, SQLite, rotation + blacklist)"
    read -r SJ_VERIFY SJ_VERIFY_ERR SJ_REFRESH SJ_REFRESH_ERR <<<"$(peer sqlite)"
    echo "  simplejwt verify: $SJ_VERIFY req/s (non-2xx ${SJ_VERIFY_ERR:-0}); refresh: $SJ_REFRESH req/s (non-2xx ${SJ_REFRESH_ERR:-0})"
  fi
  if ((PGROWS)); then
    echo "== SimpleJWT on the same PostgreSQL (psycopg2)"
    read -r SJPG_VERIFY SJPG_VERIFY_ERR SJPG_REFRESH SJPG_REFRESH_ERR <<<"$(peer postgres \
      PEER_PG_HOST="$PGDIR" PEER_PG_DB=simplejwt)"
    echo "  simplejwt/postgres verify: $SJPG_VERIFY req/s (non-2xx $SJPG_VERIFY_ERR); refresh: $SJPG_REFRESH req/s (non-2xx $SJPG_REFRESH_ERR)"
  fi
fi

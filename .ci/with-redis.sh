#!/usr/bin/env bash
# Runs a command with REDIS_ADDR pointing at a real redis-server:
#   1. REDIS_ADDR if it is set (it must answer PING),
#   2. else 127.0.0.1:6379 if a server answers there,
#   3. else a throwaway redis-server on a free loopback port, stopped on exit.
# REDIS_SERVER_BIN is exported too, for tests that start servers of their own.
set -euo pipefail

ping() { # host port
  local reply
  exec 3<>"/dev/tcp/$1/$2" 2>/dev/null || return 1
  printf 'PING\r\n' >&3
  IFS= read -r -t 2 reply <&3 || true
  exec 3>&-
  [[ "$reply" == +PONG* ]]
}

split_addr() { # addr -> sets host port
  host="${1%:*}"; port="${1##*:}"
  [[ -n "$host" ]] || host=127.0.0.1
}

REDIS_SERVER_BIN="${REDIS_SERVER_BIN:-$(command -v redis-server || true)}"
export REDIS_SERVER_BIN

if [[ -n "${REDIS_ADDR:-}" ]]; then
  split_addr "$REDIS_ADDR"
  if ! ping "$host" "$port"; then
    echo "with-redis: REDIS_ADDR=$REDIS_ADDR does not answer PING" >&2
    exit 1
  fi
elif ping 127.0.0.1 6379; then
  export REDIS_ADDR=127.0.0.1:6379
else
  if [[ -z "$REDIS_SERVER_BIN" ]]; then
    cat >&2 <<'MSG'
with-redis: no Redis answers on 127.0.0.1:6379 and redis-server is not installed.
Install it (Debian/Ubuntu: sudo apt-get install -y redis-server; macOS: brew install redis)
or point REDIS_ADDR at a running server.
MSG
    exit 1
  fi
  dir=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo $((20000 + RANDOM % 20000)))
  "$REDIS_SERVER_BIN" --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
    --daemonize no --logfile "$dir/redis.log" &
  pid=$!
  trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
  for _ in $(seq 1 100); do
    ping 127.0.0.1 "$port" && break
    kill -0 "$pid" 2>/dev/null || { echo "with-redis: redis-server exited:" >&2; cat "$dir/redis.log" >&2; exit 1; }
    sleep 0.1 # polling for readiness, not synchronization
  done
  ping 127.0.0.1 "$port" || { echo "with-redis: redis-server on port $port did not answer" >&2; exit 1; }
  export REDIS_ADDR="127.0.0.1:$port"
  echo "with-redis: started throwaway redis-server on $REDIS_ADDR" >&2
fi

echo "with-redis: using Redis at $REDIS_ADDR" >&2
"$@"

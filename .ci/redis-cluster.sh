#!/usr/bin/env bash
# A throwaway Redis Cluster of local redis-server processes: 3 masters with
# one replica each, on free loopback ports (each node also needs its port +
# 10000 for the cluster bus).
#
#   .ci/redis-cluster.sh start DIR   start the nodes under DIR, create the cluster, wait until
#                                    every node reports cluster_state:ok and every replica is in
#                                    sync; prints REDIS_CLUSTER_ADDRS=host:port,... on stdout
#   .ci/redis-cluster.sh stop DIR    stop every node started under DIR (also nodes a test restarted)
#   .ci/redis-cluster.sh run CMD...  start a cluster in a temporary directory, run CMD with
#                                    REDIS_CLUSTER_ADDRS (and REDIS_SERVER_BIN) exported, stop it
#
# Each node runs from DIR/<port>/redis.conf with daemonize yes and a pidfile,
# so a test that kills a node can start it again with
# `redis-server <config_file>` (INFO server names the file) and `stop` still
# finds it. Persistence is off; cluster-node-timeout is 2 s so a failover
# after a crash completes in a few seconds.
set -euo pipefail

REDIS_SERVER_BIN="${REDIS_SERVER_BIN:-$(command -v redis-server || true)}"
REDIS_CLI_BIN="${REDIS_CLI_BIN:-$(command -v redis-cli || true)}"
export REDIS_SERVER_BIN
NODES=6

die() { echo "redis-cluster: $*" >&2; exit 1; }

need_bins() {
  [[ -n "$REDIS_SERVER_BIN" && -n "$REDIS_CLI_BIN" ]] ||
    die "redis-server and redis-cli are needed (Debian/Ubuntu: apt-get install -y redis-server)"
}

# free_ports N: N loopback ports p such that p and p+10000 are both free
# (bound-and-checked with python3 when there is one; otherwise ports nothing
# answers on, and redis-server reports a port it cannot bind).
free_ports() {
  if ! command -v python3 >/dev/null 2>&1; then
    local out=() p
    while ((${#out[@]} < $1)); do
      p=$((20000 + RANDOM % 25000))
      (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
      (exec 3<>"/dev/tcp/127.0.0.1/$((p + 10000))") 2>/dev/null && continue
      [[ " ${out[*]} " == *" $p "* ]] && continue
      out+=("$p")
    done
    echo "${out[*]}"
    return
  fi
  python3 - "$1" <<'PY'
import random, socket, sys
n, out = int(sys.argv[1]), []
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); return True
    except OSError:
        return False
    finally:
        s.close()
tries = 0
while len(out) < n:
    tries += 1
    if tries > 10000:
        sys.exit("no free port pairs")
    p = random.randint(20000, 45000)
    if p in out or p + 10000 in out or p - 10000 in out:
        continue
    if free(p) and free(p + 10000):
        out.append(p)
print(" ".join(map(str, out)))
PY
}

cli() { # port args...
  local port=$1; shift
  "$REDIS_CLI_BIN" -h 127.0.0.1 -p "$port" "$@"
}

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND every 100 ms.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1 # polling a condition with a deadline
  done
}

node_ok() { # port: the node answers, sees the whole cluster and its state is ok
  local info
  info=$(cli "$1" cluster info) || return 1
  grep -q '^cluster_state:ok' <<<"$info" &&
    grep -q '^cluster_slots_ok:16384' <<<"$info" &&
    grep -q "^cluster_known_nodes:$NODES" <<<"$info"
}

replica_synced() { # port: a replica whose link to its master is up
  cli "$1" info replication | grep -q '^master_link_status:up'
}

start() {
  local dir=$1
  need_bins
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local ports
  read -r -a ports <<<"$(free_ports $NODES)"
  local addrs=()
  for p in "${ports[@]}"; do
    mkdir -p "$dir/$p"
    cat >"$dir/$p/redis.conf" <<CONF
port $p
bind 127.0.0.1
dir $dir/$p
daemonize yes
pidfile $dir/$p/redis.pid
logfile $dir/$p/redis.log
save ""
appendonly no
cluster-enabled yes
cluster-config-file nodes.conf
cluster-node-timeout 2000
cluster-replica-validity-factor 0
CONF
    "$REDIS_SERVER_BIN" "$dir/$p/redis.conf"
    addrs+=("127.0.0.1:$p")
  done
  for p in "${ports[@]}"; do
    wait_for "node $p" 10 cli "$p" ping || die "node $p did not start: $(cat "$dir/$p/redis.log")"
  done
  "$REDIS_CLI_BIN" --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 ||
    die "cluster create failed: $(cat "$dir/create.log")"
  for p in "${ports[@]}"; do
    wait_for "cluster state on $p" 30 node_ok "$p" || die "node $p: $(cli "$p" cluster info | tr -d '\r' | head -3)"
  done
  for p in "${ports[@]}"; do
    if cli "$p" role | head -1 | grep -q slave; then
      wait_for "replica $p in sync" 30 replica_synced "$p" || die "replica $p did not sync"
    fi
  done
  local joined
  joined=$(IFS=,; echo "${addrs[*]}")
  echo "$joined" >"$dir/addrs"
  echo "REDIS_CLUSTER_ADDRS=$joined"
}

stop() {
  local dir=$1 pids=() pid
  [[ -d "$dir" ]] || return 0
  # Read every pid first: a node removes its pidfile when it exits.
  for pidfile in "$dir"/*/redis.pid; do
    pid=$(cat "$pidfile" 2>/dev/null) || continue
    [[ -n "$pid" ]] && pids+=("$pid")
  done
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    local deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null; do
      if ((SECONDS >= deadline)); then kill -9 "$pid" 2>/dev/null || true; break; fi
      sleep 0.1 # polling a condition with a deadline
    done
  done
}

case "${1:-}" in
start)
  [[ $# -eq 2 ]] || die "usage: $0 start DIR"
  start "$2"
  ;;
stop)
  [[ $# -eq 2 ]] || die "usage: $0 stop DIR"
  stop "$2"
  ;;
run)
  shift
  [[ $# -gt 0 ]] || die "usage: $0 run CMD..."
  dir=$(mktemp -d)
  trap 'stop "$dir" || true; rm -rf "$dir"' EXIT
  line=$(start "$dir")
  export "${line?}"
  echo "redis-cluster: $REDIS_CLUSTER_ADDRS" >&2
  "$@"
  ;;
*)
  die "usage: $0 start DIR | stop DIR | run CMD..."
  ;;
esac

# Shared by the bench scripts: start and stop local clusters on loopback.
# Every process started here is recorded by PID and stopped by PID at exit.
#
#   . bench/lib.sh
#   bench_init                      # a scratch directory, the exit trap
#   start_bulwark NAME N BASEPORT   # N members; sets NAME_ENDPOINTS, NAME_PIDS
#   start_etcd NAME N BASEPORT
#   start_redis NAME PORT           # appendfsync always; sets NAME_PID
#   median < numbers

BENCH_PIDS=()

bench_init() {
  BENCH_DIR=$(mktemp -d -p "${TMPDIR:-/var/tmp}" bw-bench-XXXXXX)
  trap bench_cleanup EXIT
}

bench_cleanup() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${BENCH_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$BENCH_DIR"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Waits until every endpoint in the comma-separated list answers a linearizable read.
wait_ready() {
  local eps=$1 i
  for i in $(seq 1 100); do
    if ETCDCTL_API=3 etcdctl --endpoints "$eps" --command-timeout=2s get bench-ready >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  echo "cluster at $eps did not become ready" >&2
  return 1
}

# cluster_spec NAME N BASEPORT: sets CLUSTER (etcd's --initial-cluster) and EPS.
cluster_spec() {
  local name=$1 n=$2 base=$3 i
  CLUSTER="" EPS=""
  for i in $(seq 1 "$n"); do
    CLUSTER+="${CLUSTER:+,}$name-$i=http://127.0.0.1:$((base + 2 * i + 1))"
    EPS+="${EPS:+,}127.0.0.1:$((base + 2 * i))"
  done
}

# start_members NAME N BASEPORT COMMAND...: members NAME-1..N of one cluster,
# client port BASEPORT+2i and peer port +1, started as COMMAND with etcd's
# flags (bulwark takes the same ones); sets NAME_ENDPOINTS and NAME_PIDS.
start_members() {
  local name=$1 n=$2 base=$3 i cluster eps
  shift 3
  cluster_spec "$name" "$n" "$base"
  cluster=$CLUSTER eps=$EPS
  for i in $(seq 1 "$n"); do
    "$@" --name "$name-$i" --data-dir "$BENCH_DIR/$name-$i" \
      --listen-client-urls "http://127.0.0.1:$((base + 2 * i))" \
      --advertise-client-urls "http://127.0.0.1:$((base + 2 * i))" \
      --listen-peer-urls "http://127.0.0.1:$((base + 2 * i + 1))" \
      --initial-advertise-peer-urls "http://127.0.0.1:$((base + 2 * i + 1))" \
      --initial-cluster "$cluster" --initial-cluster-token "$name" \
      >"$BENCH_DIR/$name-$i.log" 2>&1 &
    BENCH_PIDS+=($!)
    eval "${name}_PIDS+=($!)"
  done
  eval "${name}_ENDPOINTS=$eps"
  wait_ready "$eps"
}

start_bulwark() { start_members "$1" "$2" "$3" "$BULWARK" start; }
start_etcd() { start_members "$1" "$2" "$3" etcd --initial-cluster-state new --log-level error; }

start_redis() {
  local name=$1 port=$2 i
  mkdir -p "$BENCH_DIR/$name"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$BENCH_DIR/$name" --appendonly yes \
    --appendfsync always --save '' >"$BENCH_DIR/$name.log" 2>&1 &
  BENCH_PIDS+=($!)
  eval "${name}_PID=$!"
  for i in $(seq 1 50); do
    if redis-cli -p "$port" ping >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "redis on port $port did not start" >&2
  return 1
}

# Sums user+system CPU seconds of the given PIDs (from /proc, clock ticks).
cpu_seconds() {
  local pid total=0 hz
  hz=$(getconf CLK_TCK)
  for pid in "$@"; do
    if [ -r "/proc/$pid/stat" ]; then
      total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
    fi
  done
  awk -v t="$total" -v hz="$hz" 'BEGIN { printf "%.2f\n", t / hz }'
}

# json_field FIELD < json-line  (numbers only; latency fields as latency_ms.p99)
json_field() {
  python3 -c 'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); 
v=d
for p in sys.argv[1].split("."): v=v[p]
print(v)' "$1"
}

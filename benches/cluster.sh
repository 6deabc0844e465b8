#!/usr/bin/env bash
# The local engine against a loopback Ballista cluster on the same data: wall time and
# peak RSS of `custvalue segments` both ways, and a byte comparison of the two segment
# files. Needs a build with the distributed feature:
#
#   cargo build --release --features distributed
#   ROWS=10000000 FILES=4 EXECUTORS=2 PARTITIONS=4 REPS=3 bash benches/cluster.sh
#
# Peak RSS is given for the client process and for each cluster process (scheduler,
# executors: the largest resident size seen while the job ran).
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS="${ROWS:-1000000}"
FILES="${FILES:-4}"
EXECUTORS="${EXECUTORS:-2}"
PARTITIONS="${PARTITIONS:-4}"
REPS="${REPS:-3}"
CV="${CV:-${CARGO_TARGET_DIR:-target}/release/custvalue}"
WORK="${WORK:-$(mktemp -d /tmp/custvalue-cluster-bench.XXXXXX)}"
PORT="${PORT:-50150}"

"$CV" cluster --help >/dev/null 2>&1 || {
  echo "$CV has no cluster subcommand: cargo build --release --features distributed" >&2
  exit 2
}

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

mkdir -p "$WORK/lake"
per_file=$((ROWS / FILES))
for k in $(seq 1 "$FILES"); do
  f="$WORK/lake/part-$k.parquet"
  [ -f "$f" ] || "$CV" synth --rows "$per_file" --seed "$k" --out "$f" --quiet
done

"$CV" cluster scheduler --port "$PORT" >"$WORK/scheduler.log" 2>&1 &
pids+=($!)
sleep 1
for k in $(seq 1 "$EXECUTORS"); do
  "$CV" cluster executor --scheduler "localhost:$PORT" --port $((PORT + 2 * k)) \
    --grpc-port $((PORT + 2 * k + 1)) --concurrency 2 --work-dir "$WORK" \
    >"$WORK/executor-$k.log" 2>&1 &
  pids+=($!)
done
sleep 3

# Largest RSS (KiB) of the cluster processes while a command runs.
watch_rss() {
  local peak=0
  while kill -0 "$1" 2>/dev/null; do
    for p in "${pids[@]}"; do
      r=$(awk '/VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
      [ "${r:-0}" -gt "$peak" ] && peak=$r
    done
    sleep 0.2
  done
  echo "$peak"
}

run() { # name, extra args...
  local name=$1; shift
  for r in $(seq 1 "$REPS"); do
    /usr/bin/time -v "$CV" segments --input "$WORK/lake/*.parquet" --out "$WORK/$name.parquet" \
      --quiet "$@" 2>"$WORK/$name.time" &
    local job=$!
    local cluster_peak
    cluster_peak=$(watch_rss "$job")
    wait "$job"
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$WORK/$name.time")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/$name.time")
    printf '| %s | %s | %s | %s | %s |\n' "$name" "$r" "$wall" "$((rss / 1024))" "$((cluster_peak / 1024))"
  done
}

echo "rows: $ROWS in $FILES files; executors: $EXECUTORS (2 slots each); partitions: $PARTITIONS"
echo "| engine | run | wall (m:s) | client peak RSS MiB | largest cluster process RSS MiB |"
echo "|---|---:|---:|---:|---:|"
run local
run ballista --engine ballista --scheduler "df://localhost:$PORT" --cluster-partitions "$PARTITIONS"
if cmp -s "$WORK/local.parquet" "$WORK/ballista.parquet"; then
  echo "segment files identical (cmp)"
else
  echo "segment files DIFFER" >&2
  exit 1
fi

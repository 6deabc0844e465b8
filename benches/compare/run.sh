#!/usr/bin/env bash
# End-to-end benchmark and correctness check: custvalue vs a DuckDB oracle vs polars.
# See README.md beside this file. Variables (all optional):
#   SIZES="1000000 10000000"  rows to synthesise (custvalue synth --seed 1), or paths of
#                             existing .csv/.parquet inputs (relative to the repo root)
#   REPS=3                    runs per engine; the median wall time is reported
#   THREADS="1 2"             thread counts (custvalue --threads, duckdb SET threads,
#                             POLARS_MAX_THREADS); default: the number of cores
#   ENGINES="custvalue duckdb polars"
#   CUSTVALUE=target/release/custvalue   (relative to the repo root)
#   WORK=benches/compare/.work           data, outputs and logs
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

SIZES=${SIZES:-1000000}
REPS=${REPS:-3}
THREADS=${THREADS:-$(nproc)}
ENGINES=${ENGINES:-custvalue duckdb polars}
CUSTVALUE=${CUSTVALUE:-target/release/custvalue}
WORK=${WORK:-$HERE/.work}
VENV=$HERE/.venv
PY=$VENV/bin/python
TIME=/usr/bin/time

case "$CUSTVALUE" in /*) ;; *) CUSTVALUE="$ROOT/$CUSTVALUE" ;; esac
[[ -x $TIME ]] || { echo "run.sh: $TIME is missing (apt-get install time)" >&2; exit 2; }

# --- venv ---------------------------------------------------------------------------
if ! "$PY" -c 'import duckdb, polars' 2>/dev/null; then
    echo "run.sh: creating $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    "$VENV/bin/pip" install --quiet duckdb polars
fi
"$PY" -c 'import duckdb, polars; print("duckdb", duckdb.__version__, "polars", polars.__version__)' >&2

needs_custvalue=false
for e in $ENGINES; do [[ $e == custvalue ]] && needs_custvalue=true; done
for s in $SIZES; do [[ $s =~ ^[0-9]+$ ]] && needs_custvalue=true; done
if $needs_custvalue && [[ ! -x $CUSTVALUE ]]; then
    echo "run.sh: $CUSTVALUE not found; build it (cargo build --release) or set CUSTVALUE" >&2
    exit 2
fi

mkdir -p "$WORK/data" "$WORK/out" "$WORK/log"
RESULTS=$WORK/results.tsv
: >"$RESULTS"
FAILED=()

# run_timed LOG CMD... : runs CMD under /usr/bin/time -v, appends "wall_s rss_kib" to LOG.
run_timed() {
    local log=$1; shift
    local tv start end
    tv=$(mktemp)
    start=$(date +%s%N)
    if ! "$TIME" -v -o "$tv" "$@" >>"$log.stdout" 2>>"$log.stderr"; then
        echo "run.sh: command failed: $*  (see $log.stderr)" >&2
        cat "$tv" >&2; rm -f "$tv"; return 1
    fi
    end=$(date +%s%N)
    local rss
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tv")
    rm -f "$tv"
    echo "$(( (end - start) / 1000 )) $rss"   # microseconds, KiB
}

# One whole job of one engine; prints "wall_us peak_rss_kib".
run_engine() {
    local engine=$1 input=$2 out=$3 threads=$4 log=$5
    rm -rf "$out"; mkdir -p "$out"
    case $engine in
        custvalue)
            # The whole job in one process: `custvalue run` writes the segment file, both
            # decile tables and the profit figures into a dated directory.
            printf '[input]\nfiles = ["%s"]\n[run]\noutput_dir = "%s"\nsegments_format = "csv"\nreport = false\n' \
                "$input" "$out/run" > "$out/job.toml"
            run_timed "$log" "$CUSTVALUE" --threads "$threads" -q run --config "$out/job.toml"
            local dir="$out/run/latest"
            cp "$dir/segments.csv" "$out/segments.csv"
            cp "$dir/money_deciles.csv" "$out/money.csv"
            cp "$dir/purchase_deciles.csv" "$out/purchase.csv"
            cp "$dir/profit.json" "$out/profit.json"
            ;;
        duckdb)
            run_timed "$log" "$PY" "$HERE/oracle.py" "$input" --out "$out" --threads "$threads"
            ;;
        polars)
            run_timed "$log" env POLARS_MAX_THREADS="$threads" "$PY" "$HERE/polars_job.py" "$input" \
                --out "$out" --threads "$threads"
            ;;
        *) echo "run.sh: unknown engine $engine" >&2; return 2 ;;
    esac
}

for size in $SIZES; do
    if [[ $size =~ ^[0-9]+$ ]]; then
        input=$WORK/data/tx_$size.parquet
        if [[ ! -s $input ]]; then
            echo "run.sh: synthesising $size rows -> $input" >&2
            "$CUSTVALUE" -q synth --rows "$size" --seed 1 --out "$input"
        fi
        label=$size
    else
        input=$(realpath "$size")
        label=$(basename "$size")
    fi
    rows=$("$PY" - "$input" <<'EOF'
import sys, duckdb
p = sys.argv[1]
src = f"read_parquet('{p}')" if p.lower().endswith((".parquet", ".pq")) else f"read_csv('{p}', header=true, all_varchar=true)"
print(duckdb.sql(f"SELECT count(*) FROM {src}").fetchall()[0][0])
EOF
)
    for threads in $THREADS; do
        for engine in $ENGINES; do
            out=$WORK/out/$label/t$threads/$engine
            log=$WORK/log/$label.t$threads.$engine
            : >"$log.stdout"; : >"$log.stderr"
            walls=(); rss_max=0
            for ((r = 1; r <= REPS; r++)); do
                res=$(run_engine "$engine" "$input" "$out" "$threads" "$log") || {
                    echo "run.sh: $engine failed on $label (threads=$threads)" >&2; exit 1; }
                read -r w k <<<"$res"
                walls+=("$w"); (( k > rss_max )) && rss_max=$k
                echo "run.sh: $label threads=$threads $engine run $r: $(awk -v w="$w" 'BEGIN{printf "%.3f", w/1e6}') s, $((k / 1024)) MiB" >&2
            done
            median=$(printf '%s\n' "${walls[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$engine" "$threads" "$median" "$rss_max" "$rows" >>"$RESULTS"
        done
        # Correctness: every engine's outputs against the oracle's (same size and threads).
        oracle_out=$WORK/out/$label/t$threads/oracle
        "$PY" "$HERE/oracle.py" "$input" --out "$oracle_out" --threads "$threads" 2>/dev/null
        cmp_args=()
        for engine in $ENGINES; do
            [[ $engine == duckdb ]] && continue   # the oracle itself
            cmp_args+=(--compare "$WORK/out/$label/t$threads/$engine")
        done
        if ((${#cmp_args[@]})); then
            if ! "$PY" "$HERE/oracle.py" "$input" --out "$oracle_out" --no-run "${cmp_args[@]}"; then
                FAILED+=("$label threads=$threads")
            fi
        fi
    done
done

echo
echo "| size | engine | threads | median wall s | peak RSS MiB | rows/s |"
echo "|---:|---|---:|---:|---:|---:|"
awk -F'\t' '{ printf "| %s | %s | %s | %.3f | %.0f | %.0f |\n", $1, $2, $3, $4/1e6, $5/1024, $6/($4/1e6) }' "$RESULTS"
echo
echo "REPS=$REPS; wall = median of REPS whole-job runs (custvalue: one 'custvalue run' process);"
echo "peak RSS = the largest process over all runs."

if ((${#FAILED[@]})); then
    echo "MISMATCH against the oracle: ${FAILED[*]}" >&2
    exit 1
fi
echo "All engines agree with the DuckDB oracle."

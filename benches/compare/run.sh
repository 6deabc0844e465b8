#!/usr/bin/env bash
# End-to-end benchmark and correctness check: custvalue vs a DuckDB oracle vs polars,
# on the same lines in several layouts (line orders) and formats.
# See README.md beside this file. Variables (all optional):
#   SIZES="1000000 10000000"  rows to synthesise (custvalue synth --seed 1), or paths of
#                             existing .csv/.parquet inputs (relative to the repo root;
#                             run as given, LAYOUTS and FORMATS do not apply to them)
#   LAYOUTS="grouped time shuffled"   line orders of each synthesised size: grouped by
#                             customer (as synth writes them), ORDER BY ts, a seeded shuffle
#   FORMATS="parquet"         input formats of each synthesised size: parquet and/or csv
#   REPS=3                    runs per engine, in interleaved rounds; the median wall time
#                             is reported
#   THREADS="1 2"             thread counts (custvalue --threads, duckdb SET threads,
#                             POLARS_MAX_THREADS); default: the number of cores
#   ENGINES="custvalue duckdb polars"   (also: python, the custvalue package of python/
#                             called from Python, installed into the venv on first use)
#   CUSTVALUE=target/release/custvalue   (relative to the repo root)
#   WORK=benches/compare/.work           data (cached by name), outputs and logs
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

SIZES=${SIZES:-1000000}
LAYOUTS=${LAYOUTS:-grouped time shuffled}
FORMATS=${FORMATS:-parquet}
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
for l in $LAYOUTS; do
    case $l in grouped|time|shuffled) ;; *) echo "run.sh: unknown layout $l (grouped, time, shuffled)" >&2; exit 2 ;; esac
done
for f in $FORMATS; do
    case $f in parquet|csv) ;; *) echo "run.sh: unknown format $f (parquet, csv)" >&2; exit 2 ;; esac
done
for e in $ENGINES; do
    case $e in custvalue|duckdb|polars|python) ;; *) echo "run.sh: unknown engine $e" >&2; exit 2 ;; esac
done
[[ $REPS =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: REPS must be a positive integer" >&2; exit 2; }

# --- venv ---------------------------------------------------------------------------
if ! "$PY" -c 'import duckdb, polars' 2>/dev/null; then
    echo "run.sh: creating $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    "$VENV/bin/pip" install --quiet duckdb polars
fi
"$PY" -c 'import duckdb, polars; print("duckdb", duckdb.__version__, "polars", polars.__version__)' >&2
if [[ " $ENGINES " == *" python "* ]] && ! "$PY" -c 'import custvalue' 2>/dev/null; then
    echo "run.sh: building the custvalue Python package into $VENV (pip install ./python)" >&2
    "$VENV/bin/pip" install --quiet "$ROOT/python"
fi

needs_custvalue=false
for e in $ENGINES; do [[ $e == custvalue ]] && needs_custvalue=true; done
for s in $SIZES; do [[ $s =~ ^[0-9]+$ ]] && needs_custvalue=true; done
if $needs_custvalue && [[ ! -x $CUSTVALUE ]]; then
    echo "run.sh: $CUSTVALUE not found; build it (cargo build --release) or set CUSTVALUE" >&2
    exit 2
fi

mkdir -p "$WORK/data" "$WORK/out" "$WORK/log"
RESULTS=$WORK/results.tsv
# size layout format engine threads median_wall_us peak_rss_kib rows
: >"$RESULTS"
FAILED=()

# run_timed LOG CMD... : runs CMD under /usr/bin/time -v, prints "wall_us rss_kib".
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
    # Every engine's run starts with its input in the page cache: this machine evicts files
    # it has not read for a while, and the engine that runs first after other work would
    # otherwise also pay for reading the disk.
    local f
    for f in $input; do [[ -f $f ]] && cat "$f" >/dev/null; done
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
        python)
            run_timed "$log" "$PY" "$HERE/custvalue_py_job.py" "$input" --out "$out" --threads "$threads"
            ;;
        *) echo "run.sh: unknown engine $engine" >&2; return 2 ;;
    esac
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
secs() { awk -v w="$1" 'BEGIN{printf "%.3f", w/1e6}'; }

# data_file SIZE LAYOUT FORMAT: the cached input, made on first use. The synth Parquet file
# (grouped by customer) is generated once per size; every other layout and format is
# rewritten from it by layouts.py (DuckDB), so all inputs of a size hold the same lines.
data_file() {
    local size=$1 layout=$2 format=$3
    local base=$WORK/data/tx-$size-grouped.parquet
    if [[ ! -s $base ]]; then
        local old=$WORK/data/tx_$size.parquet      # the name run.sh used before layouts
        if [[ -s $old ]]; then
            ln -f "$old" "$base"
        else
            echo "run.sh: synthesising $size rows -> $base" >&2
            "$CUSTVALUE" -q synth --rows "$size" --seed 1 --out "$base.tmp.parquet" >&2
            mv "$base.tmp.parquet" "$base"
        fi
    fi
    local f=$WORK/data/tx-$size-$layout.$format
    if [[ ! -s $f ]]; then
        echo "run.sh: writing $f" >&2
        "$PY" "$HERE/layouts.py" "$base" --layout "$layout" --out "$f" --seed 1 >&2
    fi
    echo "$f"
}

count_rows() {
    "$PY" - "$1" <<'PYEOF'
import sys, duckdb
p = sys.argv[1]
src = f"read_parquet('{p}')" if p.lower().endswith((".parquet", ".pq")) else f"read_csv('{p}', header=true, all_varchar=true)"
print(duckdb.sql(f"SELECT count(*) FROM {src}").fetchall()[0][0])
PYEOF
}

# bench LABEL LAYOUT FORMAT INPUT ROWS: every engine on one input at every thread count,
# REPS interleaved rounds, then the agreement checks.
bench() {
    local label=$1 layout=$2 format=$3 input=$4 rows=$5
    local threads engine r res w k tag out log oracle_out
    for threads in $THREADS; do
        tag=$label/$layout-$format/t$threads
        declare -A walls=() rss_max=()
        for engine in $ENGINES; do
            log=$WORK/log/$label.$layout.$format.t$threads.$engine
            : >"$log.stdout"; : >"$log.stderr"
            walls[$engine]=""; rss_max[$engine]=0
        done
        for ((r = 1; r <= REPS; r++)); do
            for engine in $ENGINES; do
                out=$WORK/out/$tag/$engine
                log=$WORK/log/$label.$layout.$format.t$threads.$engine
                res=$(run_engine "$engine" "$input" "$out" "$threads" "$log") || {
                    echo "run.sh: $engine failed on $label $layout $format (threads=$threads)" >&2; exit 1; }
                read -r w k <<<"$res"
                walls[$engine]+=" $w"; (( k > rss_max[$engine] )) && rss_max[$engine]=$k
                echo "run.sh: $label $layout $format threads=$threads $engine run $r: $(secs "$w") s, $((k / 1024)) MiB" >&2
            done
        done
        for engine in $ENGINES; do
            # shellcheck disable=SC2086
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$layout" "$format" "$engine" "$threads" \
                "$(median ${walls[$engine]})" "${rss_max[$engine]}" "$rows" >>"$RESULTS"
        done
        unset walls rss_max

        # Correctness: every engine's outputs against the oracle's on the same input. The
        # duckdb engine *is* oracle.py on this input and thread count, so its last run's
        # outputs serve as the oracle's; without it the oracle runs here.
        if [[ " $ENGINES " == *" duckdb "* ]]; then
            oracle_out=$WORK/out/$tag/duckdb
        else
            oracle_out=$WORK/out/$tag/oracle
            "$PY" "$HERE/oracle.py" "$input" --out "$oracle_out" --threads "$threads" 2>/dev/null
        fi
        local cmp_args=()
        for engine in $ENGINES; do
            [[ $engine == duckdb ]] && continue   # the oracle itself
            cmp_args+=(--compare "$WORK/out/$tag/$engine")
        done
        if ((${#cmp_args[@]})); then
            if ! "$PY" "$HERE/oracle.py" "$input" --out "$oracle_out" --no-run "${cmp_args[@]}"; then
                FAILED+=("$label $layout $format threads=$threads: against the oracle")
            fi
        fi

        # custvalue's outputs must not depend on the layout, format or thread count: its four
        # output files (segment file first) of every run of a size are compared byte for byte
        # with those of the first run of the size.
        if [[ " $ENGINES " == *" custvalue "* ]]; then
            local mine=$WORK/out/$tag/custvalue ref=$WORK/out/$label/custvalue-ref f differ=()
            if [[ -z ${CV_REF[$label]:-} ]]; then
                rm -rf "$ref"; mkdir -p "$ref"
                cp "$mine"/{segments.csv,money.csv,purchase.csv,profit.json} "$ref/"
                CV_REF[$label]="$layout $format threads=$threads"
            else
                for f in segments.csv money.csv purchase.csv profit.json; do
                    cmp -s "$mine/$f" "$ref/$f" || differ+=("$f")
                done
                if ((${#differ[@]})); then
                    echo "FAIL [$tag] custvalue ${differ[*]} differ from ${CV_REF[$label]}"
                    FAILED+=("$label $layout $format threads=$threads: custvalue ${differ[*]} differ from ${CV_REF[$label]}")
                else
                    echo "OK   [$tag] custvalue outputs byte-identical to ${CV_REF[$label]}"
                fi
            fi
        fi
    done
}

declare -A CV_REF=()
for size in $SIZES; do
    if [[ $size =~ ^[0-9]+$ ]]; then
        label=$size
        rows=""
        for layout in $LAYOUTS; do
            for format in $FORMATS; do
                input=$(data_file "$size" "$layout" "$format")
                [[ -n $rows ]] || rows=$(count_rows "$WORK/data/tx-$size-grouped.parquet")
                bench "$label" "$layout" "$format" "$input" "$rows"
            done
        done
    else
        input=$(realpath "$size")
        label=$(basename "$size")
        format=${label##*.}; format=${format,,}
        bench "$label" given "$format" "$input" "$(count_rows "$input")"
    fi
done

echo
echo "| size | layout | format | engine | threads | median wall s | peak RSS MiB | rows/s |"
echo "|---:|---|---|---|---:|---:|---:|---:|"
awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %.3f | %.0f | %.0f |\n", $1, $2, $3, $4, $5, $6/1e6, $7/1024, $8/($6/1e6) }' "$RESULTS"

# Side by side: one row per size, layout, format and threads; cv = custvalue. "cv/grouped"
# is custvalue's time on this layout over its time on the grouped layout (same size,
# format and threads).
echo
echo "| size | layout | format | threads | custvalue s | MiB | duckdb s | MiB | polars s | MiB | cv/duckdb time | mem | cv/polars time | mem | cv/grouped time |"
echo "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' '
    function s(x)    { return x == "" ? "-" : sprintf("%.3f", x / 1e6) }
    function m(x)    { return x == "" ? "-" : sprintf("%.0f", x / 1024) }
    function r(a, b) { return (a == "" || b == "" || b == 0) ? "-" : sprintf("%.2f", a / b) }
    {
        key = $1 SUBSEP $2 SUBSEP $3 SUBSEP $5
        if (!(key in seen)) { seen[key] = 1; order[++n] = key }
        wall[key, $4] = $6; rss[key, $4] = $7
        if ($2 == "grouped" && $4 == "custvalue") grouped[$1, $3, $5] = $6
    }
    END {
        for (i = 1; i <= n; i++) {
            k = order[i]; split(k, f, SUBSEP)
            cv = wall[k, "custvalue"]; dd = wall[k, "duckdb"]; pl = wall[k, "polars"]
            cm = rss[k, "custvalue"]; dm = rss[k, "duckdb"]; pm = rss[k, "polars"]
            printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
                f[1], f[2], f[3], f[4], s(cv), m(cm), s(dd), m(dm), s(pl), m(pm),
                r(cv, dd), r(cm, dm), r(cv, pl), r(cm, pm), r(cv, grouped[f[1], f[3], f[4]])
        }
    }' "$RESULTS"
echo
echo "REPS=$REPS; wall = median of REPS whole-job runs, engines interleaved round by round"
echo "(custvalue: one 'custvalue run' process); peak RSS = the largest process over all runs."
echo "Ratios below 1 mean custvalue is faster / smaller. Results: $RESULTS"

if ((${#FAILED[@]})); then
    printf 'MISMATCH: %s\n' "${FAILED[@]}" >&2
    exit 1
fi
echo "All engines agree with the DuckDB oracle; custvalue's outputs are byte-identical across layouts, formats and threads."

#!/usr/bin/env bash
# custvalue beside lifetimes 0.11.3 on a generated model summary: the purchase model and
# Gamma-Gamma fitted, and for every customer expected purchases over 39 weeks, P(alive)
# and 12-month CLV. See README.md beside this file. Variables (all optional):
#   N=1000000          customers in the generated summary (generate.py, seed 1)
#   MODELS="bgnbd"     any of bgnbd paretonbd mbgnbd
#   REPS=5             custvalue runs per model (the median is reported)
#   LIFETIMES_REPS=1   lifetimes runs per model (the fastest stage total is kept);
#                      0 reuses the results of an earlier run in .work
#   OUT=arrow          custvalue's per-customer output: arrow, parquet or csv
#   THREADS=           custvalue --threads (default: all cores)
#   CUSTVALUE=         the binary [default: $CARGO_TARGET_DIR/release/custvalue or
#                      target/release/custvalue]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
N=${N:-1000000}
MODELS=${MODELS:-bgnbd}
REPS=${REPS:-5}
LIFETIMES_REPS=${LIFETIMES_REPS:-1}
OUT=${OUT:-arrow}
WORK=$HERE/.work
VENV=$HERE/.venv
PY=$VENV/bin/python
if [[ -z ${CUSTVALUE:-} ]]; then
    CUSTVALUE=${CARGO_TARGET_DIR:-$ROOT/target}/release/custvalue
fi
[[ -x $CUSTVALUE ]] || { echo "run.sh: $CUSTVALUE not found; cargo build --release first" >&2; exit 2; }

if ! "$PY" -c 'import lifetimes' 2>/dev/null; then
    echo "run.sh: creating $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    # lifetimes' fitters run on current numpy, pandas and scipy (only its data
    # generator needs pandas < 2, and it is not used here).
    "$VENV/bin/pip" install --quiet lifetimes==0.11.3 numpy pandas scipy
fi
"$PY" -c 'import lifetimes, numpy, pandas, scipy; print("lifetimes", lifetimes.__version__, "numpy", numpy.__version__, "pandas", pandas.__version__, "scipy", scipy.__version__)' 2>/dev/null >&2

mkdir -p "$WORK"
SUMMARY=$WORK/summary_$N.csv
[[ -s $SUMMARY ]] || "$PY" "$HERE/generate.py" "$N" "$SUMMARY" 1

threads=()
[[ -n ${THREADS:-} ]] && threads=(--threads "$THREADS")
# lifetimes' CLV: 12 monthly steps at 1% a month, i.e. 1.01^12 − 1 a year.
DISCOUNT=$("$PY" -c 'print(1.01 ** 12 - 1)')
status=0
for model in $MODELS; do
    ((LIFETIMES_REPS > 0)) && rm -f "$WORK"/lifetimes_"$model".*.json
    for ((i = 0; i < LIFETIMES_REPS; i++)); do
        "$PY" -W ignore "$HERE/lifetimes_run.py" "$SUMMARY" "$model" "$WORK/lifetimes_$model.$i.json" >/dev/null
    done
    best=$("$PY" -c 'import json, sys; print(min(sys.argv[1:], key=lambda p: json.load(open(p))["seconds"]["stages"]))' \
        "$WORK"/lifetimes_"$model".*.json)
    times=()
    for ((i = 0; i < REPS; i++)); do
        start=$(date +%s%N)
        "$CUSTVALUE" -q "${threads[@]}" ltv --summary "$SUMMARY" --time-unit W --model "$model" \
            --horizon 52 --purchases-horizon 39 --discount "$DISCOUNT" \
            --json -o "$WORK/custvalue_$model.$OUT" >"$WORK/custvalue_$model.json"
        end=$(date +%s%N)
        times+=("$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')")
    done
    "$PY" "$HERE/compare.py" "$best" "$WORK/custvalue_$model.json" "${times[@]}" || status=1
done
exit $status

#!/usr/bin/env python3
"""Independent DuckDB oracle for custvalue (job.sql, written from /work/shared/JOB.md).

Run the oracle on an input file (CSV or Parquet) and write its outputs to OUT:
    oracle.py INPUT --out OUT [--threads N]
        OUT/segments.csv  the segment file (same columns as `custvalue segments`)
        OUT/money.csv     the money-decile table (`custvalue deciles --out`)
        OUT/purchase.csv  the purchase-decile table (`custvalue deciles --purchase-out`)
        OUT/profit.json   the profit figures (`custvalue profit --json`)

Compare other engines' outputs (same four file names) with the oracle's:
    oracle.py INPUT --out OUT --compare DIR [--compare DIR2 ...] [--no-run]
--no-run reuses OUT from an earlier run. Exit status 1 on any mismatch.

Comparison rules: money in integer cents (round half away from zero of value x 100, from
the printed decimal text), integers, dates, strings and booleans exactly, shares and
other ratios to 1e-12 relative. Every row and column is checked; the first mismatches are
printed.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

HERE = Path(__file__).resolve().parent

SEGMENT_COLUMNS = [
    ("customer_id", "str"), ("first_purchase", "str"), ("last_purchase", "str"),
    ("recency_days", "int"), ("tenure_days", "int"), ("frequency", "int"),
    ("monetary", "money"), ("profit", "money"), ("avg_order_value", "money"),
    ("n_categories", "int"), ("r_score", "int"), ("f_score", "int"), ("m_score", "int"),
    ("rfm_cell", "str"), ("rfm_score", "int"), ("segment", "str"), ("decile", "int"),
    ("best_customer", "bool"), ("stage", "str"), ("reactivated", "bool"),
]
MONEY_COLUMNS = [
    ("decile", "int"), ("customers", "int"), ("revenue", "money"), ("revenue_share", "float"),
    ("profit", "money"), ("profit_share", "float"), ("cum_revenue_share", "float"),
    ("cum_profit_share", "float"), ("min_monetary", "money"), ("max_monetary", "money"),
]
PURCHASE_COLUMNS = [
    ("slice", "int"), ("customers", "int"), ("customer_share", "float"), ("revenue", "money"),
]
PROFIT_KEYS = [
    ("customers", "int"), ("total_profit", "money"), ("top20_customers", "int"),
    ("top20_profit", "money"), ("top20_profit_share", "float"), ("bottom30_customers", "int"),
    ("bottom30_profit", "money"), ("profit_without_bottom30", "money"),
    ("whale_peak", "float"), ("whale_peak_customer_share", "float"), ("gini", "float"),
]
REL_TOL = 1e-12
ABS_TOL = 1e-15

# Cents -> exact decimal text ("-12.34"), for the oracle's own CSV files.
MONEY_MACRO = """
CREATE OR REPLACE TEMP MACRO money(c) AS CASE WHEN c IS NULL THEN NULL ELSE
    printf('%s%d.%02d', CASE WHEN c < 0 THEN '-' ELSE '' END, abs(c) // 100, abs(c) % 100) END;
"""


def sql_string(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def source_for(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".parquet") or name.endswith(".pq"):
        return f"read_parquet({sql_string(str(path))})"
    if name.endswith(".csv") or name.endswith(".csv.gz") or name.endswith(".tsv"):
        # all_varchar: ids stay text (leading zeros survive), money keeps its written text.
        return f"read_csv({sql_string(str(path))}, header = true, all_varchar = true)"
    raise SystemExit(f"oracle: unsupported input {path} (want .csv or .parquet)")


def cents_to_json(c):
    # c / 100 as a double prints (shortest round trip) as the exact 2-decimal value
    # for |c| < 2**53, which the comparison parses back as a decimal.
    return None if c is None else int(c) / 100


def run_oracle(inp: Path, out: Path, threads: int | None) -> None:
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute("SET preserve_insertion_order = true")
    sql = (HERE / "job.sql").read_text().replace("{{SOURCE}}", source_for(inp))
    t0 = time.perf_counter()
    con.execute(sql)
    con.execute(MONEY_MACRO)
    seg = out / "segments.csv"
    con.execute(f"""
        COPY (
            SELECT CAST(customer_id AS VARCHAR) AS customer_id, first_purchase, last_purchase,
                   recency_days, tenure_days, frequency,
                   money(monetary_c) AS monetary, money(profit_c) AS profit,
                   money(avg_order_value_c) AS avg_order_value, n_categories,
                   r_score, f_score, m_score, rfm_cell, rfm_score, segment, decile,
                   best_customer, stage, reactivated
            FROM segments ORDER BY segments.customer_id
        ) TO {sql_string(str(seg))} (HEADER, DELIMITER ',')""")
    con.execute(f"""
        COPY (
            SELECT decile, customers, money(revenue_c) AS revenue, revenue_share,
                   money(profit_c) AS profit, profit_share, cum_revenue_share, cum_profit_share,
                   money(min_monetary_c) AS min_monetary, money(max_monetary_c) AS max_monetary
            FROM money_deciles ORDER BY decile
        ) TO {sql_string(str(out / 'money.csv'))} (HEADER, DELIMITER ',')""")
    con.execute(f"""
        COPY (
            SELECT slice, customers, customer_share, money(revenue_c) AS revenue
            FROM purchase_deciles ORDER BY slice NULLS LAST
        ) TO {sql_string(str(out / 'purchase.csv'))} (HEADER, DELIMITER ',')""")
    row = con.execute("SELECT * FROM profit_figures").fetchone()
    cols = [d[0] for d in con.description]
    f = dict(zip(cols, row))
    curve = [r[0] for r in con.execute("SELECT point FROM whale_curve ORDER BY q").fetchall()]
    profit = {
        "customers": int(f["customers"]),
        "total_profit": cents_to_json(f["total_profit_c"]),
        "top20_customers": int(f["top20_customers"]),
        "top20_profit": cents_to_json(f["top20_profit_c"]),
        "top20_profit_share": f["top20_profit_share"],
        "bottom30_customers": int(f["bottom30_customers"]),
        "bottom30_profit": cents_to_json(f["bottom30_profit_c"]),
        "profit_without_bottom30": cents_to_json(f["profit_without_bottom30_c"]),
        "whale_peak": f["whale_peak"],
        "whale_peak_customer_share": (None if f["whale_peak_customer_share"] is None
                                      else float(f["whale_peak_customer_share"])),
        "gini": f["gini"],
        "whale_curve": curve,
    }
    (out / "profit.json").write_text(json.dumps(profit, indent=1) + "\n")
    print(f"oracle: {inp} -> {out} in {time.perf_counter() - t0:.2f} s", file=sys.stderr)


# --------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------

class Mismatches:
    def __init__(self, label: str, limit: int):
        self.label, self.limit, self.count, self.by_what = label, limit, 0, {}

    def add(self, what: str, msg: str) -> None:
        self.count += 1
        self.by_what[what] = self.by_what.get(what, 0) + 1
        if self.count <= self.limit:
            print(f"MISMATCH [{self.label}] {msg}")


def parse(kind: str, v):
    """Normalise one value to a comparable Python value; None for null/empty."""
    if v is None or (isinstance(v, str) and v.strip() == ""):
        return None
    if kind == "str":
        return str(v)
    if kind == "int":
        if isinstance(v, bool):
            raise ValueError(f"not an integer: {v!r}")
        if isinstance(v, int):
            return v
        d = Decimal(str(v))
        if d != d.to_integral_value():
            raise ValueError(f"not an integer: {v!r}")
        return int(d)
    if kind == "money":
        d = v if isinstance(v, Decimal) else Decimal(str(v))
        return int((d * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))  # half away from 0
    if kind == "bool":
        if isinstance(v, bool):
            return v
        s = str(v).strip().lower()
        if s in ("true", "false"):
            return s == "true"
        raise ValueError(f"not a boolean: {v!r}")
    if kind == "float":
        f = float(v)
        if math.isnan(f):
            return None
        return f
    raise AssertionError(kind)


def same(kind: str, a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if kind == "float":
        return abs(a - b) <= max(ABS_TOL, REL_TOL * max(abs(a), abs(b)))
    return a == b


def show(kind: str, raw, val) -> str:
    if kind == "money" and val is not None:
        return f"{raw!r} ({val} cents)"
    return repr(raw)


def read_csv_rows(path: Path):
    with open(path, newline="", encoding="utf-8") as fh:
        r = csv.reader(fh)
        header = next(r)
        return header, list(r)


def compare_table(name: str, columns, key: str, ours: Path, theirs: Path, mm: Mismatches) -> None:
    if not theirs.exists():
        mm.add(name, f"{name}: file {theirs} is missing")
        return
    oh, orows = read_csv_rows(ours)
    th, trows = read_csv_rows(theirs)
    missing = [c for c, _ in columns if c not in th]
    extra = [c for c in th if c not in dict(columns)]
    for c in missing:
        mm.add(f"{name}.{c}", f"{name}: column {c!r} missing from {theirs} (header {th})")
    if extra:
        print(f"note [{mm.label}] {name}: extra columns not checked: {extra}")
    if len(orows) != len(trows):
        mm.add(f"{name}.rows", f"{name}: oracle has {len(orows)} rows, {mm.label} has {len(trows)}")
    oi = {c: oh.index(c) for c, _ in columns}
    ti = {c: th.index(c) for c, _ in columns if c in th}
    for n, (orow, trow) in enumerate(zip(orows, trows), start=1):
        k = orow[oi[key]] if key else str(n)
        for c, kind in columns:
            if c not in ti:
                continue
            oraw, traw = orow[oi[c]], trow[ti[c]]
            try:
                ov = parse(kind, oraw)
                tv = parse(kind, traw)
            except (ValueError, InvalidOperation) as e:
                mm.add(f"{name}.{c}", f"{name} row {n} ({key}={k}) column {c}: unparsable: {e}")
                continue
            if not same(kind, ov, tv):
                mm.add(f"{name}.{c}", f"{name} row {n} ({key}={k!r}) column {c}: "
                       f"oracle {show(kind, oraw, ov)} vs {mm.label} {show(kind, traw, tv)}")


def compare_profit(ours: Path, theirs: Path, mm: Mismatches) -> None:
    if not theirs.exists():
        mm.add("profit", f"profit: file {theirs} is missing")
        return
    o = json.loads(ours.read_text(), parse_float=Decimal)
    try:
        t = json.loads(theirs.read_text(), parse_float=Decimal)
    except json.JSONDecodeError as e:
        mm.add("profit", f"profit: {theirs} is not JSON: {e}")
        return
    for k, kind in PROFIT_KEYS + [("whale_curve", "curve")]:
        if k not in t:
            mm.add(f"profit.{k}", f"profit: key {k!r} missing from {theirs}")
            continue
        if kind == "curve":
            oc, tc = o[k], t[k]
            if oc is None or tc is None:
                if not (oc is None and tc is None):
                    mm.add("profit.whale_curve", f"profit whale_curve: oracle {oc!r} vs {tc!r}")
                continue
            if len(tc) != len(oc):
                mm.add("profit.whale_curve", f"profit whale_curve: {len(tc)} points, want {len(oc)}")
            for q, (a, b) in enumerate(zip(oc, tc)):
                av, bv = parse("float", a), parse("float", b)
                if not same("float", av, bv):
                    mm.add("profit.whale_curve", f"profit whale_curve[{q}]: oracle {a} vs {mm.label} {b}")
            continue
        try:
            ov, tv = parse(kind, o[k]), parse(kind, t[k])
        except (ValueError, InvalidOperation) as e:
            mm.add(f"profit.{k}", f"profit {k}: unparsable: {e}")
            continue
        if not same(kind, ov, tv):
            mm.add(f"profit.{k}", f"profit {k}: oracle {show(kind, o[k], ov)} vs {mm.label} {show(kind, t[k], tv)}")
    extra = [k for k in t if k not in dict(PROFIT_KEYS) and k != "whale_curve"]
    if extra:
        print(f"note [{mm.label}] profit: extra keys not checked: {extra}")


def compare_dir(ours: Path, theirs: Path, files: list[str], limit: int) -> int:
    mm = Mismatches(str(theirs), limit)
    if "segments" in files:
        compare_table("segments", SEGMENT_COLUMNS, "customer_id",
                      ours / "segments.csv", theirs / "segments.csv", mm)
    if "money" in files:
        compare_table("money", MONEY_COLUMNS, "decile", ours / "money.csv", theirs / "money.csv", mm)
    if "purchase" in files:
        compare_table("purchase", PURCHASE_COLUMNS, "slice",
                      ours / "purchase.csv", theirs / "purchase.csv", mm)
    if "profit" in files:
        compare_profit(ours / "profit.json", theirs / "profit.json", mm)
    if mm.count:
        print(f"FAIL [{mm.label}] {mm.count} mismatches: "
              + ", ".join(f"{k}={v}" for k, v in sorted(mm.by_what.items())))
    else:
        print(f"OK   [{mm.label}] agrees with the oracle on {', '.join(files)}")
    return mm.count


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", type=Path, help="transactions, .csv or .parquet")
    ap.add_argument("--out", type=Path, required=True, help="directory for the oracle's outputs")
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    ap.add_argument("--compare", type=Path, action="append", default=[],
                    help="directory with another engine's outputs (repeatable)")
    ap.add_argument("--files", default="segments,money,purchase,profit",
                    help="which outputs to compare (comma list)")
    ap.add_argument("--no-run", action="store_true", help="reuse the oracle outputs in --out")
    ap.add_argument("--max-report", type=int, default=20, help="mismatches printed per directory")
    a = ap.parse_args()
    if not a.no_run:
        run_oracle(a.input.resolve(), a.out, a.threads)
    files = [f.strip() for f in a.files.split(",") if f.strip()]
    bad = 0
    for d in a.compare:
        bad += compare_dir(a.out, d, files, a.max_report)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

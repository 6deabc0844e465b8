#!/usr/bin/env python3
"""The custvalue job called from Python (the `custvalue` package in python/), for the
speed comparison: one `custvalue.job` call on the input path, the frames written as the
other engines write them.

    custvalue_py_job.py INPUT --out OUT [--threads N]

writes OUT/segments.csv, OUT/money.csv, OUT/purchase.csv and OUT/profit.json (the
columns of `custvalue run`; checked against the DuckDB oracle like the other engines).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import custvalue


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    job = custvalue.job(a.input, threads=a.threads)
    job.segments.write_csv(a.out / "segments.csv")
    job.deciles.money.write_csv(a.out / "money.csv")
    job.deciles.purchase.write_csv(a.out / "purchase.csv")
    figures = dict(job.profit.figures)
    curve = job.profit.whale["cum_profit_share"].to_list()
    figures["whale_curve"] = None if curve[0] is None else curve
    (a.out / "profit.json").write_text(json.dumps(figures) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

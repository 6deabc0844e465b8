#!/usr/bin/env python3
"""Rewrite a `custvalue synth` Parquet file into another line order and/or format, with DuckDB.

    layouts.py SRC.parquet --layout grouped|time|shuffled --out OUT.parquet|OUT.csv [--seed 1]

Layouts (the set of lines never changes, only their order):
    grouped   the source order, as `custvalue synth` writes it: customer by customer
    time      ORDER BY ts, ties in source order: customers interleaved, as exports come
    shuffled  ORDER BY hash(source row number, seed), ties in source order: no locality at all

The output format follows OUT's extension.
    .parquet  the source columns and types, zstd, row groups of 2^20 rows (as synth writes them)
    .csv      the columns of `custvalue synth --out x.csv`, written the same way: money with two
              decimals (12.30), ts as 2021-03-04T10:11:12, header order_id,customer_id,ts,...
              A grouped CSV is byte-identical to the synth CSV of the same rows and seed.

The output is written to OUT.tmp and renamed, so an interrupted run leaves no partial OUT.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

LAYOUTS = ("grouped", "time", "shuffled")
# Synth's columns, in its order (src/synth.rs CSV_HEADER).
COLUMNS = ["order_id", "customer_id", "ts", "category", "quantity", "unit_price", "amount", "cost"]
MONEY = ("unit_price", "amount", "cost")


def sql_string(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def order_by(layout: str, seed: int) -> str:
    # file_row_number is the source row (0-based), the deterministic tie-break everywhere.
    if layout == "grouped":
        return "rn"
    if layout == "time":
        return "ts, rn"
    if layout == "shuffled":
        return f"hash(rn, {int(seed)}::BIGINT), rn"
    raise SystemExit(f"layouts: unknown layout {layout!r} (want one of {', '.join(LAYOUTS)})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path, help="the synth Parquet file (grouped by customer)")
    ap.add_argument("--layout", required=True, choices=LAYOUTS)
    ap.add_argument("--out", type=Path, required=True, help=".parquet or .csv")
    ap.add_argument("--seed", type=int, default=1, help="shuffle seed (default 1)")
    ap.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: all cores)")
    a = ap.parse_args()

    import duckdb

    out = a.out.resolve()
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("parquet", "csv"):
        raise SystemExit(f"layouts: {out} must end in .parquet or .csv")
    tmp = out.with_name(out.name + ".tmp")
    tmp.unlink(missing_ok=True)

    con = duckdb.connect()
    if a.threads:
        con.execute(f"SET threads = {int(a.threads)}")
    con.execute("SET preserve_insertion_order = true")  # COPY keeps the ORDER BY order
    spill = out.parent / ".duckdb_tmp"
    con.execute(f"SET temp_directory = {sql_string(str(spill))}")

    src = f"read_parquet({sql_string(str(a.src.resolve()))}, file_row_number = true)"
    have = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()]
    missing = [c for c in COLUMNS if c not in have]
    if missing:
        raise SystemExit(f"layouts: {a.src} lacks columns {missing} (not a synth file?)")

    if fmt == "parquet":
        cols = ", ".join(COLUMNS)
        opts = "FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1048576"
    else:
        def csv_col(c: str) -> str:
            if c in MONEY:
                return f"printf('%.2f', {c}) AS {c}"
            if c == "ts":
                return "strftime(ts, '%Y-%m-%dT%H:%M:%S') AS ts"
            return c
        cols = ", ".join(csv_col(c) for c in COLUMNS)
        opts = "FORMAT csv, HEADER true, DELIMITER ','"

    t0 = time.perf_counter()
    con.execute(f"""
        COPY (
            SELECT {cols}
            FROM (SELECT *, file_row_number AS rn FROM {src})
            ORDER BY {order_by(a.layout, a.seed)}
        ) TO {sql_string(str(tmp))} ({opts})""")
    con.close()
    os.replace(tmp, out)
    shutil.rmtree(spill, ignore_errors=True)
    print(f"layouts: {a.src.name} -> {out.name} ({a.layout}) in {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

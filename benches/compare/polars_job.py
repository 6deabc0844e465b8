#!/usr/bin/env python3
"""The custvalue job in Python polars: a second implementation of /work/shared/JOB.md
for the speed comparison, checked against the DuckDB oracle like custvalue is.

    polars_job.py INPUT --out OUT [--threads N]

writes OUT/segments.csv, OUT/money.csv, OUT/purchase.csv and OUT/profit.json with the
same columns as the oracle (oracle.py). Threads: POLARS_MAX_THREADS must be set before
polars is imported, so --threads sets it here (run.sh also exports it).

Money is integer cents throughout. CSV amounts are converted from their text (round half
away from zero at the third decimal; plain decimal notation only, no exponents). Parquet
DOUBLE amounts use sign(x) * floor(|x| * 100 + 0.5), exact for values that are whole cents
(custvalue synth writes cents / 100); JOB.md's shortest-text rule would only differ for
doubles with more than two decimals.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    if a.threads:
        os.environ["POLARS_MAX_THREADS"] = str(a.threads)
    import polars as pl  # after POLARS_MAX_THREADS

    t0 = time.perf_counter()
    a.out.mkdir(parents=True, exist_ok=True)
    lines = load(pl, a.input)
    run(pl, lines, a.out)
    print(f"polars: {a.input} -> {a.out} in {time.perf_counter() - t0:.2f} s "
          f"({pl.thread_pool_size()} threads)", file=sys.stderr)
    return 0


def text_cents(pl, col: str):
    """Decimal text -> cents, rounded half away from zero (JOB.md "Money")."""
    s = pl.col(col).str.strip_chars()
    neg = s.str.starts_with("-")
    body = s.str.strip_prefix("-").str.strip_prefix("+")
    int_part = body.str.split(".").list.get(0, null_on_oob=True)
    frac = body.str.split(".").list.get(1, null_on_oob=True).fill_null("")
    frac3 = (frac + "000").str.slice(0, 3)
    mag = (pl.when(int_part == "").then(pl.lit("0")).otherwise(int_part).cast(pl.Int64) * 100
           + frac3.str.slice(0, 2).cast(pl.Int64)
           + (frac3.str.slice(2, 1).cast(pl.Int64) >= 5).cast(pl.Int64))
    return pl.when(pl.col(col).is_null()).then(None).when(neg).then(-mag).otherwise(mag)


def float_cents(pl, col: str):
    x = pl.col(col).cast(pl.Float64)
    return (x.sign() * (x.abs() * 100 + 0.5).floor()).cast(pl.Int64)


def load(pl, path: Path):
    name = path.name.lower()
    if name.endswith(".parquet") or name.endswith(".pq"):
        df = pl.scan_parquet(path)
        schema = df.collect_schema()
        amount = float_cents(pl, "amount") if schema["amount"].is_float() else pl.col("amount").cast(pl.Int64) * 100
        cost = float_cents(pl, "cost") if schema["cost"].is_float() else pl.col("cost").cast(pl.Int64) * 100
        ts = pl.col("ts").cast(pl.Datetime("us")) if schema["ts"] != pl.String else pl.col("ts").str.to_datetime(time_unit="us")
    else:
        # Every column as text: ids stay text (leading zeros survive), money keeps its text.
        df = pl.scan_csv(path, infer_schema=False)
        amount, cost = text_cents(pl, "amount"), text_cents(pl, "cost")
        ts = pl.col("ts").str.to_datetime(time_unit="us")
    return (
        df.select(
            pl.col("customer_id"),
            pl.col("order_id").cast(pl.String).alias("order_id"),
            ts.alias("ts"),
            pl.col("category").cast(pl.String).alias("category"),
            amount.alias("amount_c"),
            cost.alias("cost_c"),
        )
        .with_columns(
            pl.col("ts").dt.date().alias("day"),
            # An order is its id, or (customer, ts) for lines without one.
            pl.when(pl.col("order_id").is_null())
            .then(pl.lit("\x00") + pl.col("ts").cast(pl.String))
            .otherwise(pl.col("order_id")).alias("order_key"),
        )
    )


def ntile(pl, k: int, n):
    """NTILE(k) of the 0-based row index `pl.int_range` over n rows (JOB.md "RFM scores")."""
    i = pl.int_range(pl.len(), dtype=pl.Int64)
    q, r = n // k, n % k
    big = r * (q + 1)
    if q == 0:
        return i + 1
    return pl.when(i < big).then(i // (q + 1) + 1).otherwise(r + (i - big) // q + 1)


def money_text(pl, c: str):
    a = pl.col(c).abs()
    return (pl.when(pl.col(c) < 0).then(pl.lit("-")).otherwise(pl.lit(""))
            + (a // 100).cast(pl.String) + "." + (a % 100).cast(pl.String).str.zfill(2))


def run(pl, lines, out: Path) -> None:
    lines = lines.collect()
    as_of = lines["day"].max() + __import__("datetime").timedelta(days=1)
    pos = pl.col("amount_c") > 0

    summary = lines.group_by("customer_id").agg(
        pl.col("day").filter(pos).min().alias("first_purchase"),
        pl.col("day").filter(pos).max().alias("last_purchase"),
        pl.col("order_key").filter(pos).n_unique().alias("frequency"),
        pl.col("amount_c").sum().alias("monetary_c"),
        (pl.col("amount_c") - pl.col("cost_c").fill_null(0)).sum().alias("profit_c"),
        pl.col("category").filter(pos & pl.col("category").is_not_null()).n_unique().alias("n_categories"),
    ).with_columns(
        (pl.lit(as_of) - pl.col("last_purchase")).dt.total_days().alias("recency_days"),
        (pl.lit(as_of) - pl.col("first_purchase")).dt.total_days().alias("tenure_days"),
    )

    # reactivated: last distinct purchase day minus the one before it > 365.
    gaps = (lines.filter(pos).select("customer_id", "day").unique()
            .group_by("customer_id").agg(
                (pl.col("day").max() - pl.col("day").sort(descending=True).slice(1, 1).first())
                .dt.total_days().alias("gap_days")))

    lo = as_of - __import__("datetime").timedelta(days=365)
    best = (lines.filter((pl.col("day") >= lo) & (pl.col("day") < as_of))
            .group_by("customer_id").agg(
                ((pl.col("amount_c").sum() >= 100000)
                 & (pl.col("category").filter(pos & pl.col("category").is_not_null()).n_unique() >= 4)
                 & (pl.col("order_key").filter(pos).n_unique() >= 6)).alias("best_customer")))

    buyers = summary.filter(pl.col("frequency") >= 1)
    nb = buyers.height
    r = buyers.sort(["recency_days", "customer_id"], descending=[True, False]).select(
        "customer_id", ntile(pl, 5, nb).alias("r_score"))
    f = buyers.sort(["frequency", "customer_id"]).select("customer_id", ntile(pl, 5, nb).alias("f_score"))
    m = buyers.sort(["monetary_c", "customer_id"]).select("customer_id", ntile(pl, 5, nb).alias("m_score"))
    n_all = summary.height
    dec = summary.sort(["monetary_c", "customer_id"], descending=[True, False]).select(
        "customer_id", ntile(pl, 10, n_all).alias("decile"))

    R, F, M = pl.col("r_score"), pl.col("f_score"), pl.col("m_score")
    # custvalue's documented default segment table (first match wins).
    rules = [
        ("Champions", (4, 5), (4, 5), (4, 5)), ("Loyal", (3, 5), (4, 5), (1, 5)),
        ("Can't lose them", (1, 2), (4, 5), (4, 5)), ("At risk", (1, 2), (3, 5), (1, 5)),
        ("Potential loyalist", (4, 5), (2, 3), (1, 5)), ("New", (5, 5), (1, 1), (1, 5)),
        ("Promising", (4, 4), (1, 1), (1, 5)), ("Need attention", (3, 3), (2, 3), (1, 5)),
        ("About to sleep", (3, 3), (1, 1), (1, 5)), ("Hibernating", (2, 2), (1, 2), (1, 5)),
        ("Lost", (1, 1), (1, 2), (1, 5)),
    ]
    segment = pl.when(R.is_null()).then(None)
    for name, rr, fr, mr in rules:
        segment = segment.when(R.is_between(*rr) & F.is_between(*fr) & M.is_between(*mr)).then(pl.lit(name))
    segment = segment.otherwise(pl.lit("Other"))

    rec, ten = pl.col("recency_days"), pl.col("tenure_days")
    stage = (pl.when(pl.col("frequency") == 0).then(None)
             .when(ten <= 90).then(pl.lit("new"))
             .when(rec <= 180).then(pl.lit("active"))
             .when(rec <= 365).then(pl.lit("at_risk"))
             .when(rec <= 730).then(pl.lit("lapsed"))
             .otherwise(pl.lit("lost")))
    mon, fq = pl.col("monetary_c"), pl.col("frequency")
    aov = pl.when(fq == 0).then(None).otherwise(mon.sign() * ((2 * mon.abs() + fq) // (2 * fq)))

    seg = (summary.join(r, on="customer_id", how="left").join(f, on="customer_id", how="left")
           .join(m, on="customer_id", how="left").join(dec, on="customer_id", how="left")
           .join(best, on="customer_id", how="left").join(gaps, on="customer_id", how="left")
           .with_columns(aov.alias("avg_order_value_c"))
           .sort("customer_id"))
    seg.select(
        pl.col("customer_id").cast(pl.String), "first_purchase", "last_purchase", "recency_days",
        "tenure_days", "frequency", money_text(pl, "monetary_c").alias("monetary"),
        money_text(pl, "profit_c").alias("profit"),
        money_text(pl, "avg_order_value_c").alias("avg_order_value"), "n_categories",
        "r_score", "f_score", "m_score",
        (R.cast(pl.String) + F.cast(pl.String) + M.cast(pl.String)).alias("rfm_cell"),
        (R + F + M).alias("rfm_score"), segment.alias("segment"), "decile",
        pl.col("best_customer").fill_null(False), stage.alias("stage"),
        (pl.col("gap_days") > 365).fill_null(False).alias("reactivated"),
    ).write_csv(out / "segments.csv")

    # Money deciles.
    s = summary.join(dec, on="customer_id")
    tot_rev, tot_prof = int(s["monetary_c"].sum()), int(s["profit_c"].sum())
    md = (s.group_by("decile").agg(
        pl.len().alias("customers"), pl.col("monetary_c").sum().alias("revenue_c"),
        pl.col("profit_c").sum().alias("profit_c"), pl.col("monetary_c").min().alias("min_c"),
        pl.col("monetary_c").max().alias("max_c")))
    # Empty deciles (fewer than 10 customers) still get a row, as in the oracle.
    md = (pl.DataFrame({"decile": list(range(1, 11))}, schema={"decile": md["decile"].dtype})
          .join(md, on="decile", how="left")
          .with_columns(pl.col("customers").fill_null(0), pl.col("revenue_c").fill_null(0),
                        pl.col("profit_c").fill_null(0))
          .sort("decile"))
    share = lambda c, t: (pl.col(c).cast(pl.Float64) / t) if t > 0 else pl.lit(None, pl.Float64)
    md.select(
        "decile", "customers", money_text(pl, "revenue_c").alias("revenue"),
        share("revenue_c", tot_rev).alias("revenue_share"), money_text(pl, "profit_c").alias("profit"),
        share("profit_c", tot_prof).alias("profit_share"),
        (pl.col("revenue_c").cum_sum().cast(pl.Float64) / tot_rev if tot_rev > 0 else pl.lit(None, pl.Float64)).alias("cum_revenue_share"),
        (pl.col("profit_c").cum_sum().cast(pl.Float64) / tot_prof if tot_prof > 0 else pl.lit(None, pl.Float64)).alias("cum_profit_share"),
        money_text(pl, "min_c").alias("min_monetary"), money_text(pl, "max_c").alias("max_monetary"),
    ).write_csv(out / "money.csv")

    # Purchase deciles: slice = ceil(10 C_i / T), integers, clamped to 1..10.
    p = summary.filter(pl.col("monetary_c") > 0).sort(["monetary_c", "customer_id"], descending=[True, False])
    t = int(p["monetary_c"].sum()) if p.height else 0
    if p.height:
        c = pl.col("monetary_c").cast(pl.Int128).cum_sum()
        p = p.with_columns(((10 * c + t - 1) // t).clip(1, 10).cast(pl.Int64).alias("slice"))
        agg = p.group_by("slice").agg(pl.len().alias("customers"), pl.col("monetary_c").sum().alias("revenue_c"))
    else:
        agg = pl.DataFrame(schema={"slice": pl.Int64, "customers": pl.UInt32, "revenue_c": pl.Int64})
    slices = (pl.DataFrame({"slice": list(range(1, 11))}, schema={"slice": pl.Int64})
              .join(agg, on="slice", how="left")
              .with_columns(pl.col("customers").fill_null(0).cast(pl.Int64), pl.col("revenue_c").fill_null(0)))
    nonpos = summary.filter(pl.col("monetary_c") <= 0)
    rest = pl.DataFrame({"slice": [None], "customers": [nonpos.height],
                         "revenue_c": [int(nonpos["monetary_c"].sum() or 0)]},
                        schema={"slice": pl.Int64, "customers": pl.Int64, "revenue_c": pl.Int64})
    pd_ = pl.concat([slices.select("slice", "customers", "revenue_c"), rest])
    pd_.select("slice", "customers", (pl.col("customers").cast(pl.Float64) / n_all).alias("customer_share"),
               money_text(pl, "revenue_c").alias("revenue")).write_csv(out / "purchase.csv")

    # Profitability.
    bp = summary.sort(["profit_c", "customer_id"], descending=[True, False])["profit_c"].to_list()
    n, P = len(bp), sum(bp)
    cum = [0]
    for v in bp:
        cum.append(cum[-1] + v)
    top_n, bottom_n = (n + 4) // 5, (3 * n + 9) // 10
    top, bottom = cum[top_n], cum[n] - cum[n - bottom_n]
    curve = [cum[(q * n + 99) // 100] / P for q in range(101)] if P > 0 else None
    peak = max(curve) if curve else None
    q_peak = curve.index(peak) if curve else None
    x = sorted(v for v in summary["monetary_c"].to_list() if v > 0)
    gn, sx = len(x), sum(x)
    six = sum(i * v for i, v in enumerate(x, start=1))
    gini = (2 * six - (gn + 1) * sx) / (gn * sx) if gn else None
    profit = {
        "customers": n, "total_profit": P / 100, "top20_customers": top_n, "top20_profit": top / 100,
        "top20_profit_share": top / P if P > 0 else None, "bottom30_customers": bottom_n,
        "bottom30_profit": bottom / 100, "profit_without_bottom30": (P - bottom) / 100,
        "whale_peak": peak, "whale_peak_customer_share": q_peak / 100 if curve else None,
        "gini": gini, "whale_curve": curve,
    }
    (out / "profit.json").write_text(json.dumps(profit, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())

"""custvalue: customer-value analytics from Python, polars DataFrames in and out.

Every function takes the transaction lines as a path, a glob (``"tx/*.parquet"``), a
list of them, a polars DataFrame or LazyFrame, a pandas DataFrame (through polars), or
any table with ``__arrow_c_stream__`` (pyarrow). Keyword arguments mirror the command
line's flags (``customer_col=`` for ``--customer-col``, ``on_bad_rows=`` for
``--on-bad-rows``, ...). Results are polars DataFrames, or a small result object where
there are several. The work runs in Rust with the GIL released.

Errors are raised as :class:`InputError` (bad input or arguments; the message names the
file or ``DataFrame``, the line or row, the column and the value) or
:class:`CustvalueError` (anything else). Rows of a DataFrame are numbered by their index,
from 0. Rows skipped under ``on_bad_rows="skip"`` are reported by a
:class:`RejectedRowsWarning` carrying the load report's headline.

>>> import custvalue, polars as pl
>>> seg = custvalue.segments("data-samples/transactions.csv")       # doctest: +SKIP
>>> seg = custvalue.segments(pl.read_parquet("tx.parquet"), as_of="2024-12-31")  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Optional

import polars as pl

from custvalue._native import CustvalueError, InputError
from custvalue import _native

__all__ = [
    "summary",
    "rfm",
    "deciles",
    "profit",
    "segments",
    "job",
    "cube",
    "cohorts",
    "affinity",
    "ltv",
    "fit",
    "report",
    "Deciles",
    "Profit",
    "Job",
    "Cube",
    "Cohorts",
    "Affinity",
    "Ltv",
    "Fit",
    "FitResult",
    "CustvalueError",
    "InputError",
    "RejectedRowsWarning",
]

__version__ = "0.1.0"


class RejectedRowsWarning(UserWarning):
    """Rows were rejected under ``on_bad_rows="skip"`` or ``"quarantine=FILE"``."""


# ---------------------------------------------------------------- result objects


@dataclass
class Deciles:
    """Money deciles (customers ranked by revenue or profit, NTILE(10), decile 1 the top)
    and purchase deciles (total revenue in ten equal slices)."""

    money: pl.DataFrame
    purchase: pl.DataFrame
    headline: str
    load_report: dict = field(repr=False, default_factory=dict)


@dataclass
class Profit:
    """Kotler's 20/80/30 figures, the whale curve (101 points) and the Gini coefficient."""

    figures: dict
    whale: pl.DataFrame
    headline: str
    load_report: dict = field(repr=False, default_factory=dict)


@dataclass
class Job:
    """The segment file, the decile tables and the profit view from one load."""

    segments: pl.DataFrame
    deciles: Deciles
    profit: Profit
    load_report: dict = field(repr=False, default_factory=dict)


@dataclass
class Cube:
    """Customer dimension x category: customers, orders, revenue, penetration, share, index."""

    cube: pl.DataFrame
    headline: str
    load_report: dict = field(repr=False, default_factory=dict)


@dataclass
class Cohorts:
    """The monthly cohort retention triangle, one row per (cohort, period)."""

    cohorts: pl.DataFrame
    headline: str
    load_report: dict = field(repr=False, default_factory=dict)


@dataclass
class Affinity:
    """Every ordered category pair bought together: support, confidence, lift."""

    pairs: pl.DataFrame
    headline: str
    load_report: dict = field(repr=False, default_factory=dict)


@dataclass
class Fit:
    """A fitted model: parameters and standard errors by name (as in the model's paper),
    the maximised log-likelihood and the optimiser's diagnostics."""

    model: str
    params: dict
    std_errors: dict
    log_likelihood: float
    iterations: int
    starts: int
    converged: bool
    boundary: Optional[str] = None

    @classmethod
    def _of(cls, d: Optional[dict]) -> Optional["Fit"]:
        if d is None:
            return None
        d = dict(d)
        d["params"] = dict(d["params"])
        d["std_errors"] = dict(d["std_errors"])
        return cls(**d)


@dataclass
class Ltv:
    """Lifetime value per customer, and the fitted purchase and spend models."""

    customers: pl.DataFrame
    purchase_model: Fit
    spend_model: Optional[Fit]
    margin: float
    total_clv: float
    load_report: dict = field(repr=False, default_factory=dict)


@dataclass
class FitResult:
    """What :func:`fit` returns: the purchase model, and Gamma-Gamma when ``spend_col``."""

    purchase_model: Fit
    spend_model: Optional[Fit] = None
    spend_frequency_correlation: Optional[float] = None

    @property
    def params(self) -> dict:
        return self.purchase_model.params

    @property
    def std_errors(self) -> dict:
        return self.purchase_model.std_errors

    @property
    def log_likelihood(self) -> float:
        return self.purchase_model.log_likelihood


# ---------------------------------------------------------------- plumbing

_LOAD_KEYS = (
    "customer_col",
    "time_col",
    "amount_col",
    "quantity_col",
    "unit_price_col",
    "order_col",
    "cost_col",
    "category_col",
    "delimiter",
    "no_header",
    "quote",
    "time_format",
    "customer_id_type",
    "currency_decimals",
    "as_of",
    "margin",
    "on_bad_rows",
    "threads",
    "config",
)


def _from_pandas(df: Any) -> pl.DataFrame:
    try:
        return pl.from_pandas(df)
    except ImportError:
        # Without pyarrow polars takes only numpy-backed columns: the others (text)
        # go over as Python objects.
        columns = {}
        for name in df.columns:
            s = df[name]
            if s.dtype.kind in "biufmM":
                columns[str(name)] = pl.Series(str(name), s.to_numpy())
            else:
                columns[str(name)] = pl.Series(
                    str(name), [None if v is None or v != v else v for v in s.tolist()]
                )
        return pl.DataFrame(columns)


def _source(src: Any) -> Any:
    if isinstance(src, (str, os.PathLike)):
        return os.fspath(src)
    if isinstance(src, (list, tuple)):
        return [os.fspath(p) for p in src]
    if isinstance(src, pl.LazyFrame):
        return src.collect()
    if type(src).__module__.split(".")[0] == "pandas":
        return _from_pandas(src)
    return src


def _text(v: Any) -> Any:
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, (_dt.date, _dt.datetime)):
        return v.strftime("%Y-%m-%d")
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    return str(v)


def _load_args(kw: dict) -> dict:
    unknown = set(kw) - set(_LOAD_KEYS)
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    out = {}
    for k, v in kw.items():
        if k in ("threads", "currency_decimals") or k == "no_header":
            out[k] = v
        else:
            out[k] = _text(v)
    return out


def _run(name: str, src: Any, args: dict, kw: dict) -> dict:
    out = _native.run(
        name,
        _source(src),
        _load_args(kw),
        {k: _text(v) if k not in ("k", "best_min_spend", "discount", "clv_margin", "penalizer") else v
         for k, v in args.items()},
    )
    report = out.get("load_report", {})
    if report.get("rows_rejected"):
        warnings.warn(report["headline"], RejectedRowsWarning, stacklevel=3)
    return out


def _frame(obj: Any) -> pl.DataFrame:
    return pl.DataFrame(obj)


# ---------------------------------------------------------------- analyses


def summary(src: Any, **load: Any) -> pl.DataFrame:
    """The per-customer summary (``custvalue summary``): customer_id, first_purchase,
    last_purchase, recency_days, tenure_days, frequency, monetary, profit,
    avg_order_value, n_categories; money in currency units, one row per customer in
    customer-id order.

    ``load`` takes the loading arguments shared by every function: customer_col,
    time_col, amount_col, quantity_col, unit_price_col, order_col, cost_col,
    category_col (column names); delimiter, no_header, quote (CSV); time_format
    (strftime), customer_id_type ("auto", "text", "int"), currency_decimals, as_of
    (date or "YYYY-MM-DD"), margin, on_bad_rows ("error", "skip", "quarantine=FILE"),
    threads (worker threads of this call), config (a TOML config file).
    """
    return _frame(_run("summary", src, {}, load)["summary"])


def rfm(src: Any, *, k: Optional[int] = None, segment_rules: Any = None, **load: Any) -> pl.DataFrame:
    """RFM scores per customer (``custvalue rfm --out``): customer_id, recency_days,
    frequency, monetary, r_score, f_score, m_score, rfm_cell, rfm_score, segment.

    ``k``: score groups (3, 4, 5 or 10; default 5). ``segment_rules``: a TOML segment
    table replacing the default (the command line's ``--segments``).
    """
    return _frame(_run("rfm", src, {"k": k, "segment_rules": segment_rules}, load)["rfm"])


def deciles(src: Any, *, by: Optional[str] = None, **load: Any) -> Deciles:
    """Money deciles and purchase deciles (``custvalue deciles``).

    ``by``: rank customers by "revenue" (default) or "profit".
    """
    out = _run("deciles", src, {"by": by}, load)
    return Deciles(_frame(out["money"]), _frame(out["purchase"]), out["headline"], out["load_report"])


def profit(src: Any, **load: Any) -> Profit:
    """The 20/80/30 view, the whale curve and the Gini coefficient (``custvalue profit``).

    Without a cost column profit = amount x ``margin``.
    """
    out = _run("profit", src, {}, load)
    return Profit(out["figures"], _frame(out["whale"]), out["headline"], out["load_report"])


def segments(
    src: Any,
    *,
    k: Optional[int] = None,
    segment_rules: Any = None,
    best_min_spend: Optional[float] = None,
    model: Optional[str] = None,
    **load: Any,
) -> pl.DataFrame:
    """The segment file (``custvalue segments --out``): the summary's columns, r_score,
    f_score, m_score, rfm_cell, rfm_score, segment, decile, best_customer, stage,
    (p_alive with ``model``), reactivated, next_category; one row per customer.

    ``k``: RFM score groups; ``segment_rules``: a TOML segment table;
    ``best_min_spend``: best-customer minimum spend; ``model``: "bgnbd", "paretonbd" or
    "mbgnbd" adds P(alive) beside the stage.
    """
    args = {"k": k, "segment_rules": segment_rules, "best_min_spend": best_min_spend, "model": model}
    return _frame(_run("segments", src, args, load)["segments"])


def job(
    src: Any,
    *,
    k: Optional[int] = None,
    segment_rules: Any = None,
    best_min_spend: Optional[float] = None,
    **load: Any,
) -> Job:
    """The main outputs of the nightly job (``custvalue run``) from one load: the segment
    file (as :func:`segments`), the money and purchase deciles (as :func:`deciles`, by the
    config's ``[deciles] by``) and the 20/80/30 view (as :func:`profit`)."""
    args = {"k": k, "segment_rules": segment_rules, "best_min_spend": best_min_spend}
    out = _run("job", src, args, load)
    report = out["load_report"]
    return Job(
        _frame(out["segments"]),
        Deciles(_frame(out["money"]), _frame(out["purchase"]), out["deciles_headline"], report),
        Profit(out["figures"], _frame(out["whale"]), out["profit_headline"], report),
        report,
    )


def cube(src: Any, *, by: str = "decile", **load: Any) -> Cube:
    """Customer dimension x category (``custvalue cube``).

    ``by``: "decile" (default), "segment", "stage" or "cohort".
    """
    out = _run("cube", src, {"by": by}, load)
    return Cube(_frame(out["cube"]), out["headline"], out["load_report"])


def cohorts(src: Any, **load: Any) -> Cohorts:
    """The monthly cohort retention triangle (``custvalue cohorts``)."""
    out = _run("cohorts", src, {}, load)
    return Cohorts(_frame(out["cohorts"]), out["headline"], out["load_report"])


def affinity(src: Any, **load: Any) -> Affinity:
    """Category pairs bought by the same customers (``custvalue affinity --out``), sorted
    by lift, then customers, then the categories."""
    out = _run("affinity", src, {}, load)
    return Affinity(_frame(out["pairs"]), out["headline"], out["load_report"])


def ltv(
    src: Any,
    *,
    model: str = "bgnbd",
    spend: str = "gammagamma",
    period: str = "D",
    horizon: Any = None,
    purchases_horizon: Any = None,
    discount: float = 0.10,
    clv_margin: Optional[float] = None,
    calibration_end: Any = None,
    penalizer: float = 0.0,
    **load: Any,
) -> Ltv:
    """Lifetime value (``custvalue ltv``): fits the purchase model ("bgnbd",
    "paretonbd", "mbgnbd") and the spend model ("gammagamma" or "none"), and values
    every customer: x, t_x, T, m_x, P(alive), expected purchases, expected spend, CLV.

    ``period``: "D" or "W"; ``horizon``: periods or "365d", "52w", "1y" (default one
    year); ``discount``: annual rate; ``clv_margin``: margin on spend (default: total
    profit / revenue); ``calibration_end``: fit on history up to this date.
    """
    args = {
        "model": model,
        "spend": spend,
        "period": period,
        "horizon": horizon,
        "purchases_horizon": purchases_horizon,
        "discount": discount,
        "clv_margin": clv_margin,
        "calibration_end": calibration_end,
        "penalizer": penalizer,
    }
    out = _run("ltv", src, args, load)
    return Ltv(
        _frame(out["customers"]),
        Fit._of(out["purchase_model"]),
        Fit._of(out["spend_model"]),
        out["margin"],
        out["total_clv"],
        out["load_report"],
    )


def fit(
    summary: Any,
    model: str = "bgnbd",
    spend_col: Optional[str] = None,
    *,
    penalizer: float = 0.0,
) -> FitResult:
    """Fits a model on a model summary (``custvalue fit``): a DataFrame (polars or
    pandas) or a CSV/Parquet path with columns x, t_x and T for "bgnbd", "paretonbd"
    and "mbgnbd" (with ``spend_col``, Gamma-Gamma too, on customers with x > 0), or
    frequency, recency, periods and weights for "bgbb".

    Returns the parameters and standard errors by name, and the log-likelihood.
    """
    if isinstance(summary, (str, os.PathLike)):
        path = os.fspath(summary)
        summary = pl.read_parquet(path) if path.endswith((".parquet", ".pq")) else pl.read_csv(path)
    summary = _source(summary)
    out = _native.fit(summary, model, spend_col, penalizer)
    return FitResult(
        Fit._of(out["purchase_model"]),
        Fit._of(out.get("spend_model")),
        out.get("spend_frequency_correlation"),
    )


def report(
    src: Any,
    out: Any,
    *,
    model: Optional[str] = None,
    calibration_end: Any = None,
    title: Optional[str] = None,
    **load: Any,
) -> str:
    """Writes the self-contained HTML report (``custvalue report``) to ``out`` and
    returns its path. ``model`` adds lifetime value; ``calibration_end`` (with
    ``model``) charts the model's predictions against the holdout."""
    args = {"out": out, "model": model, "calibration_end": calibration_end, "title": title}
    return _run("report", src, args, load)["path"]

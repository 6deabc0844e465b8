"""Type stubs of custvalue: customer-value analytics, polars DataFrames in and out."""

import datetime
import os
from dataclasses import dataclass
from typing import Any, Literal, Optional, Protocol, Sequence, TypedDict, Union

import polars as pl

__version__: str

class _ArrowStream(Protocol):
    def __arrow_c_stream__(self, requested_schema: Any = ...) -> Any: ...

Path = Union[str, os.PathLike[str]]
#: Transaction lines: a path or glob, a list of them, a polars DataFrame or LazyFrame, a
#: pandas DataFrame, or any table with ``__arrow_c_stream__``.
Source = Union[Path, Sequence[Path], pl.DataFrame, pl.LazyFrame, Any, _ArrowStream]
DateLike = Union[str, datetime.date]

class CustvalueError(Exception):
    """A failure inside custvalue (the command line's exit code 1)."""

class InputError(CustvalueError):
    """Bad input or arguments (exit code 2); the message names the file or DataFrame,
    the line or row (a DataFrame's rows by index, from 0), the column and the value."""

class RejectedRowsWarning(UserWarning):
    """Rows were rejected under on_bad_rows="skip" or "quarantine=FILE"."""

class LoadReport(TypedDict):
    rows_read: int
    rows_used: int
    rows_rejected: int
    rejected_by_reason: dict[str, int]
    examples: list[dict[str, Any]]
    quarantine: Optional[str]
    as_of: str
    as_of_given: bool
    headline: str

@dataclass
class Fit:
    model: str
    params: dict[str, float]
    std_errors: dict[str, Optional[float]]
    log_likelihood: Optional[float]
    iterations: int
    starts: int
    converged: bool
    boundary: Optional[str] = ...

@dataclass
class FitResult:
    purchase_model: Fit
    spend_model: Optional[Fit] = ...
    spend_frequency_correlation: Optional[float] = ...
    @property
    def params(self) -> dict[str, float]: ...
    @property
    def std_errors(self) -> dict[str, Optional[float]]: ...
    @property
    def log_likelihood(self) -> Optional[float]: ...

@dataclass
class Deciles:
    money: pl.DataFrame
    purchase: pl.DataFrame
    headline: str
    load_report: LoadReport = ...

@dataclass
class Profit:
    figures: dict[str, Any]
    whale: pl.DataFrame
    headline: str
    load_report: LoadReport = ...

@dataclass
class Job:
    segments: pl.DataFrame
    deciles: Deciles
    profit: Profit
    load_report: LoadReport = ...

@dataclass
class Cube:
    cube: pl.DataFrame
    headline: str
    load_report: LoadReport = ...

@dataclass
class Cohorts:
    cohorts: pl.DataFrame
    headline: str
    load_report: LoadReport = ...

@dataclass
class Affinity:
    pairs: pl.DataFrame
    headline: str
    load_report: LoadReport = ...

@dataclass
class Ltv:
    customers: pl.DataFrame
    purchase_model: Fit
    spend_model: Optional[Fit]
    margin: float
    total_clv: float
    load_report: LoadReport = ...

# Every analysis takes these loading arguments (the command line's input flags).
def summary(
    src: Source,
    *,
    customer_col: Optional[str] = ...,
    time_col: Optional[str] = ...,
    amount_col: Optional[str] = ...,
    quantity_col: Optional[str] = ...,
    unit_price_col: Optional[str] = ...,
    order_col: Optional[str] = ...,
    cost_col: Optional[str] = ...,
    category_col: Optional[str] = ...,
    delimiter: Optional[str] = ...,
    no_header: bool = ...,
    quote: Optional[str] = ...,
    time_format: Optional[str] = ...,
    customer_id_type: Optional[Literal["auto", "text", "int"]] = ...,
    currency_decimals: Optional[int] = ...,
    as_of: Optional[DateLike] = ...,
    margin: Optional[Union[float, str]] = ...,
    on_bad_rows: Optional[str] = ...,
    threads: Optional[int] = ...,
    config: Optional[Path] = ...,
) -> pl.DataFrame:
    """The per-customer summary, one row per customer in customer-id order."""

def rfm(src: Source, *, k: Optional[int] = ..., segment_rules: Optional[Path] = ..., **load: Any) -> pl.DataFrame:
    """RFM scores, cells and named segments per customer."""

def deciles(src: Source, *, by: Optional[Literal["revenue", "profit"]] = ..., **load: Any) -> Deciles:
    """Money deciles and purchase deciles."""

def profit(src: Source, **load: Any) -> Profit:
    """The 20/80/30 figures, the whale curve and the Gini coefficient."""

def segments(
    src: Source,
    *,
    k: Optional[int] = ...,
    segment_rules: Optional[Path] = ...,
    best_min_spend: Optional[float] = ...,
    model: Optional[Literal["bgnbd", "paretonbd", "mbgnbd"]] = ...,
    **load: Any,
) -> pl.DataFrame:
    """The segment file: summary, scores, segment, decile, best customer, stage."""

def job(
    src: Source,
    *,
    k: Optional[int] = ...,
    segment_rules: Optional[Path] = ...,
    best_min_spend: Optional[float] = ...,
    **load: Any,
) -> Job:
    """The segment file, both decile tables and the profit view from one load."""

def cube(src: Source, *, by: Literal["decile", "segment", "stage", "cohort"] = ..., **load: Any) -> Cube:
    """Customer dimension x category."""

def cohorts(src: Source, **load: Any) -> Cohorts:
    """The monthly cohort retention triangle."""

def affinity(src: Source, **load: Any) -> Affinity:
    """Category pairs bought together, by lift."""

def ltv(
    src: Source,
    *,
    model: Literal["bgnbd", "paretonbd", "mbgnbd"] = ...,
    spend: Literal["gammagamma", "none"] = ...,
    period: Literal["D", "W"] = ...,
    horizon: Optional[Union[int, str]] = ...,
    purchases_horizon: Optional[Union[int, str]] = ...,
    discount: float = ...,
    clv_margin: Optional[float] = ...,
    calibration_end: Optional[DateLike] = ...,
    penalizer: float = ...,
    **load: Any,
) -> Ltv:
    """Lifetime value per customer with the fitted models."""

def fit(
    summary: Union[Path, pl.DataFrame, Any],
    model: Literal["bgnbd", "paretonbd", "mbgnbd", "bgbb"] = ...,
    spend_col: Optional[str] = ...,
    *,
    penalizer: float = ...,
) -> FitResult:
    """Fits a model on a model summary (x, t_x, T; or BG/BB patterns)."""

def report(
    src: Source,
    out: Path,
    *,
    model: Optional[Literal["bgnbd", "paretonbd", "mbgnbd"]] = ...,
    calibration_end: Optional[DateLike] = ...,
    title: Optional[str] = ...,
    **load: Any,
) -> str:
    """Writes the self-contained HTML report; returns its path."""

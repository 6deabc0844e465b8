//! The model summary of the buy-till-you-die literature (JOB.md, "Model summary"): per
//! customer `x` (repeat purchase periods), `t_x` (first to last purchase), `T` (first
//! purchase to the end of the period observed) and `m_x` (mean spend per repeat period),
//! at a time unit of days or weeks; and the holdout counterparts `x_holdout`, `m_holdout`
//! for a calibration/holdout split.
//!
//! Purchase periods are counted from each customer's first purchase day: with days a
//! period is a distinct purchase day; with weeks it is the week index ⌊(day − first)/7⌋.
//! `t_x` is the index of the last purchase period (so it is 0 exactly when x = 0) and `T`
//! is (end − first purchase day) / period length, fractional for weeks. With days this is
//! the CDNOW summary of Fader, Hardie & Lee measured in days. A period's spend is the sum
//! of amount over its lines (returns within the period included).
//!
//! Not for: fitting models (see `models`) or predictions (see `ltv`).

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::transactions::Transactions;

/// The time unit of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Period {
    #[default]
    Day,
    Week,
}

impl Period {
    pub fn days(self) -> i32 {
        match self {
            Period::Day => 1,
            Period::Week => 7,
        }
    }

    pub fn per_year(self) -> f64 {
        365.0 / f64::from(self.days())
    }

    pub fn name(self) -> &'static str {
        match self {
            Period::Day => "days",
            Period::Week => "weeks",
        }
    }
}

impl std::str::FromStr for Period {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "D" | "d" | "day" | "days" => Ok(Period::Day),
            "W" | "w" | "week" | "weeks" => Ok(Period::Week),
            _ => Err(format!("period must be D (days) or W (weeks), not {s:?}")),
        }
    }
}

/// One customer's figures; `None` for customers without a purchase in the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RepeatFigures {
    pub x: u32,
    pub t_x: f64,
    pub t: f64,
    /// Mean spend per repeat period, minor units (None when x = 0).
    pub m_x: Option<f64>,
    /// Day of the first purchase.
    pub first_day: i32,
}

/// Holdout figures of one customer.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HoldoutFigures {
    /// Distinct purchase periods in the holdout.
    pub x_holdout: u32,
    /// Mean spend per holdout purchase period, minor units (None when x_holdout = 0).
    pub m_holdout: Option<f64>,
}

/// The model summary of every customer over lines dated on or before `end`, with
/// T = end − first purchase day (as in the papers, whose calibration period includes its
/// last day).
pub fn repeat_figures(tx: &Transactions, end: i32, period: Period) -> Vec<Option<RepeatFigures>> {
    (0..tx.n_customers())
        .into_par_iter()
        .map_init(Vec::new, |scratch, c| {
            let first = tx
                .lines(c)
                .filter(|&i| tx.amount[i] > 0 && tx.day[i] <= end)
                .map(|i| tx.day[i])
                .min()?;
            let last = tx
                .lines(c)
                .filter(|&i| tx.amount[i] > 0 && tx.day[i] <= end)
                .map(|i| tx.day[i])
                .max()
                .unwrap_or(first);
            let periods = purchase_periods(tx, c, first, first - 1, end, period, scratch);
            let repeat: Vec<i64> = periods.iter().skip(1).map(|p| p.1).collect();
            let len = f64::from(period.days());
            Some(RepeatFigures {
                x: repeat.len() as u32,
                t_x: f64::from((last - first).div_euclid(period.days())),
                t: f64::from(end - first) / len,
                m_x: mean(&repeat),
                first_day: first,
            })
        })
        .collect()
}

/// The purchase periods (those with a line of amount > 0) among the customer's lines
/// dated `after < day ≤ through`, keyed ⌊(day − first)/period⌋, in order, each with the sum
/// of amount over its lines in that window.
fn purchase_periods(
    tx: &Transactions,
    c: usize,
    first: i32,
    after: i32,
    through: i32,
    period: Period,
    scratch: &mut Vec<(i32, i64)>,
) -> Vec<(i32, i64)> {
    scratch.clear();
    scratch.extend(
        tx.lines(c)
            .filter(|&i| tx.day[i] > after && tx.day[i] <= through)
            .map(|i| ((tx.day[i] - first).div_euclid(period.days()), tx.amount[i])),
    );
    scratch.sort_unstable();
    let mut out = Vec::new();
    for group in scratch.chunk_by(|a, b| a.0 == b.0) {
        if group.iter().any(|l| l.1 > 0) {
            out.push((group[0].0, group.iter().map(|l| l.1).sum()));
        }
    }
    out
}

fn mean(values: &[i64]) -> Option<f64> {
    (!values.is_empty())
        .then(|| values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64)
}

/// Holdout figures over lines with `after < day ≤ through`; periods counted from the
/// customer's first purchase (so calibration and holdout periods line up).
pub fn holdout_figures(
    tx: &Transactions,
    calibration: &[Option<RepeatFigures>],
    after: i32,
    through: i32,
    period: Period,
) -> Vec<HoldoutFigures> {
    (0..tx.n_customers())
        .into_par_iter()
        .map_init(Vec::new, |scratch, c| match calibration[c] {
            None => HoldoutFigures::default(),
            Some(cal) => {
                let periods =
                    purchase_periods(tx, c, cal.first_day, after, through, period, scratch);
                let spend: Vec<i64> = periods.iter().map(|p| p.1).collect();
                HoldoutFigures {
                    x_holdout: periods.len() as u32,
                    m_holdout: mean(&spend),
                }
            }
        })
        .collect()
}

/// Checks a calibration cut-off against the data's span.
pub fn check_calibration_end(tx: &Transactions, end: i32) -> Result<()> {
    let first = tx.day.iter().copied().min().unwrap_or(end);
    if end < first || end >= tx.as_of {
        return Err(Error::Usage(format!(
            "calibration end {} must lie on or after the first transaction ({}) and before the as-of date ({})",
            crate::time::format_day(end),
            crate::time::format_day(first),
            crate::time::format_day(tx.as_of)
        )));
    }
    Ok(())
}

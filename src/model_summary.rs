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
    /// A horizon as "52w", "365d", "1y" or a bare number of periods, in periods of
    /// this length (rounded).
    pub fn horizon(self, text: &str) -> Result<u32> {
        let bad = || {
            Error::Usage(format!(
                "horizon {text:?}: write a number of periods, or 365d, 52w, 1y"
            ))
        };
        let t = text.trim();
        let (number, unit_days) = match t.char_indices().last() {
            Some((i, 'd')) => (&t[..i], Some(1.0)),
            Some((i, 'w')) => (&t[..i], Some(7.0)),
            Some((i, 'y')) => (&t[..i], Some(365.0)),
            _ => (t, None),
        };
        let n: f64 = number.parse().map_err(|_| bad())?;
        let periods = match unit_days {
            Some(days) => n * days / f64::from(self.days()),
            None => n,
        };
        if !(periods >= 1.0 && periods < 1e6) {
            return Err(bad());
        }
        Ok(periods.round() as u32)
    }

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

/// Column names of a model summary file; `None` recognises the usual names, lifetimes'
/// (`frequency`, `recency`, `T`, `monetary_value`, and the `_cal` / `_holdout` columns of
/// its calibration/holdout summary) and the papers' (`x`, `t_x`, `T`, `zbar` or `m_x`,
/// `x_holdout`, `m_holdout`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SummaryColumns {
    pub id: Option<String>,
    pub x: Option<String>,
    pub t_x: Option<String>,
    pub t: Option<String>,
    pub spend: Option<String>,
    pub x_holdout: Option<String>,
    pub spend_holdout: Option<String>,
    /// Holdout length per customer, in T's unit (lifetimes' `duration_holdout`).
    pub holdout_length: Option<String>,
}

/// A model summary read from a file: one customer per row, in file order.
#[derive(Debug, Clone)]
pub struct SummaryFile {
    pub ids: crate::transactions::CustomerIds,
    pub x: Vec<u32>,
    pub t_x: Vec<f64>,
    pub t: Vec<f64>,
    /// Mean spend per repeat purchase, money units; None when x = 0 or no spend column.
    pub m_x: Vec<Option<f64>>,
    pub holdout: Option<SummaryHoldout>,
    /// The names of the columns used, for messages: (x, t_x, T, spend).
    pub columns_used: [String; 4],
}

/// The holdout columns of a model summary.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryHoldout {
    pub x: Vec<u32>,
    pub m: Vec<Option<f64>>,
    /// Holdout length per customer, in T's unit.
    pub length: Vec<f64>,
}

/// Cells as read: a header and the text of every cell, with the file's line (CSV) or
/// row (Parquet) number of the first row.
struct RawTable {
    header: Vec<String>,
    cells: Cells,
    place: &'static str,
    first_line: u64,
}

enum Cells {
    /// Per column, the cell texts.
    Owned(Vec<Vec<String>>),
    /// The file's bytes and, row by row, each cell's byte range: no allocation per
    /// cell for the common unquoted CSV.
    Spans {
        text: Vec<u8>,
        spans: Vec<(u32, u32)>,
        width: usize,
    },
}

impl RawTable {
    fn rows(&self) -> usize {
        match &self.cells {
            Cells::Owned(c) => c.first().map_or(0, Vec::len),
            Cells::Spans { spans, width, .. } => spans.len() / width,
        }
    }

    fn cell(&self, col: usize, row: usize) -> &str {
        match &self.cells {
            Cells::Owned(c) => &c[col][row],
            Cells::Spans { text, spans, width } => {
                let (a, b) = spans[row * width + col];
                std::str::from_utf8(&text[a as usize..b as usize]).unwrap_or("\u{fffd}")
            }
        }
    }
}

/// Reads a model summary (CSV with a header, or Parquet by extension), finds its
/// columns and checks every value; errors name the file, line, column and value.
/// `holdout_length` fills the holdout length when the file has no such column.
pub fn read_summary(
    path: &std::path::Path,
    names: &SummaryColumns,
    holdout_length: Option<f64>,
) -> Result<SummaryFile> {
    let file = path.display().to_string();
    let is_parquet = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq"));
    let raw = if is_parquet {
        read_parquet_cells(path, &file)?
    } else {
        read_csv_cells(path, &file)?
    };
    let find = |given: &Option<String>,
                usual: &[&str],
                role: &'static str,
                required: bool|
     -> Result<Option<usize>> {
        if let Some(name) = given {
            return match raw.header.iter().position(|h| h == name) {
                Some(i) => Ok(Some(i)),
                None => Err(missing(&file, name, role, &raw.header)),
            };
        }
        match usual
            .iter()
            .find_map(|u| raw.header.iter().position(|h| h == u))
        {
            Some(i) => Ok(Some(i)),
            None if required => Err(missing(&file, &usual.join("' or '"), role, &raw.header)),
            None => Ok(None),
        }
    };
    let x_col = find(
        &names.x,
        &["frequency_cal", "frequency", "x"],
        "repeat purchases (x)",
        true,
    )?
    .unwrap_or(0);
    let tx_col = find(
        &names.t_x,
        &["recency_cal", "recency", "t_x"],
        "recency (t_x)",
        true,
    )?
    .unwrap_or(0);
    let t_col = find(&names.t, &["T_cal", "T"], "age (T)", true)?.unwrap_or(0);
    let spend_col = find(
        &names.spend,
        &["monetary_value_cal", "monetary_value", "zbar", "m_x"],
        "mean spend",
        false,
    )?;
    let id_col = find(
        &names.id,
        &[
            "customer_id",
            "CustomerID",
            "customer",
            "ID",
            "id",
            "Id",
            "cust",
        ],
        "customer id",
        false,
    )?;
    let xh_col = find(
        &names.x_holdout,
        &["frequency_holdout", "x_holdout", "x_star"],
        "holdout purchases",
        false,
    )?;
    let mh_col = find(
        &names.spend_holdout,
        &["monetary_value_holdout", "m_holdout"],
        "holdout spend",
        false,
    )?;
    let len_col = find(
        &names.holdout_length,
        &["duration_holdout", "t_star"],
        "holdout length",
        false,
    )?;

    let bad = |col: usize, row: usize, reason: &str, expected: &str| Error::BadRow {
        file: file.clone(),
        place: raw.place,
        line: raw.first_line + row as u64,
        column: raw.header[col].clone(),
        value: raw.cell(col, row).to_string(),
        reason: reason.into(),
        expected: expected.into(),
    };
    let number = |col: usize, row: usize| -> Result<f64> {
        raw.cell(col, row)
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| bad(col, row, "not a number", "a finite number"))
    };
    let count = |col: usize, row: usize| -> Result<u32> {
        let v = number(col, row)?;
        if v < 0.0 || v.fract() != 0.0 || v > f64::from(u32::MAX) {
            return Err(bad(col, row, "not a count", "a whole number >= 0"));
        }
        Ok(v as u32)
    };
    let optional = |col: usize, row: usize| -> Result<Option<f64>> {
        let text = raw.cell(col, row).trim();
        if text.is_empty()
            || text.eq_ignore_ascii_case("nan")
            || text.eq_ignore_ascii_case("null")
            || text == "NA"
        {
            return Ok(None);
        }
        number(col, row).map(Some)
    };
    let n = raw.rows();
    if n == 0 {
        return Err(Error::input(
            file.clone(),
            "the summary has no rows".to_string(),
        ));
    }
    let rows: Vec<usize> = (0..n).collect();
    let parsed: Vec<(u32, f64, f64, Option<f64>)> = rows
        .par_iter()
        .map(|&row| {
            let x = count(x_col, row)?;
            let t_x = number(tx_col, row)?;
            let t = number(t_col, row)?;
            if t_x < 0.0 {
                return Err(bad(tx_col, row, "negative recency", "t_x >= 0"));
            }
            if x == 0 && t_x != 0.0 {
                return Err(bad(
                    tx_col,
                    row,
                    "recency without repeat purchases",
                    "t_x = 0 when x = 0",
                ));
            }
            if t < t_x {
                return Err(bad(t_col, row, "age below recency", "T >= t_x"));
            }
            let m = match spend_col {
                Some(c) if x > 0 => optional(c, row)?,
                _ => None,
            };
            Ok((x, t_x, t, m))
        })
        .collect::<Result<Vec<_>>>()?;
    let holdout = match xh_col {
        None => None,
        Some(xh) => {
            let lengths: Vec<f64> = match (len_col, holdout_length) {
                (Some(c), _) => rows.iter().map(|&r| number(c, r)).collect::<Result<_>>()?,
                (None, Some(l)) => vec![l; n],
                (None, None) => {
                    return Err(Error::Usage(format!(
                        "{file}: holdout column '{}' needs the holdout length: a column duration_holdout (or --holdout-length-col) or --holdout-length",
                        raw.header[xh]
                    )));
                }
            };
            if let Some(r) = lengths.iter().position(|l| !(*l > 0.0)) {
                return Err(bad(
                    len_col.unwrap_or(xh),
                    r,
                    "holdout length not positive",
                    "a length > 0",
                ));
            }
            let x: Vec<u32> = rows.iter().map(|&r| count(xh, r)).collect::<Result<_>>()?;
            let m: Vec<Option<f64>> = match mh_col {
                Some(c) => rows
                    .iter()
                    .map(|&r| if x[r] > 0 { optional(c, r) } else { Ok(None) })
                    .collect::<Result<_>>()?,
                None => vec![None; n],
            };
            Some(SummaryHoldout {
                x,
                m,
                length: lengths,
            })
        }
    };
    let ids = match id_col {
        Some(c) => {
            crate::transactions::CustomerIds::Text((0..n).map(|r| raw.cell(c, r).trim()).collect())
        }
        None => crate::transactions::CustomerIds::Int((1..=n as i64).collect()),
    };
    Ok(SummaryFile {
        ids,
        x: parsed.iter().map(|p| p.0).collect(),
        t_x: parsed.iter().map(|p| p.1).collect(),
        t: parsed.iter().map(|p| p.2).collect(),
        m_x: parsed.iter().map(|p| p.3).collect(),
        holdout,
        columns_used: [
            raw.header[x_col].clone(),
            raw.header[tx_col].clone(),
            raw.header[t_col].clone(),
            spend_col.map_or(String::new(), |c| raw.header[c].clone()),
        ],
    })
}

fn missing(file: &str, column: &str, role: &'static str, header: &[String]) -> Error {
    Error::MissingColumn {
        file: file.to_string(),
        column: column.to_string(),
        role,
        available: header
            .iter()
            .map(|h| format!("'{h}'"))
            .collect::<Vec<_>>()
            .join(", "),
        hint: " (name it with the summary column flags, e.g. --frequency-col)".into(),
    }
}

/// CSV cells as text. Files without quotes are split at line ends into chunks parsed
/// in parallel (a summary of a million customers is tens of megabytes); with quotes a
/// field may hold a line end, so they are read in one pass.
fn read_csv_cells(path: &std::path::Path, file: &str) -> Result<RawTable> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let unreadable = |e: csv::Error| Error::input(file.to_string(), format!("unreadable CSV: {e}"));
    let header_end = memchr::memchr(b'\n', &bytes).map_or(bytes.len(), |i| i + 1);
    let header: Vec<String> = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(&bytes[..header_end])
        .records()
        .next()
        .transpose()
        .map_err(unreadable)?
        .map(|r| r.iter().map(|h| h.trim().to_string()).collect())
        .unwrap_or_default();
    if header.is_empty() {
        return Err(Error::input(
            file.to_string(),
            "empty file: no header".to_string(),
        ));
    }
    let width = header.len();
    let body = &bytes[header_end..];
    let quoted = memchr::memchr(b'"', body).is_some();
    if !quoted && body.len() < u32::MAX as usize {
        let spans = unquoted_spans(body, header_end, width);
        return Ok(RawTable {
            header,
            cells: Cells::Spans {
                text: bytes,
                spans,
                width,
            },
            place: "line",
            first_line: 2,
        });
    }
    let mut cells = vec![Vec::new(); width];
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(unreadable)? {
        for (k, col) in cells.iter_mut().enumerate() {
            col.push(record.get(k).unwrap_or("").to_string());
        }
    }
    Ok(RawTable {
        header,
        cells: Cells::Owned(cells),
        place: "line",
        first_line: 2,
    })
}

/// Byte ranges of the cells of an unquoted CSV body, `width` per line (missing
/// cells empty, extra ones ignored), every line a row (a trailing line end ends
/// the last row), as 32-bit offsets in the file, whose body starts at `offset`.
/// Pieces of about a megabyte, cut at line ends, are split in parallel and joined
/// in order.
fn unquoted_spans(body: &[u8], offset: usize, width: usize) -> Vec<(u32, u32)> {
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < body.len() {
        let want = (start + (1 << 20)).min(body.len());
        let end = match memchr::memchr(b'\n', &body[want.saturating_sub(1)..]) {
            Some(i) if want < body.len() => want - 1 + i + 1,
            _ => body.len(),
        };
        pieces.push((start, end));
        start = end;
    }
    let parts: Vec<Vec<(u32, u32)>> = pieces
        .par_iter()
        .map(|&(from, to)| {
            let mut out = Vec::with_capacity((to - from) / 8);
            let span = |a: usize, b: usize| ((a + offset) as u32, (b + offset) as u32);
            let mut line_start = from;
            while line_start < to {
                let line_end =
                    memchr::memchr(b'\n', &body[line_start..to]).map_or(to, |i| line_start + i);
                let mut content_end = line_end;
                if content_end > line_start && body[content_end - 1] == b'\r' {
                    content_end -= 1;
                }
                let mut cell_start = line_start;
                let mut k = 0;
                for comma in memchr::memchr_iter(b',', &body[line_start..content_end]) {
                    if k < width {
                        out.push(span(cell_start, line_start + comma));
                    }
                    k += 1;
                    cell_start = line_start + comma + 1;
                }
                if k < width {
                    out.push(span(cell_start, content_end));
                    k += 1;
                }
                while k < width {
                    out.push(span(content_end, content_end));
                    k += 1;
                }
                line_start = line_end + 1;
            }
            out
        })
        .collect();
    parts.concat()
}

/// Parquet columns as text (numbers printed back exactly), so that checks and
/// messages work the same for both formats.
fn read_parquet_cells(path: &std::path::Path, file: &str) -> Result<RawTable> {
    use polars::prelude::*;
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let df = ParquetReader::new(f)
        .finish()
        .map_err(|e| Error::input(file.to_string(), format!("unreadable Parquet: {e}")))?;
    let header: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let cells = df
        .columns()
        .par_iter()
        .map(|c| {
            let s = c.as_materialized_series();
            let text = s.cast(&DataType::String).map_err(|e| {
                Error::input(file.to_string(), format!("column '{}': {e}", s.name()))
            })?;
            let text = text
                .str()
                .map_err(|e| Error::input(file.to_string(), e.to_string()))?;
            let text = text.rechunk();
            let array = text.downcast_as_array();
            Ok((0..array.len())
                .map(|i| array.get(i).unwrap_or("").to_string())
                .collect::<Vec<String>>())
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RawTable {
        header,
        cells: Cells::Owned(cells),
        place: "row",
        first_line: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizons_in_days_weeks_years_or_periods() {
        assert_eq!(Period::Week.horizon("52w").unwrap(), 52);
        assert_eq!(Period::Week.horizon("1y").unwrap(), 52); // 365/7 = 52.1
        assert_eq!(Period::Day.horizon("1y").unwrap(), 365);
        assert_eq!(Period::Week.horizon(" 39 ").unwrap(), 39);
        assert_eq!(Period::Day.horizon("2w").unwrap(), 14);
        for bad in ["0", "3d", "w", "-1y", "1e7", "x"] {
            let err = Period::Week.horizon(bad).unwrap_err().to_string();
            assert!(err.contains("horizon"), "{bad}: {err}");
        }
    }
}

//! Monthly cohorts and their retention triangle (JOB.md, "Cohorts and retention").
//!
//! A customer's cohort is the calendar month of their first purchase. For every cohort
//! and every month k = 0, 1, … after it, up to the month of as_of − 1 day, the triangle
//! counts the cohort's customers who bought in that month (`active`), their share of the
//! cohort (`retention`) and the revenue of the cohort's lines in that month (returns
//! included). Every (cohort, k) in range has a row, zero where nobody bought.
//!
//! Customers without a purchase (frequency 0) belong to no cohort; lines dated before a
//! customer's cohort month (a return of an earlier purchase, say) are left out. A line
//! dated on the as-of day itself falls in a month after the last period only when the
//! as-of date is the first of a month; it is left out too, and so is a cohort that starts
//! in that month (it has no period yet).
//!
//! Months are dense integers (year × 12 + month − 1) and the triangle is a flat array
//! accumulated by rayon over customers; sums are integers, so every thread count gives
//! the same result.
//!
//! Not for: the cohort as a grouping of the cube (see `cube`).

use polars::prelude::*;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::money;
use crate::output::percent;
use crate::summary::Summary;
use crate::transactions::Transactions;

/// The month of a day number as year × 12 + (month − 1): consecutive months are
/// consecutive integers.
///
/// ```
/// use custvalue::cohorts::{month_index, month_label};
/// let day = custvalue::time::parse_iso_date("2024-02-29").unwrap();
/// assert_eq!(month_index(day), 2024 * 12 + 1);
/// assert_eq!(month_label(month_index(day)), "2024-02");
/// ```
pub fn month_index(day: i32) -> i32 {
    // Integer civil-from-days: this runs once per line.
    let (year, month, _) = crate::time::civil_from_days(day);
    year * 12 + month as i32 - 1
}

/// `YYYY-MM` text of a month index.
///
/// ```
/// assert_eq!(custvalue::cohorts::month_label(2023 * 12 + 11), "2023-12");
/// ```
pub fn month_label(month: i32) -> String {
    format!(
        "{:04}-{:02}",
        month.div_euclid(12),
        month.rem_euclid(12) + 1
    )
}

/// The cohort month of every customer (None without a purchase).
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("tx.csv");
/// # std::fs::write(&path, "customer_id,ts,amount\nA,2024-01-31,10\nA,2024-02-01,5\nB,2024-02-10,-3\n").unwrap();
/// # let loaded = custvalue::load(&custvalue::LoadOptions::new([path.to_str().unwrap()])).unwrap();
/// let summary = custvalue::summarize(&loaded.transactions).unwrap();
/// let months = custvalue::cohorts::cohort_months(&summary);
/// assert_eq!(months, vec![Some(2024 * 12), None]); // B only returned goods
/// ```
pub fn cohort_months(s: &Summary) -> Vec<Option<i32>> {
    s.first_purchase
        .iter()
        .map(|d| d.map(month_index))
        .collect()
}

/// One cell of the triangle. Money in minor units.
#[derive(Debug, Clone, PartialEq)]
pub struct CohortRow {
    /// The cohort month, `YYYY-MM`.
    pub cohort: String,
    /// Months after the cohort month (0 = the cohort month).
    pub period: u32,
    pub cohort_size: u64,
    /// Customers of the cohort with a line of amount > 0 in the month.
    pub active: u64,
    /// active / cohort_size.
    pub retention: f64,
    /// Sum of amount of the cohort's lines in the month (returns included).
    pub revenue: i64,
}

/// The retention triangle: rows by cohort (chronological), then period.
#[derive(Debug, Clone, PartialEq)]
pub struct Cohorts {
    pub rows: Vec<CohortRow>,
    /// The last month with a period: the month of as_of − 1 day.
    pub last_month: String,
    pub currency_decimals: u32,
}

/// Where each present cohort's periods start in the flat triangle.
struct Layout {
    /// Cohort months in order, with their first cell and number of periods.
    cohorts: Vec<(i32, usize, usize)>,
    /// Slot (index into `cohorts`) of each customer; None leaves the customer out.
    slot: Vec<Option<u32>>,
    cells: usize,
}

impl Layout {
    fn new(months: &[Option<i32>], last: i32) -> Layout {
        let mut present: Vec<i32> = months.iter().flatten().copied().collect();
        present.sort_unstable();
        present.dedup();
        let mut cohorts = Vec::with_capacity(present.len());
        let mut cells = 0;
        for &m in &present {
            let periods = (i64::from(last) - i64::from(m) + 1).max(0) as usize;
            cohorts.push((m, cells, periods));
            cells += periods;
        }
        let slot = months
            .iter()
            .map(|m| {
                m.and_then(|m| present.binary_search(&m).ok())
                    .filter(|&i| cohorts[i].2 > 0)
                    .map(|i| i as u32)
            })
            .collect();
        Layout {
            cohorts,
            slot,
            cells,
        }
    }
}

/// Per-cell sums of one share of the customers.
struct Triangle {
    active: Vec<u64>,
    revenue: Vec<i128>,
    size: Vec<u64>,
}

impl Triangle {
    fn new(cells: usize, cohorts: usize) -> Triangle {
        Triangle {
            active: vec![0; cells],
            revenue: vec![0; cells],
            size: vec![0; cohorts],
        }
    }

    fn add(mut self, other: Triangle) -> Triangle {
        for (a, b) in self.active.iter_mut().zip(other.active) {
            *a += b;
        }
        for (a, b) in self.revenue.iter_mut().zip(other.revenue) {
            *a += b;
        }
        for (a, b) in self.size.iter_mut().zip(other.size) {
            *a += b;
        }
        self
    }
}

/// Computes the retention triangle.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("tx.csv");
/// # std::fs::write(&path, "customer_id,ts,amount\n\
/// #     A,2024-01-05,10\nB,2024-01-20,20\nA,2024-03-02,5\nB,2024-03-09,-4\n").unwrap();
/// # let loaded = custvalue::load(&custvalue::LoadOptions::new([path.to_str().unwrap()])).unwrap();
/// let tx = &loaded.transactions;
/// let summary = custvalue::summarize(tx).unwrap();
/// let triangle = custvalue::cohorts::cohorts(tx, &summary).unwrap();
/// // One cohort (2024-01, two customers), periods 0..2; February is empty.
/// let active: Vec<u64> = triangle.rows.iter().map(|r| r.active).collect();
/// assert_eq!(active, vec![2, 0, 1]);
/// assert_eq!(triangle.rows[2].retention, 0.5);
/// assert_eq!(triangle.rows[2].revenue, 100); // 5.00 - 4.00, in cents
/// ```
pub fn cohorts(tx: &Transactions, s: &Summary) -> Result<Cohorts> {
    if s.len() != tx.n_customers() {
        return Err(Error::Data(format!(
            "the summary has {} customers, the transactions {}",
            s.len(),
            tx.n_customers()
        )));
    }
    let last = month_index(tx.as_of - 1);
    let months = cohort_months(s);
    let layout = Layout::new(&months, last);
    let months_of = MonthTable::new(tx);
    let longest = layout.cohorts.iter().map(|c| c.2).max().unwrap_or(0);
    let sums = crate::parallel::customer_chunks(tx.n_customers())
        .into_par_iter()
        .map(|range| {
            let mut t = Triangle::new(layout.cells, layout.cohorts.len());
            let mut active_mark = vec![0usize; longest + 1];
            for c in range {
                if let Some(slot) = layout.slot[c] {
                    t.size[slot as usize] += 1;
                    let cohort = layout.cohorts[slot as usize];
                    add_customer(tx, c, cohort, &months_of, &mut t, &mut active_mark);
                }
            }
            t
        })
        .reduce(
            || Triangle::new(layout.cells, layout.cohorts.len()),
            Triangle::add,
        );
    let mut rows = Vec::with_capacity(layout.cells);
    for (slot, &(m0, base, n)) in layout.cohorts.iter().enumerate() {
        let size = sums.size[slot];
        for k in 0..n {
            let revenue = i64::try_from(sums.revenue[base + k]).map_err(|_| {
                Error::Data(format!(
                    "the revenue of cohort {} in period {k} exceeds 64-bit minor units",
                    month_label(m0)
                ))
            })?;
            rows.push(CohortRow {
                cohort: month_label(m0),
                period: k as u32,
                cohort_size: size,
                active: sums.active[base + k],
                retention: sums.active[base + k] as f64 / size as f64,
                revenue,
            });
        }
    }
    Ok(Cohorts {
        rows,
        last_month: month_label(last),
        currency_decimals: tx.currency_decimals,
    })
}

/// Month of every day from the first line's to the last line's, looked up per line.
struct MonthTable {
    first: i32,
    month: Vec<i32>,
}

impl MonthTable {
    /// Spans longer than this many days (46,000 years) compute months instead.
    const MAX_SPAN: i64 = 1 << 24;

    fn new(tx: &Transactions) -> MonthTable {
        let (lo, hi) = tx
            .day
            .par_iter()
            .fold(
                || (i32::MAX, i32::MIN),
                |(lo, hi), &d| (lo.min(d), hi.max(d)),
            )
            .reduce(|| (i32::MAX, i32::MIN), |a, b| (a.0.min(b.0), a.1.max(b.1)));
        let span = i64::from(hi) - i64::from(lo) + 1;
        if span <= 0 || span > Self::MAX_SPAN {
            return MonthTable {
                first: 0,
                month: Vec::new(),
            };
        }
        MonthTable {
            first: lo,
            month: (lo..=hi).map(month_index).collect(),
        }
    }

    fn of(&self, day: i32) -> i32 {
        let at = i64::from(day) - i64::from(self.first);
        usize::try_from(at)
            .ok()
            .and_then(|at| self.month.get(at))
            .copied()
            .unwrap_or_else(|| month_index(day))
    }
}

/// Adds one customer's lines from their cohort month `m0` on (`n` periods from cell
/// `base`); `active_mark[k]` remembers the last customer (+1) counted in period k, and
/// its last entry is a sink.
fn add_customer(
    tx: &Transactions,
    c: usize,
    (m0, base, n): (i32, usize, usize),
    months: &MonthTable,
    t: &mut Triangle,
    active_mark: &mut [usize],
) {
    let sink = active_mark.len() - 1;
    for i in tx.lines(c) {
        let k = i64::from(months.of(tx.day[i])) - i64::from(m0);
        if k < 0 || k >= n as i64 {
            continue;
        }
        let k = k as usize;
        t.revenue[base + k] += i128::from(tx.amount[i]);
        // Without a branch on the data: a line that is no purchase marks the sink.
        let buys = tx.amount[i] > 0;
        let slot = if buys { k } else { sink };
        let new = buys & (active_mark[slot] != c + 1);
        active_mark[slot] = c + 1;
        t.active[base + k] += u64::from(new);
    }
}

impl Cohorts {
    /// The triangle as a frame: `cohort, period, cohort_size, active, retention,
    /// revenue`, money in currency units.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("tx.csv");
    /// # std::fs::write(&path, "customer_id,ts,amount\nA,2024-01-05,10\nA,2024-02-05,5\n").unwrap();
    /// # let loaded = custvalue::load(&custvalue::LoadOptions::new([path.to_str().unwrap()])).unwrap();
    /// # let summary = custvalue::summarize(&loaded.transactions).unwrap();
    /// let triangle = custvalue::cohorts::cohorts(&loaded.transactions, &summary).unwrap();
    /// let frame = triangle.to_frame().unwrap();
    /// assert_eq!(frame.get_column_names(), ["cohort", "period", "cohort_size", "active", "retention", "revenue"]);
    /// assert_eq!(frame.height(), 2);
    /// ```
    pub fn to_frame(&self) -> Result<DataFrame> {
        let r = &self.rows;
        let d = self.currency_decimals;
        let columns = vec![
            Column::new(
                "cohort".into(),
                r.iter().map(|x| x.cohort.as_str()).collect::<Vec<_>>(),
            ),
            Column::new(
                "period".into(),
                r.iter().map(|x| i64::from(x.period)).collect::<Vec<_>>(),
            ),
            Column::new(
                "cohort_size".into(),
                r.iter().map(|x| x.cohort_size as i64).collect::<Vec<_>>(),
            ),
            Column::new(
                "active".into(),
                r.iter().map(|x| x.active as i64).collect::<Vec<_>>(),
            ),
            Column::new(
                "retention".into(),
                r.iter().map(|x| x.retention).collect::<Vec<_>>(),
            ),
            Column::new(
                "revenue".into(),
                r.iter()
                    .map(|x| money::minor_to_f64(x.revenue, d))
                    .collect::<Vec<_>>(),
            ),
        ];
        Ok(DataFrame::new(r.len(), columns)?)
    }

    /// One sentence from the data: the size-weighted retention one month after the
    /// cohort month, and the cohort that kept the most.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("tx.csv");
    /// # std::fs::write(&path, "customer_id,ts,amount\nA,2024-01-05,10\nB,2024-01-06,7\nA,2024-02-05,5\n").unwrap();
    /// # let loaded = custvalue::load(&custvalue::LoadOptions::new([path.to_str().unwrap()])).unwrap();
    /// # let summary = custvalue::summarize(&loaded.transactions).unwrap();
    /// let triangle = custvalue::cohorts::cohorts(&loaded.transactions, &summary).unwrap();
    /// assert_eq!(
    ///     triangle.headline(),
    ///     "50.0% of customers buy again in the month after their first (1 cohort); best: 2024-01 with 50.0%"
    /// );
    /// ```
    pub fn headline(&self) -> String {
        let second: Vec<&CohortRow> = self.rows.iter().filter(|r| r.period == 1).collect();
        let size: u64 = second.iter().map(|r| r.cohort_size).sum();
        let active: u64 = second.iter().map(|r| r.active).sum();
        // Ties keep the earlier cohort.
        let best = second
            .iter()
            .fold(None::<&CohortRow>, |best, r| match best {
                Some(b) if b.retention >= r.retention => Some(b),
                _ => Some(r),
            });
        match best {
            Some(best) if size > 0 => format!(
                "{} of customers buy again in the month after their first ({} cohort{}); best: {} with {}",
                percent(active as f64 / size as f64),
                crate::output::thousands(second.len() as u64),
                if second.len() == 1 { "" } else { "s" },
                best.cohort,
                percent(best.retention)
            ),
            _ => "no cohort has a month after its first yet".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_index_agrees_with_chrono() {
        for day in (-800_000..800_000).step_by(13) {
            let (y, m) = crate::time::year_month(day);
            assert_eq!(month_index(day), y * 12 + m as i32 - 1, "day {day}");
        }
        assert_eq!(month_label(month_index(0)), "1970-01");
        assert_eq!(month_label(month_index(-1)), "1969-12");
    }

    #[test]
    fn layout_skips_cohorts_after_the_last_month() {
        let l = Layout::new(&[Some(5), None, Some(3), Some(7), Some(5)], 6);
        assert_eq!(l.cohorts, vec![(3, 0, 4), (5, 4, 2), (7, 6, 0)]);
        assert_eq!(l.slot, vec![Some(1), None, Some(0), None, Some(1)]);
        assert_eq!(l.cells, 6);
    }
}

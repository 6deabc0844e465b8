//! The per-customer summary of JOB.md: first and last purchase, recency, tenure,
//! frequency (distinct orders with a purchase line), monetary and profit (returns
//! included), average order value and distinct categories.
//!
//! Computed by a rayon kernel over each customer's contiguous lines; money stays in
//! integer minor units, so the result is the same at any thread count.
//!
//! Not for: scores and segments (see `rfm`, `deciles`, `profit`, `lifecycle`).

use polars::prelude::*;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::money;
use crate::transactions::{CustomerIds, NO_CATEGORY, Transactions};

/// One row per customer, in customer-id order. Money in minor units.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub ids: CustomerIds,
    /// Day number of the as-of date.
    pub as_of: i32,
    pub currency_decimals: u32,
    /// Day of the first line with amount > 0 (None when every line is a return).
    pub first_purchase: Vec<Option<i32>>,
    pub last_purchase: Vec<Option<i32>>,
    pub frequency: Vec<u32>,
    pub monetary: Vec<i64>,
    pub profit: Vec<i64>,
    pub n_categories: Vec<u32>,
}

/// What one customer's lines add up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct CustomerTotals {
    first: Option<i32>,
    last: Option<i32>,
    frequency: u32,
    monetary: i64,
    profit: i64,
    n_categories: u32,
}

/// Summarises every customer.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("tx.csv");
/// std::fs::write(&path, "customer_id,ts,order_id,amount\n\
///     A,2024-01-01,1,10.00\nA,2024-01-01,1,5.00\nA,2024-01-03,2,-2\nB,2024-01-02,3,7.5\n").unwrap();
/// let loaded = custvalue::load(&custvalue::LoadOptions::new([path.to_str().unwrap()])).unwrap();
/// let summary = custvalue::summarize(&loaded.transactions).unwrap();
/// assert_eq!(summary.frequency, vec![1, 1]);
/// assert_eq!(summary.monetary, vec![1300, 750]);
/// assert_eq!(summary.recency_days(0), Some(3)); // as-of = 2024-01-04
/// let frame = summary.to_frame().unwrap();
/// assert_eq!(frame.height(), 2);
/// ```
pub fn summarize(tx: &Transactions) -> Result<Summary> {
    // Collected in place, one slot per customer (collecting straight into a
    // `Result<Vec<_>>` would append the threads' pieces one after the other); a failing
    // customer leaves its slot empty and the first failure in customer order is kept.
    // The ids are copied beside.
    let failure: std::sync::Mutex<Option<(usize, Error)>> = std::sync::Mutex::new(None);
    let (totals, ids): (Vec<CustomerTotals>, _) = rayon::join(
        || {
            (0..tx.n_customers())
                .into_par_iter()
                .map_init(Vec::new, |scratch, c| {
                    customer_totals(tx, c, scratch).unwrap_or_else(|e| {
                        let mut first = failure.lock().expect("never poisoned");
                        if first.as_ref().is_none_or(|(at, _)| c < *at) {
                            *first = Some((c, e));
                        }
                        CustomerTotals::default()
                    })
                })
                .collect()
        },
        || tx.ids.clone(),
    );
    if let Some((_, e)) = failure.into_inner().expect("never poisoned") {
        return Err(e);
    }
    // Each column is gathered in parallel.
    fn gather<T: Send>(totals: &[CustomerTotals], f: fn(&CustomerTotals) -> T) -> Vec<T> {
        totals.par_iter().map(f).collect()
    }
    Ok(Summary {
        ids,
        as_of: tx.as_of,
        currency_decimals: tx.currency_decimals,
        first_purchase: gather(&totals, |t| t.first),
        last_purchase: gather(&totals, |t| t.last),
        frequency: gather(&totals, |t| t.frequency),
        monetary: gather(&totals, |t| t.monetary),
        profit: gather(&totals, |t| t.profit),
        n_categories: gather(&totals, |t| t.n_categories),
    })
}

fn customer_totals(tx: &Transactions, c: usize, scratch: &mut Vec<u64>) -> Result<CustomerTotals> {
    let lines = tx.lines(c);
    let mut t = CustomerTotals::default();
    let overflow = || {
        Error::Data(format!(
            "the sums of customer {} exceed 64-bit minor units",
            tx.ids.display(c)
        ))
    };
    scratch.clear();
    for i in lines.clone() {
        t.monetary = t.monetary.checked_add(tx.amount[i]).ok_or_else(overflow)?;
        t.profit = t.profit.checked_add(tx.profit[i]).ok_or_else(overflow)?;
        if tx.amount[i] > 0 {
            let d = tx.day[i];
            t.first = Some(t.first.map_or(d, |f| f.min(d)));
            t.last = Some(t.last.map_or(d, |l| l.max(d)));
            scratch.push(tx.order[i]);
        }
    }
    t.frequency = count_distinct(scratch);
    scratch.clear();
    scratch.extend(
        lines
            .filter(|&i| tx.amount[i] > 0 && tx.category[i] != NO_CATEGORY)
            .map(|i| u64::from(tx.category[i])),
    );
    t.n_categories = count_distinct(scratch);
    Ok(t)
}

/// Number of distinct values (sorts the slice).
pub(crate) fn count_distinct(values: &mut [u64]) -> u32 {
    values.sort_unstable();
    let mut n = 0u32;
    for (i, v) in values.iter().enumerate() {
        if i == 0 || values[i - 1] != *v {
            n += 1;
        }
    }
    n
}

impl CustomerIds {
    /// The ids of customers `r`.
    pub fn slice(&self, r: std::ops::Range<usize>) -> CustomerIds {
        match self {
            CustomerIds::Text(v) => CustomerIds::Text(v.select(r)),
            CustomerIds::Int(v) => CustomerIds::Int(v[r].to_vec()),
        }
    }
}

impl Summary {
    /// Customers `r` only (same as-of date and currency).
    pub fn slice(&self, r: std::ops::Range<usize>) -> Summary {
        Summary {
            ids: self.ids.slice(r.clone()),
            as_of: self.as_of,
            currency_decimals: self.currency_decimals,
            first_purchase: self.first_purchase[r.clone()].to_vec(),
            last_purchase: self.last_purchase[r.clone()].to_vec(),
            frequency: self.frequency[r.clone()].to_vec(),
            monetary: self.monetary[r.clone()].to_vec(),
            profit: self.profit[r.clone()].to_vec(),
            n_categories: self.n_categories[r].to_vec(),
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// as_of − last_purchase, in days.
    pub fn recency_days(&self, c: usize) -> Option<i32> {
        self.last_purchase[c].map(|d| self.as_of - d)
    }

    /// as_of − first_purchase, in days.
    pub fn tenure_days(&self, c: usize) -> Option<i32> {
        self.first_purchase[c].map(|d| self.as_of - d)
    }

    /// monetary / frequency in minor units, rounded half away from zero.
    pub fn avg_order_value(&self, c: usize) -> Option<i64> {
        (self.frequency[c] > 0).then(|| {
            money::div_round_half_away(i128::from(self.monetary[c]), i128::from(self.frequency[c]))
                as i64
        })
    }

    /// Sum of monetary over all customers.
    pub fn total_monetary(&self) -> i128 {
        self.monetary.iter().map(|&m| i128::from(m)).sum()
    }

    /// Sum of profit over all customers.
    pub fn total_profit(&self) -> i128 {
        self.profit.iter().map(|&m| i128::from(m)).sum()
    }

    /// Money in currency units, for output columns.
    pub fn money(&self, minor: i64) -> f64 {
        money::minor_to_f64(minor, self.currency_decimals)
    }

    /// The summary as a polars frame, one row per customer in customer-id order, with
    /// the JOB.md column names. Money is in currency units.
    pub fn to_frame(&self) -> Result<DataFrame> {
        let columns = crate::output::par_columns(self.column_tasks())?;
        Ok(DataFrame::new(self.len(), columns)?)
    }

    /// The tasks building [`to_frame`](Self::to_frame)'s columns.
    pub(crate) fn column_tasks(&self) -> Vec<crate::output::ColumnTask<'_>> {
        use crate::output::column_task as task;
        let n = self.len();
        let money = |m: i64| self.money(m);
        vec![
            Box::new(|| Ok(self.ids.to_column(None))),
            Box::new(|| days("first_purchase", &self.first_purchase)),
            Box::new(|| days("last_purchase", &self.last_purchase)),
            task("recency_days", n, |c| self.recency_days(c)),
            task("tenure_days", n, |c| self.tenure_days(c)),
            task("frequency", n, |c| i64::from(self.frequency[c])),
            task("monetary", n, move |c| Some(money(self.monetary[c]))),
            task("profit", n, move |c| Some(money(self.profit[c]))),
            task("avg_order_value", n, move |c| {
                self.avg_order_value(c).map(money)
            }),
            task("n_categories", n, |c| i64::from(self.n_categories[c])),
        ]
    }
}

/// Day numbers as a polars date column.
fn days(name: &str, v: &[Option<i32>]) -> PolarsResult<Column> {
    Column::new(name.into(), v).cast(&DataType::Date)
}

/// Summaries made up for the analyses' tests.
#[cfg(test)]
pub(crate) mod test_data {
    use super::*;

    pub(crate) fn summary_of(monetary: &[i64], profit: &[i64]) -> Summary {
        let n = monetary.len();
        Summary {
            ids: CustomerIds::Int((0..n as i64).collect()),
            as_of: 100,
            currency_decimals: 2,
            first_purchase: vec![Some(1); n],
            last_purchase: vec![Some(1); n],
            frequency: vec![1; n],
            monetary: monetary.to_vec(),
            profit: profit.to_vec(),
            n_categories: vec![1; n],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_customer_whose_sums_overflow_is_named_at_any_thread_count() {
        let n = 5_000;
        let mut amount = vec![100i64; 2 * n];
        // Two lines of just over half the range each: customers 1234 and 4321 overflow.
        for c in [1_234, 4_321] {
            amount[2 * c] = i64::MAX / 2 + 1;
            amount[2 * c + 1] = i64::MAX / 2 + 1;
        }
        let tx = Transactions {
            ids: CustomerIds::Int((0..n as i64).collect()),
            offsets: (0..=n).map(|c| 2 * c).collect(),
            day: vec![19_000; 2 * n],
            amount,
            profit: vec![0; 2 * n],
            order: (0..2 * n as u64).collect(),
            category: vec![NO_CATEGORY; 2 * n],
            categories: Vec::new(),
            currency_decimals: 2,
            as_of: 19_001,
        };
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let err = pool.install(|| summarize(&tx)).unwrap_err().to_string();
            assert!(err.contains("customer 1234 exceed"), "{threads}: {err}");
        }
        let mut fine = tx.clone();
        fine.amount = vec![100; 2 * n];
        let summary = summarize(&fine).unwrap();
        assert_eq!((summary.monetary[4_999], summary.frequency[0]), (200, 2));
    }
}

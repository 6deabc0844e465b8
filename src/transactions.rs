//! The columnar lines: the central data type, one table of transaction lines grouped by
//! customer, that the loader fills and every analysis reads.
//!
//! Not for: reading files (see `load`) or aggregating (see `summary`).

use polars::prelude::*;

use crate::error::Result;
use crate::money;

/// Marks a line without a category.
pub const NO_CATEGORY: u32 = u32::MAX;

/// Distinct customer ids in output order: integers numerically, text by UTF-8 bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum CustomerIds {
    Text(TextIds),
    Int(Vec<i64>),
}

/// Text ids in one buffer: a few bytes each beside their text, where a `String` apiece
/// would cost a heap block and 24 bytes more (half a gigabyte at 12 million customers).
///
/// ```
/// let ids: custvalue::TextIds = ["b7", "", "a"].into_iter().collect();
/// assert_eq!((ids.len(), &ids[0], &ids[1]), (3, "b7", ""));
/// assert_eq!(ids.iter().collect::<Vec<_>>(), ["b7", "", "a"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextIds {
    bytes: String,
    /// End of each id in `bytes`.
    ends: Vec<usize>,
}

impl TextIds {
    /// No ids.
    pub fn new() -> TextIds {
        TextIds::default()
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is no id.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Id `i`; panics when `i` is out of range, as indexing does.
    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    /// Appends `id` as the last id.
    pub fn push(&mut self, id: &str) {
        self.bytes.push_str(id);
        self.ends.push(self.bytes.len());
    }

    /// The ids in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + Clone + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// The ids of `ids`, in order: as [`collect`](Iterator::collect), with runs of ids
    /// gathered in parallel.
    pub fn from_slice<S: AsRef<str> + Sync>(ids: &[S]) -> TextIds {
        use rayon::prelude::*;
        let run = ids
            .len()
            .div_ceil(4 * rayon::current_num_threads())
            .max(4096);
        let runs: Vec<TextIds> = ids
            .par_chunks(run)
            .map(|run| {
                let mut ids = TextIds {
                    bytes: String::with_capacity(run.iter().map(|id| id.as_ref().len()).sum()),
                    ends: Vec::with_capacity(run.len()),
                };
                run.iter().for_each(|id| ids.push(id.as_ref()));
                ids
            })
            .collect();
        let mut all = TextIds {
            bytes: String::with_capacity(runs.iter().map(|r| r.bytes.len()).sum()),
            ends: Vec::with_capacity(ids.len()),
        };
        for r in runs {
            let base = all.bytes.len();
            all.bytes.push_str(&r.bytes);
            all.ends.extend(r.ends.iter().map(|end| base + end));
        }
        all
    }

    /// The ids `rows`, in that order.
    pub fn select(&self, rows: impl IntoIterator<Item = usize>) -> TextIds {
        rows.into_iter().map(|i| self.get(i)).collect()
    }
}

impl std::ops::Index<usize> for TextIds {
    type Output = str;

    fn index(&self, i: usize) -> &str {
        self.get(i)
    }
}

impl<S: AsRef<str>> FromIterator<S> for TextIds {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> TextIds {
        let mut ids = TextIds::new();
        for id in iter {
            ids.push(id.as_ref());
        }
        ids
    }
}

impl CustomerIds {
    pub fn len(&self) -> usize {
        match self {
            CustomerIds::Text(v) => v.len(),
            CustomerIds::Int(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The id of customer `i` as text.
    pub fn display(&self, i: usize) -> String {
        match self {
            CustomerIds::Text(v) => v[i].to_string(),
            CustomerIds::Int(v) => v[i].to_string(),
        }
    }

    /// A polars column named `customer_id` holding the ids selected by `rows`
    /// (all customers when `rows` is `None`).
    pub fn to_column(&self, rows: Option<&[u32]>) -> Column {
        let name: PlSmallStr = "customer_id".into();
        match (self, rows) {
            (CustomerIds::Text(v), None) => Column::new(name, v.iter().collect::<Vec<_>>()),
            (CustomerIds::Int(v), None) => Column::new(name, v.as_slice()),
            (CustomerIds::Text(v), Some(r)) => {
                Column::new(name, r.iter().map(|&i| &v[i as usize]).collect::<Vec<_>>())
            }
            (CustomerIds::Int(v), Some(r)) => {
                Column::new(name, r.iter().map(|&i| v[i as usize]).collect::<Vec<_>>())
            }
        }
    }
}

/// Transaction lines, validated and grouped by customer.
///
/// The lines of customer `c` (an index into `ids`) are `offsets[c]..offsets[c + 1]`, in
/// the order they were read. Money is in minor units.
#[derive(Debug, Clone)]
pub struct Transactions {
    pub ids: CustomerIds,
    pub offsets: Vec<usize>,
    /// Days since 1970-01-01.
    pub day: Vec<i32>,
    pub amount: Vec<i64>,
    /// amount − cost, or amount × margin where there is no cost.
    pub profit: Vec<i64>,
    /// Lines of one customer with equal keys belong to one order.
    pub order: Vec<u64>,
    /// Index into `categories`, or [`NO_CATEGORY`].
    pub category: Vec<u32>,
    /// Category names sorted by UTF-8 bytes.
    pub categories: Vec<String>,
    pub currency_decimals: u32,
    /// Day number of the as-of date.
    pub as_of: i32,
}

impl Transactions {
    pub fn n_customers(&self) -> usize {
        self.ids.len()
    }

    pub fn n_lines(&self) -> usize {
        self.day.len()
    }

    /// Line range of customer `c`.
    pub fn lines(&self, c: usize) -> std::ops::Range<usize> {
        self.offsets[c]..self.offsets[c + 1]
    }

    /// The lines as a polars frame: `customer_id, date, amount, profit, order_key,
    /// category`, money in currency units.
    pub fn to_frame(&self) -> Result<DataFrame> {
        let n = self.n_lines();
        let mut owner = Vec::with_capacity(n);
        for c in 0..self.n_customers() {
            owner.extend(std::iter::repeat_n(c as u32, self.lines(c).len()));
        }
        let d = self.currency_decimals;
        let money = |v: &[i64]| {
            v.iter()
                .map(|&m| money::minor_to_f64(m, d))
                .collect::<Vec<_>>()
        };
        let cats: Vec<Option<&str>> = self
            .category
            .iter()
            .map(|&k| (k != NO_CATEGORY).then(|| self.categories[k as usize].as_str()))
            .collect();
        let columns = vec![
            self.ids.to_column(Some(&owner)),
            Column::new("date".into(), self.day.as_slice()).cast(&DataType::Date)?,
            Column::new("amount".into(), money(&self.amount)),
            Column::new("profit".into(), money(&self.profit)),
            Column::new("order_key".into(), self.order.as_slice()),
            Column::new("category".into(), cats),
        ];
        Ok(DataFrame::new(n, columns)?)
    }
}

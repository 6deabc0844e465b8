//! Segment migration: where the customers of the previous run's segment file are now,
//! segment by segment, with customers new to this run and those who vanished from it.
//!
//! Not for: finding the previous run (see `run`) or scoring segments (see `segments`).

use std::collections::BTreeMap;
use std::path::Path;

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::segments::Segmentation;
use crate::transactions::{CustomerIds, TextIds};

/// Customers who were in one segment last run and are in another now (new and vanished
/// customers not counted).
pub fn moved_customers(rows: &[Migration]) -> u64 {
    rows.iter()
        .filter(|r| r.from != r.to && r.from != NEW && r.to != VANISHED)
        .map(|r| r.customers)
        .sum()
}

/// Label of customers absent from the previous run.
pub const NEW: &str = "(new)";

/// Label of customers absent from this run.
pub const VANISHED: &str = "(vanished)";

/// Label of customers without a purchase (no segment).
pub const NO_SEGMENT: &str = "(no purchase)";

/// The previous run's customers: id, segment and monetary (minor units), in the order
/// of its segment file.
#[derive(Debug, Clone, PartialEq)]
pub struct Previous {
    /// Integers when the previous Parquet file stored them as integers, text otherwise.
    pub ids: CustomerIds,
    /// Index into `segments`.
    pub segment: Vec<u32>,
    pub monetary: Vec<i64>,
    /// Segment names (`NO_SEGMENT` for customers without one).
    pub segments: Vec<String>,
}

impl Default for Previous {
    fn default() -> Previous {
        Previous {
            ids: CustomerIds::Text(TextIds::new()),
            segment: Vec::new(),
            monetary: Vec::new(),
            segments: Vec::new(),
        }
    }
}

impl Previous {
    /// Appends a customer with a text id (the ids must be text).
    fn push_text(&mut self, id: &str, segment: &str, monetary: i64) {
        match &mut self.ids {
            CustomerIds::Text(ids) => ids.push(id),
            CustomerIds::Int(_) => debug_assert!(false, "a text id among integer ids"),
        }
        self.push_row(segment, monetary);
    }

    fn push_row(&mut self, segment: &str, monetary: i64) {
        let k = match self.segments.iter().position(|s| s == segment) {
            Some(k) => k,
            None => {
                self.segments.push(segment.to_string());
                self.segments.len() - 1
            }
        };
        self.segment.push(k as u32);
        self.monetary.push(monetary);
    }
}

/// The previous run's customers from the columns of its Parquet segment file; rows
/// without an id are left out.
pub fn previous_from_frame(df: &DataFrame, decimals: u32) -> Result<Previous> {
    let id_column = df.column("customer_id")?;
    let segs = df.column("segment")?.str()?.clone();
    let monetary = df.column("monetary")?.cast(&DataType::Float64)?;
    let rows = segs.iter().zip(monetary.f64()?.iter());
    let mut out = Previous::default();
    fn row((segment, monetary): (Option<&str>, Option<f64>), decimals: u32) -> (&str, i64) {
        let m = crate::money::f64_to_minor(monetary.unwrap_or(0.0), decimals).unwrap_or(0);
        (segment.unwrap_or(NO_SEGMENT), m)
    }
    if id_column.dtype() == &DataType::Int64 {
        let mut ints = Vec::with_capacity(df.height());
        for (id, r) in id_column.i64()?.iter().zip(rows) {
            if let Some(id) = id {
                ints.push(id);
                let (segment, m) = row(r, decimals);
                out.push_row(segment, m);
            }
        }
        out.ids = CustomerIds::Int(ints);
    } else {
        let ids = id_column.cast(&DataType::String)?;
        for (id, r) in ids.str()?.iter().zip(rows) {
            if let Some(id) = id {
                let (segment, m) = row(r, decimals);
                out.push_text(id, segment, m);
            }
        }
    }
    Ok(out)
}

pub fn read_csv_segments(path: &Path, decimals: u32) -> Result<Previous> {
    let bad = |e: csv::Error| {
        Error::input(
            path.display().to_string(),
            format!("previous segment file: {e}"),
        )
    };
    let mut r = csv::Reader::from_path(path).map_err(bad)?;
    let headers = r.headers().map_err(bad)?.clone();
    let col = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            Error::input(
                path.display().to_string(),
                format!("previous segment file has no column {name}"),
            )
        })
    };
    let (id, segment, monetary) = (col("customer_id")?, col("segment")?, col("monetary")?);
    let mut out = Previous::default();
    let mut rec = csv::ByteRecord::new();
    while r.read_byte_record(&mut rec).map_err(bad)? {
        // Only the three fields read need be text.
        let line = rec.position().map_or(0, csv::Position::line);
        let text = |k: usize| {
            let bytes = rec.get(k).unwrap_or_default();
            std::str::from_utf8(bytes).map_err(|_| {
                Error::input(
                    format!("{}:{line}", path.display()),
                    format!(
                        "previous segment file: column {} is not UTF-8: {:?}",
                        &headers[k],
                        String::from_utf8_lossy(bytes)
                    ),
                )
            })
        };
        let seg = match text(segment)? {
            "" => NO_SEGMENT,
            s => s,
        };
        let m = crate::money::text_to_minor(text(monetary)?, decimals).unwrap_or(0);
        out.push_text(text(id)?, seg, m);
    }
    Ok(out)
}

/// One cell of the migration matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Migration {
    pub from: String,
    pub to: String,
    pub customers: u64,
    /// This run's revenue of those customers (the previous run's for vanished ones).
    pub revenue: i64,
}

/// Marks a customer absent from the previous run in [`previous_index`].
const ABSENT: u32 = u32::MAX;

/// How many customers (and how much revenue) moved from each segment to each other one.
pub fn migration(seg: &Segmentation, previous: &Previous) -> Vec<Migration> {
    // Rows: the previous run's segments, then "(new)". Columns: this run's segments (as
    // the rules name them), then "(no purchase)", then "(vanished)". The columns are few
    // (the rules'), so a table per thread stays small however many segments the previous
    // file names.
    let from_names: Vec<&str> = previous.segments.iter().map(String::as_str).collect();
    let new = from_names.len();
    let labels: Vec<&str> = seg.rules.names();
    let (no_segment, vanished) = (labels.len(), labels.len() + 1);
    let width = labels.len() + 2;
    let from_index = previous_index(&seg.summary.ids, &previous.ids);
    // Customers and revenue per (from, to) cell.
    let mut cells = crate::parallel::tally(seg.summary.len(), (new + 1) * width, |c| {
        let from = match from_index[c] {
            ABSENT => new,
            i => previous.segment[i as usize] as usize,
        };
        // Without a purchase: `labels.len()`, the "(no purchase)" column.
        let to = seg.segment_index(&labels, c);
        Some((from * width + to, seg.summary.monetary[c]))
    });
    let mut seen = vec![false; previous.ids.len()];
    for &i in from_index.iter().filter(|&&i| i != ABSENT) {
        seen[i as usize] = true;
    }
    for (i, _) in seen.iter().enumerate().filter(|(_, s)| !**s) {
        let cell = &mut cells[previous.segment[i] as usize * width + vanished];
        cell.0 += 1;
        cell.1 += previous.monetary[i];
    }
    // Cells named alike (a segment the rules call "(new)", say) are one row.
    let name = |k: usize| {
        let (from, to) = (k / width, k % width);
        let from = from_names.get(from).copied().unwrap_or(NEW);
        let to = match to {
            t if t == no_segment => NO_SEGMENT,
            t if t == vanished => VANISHED,
            t => labels[t],
        };
        (from.to_string(), to.to_string())
    };
    let mut rows: BTreeMap<(String, String), (u64, i64)> = BTreeMap::new();
    for (k, (customers, revenue)) in cells.into_iter().enumerate() {
        if customers > 0 {
            let row = rows.entry(name(k)).or_insert((0, 0));
            row.0 += customers;
            row.1 += revenue;
        }
    }
    rows.into_iter()
        .map(|((from, to), (customers, revenue))| Migration {
            from,
            to,
            customers,
            revenue,
        })
        .collect()
}

/// For each of this run's customers, its row in the previous run ([`ABSENT`] if none).
/// Ids match when their text is the same: an integer id matches the text of its decimal
/// form, so "007" matches no integer.
fn previous_index(ids: &CustomerIds, previous: &CustomerIds) -> Vec<u32> {
    match (ids, previous) {
        (CustomerIds::Int(ids), CustomerIds::Int(prev)) => {
            match_keys((ids.len(), |i| ids[i]), (prev.len(), |j| prev[j]))
        }
        (CustomerIds::Int(ids), CustomerIds::Text(prev)) => {
            // Text that is not an integer's decimal form matches no integer id.
            let canonical: Vec<Option<i64>> = prev
                .iter()
                .map(|t| t.parse::<i64>().ok().filter(|v| v.to_string() == t))
                .collect();
            if canonical.iter().all(Option::is_some) {
                let prev: Vec<i64> = canonical.into_iter().flatten().collect();
                match_keys((ids.len(), |i| ids[i]), (prev.len(), |j| prev[j]))
            } else {
                let index: PlHashMap<i64, u32> = canonical
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| v.map(|v| (v, i as u32)))
                    .collect();
                ids.iter()
                    .map(|v| index.get(v).copied().unwrap_or(ABSENT))
                    .collect()
            }
        }
        (CustomerIds::Text(ids), CustomerIds::Text(prev)) => {
            match_keys((ids.len(), |i| ids.get(i)), (prev.len(), |j| prev.get(j)))
        }
        (CustomerIds::Text(ids), CustomerIds::Int(prev)) => {
            let prev: TextIds = prev.iter().map(i64::to_string).collect();
            match_keys((ids.len(), |i| ids.get(i)), (prev.len(), |j| prev.get(j)))
        }
    }
}

/// For each of the `n` keys `id(i)`, the position of the same key among the `m` keys
/// `prev(j)` ([`ABSENT`] if none; the last one if `prev` repeats it). When both are
/// strictly increasing (as the segment files of two runs are) they are merged in one
/// pass, holding nothing; otherwise `prev` is hashed.
fn match_keys<K: Ord + std::hash::Hash + Send + Sync>(
    (n, id): (usize, impl Fn(usize) -> K + Sync),
    (m, prev): (usize, impl Fn(usize) -> K + Sync),
) -> Vec<u32> {
    use rayon::prelude::*;
    let increasing = |len: usize, key: &(dyn Fn(usize) -> K + Sync)| {
        (1..len).into_par_iter().all(|i| key(i - 1) < key(i))
    };
    if increasing(n, &id) && increasing(m, &prev) {
        let mut out = vec![ABSENT; n];
        let mut j = 0;
        for (i, slot) in out.iter_mut().enumerate() {
            let key = id(i);
            while j < m && prev(j) < key {
                j += 1;
            }
            if j < m && prev(j) == key {
                *slot = j as u32;
                j += 1;
            }
        }
        return out;
    }
    let mut index: PlHashMap<K, u32> = PlHashMap::default();
    for j in 0..m {
        index.insert(prev(j), j as u32);
    }
    (0..n)
        .into_par_iter()
        .map(|i| index.get(&id(i)).copied().unwrap_or(ABSENT))
        .collect()
}

pub fn migration_frame(rows: &[Migration], decimals: u32) -> Result<DataFrame> {
    Ok(DataFrame::new(
        rows.len(),
        vec![
            Column::new(
                "from_segment".into(),
                rows.iter().map(|r| r.from.as_str()).collect::<Vec<_>>(),
            ),
            Column::new(
                "to_segment".into(),
                rows.iter().map(|r| r.to.as_str()).collect::<Vec<_>>(),
            ),
            Column::new(
                "customers".into(),
                rows.iter().map(|r| r.customers as i64).collect::<Vec<_>>(),
            ),
            Column::new(
                "revenue".into(),
                rows.iter()
                    .map(|r| crate::money::minor_to_f64(r.revenue, decimals))
                    .collect::<Vec<_>>(),
            ),
        ],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The position of the last key of `prev` equal to each id, by a plain search.
    fn by_search<K: PartialEq>(ids: &[K], prev: &[K]) -> Vec<u32> {
        ids.iter()
            .map(|k| {
                prev.iter()
                    .rposition(|p| p == k)
                    .map_or(ABSENT, |i| i as u32)
            })
            .collect()
    }

    fn text_ids(ids: &[&str]) -> CustomerIds {
        CustomerIds::Text(ids.iter().collect())
    }

    proptest! {
        #[test]
        fn merging_or_hashing_finds_what_a_search_finds(
            ids in proptest::collection::btree_set(0i64..60, 0..40),
            prev in proptest::collection::vec(0i64..60, 0..40),
            sort_prev in any::<bool>(),
        ) {
            let ids: Vec<i64> = ids.into_iter().collect();
            let mut prev = prev;
            if sort_prev {
                // Strictly increasing: the merge.
                prev.sort_unstable();
                prev.dedup();
            }
            prop_assert_eq!(
                match_keys((ids.len(), |i| ids[i]), (prev.len(), |j| prev[j])),
                by_search(&ids, &prev)
            );
            let texts: Vec<String> = ids.iter().map(|v| format!("c{v:03}")).collect();
            let prev_texts: Vec<String> = prev.iter().map(|v| format!("c{v:03}")).collect();
            prop_assert_eq!(
                match_keys(
                    (texts.len(), |i| texts[i].as_str()),
                    (prev_texts.len(), |j| prev_texts[j].as_str())
                ),
                by_search(&texts, &prev_texts)
            );
        }
    }

    #[test]
    fn a_parquet_segment_file_gives_its_rows_with_an_id() {
        let frame = |ids: Column| {
            DataFrame::new(
                3,
                vec![
                    ids,
                    Column::new("segment".into(), [Some("Lost"), None, Some("Lost")]),
                    Column::new("monetary".into(), [12.5, 3.0, 0.07]),
                ],
            )
            .unwrap()
        };
        let ints = frame(Column::new(
            "customer_id".into(),
            [Some(9i64), None, Some(4)],
        ));
        let prev = previous_from_frame(&ints, 2).unwrap();
        assert_eq!(prev.ids, CustomerIds::Int(vec![9, 4]));
        assert_eq!(prev.segment, vec![0, 0]);
        assert_eq!(prev.monetary, vec![1250, 7]);
        assert_eq!(prev.segments, vec!["Lost"]);
        let texts = frame(Column::new(
            "customer_id".into(),
            [None, Some("b"), Some("a")],
        ));
        let prev = previous_from_frame(&texts, 2).unwrap();
        assert_eq!(prev.ids, text_ids(&["b", "a"]));
        // A null segment is the previous run's "no purchase".
        assert_eq!(prev.segment, vec![0, 1]);
        assert_eq!(prev.segments, vec![NO_SEGMENT, "Lost"]);
        assert_eq!(prev.monetary, vec![300, 7]);
    }

    #[test]
    fn a_csv_segment_file_needs_text_only_in_the_columns_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segments.csv");
        let mut file = b"customer_id,note,segment,monetary\nc1,".to_vec();
        file.extend_from_slice(b"\xff\xfe,Lost,12.50\nc2,ok,,0.07\n");
        std::fs::write(&path, &file).unwrap();
        let prev = read_csv_segments(&path, 2).unwrap();
        assert_eq!(prev.ids, text_ids(&["c1", "c2"]));
        assert_eq!(prev.segments, vec!["Lost", NO_SEGMENT]);
        assert_eq!((prev.segment, prev.monetary), (vec![0, 1], vec![1250, 7]));

        let mut file = b"customer_id,note,segment,monetary\nc1,ok,Lost,1\nc\xff2".to_vec();
        file.extend_from_slice(b",ok,Lost,2\n");
        std::fs::write(&path, &file).unwrap();
        let err = read_csv_segments(&path, 2).unwrap_err().to_string();
        assert!(err.contains("segments.csv:3"), "{err}");
        assert!(err.contains("column customer_id is not UTF-8"), "{err}");
    }

    #[test]
    fn integer_ids_match_only_the_text_of_their_decimal_form() {
        let ids = CustomerIds::Int(vec![-3, 7, 12, 40]);
        // "007" and "+12" are not the decimal forms of 7 and 12; "abc" is no integer.
        let prev = text_ids(&["40", "007", "-3", "abc", "+12", "7"]);
        assert_eq!(previous_index(&ids, &prev), vec![2, 5, ABSENT, 0]);
        // All decimal forms, in order: the merge gives the same.
        let prev = text_ids(&["-3", "7", "12"]);
        assert_eq!(previous_index(&ids, &prev), vec![0, 1, 2, ABSENT]);
        assert_eq!(
            previous_index(&ids, &CustomerIds::Int(vec![12, 7])),
            vec![ABSENT, 1, 0, ABSENT]
        );
    }

    #[test]
    fn text_ids_match_integer_ids_by_their_decimal_form() {
        let ids = CustomerIds::Text(["007", "12", "7", "x"].into_iter().collect());
        // Sorted as numbers, not as text: the hashed path.
        let prev = CustomerIds::Int(vec![7, 12, 100]);
        assert_eq!(previous_index(&ids, &prev), vec![ABSENT, 1, 0, ABSENT]);
        let prev = text_ids(&["x", "007"]);
        assert_eq!(previous_index(&ids, &prev), vec![1, ABSENT, ABSENT, 0]);
    }
}

//! The mergeable history behind incremental nightly runs.
//!
//! The state is the transaction history compacted to one line per (customer, day, order,
//! category, sign): lines with amount > 0 are summed together, lines with amount ≤ 0
//! together, so every analysis that sums money or asks "is there a line with
//! amount > 0" over days, orders or categories gives the same answer on the state as on
//! the raw lines. Merging is compaction of the union, which is associative and
//! commutative, so `compact([compact(days 1..n), day n+1])` = `compact(days 1..n+1)`
//! line for line, and the outputs of an incremental run equal a full recomputation byte
//! for byte.
//!
//! On disk, in each run directory: `state.parquet` (the compacted lines, sorted by
//! customer, day, order, category, sign) and `state.json` (currency, id type, as-of,
//! cumulative row counts, every ingested file with its BLAKE3 checksum, and the checksum
//! of `state.parquet`).
//!
//! Not for: reading raw inputs (see `load`), running the job (see `run`).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::load::LoadOptions;
use crate::load::{FileReport, LoadReport, Loaded, RejectReason};
use crate::output;
use crate::transactions::{CustomerIds, NO_CATEGORY, Transactions};

/// The compacted lines file in a run directory.
pub const STATE_LINES: &str = "state.parquet";
/// The state's description in a run directory.
pub const STATE_META: &str = "state.json";
const FORMAT: u32 = 2;

/// One compacted line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Line {
    day: i32,
    order: u64,
    category: u32,
    positive: bool,
    amount: i64,
    profit: i64,
}

impl Line {
    fn key(&self) -> (i32, u64, u32, bool) {
        (self.day, self.order, self.category, self.positive)
    }
}

/// Compacts the union of `parts` (one history, or a history and new lines): customers
/// merged in id order, categories re-coded over the union, lines of equal (day, order,
/// category, sign) summed. `as_of` is the as-of day of the result.
///
/// ```
/// # use custvalue::transactions::{CustomerIds, Transactions, NO_CATEGORY};
/// let day = |ids: Vec<i64>, days: Vec<i32>, amount: Vec<i64>| Transactions {
///     offsets: (0..=ids.len()).collect(),
///     ids: CustomerIds::Int(ids),
///     profit: amount.clone(),
///     order: vec![7; days.len()],
///     category: vec![NO_CATEGORY; days.len()],
///     day: days,
///     amount,
///     categories: vec![],
///     currency_decimals: 2,
///     as_of: 0,
/// };
/// let a = day(vec![1, 2], vec![10, 10], vec![500, 300]);
/// let b = day(vec![2], vec![10], vec![200]);
/// let merged = custvalue::state::compact(&[&a, &b], 11).unwrap();
/// assert_eq!(merged.ids, CustomerIds::Int(vec![1, 2]));
/// assert_eq!(merged.amount, vec![500, 500]); // customer 2's two lines of one order and day
/// ```
pub fn compact(parts: &[&Transactions], as_of: i32) -> Result<Transactions> {
    let Some(first) = parts.first() else {
        return Err(Error::Data("nothing to compact".into()));
    };
    let decimals = first.currency_decimals;
    if let Some(p) = parts.iter().find(|p| p.currency_decimals != decimals) {
        return Err(Error::Usage(format!(
            "the history is kept in minor units of {decimals} decimals, the new lines in {}: \
             currency_decimals must not change between incremental runs (run with --full)",
            p.currency_decimals
        )));
    }
    let (categories, recode) = union_categories(parts);
    let (ids, owners) = union_customers(parts)?;
    // Chunks of customers in parallel, each into its own columns, joined in order. A
    // customer of one part whose lines are already in canonical order (a history's
    // customer without new lines) is copied as it is.
    let chunks: Vec<Columns> = crate::parallel::customer_chunks(owners.len())
        .into_par_iter()
        .map(|range| {
            let mut cols = Columns::default();
            let mut scratch: Vec<Line> = Vec::new();
            for owned in &owners[range] {
                scratch.clear();
                for &(p, c) in owned {
                    let (tx, codes) = (parts[p], &recode[p]);
                    scratch.extend(tx.lines(c).map(|i| Line {
                        day: tx.day[i],
                        order: tx.order[i],
                        category: match tx.category[i] {
                            NO_CATEGORY => NO_CATEGORY,
                            k => codes[k as usize],
                        },
                        positive: tx.amount[i] > 0,
                        amount: tx.amount[i],
                        profit: tx.profit[i],
                    }));
                }
                let canonical =
                    owned.len() == 1 && scratch.windows(2).all(|w| w[0].key() < w[1].key());
                if canonical {
                    cols.extend(&scratch);
                } else {
                    cols.extend(&fold_lines(&mut scratch)?);
                }
                cols.ends.push(cols.day.len());
            }
            Ok(cols)
        })
        .collect::<std::result::Result<_, ()>>()
        .map_err(|()| Error::Data("a compacted line exceeds 64-bit minor units".into()))?;
    let n: usize = chunks.iter().map(|c| c.day.len()).sum();
    let mut tx = Transactions {
        ids,
        offsets: Vec::with_capacity(owners.len() + 1),
        day: Vec::with_capacity(n),
        amount: Vec::with_capacity(n),
        profit: Vec::with_capacity(n),
        order: Vec::with_capacity(n),
        category: Vec::with_capacity(n),
        categories,
        currency_decimals: decimals,
        as_of,
    };
    tx.offsets.push(0);
    for c in chunks {
        let base = tx.day.len();
        tx.offsets.extend(c.ends.iter().map(|e| base + e));
        tx.day.extend(c.day);
        tx.amount.extend(c.amount);
        tx.profit.extend(c.profit);
        tx.order.extend(c.order);
        tx.category.extend(c.category);
    }
    Ok(tx)
}

/// Compacted lines of a chunk of customers and where each customer's lines end.
#[derive(Default)]
struct Columns {
    day: Vec<i32>,
    order: Vec<u64>,
    category: Vec<u32>,
    amount: Vec<i64>,
    profit: Vec<i64>,
    ends: Vec<usize>,
}

impl Columns {
    fn extend(&mut self, lines: &[Line]) {
        for l in lines {
            self.day.push(l.day);
            self.order.push(l.order);
            self.category.push(l.category);
            self.amount.push(l.amount);
            self.profit.push(l.profit);
        }
    }
}

/// Sorts one customer's lines and sums those with equal keys; `Err` on overflow.
fn fold_lines(lines: &mut [Line]) -> std::result::Result<Vec<Line>, ()> {
    lines.sort_unstable_by_key(Line::key);
    let mut out: Vec<Line> = Vec::with_capacity(lines.len());
    for l in lines.iter() {
        match out.last_mut() {
            Some(last) if last.key() == l.key() => {
                last.amount = last.amount.checked_add(l.amount).ok_or(())?;
                last.profit = last.profit.checked_add(l.profit).ok_or(())?;
            }
            _ => out.push(*l),
        }
    }
    Ok(out)
}

/// Category names of every part, sorted by UTF-8 bytes, and each part's old → new codes.
fn union_categories(parts: &[&Transactions]) -> (Vec<String>, Vec<Vec<u32>>) {
    let mut names: Vec<String> = parts
        .iter()
        .flat_map(|p| p.categories.iter().cloned())
        .collect();
    names.sort_unstable();
    names.dedup();
    let recode = parts
        .iter()
        .map(|p| {
            p.categories
                .iter()
                .map(|c| names.binary_search(c).map_or(NO_CATEGORY, |k| k as u32))
                .collect()
        })
        .collect();
    (names, recode)
}

/// Which (part, customer) pairs make each customer of the union, in id order.
type Owners = Vec<Vec<(usize, usize)>>;

fn union_customers(parts: &[&Transactions]) -> Result<(CustomerIds, Owners)> {
    let kinds: Vec<bool> = parts
        .iter()
        .filter(|p| !p.ids.is_empty())
        .map(|p| matches!(p.ids, CustomerIds::Int(_)))
        .collect();
    if kinds.windows(2).any(|w| w[0] != w[1]) {
        return Err(Error::Usage(
            "the history has integer customer ids and the new lines text ids (or the other \
             way round): set [input] customer_id_type so that every run reads ids alike, or \
             run with --full"
                .into(),
        ));
    }
    if kinds.first().copied().unwrap_or(false) {
        let lists: Vec<&[i64]> = parts
            .iter()
            .map(|p| match &p.ids {
                CustomerIds::Int(v) => v.as_slice(),
                CustomerIds::Text(_) => &[],
            })
            .collect();
        let (ids, owners) = union_sorted(&lists);
        Ok((CustomerIds::Int(ids), owners))
    } else {
        let texts: Vec<Vec<&str>> = parts
            .iter()
            .map(|p| match &p.ids {
                CustomerIds::Text(v) => v.iter().collect(),
                CustomerIds::Int(_) => Vec::new(),
            })
            .collect();
        let lists: Vec<&[&str]> = texts.iter().map(Vec::as_slice).collect();
        let (ids, owners) = union_sorted(&lists);
        Ok((CustomerIds::Text(ids.into_iter().collect()), owners))
    }
}

/// Merges sorted id lists (each strictly increasing) into their sorted union.
fn union_sorted<T: Ord + Clone + Sync>(lists: &[&[T]]) -> (Vec<T>, Owners) {
    let all: Vec<(&T, usize, usize)> = match lists {
        // The usual case, history and new lines: one linear merge of two sorted lists.
        [x, y] => {
            let (mut i, mut j) = (0, 0);
            let mut all = Vec::with_capacity(x.len() + y.len());
            while i < x.len() || j < y.len() {
                if j == y.len() || (i < x.len() && x[i] <= y[j]) {
                    all.push((&x[i], 0, i));
                    i += 1;
                } else {
                    all.push((&y[j], 1, j));
                    j += 1;
                }
            }
            all
        }
        _ => {
            let mut all: Vec<(&T, usize, usize)> = lists
                .iter()
                .enumerate()
                .flat_map(|(p, ids)| ids.iter().enumerate().map(move |(c, id)| (id, p, c)))
                .collect();
            all.par_sort_unstable_by(|a, b| a.0.cmp(b.0).then(a.1.cmp(&b.1)));
            all
        }
    };
    let mut out_ids: Vec<T> = Vec::new();
    let mut owners: Owners = Vec::new();
    for (id, p, c) in all {
        if out_ids.last() != Some(id) {
            out_ids.push(id.clone());
            owners.push(Vec::with_capacity(1));
        }
        if let Some(o) = owners.last_mut() {
            o.push((p, c));
        }
    }
    (out_ids, owners)
}

/// One ingested input file, as `state.json` records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestedFile {
    pub path: String,
    pub bytes: u64,
    pub blake3: String,
    pub rows_read: u64,
    pub rows_used: u64,
    pub rows_rejected: u64,
}

/// The contents of `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateMeta {
    pub format: u32,
    pub currency_decimals: u32,
    /// "int" or "text".
    pub customer_ids: String,
    pub as_of: String,
    pub as_of_given: bool,
    pub customers: usize,
    pub lines: usize,
    pub rows_read: u64,
    pub rows_used: u64,
    pub rows_rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Category names sorted by UTF-8 bytes; `category_code` in `state.parquet` indexes them.
    pub categories: Vec<String>,
    pub files: Vec<IngestedFile>,
    /// BLAKE3 of `state.parquet`.
    pub lines_blake3: String,
}

/// BLAKE3 and size of a file.
pub fn checksum(path: &Path) -> Result<(u64, String)> {
    // Read in large blocks, each hashed on every thread while the next is read: through
    // an 8 KiB buffer on one thread a 140 MB file took 0.7 s. (No memory map: a file
    // truncated meanwhile would be a SIGBUS instead of an error.)
    use std::io::Read;
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = blake3::Hasher::new();
    let size = file.metadata().map_or(0, |m| m.len());
    let len = (size.saturating_add(1)).clamp(1 << 16, 1 << 24) as usize;
    let mut fill = |block: &mut Vec<u8>| -> Result<usize> {
        let mut filled = 0;
        while filled < block.len() {
            match file.read(&mut block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(path, e)),
            }
        }
        Ok(filled)
    };
    let (mut block, mut next) = (vec![0u8; len], vec![0u8; len]);
    let mut filled = fill(&mut block)?;
    loop {
        if filled < len {
            hasher.update_rayon(&block[..filled]);
            break;
        }
        let (_, read) = rayon::join(|| hasher.update_rayon(&block), || fill(&mut next));
        filled = read?;
        std::mem::swap(&mut block, &mut next);
    }
    Ok((hasher.count(), hasher.finalize().to_hex().to_string()))
}

/// Writes `state.parquet` and `state.json` of the compacted history `history` into `dir`;
/// returns the names written. `report` is the cumulative report of every ingested file
/// and `sums` their checksums, in the same order as `report.files`.
pub fn save(
    dir: &Path,
    history: &Transactions,
    report: &LoadReport,
    sums: &[String],
) -> Result<Vec<String>> {
    let lines_path = dir.join(STATE_LINES);
    let mut frame = lines_frame(history)?;
    output::write_frame(&mut frame, &lines_path)?;
    let (_, lines_blake3) = checksum(&lines_path)?;
    let meta = StateMeta {
        format: FORMAT,
        currency_decimals: history.currency_decimals,
        customer_ids: match history.ids {
            CustomerIds::Int(_) => "int",
            CustomerIds::Text(_) => "text",
        }
        .into(),
        as_of: crate::time::format_day(history.as_of),
        as_of_given: report.as_of_given,
        customers: history.n_customers(),
        lines: history.n_lines(),
        rows_read: report.rows_read,
        rows_used: report.rows_used,
        rows_rejected: report.rows_rejected,
        rejected_by_reason: report
            .rejected_by_reason
            .iter()
            .map(|(r, n)| (r.key().to_string(), *n))
            .collect(),
        categories: history.categories.clone(),
        files: report
            .files
            .iter()
            .zip(sums)
            .map(|(f, sum)| IngestedFile {
                path: f.path.clone(),
                bytes: f.bytes,
                blake3: sum.clone(),
                rows_read: f.rows_read,
                rows_used: f.rows_used,
                rows_rejected: f.rows_rejected,
            })
            .collect(),
        lines_blake3,
    };
    let json = serde_json::to_string_pretty(&meta).map_err(|e| Error::Data(e.to_string()))? + "\n";
    let meta_path = dir.join(STATE_META);
    crate::output::write_bytes(&meta_path, json.as_bytes())?;
    Ok(vec![STATE_LINES.to_string(), STATE_META.to_string()])
}

fn lines_frame(tx: &Transactions) -> Result<DataFrame> {
    let mut owner = Vec::with_capacity(tx.n_lines());
    for c in 0..tx.n_customers() {
        owner.extend(std::iter::repeat_n(c as u32, tx.lines(c).len()));
    }
    let category: Vec<Option<u32>> = tx
        .category
        .iter()
        .map(|&k| (k != NO_CATEGORY).then_some(k))
        .collect();
    let n = tx.n_lines();
    Ok(DataFrame::new(
        n,
        vec![
            tx.ids.to_column(Some(&owner)),
            Column::new("day".into(), tx.day.as_slice()),
            Column::new("order_key".into(), tx.order.as_slice()),
            Column::new("category_code".into(), category),
            Column::new("amount".into(), tx.amount.as_slice()),
            Column::new("profit".into(), tx.profit.as_slice()),
        ],
    )?)
}

/// The state a run directory holds, if any: the compacted history, the cumulative load
/// report (files, counts) and each file's checksum.
pub struct State {
    pub history: Transactions,
    pub report: LoadReport,
    pub meta: StateMeta,
    pub dir: PathBuf,
}

/// Reads the state of run directory `dir`; `None` when it has none. A state whose lines
/// do not match the checksum in `state.json`, or that is not in canonical order, is an
/// error (exit code 2): it was changed by hand or written by a crashed run.
pub fn open(dir: &Path) -> Result<Option<State>> {
    let meta_path = dir.join(STATE_META);
    if !meta_path.exists() {
        return Ok(None);
    }
    let shown = meta_path.display().to_string();
    let bad = |msg: String| Error::input(shown.clone(), msg);
    let text = std::fs::read_to_string(&meta_path).map_err(|e| Error::io(&meta_path, e))?;
    let meta: StateMeta =
        serde_json::from_str(&text).map_err(|e| bad(format!("not a custvalue state: {e}")))?;
    if meta.format != FORMAT {
        return Err(bad(format!(
            "state format {} is not the format {FORMAT} this version reads; run with --full",
            meta.format
        )));
    }
    let lines_path = dir.join(STATE_LINES);
    let (_, sum) = checksum(&lines_path)?;
    if sum != meta.lines_blake3 {
        return Err(Error::input(
            lines_path.display().to_string(),
            "its checksum differs from the one in state.json: the state was changed after it \
             was written; run with --full to rebuild it from the inputs",
        ));
    }
    let as_of = crate::time::parse_iso_date(&meta.as_of)
        .ok_or_else(|| bad(format!("bad as_of {:?}", meta.as_of)))?;
    let history = read_lines(&lines_path, &meta, as_of)?;
    let mut rejected_by_reason = BTreeMap::new();
    for (key, n) in &meta.rejected_by_reason {
        let reason = RejectReason::from_key(key)
            .ok_or_else(|| bad(format!("unknown reject reason {key:?}")))?;
        rejected_by_reason.insert(reason, *n);
    }
    let report = LoadReport {
        files: meta
            .files
            .iter()
            .map(|f| FileReport {
                path: f.path.clone(),
                bytes: f.bytes,
                rows_read: f.rows_read,
                rows_used: f.rows_used,
                rows_rejected: f.rows_rejected,
            })
            .collect(),
        rows_read: meta.rows_read,
        rows_used: meta.rows_used,
        rows_rejected: meta.rows_rejected,
        rejected_by_reason,
        examples: Vec::new(),
        quarantine: None,
        as_of,
        as_of_given: meta.as_of_given,
    };
    Ok(Some(State {
        history,
        report,
        meta,
        dir: dir.to_path_buf(),
    }))
}

fn read_lines(path: &Path, meta: &StateMeta, as_of: i32) -> Result<Transactions> {
    let shown = path.display().to_string();
    let bad = |msg: &str| Error::input(shown.clone(), format!("not a custvalue state: {msg}"));
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let df = ParquetReader::new(file).finish()?;
    if df.height() != meta.lines {
        return Err(bad("the line count differs from state.json"));
    }
    let int_col = |name: &str| -> Result<Column> {
        df.column(name)
            .map_err(|_| bad(&format!("no column {name}")))
            .cloned()
    };
    let day: Vec<i32> = int_col("day")?.i32()?.into_no_null_iter().collect();
    let order: Vec<u64> = int_col("order_key")?.u64()?.into_no_null_iter().collect();
    let amount: Vec<i64> = int_col("amount")?.i64()?.into_no_null_iter().collect();
    let profit: Vec<i64> = int_col("profit")?.i64()?.into_no_null_iter().collect();
    let categories = meta.categories.clone();
    let codes = int_col("category_code")?;
    let category: Vec<u32> = codes
        .u32()?
        .downcast_iter()
        .flat_map(|a| a.iter().map(|k| k.copied()))
        .map(|k| match k {
            None => Ok(NO_CATEGORY),
            Some(k) if (k as usize) < categories.len() => Ok(k),
            Some(_) => Err(bad("a category code beyond state.json's categories")),
        })
        .collect::<Result<_>>()?;
    let ids = int_col("customer_id")?;
    let (ids, offsets) = match meta.customer_ids.as_str() {
        "int" => {
            let v: Vec<i64> = ids.i64()?.into_no_null_iter().collect();
            let (ids, offsets) = runs(&v);
            (CustomerIds::Int(ids), offsets)
        }
        "text" => {
            let v: Vec<&str> = ids
                .str()?
                .downcast_iter()
                .flat_map(|a| a.iter())
                .collect::<Option<_>>()
                .ok_or_else(|| bad("null customer ids"))?;
            let (ids, offsets) = runs(&v);
            (CustomerIds::Text(ids.into_iter().collect()), offsets)
        }
        other => return Err(bad(&format!("customer_ids {other:?}"))),
    };
    let tx = Transactions {
        ids,
        offsets,
        day,
        amount,
        profit,
        order,
        category,
        categories,
        currency_decimals: meta.currency_decimals,
        as_of,
    };
    if tx.n_lines() != meta.lines || tx.n_customers() != meta.customers {
        return Err(bad("null values or counts that differ from state.json"));
    }
    Ok(tx)
}

/// Distinct values of a sorted column and the offsets of their runs.
fn runs<T: PartialEq + Copy>(v: &[T]) -> (Vec<T>, Vec<usize>) {
    let mut ids = Vec::new();
    let mut offsets = Vec::new();
    for (i, x) in v.iter().enumerate() {
        if i == 0 || v[i - 1] != *x {
            ids.push(*x);
            offsets.push(i);
        }
    }
    offsets.push(v.len());
    (ids, offsets)
}

/// What an incremental run read besides the history itself.
pub struct Ingest {
    /// BLAKE3 of every file of `history.report.files`, in the same order.
    pub sums: Vec<String>,
    /// How this run's new files were read (no files when there was nothing new).
    pub this_run: LoadReport,
    /// This run's new files' checksums, in the order of `this_run.files`.
    pub new_sums: Vec<String>,
    /// Inputs skipped because a file with the same content was ingested before.
    pub skipped: Vec<String>,
    /// Inputs at a path ingested before but with other content (ingested as new lines).
    pub changed: Vec<String>,
    /// The run directory whose state was continued, if any.
    pub continued: Option<PathBuf>,
}

/// Reads the inputs of `opts` on top of the state in `previous` (a run directory), or
/// from scratch when there is none: files whose content was ingested before are
/// skipped, every other file is loaded and merged into the compacted history. Returns
/// the history (every ingested line, compacted, with the cumulative load report) and
/// what this run added.
pub fn ingest(previous: Option<&Path>, opts: &LoadOptions) -> Result<(Loaded, Ingest)> {
    let state = match previous {
        Some(dir) => open(dir)?,
        None => None,
    };
    let paths = crate::load::expand_inputs(&opts.inputs)?;
    let mut new_paths = Vec::new();
    let mut new_sums = Vec::new();
    let (mut skipped, mut changed) = (Vec::new(), Vec::new());
    for p in &paths {
        let (_, sum) = checksum(p)?;
        let shown = p.display().to_string();
        let known = state.as_ref().map(|s| &s.meta.files[..]).unwrap_or(&[]);
        if known.iter().any(|f| f.blake3 == sum) || new_sums.contains(&sum) {
            skipped.push(shown);
            continue;
        }
        if known.iter().any(|f| f.path == shown) {
            changed.push(shown.clone());
        }
        new_paths.push(shown);
        new_sums.push(sum);
    }
    let new = if new_paths.is_empty() {
        None
    } else {
        let mut o = opts.clone();
        o.inputs = new_paths;
        Some(crate::load::load(&o)?)
    };
    let continued = state.as_ref().map(|s| s.dir.clone());
    let this_run = new.as_ref().map(|n| n.report.clone());
    let (history, sums) = match (state, new) {
        (None, None) => {
            return Err(Error::Usage(
                "no input given: name the input files (--input FILE, or [input] files)".into(),
            ));
        }
        (None, Some(new)) => {
            let as_of = new.transactions.as_of;
            let transactions = compact(&[&new.transactions], as_of)?;
            let report = new.report;
            (
                Loaded {
                    transactions,
                    report,
                },
                new_sums.clone(),
            )
        }
        (Some(state), new) => merge(state, new, opts.as_of, &new_sums)?,
    };
    let this_run = this_run.unwrap_or_else(|| LoadReport {
        files: Vec::new(),
        rows_read: 0,
        rows_used: 0,
        rows_rejected: 0,
        rejected_by_reason: BTreeMap::new(),
        examples: Vec::new(),
        quarantine: None,
        as_of: history.report.as_of,
        as_of_given: history.report.as_of_given,
    });
    Ok((
        history,
        Ingest {
            sums,
            this_run,
            new_sums,
            skipped,
            changed,
            continued,
        },
    ))
}

/// Adds a new load (if any) to the history: compacted lines of both, the cumulative
/// report and every file's checksum.
fn merge(
    state: State,
    new: Option<Loaded>,
    given_as_of: Option<i32>,
    new_sums: &[String],
) -> Result<(Loaded, Vec<String>)> {
    let old = state.report;
    let latest = state
        .history
        .day
        .iter()
        .chain(new.iter().flat_map(|n| n.transactions.day.iter()))
        .copied()
        .max();
    let as_of = match given_as_of {
        Some(given) => {
            if let Some(d) = latest.filter(|&d| d > given) {
                return Err(Error::Usage(format!(
                    "the history holds lines up to {}, after the as-of date {}: an \
                     incremental run cannot move the as-of date back; run with --full",
                    crate::time::format_day(d),
                    crate::time::format_day(given)
                )));
            }
            given
        }
        None => latest.map_or(old.as_of, |d| d + 1),
    };
    let mut parts = vec![&state.history];
    if let Some(n) = &new {
        parts.push(&n.transactions);
    }
    let transactions = compact(&parts, as_of)?;
    let mut sums: Vec<String> = state.meta.files.iter().map(|f| f.blake3.clone()).collect();
    sums.extend_from_slice(new_sums);
    let mut report = LoadReport {
        as_of,
        as_of_given: given_as_of.is_some(),
        ..old
    };
    if let Some(n) = new {
        let r = n.report;
        report.add_counts(&r);
        report.files.extend(r.files);
        report.examples = r.examples;
        report.quarantine = r.quarantine;
    }
    Ok((
        Loaded {
            transactions,
            report,
        },
        sums,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(day: i32, order: u64, category: u32, amount: i64) -> Line {
        Line {
            day,
            order,
            category,
            positive: amount > 0,
            amount,
            profit: amount / 2,
        }
    }

    #[test]
    fn purchases_and_returns_of_one_key_stay_apart() {
        let mut lines = vec![
            line(3, 1, 0, 300),
            line(3, 1, 0, -500),
            line(3, 1, 0, 200),
            line(3, 1, 0, -100),
            line(2, 1, 0, 50),
            line(3, 1, NO_CATEGORY, 70),
        ];
        let out = fold_lines(&mut lines).unwrap();
        // Purchases sum to 500 (> 0), returns to −600 (≤ 0): the order still has a
        // purchase line, which one summed line of −100 would have lost.
        assert_eq!(
            out,
            vec![
                line(2, 1, 0, 50),
                line(3, 1, 0, -600),
                Line {
                    profit: 250,
                    ..line(3, 1, 0, 500)
                },
                line(3, 1, NO_CATEGORY, 70),
            ]
        );
    }

    #[test]
    fn an_overflowing_sum_is_an_error() {
        let mut lines = vec![line(1, 1, 0, i64::MAX), line(1, 1, 0, 1)];
        assert!(fold_lines(&mut lines).is_err());
    }
}

//! Loading: transaction lines from CSV (plain or gzip), Parquet and Arrow IPC files into
//! one columnar [`Transactions`] table, with every row accounted for in a [`LoadReport`].
//!
//! Each file's columns are mapped to roles (customer, time, amount, …), every row is
//! validated, and a row that cannot be used is handled by the bad-row policy: stop with an
//! error naming file, line, column and value; or count it (and write it to a quarantine
//! file). `rows_read = rows_used + rows_rejected` always holds.
//!
//! CSV is parsed with the `csv` crate rather than polars' reader because polars cannot say
//! which record and field failed; Parquet and IPC are read by polars and checked cell by
//! cell the same way, a batch of rows (about a million: whole Parquet row groups) at a
//! time, so the decoded frame of a whole file never exists at once. After loading, lines
//! are grouped by customer (customers in their output order), so every later stage works
//! on contiguous per-customer slices.
//!
//! Not for: aggregation (see `summary`) or writing outputs (see `output`).

use std::cell::Cell as CountCell;
use std::collections::BTreeMap;
use std::fs::File;
use std::hash::BuildHasher;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use polars::prelude::*;

use crate::config::{BadRowPolicy, ColumnNames, IdType, LoadOptions, Role};
pub use crate::config::{LoadObserver, LoadProgress};
use crate::error::{Error, Result};
use crate::money::{self, Decimal, DecimalError};
use crate::output::AtomicFile;
use crate::time::{LineTime, TimeError, TimeFormat};

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

/// Why a row was rejected. The key is stable and used in reports and quarantine files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RejectReason {
    MissingCustomer,
    BadCustomerId,
    MissingTime,
    BadTime,
    ImpossibleDate,
    AfterAsOf,
    MissingAmount,
    BadAmount,
    AmountOverflow,
    BadQuantity,
    BadUnitPrice,
    BadCost,
    WrongFieldCount,
    InvalidUtf8,
}

impl RejectReason {
    /// Every reason, in key order of the enum.
    pub const ALL: [RejectReason; 14] = [
        RejectReason::MissingCustomer,
        RejectReason::BadCustomerId,
        RejectReason::MissingTime,
        RejectReason::BadTime,
        RejectReason::ImpossibleDate,
        RejectReason::AfterAsOf,
        RejectReason::MissingAmount,
        RejectReason::BadAmount,
        RejectReason::AmountOverflow,
        RejectReason::BadQuantity,
        RejectReason::BadUnitPrice,
        RejectReason::BadCost,
        RejectReason::WrongFieldCount,
        RejectReason::InvalidUtf8,
    ];

    /// The reason whose [`key`](Self::key) is `key`.
    pub fn from_key(key: &str) -> Option<RejectReason> {
        Self::ALL.into_iter().find(|r| r.key() == key)
    }

    pub fn key(self) -> &'static str {
        match self {
            RejectReason::MissingCustomer => "missing_customer",
            RejectReason::BadCustomerId => "bad_customer_id",
            RejectReason::MissingTime => "missing_time",
            RejectReason::BadTime => "bad_time",
            RejectReason::ImpossibleDate => "impossible_date",
            RejectReason::AfterAsOf => "after_as_of",
            RejectReason::MissingAmount => "missing_amount",
            RejectReason::BadAmount => "bad_amount",
            RejectReason::AmountOverflow => "amount_overflow",
            RejectReason::BadQuantity => "bad_quantity",
            RejectReason::BadUnitPrice => "bad_unit_price",
            RejectReason::BadCost => "bad_cost",
            RejectReason::WrongFieldCount => "wrong_field_count",
            RejectReason::InvalidUtf8 => "invalid_utf8",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            RejectReason::MissingCustomer => "missing customer id",
            RejectReason::BadCustomerId => "bad customer id",
            RejectReason::MissingTime => "missing time",
            RejectReason::BadTime => "unparsable time",
            RejectReason::ImpossibleDate => "impossible date",
            RejectReason::AfterAsOf => "after the as-of date",
            RejectReason::MissingAmount => "missing amount",
            RejectReason::BadAmount => "bad amount",
            RejectReason::AmountOverflow => "amount too large",
            RejectReason::BadQuantity => "bad quantity",
            RejectReason::BadUnitPrice => "bad unit price",
            RejectReason::BadCost => "bad cost",
            RejectReason::WrongFieldCount => "wrong number of fields",
            RejectReason::InvalidUtf8 => "invalid UTF-8",
        }
    }
}

/// One rejected row, as reported.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub file: String,
    /// "line" (text files) or "row" (Parquet/IPC).
    pub place: &'static str,
    pub line: u64,
    pub column: String,
    pub value: String,
    pub reason: RejectReason,
    pub detail: String,
    pub expected: String,
}

impl Rejection {
    fn into_error(self) -> Error {
        let reason = if self.detail.is_empty() {
            self.reason.describe().to_string()
        } else {
            format!("{}: {}", self.reason.describe(), self.detail)
        };
        Error::BadRow {
            file: self.file,
            place: self.place,
            line: self.line,
            column: self.column,
            value: self.value,
            reason,
            expected: self.expected,
        }
    }
}

/// Rows of one input file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileReport {
    pub path: String,
    pub bytes: u64,
    pub rows_read: u64,
    pub rows_used: u64,
    pub rows_rejected: u64,
}

/// What loading did: rows read, used and rejected (by reason), with the first examples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    pub files: Vec<FileReport>,
    pub rows_read: u64,
    pub rows_used: u64,
    pub rows_rejected: u64,
    pub rejected_by_reason: BTreeMap<RejectReason, u64>,
    pub examples: Vec<Rejection>,
    /// Where rejected rows were written, if quarantined.
    pub quarantine: Option<PathBuf>,
    /// As-of day number used.
    pub as_of: i32,
    /// Whether the as-of date was given (rather than derived from the data).
    pub as_of_given: bool,
}

impl LoadReport {
    /// Adds the row counts (read, used, rejected, by reason) of `other`.
    pub fn add_counts(&mut self, other: &LoadReport) {
        self.rows_read += other.rows_read;
        self.rows_used += other.rows_used;
        self.rows_rejected += other.rows_rejected;
        for (reason, n) in &other.rejected_by_reason {
            *self.rejected_by_reason.entry(*reason).or_insert(0) += n;
        }
    }

    /// One line: "read 1,000 rows from 2 files: 990 used, 10 rejected (bad amount: 10)".
    pub fn headline(&self) -> String {
        let mut s = format!(
            "read {} rows from {} file{}: {} used, {} rejected",
            crate::output::thousands(self.rows_read),
            self.files.len(),
            if self.files.len() == 1 { "" } else { "s" },
            crate::output::thousands(self.rows_used),
            crate::output::thousands(self.rows_rejected),
        );
        if !self.rejected_by_reason.is_empty() {
            let parts: Vec<String> = self
                .rejected_by_reason
                .iter()
                .map(|(r, n)| format!("{}: {}", r.describe(), crate::output::thousands(*n)))
                .collect();
            s.push_str(&format!(" ({})", parts.join(", ")));
        }
        s
    }
}

/// Loaded transactions and the report of how they were read.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub transactions: Transactions,
    pub report: LoadReport,
}

/// Loads every input of `opts` into one table.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("tx.csv");
/// std::fs::write(&path, "customer_id,ts,amount\nA,2024-01-01,10.00\nB,2024-01-02,5.5\nA,2024-01-03,-2\n").unwrap();
/// let loaded = custvalue::load(&custvalue::LoadOptions::new([path.to_str().unwrap()])).unwrap();
/// assert_eq!(loaded.report.rows_used, 3);
/// assert_eq!(loaded.transactions.n_customers(), 2);
/// let frame = loaded.transactions.to_frame().unwrap();
/// assert_eq!(frame.height(), 3);
/// ```
pub fn load(opts: &LoadOptions) -> Result<Loaded> {
    load_with(opts, LoadConfig::default())
}

/// [`load`] of one batch of a streamed input: the stream hands free pages back itself,
/// between passes, rather than after every batch.
pub(crate) fn load_batch(opts: &LoadOptions) -> Result<Loaded> {
    load_with(
        opts,
        LoadConfig {
            release_memory: false,
            ..LoadConfig::default()
        },
    )
}

fn load_with(opts: &LoadOptions, config: LoadConfig) -> Result<Loaded> {
    let paths = expand_inputs(&opts.inputs)?;
    let mut quarantine = match &opts.on_bad_rows {
        BadRowPolicy::Quarantine(path) => {
            if paths.iter().any(|p| crate::output::same_file(p, path)) {
                return Err(Error::Usage(format!(
                    "the quarantine file {} is also an input",
                    path.display()
                )));
            }
            let mut file = AtomicFile::create(path)?;
            let mut w = csv::Writer::from_writer(file.writer());
            w.write_record(["file", "line", "column", "reason", "value", "record"])
                .and_then(|_| w.flush().map_err(Into::into))
                .map_err(|e| Error::Data(format!("writing {}: {e}", path.display())))?;
            drop(w);
            Some(file)
        }
        _ => None,
    };
    let mut b = Builder::new(opts);
    let mut progress = Tracker::new(&opts.progress, &paths);
    progress.report(0, 0);
    for path in &paths {
        let mut sink = RejectSink {
            policy: &opts.on_bad_rows,
            report: &mut b.report,
            quarantine: quarantine.as_mut(),
            max_examples: opts.max_examples,
        };
        let file_report = load_file(path, opts, &mut b.rows, &mut sink, &progress, config)?;
        progress.file_done(b.report.rows_read);
        b.report.files.push(file_report);
    }
    let report_counts = (
        b.report.rows_read,
        b.report.rows_used,
        b.report.rows_rejected,
    );
    debug_assert_eq!(report_counts.0, report_counts.1 + report_counts.2);
    if b.rows.day.is_empty() && !opts.allow_empty {
        return Err(no_usable_rows(&paths, report_counts.0, report_counts.2));
    }
    if let Some(q) = quarantine {
        let path = q.target().to_path_buf();
        q.commit()?;
        b.report.quarantine = Some(path);
    }
    // The batches are gone: their pages go back before the grouping allocates.
    if config.release_memory {
        release_free_memory();
    }
    Ok(b.finish())
}

/// Hands the heap's free pages back to the system.
///
/// Memory freed on one thread goes back to the arena of the thread that allocated it
/// (glibc), where the stages that follow, on other threads, do not reuse it: decoded
/// Parquet batches after loading, partitions after streaming. Without this it stays
/// resident for the rest of the run.
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: glibc's malloc_trim takes no pointers and may be called at any time
        // from any thread.
        unsafe { malloc_trim(0) };
    }
}

/// Tells the observer of a load how far it has got: bytes and rows over all files.
struct Tracker<'a> {
    observer: &'a LoadObserver,
    sizes: Vec<u64>,
    total_bytes: u64,
    /// Bytes of the files already read.
    done_bytes: u64,
    file: usize,
}

/// Rows between two progress reports while a CSV file is read.
const PROGRESS_ROWS: usize = 1 << 16;

impl<'a> Tracker<'a> {
    fn new(observer: &'a LoadObserver, paths: &[PathBuf]) -> Tracker<'a> {
        let sizes: Vec<u64> = paths
            .iter()
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .collect();
        Tracker {
            observer,
            total_bytes: sizes.iter().sum(),
            sizes,
            done_bytes: 0,
            file: 0,
        }
    }

    /// Size of the file being read.
    fn size(&self) -> u64 {
        self.sizes.get(self.file).copied().unwrap_or(0)
    }

    /// Reports `bytes` read of the current file (capped at its size, should it grow
    /// while read) and `rows` read in all.
    fn report(&self, bytes: u64, rows: u64) {
        self.observer.notify(LoadProgress {
            bytes: self.done_bytes + bytes.min(self.size()),
            total_bytes: self.total_bytes,
            rows,
            file: self.file.min(self.sizes.len().saturating_sub(1)),
            files: self.sizes.len(),
        });
    }

    /// Reports the current file read to its end and moves on to the next.
    fn file_done(&mut self, rows: u64) {
        self.report(self.size(), rows);
        self.done_bytes += self.size();
        self.file += 1;
    }
}

/// The error for inputs without a single usable row.
pub(crate) fn no_usable_rows(paths: &[PathBuf], read: u64, rejected: u64) -> Error {
    Error::input(
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        format!("no usable transaction rows ({read} read, {rejected} rejected)"),
    )
}

/// Expands globs and checks that every input is a readable file.
pub(crate) fn expand_inputs(inputs: &[String]) -> Result<Vec<PathBuf>> {
    if inputs.is_empty() {
        return Err(Error::Usage("no input given: use --input FILE".into()));
    }
    let mut out = Vec::new();
    for input in inputs {
        if input.contains(['*', '?', '[']) {
            let entries = glob::glob(input)
                .map_err(|e| Error::Usage(format!("bad glob pattern {input:?}: {e}")))?;
            let mut found: Vec<PathBuf> = entries.filter_map(|e| e.ok()).collect();
            found.sort();
            if found.is_empty() {
                return Err(Error::input(input, "no file matches this pattern"));
            }
            out.extend(found);
        } else {
            out.push(PathBuf::from(input));
        }
    }
    for p in &out {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => {
                return Err(Error::input(
                    p.display().to_string(),
                    "is a directory; give files or a glob such as dir/*.parquet",
                ));
            }
            Ok(_) => {}
            Err(e) => return Err(Error::io(p, e)),
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv { gzip: bool },
    Parquet,
    Ipc,
}

fn detect_format(path: &Path) -> Result<Format> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let ext = |e: &str| name.ends_with(e);
    if ext(".parquet") || ext(".pq") {
        Ok(Format::Parquet)
    } else if ext(".arrow") || ext(".ipc") || ext(".feather") {
        Ok(Format::Ipc)
    } else if ext(".csv.gz") || ext(".tsv.gz") || ext(".txt.gz") {
        Ok(Format::Csv { gzip: true })
    } else if ext(".csv") || ext(".tsv") || ext(".txt") {
        Ok(Format::Csv { gzip: false })
    } else {
        Err(Error::input(
            path.display().to_string(),
            "unknown file type: expected .csv, .csv.gz, .tsv, .parquet, .arrow, .ipc or .feather",
        ))
    }
}

fn load_file(
    path: &Path,
    opts: &LoadOptions,
    rows: &mut Rows,
    sink: &mut RejectSink,
    progress: &Tracker,
    config: LoadConfig,
) -> Result<FileReport> {
    let before = (
        sink.report.rows_read,
        sink.report.rows_used,
        sink.report.rows_rejected,
    );
    match detect_format(path)? {
        Format::Csv { .. } if opts.row_range.is_some() => {
            return Err(Error::Usage(format!(
                "{}: a row range can only be read from Parquet or Arrow IPC files",
                path.display()
            )));
        }
        Format::Csv { gzip } => load_csv(path, gzip, opts, rows, sink, progress)?,
        Format::Parquet | Format::Ipc => load_columnar(path, opts, rows, sink, progress, config)?,
    }
    Ok(FileReport {
        path: path.display().to_string(),
        bytes: progress.size(),
        rows_read: sink.report.rows_read - before.0,
        rows_used: sink.report.rows_used - before.1,
        rows_rejected: sink.report.rows_rejected - before.2,
    })
}

/// Where each role's column sits in a file, once the header is known.
#[derive(Debug, Clone)]
struct Mapping {
    customer: usize,
    time: usize,
    amount: AmountSource,
    order: Option<usize>,
    cost: Option<usize>,
    category: Option<usize>,
    names: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
enum AmountSource {
    Column(usize),
    Product { quantity: usize, unit_price: usize },
}

impl Mapping {
    fn resolve(file: &str, names: &[String], columns: &ColumnNames) -> Result<Mapping> {
        let find = |role: Role| names.iter().position(|n| n == columns.name(role));
        let missing = |role: Role, hint: String| Error::MissingColumn {
            file: file.to_string(),
            column: columns.name(role).to_string(),
            role: role.describe(),
            available: names
                .iter()
                .map(|n| format!("'{n}'"))
                .collect::<Vec<_>>()
                .join(", "),
            hint,
        };
        let delimiter_hint = || {
            if names.len() == 1 {
                for d in [';', '\t', '|', ','] {
                    if names[0].contains(d) {
                        let shown = if d == '\t' {
                            "\\t".to_string()
                        } else {
                            d.to_string()
                        };
                        return format!(
                            " (the header looks '{shown}'-separated: try --delimiter '{shown}')"
                        );
                    }
                }
            }
            format!(" (map it with {})", Role::Customer.flag())
        };
        let required = |role: Role| {
            find(role).ok_or_else(|| {
                let hint = if names.len() == 1 {
                    delimiter_hint()
                } else {
                    format!(" (map it with {})", role.flag())
                };
                missing(role, hint)
            })
        };
        let optional = |role: Role| -> Result<Option<usize>> {
            match (find(role), columns.given(role)) {
                (Some(i), _) => Ok(Some(i)),
                (None, None) => Ok(None),
                (None, Some(_)) => Err(missing(role, String::new())),
            }
        };
        let customer = required(Role::Customer)?;
        let time = required(Role::Time)?;
        let amount = match (find(Role::Amount), columns.given(Role::Amount)) {
            (Some(i), _) => AmountSource::Column(i),
            (None, Some(_)) => return Err(missing(Role::Amount, String::new())),
            (None, None) => match (find(Role::Quantity), find(Role::UnitPrice)) {
                (Some(quantity), Some(unit_price)) => AmountSource::Product {
                    quantity,
                    unit_price,
                },
                _ => {
                    let hint = if names.len() == 1 {
                        delimiter_hint()
                    } else {
                        " (map it with --amount-col, or give --quantity-col and --unit-price-col)"
                            .to_string()
                    };
                    return Err(missing(Role::Amount, hint));
                }
            },
        };
        Ok(Mapping {
            customer,
            time,
            amount,
            order: optional(Role::Order)?,
            cost: optional(Role::Cost)?,
            category: optional(Role::Category)?,
            names: names.to_vec(),
        })
    }
}

impl Mapping {
    /// The names of the columns mapped to a role, in file order.
    fn used_names(&self) -> Vec<String> {
        let mut used = vec![self.customer, self.time];
        match self.amount {
            AmountSource::Column(i) => used.push(i),
            AmountSource::Product {
                quantity,
                unit_price,
            } => used.extend([quantity, unit_price]),
        }
        used.extend([self.order, self.cost, self.category].into_iter().flatten());
        used.sort_unstable();
        used.into_iter().map(|i| self.names[i].clone()).collect()
    }
}

/// One cell of a row, before validation.
#[derive(Debug, Clone, Copy)]
enum Cell<'a> {
    Null,
    Text(&'a str),
    Int(i64),
    Float(f64),
    Float32(f32),
    Day(i32),
    Micros(i64),
    /// Bytes that are not UTF-8 (CSV only).
    Invalid(&'a [u8]),
}

impl Cell<'_> {
    fn shown(&self) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Text(s) => s.to_string(),
            Cell::Int(i) => i.to_string(),
            Cell::Float(f) => f.to_string(),
            Cell::Float32(f) => f.to_string(),
            Cell::Day(d) => crate::time::format_day(*d),
            Cell::Micros(m) => {
                let t = LineTime::from_micros(*m);
                let secs = (m - i64::from(t.day) * crate::time::MICROS_PER_DAY) / 1_000_000;
                format!(
                    "{}T{:02}:{:02}:{:02}",
                    crate::time::format_day(t.day),
                    secs / 3600,
                    secs / 60 % 60,
                    secs % 60
                )
            }
            Cell::Invalid(b) => String::from_utf8_lossy(b).into_owned(),
        }
    }

    fn is_null(&self) -> bool {
        match self {
            Cell::Null => true,
            Cell::Text(s) => trim(s).is_empty(),
            _ => false,
        }
    }
}

/// `s.trim()`, without walking the characters when `s` starts and ends with ASCII that
/// is not whitespace (as nearly every value does).
#[inline]
fn trim(s: &str) -> &str {
    let plain = |b: u8| b.is_ascii() && !char::from(b).is_whitespace();
    match s.as_bytes() {
        [first, .., last] if plain(*first) && plain(*last) => s,
        [only] if plain(*only) => s,
        _ => s.trim(),
    }
}

/// Where a row came from, for messages.
struct Loc<'a> {
    file: &'a str,
    place: &'static str,
    line: u64,
}

/// Accepted rows, before grouping by customer.
struct Rows {
    id_kind: Option<(IdKind, String)>,
    text_ids: IdTable<Box<str>>,
    int_ids: IdTable<i64>,
    customer: Vec<u32>,
    day: Vec<i32>,
    amount: Vec<i64>,
    profit: Vec<i64>,
    order: Vec<u64>,
    category: Vec<u32>,
    categories: PlHashMap<Box<str>, u32>,
    declared: IdType,
    decimals: u32,
    margin: money::Ratio,
    time_format: TimeFormat,
    as_of: Option<i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IdKind {
    Text,
    Int,
}

/// Order keys for lines without an order id live above this bit, so they never meet
/// the codes of order ids.
const TS_ORDER_BIT: u64 = 1 << 63;

struct Builder {
    rows: Rows,
    report: LoadReport,
}

impl Builder {
    fn new(opts: &LoadOptions) -> Builder {
        Builder {
            rows: Rows::new(
                match opts.customer_id_type {
                    IdType::Auto => None,
                    IdType::Text => Some((IdKind::Text, "--customer-id-type".into())),
                    IdType::Int => Some((IdKind::Int, "--customer-id-type".into())),
                },
                opts.customer_id_type,
                opts.currency_decimals,
                opts.margin,
                opts.time_format.clone(),
                opts.as_of,
            ),
            report: LoadReport::default(),
        }
    }

    /// Groups lines by customer (customers sorted into output order) and derives as-of.
    fn finish(self) -> Loaded {
        let Builder { rows, mut report } = self;
        let (ids, rank) = match rows.id_kind.map(|k| k.0) {
            Some(IdKind::Int) => sorted_ids(
                rows.int_ids.into_coded(),
                |&a| a,
                |a, b| a.cmp(b),
                CustomerIds::Int,
            ),
            _ => sorted_ids(
                rows.text_ids.into_coded(),
                |a| byte_prefix(a),
                |a: &Box<str>, b: &Box<str>| a.as_bytes().cmp(b.as_bytes()),
                // The boxed ids are freed on this thread: freeing them in parallel
                // makes the threads queue for each other's heaps (3× slower).
                |v| CustomerIds::Text(TextIds::from_slice(&v)),
            ),
        };
        // Each part holds a count per customer (8 bytes each): two parts halve the
        // random moves' time for one count more than a serial pass holds.
        let parts = rayon::current_num_threads().clamp(1, 2);
        let (offsets, position) = group_lines(rows.customer, &rank, ids.len(), parts);
        let (categories, cat_rank) = sorted_ids(
            (rows.categories.len(), rows.categories.into_iter().collect()),
            |a| byte_prefix(a),
            |a: &Box<str>, b: &Box<str>| a.as_bytes().cmp(b.as_bytes()),
            |v| v.into_iter().map(String::from).collect::<Vec<_>>(),
        );
        let ranked_category = |k: u32| {
            if k == NO_CATEGORY {
                NO_CATEGORY
            } else {
                cat_rank[k as usize]
            }
        };
        // Each column is moved to its place in place, on its own task, so no column
        // exists twice.
        let position = &position;
        let (mut day, mut order, mut amount, mut profit, mut category) = (
            rows.day,
            rows.order,
            rows.amount,
            rows.profit,
            rows.category,
        );
        rayon::join(
            || {
                rayon::join(
                    || permute(&mut day, position, |d| d),
                    || permute(&mut order, position, |o| o),
                )
            },
            || {
                rayon::join(
                    || {
                        rayon::join(
                            || permute(&mut amount, position, |a| a),
                            || permute(&mut profit, position, |p| p),
                        )
                    },
                    || permute(&mut category, position, ranked_category),
                )
            },
        );
        let as_of = rows
            .as_of
            .unwrap_or_else(|| day.iter().copied().max().unwrap_or(0) + 1);
        report.as_of = as_of;
        report.as_of_given = rows.as_of.is_some();
        Loaded {
            transactions: Transactions {
                ids,
                offsets,
                day,
                amount,
                profit,
                order,
                category,
                categories,
                currency_decimals: rows.decimals,
                as_of,
            },
            report,
        }
    }
}

/// Groups lines by customer, keeping their order within a customer (a counting sort):
/// line `i`, of the customer coded `customer[i]`, moves to `position[i]`, and
/// `offsets[r]..offsets[r + 1]` are the places of the customer ranked `r`.
///
/// The lines are split into `parts`, counted and placed each on its own task; a part's
/// lines of a customer come after those of the parts before it, so the result is the
/// same for any number of parts.
fn group_lines(
    mut customer: Vec<u32>,
    rank: &[u32],
    n_customers: usize,
    parts: usize,
) -> (Vec<usize>, Vec<usize>) {
    use rayon::prelude::*;
    customer.par_iter_mut().for_each(|c| *c = rank[*c as usize]);
    let part = customer.len().div_ceil(parts).max(1);
    let mut next: Vec<Vec<usize>> = customer
        .par_chunks(part)
        .map(|lines| {
            let mut count = vec![0usize; n_customers];
            for &r in lines {
                count[r as usize] += 1;
            }
            count
        })
        .collect();
    // Each part's first place for each customer.
    let mut offsets = vec![0usize; n_customers + 1];
    let mut placed = 0;
    for r in 0..n_customers {
        offsets[r] = placed;
        for count in &mut next {
            let n = count[r];
            count[r] = placed;
            placed += n;
        }
    }
    offsets[n_customers] = placed;
    let mut position = vec![0usize; customer.len()];
    position
        .par_chunks_mut(part)
        .zip(customer.par_chunks(part))
        .zip(next.par_iter_mut())
        .for_each(|((position, lines), next)| {
            for (p, &r) in position.iter_mut().zip(lines) {
                *p = next[r as usize];
                next[r as usize] += 1;
            }
        });
    (offsets, position)
}

/// Moves value `i` of `values` to `position[i]` in place, mapping every value by `f`:
/// each cycle of the permutation is followed once, so no second copy of the column is
/// made (and no fresh pages are touched).
fn permute<T: Copy>(values: &mut [T], position: &[usize], f: impl Fn(T) -> T) {
    let mut placed = vec![0u64; values.len().div_ceil(64)];
    let is_placed = |placed: &[u64], i: usize| placed[i / 64] >> (i % 64) & 1 == 1;
    for start in 0..values.len() {
        if is_placed(&placed, start) {
            continue;
        }
        let mut carried = f(values[start]);
        let mut from = start;
        loop {
            let to = position[from];
            placed[to / 64] |= 1 << (to % 64);
            if to == start {
                values[start] = carried;
                break;
            }
            carried = f(std::mem::replace(&mut values[to], carried));
            from = to;
        }
    }
}

/// Sorts interned keys, given with their codes and the bound of the codes; returns the
/// sorted keys and, per code, its rank.
fn sorted_ids<K: Send, P: Ord + Send, T>(
    (code_bound, coded): (usize, Vec<(K, u32)>),
    prefix: impl Fn(&K) -> P + Sync,
    cmp: impl Fn(&K, &K) -> std::cmp::Ordering + Sync,
    wrap: impl FnOnce(Vec<K>) -> T,
) -> (T, Vec<u32>) {
    use rayon::prelude::*;
    // Sorting by a prefix held beside each key settles most comparisons without
    // following the key to its bytes.
    let mut entries: Vec<(P, K, u32)> = coded
        .into_par_iter()
        .map(|(k, c)| (prefix(&k), k, c))
        .collect();
    // Keys are distinct, so an unstable sort orders them the same as a stable one.
    entries.par_sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| cmp(&a.1, &b.1)));
    let mut rank = vec![0u32; code_bound];
    for (r, (_, _, code)) in entries.iter().enumerate() {
        rank[*code as usize] = r as u32;
    }
    (wrap(entries.into_par_iter().map(|e| e.1).collect()), rank)
}

/// The first 16 bytes of `text`, zero-padded, as a number that orders like the bytes:
/// texts with different prefixes compare as their prefixes do.
fn byte_prefix(text: &str) -> u128 {
    let mut head = [0u8; 16];
    let n = text.len().min(16);
    head[..n].copy_from_slice(&text.as_bytes()[..n]);
    u128::from_be_bytes(head)
}

/// The key of an order id: a 63-bit hash of its text (FNV-1a with a final avalanche).
///
/// Order keys only tell apart the orders *of one customer*, so a collision would need two
/// of one customer's order ids to hash alike: about k²/2⁶⁴ for a customer with k orders
/// (10⁻¹³ at k = 1,000). This spares a global table of every order id.
fn order_key(id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in id.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h & !TS_ORDER_BIT
}

/// The code of `key`, giving the next code to a key not seen before (allocates only then):
/// a table of one shard.
fn intern(map: &mut PlHashMap<Box<str>, u32>, key: &str) -> u32 {
    IdTable::code_in(map, 0, 1, key)
}

/// The shard of a key with this hash, out of `shards`: the columnar loader partitions
/// rows by it, so a partition's ids all belong to one shard of the [`IdTable`].
fn shard_of(hash: u64, shards: usize) -> usize {
    ((hash >> 32) % shards as u64) as usize
}

/// The hash that chooses a customer id's shard (of the id's text, or of the integer).
fn shard_hash<Q: std::hash::Hash + ?Sized>(key: &Q) -> u64 {
    PlFixedStateQuality::default().hash_one(key)
}

/// Distinct customer ids with their codes, split into shards by a hash of the id, so
/// that the ids of a batch can be registered one shard per thread with nothing to merge.
/// The `k`-th id of shard `s` has the code `k * shards + s`: codes tell ids apart (the
/// final order is by the ids themselves, see [`Builder::finish`]).
struct IdTable<K> {
    shards: Vec<PlHashMap<K, u32>>,
}

impl<K: std::hash::Hash + Eq> IdTable<K> {
    fn new(shards: usize) -> IdTable<K> {
        IdTable {
            shards: (0..shards.max(1)).map(|_| PlHashMap::default()).collect(),
        }
    }

    fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.is_empty())
    }

    /// The code of `key`, registering it if it is new.
    fn code<Q>(&mut self, key: &Q) -> u32
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned + ?Sized,
        Q::Owned: Into<K>,
    {
        let n = self.shards.len();
        let s = shard_of(shard_hash(key), n);
        Self::code_in(&mut self.shards[s], s, n, key)
    }

    /// The code of `key` in shard `s` of `n`, where `key` belongs (allocates only for a
    /// new key).
    fn code_in<Q>(shard: &mut PlHashMap<K, u32>, s: usize, n: usize, key: &Q) -> u32
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned + ?Sized,
        Q::Owned: Into<K>,
    {
        if let Some(&code) = shard.get(key) {
            return code;
        }
        let Ok(code) = u32::try_from(shard.len() * n + s) else {
            unreachable!("more distinct keys than 32-bit codes hold")
        };
        shard.insert(key.to_owned().into(), code);
        code
    }

    /// Registers the customers of a batch's rows: `part[i]` is row `i`'s shard
    /// ([`REJECTED`] for a rejected row) and `key(i)` its id. Each shard is filled on its
    /// own thread; the code of every accepted row is appended to `codes`, in row order.
    fn register_partitioned<Q, R>(
        &mut self,
        part: &[u8],
        key: impl Fn(usize) -> R + Sync,
        codes: &mut Vec<u32>,
    ) where
        K: Send + std::borrow::Borrow<Q>,
        R: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned + ?Sized,
        Q::Owned: Into<K>,
    {
        use rayon::prelude::*;
        let n = self.shards.len();
        let per_shard: Vec<Vec<u32>> = self
            .shards
            .par_iter_mut()
            .enumerate()
            .map(|(s, shard)| {
                let mut codes = Vec::with_capacity(part.len() / n);
                // Every shard looks through all rows: a vectorised byte search, not a
                // branch per row. Shards are fewer than REJECTED, so `s` fits a byte.
                for i in memchr::memchr_iter(s as u8, part) {
                    codes.push(Self::code_in(shard, s, n, key(i).borrow()));
                }
                codes
            })
            .collect();
        // Back into row order, in runs of rows side by side: each run's rows per shard
        // are counted first, so every run knows where its codes start in each shard's
        // list and in `codes`.
        let runs: Vec<&[u8]> = part.chunks(CHUNK_ROWS).collect();
        let counts: Vec<Vec<usize>> = runs
            .par_iter()
            .map(|run| {
                let mut count = vec![0usize; n];
                for &q in run.iter().filter(|&&q| q != REJECTED) {
                    count[usize::from(q)] += 1;
                }
                count
            })
            .collect();
        let base = codes.len();
        let accepted: usize = counts.iter().flatten().sum();
        codes.par_extend(rayon::iter::repeat_n(u32::MAX, accepted));
        let mut rest = &mut codes[base..];
        let mut from = vec![0usize; n];
        let mut tasks = Vec::with_capacity(runs.len());
        for (run, count) in runs.into_iter().zip(&counts) {
            let (out, tail) = std::mem::take(&mut rest).split_at_mut(count.iter().sum());
            rest = tail;
            tasks.push((run, out, from.clone()));
            for (at, c) in from.iter_mut().zip(count) {
                *at += c;
            }
        }
        tasks.into_par_iter().for_each(|(run, out, mut next)| {
            let accepted = run.iter().filter(|&&q| q != REJECTED);
            for (code, &q) in out.iter_mut().zip(accepted) {
                let s = usize::from(q);
                *code = per_shard[s][next[s]];
                next[s] += 1;
            }
        });
    }

    /// Registers every id of `self` (a chunk's table) in `to`; returns, per code of
    /// `self`, the code in `to`.
    fn recoded_into(self, to: &mut IdTable<K>) -> Vec<u32>
    where
        K: Clone + Send,
    {
        let (bound, coded) = self.into_coded();
        let mut table = vec![u32::MAX; bound];
        for (key, c) in coded {
            table[c as usize] = to.code(&key);
        }
        table
    }

    /// Every id with its code, and a bound above every code.
    fn into_coded(self) -> (usize, Vec<(K, u32)>)
    where
        K: Send,
    {
        use rayon::prelude::*;
        let n = self.shards.len();
        let bound = n * self.shards.iter().map(|s| s.len()).max().unwrap_or(0);
        let coded = self
            .shards
            .into_par_iter()
            .flat_map_iter(|shard| shard.into_iter())
            .collect();
        (bound, coded)
    }
}

/// A validated customer id, not yet registered.
enum CustomerKey<'a> {
    Int(i64),
    Text(&'a str),
    Owned(String),
}

/// A validated row whose customer and category are not yet registered.
struct RowValues<'a> {
    customer: CustomerKey<'a>,
    day: i32,
    amount: i64,
    profit: i64,
    order: u64,
    category: Option<std::borrow::Cow<'a, str>>,
}

/// The category of a cell (`None` when empty), or `Err` for bytes that are not UTF-8.
fn category_key(cell: Cell<'_>) -> std::result::Result<Option<std::borrow::Cow<'_, str>>, ()> {
    use std::borrow::Cow;
    match cell {
        c if c.is_null() => Ok(None),
        Cell::Text(s) => Ok(Some(Cow::Borrowed(trim(s)))),
        Cell::Invalid(_) => Err(()),
        other => Ok(Some(Cow::Owned(other.shown()))),
    }
}

/// The cells of one row by role.
struct RowCells<'a> {
    customer: Cell<'a>,
    time: Cell<'a>,
    amount: Cell<'a>,
    /// Set when amount = quantity × unit price.
    unit_price: Option<Cell<'a>>,
    order: Cell<'a>,
    cost: Cell<'a>,
    category: Cell<'a>,
}

/// A rejection in the making: column, reason, detail, expected.
type Reject = (String, RejectReason, String, String);

impl Rows {
    /// An empty table with these settings.
    fn new(
        id_kind: Option<(IdKind, String)>,
        declared: IdType,
        decimals: u32,
        margin: money::Ratio,
        time_format: TimeFormat,
        as_of: Option<i32>,
    ) -> Rows {
        // Enough shards for every thread to register ids with some to spare; a row's
        // partition in the columnar loader is its id's shard.
        let shards = (4 * rayon::current_num_threads().max(1)).min(usize::from(REJECTED));
        Rows {
            id_kind,
            text_ids: IdTable::new(shards),
            int_ids: IdTable::new(shards),
            customer: Vec::new(),
            day: Vec::new(),
            amount: Vec::new(),
            profit: Vec::new(),
            order: Vec::new(),
            category: Vec::new(),
            categories: PlHashMap::default(),
            declared,
            decimals,
            margin,
            time_format,
            as_of,
        }
    }

    /// An empty table with the same settings, for one chunk of rows.
    fn empty_like(&self) -> Rows {
        Rows::new(
            self.id_kind.clone(),
            self.declared,
            self.decimals,
            self.margin,
            self.time_format.clone(),
            self.as_of,
        )
    }

    /// Appends a chunk's rows, recoding its customers and categories into this table's
    /// codes (new keys get codes in the chunk's order of first appearance).
    fn absorb(&mut self, chunk: Rows) {
        fn by_code<K>(map: PlHashMap<K, u32>) -> Vec<K> {
            let mut keyed: Vec<(K, u32)> = map.into_iter().collect();
            keyed.sort_unstable_by_key(|e| e.1);
            keyed.into_iter().map(|e| e.0).collect()
        }
        let customer_codes = if chunk.int_ids.is_empty() {
            chunk.text_ids.recoded_into(&mut self.text_ids)
        } else {
            chunk.int_ids.recoded_into(&mut self.int_ids)
        };
        let category_codes: Vec<u32> = by_code(chunk.categories)
            .into_iter()
            .map(|k| intern(&mut self.categories, &k))
            .collect();
        self.customer
            .extend(chunk.customer.iter().map(|&c| customer_codes[c as usize]));
        self.category.extend(chunk.category.iter().map(|&k| {
            if k == NO_CATEGORY {
                k
            } else {
                category_codes[k as usize]
            }
        }));
        self.day.extend(chunk.day);
        self.amount.extend(chunk.amount);
        self.profit.extend(chunk.profit);
        self.order.extend(chunk.order);
    }

    fn check_id_kind(&mut self, kind: IdKind, file: &str) -> Result<()> {
        match &self.id_kind {
            None => {
                self.id_kind = Some((kind, file.to_string()));
                Ok(())
            }
            Some((k, _)) if *k == kind => Ok(()),
            Some((_, first)) => Err(Error::input(
                file,
                format!(
                    "customer ids are {} here but {} in {first}; declare --customer-id-type text (or int) to read every file the same way",
                    if kind == IdKind::Int {
                        "integers"
                    } else {
                        "text"
                    },
                    if kind == IdKind::Int {
                        "text"
                    } else {
                        "integers"
                    },
                ),
            )),
        }
    }

    /// Validates one row and appends it, or says why not.
    fn push(&mut self, cells: &RowCells, m: &Mapping) -> std::result::Result<(), Reject> {
        let v = self.values(cells, m)?;
        let category = match v.category {
            None => NO_CATEGORY,
            Some(key) => intern(&mut self.categories, &key),
        };
        let customer = self.customer_code(v.customer);
        self.customer.push(customer);
        self.day.push(v.day);
        self.amount.push(v.amount);
        self.profit.push(v.profit);
        self.order.push(v.order);
        self.category.push(category);
        Ok(())
    }

    /// Validates one row: its values, with the customer and category not yet registered.
    fn values<'c>(
        &self,
        cells: &RowCells<'c>,
        m: &Mapping,
    ) -> std::result::Result<RowValues<'c>, Reject> {
        let name = |i: usize| m.names[i].clone();
        let col = |i: usize| m.names[i].as_str();
        let customer = self.customer_key(cells.customer, col(m.customer))?;
        let time = self.parse_time(cells.time, col(m.time))?;
        if let Some(as_of) = self.as_of
            && time.day > as_of
        {
            return Err((
                name(m.time),
                RejectReason::AfterAsOf,
                format!("as-of date is {}", crate::time::format_day(as_of)),
                "a time on or before the as-of date".into(),
            ));
        }
        let amount = match (m.amount, cells.unit_price) {
            (
                AmountSource::Product {
                    quantity,
                    unit_price,
                },
                Some(price),
            ) => {
                let q = self.decimal(cells.amount, col(quantity), RejectReason::BadQuantity)?;
                let p = self.decimal(price, col(unit_price), RejectReason::BadUnitPrice)?;
                let product = q.checked_mul(p).map_err(|e| {
                    (
                        name(quantity),
                        RejectReason::AmountOverflow,
                        e.to_string(),
                        money_expected(),
                    )
                })?;
                product.to_minor(self.decimals).map_err(|e| {
                    (
                        name(quantity),
                        RejectReason::AmountOverflow,
                        e.to_string(),
                        money_expected(),
                    )
                })?
            }
            (AmountSource::Column(i), _) | (AmountSource::Product { quantity: i, .. }, None) => {
                self.money(cells.amount, col(i), RejectReason::BadAmount)?
            }
        };
        let profit = if cells.cost.is_null() {
            self.margin.apply(amount).map_err(|e| {
                (
                    name(m.customer),
                    RejectReason::AmountOverflow,
                    e.to_string(),
                    money_expected(),
                )
            })?
        } else {
            let col = m.cost.map(name).unwrap_or_default();
            let cost = self.money(cells.cost, &col, RejectReason::BadCost)?;
            amount.checked_sub(cost).ok_or_else(|| {
                (
                    col,
                    RejectReason::AmountOverflow,
                    "amount − cost overflows".into(),
                    money_expected(),
                )
            })?
        };
        let order = match cells.order {
            c if c.is_null() => TS_ORDER_BIT | (time.micros as u64 & !TS_ORDER_BIT),
            Cell::Text(s) => order_key(trim(s)),
            Cell::Invalid(_) => {
                return Err((
                    m.order.map(name).unwrap_or_default(),
                    RejectReason::InvalidUtf8,
                    String::new(),
                    "UTF-8 text".into(),
                ));
            }
            other => order_key(&other.shown()),
        };
        let category = category_key(cells.category).map_err(|()| {
            (
                m.category.map(name).unwrap_or_default(),
                RejectReason::InvalidUtf8,
                String::new(),
                "UTF-8 text".into(),
            )
        })?;
        Ok(RowValues {
            customer,
            day: time.day,
            amount,
            profit,
            order,
            category,
        })
    }

    /// Checks a customer cell; the id is only registered once the whole row is valid,
    /// so a rejected row never creates a customer.
    fn customer_key<'c>(
        &self,
        cell: Cell<'c>,
        col: &str,
    ) -> std::result::Result<CustomerKey<'c>, Reject> {
        let kind = self.id_kind.as_ref().map(|k| k.0).unwrap_or(IdKind::Text);
        let bad = |reason, detail: &str, expected: &str| {
            Err((
                col.to_string(),
                reason,
                detail.to_string(),
                expected.to_string(),
            ))
        };
        if cell.is_null() {
            return bad(RejectReason::MissingCustomer, "", "a customer id");
        }
        match (kind, cell) {
            (_, Cell::Invalid(_)) => bad(RejectReason::InvalidUtf8, "", "UTF-8 text"),
            (IdKind::Int, Cell::Int(i)) => Ok(CustomerKey::Int(i)),
            (IdKind::Int, Cell::Text(s)) => match trim(s).parse::<i64>() {
                Ok(i) => Ok(CustomerKey::Int(i)),
                Err(_) => bad(
                    RejectReason::BadCustomerId,
                    "not an integer",
                    "an integer id (declared with --customer-id-type int)",
                ),
            },
            (IdKind::Int, _) => bad(RejectReason::BadCustomerId, "", "an integer id"),
            (IdKind::Text, Cell::Text(s)) => Ok(CustomerKey::Text(trim(s))),
            (IdKind::Text, other) => Ok(CustomerKey::Owned(other.shown())),
        }
    }

    fn customer_code(&mut self, key: CustomerKey) -> u32 {
        match key {
            CustomerKey::Int(i) => self.int_code(i),
            CustomerKey::Text(s) => self.text_code(s),
            CustomerKey::Owned(s) => self.text_code(&s),
        }
    }

    fn int_code(&mut self, id: i64) -> u32 {
        self.int_ids.code(&id)
    }

    fn text_code(&mut self, id: &str) -> u32 {
        self.text_ids.code(id)
    }

    fn parse_time(&self, cell: Cell, col: &str) -> std::result::Result<LineTime, Reject> {
        let time = self.parse_time_unchecked(cell, col)?;
        if !(crate::time::MIN_DAY..=crate::time::MAX_DAY).contains(&time.day) {
            return Err((
                col.to_string(),
                RejectReason::BadTime,
                "outside the years 1 to 9999".into(),
                self.time_format.describe(),
            ));
        }
        Ok(time)
    }

    fn parse_time_unchecked(&self, cell: Cell, col: &str) -> std::result::Result<LineTime, Reject> {
        let expected = || self.time_format.describe();
        let reject =
            |reason, detail: &str| Err((col.to_string(), reason, detail.to_string(), expected()));
        match cell {
            Cell::Day(d) => Ok(LineTime::from_day(d)),
            Cell::Micros(m) => Ok(LineTime::from_micros(m)),
            Cell::Text(s) => match self.time_format.parse(s) {
                Ok(t) => Ok(t),
                Err(TimeError::Empty) => reject(RejectReason::MissingTime, ""),
                Err(TimeError::Impossible) => {
                    reject(RejectReason::ImpossibleDate, "no such day or time")
                }
                Err(TimeError::Unparsable) => reject(RejectReason::BadTime, ""),
            },
            Cell::Null => reject(RejectReason::MissingTime, ""),
            Cell::Invalid(_) => reject(RejectReason::InvalidUtf8, ""),
            Cell::Int(_) | Cell::Float(_) | Cell::Float32(_) => {
                reject(RejectReason::BadTime, "a number is not a time")
            }
        }
    }

    fn decimal(
        &self,
        cell: Cell,
        col: &str,
        reason: RejectReason,
    ) -> std::result::Result<Decimal, Reject> {
        let fail = |r: RejectReason, e: DecimalError| {
            (col.to_string(), r, e.to_string(), money_expected())
        };
        let missing = if reason == RejectReason::BadAmount {
            RejectReason::MissingAmount
        } else {
            reason
        };
        match cell {
            Cell::Null => Err(fail(missing, DecimalError::Empty)),
            Cell::Text(s) => money::parse_decimal(s).map_err(|e| match e {
                DecimalError::Empty => fail(missing, e),
                DecimalError::TooLarge => fail(RejectReason::AmountOverflow, e),
                _ => fail(reason, e),
            }),
            Cell::Int(i) => Ok(Decimal {
                mantissa: i128::from(i),
                scale: 0,
            }),
            Cell::Float(f) if f.is_finite() => money::parse_decimal(&format!("{f}"))
                .map_err(|e| fail(RejectReason::AmountOverflow, e)),
            Cell::Float32(f) if f.is_finite() => money::parse_decimal(&format!("{f}"))
                .map_err(|e| fail(RejectReason::AmountOverflow, e)),
            Cell::Float(_) | Cell::Float32(_) => Err(fail(reason, DecimalError::NotFinite)),
            Cell::Invalid(_) => Err((
                col.to_string(),
                RejectReason::InvalidUtf8,
                String::new(),
                money_expected(),
            )),
            Cell::Day(_) | Cell::Micros(_) => Err(fail(reason, DecimalError::NotANumber)),
        }
    }

    fn money(
        &self,
        cell: Cell,
        col: &str,
        reason: RejectReason,
    ) -> std::result::Result<i64, Reject> {
        if let Cell::Float(f) = cell
            && f.is_finite()
        {
            return money::f64_to_minor(f, self.decimals).map_err(|e| {
                (
                    col.to_string(),
                    RejectReason::AmountOverflow,
                    e.to_string(),
                    money_expected(),
                )
            });
        }
        let d = self.decimal(cell, col, reason)?;
        d.to_minor(self.decimals).map_err(|e| {
            (
                col.to_string(),
                RejectReason::AmountOverflow,
                e.to_string(),
                money_expected(),
            )
        })
    }
}

fn money_expected() -> String {
    "a decimal number like 12.34 or -5".into()
}

/// Applies the bad-row policy to rejected rows and counts every row.
struct RejectSink<'a> {
    policy: &'a BadRowPolicy,
    report: &'a mut LoadReport,
    quarantine: Option<&'a mut AtomicFile>,
    max_examples: usize,
}

impl RejectSink<'_> {
    fn used_n(&mut self, n: u64) {
        self.report.rows_read += n;
        self.report.rows_used += n;
    }

    fn reject(&mut self, loc: &Loc, reject: Reject, value: String, record: String) -> Result<()> {
        let (column, reason, detail, expected) = reject;
        let rejection = Rejection {
            file: loc.file.to_string(),
            place: loc.place,
            line: loc.line,
            column,
            value,
            reason,
            detail,
            expected,
        };
        if *self.policy == BadRowPolicy::Error {
            return Err(rejection.into_error());
        }
        self.report.rows_read += 1;
        self.report.rows_rejected += 1;
        *self.report.rejected_by_reason.entry(reason).or_insert(0) += 1;
        if let Some(q) = self.quarantine.as_deref_mut() {
            let target = q.target().display().to_string();
            let reason_text = if rejection.detail.is_empty() {
                reason.key().to_string()
            } else {
                format!("{}: {}", reason.key(), rejection.detail)
            };
            let mut w = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(q.writer());
            w.write_record([
                rejection.file.as_str(),
                &rejection.line.to_string(),
                rejection.column.as_str(),
                reason_text.as_str(),
                rejection.value.as_str(),
                record.as_str(),
            ])
            .and_then(|_| w.flush().map_err(Into::into))
            .map_err(|e| Error::Data(format!("writing {target}: {e}")))?;
        }
        if self.report.examples.len() < self.max_examples {
            self.report.examples.push(rejection);
        }
        Ok(())
    }
}

/// The value shown for a rejection: the cell of the rejected column.
fn cell_for<'a>(cells: &RowCells<'a>, m: &Mapping, column: &str) -> Cell<'a> {
    let idx = m.names.iter().position(|n| n == column);
    let is = |i: Option<usize>| i.is_some() && i == idx;
    match m.amount {
        AmountSource::Product { unit_price, .. } if is(Some(unit_price)) => {
            return cells.unit_price.unwrap_or(Cell::Null);
        }
        _ => {}
    }
    if is(Some(m.customer)) {
        cells.customer
    } else if is(Some(m.time)) {
        cells.time
    } else if is(m.cost) {
        cells.cost
    } else if is(m.order) {
        cells.order
    } else if is(m.category) {
        cells.category
    } else {
        cells.amount
    }
}

/// A reader that counts the bytes taken from the file, before any decompression.
struct Counted<R> {
    inner: R,
    count: Rc<CountCell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Opens a text file (gzip or not) for reading; `consumed` counts the file's bytes read.
fn open_text(path: &Path, gzip: bool, consumed: Rc<CountCell<u64>>) -> Result<Box<dyn BufRead>> {
    let file = Counted {
        inner: File::open(path).map_err(|e| Error::io(path, e))?,
        count: consumed,
    };
    let mut reader: Box<dyn BufRead> = if gzip {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::read::MultiGzDecoder::new(BufReader::new(file)),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, file))
    };
    let head = reader.fill_buf().map_err(|e| {
        if gzip {
            Error::input(
                path.display().to_string(),
                format!("not a readable gzip file: {e}"),
            )
        } else {
            Error::io(path, e)
        }
    })?;
    if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        reader.consume(3);
    }
    Ok(reader)
}

fn load_csv(
    path: &Path,
    gzip: bool,
    opts: &LoadOptions,
    rows: &mut Rows,
    sink: &mut RejectSink,
    progress: &Tracker,
) -> Result<()> {
    let file = path.display().to_string();
    let consumed = Rc::new(CountCell::new(0));
    let text = open_text(path, gzip, Rc::clone(&consumed))?;
    let lines = LineIndex::new(text, opts.delimiter, opts.quote);
    let line_starts = lines.starts.clone();
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(opts.delimiter)
        .quote(opts.quote)
        .has_headers(false)
        .flexible(true)
        .from_reader(lines);
    let read_error = |e: csv::Error| match e.kind() {
        csv::ErrorKind::Io(io) => Error::input(file.clone(), format!("read failed: {io}")),
        _ => Error::input(file.clone(), format!("unreadable CSV: {e}")),
    };
    let mut record = csv::ByteRecord::new();
    if !csv.read_byte_record(&mut record).map_err(read_error)? {
        return Err(Error::input(file, "file is empty (expected a header line)"));
    }
    let (names, mut pending_first) = if opts.has_header {
        let mut names = Vec::with_capacity(record.len());
        for (i, field) in record.iter().enumerate() {
            let name = std::str::from_utf8(field).map_err(|_| {
                Error::input(
                    file.clone(),
                    format!("line 1, column {}: header is not UTF-8", i + 1),
                )
            })?;
            names.push(name.trim().to_string());
        }
        (names, false)
    } else {
        (
            (1..=record.len()).map(|i| format!("column_{i}")).collect(),
            true,
        )
    };
    check_duplicate_names(&file, &names)?;
    rows.check_id_kind(
        match rows.declared {
            IdType::Int => IdKind::Int,
            _ => IdKind::Text,
        },
        &file,
    )?;
    let m = Mapping::resolve(&file, &names, &opts.columns)?;
    let delimiter = (opts.delimiter as char).to_string();
    // Records are read a batch at a time, then converted in parallel. With more than
    // one thread, a batch is converted on the pool while the next one is read, so the
    // serial parsing leaves no core idle; a failure of the reading waits for the batch
    // before it, so the first failure in the file is the one reported. (With one
    // thread, one thing at a time.)
    let rows_before = sink.report.rows_read;
    let mut read_so_far = 0u64;
    // Reads the next batch into `batch`: its length, each record's line, and whether
    // the file is done.
    let mut read_batch = |batch: &mut Vec<csv::ByteRecord>| -> Result<(usize, Vec<u64>, bool)> {
        let mut done = false;
        let mut len = 0;
        if pending_first {
            batch.push(std::mem::take(&mut record));
            len = 1;
            pending_first = false;
        }
        while len < CSV_BATCH {
            if len == batch.len() {
                batch.push(csv::ByteRecord::new());
            }
            if !csv.read_byte_record(&mut batch[len]).map_err(read_error)? {
                done = true;
                break;
            }
            len += 1;
            if len % PROGRESS_ROWS == 0 {
                progress.report(consumed.get(), rows_before + read_so_far + len as u64);
            }
        }
        if done && let Some(at) = line_starts.borrow().open_quote {
            let line = line_starts.borrow().line_of(at);
            return Err(Error::input(
                file.clone(),
                format!(
                    "line {line}: a quote opens a field that is never closed; everything after it would be read as one value"
                ),
            ));
        }
        let batch = &batch[..len];
        let record_lines: Vec<u64> = {
            let mut starts = line_starts.borrow_mut();
            let lines: Vec<u64> = batch
                .iter()
                .map(|r| starts.line_of(r.position().map_or(0, |p| p.byte())))
                .collect();
            if let Some(last) = batch.last().and_then(|r| r.position()) {
                starts.forget_before(last.byte());
            }
            lines
        };
        read_so_far += len as u64;
        Ok((len, record_lines, done))
    };
    let convert_batch = |rows: &mut Rows,
                         sink: &mut RejectSink,
                         batch: &[csv::ByteRecord],
                         record_lines: &[u64]|
     -> Result<()> {
        let convert_record = |k: usize, local: &mut Rows| -> Option<PendingReject> {
            let record = &batch[k];
            let line = record_lines[k];
            let joined = || {
                record
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect::<Vec<_>>()
                    .join(&delimiter)
            };
            if record.len() != names.len() {
                let reject = (
                    "(row)".to_string(),
                    RejectReason::WrongFieldCount,
                    format!("{} fields, the header has {}", record.len(), names.len()),
                    format!("{} fields", names.len()),
                );
                return Some(PendingReject {
                    line,
                    reject,
                    value: joined(),
                    record: joined(),
                });
            }
            let cell = |i: usize| -> Cell {
                let bytes = &record[i];
                match std::str::from_utf8(bytes) {
                    Ok(s) if trim(s).is_empty() => Cell::Null,
                    Ok(s) => Cell::Text(s),
                    Err(_) => Cell::Invalid(bytes),
                }
            };
            let opt_cell = |i: Option<usize>| i.map(cell).unwrap_or(Cell::Null);
            let (amount, unit_price) = match m.amount {
                AmountSource::Column(i) => (cell(i), None),
                AmountSource::Product {
                    quantity,
                    unit_price,
                } => (cell(quantity), Some(cell(unit_price))),
            };
            let cells = RowCells {
                customer: cell(m.customer),
                time: cell(m.time),
                amount,
                unit_price,
                order: opt_cell(m.order),
                cost: opt_cell(m.cost),
                category: opt_cell(m.category),
            };
            local.push(&cells, &m).err().map(|reject| PendingReject {
                line,
                value: cell_for(&cells, &m, &reject.0).shown(),
                reject,
                record: joined(),
            })
        };
        convert(
            rows,
            sink,
            &file,
            "line",
            batch.len(),
            convert_record,
            |_| {},
        )
    };
    let mut batch: Vec<csv::ByteRecord> = Vec::new();
    if rayon::current_num_threads() <= 1 {
        loop {
            let (len, lines, done) = read_batch(&mut batch)?;
            convert_batch(rows, sink, &batch[..len], &lines)?;
            if done {
                return Ok(());
            }
        }
    }
    let (mut len, mut lines, mut done) = read_batch(&mut batch)?;
    let mut next: Vec<csv::ByteRecord> = Vec::new();
    loop {
        let (mut converted, mut read) = (None, None);
        // The conversion is a task of the current pool; this thread reads meanwhile.
        rayon::in_place_scope(|scope| {
            let (rows, sink, records) = (&mut *rows, &mut *sink, &batch[..len]);
            let (convert_batch, lines, converted) = (&convert_batch, &lines, &mut converted);
            scope.spawn(move |_| *converted = Some(convert_batch(rows, sink, records, lines)));
            if !done {
                read = Some(read_batch(&mut next));
            }
        });
        converted.expect("the scope waits for its task")?;
        match read {
            None => return Ok(()),
            Some(read) => (len, lines, done) = read?,
        }
        std::mem::swap(&mut batch, &mut next);
    }
}

/// Where physical lines start in the bytes read so far. The csv crate's own line count
/// misses blank lines and lone-CR line ends, so records get their line from their byte
/// offset instead.
#[derive(Default)]
struct LineStarts {
    /// Offsets where a line starts (after `\n` or a lone `\r`; at the LF of `\r\n`),
    /// ascending, each with whether the line is blank (the csv crate skips blank lines
    /// and starts the next record at the first of them).
    starts: std::collections::VecDeque<(u64, bool)>,
    /// Line starts already forgotten.
    forgotten: u64,
    /// Where the quoted field still open at the end of the bytes so far began.
    open_quote: Option<u64>,
}

impl LineStarts {
    /// The 1-based line holding byte `offset`.
    fn line_of(&self, offset: u64) -> u64 {
        let mut k = self.starts.partition_point(|&(s, _)| s <= offset);
        while k >= 1 && k < self.starts.len() && self.starts[k - 1].1 {
            k += 1;
        }
        1 + self.forgotten + k as u64
    }

    /// Drops line starts at or before `offset`: later records start after it.
    fn forget_before(&mut self, offset: u64) {
        while self.starts.front().is_some_and(|&(s, _)| s <= offset) {
            self.starts.pop_front();
            self.forgotten += 1;
        }
    }
}

/// Where the bytes stand in CSV terms, to notice a quote that is never closed (the csv
/// crate would silently read the rest of the file as one field).
#[derive(Clone, Copy, PartialEq, Eq)]
enum QuoteState {
    FieldStart,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

/// A reader that records where lines start as the bytes go through it.
struct LineIndex<R> {
    inner: R,
    offset: u64,
    after_cr: bool,
    delimiter: u8,
    quote: u8,
    state: QuoteState,
    quote_start: u64,
    /// Where the current line's content begins (to tell blank lines).
    content_start: u64,
    starts: std::rc::Rc<std::cell::RefCell<LineStarts>>,
}

impl<R> LineIndex<R> {
    fn new(inner: R, delimiter: u8, quote: u8) -> Self {
        LineIndex {
            inner,
            offset: 0,
            after_cr: false,
            delimiter,
            quote,
            state: QuoteState::FieldStart,
            quote_start: 0,
            content_start: 0,
            starts: Default::default(),
        }
    }
}

impl<R: std::io::Read> std::io::Read for LineIndex<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut starts = self.starts.borrow_mut();
        for (i, &b) in buf[..n].iter().enumerate() {
            let at = self.offset + i as u64;
            match b {
                b'\n' if self.after_cr => {
                    // CRLF: the csv crate starts the next record at the LF, so the line
                    // is taken to start there; its content starts after the LF.
                    if let Some(last) = starts.starts.back_mut() {
                        last.0 = at;
                    }
                    self.content_start = at + 1;
                }
                b'\n' | b'\r' => {
                    if at == self.content_start
                        && let Some(last) = starts.starts.back_mut()
                    {
                        last.1 = true;
                    }
                    starts.starts.push_back((at + 1, false));
                    self.content_start = at + 1;
                }
                _ => {}
            }
            self.after_cr = b == b'\r';
            let end_of_field = b == self.delimiter || b == b'\n' || b == b'\r';
            self.state = match self.state {
                QuoteState::FieldStart | QuoteState::Unquoted if end_of_field => {
                    QuoteState::FieldStart
                }
                QuoteState::FieldStart if b == self.quote => {
                    self.quote_start = at;
                    QuoteState::Quoted
                }
                QuoteState::FieldStart | QuoteState::Unquoted => QuoteState::Unquoted,
                QuoteState::Quoted if b == self.quote => QuoteState::QuoteInQuoted,
                QuoteState::Quoted => QuoteState::Quoted,
                QuoteState::QuoteInQuoted if b == self.quote => QuoteState::Quoted,
                QuoteState::QuoteInQuoted if end_of_field => QuoteState::FieldStart,
                QuoteState::QuoteInQuoted => QuoteState::Unquoted,
            };
            starts.open_quote = (self.state == QuoteState::Quoted).then_some(self.quote_start);
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// Records read before converting them in parallel.
const CSV_BATCH: usize = 1 << 17;
/// Rows one worker converts at a time.
const CHUNK_ROWS: usize = 1 << 14;

/// A rejected row waiting for the bad-row policy.
struct PendingReject {
    line: u64,
    reject: Reject,
    value: String,
    record: String,
}

/// Converts rows `0..n` in parallel chunks, each into its own `Rows`, then merges the
/// chunks and hands their rejections to the policy in row order, so the result is the
/// same as converting sequentially. `converted` hears how many rows are done after each
/// group of chunks.
fn convert<F>(
    rows: &mut Rows,
    sink: &mut RejectSink,
    file: &str,
    place: &'static str,
    n: usize,
    row: F,
    mut converted: impl FnMut(usize),
) -> Result<()>
where
    F: Fn(usize, &mut Rows) -> Option<PendingReject> + Sync,
{
    use rayon::prelude::*;
    let n_chunks = n.div_ceil(CHUNK_ROWS);
    // Chunks are converted a group at a time so the extra memory stays bounded.
    let group = 4 * rayon::current_num_threads().max(1);
    for first in (0..n_chunks).step_by(group) {
        let chunks: Vec<(Rows, Vec<PendingReject>)> = (first..n_chunks.min(first + group))
            .into_par_iter()
            .map(|k| {
                let mut local = rows.empty_like();
                let mut rejects = Vec::new();
                for i in k * CHUNK_ROWS..n.min((k + 1) * CHUNK_ROWS) {
                    if let Some(r) = row(i, &mut local) {
                        rejects.push(r);
                    }
                }
                (local, rejects)
            })
            .collect();
        for (local, rejects) in chunks {
            for r in rejects {
                let loc = Loc {
                    file,
                    place,
                    line: r.line,
                };
                sink.reject(&loc, r.reject, r.value, r.record)?;
            }
            sink.used_n(local.day.len() as u64);
            rows.absorb(local);
        }
        converted(n.min((first + group) * CHUNK_ROWS));
    }
    Ok(())
}

fn check_duplicate_names(file: &str, names: &[String]) -> Result<()> {
    for (i, n) in names.iter().enumerate() {
        if let Some(j) = names[..i].iter().position(|m| m == n) {
            return Err(Error::input(
                file,
                format!(
                    "duplicate column name '{n}' (columns {} and {})",
                    j + 1,
                    i + 1
                ),
            ));
        }
    }
    Ok(())
}

/// Value `i` of a one-chunk numeric column, `None` if null.
#[inline]
fn flat<T: PolarsNumericType>(c: &ChunkedArray<T>, i: usize) -> Option<T::Native> {
    let a = c.downcast_as_array();
    match a.validity() {
        Some(valid) if !valid.get_bit(i) => None,
        _ => Some(a.value(i)),
    }
}

/// How a Parquet/IPC column is read.
enum Typed {
    Text(StringChunked),
    Int(Int64Chunked),
    Float(Float64Chunked),
    Float32(Float32Chunked),
    Day(Int32Chunked),
    Datetime(Int64Chunked, TimeUnit),
}

impl Typed {
    /// `maxima` holds the largest values of unsigned columns over the whole file when the
    /// column is one batch of it.
    fn from_column(
        file: &str,
        col: &Column,
        role: Role,
        maxima: Option<&UnsignedMaxima>,
    ) -> Result<Typed> {
        let s = col.as_materialized_series().rechunk();
        let s = &s;
        let wrong = || {
            Error::input(
                file,
                format!(
                    "column '{}' ({}) has type {}, which cannot hold a {}",
                    col.name(),
                    role.describe(),
                    col.dtype(),
                    role.describe()
                ),
            )
        };
        let temporal = matches!(role, Role::Time);
        let numeric = matches!(
            role,
            Role::Amount | Role::Quantity | Role::UnitPrice | Role::Cost
        );
        Ok(match col.dtype() {
            DataType::String => Typed::Text(s.str()?.clone()),
            DataType::Categorical(..) | DataType::Enum(..) => {
                Typed::Text(s.cast(&DataType::String)?.str()?.rechunk().into_owned())
            }
            DataType::Date if temporal => Typed::Day(s.date()?.physical().clone()),
            DataType::Datetime(unit, _) if temporal => {
                Typed::Datetime(s.datetime()?.physical().clone(), *unit)
            }
            DataType::Float64 if numeric => Typed::Float(s.f64()?.clone()),
            DataType::Float32 if numeric => Typed::Float32(s.f32()?.clone()),
            dt if dt.is_integer() && !temporal => {
                if matches!(dt, DataType::UInt64) {
                    let whole = maxima.and_then(|m| m.get(col.name().as_str()));
                    let max = match whole {
                        Some(&max) => max,
                        None => s.u64()?.max().unwrap_or(0),
                    };
                    if max > i64::MAX as u64 {
                        return Err(Error::input(
                            file,
                            format!(
                                "column '{}' holds values beyond the 64-bit signed range",
                                col.name()
                            ),
                        ));
                    }
                }
                Typed::Int(s.cast(&DataType::Int64)?.i64()?.rechunk().into_owned())
            }
            _ => return Err(wrong()),
        })
    }

    /// The cell of row `i`. Columns hold one chunk (the batch was rechunked), so a cell
    /// is read straight from its array.
    fn cell(&self, i: usize) -> Cell<'_> {
        match self {
            Typed::Text(c) => c.downcast_as_array().get(i).map(Cell::Text),
            Typed::Int(c) => flat(c, i).map(Cell::Int),
            Typed::Float(c) => flat(c, i).map(Cell::Float),
            Typed::Float32(c) => flat(c, i).map(Cell::Float32),
            Typed::Day(c) => flat(c, i).map(Cell::Day),
            Typed::Datetime(c, unit) => flat(c, i).map(|v| {
                Cell::Micros(match unit {
                    TimeUnit::Nanoseconds => v.div_euclid(1000),
                    TimeUnit::Microseconds => v,
                    TimeUnit::Milliseconds => v.saturating_mul(1000),
                })
            }),
        }
        .unwrap_or(Cell::Null)
    }

    fn is_int(&self) -> bool {
        matches!(self, Typed::Int(_))
    }
}

/// Runs a polars read of `path`, turning its errors and panics into bad-input errors.
///
/// polars panics on some corrupt files and on column types this build lacks (decimal);
/// those are bad input, not crashes, so the panic is caught and reported as such.
fn guarded_read<T>(path: &Path, read: impl FnOnce() -> PolarsResult<T>) -> Result<T> {
    let file_name = path.display().to_string();
    let format = if is_ipc(path) { "Arrow IPC" } else { "Parquet" };
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(read));
    std::panic::set_hook(hook);
    match result {
        Ok(result) => {
            result.map_err(|e| Error::input(file_name, format!("cannot read as {format}: {e}")))
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unreadable");
            let hint = if what.contains("decimal") {
                "a DECIMAL column, which this build does not read: store amounts as double or text"
                    .to_string()
            } else {
                format!("the file is corrupt ({what})")
            };
            Err(Error::input(
                file_name,
                format!("cannot read as {format}: {hint}"),
            ))
        }
    }
}

fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::io(path, e))
}

/// The number of rows of a Parquet or Arrow IPC file, from its metadata (no column data
/// is read).
pub fn columnar_rows(path: impl AsRef<Path>) -> Result<u64> {
    let path = path.as_ref();
    let file = open(path)?;
    let rows = match detect_format(path)? {
        Format::Parquet => guarded_read(path, || ParquetReader::new(file).num_rows())?,
        Format::Ipc => guarded_read(path, || {
            // An empty projection makes polars count the rows of each record batch
            // from its header instead of reading the batch.
            IpcReader::new(file)
                .with_projection(Some(Vec::new()))
                .finish()
                .map(|df| df.height())
        })?,
        Format::Csv { .. } => {
            return Err(Error::input(
                path.display().to_string(),
                "not a Parquet or Arrow IPC file",
            ));
        }
    };
    Ok(rows as u64)
}

/// Rows per batch of a Parquet/IPC file: the loader converts one batch at a time, so only
/// one batch of the decoded (string-heavy) frame exists at once.
const BATCH_ROWS: u64 = 1 << 20;

/// A Parquet/IPC file opened for loading: only the mapped columns, only the rows of
/// `opts.row_range`, read a batch of rows at a time.
struct ColumnarFile {
    source: ColumnarSource,
    /// The columns to read, by name.
    wanted: Vec<String>,
    /// File rows (from 0) to load.
    range: std::ops::Range<u64>,
}

enum ColumnarSource {
    /// Parquet files are read a batch at a time (slice pushdown), reusing the footer.
    Parquet {
        path: PathBuf,
        metadata: FileMetadataRef,
    },
    /// The IPC reader can only stop early, so the file's rows up to the end of the range
    /// are read at once, unconcatenated, and each batch is one slice of them.
    Ipc { df: DataFrame },
}

impl ColumnarFile {
    fn open(path: &Path, opts: &LoadOptions) -> Result<ColumnarFile> {
        let file_name = path.display().to_string();
        let ipc = is_ipc(path);
        let mut metadata = None;
        let schema = guarded_read(path, || {
            let file = File::open(path)?;
            if ipc {
                IpcReader::new(file).schema()
            } else {
                let mut reader = ParquetReader::new(file);
                let schema = reader.schema()?;
                metadata = Some(reader.get_metadata()?.clone());
                Ok(schema)
            }
        })?;
        let names: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
        // Resolving against every column names them all in a missing-column message.
        let wanted = Mapping::resolve(&file_name, &names, &opts.columns)?.used_names();
        let start = opts.row_range.as_ref().map_or(0, |r| r.start);
        let requested_end = opts.row_range.as_ref().map_or(u64::MAX, |r| r.end);
        let (source, rows) = match metadata {
            Some(metadata) => {
                let rows = metadata.num_rows as u64;
                let path = path.to_path_buf();
                (ColumnarSource::Parquet { path, metadata }, rows)
            }
            None => {
                let end = opts.row_range.as_ref().map(|r| r.end as usize);
                let df = guarded_read(path, || {
                    IpcReader::new(File::open(path)?)
                        .with_columns(Some(wanted.clone()))
                        .with_n_rows(end)
                        .set_rechunk(false)
                        .finish()
                })?;
                let rows = df.height() as u64;
                (ColumnarSource::Ipc { df }, rows)
            }
        };
        let end = requested_end.min(rows);
        Ok(ColumnarFile {
            source,
            wanted,
            range: start.min(end)..end,
        })
    }

    /// The row ranges read one at a time: whole Parquet row groups gathered up to about
    /// `batch_rows` rows (a larger row group is cut into pieces), or slices of
    /// `batch_rows` IPC rows. Always at least one range, so an empty file is still read.
    fn batches(&self, batch_rows: u64) -> Vec<std::ops::Range<u64>> {
        let batch_rows = batch_rows.max(1);
        let mut ends: Vec<u64> = Vec::new();
        if let ColumnarSource::Parquet { metadata, .. } = &self.source {
            let mut group_start = 0u64;
            for group in &metadata.row_groups {
                let group_end = group_start + group.num_rows() as u64;
                let (lo, hi) = (
                    group_start.max(self.range.start),
                    group_end.min(self.range.end),
                );
                if lo < hi {
                    let pieces = (hi - lo).div_ceil(batch_rows);
                    ends.extend((1..pieces).map(|k| lo + (hi - lo) * k / pieces));
                    ends.push(hi);
                }
                group_start = group_end;
            }
        } else {
            ends.extend(
                (self.range.start..self.range.end)
                    .step_by(batch_rows as usize)
                    .skip(1),
            );
            ends.push(self.range.end);
        }
        // Neighbouring pieces are joined while the batch stays within `batch_rows`.
        let mut batches = Vec::new();
        let mut start = self.range.start;
        for (k, &end) in ends.iter().enumerate() {
            let last = k + 1 == ends.len();
            if last || ends[k + 1] - start > batch_rows {
                batches.push(start..end);
                start = end;
            }
        }
        if batches.is_empty() {
            batches.push(self.range.clone());
        }
        batches
    }

    /// The frame of one batch, each column in one chunk.
    fn read(&self, rows: &std::ops::Range<u64>) -> Result<DataFrame> {
        let len = (rows.end - rows.start) as usize;
        let mut df = match &self.source {
            ColumnarSource::Parquet { path, metadata } => guarded_read(path, || {
                let (groups, offset) = row_groups_of(metadata, rows);
                let mut reader = ParquetReader::new(File::open(path)?);
                reader.set_metadata(groups);
                reader
                    .with_columns(Some(self.wanted.clone()))
                    .with_slice(Some((offset, len)))
                    // A batch is about one row group: decode its columns side by side.
                    .read_parallel(ParallelStrategy::Columns)
                    .finish()
            })?,
            ColumnarSource::Ipc { df } => df.slice(rows.start.min(i64::MAX as u64) as i64, len),
        };
        df.rechunk_mut();
        Ok(df)
    }
}

/// The footer of a Parquet file cut down to the row groups that hold `rows`, and where
/// `rows` start in them.
///
/// Given the whole footer and a slice, polars' reader still goes through every row group
/// before the slice (decompressing its pages to keep none of them), so reading a file a
/// batch at a time would cost time in the square of its length: 32 s of a 69 s load of
/// 100M lines.
fn row_groups_of(
    metadata: &FileMetadataRef,
    rows: &std::ops::Range<u64>,
) -> (FileMetadataRef, usize) {
    let mut cut = (**metadata).clone();
    let mut start = 0u64;
    let mut first_start = None;
    cut.row_groups.clear();
    for group in &metadata.row_groups {
        let end = start + group.num_rows() as u64;
        if start < rows.end && rows.start < end {
            first_start.get_or_insert(start);
            cut.row_groups.push(group.clone());
        }
        start = end;
    }
    cut.num_rows = cut.row_groups.iter().map(|g| g.num_rows()).sum();
    let offset = rows.start - first_start.unwrap_or(rows.start);
    (Arc::new(cut), offset as usize)
}

/// Whether `path` names a Parquet file (by its extension).
pub fn is_parquet(path: &Path) -> bool {
    matches!(detect_format(path), Ok(Format::Parquet))
}

fn is_ipc(path: &Path) -> bool {
    matches!(detect_format(path), Ok(Format::Ipc))
}

/// The largest value of each unsigned 64-bit column, by name, over a file's whole range.
type UnsignedMaxima = BTreeMap<String, u64>;

impl ColumnarFile {
    /// The maxima of the columns of `first` (a batch) that hold unsigned 64-bit integers,
    /// read over the whole range, so that a value out of the signed range is reported
    /// before any row is converted, as when the file is read in one batch.
    fn unsigned_maxima(&self, first: &DataFrame, time: &str) -> Result<UnsignedMaxima> {
        let names: Vec<String> = first
            .columns()
            .iter()
            .filter(|c| matches!(c.dtype(), DataType::UInt64) && c.name().as_str() != time)
            .map(|c| c.name().to_string())
            .collect();
        if names.is_empty() {
            return Ok(UnsignedMaxima::new());
        }
        let len = (self.range.end - self.range.start) as usize;
        let df = match &self.source {
            ColumnarSource::Parquet { path, metadata } => guarded_read(path, || {
                let (groups, offset) = row_groups_of(metadata, &self.range);
                let mut reader = ParquetReader::new(File::open(path)?);
                reader.set_metadata(groups);
                reader
                    .with_columns(Some(names.clone()))
                    .with_slice(Some((offset, len)))
                    .finish()
            })?,
            ColumnarSource::Ipc { df } => df
                .select(names.iter().map(|n| n.as_str()))?
                .slice(self.range.start.min(i64::MAX as u64) as i64, len),
        };
        let mut maxima = UnsignedMaxima::new();
        for c in df.columns() {
            let max = c.as_materialized_series().u64()?.max().unwrap_or(0);
            maxima.insert(c.name().to_string(), max);
        }
        Ok(maxima)
    }
}

/// Loads the rows of a Parquet/IPC file a batch at a time.
///
/// Every batch is converted like a file of its own, except that rows keep their numbers
/// in the file and the file's bytes are credited as its rows are converted. Lines stay
/// in file order, so the grouped result does not depend on where batches are cut.
fn load_columnar(
    path: &Path,
    opts: &LoadOptions,
    rows: &mut Rows,
    sink: &mut RejectSink,
    progress: &Tracker,
    config: LoadConfig,
) -> Result<()> {
    let file = path.display().to_string();
    let source = ColumnarFile::open(path, opts)?;
    let batches = source.batches(config.batch_rows);
    let n = source.range.end - source.range.start;
    let (size, rows_before) = (progress.size(), sink.report.rows_read);
    let credit = |done: u64| (u128::from(size) * u128::from(done) / u128::from(n.max(1))) as u64;
    rows.reserve(n as usize);
    let mut maxima = None;
    // With more than one thread, the next batch is decoded (on polars' threads) while
    // this one is converted (on rayon's), so the serial steps of either leave no core
    // idle; at most two batches are held. (With one thread, one thing at a time.) A
    // failing batch stops the load before the next one is looked at, as when reading
    // one batch at a time.
    let ahead = rayon::current_num_threads() > 1;
    std::thread::scope(|scope| {
        let (source, batches) = (&source, &batches);
        let read = |k: usize| scope.spawn(move || source.read(&batches[k]));
        let mut next = ahead.then(|| read(0));
        for (k, batch) in batches.iter().enumerate() {
            let df = match next.take().map(|h| h.join()) {
                Some(Ok(df)) => df?,
                Some(Err(panic)) => std::panic::resume_unwind(panic),
                None => source.read(batch)?,
            };
            if ahead && k + 1 < batches.len() {
                next = Some(read(k + 1));
            }
            let names: Vec<String> = df
                .get_column_names()
                .iter()
                .map(|n| n.to_string())
                .collect();
            let m = Mapping::resolve(&file, &names, &opts.columns)?;
            if k == 0 && batches.len() > 1 {
                maxima = Some(source.unsigned_maxima(&df, &m.names[m.time])?);
            }
            let before = batch.start - source.range.start;
            let frame = BatchFrame {
                file: &file,
                df: &df,
                mapping: &m,
                first_row: batch.start,
                maxima: maxima.as_ref(),
            };
            frame.convert(rows, sink, config.strategy, |done| {
                let done = before + done as u64;
                progress.report(credit(done), rows_before + done);
            })?;
        }
        Ok(())
    })
}

/// How the loader reads Parquet/IPC files. Only tests change it.
#[derive(Debug, Clone, Copy)]
struct LoadConfig {
    strategy: Strategy,
    batch_rows: u64,
    /// Hand the decoded batches' pages back before grouping (see
    /// [`release_free_memory`]); a streamed batch leaves that to the stream.
    release_memory: bool,
}

impl Default for LoadConfig {
    fn default() -> LoadConfig {
        LoadConfig {
            strategy: Strategy::Columnar,
            batch_rows: BATCH_ROWS,
            release_memory: true,
        }
    }
}

/// One batch of a Parquet/IPC file, read into a frame.
struct BatchFrame<'a> {
    file: &'a str,
    df: &'a DataFrame,
    mapping: &'a Mapping,
    /// File row number (from 0) of the frame's first row.
    first_row: u64,
    /// Set when the file is read in several batches.
    maxima: Option<&'a UnsignedMaxima>,
}

impl BatchFrame<'_> {
    fn convert(
        &self,
        rows: &mut Rows,
        sink: &mut RejectSink,
        strategy: Strategy,
        converted: impl FnMut(usize),
    ) -> Result<()> {
        let (file, m, first_row) = (self.file, self.mapping, self.first_row);
        let typed = |i: usize, role: Role| {
            Typed::from_column(file, &self.df.columns()[i], role, self.maxima)
        };
        let customer = typed(m.customer, Role::Customer)?;
        let kind = match rows.declared {
            IdType::Int => IdKind::Int,
            IdType::Text => IdKind::Text,
            IdType::Auto if customer.is_int() => IdKind::Int,
            IdType::Auto => IdKind::Text,
        };
        rows.check_id_kind(kind, file)?;
        let time = typed(m.time, Role::Time)?;
        let (amount, unit_price) = match m.amount {
            AmountSource::Column(i) => (typed(i, Role::Amount)?, None),
            AmountSource::Product {
                quantity,
                unit_price,
            } => (
                typed(quantity, Role::Quantity)?,
                Some(typed(unit_price, Role::UnitPrice)?),
            ),
        };
        let optional = |i: Option<usize>, role| i.map(|i| typed(i, role)).transpose();
        let order = optional(m.order, Role::Order)?;
        let cost = optional(m.cost, Role::Cost)?;
        let category = optional(m.category, Role::Category)?;
        fn opt_cell(t: &Option<Typed>, i: usize) -> Cell<'_> {
            t.as_ref().map(|t| t.cell(i)).unwrap_or(Cell::Null)
        }
        let row_cells = |i: usize| RowCells {
            customer: customer.cell(i),
            time: time.cell(i),
            amount: amount.cell(i),
            unit_price: unit_price.as_ref().map(|t| t.cell(i)),
            order: opt_cell(&order, i),
            cost: opt_cell(&cost, i),
            category: opt_cell(&category, i),
        };
        let line = |i: usize| first_row + i as u64 + 1;
        let n = self.df.height();
        if strategy == Strategy::RowWise {
            let convert_row = |i: usize, local: &mut Rows| -> Option<PendingReject> {
                let cells = row_cells(i);
                let reject = local.push(&cells, m).err()?;
                Some(PendingReject::new(&cells, m, reject, line(i)))
            };
            return convert(rows, sink, file, "row", n, convert_row, converted);
        }
        let fast = FastColumns::new(
            &customer,
            kind,
            &time,
            &amount,
            unit_price.is_some(),
            cost.as_ref(),
            order.as_ref(),
            category.as_ref(),
        );
        let columns = ColumnarRows {
            n,
            file,
            mapping: m,
            line,
            cells: row_cells,
            customer: |i| customer.cell(i),
            fast,
        };
        columns.convert(rows, sink, converted)
    }
}

/// How Parquet/IPC rows are converted: column at a time (the default) or row by row
/// (the reference the tests compare against).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    Columnar,
    RowWise,
}

/// Marks a row without a customer partition: it was rejected.
const REJECTED: u8 = u8::MAX;

/// The rows of a Parquet/IPC frame, converted column at a time.
///
/// Each row is validated by [`Rows::values`], exactly as [`Rows::push`] does, in
/// parallel chunks writing straight into whole-file columns. Customer ids are then
/// registered once per distinct id: rows are split into partitions by a hash of their
/// id and each partition is interned on its own thread, so no id is hashed into more
/// than one table and no chunk-local tables are merged. Rejections reach the bad-row
/// policy in row order and accepted rows keep their order, so the result equals the
/// row-by-row conversion.
struct ColumnarRows<'a, 'c, L, R, C> {
    n: usize,
    file: &'a str,
    mapping: &'a Mapping,
    /// Row number (from 1) in the file.
    line: L,
    cells: R,
    customer: C,
    /// The columns' values as plain slices, when every column has a type the fast loop
    /// reads and no nulls.
    fast: Option<FastColumns<'c>>,
}

/// A chunk's rejections and its categories in the order of their chunk-local codes.
struct ChunkOutcome<'c> {
    rejects: Vec<PendingReject>,
    categories: Vec<std::borrow::Cow<'c, str>>,
}

impl<'c, L, R, C> ColumnarRows<'_, 'c, L, R, C>
where
    L: Fn(usize) -> u64 + Sync,
    R: Fn(usize) -> RowCells<'c> + Sync,
    C: Fn(usize) -> Cell<'c> + Sync,
{
    fn convert(
        &self,
        rows: &mut Rows,
        sink: &mut RejectSink,
        mut converted: impl FnMut(usize),
    ) -> Result<()> {
        use rayon::prelude::*;
        let n = self.n;
        let threads = rayon::current_num_threads().max(1);
        // A row's partition is its customer's shard in the id table.
        let parts = rows.text_ids.shards.len();
        // The rows are converted straight into the line columns, which are taken out of
        // `rows` meanwhile; rejected rows are squeezed out at the end.
        let mut columns = rows.open_batch(n);
        let base = columns.day.len() - n;
        let (day, amount, profit, order, category) = (
            &mut columns.day[base..],
            &mut columns.amount[base..],
            &mut columns.profit[base..],
            &mut columns.order[base..],
            &mut columns.category[base..],
        );
        let mut part = vec![REJECTED; n];
        // Chunks are converted a group at a time so rejections reach the policy (and
        // progress is told) as the file goes, as in `convert`.
        let group = 4 * threads * CHUNK_ROWS;
        let mut lo = 0;
        let mut convert_groups = || -> Result<()> {
            while lo < n {
                let hi = n.min(lo + group);
                let outcomes: Vec<ChunkOutcome> = (
                    day[lo..hi].par_chunks_mut(CHUNK_ROWS),
                    amount[lo..hi].par_chunks_mut(CHUNK_ROWS),
                    profit[lo..hi].par_chunks_mut(CHUNK_ROWS),
                    order[lo..hi].par_chunks_mut(CHUNK_ROWS),
                    category[lo..hi].par_chunks_mut(CHUNK_ROWS),
                    part[lo..hi].par_chunks_mut(CHUNK_ROWS),
                )
                    .into_par_iter()
                    .enumerate()
                    .map(|(k, (day, amount, profit, order, category, part))| {
                        let first = lo + k * CHUNK_ROWS;
                        let mut outcome = ChunkOutcome {
                            rejects: Vec::new(),
                            categories: Vec::new(),
                        };
                        let mut local: PlHashMap<std::borrow::Cow<'c, str>, u32> =
                            PlHashMap::default();
                        if let Some(fast) = &self.fast {
                            let out = FastOut {
                                day: &mut *day,
                                amount: &mut *amount,
                                profit: &mut *profit,
                                order: &mut *order,
                                category: &mut *category,
                                part: &mut *part,
                            };
                            let categories = &mut outcome.categories;
                            if fast.convert(rows, first, out, &mut local, categories, parts) {
                                return outcome;
                            }
                            // A value the fast loop does not settle: the chunk is converted
                            // again from the start by the checks every row goes through.
                            part.fill(REJECTED);
                            category.fill(NO_CATEGORY);
                            local.clear();
                            outcome.categories.clear();
                        }
                        for j in 0..day.len() {
                            let i = first + j;
                            let cells = (self.cells)(i);
                            let v = match rows.values(&cells, self.mapping) {
                                Ok(v) => v,
                                Err(reject) => {
                                    outcome.rejects.push(PendingReject::new(
                                        &cells,
                                        self.mapping,
                                        reject,
                                        (self.line)(i),
                                    ));
                                    continue;
                                }
                            };
                            day[j] = v.day;
                            amount[j] = v.amount;
                            profit[j] = v.profit;
                            order[j] = v.order;
                            if let Some(key) = v.category {
                                let next = local.len() as u32;
                                category[j] = *local.entry(key).or_insert_with_key(|key| {
                                    outcome.categories.push(key.clone());
                                    next
                                });
                            }
                            let hash = match &v.customer {
                                CustomerKey::Int(id) => shard_hash(id),
                                CustomerKey::Text(id) => shard_hash(*id),
                                CustomerKey::Owned(id) => shard_hash(id.as_str()),
                            };
                            part[j] = shard_of(hash, parts) as u8;
                        }
                        outcome
                    })
                    .collect();
                for (k, outcome) in outcomes.into_iter().enumerate() {
                    for r in outcome.rejects {
                        let loc = Loc {
                            file: self.file,
                            place: "row",
                            line: r.line,
                        };
                        sink.reject(&loc, r.reject, r.value, r.record)?;
                    }
                    let codes: Vec<u32> = outcome
                        .categories
                        .iter()
                        .map(|key| intern(&mut rows.categories, key))
                        .collect();
                    let first = lo + k * CHUNK_ROWS;
                    let chunk = first..n.min(first + CHUNK_ROWS);
                    for (c, &p) in category[chunk.clone()].iter_mut().zip(&part[chunk]) {
                        if p != REJECTED && *c != NO_CATEGORY {
                            *c = codes[*c as usize];
                        }
                    }
                }
                let accepted = part[lo..hi].iter().filter(|&&p| p != REJECTED).count() as u64;
                sink.used_n(accepted);
                lo = hi;
                converted(hi);
            }
            Ok(())
        };
        if let Err(e) = convert_groups() {
            part.fill(REJECTED);
            rows.close_batch(columns, &part);
            return Err(e);
        }
        self.customer_codes(rows, &part, &mut columns.customer);
        rows.close_batch(columns, &part);
        Ok(())
    }

    /// Appends to `codes` the table code of every accepted row's customer (registering
    /// new customers). `part` holds each row's shard.
    fn customer_codes(&self, rows: &mut Rows, part: &[u8], codes: &mut Vec<u32>) {
        let col = self.mapping.names[self.mapping.customer].as_str();
        // The tables are taken out while the rows' settings check the ids.
        if rows.id_kind.as_ref().map(|k| k.0) == Some(IdKind::Int) {
            let mut table = std::mem::replace(&mut rows.int_ids, IdTable::new(1));
            let key = |i| match rows.customer_key((self.customer)(i), col) {
                Ok(CustomerKey::Int(id)) => id,
                _ => unreachable!("an accepted row has an integer id"),
            };
            table.register_partitioned::<i64, _>(part, key, codes);
            rows.int_ids = table;
        } else {
            let mut table = std::mem::replace(&mut rows.text_ids, IdTable::new(1));
            let key = |i| match rows.customer_key((self.customer)(i), col) {
                Ok(CustomerKey::Text(id)) => std::borrow::Cow::Borrowed(id),
                Ok(CustomerKey::Owned(id)) => std::borrow::Cow::Owned(id),
                _ => unreachable!("an accepted row has a text id"),
            };
            table.register_partitioned::<str, _>(part, key, codes);
            rows.text_ids = table;
        }
    }
}

/// polars' array of text values (views into buffers).
type TextArray = <StringType as PolarsDataType>::Array;

/// The columns of a batch as plain arrays, for the loop that converts a chunk of rows
/// without going through [`Cell`]s: built only when no column has a null.
struct FastColumns<'c> {
    customer: FastId<'c>,
    time: FastTime<'c>,
    amount: &'c [f64],
    cost: Option<&'c [f64]>,
    order: Option<&'c TextArray>,
    category: Option<&'c TextArray>,
}

enum FastId<'c> {
    Text(&'c TextArray),
    Int(&'c [i64]),
}

enum FastTime<'c> {
    Day(&'c [i32]),
    Datetime(&'c [i64], TimeUnit),
}

/// The output columns of one chunk.
struct FastOut<'o> {
    day: &'o mut [i32],
    amount: &'o mut [i64],
    profit: &'o mut [i64],
    order: &'o mut [u64],
    category: &'o mut [u32],
    part: &'o mut [u8],
}

impl<'c> FastColumns<'c> {
    /// The batch's columns as arrays, or `None` when a column has a type the fast loop
    /// does not read, an amount made of quantity × unit price, or any null.
    fn new(
        customer: &'c Typed,
        kind: IdKind,
        time: &'c Typed,
        amount: &'c Typed,
        product: bool,
        cost: Option<&'c Typed>,
        order: Option<&'c Typed>,
        category: Option<&'c Typed>,
    ) -> Option<FastColumns<'c>> {
        fn floats(t: &Typed) -> Option<&[f64]> {
            match t {
                Typed::Float(c) if c.null_count() == 0 => {
                    Some(c.downcast_as_array().values().as_slice())
                }
                _ => None,
            }
        }
        fn texts(t: &Typed) -> Option<&TextArray> {
            match t {
                Typed::Text(c) if c.null_count() == 0 => Some(c.downcast_as_array()),
                _ => None,
            }
        }
        if product {
            return None;
        }
        let customer = match (kind, customer) {
            (IdKind::Text, t @ Typed::Text(_)) => FastId::Text(texts(t)?),
            (IdKind::Int, Typed::Int(c)) if c.null_count() == 0 => {
                FastId::Int(c.downcast_as_array().values().as_slice())
            }
            _ => return None,
        };
        let time = match time {
            Typed::Day(c) if c.null_count() == 0 => {
                FastTime::Day(c.downcast_as_array().values().as_slice())
            }
            Typed::Datetime(c, unit) if c.null_count() == 0 => {
                FastTime::Datetime(c.downcast_as_array().values().as_slice(), *unit)
            }
            _ => return None,
        };
        Some(FastColumns {
            customer,
            time,
            amount: floats(amount)?,
            cost: match cost {
                Some(t) => Some(floats(t)?),
                None => None,
            },
            order: match order {
                Some(t) => Some(texts(t)?),
                None => None,
            },
            category: match category {
                Some(t) => Some(texts(t)?),
                None => None,
            },
        })
    }

    /// Converts rows `first..first + out.day.len()` as [`Rows::values`] does; false, with
    /// the outputs half written, as soon as a row needs more than this loop checks (a
    /// value to reject, a blank id, money that is not a plain float): the caller then
    /// converts the chunk row by row.
    #[allow(clippy::too_many_arguments)]
    fn convert(
        &self,
        rows: &Rows,
        first: usize,
        out: FastOut,
        local: &mut PlHashMap<std::borrow::Cow<'c, str>, u32>,
        categories: &mut Vec<std::borrow::Cow<'c, str>>,
        parts: usize,
    ) -> bool {
        let range = crate::time::MIN_DAY..=crate::time::MAX_DAY;
        let as_of = rows.as_of.unwrap_or(i32::MAX);
        for j in 0..out.day.len() {
            let i = first + j;
            let micros = match self.time {
                FastTime::Day(d) => i64::from(d[i]) * crate::time::MICROS_PER_DAY,
                FastTime::Datetime(v, unit) => match unit {
                    TimeUnit::Nanoseconds => v[i].div_euclid(1000),
                    TimeUnit::Microseconds => v[i],
                    TimeUnit::Milliseconds => v[i].saturating_mul(1000),
                },
            };
            let day = match self.time {
                FastTime::Day(d) => d[i],
                FastTime::Datetime(..) => LineTime::from_micros(micros).day,
            };
            if !range.contains(&day) || day > as_of {
                return false;
            }
            let Ok(amount) = money::f64_to_minor(self.amount[i], rows.decimals) else {
                return false;
            };
            let profit = match self.cost {
                None => rows.margin.apply(amount).ok(),
                Some(cost) => money::f64_to_minor(cost[i], rows.decimals)
                    .ok()
                    .and_then(|c| amount.checked_sub(c)),
            };
            let Some(profit) = profit else {
                return false;
            };
            let order = match self.order.map(|o| trim(o.value(i))) {
                Some(id) if !id.is_empty() => order_key(id),
                _ => TS_ORDER_BIT | (micros as u64 & !TS_ORDER_BIT),
            };
            if let Some(c) = self.category.map(|c| trim(c.value(i)))
                && !c.is_empty()
            {
                let next = local.len() as u32;
                out.category[j] = *local
                    .entry(std::borrow::Cow::Borrowed(c))
                    .or_insert_with_key(|key| {
                        categories.push(key.clone());
                        next
                    });
            }
            let hash = match self.customer {
                FastId::Text(ids) => {
                    let id = trim(ids.value(i));
                    if id.is_empty() {
                        return false;
                    }
                    shard_hash(id)
                }
                FastId::Int(ids) => shard_hash(&ids[i]),
            };
            out.day[j] = day;
            out.amount[j] = amount;
            out.profit[j] = profit;
            out.order[j] = order;
            out.part[j] = shard_of(hash, parts) as u8;
        }
        true
    }
}

/// The line columns of [`Rows`] while a batch is converted into them.
struct Columns {
    customer: Vec<u32>,
    day: Vec<i32>,
    amount: Vec<i64>,
    profit: Vec<i64>,
    order: Vec<u64>,
    category: Vec<u32>,
}

impl Rows {
    /// Room for `additional` more rows, so that appending a file batch by batch does not
    /// copy the columns as they grow.
    fn reserve(&mut self, additional: usize) {
        self.customer.reserve(additional);
        self.day.reserve(additional);
        self.amount.reserve(additional);
        self.profit.reserve(additional);
        self.order.reserve(additional);
        self.category.reserve(additional);
    }

    /// Takes the line columns out, all but `customer` grown by `n` rows of filler for a
    /// batch to be converted into; [`Rows::close_batch`] puts them back. The filler is
    /// written side by side: it is the first touch of the reserved pages.
    fn open_batch(&mut self, n: usize) -> Columns {
        fn grown<T: Copy + Send + Sync>(v: &mut Vec<T>, n: usize, filler: T) -> Vec<T> {
            use rayon::iter::ParallelExtend;
            let mut v = std::mem::take(v);
            v.par_extend(rayon::iter::repeat_n(filler, n));
            v
        }
        Columns {
            customer: std::mem::take(&mut self.customer),
            day: grown(&mut self.day, n, 0),
            amount: grown(&mut self.amount, n, 0),
            profit: grown(&mut self.profit, n, 0),
            order: grown(&mut self.order, n, 0),
            category: grown(&mut self.category, n, NO_CATEGORY),
        }
    }

    /// Puts back the columns of [`Rows::open_batch`], keeping of the batch's rows only
    /// the accepted ones (`part` below [`REJECTED`]), in order; `customer` already holds
    /// the accepted rows' customer codes.
    fn close_batch(&mut self, columns: Columns, part: &[u8]) {
        fn keep<T: Copy>(mut v: Vec<T>, part: &[u8]) -> Vec<T> {
            let base = v.len() - part.len();
            if part.contains(&REJECTED) {
                let mut to = base;
                for (i, &p) in part.iter().enumerate() {
                    if p != REJECTED {
                        v[to] = v[base + i];
                        to += 1;
                    }
                }
                v.truncate(to);
            }
            v
        }
        self.customer = columns.customer;
        self.day = keep(columns.day, part);
        self.amount = keep(columns.amount, part);
        self.profit = keep(columns.profit, part);
        self.order = keep(columns.order, part);
        self.category = keep(columns.category, part);
    }
}

impl PendingReject {
    /// A rejection of the Parquet/IPC row `cells`, numbered `line` from 1.
    fn new(cells: &RowCells, m: &Mapping, reject: Reject, line: u64) -> PendingReject {
        PendingReject {
            line,
            value: cell_for(cells, m, &reject.0).shown(),
            reject,
            record: [cells.customer, cells.time, cells.amount]
                .iter()
                .map(Cell::shown)
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Loads with an observer that records every event.
    fn load_watched(opts: &mut LoadOptions) -> (Loaded, Vec<LoadProgress>) {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        opts.progress = LoadObserver::new(move |p| sink.lock().unwrap().push(p));
        // One worker, so Parquet rows are converted in groups small enough to report
        // mid-file whatever the machine.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let loaded = pool.install(|| load(opts)).unwrap();
        let events = events.lock().unwrap().clone();
        (loaded, events)
    }

    /// Events start at zero, only grow, report mid-file, and end at every byte and row.
    fn check_events(events: &[LoadProgress], loaded: &Loaded, paths: &[&Path]) {
        let total: u64 = paths
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum();
        let first = events.first().expect("some events");
        assert_eq!((first.bytes, first.rows, first.file), (0, 0, 0));
        for w in events.windows(2) {
            assert!(w[0].bytes <= w[1].bytes, "{w:?}");
            assert!(w[0].rows <= w[1].rows, "{w:?}");
            assert!(w[0].file <= w[1].file, "{w:?}");
        }
        assert!(
            events
                .iter()
                .all(|e| e.total_bytes == total && e.files == paths.len() && e.bytes <= total),
            "{events:?}"
        );
        let last = events.last().unwrap();
        assert_eq!(last.bytes, total);
        assert_eq!(last.rows, loaded.report.rows_read);
        assert_eq!(last.file, paths.len() - 1);
        let mid = events
            .iter()
            .filter(|e| e.rows > 0 && e.rows < last.rows && e.bytes > 0 && e.bytes < total)
            .count();
        assert!(mid >= 2, "no progress between start and end: {events:?}");
    }

    fn synth_csv(dir: &Path, rows: u64) -> PathBuf {
        let path = dir.join("tx.csv");
        let params = crate::synth::SynthParams::for_rows(rows, 3);
        crate::synth::write_csv(&params, File::create(&path).unwrap()).unwrap();
        path
    }

    /// A CSV of `rows` lines over three batches, with a bad amount every 40,000 lines.
    fn csv_across_batches(dir: &Path, rows: usize) -> PathBuf {
        let path = dir.join("batches.csv");
        let mut text = String::from("customer_id,ts,amount,category\n");
        for i in 0..rows {
            let amount = if i % 40_000 == 7 {
                "x".to_string()
            } else {
                format!("{}.{:02}", i % 97, i % 100)
            };
            text.push_str(&format!(
                "c{},2024-01-{:02},{amount},k{}\n",
                i % 5_000,
                1 + i % 28,
                i % 7
            ));
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn csv_batches_read_beside_the_conversion_give_the_load_of_one_thread() {
        let dir = tempfile::tempdir().unwrap();
        let csv = csv_across_batches(dir.path(), 2 * CSV_BATCH + 500);
        let run = |threads: usize, policy: BadRowPolicy| {
            let mut opts = LoadOptions::new([csv.to_str().unwrap()]);
            opts.on_bad_rows = policy;
            opts.max_examples = 100;
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| load(&opts)).unwrap()
        };
        let one = run(1, BadRowPolicy::Skip);
        assert_eq!(one.report.rows_rejected, 7);
        for threads in [2, 3] {
            let many = run(threads, BadRowPolicy::Skip);
            assert_eq!(many.report, one.report, "{threads} threads");
            let (a, b) = (
                many.transactions.to_frame().unwrap(),
                one.transactions.to_frame().unwrap(),
            );
            assert!(a.equals_missing(&b), "{threads} threads");
            let quarantine = |threads| {
                let path = dir.path().join(format!("q{threads}.csv"));
                run(threads, BadRowPolicy::Quarantine(path.clone()));
                std::fs::read_to_string(path).unwrap()
            };
            assert_eq!(quarantine(threads), quarantine(1), "{threads} threads");
        }
    }

    #[test]
    fn a_csv_read_failure_after_a_bad_row_reports_the_bad_row_first() {
        // The first bad amount is on line 9 (data row 7); the file ends in a quote that
        // never closes, found while reading a later batch.
        let dir = tempfile::tempdir().unwrap();
        let csv = csv_across_batches(dir.path(), CSV_BATCH + 10);
        let mut text = std::fs::read_to_string(&csv).unwrap();
        text.push_str("c1,2024-01-01,\"5\n");
        std::fs::write(&csv, text).unwrap();
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let err = pool
                .install(|| load(&LoadOptions::new([csv.to_str().unwrap()])))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("line 9") && !err.contains("never closed"),
                "{threads}: {err}"
            );
        }
    }

    #[test]
    fn progress_covers_every_byte_and_row_of_csv_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let csv = synth_csv(dir.path(), 150_000);
        let gz = dir.path().join("tx2.csv.gz");
        let mut enc =
            flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        std::io::copy(&mut File::open(&csv).unwrap(), &mut enc).unwrap();
        enc.finish().unwrap();

        let mut opts = LoadOptions::new([csv.to_str().unwrap(), gz.to_str().unwrap()]);
        let (loaded, events) = load_watched(&mut opts);
        assert!(loaded.report.rows_read > 2 * PROGRESS_ROWS as u64);
        check_events(&events, &loaded, &[&csv, &gz]);
        // The gzip file reports its compressed bytes while it is read, not only at the end.
        let csv_size = std::fs::metadata(&csv).unwrap().len();
        let gz_size = std::fs::metadata(&gz).unwrap().len();
        assert!(
            events.iter().any(|e| e.file == 1
                && e.bytes > csv_size
                && e.bytes < csv_size + gz_size
                && e.rows > loaded.report.files[0].rows_read),
            "{events:?}"
        );
    }

    #[test]
    fn progress_covers_every_byte_and_row_of_parquet() {
        let dir = tempfile::tempdir().unwrap();
        let csv = synth_csv(dir.path(), 150_000);
        let loaded = load(&LoadOptions::new([csv.to_str().unwrap()])).unwrap();
        let parquet = dir.path().join("tx.parquet");
        crate::output::write_frame(&mut loaded.transactions.to_frame().unwrap(), &parquet).unwrap();

        let mut opts = LoadOptions::new([parquet.to_str().unwrap()]);
        opts.columns.time = Some("date".into());
        let (loaded, events) = load_watched(&mut opts);
        check_events(&events, &loaded, &[&parquet]);
    }

    /// Loads with both Parquet/IPC conversions, at one and at three threads, and checks
    /// they agree on everything: lines, customers, report, error, quarantine file.
    fn check_strategies_agree(df: &mut DataFrame, configure: impl Fn(&mut LoadOptions)) {
        let dir = tempfile::tempdir().unwrap();
        let parquet = dir.path().join("tx.parquet");
        ParquetWriter::new(File::create(&parquet).unwrap())
            .with_row_group_size(Some(7))
            .finish(df)
            .unwrap();
        let ipc = dir.path().join("tx.arrow");
        IpcWriter::new(File::create(&ipc).unwrap())
            .finish(df)
            .unwrap();
        let policies = [
            BadRowPolicy::Error,
            BadRowPolicy::Skip,
            BadRowPolicy::Quarantine(dir.path().join("q.csv")),
        ];
        for path in [&parquet, &ipc] {
            for policy in &policies {
                let mut opts = LoadOptions::new([path.to_str().unwrap()]);
                opts.on_bad_rows = policy.clone();
                opts.max_examples = 1_000;
                configure(&mut opts);
                let run = |strategy: Strategy, threads: usize, batch_rows: u64| {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    let config = LoadConfig {
                        strategy,
                        batch_rows,
                        ..LoadConfig::default()
                    };
                    let loaded = pool.install(|| load_with(&opts, config));
                    let quarantined = match policy {
                        BadRowPolicy::Quarantine(q) => std::fs::read_to_string(q).ok(),
                        _ => None,
                    };
                    (loaded.map_err(|e| e.to_string()), quarantined)
                };
                // The reference reads the file in one batch. Parquet row groups hold 7
                // rows: batches of at most 5 rows cut each of them in two, batches of
                // 1,000 rows join 142.
                let (expected, expected_q) = run(Strategy::RowWise, 1, u64::MAX);
                let batchings = [(1, BATCH_ROWS), (3, BATCH_ROWS), (2, 5), (3, 1_000)];
                for (threads, batch_rows) in batchings {
                    let (got, got_q) = run(Strategy::Columnar, threads, batch_rows);
                    let what = format!(
                        "{path:?} {policy:?} at {threads} threads, batches of {batch_rows} rows"
                    );
                    assert_eq!(got_q, expected_q, "{what}");
                    match (&got, &expected) {
                        (Ok(a), Ok(b)) => {
                            let (x, y) = (&a.transactions, &b.transactions);
                            assert_eq!(x.ids, y.ids, "{what}");
                            assert_eq!(x.offsets, y.offsets, "{what}");
                            assert_eq!(x.day, y.day, "{what}");
                            assert_eq!(x.amount, y.amount, "{what}");
                            assert_eq!(x.profit, y.profit, "{what}");
                            assert_eq!(x.order, y.order, "{what}");
                            assert_eq!(x.category, y.category, "{what}");
                            assert_eq!(x.categories, y.categories, "{what}");
                            assert_eq!(x.as_of, y.as_of, "{what}");
                            assert_eq!(a.report, b.report, "{what}");
                        }
                        (Err(a), Err(b)) => assert_eq!(a, b, "{what}"),
                        _ => panic!("{what}: {got:?} but row by row {expected:?}"),
                    }
                }
            }
        }
    }

    const N: usize = 3_000;

    /// Amounts that are awkward to convert: halves in binary and decimal, NaN, infinity,
    /// nulls, returns, values too large for minor units.
    fn tricky_amount(i: usize) -> Option<f64> {
        match i % 23 {
            0 => Some(1.005),
            1 => Some(-0.125),
            2 => Some(2.675),
            3 if i.is_multiple_of(5) => Some(f64::NAN),
            4 if i.is_multiple_of(7) => Some(f64::NEG_INFINITY),
            5 if i.is_multiple_of(11) => None,
            6 if i.is_multiple_of(13) => Some(1e300),
            7 => Some(-(i as f64) / 8.0),
            8 => Some(0.015),
            _ => Some(i as f64 * 0.37 - 100.0),
        }
    }

    fn tricky_micros(i: usize) -> Option<i64> {
        const DAY: i64 = 86_400_000_000;
        match i % 31 {
            0 if i.is_multiple_of(3) => None,
            1 if i.is_multiple_of(4) => Some(-719_162 * DAY), // 0001-01-01
            2 if i.is_multiple_of(4) => Some(2_932_896 * DAY), // 9999-12-31
            3 if i.is_multiple_of(9) => Some(2_932_897 * DAY), // year 10000
            4 if i.is_multiple_of(9) => Some(-719_163 * DAY), // year 0
            5 => Some(-1),                                    // just before 1970
            _ => Some(19_000 * DAY + (i as i64 * 7_777_777_777) % (400 * DAY)),
        }
    }

    fn text_ids() -> Vec<Option<String>> {
        (0..N)
            .map(|i| match i % 17 {
                0 if i.is_multiple_of(2) => None,
                1 => Some(format!("  C{:03} ", i % 40)),
                2 => Some(format!("C{:03}\u{a0}", i % 40)),
                3 => Some(format!("a-long-customer-id-{:05}", i % 60)),
                4 => Some("   ".into()),
                5 => Some(format!("Ü{}", i % 9)),
                _ => Some(format!("C{:03}", (i * 7) % 97)),
            })
            .collect()
    }

    fn tricky_frame(id: Column) -> DataFrame {
        let n = N;
        let ts = Column::new("ts".into(), (0..n).map(tricky_micros).collect::<Vec<_>>())
            .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
            .unwrap();
        let order: Vec<Option<String>> = (0..n)
            .map(|i| (i % 6 != 0).then(|| format!(" O{} ", i / 4)))
            .collect();
        let category: Vec<Option<&str>> = (0..n)
            .map(|i| match i % 9 {
                0 => None,
                1 => Some(" "),
                2 => Some(" toys "),
                k => Some(["books", "games", "food", "garden", "music", "Ölfarben"][k - 3]),
            })
            .collect();
        let cost: Vec<Option<f64>> = (0..n)
            .map(|i| match i % 10 {
                0 => None,
                1 if i.is_multiple_of(7) => Some(f64::NAN),
                _ => Some(i as f64 * 0.011),
            })
            .collect();
        DataFrame::new(
            n,
            vec![
                id,
                ts,
                Column::new(
                    "amount".into(),
                    (0..n).map(tricky_amount).collect::<Vec<_>>(),
                ),
                Column::new("cost".into(), cost),
                Column::new("order_id".into(), order),
                Column::new("category".into(), category),
            ],
        )
        .unwrap()
    }

    #[test]
    fn columnar_equals_row_by_row_on_text_ids() {
        let mut df = tricky_frame(Column::new("customer_id".into(), text_ids()));
        check_strategies_agree(&mut df, |_| {});
        check_strategies_agree(&mut df, |o| o.as_of = Some(19_200));
        check_strategies_agree(&mut df, |o| {
            o.currency_decimals = 0;
            o.margin = money::Ratio::parse("0.35").unwrap();
        });
        // Text ids declared as integers: most are rejected.
        check_strategies_agree(&mut df, |o| o.customer_id_type = IdType::Int);
    }

    #[test]
    fn columnar_equals_row_by_row_on_categorical_ids() {
        let ids = Column::new("customer_id".into(), text_ids())
            .cast(&DataType::from_categories(Categories::global()))
            .unwrap();
        let mut df = tricky_frame(ids);
        check_strategies_agree(&mut df, |_| {});
    }

    #[test]
    fn columnar_equals_row_by_row_on_integer_ids() {
        let ids: Vec<Option<i64>> = (0..N)
            .map(|i| match i % 19 {
                0 if i.is_multiple_of(2) => None,
                1 => Some(i64::MIN),
                2 => Some(i64::MAX),
                3 => Some(-(i as i64 % 50)),
                _ => Some((i as i64 * 7) % 131),
            })
            .collect();
        let mut df = tricky_frame(Column::new("customer_id".into(), ids));
        check_strategies_agree(&mut df, |_| {});
        check_strategies_agree(&mut df, |o| o.customer_id_type = IdType::Text);
        let small: Vec<Option<i32>> = (0..N as i32)
            .map(|i| (i % 5 != 0).then_some(i % 77))
            .collect();
        let mut df = tricky_frame(Column::new("customer_id".into(), small));
        check_strategies_agree(&mut df, |_| {});
    }

    #[test]
    fn columnar_equals_row_by_row_on_dates_and_other_column_types() {
        let ids = Column::new("customer_id".into(), text_ids());
        let mut df = tricky_frame(ids);
        // Days, far ones included, instead of timestamps.
        let days: Vec<Option<i32>> = (0..N as i32)
            .map(|i| match i % 41 {
                0 => None,
                1 => Some(-719_162),
                2 => Some(2_932_896),
                3 if i % 3 == 0 => Some(2_932_897),
                _ => Some(19_000 + i % 500),
            })
            .collect();
        df.replace(
            "ts",
            Column::new("ts".into(), days)
                .cast(&DataType::Date)
                .unwrap(),
        )
        .unwrap();
        check_strategies_agree(&mut df, |_| {});
        // Amounts as 32-bit floats, integers and text; nanosecond and millisecond times.
        let f32s: Vec<Option<f32>> = (0..N).map(|i| tricky_amount(i).map(|a| a as f32)).collect();
        let ints: Vec<Option<i64>> = (0..N)
            .map(|i| (i % 13 != 0).then_some(i as i64 - 900))
            .collect();
        let texts: Vec<Option<String>> = (0..N)
            .map(|i| match i % 8 {
                0 => None,
                1 => Some("1,5".into()),
                2 => Some(" 1.005 ".into()),
                3 => Some("-0.125".into()),
                4 => Some("1e3".into()),
                5 => Some("$4".into()),
                _ => Some(format!("{}.{:02}", i % 100, i % 97)),
            })
            .collect();
        for amount in [
            Column::new("amount".into(), f32s),
            Column::new("amount".into(), ints),
            Column::new("amount".into(), texts),
        ] {
            df.replace("amount", amount).unwrap();
            check_strategies_agree(&mut df, |_| {});
        }
        for unit in [TimeUnit::Nanoseconds, TimeUnit::Milliseconds] {
            let micros: Vec<Option<i64>> = (0..N)
                .map(|i| {
                    tricky_micros(i)
                        .map(|m| m.clamp(-9_000_000_000_000_000 / 1000, i64::MAX / 1000))
                })
                .collect();
            let scaled: Vec<Option<i64>> = micros
                .iter()
                .map(|m| {
                    m.map(|m| {
                        if unit == TimeUnit::Nanoseconds {
                            m * 1000
                        } else {
                            m / 1000
                        }
                    })
                })
                .collect();
            let ts = Column::new("ts".into(), scaled)
                .cast(&DataType::Datetime(unit, None))
                .unwrap();
            df.replace("ts", ts).unwrap();
            check_strategies_agree(&mut df, |_| {});
        }
    }

    #[test]
    fn columnar_equals_row_by_row_with_quantity_times_unit_price() {
        let n = N;
        let mut df = tricky_frame(Column::new("customer_id".into(), text_ids()));
        let _ = df.drop_in_place("amount").unwrap();
        let quantity: Vec<Option<i64>> = (0..n)
            .map(|i| (i % 29 != 0).then_some(i as i64 % 7 - 2))
            .collect();
        let price: Vec<Option<f64>> = (0..n).map(tricky_amount).collect();
        df.with_column(Column::new("quantity".into(), quantity))
            .unwrap();
        df.with_column(Column::new("unit_price".into(), price))
            .unwrap();
        check_strategies_agree(&mut df, |_| {});
    }

    /// Frames without nulls take the fast loop ([`FastColumns`]); a chunk holding a value
    /// it does not settle (a blank id, NaN, a day out of range or after the as-of date)
    /// is converted again row by row, and must come out the same.
    #[test]
    fn columnar_equals_row_by_row_without_nulls() {
        fn filled<T: Clone>(values: Vec<Option<T>>, with: T) -> Vec<T> {
            values
                .into_iter()
                .map(|v| v.unwrap_or_else(|| with.clone()))
                .collect()
        }
        let frame = |ids: Column, clean: bool| {
            let mut df = tricky_frame(ids);
            // The values of `tricky_frame`, without its nulls.
            let amount: Vec<Option<f64>> = (0..N).map(tricky_amount).collect();
            let cost: Vec<Option<f64>> = (0..N)
                .map(|i| (i % 10 != 0).then_some(i as f64 * 0.011))
                .map(|c| c.map(|c| if c > 20.0 { f64::NAN } else { c }))
                .collect();
            let order: Vec<Option<String>> = (0..N)
                .map(|i| (i % 6 != 0).then(|| format!(" O{} ", i / 4)))
                .collect();
            let category: Vec<Option<String>> = (0..N)
                .map(|i| match i % 9 {
                    0 => None,
                    1 => Some(" ".into()),
                    k => Some(
                        ["toys", "books", "games", "food", "garden", "music", "Öl"][k - 2].into(),
                    ),
                })
                .collect();
            let micros: Vec<Option<i64>> = (0..N).map(tricky_micros).collect();
            let day = 86_400_000_000i64;
            let (amount, cost, micros): (Vec<f64>, Vec<f64>, Vec<i64>) = if clean {
                let ok = |v: Option<f64>, i: usize| match v {
                    Some(v) if v.is_finite() && v.abs() < 1e9 => v,
                    _ => i as f64 * 0.01,
                };
                (
                    amount.iter().enumerate().map(|(i, &v)| ok(v, i)).collect(),
                    cost.iter().enumerate().map(|(i, &v)| ok(v, i)).collect(),
                    (0..N as i64)
                        .map(|i| 19_000 * day + i * 7_777_777)
                        .collect(),
                )
            } else {
                (
                    filled(amount, f64::NAN),
                    filled(cost, 0.5),
                    filled(micros, 2_932_897 * day),
                )
            };
            let ts = Column::new("ts".into(), micros)
                .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
                .unwrap();
            df.replace("ts", ts).unwrap();
            df.replace("amount", Column::new("amount".into(), amount))
                .unwrap();
            df.replace("cost", Column::new("cost".into(), cost))
                .unwrap();
            df.replace(
                "order_id",
                Column::new("order_id".into(), filled(order, "  ".into())),
            )
            .unwrap();
            df.replace(
                "category",
                Column::new("category".into(), filled(category, " ".into())),
            )
            .unwrap();
            for c in df.columns() {
                assert_eq!(c.null_count(), 0, "{}", c.name());
            }
            df
        };
        let text = |blank: &str| {
            let ids = filled(text_ids(), blank.to_string());
            Column::new("customer_id".into(), ids)
        };
        for clean in [false, true] {
            // Blank ids (rejected) only where the values are tricky too.
            let mut df = frame(text(if clean { "C000" } else { " " }), clean);
            check_strategies_agree(&mut df, |o| o.as_of = Some(19_030));
            if clean {
                // Without cost and order columns: margins and times stand in.
                let _ = df.drop_in_place("cost").unwrap();
                let _ = df.drop_in_place("order_id").unwrap();
                check_strategies_agree(&mut df, |o| {
                    o.currency_decimals = 0;
                    o.margin = money::Ratio::parse("0.35").unwrap();
                });
            } else {
                let ints: Vec<i64> = (0..N as i64).map(|i| (i * 7) % 131 - 20).collect();
                let mut df = frame(Column::new("customer_id".into(), ints), clean);
                check_strategies_agree(&mut df, |_| {});
            }
        }
    }

    #[test]
    fn f64_to_minor_fast_path_equals_the_shortest_text() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for k in 0..200_000 {
            crate::xorshift(&mut x);
            let cents = (x % 2_000_000) as i64 - 1_000_000;
            // Values near halves of a cent, as written with three and four decimals.
            let v = match k % 3 {
                0 => cents as f64 / 1000.0,
                1 => cents as f64 / 10_000.0,
                _ => f64::from_bits(x >> 2) * if x & 1 == 0 { 1.0 } else { -1.0 },
            };
            if !v.is_finite() {
                continue;
            }
            for decimals in [0, 2, 3] {
                let slow = money::parse_decimal(&format!("{v}")).and_then(|d| d.to_minor(decimals));
                assert_eq!(money::f64_to_minor(v, decimals), slow, "{v} at {decimals}");
            }
        }
    }

    /// Rows cut into batches keep their numbers in the file and their order: a bad row
    /// of a later batch is named by its row in the file, and a customer whose lines lie
    /// in several batches gets them in file order, as when the file is read at once.
    #[test]
    fn batches_keep_row_numbers_and_line_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tx.parquet");
        let ids = ["A", "B", "A", "C", "B", "A", "C"];
        let days = [
            "2024-01-03",
            "2024-01-02",
            "2024-01-01",
            "2024-01-04",
            "not a date",
            "2024-01-02",
            "2024-01-05",
        ];
        let mut df = DataFrame::new(
            ids.len(),
            vec![
                Column::new("customer_id".into(), ids),
                Column::new("ts".into(), days),
                Column::new("amount".into(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]),
            ],
        )
        .unwrap();
        ParquetWriter::new(File::create(&path).unwrap())
            .with_row_group_size(Some(2))
            .finish(&mut df)
            .unwrap();
        let mut opts = LoadOptions::new([path.to_str().unwrap()]);
        let batched = LoadConfig {
            strategy: Strategy::Columnar,
            batch_rows: 2,
            ..LoadConfig::default()
        };
        let err = load_with(&opts, batched).unwrap_err().to_string();
        assert!(err.contains(": row 5, column 'ts'"), "{err}");
        assert!(err.contains("\"not a date\""), "{err}");

        opts.on_bad_rows = BadRowPolicy::Skip;
        let got = load_with(&opts, batched).unwrap();
        let whole = load_with(&opts, LoadConfig::default()).unwrap();
        assert_eq!((got.report.rows_read, got.report.rows_rejected), (7, 1));
        assert_eq!(got.report, whole.report);
        let tx = &got.transactions;
        assert_eq!(
            tx.ids,
            CustomerIds::Text(["A", "B", "C"].into_iter().collect())
        );
        assert_eq!(tx.offsets, [0, 3, 4, 6]);
        assert_eq!(tx.amount, [100, 300, 600, 200, 400, 700]);
        assert_eq!(tx.day, whole.transactions.day);
        assert_eq!(tx.order, whole.transactions.order);
    }

    use crate::xorshift;

    #[test]
    fn ids_registered_by_shard_get_the_codes_of_registering_them_row_by_row() {
        // 60,000 rows (four runs of rows) over 5,000 ids in 3 shards, every seventh row
        // rejected; the codes are appended after two earlier ones.
        let mut x = 7u64;
        let keys: Vec<i64> = (0..60_000)
            .map(|_| (xorshift(&mut x) % 5_000) as i64)
            .collect();
        let part: Vec<u8> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| match i % 7 {
                3 => REJECTED,
                _ => shard_of(shard_hash(k), 3) as u8,
            })
            .collect();
        let mut one_by_one = IdTable::<i64>::new(3);
        let mut expected = vec![8, 9];
        for (k, &q) in keys.iter().zip(&part) {
            if q != REJECTED {
                expected.push(one_by_one.code(k));
            }
        }
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut table = IdTable::<i64>::new(3);
            let mut codes = vec![8, 9];
            pool.install(|| table.register_partitioned::<i64, _>(&part, |i| keys[i], &mut codes));
            assert_eq!(codes, expected, "{threads} threads");
        }
    }

    #[test]
    fn permute_moves_every_value_to_its_position_once() {
        // A random permutation (Fisher-Yates): cycles of many lengths and fixed points.
        let n = 1_000;
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut position: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            position.swap(i, (xorshift(&mut x) % (i as u64 + 1)) as usize);
        }
        let values: Vec<u64> = (0..n as u64).map(|v| v * 10).collect();
        let mut permuted = values.clone();
        permute(&mut permuted, &position, |v| v + 1);
        for (i, &p) in position.iter().enumerate() {
            assert_eq!(permuted[p], values[i] + 1, "value {i}");
        }
    }

    #[test]
    fn grouping_lines_is_a_stable_sort_by_rank_in_any_number_of_parts() {
        // 1,000 lines of 37 customers coded in a scrambled order; customer 36 has none.
        let n_customers = 37;
        let rank: Vec<u32> = (0..n_customers as u32).map(|c| (c * 11) % 37).collect();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let customer: Vec<u32> = (0..1_000).map(|_| (xorshift(&mut x) % 36) as u32).collect();
        // The reference: line numbers sorted by rank, ties in line order.
        let mut by_rank: Vec<usize> = (0..customer.len()).collect();
        by_rank.sort_by_key(|&i| rank[customer[i] as usize]);
        for parts in [1, 2, 3, 4, 7, 1_000, 5_000] {
            let (offsets, position) = group_lines(customer.clone(), &rank, n_customers, parts);
            for (place, &line) in by_rank.iter().enumerate() {
                assert_eq!(position[line], place, "line {line}, {parts} parts");
            }
            for r in 0..n_customers {
                for &i in &by_rank[offsets[r]..offsets[r + 1]] {
                    assert_eq!(rank[customer[i] as usize], r as u32);
                }
            }
            assert_eq!(offsets[n_customers], customer.len());
        }
        let (offsets, position) = group_lines(Vec::new(), &rank, n_customers, 2);
        assert_eq!((offsets, position), (vec![0; n_customers + 1], vec![]));
    }

    #[test]
    fn text_ids_keep_every_id_apart_even_empty_ones() {
        let ids: TextIds = ["", "ab", "", "c", ""].into_iter().collect();
        assert_eq!(ids.len(), 5);
        assert_eq!(ids.iter().collect::<Vec<_>>(), ["", "ab", "", "c", ""]);
        assert_eq!(&ids[1], "ab");
        let picked = ids.select([3, 1, 1]);
        assert_eq!(picked.iter().collect::<Vec<_>>(), ["c", "ab", "ab"]);
        let mut pushed = TextIds::new();
        for id in ["c", "ab", "ab"] {
            pushed.push(id);
        }
        assert_eq!(picked, pushed);
        assert!(TextIds::new().is_empty());
        assert!(std::panic::catch_unwind(|| ids.get(5).len()).is_err());
    }

    #[test]
    fn text_ids_from_a_slice_equal_the_ids_pushed_one_by_one() {
        // Around the run size of 4,096 ids, with empty ids among them.
        for n in [0, 1, 4_095, 4_096, 4_097, 20_000] {
            let ids: Vec<String> = (0..n)
                .map(|i| {
                    if i % 5 == 0 {
                        String::new()
                    } else {
                        format!("{i:x}{}", "é".repeat(i % 3))
                    }
                })
                .collect();
            let mut pushed = TextIds::new();
            ids.iter().for_each(|id| pushed.push(id));
            for threads in [1, 3] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                assert_eq!(
                    pool.install(|| TextIds::from_slice(&ids)),
                    pushed,
                    "{n} ids"
                );
            }
        }
    }

    #[test]
    fn observers_leave_options_equal() {
        let watched = LoadOptions {
            progress: LoadObserver::new(|_| {}),
            ..LoadOptions::default()
        };
        assert!(watched.progress.is_set());
        assert_eq!(watched.progress, LoadOptions::default().progress);
        assert_eq!(format!("{:?}", watched.progress), "LoadObserver(set)");
    }
}

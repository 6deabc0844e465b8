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

use crate::error::{Error, Result};
use crate::money::{self, Decimal, DecimalError};
use crate::output::AtomicFile;
use crate::time::{LineTime, TimeError, TimeFormat};
pub use options::{
    BadRowPolicy, ColumnNames, IdType, LoadObserver, LoadOptions, LoadProgress, Role,
    check_decimals, parse_as_of, parse_margin, single_byte,
};

mod columnar;
mod delimited;
mod frame;
mod ids;
mod mapping;
pub mod options;
mod report;
mod rows;
#[cfg(test)]
mod tests;
mod warehouse;

pub use crate::transactions::{CustomerIds, NO_CATEGORY, TextIds, Transactions};
use columnar::*;
pub use columnar::{columnar_rows, is_parquet};
use delimited::*;
pub use frame::{FRAME_NAME, load_frame};
use ids::*;
use mapping::*;
pub use report::*;
use rows::*;
use warehouse::*;

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
        return Err(Error::Usage(
            "no input given: name the input files (--input FILE, or [input] files)".into(),
        ));
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
        Format::Csv { gzip } => {
            load_csv_in(path, gzip, opts, rows, sink, progress, config.csv_split)?
        }
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

/// About how many lines the inputs hold, without reading them: Parquet and Arrow IPC
/// files from their metadata, CSV files from their size over the mean length of the lines
/// in their first 256 KiB (gzip files assumed to hold 5 bytes for each byte on disk).
pub fn estimate_lines(inputs: &[String]) -> Result<u64> {
    let mut lines = 0u64;
    for path in expand_inputs(inputs)? {
        lines += match detect_format(&path)? {
            Format::Parquet | Format::Ipc => columnar_rows(&path)?,
            Format::Csv { gzip } => {
                let size = std::fs::metadata(&path)
                    .map_err(|e| Error::io(&path, e))?
                    .len();
                let text_size = if gzip { size.saturating_mul(5) } else { size };
                let mut head = Vec::new();
                let consumed = Rc::new(CountCell::new(0));
                open_text(&path, gzip, consumed)?
                    .take(256 << 10)
                    .read_to_end(&mut head)
                    .map_err(|e| Error::io(&path, e))?;
                let ends = memchr::memchr_iter(b'\n', &head).count().max(1) as u128;
                (u128::from(text_size) * ends / (head.len() as u128).max(1)) as u64
            }
        };
    }
    Ok(lines)
}

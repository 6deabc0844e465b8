//! Nightly runs: one config names the inputs, mapping, analyses and outputs; each run
//! writes a dated directory (segment file, tables, migration from the previous run,
//! manifest with checksums) that appears whole or not at all, then moves the `latest`
//! pointer. A lock keeps two runs off the same output directory.
//!
//! Not for: the analyses themselves (see `segments`, `deciles`, `profit`, `ltv`).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use polars::prelude::*;
use serde::Deserialize;

use crate::config::{ConfigFile, LoadOptions};
use crate::deciles;
use crate::error::{Error, Result};
use crate::load::{CustomerIds, LoadReport, TextIds, Transactions, load};
use crate::output::{self, OutputFormat};
use crate::profit::profit_view;
use crate::segments::{AnalysisSettings, Segmentation, segment};
use crate::state::checksum;

/// The `[run]` table of a config file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    /// Where dated run directories and the `latest` pointer live.
    pub output_dir: Option<PathBuf>,
    /// Segment file format: "parquet" (default), "csv" or "jsonl".
    pub segments_format: Option<String>,
    /// Write the HTML report into the run directory (default true).
    pub report: Option<bool>,
    /// Keep the compacted history (`state.parquet`, `state.json`) in each run directory
    /// and read only new input files on top of the previous run's state (default false).
    pub incremental: Option<bool>,
    /// Score out of core in this many hash partitions (see `custvalue segments
    /// --partitions`); the report, which needs every line, is then not written.
    pub partitions: Option<usize>,
    /// Rows per batch of a Parquet/IPC input when scoring out of core.
    pub batch_rows: Option<u64>,
    /// Where partitions are spilled when scoring out of core.
    pub spill_dir: Option<PathBuf>,
    /// Where the per-customer aggregation runs: "local" (default) or "ballista" (see
    /// `custvalue segments --engine`); the report, which needs every line, is then not written.
    pub engine: Option<String>,
    /// The Ballista scheduler, `df://host:port`.
    pub scheduler: Option<String>,
    /// Partitions of the cluster plan.
    pub cluster_partitions: Option<usize>,
    /// Give a cluster job up after this many seconds.
    pub cluster_timeout: Option<u64>,
}

/// What a run wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// The dated directory.
    pub dir: PathBuf,
    pub outputs: Vec<String>,
    pub customers: usize,
    /// Customers who changed segment since the previous run (None without one).
    pub moved: Option<u64>,
    /// Incremental runs: how the inputs were taken.
    pub ingest: Option<IngestSummary>,
}

/// What an incremental run did with its inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestSummary {
    /// The run directory whose state was continued (None: built from scratch).
    pub continued: Option<PathBuf>,
    pub new_files: usize,
    pub new_rows: u64,
    /// Inputs skipped because their content was ingested before.
    pub skipped: Vec<String>,
    /// Inputs at a known path with new content, ingested as new lines.
    pub changed: Vec<String>,
}

const LOCK_FILE: &str = ".custvalue.lock";

/// Runs the whole job of a config file. With `[run] incremental = true`, only input files
/// not ingested before are read, on top of the state of the run `latest` points to;
/// `full` ignores that state and rebuilds it from every input.
pub fn run_job(
    config_path: &Path,
    cfg: &ConfigFile,
    opts: &LoadOptions,
    full: bool,
) -> Result<RunOutcome> {
    let started = Instant::now();
    let settings = &cfg.run;
    let base = settings.output_dir.clone().ok_or_else(|| {
        Error::Usage(format!(
            "{}: [run] output_dir is required: where dated run directories go",
            config_path.display()
        ))
    })?;
    let seg_format = settings.segments_format.as_deref().unwrap_or("parquet");
    if !matches!(seg_format, "parquet" | "csv" | "jsonl") {
        return Err(Error::Usage(format!(
            "[run] segments_format must be parquet, csv or jsonl, not {seg_format:?}"
        )));
    }
    std::fs::create_dir_all(&base).map_err(|e| Error::io(&base, e))?;
    let _lock = acquire_lock(&base)?;

    let incremental = settings.incremental.unwrap_or(false);
    let analysis: AnalysisSettings = cfg.analysis();
    let streaming = settings.partitions.map(|partitions| {
        let d = crate::stream::StreamOptions::default();
        crate::stream::StreamOptions {
            partitions,
            batch_rows: settings.batch_rows.unwrap_or(d.batch_rows),
            spill_dir: settings.spill_dir.clone(),
        }
    });
    let engine = crate::engine::Engine::from_settings(
        settings.engine.as_deref(),
        settings.scheduler.as_deref(),
        settings.cluster_partitions,
    )?
    .with_timeout(settings.cluster_timeout);
    if !engine.is_local() && (incremental || streaming.is_some()) {
        return Err(Error::Usage(
            "[run] engine = \"ballista\" goes with neither incremental nor partitions: choose one"
                .into(),
        ));
    }
    let (report, transactions, ingest) = match &streaming {
        _ if !engine.is_local() => (None, None, None),
        Some(_) if incremental => {
            return Err(Error::Usage(
                "[run] incremental and partitions do not go together yet: choose one".into(),
            ));
        }
        Some(_) => (None, None, None),
        None if incremental => {
            let previous = std::fs::canonicalize(base.join("latest")).ok();
            let (history, ing) = crate::state::ingest(previous.as_deref().filter(|_| !full), opts)?;
            (Some(history.report), Some(history.transactions), Some(ing))
        }
        None => {
            let loaded = load(opts)?;
            (Some(loaded.report), Some(loaded.transactions), None)
        }
    };
    let loaded_at = started.elapsed();
    let (report, seg) = match (&streaming, report, &transactions) {
        _ if !engine.is_local() => crate::engine::segment_on_cluster(&engine, opts, &analysis)?,
        (Some(so), _, _) => {
            let s = crate::stream::segment_streaming(opts, &analysis, so)?;
            (s.report, s.segmentation)
        }
        (None, Some(report), Some(tx)) => (report, segment(tx, &analysis)?),
        _ => unreachable!("in-memory runs load transactions"),
    };
    let analysed_at = started.elapsed();
    // After scoring, only the report and the incremental state need the lines: free them
    // otherwise before the outputs are built (they are most of the run's memory).
    let n_lines = transactions.as_ref().map(Transactions::n_lines);
    let transactions = match transactions {
        Some(tx) if !(settings.report.unwrap_or(true) || ingest.is_some()) => {
            // Freed on the pool, beside the outputs being built.
            rayon::spawn(move || drop(tx));
            None
        }
        kept => kept,
    };

    let day = crate::time::format_day(report.as_of);
    let work = base.join(format!(".{day}.partial"));
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(|e| Error::io(&work, e))?;
    }
    std::fs::create_dir(&work).map_err(|e| Error::io(&work, e))?;
    let written = write_outputs(&work, &base, &seg, seg_format).and_then(|(mut outputs, moves)| {
        if let Some(tx) = transactions
            .as_ref()
            .filter(|_| settings.report.unwrap_or(true))
        {
            let html = crate::report::render(&crate::report::ReportInput {
                title: crate::report::DEFAULT_TITLE,
                load: &report,
                settings: &analysis,
                segmentation: &seg,
                transactions: tx,
                ltv: None,
                migration: moves.as_deref(),
            })?;
            let path = work.join("report.html");
            let mut file = output::AtomicFile::create(&path)?;
            std::io::Write::write_all(file.writer(), html.as_bytes())
                .map_err(|e| Error::io(&path, e))?;
            file.commit()?;
            outputs.push("report.html".to_string());
        }
        if let (Some(ing), Some(tx)) = (&ingest, &transactions) {
            outputs.extend(crate::state::save(&work, tx, &report, &ing.sums)?);
        }
        Ok((outputs, moves))
    });
    let (mut outputs, moves) = match written {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&work);
            return Err(e);
        }
    };
    let written = manifest(
        config_path,
        &report,
        seg.summary.len(),
        n_lines,
        ingest.as_ref(),
        &work,
        &outputs,
        [loaded_at, analysed_at, started.elapsed()],
    )
    .and_then(|json| {
        let path = work.join("manifest.json");
        let mut file = output::AtomicFile::create(&path)?;
        std::io::Write::write_all(file.writer(), json.as_bytes())
            .map_err(|e| Error::io(&path, e))?;
        file.commit()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&work);
        return Err(e);
    }
    outputs.push("manifest.json".into());

    let dir = base.join(&day);
    publish(&work, &dir)?;
    point_latest(&base, &day)?;
    let moved = moves.as_deref().map(moved_customers);
    Ok(RunOutcome {
        dir,
        outputs,
        customers: seg.summary.len(),
        moved,
        ingest: ingest.map(|ing| IngestSummary {
            continued: ing.continued,
            new_files: ing.this_run.files.len(),
            new_rows: ing.this_run.rows_read,
            skipped: ing.skipped,
            changed: ing.changed,
        }),
    })
}

/// Holds an exclusive lock on the output directory while alive.
fn acquire_lock(base: &Path) -> Result<File> {
    let path = base.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked(format!(
            "another run holds the lock on {}; try again when it has finished",
            base.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

fn write_outputs(
    work: &Path,
    base: &Path,
    seg: &Segmentation,
    seg_format: &str,
) -> Result<(Vec<String>, Option<Vec<Migration>>)> {
    let seg_name = format!("segments.{seg_format}");
    // The segment file is by far the largest output; the small ones are computed and
    // written beside it rather than after it.
    let (written, small) = rayon::join(
        || seg.write(&work.join(&seg_name), None),
        || write_small_outputs(work, base, seg),
    );
    written?;
    let (small, moves) = small?;
    let mut outputs = vec![seg_name];
    outputs.extend(small);
    Ok((outputs, moves))
}

/// The outputs of [`write_outputs`] other than the segment file, in order.
fn write_small_outputs(
    work: &Path,
    base: &Path,
    seg: &Segmentation,
) -> Result<(Vec<String>, Option<Vec<Migration>>)> {
    let d = seg.summary.currency_decimals;
    let mut outputs = Vec::new();
    let mut write = |name: &str, frame: &mut DataFrame| -> Result<()> {
        output::write_frame(frame, &work.join(name))?;
        outputs.push(name.to_string());
        Ok(())
    };
    let money = deciles::money_deciles(&seg.summary, &seg.decile);
    write("money_deciles.csv", &mut deciles::money_frame(&money, d)?)?;
    let purchase = deciles::purchase_deciles(&seg.summary);
    write(
        "purchase_deciles.csv",
        &mut deciles::purchase_frame(&purchase, d)?,
    )?;
    let view = profit_view(&seg.summary);
    write("whale_curve.csv", &mut view.whale_frame()?)?;
    let sizes = seg.segment_sizes();
    let mut size_frame = DataFrame::new(
        sizes.len(),
        vec![
            Column::new(
                "segment".into(),
                sizes.iter().map(|s| s.segment.as_str()).collect::<Vec<_>>(),
            ),
            Column::new(
                "customers".into(),
                sizes.iter().map(|s| s.customers as i64).collect::<Vec<_>>(),
            ),
            Column::new(
                "revenue".into(),
                sizes
                    .iter()
                    .map(|s| s.revenue as f64 / 10f64.powi(d as i32))
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "revenue_share".into(),
                sizes.iter().map(|s| s.revenue_share).collect::<Vec<_>>(),
            ),
        ],
    )?;
    write("segment_sizes.csv", &mut size_frame)?;
    let previous = previous_segments(base, d)?;
    let moves = match previous {
        Some(prev) => {
            let m = migration(seg, &prev);
            write("migration.csv", &mut migration_frame(&m, d)?)?;
            Some(m)
        }
        None => None,
    };
    drop(write);
    let json = format!("{}\n", view.to_json(d));
    let mut file = output::AtomicFile::create(&work.join("profit.json"))?;
    std::io::Write::write_all(file.writer(), json.as_bytes())
        .map_err(|e| Error::io(work.join("profit.json"), e))?;
    file.commit()?;
    outputs.push("profit.json".to_string());
    Ok((outputs, moves))
}

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

/// The previous run's customers, if there is a previous run.
fn previous_segments(base: &Path, decimals: u32) -> Result<Option<Previous>> {
    let latest = base.join("latest");
    let Ok(dir) = std::fs::canonicalize(&latest) else {
        return Ok(None);
    };
    for format in ["parquet", "csv", "jsonl"] {
        let path = dir.join(format!("segments.{format}"));
        if !path.exists() {
            continue;
        }
        let df = match OutputFormat::from_path(&path)? {
            OutputFormat::Parquet => {
                let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
                ParquetReader::new(file)
                    .with_columns(Some(
                        ["customer_id", "segment", "monetary"]
                            .map(String::from)
                            .to_vec(),
                    ))
                    .finish()?
            }
            _ => return read_csv_segments(&path, decimals).map(Some),
        };
        return previous_from_frame(&df, decimals).map(Some);
    }
    Ok(None)
}

/// The previous run's customers from the columns of its Parquet segment file; rows
/// without an id are left out.
fn previous_from_frame(df: &DataFrame, decimals: u32) -> Result<Previous> {
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

fn read_csv_segments(path: &Path, decimals: u32) -> Result<Previous> {
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
    let mut cells = crate::segments::tally(seg.summary.len(), (new + 1) * width, |c| {
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

fn migration_frame(rows: &[Migration], decimals: u32) -> Result<DataFrame> {
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

#[allow(clippy::too_many_arguments)]
fn manifest(
    config_path: &Path,
    history: &LoadReport,
    customers: usize,
    lines: Option<usize>,
    ingest: Option<&crate::state::Ingest>,
    work: &Path,
    outputs: &[String],
    times: [std::time::Duration; 3],
) -> Result<String> {
    use rayon::prelude::*;
    // Every file is read and hashed on a task of its own: reading a block is serial, so
    // the large files (an input, the segment file) are read side by side.
    let hash_inputs = ingest.is_none();
    let mut paths = vec![config_path.to_path_buf()];
    if hash_inputs {
        paths.extend(history.files.iter().map(|f| PathBuf::from(&f.path)));
    }
    paths.extend(outputs.iter().map(|name| work.join(name)));
    let sums = paths.par_iter().map(|p| checksum(p)).collect::<Vec<_>>();
    // The first failure in file order.
    let mut sums = sums.into_iter().collect::<Result<Vec<_>>>()?.into_iter();
    let (_, config_hash) = sums.next().expect("the config is hashed");
    // This run's inputs: every input, or only the new ones of an incremental run.
    let (r, sums_in) = match ingest {
        Some(ing) => (&ing.this_run, ing.new_sums.clone()),
        None => (
            history,
            sums.by_ref()
                .take(history.files.len())
                .map(|c| c.1)
                .collect(),
        ),
    };
    let inputs: Vec<serde_json::Value> = r
        .files
        .iter()
        .zip(&sums_in)
        .map(|(f, sum)| {
            serde_json::json!({
                "path": f.path, "bytes": f.bytes, "blake3": sum,
                "rows_read": f.rows_read, "rows_used": f.rows_used, "rows_rejected": f.rows_rejected,
            })
        })
        .collect();
    let outs: Vec<serde_json::Value> = outputs
        .iter()
        .zip(sums)
        .map(|(name, (bytes, sum))| serde_json::json!({ "name": name, "bytes": bytes, "blake3": sum }))
        .collect();
    let rows = |r: &LoadReport| {
        let reasons: BTreeMap<&str, u64> = r
            .rejected_by_reason
            .iter()
            .map(|(k, v)| (k.key(), *v))
            .collect();
        serde_json::json!({ "read": r.rows_read, "used": r.rows_used, "rejected": r.rows_rejected, "rejected_by_reason": reasons })
    };
    let ms = |d: std::time::Duration| d.as_millis() as u64;
    let mut json = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "config": config_path.display().to_string(),
        "config_blake3": config_hash,
        "as_of": crate::time::format_day(history.as_of),
        "rows": rows(r),
        "customers": customers,
        "inputs": inputs,
        "outputs": outs,
        "durations_ms": { "load": ms(times[0]), "analyse": ms(times[1] - times[0]), "total": ms(times[2]) },
    });
    if let Some(ing) = ingest {
        json["incremental"] = serde_json::json!({
            "continued_from": ing.continued.as_ref().map(|d| d.display().to_string()),
            "skipped_inputs": ing.skipped,
            "changed_inputs": ing.changed,
            "history_files": history.files.len(),
            "history_rows": rows(history),
            "state_lines": lines,
        });
    }
    serde_json::to_string_pretty(&json).map_err(|e| Error::Data(e.to_string()))
}

/// Moves the finished directory into place, replacing an earlier run of the same date.
fn publish(work: &Path, dir: &Path) -> Result<()> {
    if dir.exists() {
        let old = dir.with_extension("replaced");
        let _ = std::fs::remove_dir_all(&old);
        std::fs::rename(dir, &old).map_err(|e| Error::io(dir, e))?;
        std::fs::rename(work, dir).map_err(|e| Error::io(dir, e))?;
        let _ = std::fs::remove_dir_all(&old);
    } else {
        std::fs::rename(work, dir).map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

/// Points `latest` at the run directory by renaming a fresh symlink over it.
fn point_latest(base: &Path, day: &str) -> Result<()> {
    let tmp = base.join(".latest.partial");
    let _ = std::fs::remove_file(&tmp);
    #[cfg(unix)]
    std::os::unix::fs::symlink(day, &tmp).map_err(|e| Error::io(&tmp, e))?;
    let latest = base.join("latest");
    std::fs::rename(&tmp, &latest).map_err(|e| Error::io(&latest, e))?;
    if let Ok(d) = File::open(base) {
        let _ = d.sync_all();
    }
    Ok(())
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

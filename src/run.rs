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

use crate::config::ConfigFile;

use crate::deciles;
use crate::error::{Error, Result};
use crate::load::LoadOptions;

use crate::engine::Phase;
use crate::load::LoadReport;
use crate::migration::{
    Migration, Previous, migration, migration_frame, moved_customers, previous_from_frame,
    read_csv_segments,
};
use crate::output::{self, OutputFormat};
use crate::profit::profit_view;
use crate::segments::{AnalysisSettings, Segmentation, segment};
use crate::state::checksum;

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
    /// Where the aggregation ran, and why.
    pub engine: String,
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
    let seg_format = settings.segments_format.unwrap_or_default().extension();
    std::fs::create_dir_all(&base).map_err(|e| Error::io(&base, e))?;
    let _lock = acquire_lock(&base)?;

    let incremental = settings.incremental.unwrap_or(false);
    let analysis: AnalysisSettings = cfg.analysis();
    let plan = settings.engine(&opts.inputs)?;
    if incremental && !plan.engine.in_memory() {
        // Partitions or a cluster asked for by name, or chosen by the memory limit.
        let asked = settings.partitions.is_some()
            || settings.engine == Some(crate::engine::EngineKind::Ballista);
        return Err(Error::Usage(if asked {
            "[run] incremental goes with neither partitions nor engine = \"ballista\": choose one"
                .into()
        } else {
            format!(
                "[run] incremental keeps every line in memory, but {}: raise memory_limit",
                plan.why
            )
        }));
    }
    let engine = plan.engine.clone();
    // Only the report and the incremental state need the lines once scored; others are
    // freed before the outputs are built (they are most of the run's memory).
    let keep_lines = settings.report.unwrap_or(true) || incremental;
    let loaded_at = std::cell::Cell::new(None);
    let (report, seg, transactions, n_lines, ingest) = if incremental {
        let previous = std::fs::canonicalize(base.join("latest")).ok();
        let (history, ing) = crate::state::ingest(previous.as_deref().filter(|_| !full), opts)?;
        loaded_at.set(Some(started.elapsed()));
        let seg = segment(&history.transactions, &analysis)?;
        let n_lines = Some(history.transactions.n_lines());
        (
            history.report,
            seg,
            Some(history.transactions),
            n_lines,
            Some(ing),
        )
    } else {
        let scored = engine.segment(opts, &analysis, keep_lines, |phase| {
            if !matches!(phase, Phase::Loading | Phase::Read(_)) && loaded_at.get().is_none() {
                loaded_at.set(Some(started.elapsed()));
            }
        })?;
        let s = scored;
        (s.report, s.segmentation, s.transactions, s.n_lines, None)
    };
    let loaded_at = loaded_at.get().unwrap_or_default();
    let analysed_at = started.elapsed();

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
            output::write_bytes(&work.join("report.html"), html.as_bytes())?;
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
    .and_then(|json| output::write_bytes(&work.join("manifest.json"), json.as_bytes()));
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
        engine: if incremental {
            "in memory, on top of the previous run's state".to_string()
        } else {
            plan.why
        },
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
    output::write_bytes(&work.join("profit.json"), json.as_bytes())?;
    outputs.push("profit.json".to_string());
    Ok((outputs, moves))
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

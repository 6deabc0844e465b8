//! `custvalue run`: the nightly job of a config file.

use std::path::PathBuf;

use clap::Args;

use custvalue::config::ConfigFile;
use custvalue::output::thousands;
use custvalue::{Error, Result};

use super::{Ctx, InputArgs};

const EXAMPLES: &str = "\
Examples:
  custvalue run --config examples/nightly.toml
  custvalue run --config nightly.toml --as-of 2025-01-01
  custvalue run --config nightly.toml --input 'inbox/*.csv'    # [run] incremental = true
  custvalue run --config nightly.toml --full                   # rebuild the state

Writes OUTPUT_DIR/<as-of date>/ with segments.parquet (or csv/jsonl), money_deciles.csv,
purchase_deciles.csv, whale_curve.csv, profit.json, segment_sizes.csv, report.html
([run] report = false to skip it), migration.csv (when a previous
run exists: customers and revenue moving from each segment to each other one, new and
vanished customers) and manifest.json (version, config hash, inputs and outputs with sizes
and BLAKE3 checksums, rows read/used/rejected, as-of date, durations). The directory
appears whole or not at all; then OUTPUT_DIR/latest points to it. A lock keeps two runs
off one output directory. Exit codes: 0 ok, 1 failure (e.g. locked), 2 bad input or config.

Incremental runs ([run] incremental = true): each run directory also keeps state.parquet
(the history compacted to one line per customer, day, order, category and sign) and
state.json (cumulative row counts, every ingested file with its BLAKE3 checksum). The next
run reads the state `latest` points to and only the input files whose content it has not
ingested yet (files are known by checksum, so an inbox glob can keep old files); the
outputs equal those of a full recomputation over every file, byte for byte. A file that
grew by appending is new content: move such files aside, or use --full, which ignores
the state and rebuilds it from the inputs given.

Inputs larger than memory: [run] partitions = N (and batch_rows, spill_dir) scores out of
core as `custvalue segments --partitions` does; every file but report.html is written.

On a cluster: [run] engine = \"ballista\" and scheduler = \"df://host:port\" (and
cluster_partitions) aggregate on Ballista as `custvalue segments --engine ballista` does;
every file but report.html is written. Exit code 3 when the cluster fails.";

#[derive(Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct RunArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// With [run] incremental = true: ignore the previous state and rebuild it from
    /// every input given.
    #[arg(long)]
    pub full: bool,
}

pub fn run(ctx: &Ctx, args: &RunArgs) -> Result<i32> {
    let config: PathBuf =
        args.input.config.clone().ok_or_else(|| {
            Error::Usage("run needs --config FILE (with a [run] output_dir)".into())
        })?;
    let cfg = ConfigFile::read(&config)?;
    let (mut opts, _) = args.input.options_and_settings()?;
    let outcome = {
        // Reading is what takes long; the bar stays full while the run analyses and writes.
        let _bar = ctx.load_progress(&mut opts);
        custvalue::run::run_job(&config, &cfg, &opts, args.full)?
    };
    ctx.note(&format!("scored {}", outcome.engine));
    if let Some(ing) = &outcome.ingest {
        for path in &ing.changed {
            ctx.note(&format!(
                "note: {path} was ingested before with other content; its lines were added as new"
            ));
        }
        ctx.note(&format!(
            "{}: {} new file{} ({} rows){}",
            match &ing.continued {
                Some(dir) => format!("continued the state of {}", dir.display()),
                None => "built the state from scratch".to_string(),
            },
            ing.new_files,
            if ing.new_files == 1 { "" } else { "s" },
            thousands(ing.new_rows),
            if ing.skipped.is_empty() {
                String::new()
            } else {
                format!(", {} already ingested and skipped", ing.skipped.len())
            }
        ));
    }
    ctx.note(&format!(
        "wrote {} files for {} customers to {}{}",
        outcome.outputs.len(),
        thousands(outcome.customers as u64),
        outcome.dir.display(),
        outcome.moved.map_or(String::new(), |m| format!(
            "; {} customers changed segment since the previous run",
            thousands(m)
        ))
    ));
    Ok(0)
}

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

Writes OUTPUT_DIR/<as-of date>/ with segments.parquet (or csv/jsonl), money_deciles.csv,
purchase_deciles.csv, whale_curve.csv, profit.json, segment_sizes.csv, report.html
([run] report = false to skip it), migration.csv (when a previous
run exists: customers and revenue moving from each segment to each other one, new and
vanished customers) and manifest.json (version, config hash, inputs and outputs with sizes
and BLAKE3 checksums, rows read/used/rejected, as-of date, durations). The directory
appears whole or not at all; then OUTPUT_DIR/latest points to it. A lock keeps two runs
off one output directory. Exit codes: 0 ok, 1 failure (e.g. locked), 2 bad input or config.";

#[derive(Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct RunArgs {
    #[command(flatten)]
    pub input: InputArgs,
}

pub fn run(ctx: &Ctx, args: &RunArgs) -> Result<i32> {
    let config: PathBuf =
        args.input.config.clone().ok_or_else(|| {
            Error::Usage("run needs --config FILE (with a [run] output_dir)".into())
        })?;
    let cfg = ConfigFile::read(&config)?;
    let (opts, _) = args.input.options_and_settings()?;
    let outcome = {
        let _step = ctx.step(format!("running {}", config.display()));
        custvalue::run::run_job(&config, &cfg, &opts)?
    };
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

//! Command-line flags and dispatch. Each subcommand lives in its own file with its usage
//! text; everything it computes comes from the library.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use custvalue::config::ConfigFile;

use custvalue::load::{
    IdType, LoadObserver, LoadOptions, check_decimals, parse_as_of, parse_margin, single_byte,
};
use custvalue::models::FitObserver;
use custvalue::output::{self, thousands};
use custvalue::time::TimeFormat;
use custvalue::{AnalysisSettings, Error, LoadReport, Loaded, Result};
pub(crate) use ltv::fit_table;

mod affinity;
#[cfg(feature = "distributed")]
mod cluster;
mod cohorts;
mod cube;
mod deciles;
mod fit;
mod ltv;
mod profit;
mod report;
mod rfm;
mod run;
mod segments;
mod summary;
mod synth;
mod table;
mod validate;

const EXAMPLES: &str = "\
Examples:
  custvalue segments --input data-samples/transactions.csv --out segments.csv
  custvalue summary --input data-samples/transactions.csv --out customers.csv
  custvalue validate --input 'exports/*.csv.gz' --on-bad-rows quarantine=bad.csv
  custvalue summary --input receipts.csv --customer-col card --time-col time \\
      --time-format '%d/%m/%Y %H:%M' --quantity-col qty --unit-price-col price --out c.parquet
  custvalue synth --rows 1000000 --seed 7 --out tx.parquet

Exit codes: 0 ok, 1 internal failure, 2 bad input or usage, 3 cluster failure
(--engine ballista: scheduler unreachable or job failed).";

/// Customer-value analytics: summaries, RFM, deciles, 20/80/30 and lifetime value from
/// transaction lines (CSV, Parquet, Arrow IPC).
#[derive(Parser, Debug)]
#[command(name = "custvalue", version, after_help = EXAMPLES, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// Worker threads (default: all cores). Results are identical at any count.
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,

    /// Print nothing but errors and requested results.
    #[arg(long, short, global = true)]
    quiet: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// One row per customer: first/last purchase, recency, tenure, frequency, monetary,
    /// profit, average order value, categories.
    Summary(summary::SummaryArgs),
    /// RFM scores (NTILE), cells and named segments per customer.
    Rfm(rfm::RfmArgs),
    /// Money deciles and purchase deciles, with the headline sentence.
    Deciles(deciles::DecilesArgs),
    /// Fit a lifetime-value model directly on a model summary (x, t_x, T) or BG/BB patterns.
    Fit(fit::FitArgs),
    /// Lifetime value: BG/NBD, Pareto/NBD or MBG/NBD with Gamma-Gamma spend, P(alive),
    /// CLV, and a calibration/holdout check.
    Ltv(ltv::LtvArgs),
    /// Kotler's 20/80/30 profitability view, the whale curve and the Gini coefficient.
    Profit(profit::ProfitArgs),
    /// The nightly job of a config file: a dated directory of outputs and a manifest.
    Run(run::RunArgs),
    /// The segment file: summary, scores, segment, decile, best customer, lifecycle stage.
    Segments(segments::SegmentsArgs),
    /// The self-contained HTML report: charts of deciles, 20/80/30, RFM, segments,
    /// lifecycle, best customers and (with --model) lifetime value.
    Report(report::ReportArgs),
    /// Customer dimension × category: customers, orders, revenue, share and index per cell.
    Cube(cube::CubeArgs),
    /// The monthly cohort retention triangle.
    Cohorts(cohorts::CohortsArgs),
    /// Category pairs bought together (support, confidence, lift) for cross-selling.
    Affinity(affinity::AffinityArgs),
    /// Check input files against the column mapping and report every problem.
    Validate(validate::ValidateArgs),
    /// Generate synthetic transactions (BG/NBD purchases, Gamma-Gamma spend).
    Synth(synth::SynthArgs),
    /// Start a Ballista scheduler or executor for `--engine ballista` (feature `distributed`).
    #[cfg(feature = "distributed")]
    Cluster(cluster::ClusterArgs),
}

/// How to find and read the transaction lines; shared by every subcommand that reads them.
#[derive(Args, Debug, Clone, Default)]
pub struct InputArgs {
    /// Input files: CSV (.csv, .csv.gz, .tsv), Parquet or Arrow IPC; repeat or use a glob.
    #[arg(long, short, value_name = "FILE", num_args = 1..)]
    pub input: Vec<String>,

    /// TOML config with [input] and [columns] tables; flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Customer id column [default: customer_id].
    #[arg(long, value_name = "NAME", help_heading = "Columns")]
    pub customer_col: Option<String>,
    /// Time column: ISO date/timestamp or --time-format [default: ts].
    #[arg(long, value_name = "NAME", help_heading = "Columns")]
    pub time_col: Option<String>,
    /// Amount column [default: amount]; without it, quantity × unit price.
    #[arg(long, value_name = "NAME", help_heading = "Columns")]
    pub amount_col: Option<String>,
    /// Quantity column [default: quantity].
    #[arg(long, value_name = "NAME", help_heading = "Columns")]
    pub quantity_col: Option<String>,
    /// Unit price column [default: unit_price].
    #[arg(long, value_name = "NAME", help_heading = "Columns")]
    pub unit_price_col: Option<String>,
    /// Order id column [default: order_id]; without it an order is (customer, time).
    #[arg(long, value_name = "NAME", help_heading = "Columns")]
    pub order_col: Option<String>,
    /// Cost column [default: cost]; without it profit = amount × --margin.
    #[arg(long, value_name = "NAME", help_heading = "Columns")]
    pub cost_col: Option<String>,
    /// Category column [default: category].
    #[arg(long, value_name = "NAME", help_heading = "Columns")]
    pub category_col: Option<String>,

    /// CSV field delimiter (one character; \t for tab) [default: ,].
    #[arg(long, value_name = "CHAR", help_heading = "CSV")]
    pub delimiter: Option<String>,
    /// The CSV files have no header line; columns are named column_1, column_2, ….
    #[arg(long, help_heading = "CSV")]
    pub no_header: bool,
    /// CSV quote character [default: "].
    #[arg(long, value_name = "CHAR", help_heading = "CSV")]
    pub quote: Option<String>,

    /// strftime format of the time column, e.g. '%d/%m/%Y %H:%M' or '%Y%m%d'.
    #[arg(long, value_name = "FORMAT", help_heading = "Values")]
    pub time_format: Option<String>,
    /// Customer id type: auto (text for CSV, the column's type otherwise), text or int.
    #[arg(long, value_name = "TYPE", help_heading = "Values")]
    pub customer_id_type: Option<IdTypeArg>,
    /// Decimals of the currency's minor unit [default: 2].
    #[arg(long, value_name = "N", help_heading = "Values")]
    pub currency_decimals: Option<u32>,
    /// As-of date YYYY-MM-DD [default: the day after the latest transaction].
    #[arg(long, value_name = "DATE", help_heading = "Values")]
    pub as_of: Option<String>,
    /// Profit margin for lines without cost: profit = amount × margin [default: 1.0].
    #[arg(long, value_name = "RATIO", help_heading = "Values")]
    pub margin: Option<String>,
    /// Bad rows: error (stop, exit 2), skip (count them) or quarantine=FILE [default: error].
    #[arg(long, value_name = "POLICY", help_heading = "Values")]
    pub on_bad_rows: Option<String>,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum IdTypeArg {
    Auto,
    Text,
    Int,
}

impl InputArgs {
    /// Load options: defaults, then the config file, then the flags.
    pub fn options(&self) -> Result<LoadOptions> {
        Ok(self.options_and_settings()?.0)
    }

    /// Load options and the analysis settings of the config file.
    pub fn options_and_settings(&self) -> Result<(LoadOptions, AnalysisSettings)> {
        let mut opts = LoadOptions::default();
        let mut settings = AnalysisSettings::default();
        if let Some(path) = &self.config {
            let cfg = ConfigFile::read(path)?;
            cfg.input
                .apply(&mut opts)
                .map_err(|e| Error::Usage(format!("{}: [input] {e}", path.display())))?;
            settings = cfg.analysis();
            opts.columns = cfg.columns;
        }
        if !self.input.is_empty() {
            opts.inputs = self.input.clone();
        }
        let flags = custvalue::ColumnNames {
            customer: self.customer_col.clone(),
            time: self.time_col.clone(),
            amount: self.amount_col.clone(),
            quantity: self.quantity_col.clone(),
            unit_price: self.unit_price_col.clone(),
            order: self.order_col.clone(),
            cost: self.cost_col.clone(),
            category: self.category_col.clone(),
        };
        opts.columns = flags.or(opts.columns);
        if let Some(d) = &self.delimiter {
            opts.delimiter = single_byte("--delimiter", d)?;
        }
        if self.no_header {
            opts.has_header = false;
        }
        if let Some(q) = &self.quote {
            opts.quote = single_byte("--quote", q)?;
        }
        if let Some(f) = &self.time_format {
            opts.time_format = TimeFormat::Custom(f.clone());
        }
        if let Some(t) = self.customer_id_type {
            opts.customer_id_type = match t {
                IdTypeArg::Auto => IdType::Auto,
                IdTypeArg::Text => IdType::Text,
                IdTypeArg::Int => IdType::Int,
            };
        }
        if let Some(d) = self.currency_decimals {
            opts.currency_decimals = check_decimals(d)?;
        }
        if let Some(a) = &self.as_of {
            opts.as_of = Some(parse_as_of(a)?);
        }
        if let Some(m) = &self.margin {
            opts.margin = parse_margin(m)?;
        }
        if let Some(p) = &self.on_bad_rows {
            opts.on_bad_rows = p.parse().map_err(Error::Usage)?;
        }
        if opts.inputs.is_empty() {
            return Err(Error::Usage(
                "no input given: use --input FILE (or [input] files in --config)".into(),
            ));
        }
        Ok((opts, settings))
    }

    /// Checks the outputs, loads and reports: what every analysis command starts with.
    pub fn load(
        &self,
        ctx: &Ctx,
        outputs: &[&Option<PathBuf>],
    ) -> Result<(Loaded, AnalysisSettings)> {
        let (mut opts, settings) = self.prepare(outputs)?;
        let loaded = {
            let _bar = ctx.load_progress(&mut opts);
            custvalue::load(&opts)?
        };
        ctx.report_load(&loaded.report);
        Ok((loaded, settings))
    }

    /// The options and settings, checked together with the outputs before any reading.
    pub fn prepare(&self, outputs: &[&Option<PathBuf>]) -> Result<(LoadOptions, AnalysisSettings)> {
        let (opts, settings) = self.options_and_settings()?;
        settings.check()?;
        for out in outputs.iter().filter_map(|o| o.as_ref()) {
            output::check_output(out, &opts.inputs)?;
            if let custvalue::BadRowPolicy::Quarantine(q) = &opts.on_bad_rows
                && (q == out || output::same_file(q, out))
            {
                return Err(Error::Usage(format!(
                    "the quarantine file {} is also an output; choose another path",
                    q.display()
                )));
            }
        }
        Ok((opts, settings))
    }
}

/// What every command knows about the run.
pub struct Ctx {
    pub quiet: bool,
}

/// A spinner or progress bar on stderr for a step that may take a while; cleared when
/// dropped. Drawn only when stderr is a terminal and the run is not quiet, so logs, pipes
/// and stdout never see it.
pub struct Step(Option<indicatif::ProgressBar>);

impl Drop for Step {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

impl Step {
    /// An observer that shows how a model fit gets on (model, start, iteration,
    /// log-likelihood) after this step's message; none when the step is not drawn.
    pub fn fit_progress(&self) -> FitObserver {
        let Some(bar) = &self.0 else {
            return FitObserver::default();
        };
        let (bar, step) = (bar.clone(), bar.message());
        FitObserver::new(move |p| {
            bar.set_message(format!(
                "{step}: {} start {}/{}, iteration {}, log-likelihood {:.2}",
                p.model, p.start, p.starts, p.iteration, p.log_likelihood
            ))
        })
    }
}

impl Ctx {
    /// A bar on stderr with this template, or none when quiet or stderr is not a terminal.
    fn bar(&self, template: &str, message: String) -> Step {
        use std::io::IsTerminal;
        if self.quiet || !std::io::stderr().is_terminal() {
            return Step(None);
        }
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(template)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_message(message);
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Step(Some(bar))
    }

    /// Starts a spinner with a message and the elapsed time.
    pub fn step(&self, message: impl Into<String>) -> Step {
        self.bar("{spinner} {msg} ({elapsed})", message.into())
    }

    /// Starts a bar of the bytes and rows read, fed by an observer it sets on `opts`
    /// (left unset when the bar is not drawn, so loading pays nothing for it).
    pub fn load_progress(&self, opts: &mut LoadOptions) -> Step {
        let step = self.bar(
            "{spinner} reading {wide_bar} {bytes}/{total_bytes}, {msg}, {bytes_per_sec}, ETA {eta}",
            "0 rows".into(),
        );
        if let Some(bar) = &step.0 {
            let bar = bar.clone();
            opts.progress = LoadObserver::new(move |p| {
                bar.set_length(p.total_bytes);
                bar.set_position(p.bytes);
                bar.set_message(if p.files > 1 {
                    format!(
                        "{} rows, file {} of {}",
                        thousands(p.rows),
                        p.file + 1,
                        p.files
                    )
                } else {
                    format!("{} rows", thousands(p.rows))
                });
            });
        }
        step
    }

    /// Prints a status line on stderr unless quiet.
    pub fn note(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    /// Prints a human-readable result on stdout unless quiet (JSON is always printed).
    pub fn show(&self, text: &str) {
        if !self.quiet {
            print(text);
        }
    }

    /// The load report: the headline always (rows read = used + rejected), examples of
    /// rejected rows unless quiet.
    pub fn report_load(&self, report: &LoadReport) {
        if self.quiet && report.rows_rejected == 0 {
            return;
        }
        eprintln!("{}", report.headline());
        for r in &report.examples {
            eprintln!(
                "  {}: {} {}, column '{}': {} {:?}{}",
                r.file,
                r.place,
                r.line,
                r.column,
                r.reason.describe(),
                r.value,
                if r.detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", r.detail)
                }
            );
        }
        if let Some(q) = &report.quarantine {
            eprintln!("  rejected rows written to {}", q.display());
        }
        if !report.as_of_given {
            self.note(&format!(
                "as-of date {} (the day after the latest transaction)",
                custvalue::time::format_day(report.as_of)
            ));
        }
    }
}

/// Writes text to stdout; a closed pipe is not an error.
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

fn set_threads(threads: Option<usize>) -> Result<()> {
    let n = match threads {
        Some(0) => return Err(Error::Usage("--threads must be at least 1".into())),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    // polars reads its pool size from the environment on first use; nothing has used
    // polars yet and no other thread runs, so setting it here is sound.
    unsafe { std::env::set_var("POLARS_MAX_THREADS", n.to_string()) };
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .map_err(|e| Error::Usage(format!("cannot start {n} threads: {e}")))
}

/// Runs the command line; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let ctx = Ctx { quiet: cli.quiet };
    let result = set_threads(cli.threads).and_then(|_| match &cli.command {
        Command::Summary(a) => summary::run(&ctx, a),
        Command::Rfm(a) => rfm::run(&ctx, a),
        Command::Deciles(a) => deciles::run(&ctx, a),
        Command::Fit(a) => fit::run(&ctx, a),
        Command::Ltv(a) => ltv::run(&ctx, a),
        Command::Profit(a) => profit::run(&ctx, a),
        Command::Run(a) => run::run(&ctx, a),
        Command::Segments(a) => segments::run(&ctx, a),
        Command::Report(a) => report::run(&ctx, a),
        Command::Cube(a) => cube::run(&ctx, a),
        Command::Cohorts(a) => cohorts::run(&ctx, a),
        Command::Affinity(a) => affinity::run(&ctx, a),
        Command::Validate(a) => validate::run(&ctx, a),
        Command::Synth(a) => synth::run(&ctx, a),
        #[cfg(feature = "distributed")]
        Command::Cluster(a) => cluster::run(&ctx, a),
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

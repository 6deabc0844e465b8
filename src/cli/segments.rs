//! `custvalue segments`: the per-customer segment file for mailing and CRM systems.

use std::path::PathBuf;

use clap::Args;

use super::table::Table;
use custvalue::Result;
use custvalue::engine::{Engine, EngineKind, EngineSettings, Phase, Plan};
use custvalue::output::percent;
use custvalue::output::{money_text, thousands};

use super::{Ctx, InputArgs};

const EXAMPLES: &str = "\
Examples:
  custvalue segments --input data-samples/transactions.csv --out segments.csv
  custvalue segments --input 'tx/*.parquet' --config nightly.toml --out segments.parquet
  custvalue segments --input 'lake/*.parquet' --partitions 64 --spill-dir /big --out seg.parquet
  custvalue segments --input '/shared/lake/*.parquet' --engine ballista \
      --scheduler df://scheduler-host:50050 --out seg.parquet
  custvalue segments --input '/shared/lake/*.parquet' --engine ballista \
      --scheduler scheduler-host:50050 --wait-for-executors 120 --stall-timeout 1800 \
      --out seg.parquet

One row per customer, in customer-id order: the summary columns, r_score, f_score,
m_score, rfm_cell, rfm_score, segment, decile, best_customer, stage, reactivated
(and p_alive beside the stage with --model bgnbd|paretonbd|mbgnbd).
Thresholds come from the config file's [rfm], [deciles], [best] and [lifecycle] tables:
  [best]       min_spend = 1000.0, min_categories = 4, min_orders = 6, window_days = 365
  [lifecycle]  new_max_tenure = 90, active_max_recency = 180, at_risk_max_recency = 365,
               lapsed_max_recency = 730, reactivation_gap = 365

Larger than memory: --partitions N reads the inputs in batches (a CSV file, or
--batch-rows rows of a Parquet/IPC file), validates each as usual, spills its lines into N
hash partitions of the customer id (about 32 bytes a line, removed afterwards) and scores
one partition at a time; the output equals the in-memory one byte for byte.

On a cluster: --engine ballista --scheduler df://host:port runs the scan and the
per-customer aggregation on an Apache DataFusion Ballista cluster (a build with
`--features distributed`; `custvalue cluster --help` starts one). The Parquet inputs must be
at the same path on this machine and on every executor (shared storage); one row per
customer comes back and the rest runs here, with the local engine's output byte for byte.
Bad rows are counted per reason (the cluster cannot name their lines). Before submitting,
the scheduler is asked for its executors: with none it waits --wait-for-executors seconds
for one, then gives up. While the job runs, its stages and tasks done (from the
scheduler's status) show on stderr, and a job that finishes no task for --stall-timeout
seconds is cancelled and reported with the executors the scheduler knows. Exit code 3
when the cluster cannot be reached, has no executor, stalls or the job fails on it.";

#[derive(Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct SegmentsArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// RFM score groups: 3, 4, 5 or 10 [default: 5].
    #[arg(long, value_name = "K")]
    pub k: Option<u8>,

    /// Segment rules (TOML) replacing the default table.
    #[arg(long, value_name = "FILE")]
    pub segments: Option<PathBuf>,

    /// Best-customer minimum spend in the window, currency units [default: 1000].
    #[arg(long, value_name = "AMOUNT")]
    pub best_min_spend: Option<f64>,

    /// Fit a lifetime-value model (bgnbd, paretonbd, mbgnbd) and add P(alive) beside the stage.
    #[arg(long, value_name = "MODEL")]
    pub model: Option<custvalue::models::ModelKind>,

    /// Where to write the segment file (.parquet, .csv, .jsonl, .json, .arrow).
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,

    #[command(flatten)]
    pub stream: StreamArgs,

    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Running the aggregation on a cluster.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "On a cluster")]
pub struct ClusterArgs {
    /// Where the per-customer aggregation runs: local or ballista [default: local].
    #[arg(long, value_name = "ENGINE")]
    pub engine: Option<EngineKind>,
    /// The Ballista scheduler, df://host:port or host:port (with --engine ballista).
    #[arg(long, value_name = "URL")]
    pub scheduler: Option<String>,
    /// Partitions of the cluster's scan and aggregation [default: 4].
    #[arg(long, value_name = "N")]
    pub cluster_partitions: Option<usize>,
    /// Give a cluster job up (exit code 3) after this many seconds [default: 21600].
    #[arg(long, value_name = "SECS")]
    pub cluster_timeout: Option<u64>,
    /// When the scheduler has no executor, wait this many seconds for one to register
    /// before giving up (exit code 3; 0: ask once) [default: 30].
    #[arg(long, value_name = "SECS")]
    pub wait_for_executors: Option<u64>,
    /// Give a running cluster job up (exit code 3) when it finishes no task for this
    /// many seconds; judged where the scheduler reports tasks, as `custvalue cluster
    /// scheduler` does [default: 600].
    #[arg(long, value_name = "SECS")]
    pub stall_timeout: Option<u64>,
}

impl SegmentsArgs {
    /// The engine of the engine flags for these inputs, checked, and why.
    pub fn engine(&self, inputs: &[String]) -> Result<Plan> {
        let c = &self.cluster;
        if c.engine == Some(EngineKind::Ballista) && c.scheduler.is_none() {
            return Err(custvalue::Error::Usage(
                "--engine ballista needs --scheduler df://host:port (the Ballista scheduler; \
                 `custvalue cluster scheduler` starts one)"
                    .into(),
            ));
        }
        if c.engine == Some(EngineKind::Ballista)
            && (self.stream.partitions.is_some() || self.model.is_some())
        {
            return Err(custvalue::Error::Usage(
                "--engine ballista aggregates on the cluster: leave out --partitions and --model"
                    .into(),
            ));
        }
        if self.stream.partitions.is_some() && self.model.is_some() {
            return Err(custvalue::Error::Usage(
                "--model needs every line in memory: leave out --partitions".into(),
            ));
        }
        if c.engine != Some(EngineKind::Ballista)
            && (c.scheduler.is_some()
                || c.cluster_partitions.is_some()
                || c.wait_for_executors.is_some()
                || c.stall_timeout.is_some())
        {
            return Err(custvalue::Error::Usage(
                "--scheduler, --cluster-partitions, --wait-for-executors and --stall-timeout \
                 go with --engine ballista"
                    .into(),
            ));
        }
        if let Some(text) = &c.scheduler {
            custvalue::engine::SchedulerAddress::parse(text)
                .map_err(|e| custvalue::Error::Usage(format!("--scheduler: {e}")))?;
        }
        if c.stall_timeout == Some(0) {
            return Err(custvalue::Error::Usage(
                "--stall-timeout must be at least 1 second".into(),
            ));
        }
        let settings = EngineSettings {
            kind: c.engine.unwrap_or_default(),
            scheduler: c.scheduler.clone(),
            cluster_partitions: c.cluster_partitions,
            cluster_timeout: c.cluster_timeout,
            stream: self.stream.options(),
            memory_limit: self.stream.memory_limit,
            spill_dir: self.stream.spill_dir.clone(),
        };
        if self.model.is_some() {
            // A model needs every line in memory: no judging by size.
            let engine = Engine::choose(&settings)?;
            return Ok(Plan {
                engine,
                why: "in memory (--model needs every line)".into(),
            });
        }
        let plan = Engine::plan(&settings, inputs)?;
        Ok(Plan {
            engine: plan
                .engine
                .with_cluster_limits(c.wait_for_executors, c.stall_timeout),
            ..plan
        })
    }
}

/// Out-of-core scoring for inputs larger than memory.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Larger than memory")]
pub struct StreamArgs {
    /// Score out of core: spill the lines into N hash partitions of the customer id and
    /// aggregate one partition at a time (memory follows customers, not lines; same
    /// output byte for byte).
    #[arg(long, value_name = "N")]
    pub partitions: Option<usize>,
    /// Rows per batch of a Parquet/IPC input when streaming [default: 2000000].
    #[arg(long, value_name = "N", requires = "partitions")]
    pub batch_rows: Option<u64>,
    /// Directory for the spilled partitions [default: the system temporary directory].
    #[arg(long, value_name = "DIR")]
    pub spill_dir: Option<PathBuf>,
    /// Memory the in-memory engine may take (2GiB, 800MB, 1.5G): over it, judged from
    /// the inputs' size, the lines are scored out of core with partitions chosen to fit
    /// [default: three quarters of the machine's memory, or [run] memory_limit].
    #[arg(long, value_name = "SIZE", value_parser = custvalue::engine::parse_size)]
    pub memory_limit: Option<u64>,
}

impl StreamArgs {
    pub fn options(&self) -> Option<custvalue::stream::StreamOptions> {
        let defaults = custvalue::stream::StreamOptions::default();
        self.partitions
            .map(|partitions| custvalue::stream::StreamOptions {
                partitions,
                batch_rows: self.batch_rows.unwrap_or(defaults.batch_rows),
                spill_dir: self.spill_dir.clone(),
            })
    }
}

pub fn run(ctx: &Ctx, args: &SegmentsArgs) -> Result<i32> {
    if let Some(k) = args.k {
        custvalue::rfm::check_k(k)?;
    }
    if let Some(path) = &args.segments {
        custvalue::rfm::SegmentRules::read(path)?;
    }
    let (mut opts, mut settings) = args.input.prepare(&[&args.out])?;
    if let Some(k) = args.k {
        settings.rfm.k = k;
    }
    if let Some(s) = &args.segments {
        settings.rfm.segments = Some(s.clone());
    }
    if let Some(m) = args.best_min_spend {
        settings.best.min_spend = m;
    }
    let plan = args.engine(&opts.inputs)?;
    ctx.note(&format!("scoring {}", plan.why));
    let engine = plan.engine;
    let load_bar =
        std::cell::RefCell::new(engine.in_memory().then(|| ctx.load_progress(&mut opts)));
    let cluster_bar = std::cell::RefCell::new(None);
    let told = std::cell::Cell::new(None::<std::time::Instant>);
    let scored = engine.segment(
        &opts,
        &settings,
        args.model.is_some(),
        |phase| match phase {
            Phase::Loading => load_bar.borrow_mut().take(),
            Phase::Scoring => Some(ctx.step("scoring customers")),
            Phase::OutOfCore(n) => Some(ctx.step(format!("scoring out of core in {n} partitions"))),
            Phase::Cluster => {
                let step = ctx.step("aggregating on the cluster");
                *cluster_bar.borrow_mut() = step.0.clone();
                Some(step)
            }
            Phase::ClusterProgress(text) => {
                match cluster_bar.borrow().as_ref() {
                    Some(bar) => bar.set_message(format!("aggregating on the cluster: {text}")),
                    // In a log, a line at most every 5 s (and the first at once).
                    None if told.get().is_none_or(|t| t.elapsed().as_secs() >= 5) => {
                        ctx.note(&format!("cluster: {text}"));
                        told.set(Some(std::time::Instant::now()));
                    }
                    None => {}
                }
                None
            }
            Phase::Read(report) => {
                ctx.report_load(report);
                None
            }
        },
    )?;
    let (lines, seg) = (scored.transactions, scored.segmentation);
    // Without a model the lines are done with: they are freed (beside the tables' sums)
    // before the segment file is built.
    let (lines, (segment_sizes, stage_counts)) = rayon::join(
        || lines.filter(|_| args.model.is_some()),
        || (seg.segment_sizes(), seg.stage_counts()),
    );
    let d = seg.summary.currency_decimals;
    let mut sizes = Table::new(["segment", "customers", "revenue", "share"]);
    for row in segment_sizes {
        sizes.row([
            row.segment,
            thousands(row.customers),
            money_text(row.revenue, d),
            row.revenue_share.map_or("n/a".into(), percent),
        ]);
    }
    let mut stages = Table::new(["stage", "customers", "reactivated"]);
    for (name, n, re) in stage_counts {
        stages.row([name.to_string(), thousands(n), thousands(re)]);
    }
    ctx.show(&format!(
        "{}\n{}\nbest customers: {} of {}\n",
        sizes.render(),
        stages.render(),
        thousands(seg.best.count() as u64),
        thousands(seg.summary.len() as u64)
    ));
    let p_alive = match (&args.model, &lines) {
        (Some(model), Some(lines)) => {
            let step = ctx.step(format!("fitting {model}"));
            let settings = custvalue::ltv::LtvSettings {
                model: *model,
                gamma_gamma: false,
                progress: step.fit_progress(),
                ..Default::default()
            };
            Some(custvalue::ltv::value(lines, &settings)?.p_alive)
        }
        _ => None,
    };
    if let Some(out) = &args.out {
        let _step = ctx.step(format!("writing {}", out.display()));
        seg.write(out, p_alive.as_deref())?;
        ctx.note(&format!(
            "wrote {} customers to {}",
            thousands(seg.summary.len() as u64),
            out.display()
        ));
    }
    Ok(0)
}

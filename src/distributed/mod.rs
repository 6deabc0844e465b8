//! The distributed engine (cargo feature `distributed`): the expensive step — scanning the
//! transaction lines and aggregating them per customer — runs as a DataFusion plan on an
//! Apache DataFusion Ballista cluster; the per-customer table (one row per customer) comes
//! back as a Parquet file that polars reads, and scores, deciles, stages and next
//! categories are computed locally by the same code as the local engine. The segment file
//! is the local engine's byte for byte (tests compare them).
//!
//! Money is aggregated in integer minor units in the plan; a row is rejected for the
//! loader's reasons (counted per reason; the cluster cannot name lines). `cluster` starts a
//! scheduler or an executor from this binary; `status` asks a scheduler what it runs.
//!
//! Before submitting, the scheduler is asked for its executors: with none, the job waits a
//! short while for one and is then given up, naming the scheduler and what to start. While
//! the job runs, its stages and tasks done come from the scheduler's status, and a job
//! that finishes no task for the stall timeout is given up, naming the executors the
//! scheduler knows.
//!
//! Not for: lines-level outputs (report, cube, cohorts, models), which need every line in
//! one place.

pub mod cluster;
pub mod plan;
pub mod status;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::TableProvider;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::SessionStateBuilder;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::{SessionConfig, SessionContext};
use polars::prelude::*;

use crate::best::{self, BestCustomers};
use crate::error::{Error, Result};
use crate::load::{BadRowPolicy, LoadOptions};
use crate::load::{FileReport, LoadReport, RejectReason};
use crate::segments::{AnalysisSettings, Segmentation};
use crate::summary::Summary;
use crate::transactions::{CustomerIds, NO_CATEGORY, Transactions};

pub use plan::IdKind;

/// Where the plan runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// A Ballista scheduler, `df://host:port`.
    Ballista {
        scheduler: String,
        limits: JobLimits,
    },
    /// DataFusion in this process (no cluster): the same plan, for tests and comparison.
    InProcess,
}

/// How long a cluster job waits for what it needs, besides its overall timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLimits {
    /// How long to wait for an executor when the scheduler has none (zero: ask once).
    pub wait_for_executors: Duration,
    /// How long a running job may go without finishing a task before it counts as
    /// stalled. Judged only where the scheduler reports tasks (`custvalue cluster
    /// scheduler` does; a stock Ballista scheduler does not).
    pub stall_timeout: Duration,
}

impl Default for JobLimits {
    /// The engine's defaults: 30 s for an executor, 10 minutes without a finished task.
    fn default() -> Self {
        JobLimits {
            wait_for_executors: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(600),
        }
    }
}

/// Cluster settings.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub engine: Engine,
    /// Partitions of the plan's scan and shuffle (default 2 per executor core is a good start).
    pub partitions: usize,
    /// Give the job up (exit code 3) when it neither finishes nor fails in this time.
    pub timeout: Option<std::time::Duration>,
}

impl ClusterOptions {
    pub fn ballista(scheduler: impl Into<String>) -> ClusterOptions {
        ClusterOptions {
            engine: Engine::Ballista {
                scheduler: scheduler.into(),
                limits: JobLimits::default(),
            },
            partitions: 4,
            timeout: None,
        }
    }
}

/// What a cluster run gives: the segmentation and how the input was read.
#[derive(Debug)]
pub struct Clustered {
    pub segmentation: Segmentation,
    pub report: LoadReport,
}

/// Scores every customer of `opts`' inputs with the aggregation on the cluster.
pub fn segment_on_cluster(
    opts: &LoadOptions,
    settings: &AnalysisSettings,
    cluster: &ClusterOptions,
) -> Result<Clustered> {
    segment_on_cluster_watched(opts, settings, cluster, &mut |_| {})
}

/// As [`segment_on_cluster`], telling `progress` how the job gets on in sentences such
/// as "pass 2 of 2: 1 of 2 stages, 5 of 8 tasks done".
pub fn segment_on_cluster_watched(
    opts: &LoadOptions,
    settings: &AnalysisSettings,
    cluster: &ClusterOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Clustered> {
    settings.check()?;
    if matches!(opts.on_bad_rows, BadRowPolicy::Quarantine(_)) {
        return Err(Error::Usage(
            "the ballista engine counts bad rows but cannot write them out: use \
             --on-bad-rows skip, or quarantine them with the local engine (custvalue validate)"
                .into(),
        ));
    }
    if cluster.partitions == 0 {
        return Err(Error::Usage("cluster partitions must be at least 1".into()));
    }
    let files = crate::load::expand_inputs(&opts.inputs)?;
    for f in &files {
        if !crate::load::is_parquet(f) {
            return Err(Error::input(
                f.display().to_string(),
                "the ballista engine reads Parquet files; convert this file or use the local engine",
            ));
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(32 * 1024 * 1024)
        .build()
        .map_err(|e| Error::Cluster(format!("cannot start the async runtime: {e}")))?;
    let tmp = tempfile::Builder::new()
        .prefix("custvalue-cluster-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let handoff = tmp.path().join("customers.parquet");
    let plan = run_plan(opts, settings, cluster, &files, &handoff, progress);
    let (report, id_kind) = runtime
        .block_on(async {
            match cluster.timeout {
                Some(limit) => tokio::time::timeout(limit, plan).await.unwrap_or_else(|_| {
                    Err(Error::Cluster(format!(
                        "the cluster job neither finished nor failed within {} s: given up \
                         (check the executors; --cluster-timeout sets the limit)",
                        limit.as_secs()
                    )))
                }),
                None => plan.await,
            }
        })
        .map_err(|e| match (e, &cluster.engine) {
            (Error::Cluster(m), Engine::Ballista { scheduler, .. })
                if m.starts_with(UNREACHABLE) =>
            {
                Error::Cluster(format!(
                    "the Ballista scheduler at {scheduler} cannot be reached: is a scheduler \
                     running there (`custvalue cluster scheduler`, or your deployment's)? ({})",
                    m[UNREACHABLE.len()..].trim_start_matches(": ")
                ))
            }
            (e, _) => e,
        })?;
    let segmentation = segmentation_from_aggregate(&handoff, id_kind, &report, opts, settings)?;
    Ok(Clustered {
        segmentation,
        report,
    })
}

const UNREACHABLE: &str = "the Ballista scheduler cannot be reached";

fn df_error(e: datafusion::error::DataFusionError) -> Error {
    let text = e.to_string();
    if text.contains("Connection refused")
        || text.contains("transport error")
        || text.contains("Unavailable")
    {
        Error::Cluster(format!("{UNREACHABLE}: {text}"))
    } else {
        Error::Cluster(format!("the cluster job failed: {text}"))
    }
}

async fn context(cluster: &ClusterOptions, job_name: &str) -> Result<SessionContext> {
    match &cluster.engine {
        Engine::InProcess => Ok(SessionContext::new_with_config(
            SessionConfig::new().with_target_partitions(cluster.partitions),
        )),
        Engine::Ballista { scheduler, .. } => {
            let config = SessionConfig::new_with_ballista()
                .with_target_partitions(cluster.partitions)
                .with_information_schema(false)
                .with_ballista_job_name(job_name);
            let state = SessionStateBuilder::new()
                .with_config(config)
                .with_default_features()
                .build();
            SessionContext::remote_with_state(scheduler, state)
                .await
                .map_err(df_error)
        }
    }
}

async fn run_plan(
    opts: &LoadOptions,
    settings: &AnalysisSettings,
    cluster: &ClusterOptions,
    files: &[PathBuf],
    handoff: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<(LoadReport, IdKind)> {
    let mut watch = match &cluster.engine {
        Engine::Ballista { scheduler, limits } => Some(Watch::new(scheduler, limits, progress)?),
        Engine::InProcess => None,
    };
    if let Some(w) = &mut watch {
        w.wait_for_executors().await?;
    }
    let job_name = watch
        .as_ref()
        .map_or("", |w| w.job_name.as_str())
        .to_string();
    let ctx = context(cluster, &job_name).await?;
    let first = files[0].display().to_string();
    let urls = files
        .iter()
        .map(|f| {
            let abs = std::path::absolute(f).map_err(|e| Error::io(f, e))?;
            ListingTableUrl::parse(abs.to_string_lossy().as_ref())
                .map_err(|e| Error::input(f.display().to_string(), e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    let listing = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension("");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(listing)
        .infer_schema(&ctx.state())
        .await
        .map_err(|e| Error::input(&first, format!("not a readable Parquet file: {e}")))?;
    let table = ListingTable::try_new(config).map_err(df_error)?;
    let schema = table.schema();
    ctx.register_table(plan::TABLE, Arc::new(table))
        .map_err(df_error)?;
    let label = if files.len() == 1 {
        first.clone()
    } else {
        format!("{first} (and {} more files)", files.len() - 1)
    };
    let lines = plan::lines(&schema, opts, &label)?;

    // Pass 1: rows per reason and the latest usable day.
    let checked = collect(&ctx, &plan::check_query(&lines), watch.as_mut(), 1).await?;
    let mut report = LoadReport::default();
    let mut last_day: Option<i32> = None;
    for batch in &checked {
        let reason = string_col(batch, 0);
        let n = int_col(batch, 1);
        let day = int_col(batch, 2);
        for i in 0..batch.num_rows() {
            let n = n[i].unwrap_or(0) as u64;
            report.rows_read += n;
            match &reason[i] {
                None => {
                    report.rows_used += n;
                    last_day = day[i].map(|d| d as i32);
                }
                Some(key) => {
                    let r = RejectReason::from_key(key).ok_or_else(|| {
                        Error::Cluster(format!("the plan gave an unknown reason {key:?}"))
                    })?;
                    report.rows_rejected += n;
                    *report.rejected_by_reason.entry(r).or_insert(0) += n;
                }
            }
        }
    }
    report.files = files
        .iter()
        .map(|f| {
            Ok(FileReport {
                path: f.display().to_string(),
                bytes: std::fs::metadata(f).map(|m| m.len()).unwrap_or(0),
                rows_read: crate::load::columnar_rows(f)?,
                rows_used: 0,
                rows_rejected: 0,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if report.rows_rejected > 0 && matches!(opts.on_bad_rows, BadRowPolicy::Error) {
        let reasons: Vec<String> = report
            .rejected_by_reason
            .iter()
            .map(|(r, n)| format!("{}: {n}", r.describe()))
            .collect();
        return Err(Error::input(
            label,
            format!(
                "{} of {} rows are bad ({}); the cluster cannot name their lines: run \
                 `custvalue validate` on these files to see each one, or pass \
                 --on-bad-rows skip to leave them out",
                report.rows_rejected,
                report.rows_read,
                reasons.join(", ")
            ),
        ));
    }
    report.as_of_given = opts.as_of.is_some();
    report.as_of = match (opts.as_of, last_day) {
        (Some(a), _) => a,
        (None, Some(d)) => d + 1,
        (None, None) => {
            return Err(crate::load::no_usable_rows(
                files,
                report.rows_read,
                report.rows_rejected,
            ));
        }
    };

    // Pass 2: the per-customer aggregate, handed over as a Parquet file.
    let start = report.as_of - settings.best.window_days as i32;
    let sql = plan::aggregate_query(&lines, report.as_of, start);
    let batches = collect(&ctx, &sql, watch.as_mut(), 2).await?;
    write_handoff(handoff, &batches)?;
    Ok((report, lines.id_kind))
}

/// Runs a query; on a cluster, watching its job (`pass` of the plan's two).
async fn collect(
    ctx: &SessionContext,
    sql: &str,
    watch: Option<&mut Watch<'_>>,
    pass: usize,
) -> Result<Vec<RecordBatch>> {
    let df = ctx.sql(sql).await.map_err(df_error)?;
    let Some(watch) = watch else {
        return df.collect().await.map_err(df_error);
    };
    let work = df.collect();
    tokio::pin!(work);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut job = JobSeen::new();
    loop {
        tokio::select! {
            done = &mut work => {
                if done.is_ok() {
                    // The job's last word, so that even a short pass is told.
                    let _ = watch.check(pass, &mut job).await;
                }
                watch.done.extend(job.id);
                return done.map_err(df_error);
            }
            _ = tick.tick() => watch.check(pass, &mut job).await?,
        }
    }
}

/// The passes of the plan: the rows checked, then the customers aggregated.
const PASSES: usize = 2;

/// Watches a cluster job through the scheduler's status: executors before it starts,
/// progress and stalls while it runs.
struct Watch<'a> {
    scheduler: status::Scheduler,
    url: String,
    limits: JobLimits,
    /// The Ballista job name of this run's jobs, unique to it.
    job_name: String,
    /// Jobs of passes already done.
    done: Vec<String>,
    progress: &'a mut dyn FnMut(&str),
}

/// What the watcher last saw of the current pass's job.
struct JobSeen {
    id: Option<String>,
    /// (stages done, tasks done) and when they last changed.
    last: Option<(usize, usize)>,
    since: Instant,
}

impl JobSeen {
    fn new() -> JobSeen {
        JobSeen {
            id: None,
            last: None,
            since: Instant::now(),
        }
    }
}

impl<'a> Watch<'a> {
    fn new(url: &str, limits: &JobLimits, progress: &'a mut dyn FnMut(&str)) -> Result<Watch<'a>> {
        let mut scheduler = status::Scheduler::from_url(url).ok_or_else(|| {
            Error::Usage(format!(
                "scheduler {url:?}: give the scheduler as host:port or df://host:port"
            ))
        })?;
        scheduler.limit = Duration::from_secs(3);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Ok(Watch {
            scheduler,
            url: url.to_string(),
            limits: limits.clone(),
            job_name: format!("custvalue segments {}-{nanos}", std::process::id()),
            done: Vec::new(),
            progress,
        })
    }

    /// Returns once the scheduler has a live executor (or does not say how many it
    /// has); gives up after the wait for executors.
    async fn wait_for_executors(&mut self) -> Result<()> {
        let started = Instant::now();
        let mut told = false;
        loop {
            match self.scheduler.live_executors().await {
                Err(why) => return Err(Error::Cluster(format!("{UNREACHABLE}: {}", why.0))),
                Ok(Some(0)) => {}
                Ok(_) => return Ok(()),
            }
            let waited = started.elapsed();
            if waited >= self.limits.wait_for_executors {
                return Err(Error::Cluster(format!(
                    "the Ballista scheduler at {} has no executor: none registered within \
                     {} s. Start one on a machine that can read the input files, \
                     `custvalue cluster executor --scheduler {}`, or allow a longer wait \
                     for executors",
                    self.url,
                    waited.as_secs(),
                    self.scheduler
                )));
            }
            if !told {
                (self.progress)(&format!(
                    "waiting up to {} s for an executor to register with the scheduler at {}",
                    self.limits.wait_for_executors.as_secs(),
                    self.url
                ));
                told = true;
            }
            let left = self.limits.wait_for_executors - waited;
            tokio::time::sleep(left.min(Duration::from_millis(250))).await;
        }
    }

    /// Reads this pass's job from the scheduler: tells its progress when it changes,
    /// and fails when it has run without finishing a task for the stall timeout. A
    /// scheduler that does not list jobs, or their tasks, is not judged.
    async fn check(&mut self, pass: usize, seen: &mut JobSeen) -> Result<()> {
        let Ok(Some(jobs)) = self.scheduler.jobs().await else {
            seen.since = Instant::now();
            return Ok(());
        };
        let mine = jobs
            .into_iter()
            .filter(|j| j.name == self.job_name && !self.done.contains(&j.id))
            .max_by_key(|j| j.is_active());
        let Some(job) = mine else {
            seen.since = Instant::now();
            return Ok(());
        };
        seen.id = Some(job.id.clone());
        let key = (job.stages_done, job.tasks.map_or(0, |t| t.0));
        if seen.last != Some(key) || job.status != "Running" {
            if seen.last != Some(key) {
                (self.progress)(&format!(
                    "pass {pass} of {PASSES}: job {} {}, {}",
                    job.id,
                    job.status.to_lowercase(),
                    job.progress()
                ));
            }
            seen.last = Some(key);
            seen.since = Instant::now();
            return Ok(());
        }
        let still = seen.since.elapsed();
        if job.tasks.is_none() || still < self.limits.stall_timeout {
            return Ok(());
        }
        let executors = self.scheduler.executors_sentence().await;
        cancel(&self.scheduler, &job.id).await;
        Err(Error::Cluster(format!(
            "the cluster job {} (pass {pass} of {PASSES}) finished no task for {} s ({}): \
             stalled, so it was cancelled. The scheduler at {} knows these executors: {}. \
             Check that they are running and can read the input files at the same path, \
             or allow the job more time without progress (the stall timeout)",
            job.id,
            still.as_secs(),
            job.progress(),
            self.url,
            executors
        )))
    }
}

/// Asks the scheduler to cancel a job; a failure only leaves the job to the scheduler.
async fn cancel(scheduler: &status::Scheduler, job_id: &str) {
    use ballista_core::serde::protobuf::CancelJobParams;
    use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
    let ask = async {
        let mut client = SchedulerGrpcClient::connect(format!("http://{scheduler}"))
            .await
            .ok()?;
        client
            .cancel_job(CancelJobParams {
                job_id: job_id.to_string(),
            })
            .await
            .ok()
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), ask).await;
}

fn write_handoff(path: &Path, batches: &[RecordBatch]) -> Result<()> {
    let Some(first) = batches.first() else {
        return Err(Error::Cluster("the cluster returned no customers".into()));
    };
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    let mut writer = ArrowWriter::try_new(file, first.schema(), None)
        .map_err(|e| Error::Cluster(format!("writing the hand-over file: {e}")))?;
    for b in batches {
        writer
            .write(b)
            .map_err(|e| Error::Cluster(format!("writing the hand-over file: {e}")))?;
    }
    writer
        .close()
        .map_err(|e| Error::Cluster(format!("writing the hand-over file: {e}")))?;
    Ok(())
}

fn string_col(batch: &RecordBatch, i: usize) -> Vec<Option<String>> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::DataType;
    let a = cast(batch.column(i), &DataType::Utf8).expect("text column");
    let s = a.as_string::<i32>();
    (0..s.len())
        .map(|k| (!s.is_null(k)).then(|| s.value(k).to_string()))
        .collect()
}

fn int_col(batch: &RecordBatch, i: usize) -> Vec<Option<i64>> {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::{DataType, Int64Type};
    let a = cast(batch.column(i), &DataType::Int64).expect("integer column");
    let v = a.as_primitive::<Int64Type>();
    (0..v.len())
        .map(|k| (!v.is_null(k)).then(|| v.value(k)))
        .collect()
}

/// Reads the hand-over file with polars and runs the local steps.
pub fn segmentation_from_aggregate(
    path: &Path,
    id_kind: IdKind,
    report: &LoadReport,
    opts: &LoadOptions,
    settings: &AnalysisSettings,
) -> Result<Segmentation> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let frame = ParquetReader::new(file).finish()?;
    let per = PerCustomer::from_frame(&frame, id_kind)?;
    per.segment(report.as_of, opts.currency_decimals, settings)
}

/// The cluster's per-customer table, sorted into customer-id order.
struct PerCustomer {
    ids: CustomerIds,
    first: Vec<Option<i32>>,
    last: Vec<Option<i32>>,
    frequency: Vec<u32>,
    monetary: Vec<i64>,
    profit: Vec<i64>,
    n_categories: Vec<u32>,
    window: Vec<(i64, u32, u32)>,
    /// The distinct purchase day before the last one.
    previous: Vec<Option<i32>>,
    /// Bought categories (names) per customer.
    bought: Vec<Vec<String>>,
}

fn i64s(frame: &DataFrame, name: &str) -> Result<Vec<Option<i64>>> {
    let s = frame.column(name)?.cast(&DataType::Int64)?;
    Ok(s.as_materialized_series().i64()?.iter().collect())
}

/// The values of a list column per row (empty for a null list).
fn lists<T>(
    frame: &DataFrame,
    name: &str,
    inner: &DataType,
    get: impl Fn(&Series) -> Result<Vec<Option<T>>>,
) -> Result<Vec<Vec<T>>> {
    let col = frame.column(name)?.as_materialized_series().rechunk();
    let list = col.list()?;
    let null: Vec<bool> = list.is_null().iter().map(|b| b.unwrap_or(true)).collect();
    let (values, offsets) = list.explode_and_offsets(ExplodeOptions {
        empty_as_null: false,
        keep_nulls: false,
    })?;
    let mut values = get(&values.cast(inner)?)?;
    let offsets = offsets.as_slice();
    let base = offsets.first().copied().unwrap_or(0);
    let mut out = Vec::with_capacity(null.len());
    for (row, &is_null) in null.iter().enumerate() {
        let (a, b) = (
            (offsets[row] - base) as usize,
            (offsets[row + 1] - base) as usize,
        );
        out.push(if is_null {
            Vec::new()
        } else {
            values[a..b].iter_mut().filter_map(Option::take).collect()
        });
    }
    Ok(out)
}

impl PerCustomer {
    fn from_frame(frame: &DataFrame, id_kind: IdKind) -> Result<PerCustomer> {
        let n = frame.height();
        let ids = match id_kind {
            IdKind::Int => CustomerIds::Int(
                i64s(frame, "cid")?
                    .into_iter()
                    .map(|v| v.ok_or_else(|| Error::Cluster("a null customer id came back".into())))
                    .collect::<Result<_>>()?,
            ),
            IdKind::Text => {
                let s = frame.column("cid")?.cast(&DataType::String)?;
                CustomerIds::Text(
                    s.as_materialized_series()
                        .str()?
                        .iter()
                        .map(|v| {
                            v.ok_or_else(|| Error::Cluster("a null customer id came back".into()))
                        })
                        .collect::<Result<_>>()?,
                )
            }
        };
        let mut order: Vec<usize> = (0..n).collect();
        match &ids {
            CustomerIds::Int(v) => order.sort_unstable_by_key(|&i| v[i]),
            CustomerIds::Text(v) => {
                order.sort_unstable_by(|&a, &b| v[a].as_bytes().cmp(v[b].as_bytes()))
            }
        }
        let pick =
            |v: Vec<Option<i64>>| -> Vec<Option<i64>> { order.iter().map(|&i| v[i]).collect() };
        let day = |v: Vec<Option<i64>>| -> Vec<Option<i32>> {
            pick(v).into_iter().map(|d| d.map(|d| d as i32)).collect()
        };
        let count = |v: Vec<Option<i64>>| -> Vec<u32> {
            pick(v).into_iter().map(|c| c.unwrap_or(0) as u32).collect()
        };
        let sum = |v: Vec<Option<i64>>| -> Vec<i64> {
            pick(v).into_iter().map(|c| c.unwrap_or(0)).collect()
        };
        let ids = match ids {
            CustomerIds::Int(v) => CustomerIds::Int(order.iter().map(|&i| v[i]).collect()),
            CustomerIds::Text(v) => CustomerIds::Text(v.select(order.iter().copied())),
        };
        let days = lists(frame, "purchase_days", &DataType::Int64, |s| {
            Ok(s.i64()?.iter().collect())
        })?;
        let cats = lists(frame, "categories", &DataType::String, |s| {
            Ok(s.str()?.iter().map(|v| v.map(str::to_string)).collect())
        })?;
        let previous = order
            .iter()
            .map(|&i| {
                let d = &days[i];
                let last = d.iter().max()?;
                d.iter().filter(|&x| x < last).max().map(|&x| x as i32)
            })
            .collect();
        let mut cats = cats;
        let bought = order
            .iter()
            .map(|&i| std::mem::take(&mut cats[i]))
            .collect();
        let spend = sum(i64s(frame, "window_spend")?);
        let wc = count(i64s(frame, "window_categories")?);
        let wo = count(i64s(frame, "window_orders")?);
        Ok(PerCustomer {
            ids,
            first: day(i64s(frame, "first_purchase")?),
            last: day(i64s(frame, "last_purchase")?),
            frequency: count(i64s(frame, "frequency")?),
            monetary: sum(i64s(frame, "monetary")?),
            profit: sum(i64s(frame, "profit")?),
            n_categories: count(i64s(frame, "n_categories")?),
            window: spend
                .into_iter()
                .zip(wc)
                .zip(wo)
                .map(|((s, c), o)| (s, c, o))
                .collect(),
            previous,
            bought,
        })
    }

    fn segment(
        self,
        as_of: i32,
        decimals: u32,
        settings: &AnalysisSettings,
    ) -> Result<Segmentation> {
        let n = self.ids.len();
        // Category codes in UTF-8 byte order, as the loader numbers them.
        let mut names: Vec<String> = self.bought.iter().flatten().cloned().collect();
        names.sort_unstable();
        names.dedup();
        let reactivated = (0..n)
            .map(|c| match (self.last[c], self.previous[c]) {
                (Some(l), Some(p)) => l - p > settings.lifecycle.reactivation_gap,
                _ => false,
            })
            .collect();
        let min_spend = best::min_spend_minor(&settings.best, decimals)?;
        let best: BestCustomers = best::classify(self.window, &settings.best, min_spend);
        let summary = Summary {
            ids: self.ids,
            as_of,
            currency_decimals: decimals,
            first_purchase: self.first,
            last_purchase: self.last,
            frequency: self.frequency,
            monetary: self.monetary,
            profit: self.profit,
            n_categories: self.n_categories,
        };
        // Affinity needs only who bought which category: one line per (customer,
        // category) with a positive amount stands in for the customer's lines.
        let mut offsets = Vec::with_capacity(n + 1);
        let mut category = Vec::new();
        offsets.push(0);
        for b in &self.bought {
            for name in b {
                let code = names.binary_search(name).map_or(NO_CATEGORY, |k| k as u32);
                category.push(code);
            }
            offsets.push(category.len());
        }
        let lines = category.len();
        let stand_in = Transactions {
            ids: summary.ids.clone(),
            offsets,
            day: vec![as_of - 1; lines],
            amount: vec![1; lines],
            profit: vec![0; lines],
            order: vec![0; lines],
            category,
            categories: names.clone(),
            currency_decimals: decimals,
            as_of,
        };
        let pairs = crate::affinity::affinity(&stand_in, &summary).pairs;
        let next = crate::affinity::next_category_codes(&stand_in, &summary, &pairs);
        drop(stand_in);
        crate::segments::score_summary(summary, settings, best, reactivated, (next, names))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A scheduler's status API that never moves on: one running job with 1 of 4 tasks
    /// done and one executor. Returns its port.
    fn frozen_scheduler(job_name: &'static str) -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let path = String::from_utf8_lossy(&request)
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("")
                    .to_string();
                let (code, body) = match path.as_str() {
                    "/readyz" => ("200 OK", "ready: 1 executors registered\n".to_string()),
                    "/api/jobs" => (
                        "200 OK",
                        format!(
                            r#"[{{"job_id":"j1","job_name":"{job_name}","status":"Running",
                                "num_stages":2,"completed_stages":0,"tasks":4,"tasks_done":1}}]"#
                        ),
                    ),
                    "/api/executors" => (
                        "200 OK",
                        r#"[{"id":"e1","host":"10.1.1.1","port":50051,"grpc_port":50052,
                            "last_seen":null,"specification":{"vcores":2}}]"#
                            .to_string(),
                    ),
                    _ => ("404 Not Found", String::new()),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {code}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        port
    }

    #[test]
    fn a_job_that_finishes_no_task_is_reported_stalled_with_the_executors() {
        let port = frozen_scheduler("frozen job");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let limits = JobLimits {
            wait_for_executors: Duration::ZERO,
            stall_timeout: Duration::from_millis(300),
        };
        let mut told = Vec::new();
        let mut progress = |t: &str| told.push(t.to_string());
        let err = runtime.block_on(async {
            let url = format!("df://127.0.0.1:{port}");
            let mut watch = Watch::new(&url, &limits, &mut progress).unwrap();
            watch.job_name = "frozen job".into();
            watch.wait_for_executors().await.unwrap();
            let mut seen = JobSeen::new();
            let start = Instant::now();
            loop {
                if let Err(e) = watch.check(2, &mut seen).await {
                    return e;
                }
                assert!(start.elapsed() < Duration::from_secs(30), "never stalled");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        assert_eq!(err.exit_code(), 3);
        let text = err.to_string();
        assert!(
            text.contains("job j1 (pass 2 of 2) finished no task"),
            "{text}"
        );
        assert!(text.contains("0 of 2 stages, 1 of 4 tasks done"), "{text}");
        assert!(
            text.contains("e1 at 10.1.1.1:50051 (grpc port 50052, 2 task slots"),
            "{text}"
        );
        assert!(text.contains(&format!("df://127.0.0.1:{port}")), "{text}");
        assert_eq!(
            told,
            ["pass 2 of 2: job j1 running, 0 of 2 stages, 1 of 4 tasks done"]
        );
    }
}

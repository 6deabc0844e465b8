//! The distributed engine (feature `distributed`): the cluster plan gives the local
//! engine's segment file byte for byte. The plan is checked in-process on tricky data
//! (ties in float money, whitespace ids, returns, lines without order or category, bad
//! rows), then on a real loopback cluster — a scheduler and two executors started as
//! separate processes — including an executor killed mid-job.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use custvalue::distributed::{ClusterOptions, Engine, segment_on_cluster};
use custvalue::polars::prelude::*;
use custvalue::{AnalysisSettings, BadRowPolicy, LoadOptions, load, segment};

use crate::common::{bin, path_str};

/// Lines that exercise every conversion the plan makes.
fn tricky_frame() -> DataFrame {
    let day = 86_400_000_000i64;
    let t = |d: i64, secs: i64| 19_700 * day + d * day + secs * 1_000_000;
    let rows: Vec<(
        Option<&str>,
        Option<i64>,
        Option<f64>,
        Option<&str>,
        Option<f64>,
        Option<&str>,
    )> = vec![
        // customer, ts (µs), amount, order, cost, category
        (
            Some("A"),
            Some(t(0, 10)),
            Some(1.005),
            Some("o1"),
            Some(0.5),
            Some("tea"),
        ),
        (
            Some(" A "),
            Some(t(0, 10)),
            Some(2.675),
            Some("o1"),
            None,
            Some(" coffee "),
        ),
        (
            Some("A"),
            Some(t(3, 0)),
            Some(-0.125),
            Some("o2"),
            Some(-0.1),
            Some("tea"),
        ),
        (Some("A"), Some(t(400, 5)), Some(10.0), None, None, None),
        (
            Some("A"),
            Some(t(400, 5)),
            Some(5.0),
            None,
            Some(1.0),
            Some(""),
        ),
        (
            Some("A"),
            Some(t(401, 0)),
            Some(0.015),
            Some(" "),
            None,
            Some("cake"),
        ),
        (
            Some("B"),
            Some(t(1, 0)),
            Some(-3.0),
            Some("r1"),
            Some(-1.0),
            Some("tea"),
        ),
        (
            Some("C"),
            Some(t(-800, 0) - 1),
            Some(99.995),
            Some("x"),
            Some(50.0),
            Some("cake"),
        ),
        (
            Some("C"),
            Some(t(380, 0)),
            Some(1e6 + 0.005),
            Some("y"),
            None,
            Some("tea"),
        ),
        (
            Some("C"),
            Some(t(381, 0)),
            Some(0.0),
            Some("z"),
            None,
            Some("coffee"),
        ),
        (
            Some("D"),
            Some(t(402, 0)),
            Some(12.5),
            Some("d1"),
            Some(2.0),
            Some("coffee"),
        ),
        (
            Some("D"),
            Some(t(402, 0)),
            Some(7.25),
            Some("d1"),
            Some(2.0),
            Some("tea"),
        ),
        (
            Some("E"),
            Some(t(100, 0)),
            Some(3.0),
            Some("e1"),
            None,
            Some("cake"),
        ),
        (
            Some("E"),
            Some(t(390, 0)),
            Some(4.0),
            Some("e2"),
            None,
            Some("tea"),
        ),
        (
            Some("E"),
            Some(t(395, 0)),
            Some(5.0),
            Some("e3"),
            None,
            Some("coffee"),
        ),
        // bad rows
        (None, Some(t(5, 0)), Some(1.0), Some("q"), None, None),
        (Some("  "), Some(t(5, 0)), Some(1.0), Some("q"), None, None),
        (Some("F"), None, Some(1.0), Some("q"), None, None),
        (Some("F"), Some(t(5, 0)), None, Some("q"), None, None),
        (
            Some("F"),
            Some(t(5, 0)),
            Some(f64::NAN),
            Some("q"),
            None,
            None,
        ),
        (
            Some("F"),
            Some(t(5, 0)),
            Some(f64::INFINITY),
            Some("q"),
            None,
            None,
        ),
        (
            Some("F"),
            Some(t(5, 0)),
            Some(1.0),
            Some("q"),
            Some(f64::NAN),
            None,
        ),
    ];
    let n = rows.len();
    DataFrame::new(
        n,
        vec![
            Column::new(
                "customer_id".into(),
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            ),
            Column::new("ts".into(), rows.iter().map(|r| r.1).collect::<Vec<_>>())
                .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
                .unwrap(),
            Column::new(
                "amount".into(),
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            ),
            Column::new(
                "order_id".into(),
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            ),
            Column::new("cost".into(), rows.iter().map(|r| r.4).collect::<Vec<_>>()),
            Column::new(
                "category".into(),
                rows.iter().map(|r| r.5).collect::<Vec<_>>(),
            ),
        ],
    )
    .unwrap()
}

fn write_parquet(path: &Path, frame: &mut DataFrame) {
    let file = std::fs::File::create(path).unwrap();
    ParquetWriter::new(file).finish(frame).unwrap();
}

fn in_process() -> ClusterOptions {
    ClusterOptions {
        engine: Engine::InProcess,
        partitions: 3,
        timeout: None,
    }
}

/// Asserts two segment frames are equal, naming the first column that differs.
fn assert_same(plan: &DataFrame, local: &DataFrame) {
    assert_eq!(plan.get_column_names(), local.get_column_names());
    for c in local.columns() {
        let p = plan.column(c.name()).unwrap();
        assert!(
            p.as_materialized_series()
                .equals_missing(c.as_materialized_series()),
            "column {}: plan {:?} local {:?}",
            c.name(),
            p.as_materialized_series(),
            c.as_materialized_series()
        );
    }
}

/// The segment frames of the local engine and of the plan, with both load reports.
fn both(opts: &LoadOptions, settings: &AnalysisSettings) -> (DataFrame, DataFrame, String, String) {
    let loaded = load(opts).unwrap();
    let local = segment(&loaded.transactions, settings).unwrap();
    let plan = segment_on_cluster(opts, settings, &in_process()).unwrap();
    let counts = |r: &custvalue::LoadReport| {
        format!(
            "{} {} {} {:?} {}",
            r.rows_read, r.rows_used, r.rows_rejected, r.rejected_by_reason, r.as_of
        )
    };
    (
        local.to_frame().unwrap(),
        plan.segmentation.to_frame().unwrap(),
        counts(&loaded.report),
        counts(&plan.report),
    )
}

#[test]
fn the_plan_equals_the_local_engine_on_tricky_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("tricky.parquet");
    write_parquet(&path, &mut tricky_frame());
    let mut opts = LoadOptions::new([path_str(&path)]);
    opts.on_bad_rows = BadRowPolicy::Skip;
    opts.margin = custvalue::money::Ratio::parse("0.35").unwrap();
    let mut settings = AnalysisSettings::default();
    settings.best.min_spend = 10.0;
    settings.best.min_categories = 2;
    settings.best.min_orders = 2;
    settings.lifecycle.reactivation_gap = 300;
    let (local, plan, local_report, plan_report) = both(&opts, &settings);
    assert_eq!(plan_report, local_report);
    assert!(local_report.starts_with("22 15 7 "), "{local_report}");
    assert_same(&plan, &local);
    // Hand-checked figures: A's ties round half away from zero from the decimal text.
    let monetary = local
        .column("monetary")
        .unwrap()
        .f64()
        .unwrap()
        .get(0)
        .unwrap();
    assert!((monetary - (1.01 + 2.68 - 0.13 + 10.0 + 5.0 + 0.02)).abs() < 1e-9);
    // Someone is reactivated (C: 1,180 days between purchases) and someone is best.
    assert!(local.column("reactivated").unwrap().bool().unwrap().any());
    assert!(local.column("best_customer").unwrap().bool().unwrap().any());

    // With a given as-of date, later lines are rejected for that reason on both sides.
    opts.as_of = Some(19_700 + 401);
    let (local, plan, local_report, plan_report) = both(&opts, &settings);
    assert_eq!(plan_report, local_report);
    assert!(plan_report.contains("AfterAsOf: 2"), "{plan_report}");
    assert_same(&plan, &local);
}

#[test]
fn the_plan_equals_the_local_engine_on_generated_data_and_integer_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("tx.parquet");
    bin()
        .args([
            "synth",
            "--rows",
            "60000",
            "--seed",
            "11",
            "--out",
            path_str(&path),
        ])
        .assert()
        .success();
    let opts = LoadOptions::new([path_str(&path)]);
    let settings = AnalysisSettings::default();
    let (local, plan, local_report, plan_report) = both(&opts, &settings);
    assert_eq!(plan_report, local_report);
    assert_same(&plan, &local);
    assert!(local.height() > 5000);

    // Integer ids order numerically (10 after 9), on both sides.
    let mut frame = ParquetReader::new(std::fs::File::open(&path).unwrap())
        .finish()
        .unwrap();
    let ids: Vec<i64> = frame
        .column("customer_id")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.unwrap().trim_start_matches('C').parse::<i64>().unwrap() % 997)
        .collect();
    frame
        .with_column(Column::new("customer_id".into(), ids))
        .unwrap();
    let ints = tmp.path().join("ints.parquet");
    write_parquet(&ints, &mut frame);
    let opts = LoadOptions::new([path_str(&ints)]);
    let (local, plan, local_report, plan_report) = both(&opts, &settings);
    assert_eq!(plan_report, local_report);
    assert_eq!(
        local.column("customer_id").unwrap().dtype(),
        &DataType::Int64
    );
    assert_same(&plan, &local);
}

#[test]
fn bad_rows_stop_the_plan_with_counts_and_quarantine_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("tricky.parquet");
    write_parquet(&path, &mut tricky_frame());
    let opts = LoadOptions::new([path_str(&path)]);
    let err = segment_on_cluster(&opts, &AnalysisSettings::default(), &in_process()).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    let text = err.to_string();
    assert!(text.contains("7 of 22 rows are bad"), "{text}");
    assert!(text.contains("missing customer id: 2"), "{text}");
    assert!(text.contains("custvalue validate"), "{text}");

    let mut opts = LoadOptions::new([path_str(&path)]);
    opts.on_bad_rows = BadRowPolicy::Quarantine(tmp.path().join("q.csv"));
    let err = segment_on_cluster(&opts, &AnalysisSettings::default(), &in_process()).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(!tmp.path().join("q.csv").exists());

    // CSV inputs are refused up front, naming the file.
    let csv = tmp.path().join("tx.csv");
    std::fs::write(&csv, "customer_id,ts,amount\nA,2024-01-01,1\n").unwrap();
    let err = segment_on_cluster(
        &LoadOptions::new([path_str(&csv)]),
        &AnalysisSettings::default(),
        &in_process(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("tx.csv"), "{err}");
}

// ---------------------------------------------------------------------------------------
// A real loopback cluster: separate processes of this binary.

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, within: Duration) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < within, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process killed when dropped, so a failed test leaves no cluster behind.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn exe() -> PathBuf {
    assert_cmd::cargo::cargo_bin("custvalue")
}

struct Cluster {
    scheduler_port: u16,
    _scheduler: Proc,
    executors: Vec<Proc>,
    _one_at_a_time: std::sync::MutexGuard<'static, ()>,
}

/// One loopback cluster at a time: several at once on two cores starve each other.
static CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn start_cluster(dir: &Path, executors: usize) -> Cluster {
    let guard = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let sp = free_port();
    let log = |name: &str| std::fs::File::create(dir.join(name)).unwrap();
    let scheduler = Proc(
        Command::new(exe())
            .args(["cluster", "scheduler", "--port", &sp.to_string()])
            .args(["--executor-timeout", "6"])
            .stdout(log("scheduler.log"))
            .stderr(log("scheduler.err"))
            .spawn()
            .unwrap(),
    );
    wait_for_port(sp, Duration::from_secs(30));
    let mut procs = Vec::new();
    for k in 0..executors {
        let (port, grpc) = (free_port(), free_port());
        let work = dir.join(format!("work-{k}"));
        std::fs::create_dir_all(&work).unwrap();
        procs.push(Proc(
            Command::new(exe())
                .args([
                    "cluster",
                    "executor",
                    "--scheduler",
                    &format!("localhost:{sp}"),
                ])
                .args([
                    "--port",
                    &port.to_string(),
                    "--grpc-port",
                    &grpc.to_string(),
                ])
                .args(["--concurrency", "2", "--heartbeat", "2"])
                .args(["--work-dir", path_str(&work)])
                .stdout(log(&format!("executor-{k}.log")))
                .stderr(log(&format!("executor-{k}.err")))
                .stdin(Stdio::null())
                .spawn()
                .unwrap(),
        ));
        wait_for_port(port, Duration::from_secs(30));
    }
    // Executors register on their first heartbeat.
    std::thread::sleep(Duration::from_secs(3));
    // A file in a work directory marks a task that ran there (see
    // first_with_shuffle_output), so none may be there before a job.
    for k in 0..executors {
        let work = dir.join(format!("work-{k}"));
        assert!(
            !holds_a_file(&work),
            "{} holds files before any job",
            work.display()
        );
    }
    Cluster {
        scheduler_port: sp,
        _scheduler: scheduler,
        executors: procs,
        _one_at_a_time: guard,
    }
}

/// Generated lines in three Parquet files.
fn lake(dir: &Path, rows: u64) -> Vec<String> {
    let mut files = Vec::new();
    for k in 0..3u64 {
        let path = dir.join(format!("part-{k}.parquet"));
        bin()
            .args([
                "synth",
                "--rows",
                &rows.to_string(),
                "--seed",
                &(20 + k).to_string(),
            ])
            .args(["--out", path_str(&path)])
            .assert()
            .success();
        files.push(path_str(&path).to_string());
    }
    files
}

fn segments_cmd(inputs: &[String], out: &Path) -> assert_cmd::Command {
    let mut cmd = bin();
    cmd.arg("segments");
    for i in inputs {
        cmd.args(["--input", i]);
    }
    cmd.args(["--out", path_str(out)]);
    cmd
}

#[test]
fn a_loopback_cluster_gives_the_local_files_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let inputs = lake(dir, 40_000);
    let cluster = start_cluster(dir, 2);
    let url = format!("df://localhost:{}", cluster.scheduler_port);
    for ext in ["csv", "parquet"] {
        let local = dir.join(format!("local.{ext}"));
        segments_cmd(&inputs, &local).assert().success();
        let remote = dir.join(format!("cluster.{ext}"));
        let assert = segments_cmd(&inputs, &remote)
            .args([
                "--engine",
                "ballista",
                "--scheduler",
                &url,
                "--cluster-partitions",
                "4",
            ])
            .timeout(Duration::from_secs(300))
            .assert();
        let out = assert.get_output();
        assert!(
            out.status.success(),
            "cluster run failed: {}\nscheduler log: {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(dir.join("scheduler.log")).unwrap_or_default()
        );
        assert!(
            std::fs::read(&remote).unwrap() == std::fs::read(&local).unwrap(),
            "the {ext} segment file from the cluster differs from the local one"
        );
    }

    // A nightly run with [run] engine = "ballista" writes the same segment file.
    let config = dir.join("nightly.toml");
    let quoted: Vec<String> = inputs.iter().map(|i| format!("{i:?}")).collect();
    std::fs::write(
        &config,
        format!(
            "[input]\nfiles = [{}]\n[run]\noutput_dir = {:?}\nsegments_format = \"csv\"\n\
             engine = \"ballista\"\nscheduler = {url:?}\n",
            quoted.join(", "),
            path_str(&dir.join("runs"))
        ),
    )
    .unwrap();
    bin()
        .args(["run", "--config", path_str(&config)])
        .timeout(Duration::from_secs(300))
        .assert()
        .success();
    let latest = dir.join("runs/latest/segments.csv");
    assert!(std::fs::read(latest).unwrap() == std::fs::read(dir.join("local.csv")).unwrap());
    assert!(!dir.join("runs/latest/report.html").exists());
    drop(cluster.executors);
}

/// Waits until one of the cluster's executors has begun writing shuffle output (a task of
/// the job ran there) and returns which; fails when `job` ends first.
fn first_with_shuffle_output(dir: &Path, executors: usize, job: &mut Child) -> usize {
    let start = Instant::now();
    loop {
        if let Some(k) = (0..executors).find(|k| holds_a_file(&dir.join(format!("work-{k}")))) {
            return k;
        }
        assert!(
            job.try_wait().unwrap().is_none(),
            "the job ended before any executor wrote shuffle output: nothing would be lost"
        );
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no executor wrote shuffle output within 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether `dir` or a directory below it holds a file.
fn holds_a_file(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let path = e.path();
            if path.is_dir() {
                holds_a_file(&path)
            } else {
                path.is_file()
            }
        })
    })
}

#[test]
fn a_lost_executor_gives_a_correct_result_or_a_clean_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let inputs = lake(dir, 400_000);
    let local = dir.join("local.csv");
    segments_cmd(&inputs, &local).assert().success();
    let mut cluster = start_cluster(dir, 2);
    let url = format!("df://localhost:{}", cluster.scheduler_port);
    let remote = dir.join("cluster.csv");
    let mut job = Command::new(exe())
        .arg("segments")
        .args(
            inputs
                .iter()
                .flat_map(|i| ["--input".to_string(), i.clone()]),
        )
        .args([
            "--out",
            path_str(&remote),
            "--engine",
            "ballista",
            "--scheduler",
            &url,
        ])
        .args([
            "--cluster-partitions",
            "8",
            "--cluster-timeout",
            "90",
            "--quiet",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill at a point the job is known to have reached: an executor has begun writing
    // this job's shuffle output into its work directory (a task of the job ran there).
    // That executor is the one killed, so its work is lost whatever happens next.
    let start = Instant::now();
    let busy = first_with_shuffle_output(dir, cluster.executors.len(), &mut job);
    let mut lost = cluster.executors.remove(busy);
    assert!(
        job.try_wait().unwrap().is_none(),
        "the job ended before the executor was killed: nothing would be lost"
    );
    lost.0.kill().unwrap();
    eprintln!(
        "lost executor: executor {busy} killed {:.2} s after the job started, once it held shuffle output",
        start.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    let status = loop {
        if let Some(s) = job.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(300) {
            let _ = job.kill();
            panic!("the job neither finished nor failed within 5 minutes of losing an executor");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(job.stderr.as_mut().unwrap(), &mut err).unwrap();
    eprintln!(
        "lost executor: the job {} after {:.1} s",
        if status.success() {
            "succeeded"
        } else {
            "failed cleanly"
        },
        start.elapsed().as_secs_f64()
    );
    if status.success() {
        assert!(
            std::fs::read(&remote).unwrap() == std::fs::read(&local).unwrap(),
            "the job survived the lost executor but its output differs"
        );
    } else {
        assert_eq!(
            status.code(),
            Some(3),
            "a lost executor is a cluster failure: {err}"
        );
        assert!(!err.is_empty());
        assert!(!remote.exists(), "a failed job left a partial output");
        let leftovers: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("cluster.csv"))
            .collect();
        assert!(leftovers.is_empty(), "temporary output left behind");
    }
}

#[test]
fn an_unreachable_scheduler_is_exit_code_3_and_no_output() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = lake(tmp.path(), 2_000);
    let out = tmp.path().join("seg.csv");
    let port = free_port();
    segments_cmd(&inputs, &out)
        .args([
            "--engine",
            "ballista",
            "--scheduler",
            &format!("df://127.0.0.1:{port}"),
        ])
        .timeout(Duration::from_secs(120))
        .assert()
        .code(3)
        .stderr(predicates::str::contains("scheduler"));
    assert!(!out.exists());
    // Flags that go together are checked before anything runs.
    segments_cmd(&inputs, &out)
        .args(["--engine", "ballista"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--scheduler"));
}

#[test]
fn losing_every_executor_fails_cleanly_with_exit_code_3() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let inputs = lake(dir, 400_000);
    let cluster = start_cluster(dir, 2);
    let url = format!("df://localhost:{}", cluster.scheduler_port);
    let remote = dir.join("cluster.parquet");
    let mut job = Command::new(exe())
        .arg("segments")
        .args(
            inputs
                .iter()
                .flat_map(|i| ["--input".to_string(), i.clone()]),
        )
        .args([
            "--out",
            path_str(&remote),
            "--engine",
            "ballista",
            "--scheduler",
            &url,
        ])
        .args(["--quiet", "--cluster-timeout", "90"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Mid-job for certain: once an executor has shuffle output of the job.
    first_with_shuffle_output(dir, cluster.executors.len(), &mut job);
    assert!(job.try_wait().unwrap().is_none(), "the job ended first");
    drop(cluster.executors);
    let start = Instant::now();
    let out = job.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "every executor lost: exit {:?} after {:.1} s",
        out.status.code(),
        start.elapsed().as_secs_f64()
    );
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("cluster"), "{err}");
    assert!(!remote.exists(), "a failed job left an output");
}

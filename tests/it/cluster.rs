//! Cluster runs that say what is wrong, on loopback: an executor given a malformed or
//! unreachable scheduler, a job on a scheduler without executors, and `cluster status`
//! with none and with two executors. Every wait is bounded by a configured timeout or a
//! deadline polled against, never a fixed sleep.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{bin, path_str};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped, so a failed test leaves no cluster behind.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One loopback cluster at a time: several at once on two cores starve each other.
static CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    CLUSTER.lock().unwrap_or_else(|e| e.into_inner())
}

fn exe() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("custvalue")
}

fn log(dir: &Path, name: &str) -> std::fs::File {
    std::fs::File::create(dir.join(name)).unwrap()
}

/// A scheduler on a free port, once it accepts connections.
fn scheduler(dir: &Path) -> (Proc, u16) {
    let port = free_port();
    let child = Proc(
        Command::new(exe())
            .args(["cluster", "scheduler", "--port", &port.to_string()])
            .args(["--executor-timeout", "6"])
            .stdout(log(dir, "scheduler.log"))
            .stderr(log(dir, "scheduler.err"))
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the scheduler does not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, port)
}

fn executor(dir: &Path, k: usize, scheduler: &str) -> (Proc, u16) {
    let (port, grpc) = (free_port(), free_port());
    let work = dir.join(format!("work-{k}"));
    std::fs::create_dir_all(&work).unwrap();
    let child = Proc(
        Command::new(exe())
            .args(["cluster", "executor", "--scheduler", scheduler])
            .args(["--port", &port.to_string()])
            .args(["--grpc-port", &grpc.to_string()])
            .args(["--concurrency", "2", "--heartbeat", "2"])
            .args(["--connect-timeout", "60"])
            .args(["--work-dir", path_str(&work)])
            .stdout(log(dir, &format!("executor-{k}.log")))
            .stderr(log(dir, &format!("executor-{k}.err")))
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    (child, port)
}

fn status(scheduler: &str) -> assert_cmd::assert::Assert {
    bin()
        .args(["cluster", "status", "--scheduler", scheduler])
        .timeout(Duration::from_secs(60))
        .assert()
}

/// `cluster status` until `done` holds of its output, within a minute.
fn status_until(scheduler: &str, done: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let out = status(scheduler).success().get_output().stdout.clone();
        let text = String::from_utf8(out).unwrap();
        if done(&text) {
            return text;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "cluster status never got there:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn an_executor_refuses_a_malformed_scheduler_at_once() {
    for bad in [
        "http://127.0.0.1:50050",
        "df://localhost",
        "127.0.0.1",
        "df://127.0.0.1:0",
    ] {
        let start = Instant::now();
        bin()
            .args(["cluster", "executor", "--scheduler", bad])
            .timeout(Duration::from_secs(30))
            .assert()
            .code(2)
            .stderr(predicates::str::contains(format!("{bad:?}")))
            .stderr(predicates::str::contains("host:port or df://host:port"));
        assert!(start.elapsed() < Duration::from_secs(20), "{bad}");
    }
    // The same parser for every command.
    bin()
        .args(["cluster", "status", "--scheduler", "http://h:1"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("\"http://h:1\""));
}

#[test]
fn an_executor_without_a_scheduler_retries_then_exits_3_naming_it() {
    let port = free_port();
    for given in [
        format!("127.0.0.1:{port}"),
        format!("df://127.0.0.1:{port}"),
    ] {
        let start = Instant::now();
        let assert = bin()
            .args(["cluster", "executor", "--scheduler", &given])
            .args(["--port", &free_port().to_string()])
            .args(["--grpc-port", &free_port().to_string()])
            .args(["--connect-timeout", "3"])
            .timeout(Duration::from_secs(60))
            .assert()
            .code(3);
        let err = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
        let address = format!("127.0.0.1:{port}");
        assert!(
            err.contains(&format!("cannot reach the scheduler at {address}")),
            "{err}"
        );
        assert!(err.contains("retrying in"), "{err}");
        assert!(
            err.contains(&format!(
                "no Ballista scheduler answered at {address} within 3 s"
            )),
            "{err}"
        );
        assert!(err.contains("custvalue cluster scheduler"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(30), "{given}");
    }
}

#[test]
fn a_job_on_a_scheduler_without_executors_fails_fast_saying_what_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let input = dir.join("tx.parquet");
    bin()
        .args([
            "synth",
            "--rows",
            "2000",
            "--seed",
            "3",
            "--out",
            path_str(&input),
        ])
        .assert()
        .success();
    let _one = one_at_a_time();
    let (_scheduler, port) = scheduler(dir);
    let out = dir.join("seg.csv");
    let start = Instant::now();
    let assert = bin()
        .args([
            "segments",
            "--input",
            path_str(&input),
            "--out",
            path_str(&out),
        ])
        .args([
            "--engine",
            "ballista",
            "--scheduler",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--wait-for-executors", "2"])
        .timeout(Duration::from_secs(120))
        .assert()
        .code(3);
    let err = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(
        err.contains(&format!(
            "the Ballista scheduler at df://127.0.0.1:{port} has no executor"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "custvalue cluster executor --scheduler 127.0.0.1:{port}"
        )),
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_secs(60));
    assert!(!out.exists());
}

#[test]
fn cluster_status_lists_no_executor_then_two_and_a_job_shows_progress() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Nothing listening: exit code 3, naming the address.
    let nobody = free_port();
    status(&format!("df://127.0.0.1:{nobody}"))
        .code(3)
        .stderr(predicates::str::contains(format!("127.0.0.1:{nobody}")));

    let input = dir.join("tx.parquet");
    bin()
        .args([
            "synth",
            "--rows",
            "20000",
            "--seed",
            "5",
            "--out",
            path_str(&input),
        ])
        .assert()
        .success();
    let _one = one_at_a_time();
    let (_scheduler, port) = scheduler(dir);
    let url = format!("df://127.0.0.1:{port}");
    let none = status_until(&url, |t| t.contains("0 live executors"));
    assert!(none.contains("no executor is registered"), "{none}");
    assert!(none.contains("no job is queued or running"), "{none}");

    let plain = format!("127.0.0.1:{port}");
    let (_e0, p0) = executor(dir, 0, &url);
    let (_e1, p1) = executor(dir, 1, &plain);
    let two = status_until(&plain, |t| t.contains("2 live executors"));
    for p in [p0, p1] {
        assert!(two.contains(&format!(" {p} ")), "executor port {p}:\n{two}");
    }
    let rows: Vec<&str> = two.lines().filter(|l| l.contains(" s ago")).collect();
    assert_eq!(rows.len(), 2, "{two}");
    assert!(rows.iter().all(|r| r.contains("127.0.0.1")), "{two}");
    assert!(two.contains("task slots"), "{two}");
    let executor_err = std::fs::read_to_string(dir.join("executor-0.err")).unwrap();
    assert!(
        executor_err.contains(&format!("registered with the scheduler at {plain}")),
        "{executor_err}"
    );

    // A job on it says how it gets on, from the scheduler's status.
    let out = dir.join("seg.csv");
    let assert = bin()
        .args([
            "segments",
            "--input",
            path_str(&input),
            "--out",
            path_str(&out),
        ])
        .args(["--engine", "ballista", "--scheduler", &plain])
        .args(["--stall-timeout", "120"])
        .timeout(Duration::from_secs(300))
        .assert();
    let output = assert.get_output();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{err}");
    assert!(err.contains("cluster: pass 1 of 2: job "), "{err}");
    assert!(out.exists());
}

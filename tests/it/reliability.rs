//! Reliability: outputs survive SIGKILL at any moment (atomic writes), every output is
//! byte-identical at any thread count and from run to run, and a bounded, seeded fuzz of
//! the CSV loader (library and binary) never panics and always accounts for every row.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use custvalue::{BadRowPolicy, LoadOptions};

use crate::common::{bin, fixture, path_str};

/// A small, seeded generator (SplitMix64): the same cases on every run and machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn binary() -> PathBuf {
    assert_cmd::cargo::cargo_bin("custvalue")
}

/// Runs the binary to completion; panics with its stderr unless it exits 0.
fn run_ok(args: &[&str]) -> Vec<u8> {
    let out = bin().args(args).output().expect("the binary runs");
    assert!(
        out.status.success(),
        "custvalue {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Names in `dir` that are temporaries of `target` (`.NAME.custvalue-tmp.*`).
fn temporaries(dir: &Path, target: &str) -> Vec<String> {
    let prefix = format!(".{target}.custvalue-tmp.");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    v.sort();
    v
}

#[test]
fn an_output_survives_sigkill_at_any_moment() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tx = d.join("tx.csv");
    let seg = d.join("seg.csv");
    run_ok(&[
        "-q",
        "synth",
        "--rows",
        "300000",
        "--seed",
        "3",
        "--out",
        path_str(&tx),
    ]);
    let args = [
        "-q",
        "segments",
        "--input",
        path_str(&tx),
        "--out",
        path_str(&seg),
    ];

    // The first output, and how long a run takes (the shortest of two runs; other tests
    // may run at the same time, so later rounds that finish lower it further).
    let mut run_time = Duration::MAX;
    for _ in 0..2 {
        let started = Instant::now();
        run_ok(&args);
        run_time = run_time.min(started.elapsed());
    }
    let first = std::fs::read(&seg).unwrap();
    assert!(first.len() > 1_000_000, "the segment file is large");

    let mut rng = Rng(0x5EED_0003);
    let rounds = 16;
    let (mut killed, mut finished, mut leftovers) = (0, 0, 0);
    let mut late_fraction = 0.85;
    for i in 0..rounds {
        // Half the kills spread over the whole run; the other half aim at its end, where
        // the output is written, fsynced and renamed: that aim moves later after a kill
        // that came before the temporary existed and earlier after a run that finished.
        let late = i % 2 == 1;
        let fraction = if late {
            late_fraction + 0.04 * (rng.unit() - 0.5)
        } else {
            (i as f64 + rng.unit()) / rounds as f64
        };
        let delay = run_time.mul_f64(fraction);
        let started = Instant::now();
        let mut child = Command::new(binary())
            .args(args)
            .env_remove("POLARS_MAX_THREADS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL; an error means it had already exited
        let status = child.wait().unwrap();
        {
            use std::os::unix::process::ExitStatusExt;
            match status.signal() {
                Some(9) => killed += 1,
                _ => {
                    assert!(status.success(), "round {i}: run ended with {status:?}");
                    finished += 1;
                    run_time = run_time.min(started.elapsed());
                }
            }
        }
        let now = std::fs::read(&seg)
            .unwrap_or_else(|e| panic!("round {i} (kill after {delay:?}): seg.csv is gone: {e}"));
        assert!(
            now == first,
            "round {i} (kill after {delay:?}): seg.csv differs from the first output ({} vs {} bytes)",
            now.len(),
            first.len()
        );
        let left = temporaries(d, "seg.csv").len();
        leftovers += left;
        if late {
            use std::os::unix::process::ExitStatusExt;
            if status.signal() != Some(9) {
                late_fraction -= 0.05;
            } else if left == 0 {
                late_fraction += 0.04;
            }
        }
    }
    eprintln!(
        "sigkill: run time {run_time:?}; {killed} killed, {finished} finished; {leftovers} kills left a temporary (killed while writing); late kills aimed at {late_fraction:.2} of the run"
    );
    assert!(
        killed >= rounds / 4,
        "too few runs were killed ({killed} of {rounds}) to test anything"
    );

    // The next normal run clears what killed runs left and writes the same bytes.
    run_ok(&args);
    assert_eq!(std::fs::read(&seg).unwrap(), first);
    assert_eq!(temporaries(d, "seg.csv"), Vec::<String>::new());
}

#[test]
fn every_output_is_identical_at_any_thread_count_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tx = d.join("tx.parquet");
    run_ok(&[
        "-q",
        "synth",
        "--rows",
        "60000",
        "--seed",
        "11",
        "--out",
        path_str(&tx),
    ]);
    let input = path_str(&tx).to_string();

    // (name, bytes) of every output file of one full job, and its stdout (the tables;
    // not quiet, so they are printed).
    let job = |threads: &str, tag: &str| -> Vec<(String, Vec<u8>)> {
        let p = |name: &str| d.join(format!("{tag}-{name}"));
        let mut got = Vec::new();
        let mut stdout = Vec::new();
        stdout.extend(run_ok(&[
            "--threads",
            threads,
            "segments",
            "--input",
            &input,
            "--out",
            path_str(&p("seg.parquet")),
        ]));
        stdout.extend(run_ok(&[
            "--threads",
            threads,
            "segments",
            "--input",
            &input,
            "--out",
            path_str(&p("seg.csv")),
        ]));
        stdout.extend(run_ok(&[
            "--threads",
            threads,
            "deciles",
            "--input",
            &input,
            "--out",
            path_str(&p("money.csv")),
            "--purchase-out",
            path_str(&p("purchase.csv")),
        ]));
        stdout.extend(run_ok(&[
            "--threads",
            threads,
            "profit",
            "--input",
            &input,
            "--out",
            path_str(&p("whale.csv")),
        ]));
        for name in [
            "seg.parquet",
            "seg.csv",
            "money.csv",
            "purchase.csv",
            "whale.csv",
        ] {
            got.push((name.to_string(), std::fs::read(p(name)).unwrap()));
        }
        got.push(("stdout".to_string(), stdout));
        got
    };

    let reference = job("1", "t1a");
    for (name, bytes) in &reference {
        assert!(bytes.len() > 50, "{name} is suspiciously small");
    }
    for (threads, tag) in [
        ("1", "t1b"),
        ("2", "t2a"),
        ("2", "t2b"),
        ("8", "t8a"),
        ("8", "t8b"),
    ] {
        let got = job(threads, tag);
        for ((name, want), (_, have)) in reference.iter().zip(&got) {
            assert!(
                want == have,
                "{name} at --threads {threads} ({tag}) differs from --threads 1"
            );
        }
    }
}

/// One seeded mutation of a valid CSV: byte flips, deletions, insertions of quotes,
/// commas, newlines, CR, 0xFF and other troublemakers, duplication, truncation.
fn mutate(base: &[u8], rng: &mut Rng) -> Vec<u8> {
    const NASTY: &[&[u8]] = &[
        b"\"",
        b",",
        b"\n",
        b"\r",
        b"\r\n",
        b"\xFF",
        b"\xC3",
        b"\xEF\xBB\xBF",
        b" ",
        b"-",
        b"e",
        b".",
        b"9",
        b"99999999999999999999",
        b"NaN",
        b"1e400",
        b"\0",
        b"2024-02-30",
        b"\"\"",
        b",,,,",
    ];
    let mut b = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = b.len().max(1);
        match rng.below(7) {
            0 if !b.is_empty() => {
                let p = rng.below(b.len());
                b[p] ^= 1 << rng.below(8);
            }
            1 if !b.is_empty() => {
                let p = rng.below(b.len());
                b[p] = rng.next() as u8;
            }
            2 if !b.is_empty() => {
                let p = rng.below(b.len());
                let n = 1 + rng.below(8).min(b.len() - p - 1);
                b.drain(p..(p + n).min(b.len()));
            }
            3 | 4 => {
                let p = rng.below(len);
                let what = NASTY[rng.below(NASTY.len())];
                let p = p.min(b.len());
                b.splice(p..p, what.iter().copied());
            }
            5 if !b.is_empty() => {
                let p = rng.below(b.len());
                b.truncate(p);
            }
            _ if !b.is_empty() => {
                // Duplicate a slice somewhere else.
                let p = rng.below(b.len());
                let n = rng.below(40).min(b.len() - p);
                let chunk = b[p..p + n].to_vec();
                let q = rng.below(b.len());
                b.splice(q..q, chunk);
            }
            _ => b.extend_from_slice(b"x"),
        }
    }
    b
}

/// Shows bytes for a failure message.
fn show(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// The counts of a "read N rows from 1 file: M used, K rejected" line.
fn headline(stderr: &str) -> Option<(u64, u64, u64)> {
    let line = stderr.lines().find(|l| l.starts_with("read "))?;
    let num = |s: &str| s.replace(',', "").parse::<u64>().ok();
    let words: Vec<&str> = line.split_whitespace().collect();
    let read = num(words.get(1)?)?;
    let colon = words.iter().position(|w| w.ends_with(':'))?;
    let used = num(words.get(colon + 1)?)?;
    let rejected = num(words.get(colon + 3)?)?;
    Some((read, used, rejected))
}

#[test]
fn fuzzed_csv_never_panics_and_every_row_is_counted() {
    // CUSTVALUE_FUZZ_CASES raises the number of library cases for a longer local hunt.
    let library_cases: usize = std::env::var("CUSTVALUE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    const BINARY_CASES: usize = 50;
    let base = std::fs::read(fixture("hand.csv")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let path = d.join("case.csv");
    let mut rng = Rng(0xF022_0500);
    let mut failures: Vec<String> = Vec::new();
    let (mut ok, mut err, mut with_rejections, mut phantoms) = (0, 0, 0, 0);
    let mut library_counts = Vec::new();

    for i in 0..library_cases {
        let bytes = mutate(&base, &mut rng);
        std::fs::write(&path, &bytes).unwrap();
        let mut opts = LoadOptions::new([path_str(&path)]);
        opts.on_bad_rows = BadRowPolicy::Skip;
        let result = catch_unwind(AssertUnwindSafe(|| {
            let loaded = custvalue::load(&opts)?;
            let summary = custvalue::summarize(&loaded.transactions);
            Ok::<_, custvalue::Error>((loaded, summary.map(|s| s.len())))
        }));
        match result {
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("case {i}: PANIC {msg:?} on {}", show(&bytes)));
                library_counts.push(None);
            }
            Ok(Err(e)) => {
                err += 1;
                let text = e.to_string();
                if e.exit_code() != 2 || !text.contains("case.csv") {
                    failures.push(format!(
                        "case {i}: error with exit code {} not naming the file: {text} on {}",
                        e.exit_code(),
                        show(&bytes)
                    ));
                }
                library_counts.push(None);
            }
            Ok(Ok((loaded, summary))) => {
                ok += 1;
                let r = &loaded.report;
                let t = &loaded.transactions;
                let file_sum: (u64, u64, u64) = r.files.iter().fold((0, 0, 0), |a, f| {
                    (a.0 + f.rows_read, a.1 + f.rows_used, a.2 + f.rows_rejected)
                });
                let by_reason: u64 = r.rejected_by_reason.values().sum();
                if r.rows_read != r.rows_used + r.rows_rejected
                    || file_sum != (r.rows_read, r.rows_used, r.rows_rejected)
                    || by_reason != r.rows_rejected
                    || r.rows_used as usize != t.n_lines()
                    || t.offsets.len() != t.n_customers() + 1
                    || t.offsets.last() != Some(&t.n_lines())
                    || t.offsets.windows(2).any(|w| w[0] > w[1])
                {
                    failures.push(format!(
                        "case {i}: accounting broken: read {} used {} rejected {} (by reason {by_reason}, files {file_sum:?}), {} lines, {} customers, offsets {:?} on {}",
                        r.rows_read,
                        r.rows_used,
                        r.rows_rejected,
                        t.n_lines(),
                        t.n_customers(),
                        t.offsets,
                        show(&bytes)
                    ));
                }
                if let Err(e) = summary
                    && e.exit_code() != 2
                {
                    failures.push(format!(
                        "case {i}: summarize failed with {e} on {}",
                        show(&bytes)
                    ));
                }
                if r.rows_rejected > 0 {
                    with_rejections += 1;
                }
                // Known bug: a rejected row still creates its customer (see the corpus
                // case rejected_rows_create_no_customers).
                if t.offsets.windows(2).any(|w| w[0] == w[1]) {
                    phantoms += 1;
                }
                library_counts.push(Some((r.rows_read, r.rows_used, r.rows_rejected)));
            }
        }
    }
    eprintln!(
        "fuzz (library): {library_cases} cases, {ok} loaded ({with_rejections} with rejected rows, {phantoms} with customers that have no used row), {err} errors"
    );

    // The first cases again, through the binary, under skip, error and quarantine: the
    // same counts as the library, exit 0 or 2, no panic, no stray files.
    let mut rng = Rng(0xF022_0500);
    let out = d.join("out.csv");
    let quarantine = d.join("rejected.csv");
    for i in 0..BINARY_CASES {
        let bytes = mutate(&base, &mut rng);
        std::fs::write(&path, &bytes).unwrap();
        let _ = std::fs::remove_file(&out);
        let _ = std::fs::remove_file(&quarantine);
        let policy = match i % 3 {
            0 => "skip".to_string(),
            1 => "error".to_string(),
            _ => format!("quarantine={}", quarantine.display()),
        };
        let run = bin()
            .current_dir(d)
            .args([
                "summary",
                "--input",
                path_str(&path),
                "--out",
                path_str(&out),
            ])
            .args(["--on-bad-rows", &policy])
            .timeout(Duration::from_secs(60))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        let code = run.status.code();
        let mut problem = |what: String| {
            failures.push(format!(
                "binary case {i} ({policy}): {what}; stderr: {stderr} on {}",
                show(&bytes)
            ))
        };
        if stderr.contains("panicked") || !matches!(code, Some(0) | Some(2)) {
            problem(format!("exit {code:?}"));
            continue;
        }
        let strays: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        if !strays.is_empty() {
            problem(format!("temporaries left: {strays:?}"));
        }
        if code == Some(0) {
            let Some((read, used, rejected)) = headline(&stderr) else {
                problem("no 'read N rows' line".into());
                continue;
            };
            if read != used + rejected {
                problem(format!("read {read} != used {used} + rejected {rejected}"));
            }
            if policy != "error" && library_counts[i] != Some((read, used, rejected)) {
                problem(format!(
                    "counts ({read}, {used}, {rejected}) differ from the library's {:?}",
                    library_counts[i]
                ));
            }
            if policy == "error" && rejected != 0 {
                problem("exit 0 under the error policy with rejected rows".into());
            }
            if !out.exists() {
                problem("exit 0 but no output".into());
            }
            if policy.starts_with("quarantine") {
                let n = std::fs::read(&quarantine)
                    .map(|q| {
                        csv::ReaderBuilder::new()
                            .from_reader(q.as_slice())
                            .records()
                            .count() as u64
                    })
                    .unwrap_or(u64::MAX);
                if n != rejected {
                    problem(format!(
                        "quarantine holds {n} rows, {rejected} were rejected"
                    ));
                }
            }
        } else {
            if !stderr.contains("error:") || !stderr.contains("case.csv") {
                problem("the error does not name the file".into());
            }
            if out.exists() || quarantine.exists() {
                problem("a failed run left an output or quarantine file".into());
            }
            if policy != "error" && library_counts[i].is_some() {
                problem(format!(
                    "the binary failed where the library loaded {:?}",
                    library_counts[i]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} fuzz failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        ok > library_cases / 4 && with_rejections > 20,
        "the mutations are too destructive to test accounting"
    );
    // A rejected row never creates a customer.
    assert_eq!(
        phantoms, 0,
        "fuzz cases produced customers without a used row"
    );
}

#[test]
fn outputs_are_readable_like_plain_files_and_keep_the_mode_they_replace() {
    // A nightly segment file is read by other users (the CRM job): a new output must be as
    // readable as a plain new file (not tempfile's private 0600), and replacing an output
    // keeps its mode.
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.csv");
    std::fs::write(&plain, b"x").unwrap();
    let plain_mode = std::fs::metadata(&plain).unwrap().permissions().mode() & 0o777;
    let input = fixture("hand.csv");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

    let fresh = dir.path().join("fresh.csv");
    run_ok(&[
        "-q",
        "summary",
        "--input",
        path_str(&input),
        "--out",
        path_str(&fresh),
    ]);
    assert_eq!(
        mode(&fresh) & 0o044,
        plain_mode & 0o044,
        "a new output has mode {:o}, a plain new file {plain_mode:o}",
        mode(&fresh)
    );

    let kept = dir.path().join("kept.csv");
    std::fs::write(&kept, b"old").unwrap();
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o640)).unwrap();
    run_ok(&[
        "-q",
        "summary",
        "--input",
        path_str(&input),
        "--out",
        path_str(&kept),
    ]);
    assert_ne!(std::fs::read(&kept).unwrap(), b"old");
    assert_eq!(mode(&kept), 0o640, "the replaced output's mode is kept");
}

//! Progress display: bars and spinners are drawn on stderr only when it is a terminal and
//! the run is not quiet; pipes, logs and stdout never see them.

use std::path::Path;
use std::process::Command;

use crate::common::{bin, fixture, path_str, sample, tool};

/// Signs of a drawn bar or spinner: escape sequences, carriage returns, braille spinner
/// frames and block bar cells.
fn drawn(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    text.contains(['\x1b', '\r'])
        || text.chars().any(|c| {
            ('\u{2800}'..='\u{28ff}').contains(&c) || ('\u{2580}'..='\u{259f}').contains(&c)
        })
}

/// Whether the load bar's message shows rows with thousands separators ("65,536 rows, ").
fn bar_rows(shown: &str) -> bool {
    shown.match_indices(" rows, ").any(|(at, _)| {
        let before = &shown.as_bytes()[..at];
        before.len() >= 4
            && before[before.len() - 4] == b','
            && before[before.len() - 3..].iter().all(u8::is_ascii_digit)
    })
}

/// A synthetic CSV big enough for several progress reports (64k rows apart).
fn synth_csv(dir: &Path) -> String {
    let csv = dir.join("tx.csv");
    let out = bin()
        .args(["-q", "synth", "--rows", "200000", "--seed", "5", "--out"])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path_str(&csv).to_string()
}

/// Commands with a load bar or a fit spinner.
fn commands(csv: &str) -> Vec<Vec<String>> {
    let cdnow = path_str(&sample("cdnow.csv")).to_string();
    let summary = path_str(&fixture("cdnow_summary.csv")).to_string();
    [
        vec!["summary", "--input", csv],
        vec!["deciles", "--input", csv, "--json"],
        vec![
            "ltv",
            "--input",
            &cdnow,
            "--time-col",
            "date",
            "--period",
            "week",
        ],
        vec![
            "fit",
            "--summary",
            &summary,
            "--model",
            "paretonbd",
            "--spend-col",
            "zbar",
        ],
    ]
    .iter()
    .map(|c| c.iter().map(|s| s.to_string()).collect())
    .collect()
}

#[test]
fn no_progress_reaches_pipes_and_quiet_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let csv = synth_csv(dir.path());
    for args in commands(&csv) {
        let out = bin().args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!drawn(&out.stdout), "{args:?} drew on stdout");
        assert!(
            !drawn(&out.stderr),
            "{args:?} drew on stderr: {:?}",
            String::from_utf8_lossy(&out.stderr)
        );
        if args[0] != "fit" {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.starts_with("read "), "{args:?}: {stderr}");
        }

        let quiet = bin().arg("--quiet").args(&args).output().unwrap();
        assert!(quiet.status.success());
        assert!(
            quiet.stderr.is_empty(),
            "{args:?} --quiet: {:?}",
            String::from_utf8_lossy(&quiet.stderr)
        );
        assert!(!drawn(&quiet.stdout), "{args:?} --quiet drew on stdout");
    }
}

/// Runs the binary with stderr on a pseudo-terminal (through util-linux `script`) and
/// stdout into a file; returns (what the terminal showed, stdout).
fn on_terminal(script: &Path, dir: &Path, args: &[String]) -> (Vec<u8>, Vec<u8>) {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let stdout = dir.join("stdout");
    let typescript = dir.join("typescript");
    let line = format!(
        "{} {} > {}",
        quote(path_str(&assert_cmd::cargo::cargo_bin("custvalue"))),
        args.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" "),
        quote(path_str(&stdout))
    );
    let status = Command::new(script)
        .args(["-q", "-e", "-c", &line])
        .arg(&typescript)
        .env("TERM", "xterm-256color")
        .env_remove("POLARS_MAX_THREADS")
        .output()
        .expect("script runs");
    assert!(status.status.success(), "{args:?} on a terminal failed");
    (
        std::fs::read(&typescript).unwrap(),
        std::fs::read(&stdout).unwrap(),
    )
}

#[test]
fn a_terminal_gets_bytes_rows_and_iterations_on_stderr_only() {
    let Some(script) = tool(
        &["script"],
        "progress drawn on a terminal (bars, rows, iterations on stderr only)",
        "apt-get install bsdutils, which has util-linux's `script`",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let csv = synth_csv(dir.path());
    let size = std::fs::metadata(&csv).unwrap().len();
    for args in commands(&csv) {
        let (shown, stdout) = on_terminal(&script, dir.path(), &args);
        let shown = String::from_utf8_lossy(&shown).into_owned();
        assert!(
            drawn(shown.as_bytes()),
            "{args:?} drew nothing on a terminal"
        );
        assert!(!drawn(&stdout), "{args:?} drew on stdout");
        match args[0].as_str() {
            "fit" => assert!(shown.contains(", log-likelihood -"), "{shown}"),
            "ltv" => assert!(shown.contains("reading"), "{shown}"),
            _ => {
                assert!(shown.contains("reading"), "{shown}");
                assert!(size > 1 << 20 && shown.contains(" MiB/"), "{shown}");
                assert!(bar_rows(&shown), "no row count with separators: {shown}");
            }
        }

        let mut quiet = vec!["--quiet".to_string()];
        quiet.extend(args.iter().cloned());
        let (shown, _) = on_terminal(&script, dir.path(), &quiet);
        assert!(
            !drawn(&shown),
            "{args:?} --quiet drew: {:?}",
            String::from_utf8_lossy(&shown)
        );
    }
}

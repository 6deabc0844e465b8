//! The bad-input corpus: every file in tests/bad-inputs/ run through the real binary, with
//! the exact outcome each case of tests/bad-inputs/cases.toml describes (exit code, the
//! message naming file, line, column and value, no output and no stray temporary file on
//! failure, every row accounted for under skip and quarantine, no panic).
//!
//! A case marked `known_bug` fails today because of a bug in src/: it is reported on
//! stderr and does not fail the suite, but a known-bug case that passes fails the suite so
//! the mark gets removed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde::Deserialize;

use crate::common::{bin, not_checked, tool};

/// The corpus directory.
fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-inputs")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    inputs: Vec<String>,
    #[serde(default = "summary")]
    command: String,
    #[serde(default)]
    args: Vec<String>,
    out: Option<String>,
    exit: i32,
    #[serde(default)]
    stderr: Vec<String>,
    names_file: Option<String>,
    /// Further files the message must name.
    #[serde(default)]
    also_names: Vec<String>,
    row: Option<RowFault>,
    rows: Option<Counts>,
    #[serde(default)]
    rejected: Vec<Rejected>,
    #[serde(default)]
    output: Vec<String>,
    #[serde(default)]
    output_absent: Vec<String>,
    #[serde(default)]
    copy_inputs: bool,
    setup: Option<String>,
    known_bug: Option<String>,
}

fn summary() -> String {
    "summary".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RowFault {
    #[serde(default = "line")]
    place: String,
    line: u64,
    column: String,
    value: Option<String>,
}

fn line() -> String {
    "line".into()
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct Counts {
    read: u64,
    used: u64,
    rejected: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rejected {
    line: u64,
    column: String,
    /// The reason key; unchecked when absent (for a known bug whose key is not decided).
    reason: Option<String>,
    value: Option<String>,
}

/// Stderr shortened for a report line: no backtrace, at most 300 characters.
fn brief(stderr: &str) -> String {
    let text = stderr
        .lines()
        .filter(|l| {
            !l.trim_start().starts_with(|c: char| c.is_ascii_digit())
                && !l.starts_with("note:")
                && !l.starts_with("stack backtrace")
                && !l.trim().is_empty()
        })
        .collect::<Vec<_>>()
        .join(" | ");
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

fn manifest() -> Manifest {
    let text = std::fs::read_to_string(corpus().join("cases.toml")).expect("cases.toml exists");
    toml::from_str(&text).unwrap_or_else(|e| panic!("tests/bad-inputs/cases.toml: {e}"))
}

/// Which bad-row policy a run uses.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Policy {
    /// As the case says (default: error).
    AsGiven,
    Skip,
    Quarantine,
}

/// Everything one case needs at run time.
struct Run<'a> {
    case: &'a Case,
    dir: &'a Path,
    corpus: PathBuf,
    inputs: Vec<String>,
    /// Files that may exist in `dir` besides the outputs (copied inputs, setup dirs).
    allowed: BTreeSet<String>,
    /// Run the binary as an unprivileged user (for faults root does not see).
    unprivileged: Option<Unprivileged>,
    problems: Vec<String>,
}

/// The user id (and group id) of `nobody`, for whom file modes hold.
const NOBODY: u32 = 65_534;

/// How to run the binary as `nobody` when the tests run as root (as CI does): through
/// util-linux `setpriv`, from a copy of the binary that `nobody` may execute (the build's
/// copy can sit under root's mode-700 home).
struct Unprivileged {
    setpriv: PathBuf,
    binary: PathBuf,
    _holder: tempfile::TempDir,
}

impl Unprivileged {
    /// `None` (after a `NOT CHECKED` line; a failure under CI) without `setpriv`.
    fn new(case: &str, dir: &Path) -> Option<Unprivileged> {
        use std::os::unix::fs::PermissionsExt;
        let setpriv = tool(
            &["setpriv"],
            &format!("case {case} (as root it runs as the unprivileged user nobody)"),
            "apt-get install util-linux",
        )?;
        let open =
            |p: &Path| std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        // nobody may enter the run's directory (but not write in it).
        open(dir);
        let holder = tempfile::tempdir().unwrap();
        open(holder.path());
        let binary = holder.path().join("custvalue");
        std::fs::copy(assert_cmd::cargo::cargo_bin("custvalue"), &binary).unwrap();
        open(&binary);
        Some(Unprivileged {
            setpriv,
            binary,
            _holder: holder,
        })
    }

    fn command(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::new(&self.setpriv);
        cmd.arg(format!("--reuid={NOBODY}"))
            .arg(format!("--regid={NOBODY}"))
            .arg("--clear-groups")
            .arg("--")
            .arg(&self.binary)
            .env_remove("POLARS_MAX_THREADS");
        cmd
    }
}

impl Run<'_> {
    fn fill(&self, text: &str) -> String {
        text.replace("{dir}", &self.dir.display().to_string())
            .replace("{corpus}", &self.corpus.display().to_string())
            .replace("{input}", self.inputs.first().map_or("", String::as_str))
    }

    fn out_path(&self) -> Option<PathBuf> {
        match &self.case.out {
            Some(o) if o.is_empty() => None,
            Some(o) => Some(PathBuf::from(self.fill(o))),
            None => Some(self.dir.join("out.csv")),
        }
    }

    fn quarantine_path(&self) -> PathBuf {
        self.dir.join("rejected.csv")
    }

    fn fail(&mut self, what: &str, text: impl std::fmt::Display) {
        self.problems.push(format!("{what}: {text}"));
    }

    fn execute(&self, policy: Policy) -> Output {
        let mut cmd = match &self.unprivileged {
            Some(u) => u.command(),
            None => bin(),
        };
        cmd.current_dir(self.dir).arg(&self.case.command);
        for input in &self.inputs {
            cmd.arg("--input").arg(input);
        }
        if let Some(out) = self.out_path() {
            cmd.arg("--out").arg(out);
        }
        for a in &self.case.args {
            cmd.arg(self.fill(a));
        }
        match policy {
            Policy::AsGiven => {}
            Policy::Skip => {
                cmd.args(["--on-bad-rows", "skip"]);
            }
            Policy::Quarantine => {
                cmd.arg("--on-bad-rows")
                    .arg(format!("quarantine={}", self.quarantine_path().display()));
            }
        }
        cmd.timeout(std::time::Duration::from_secs(60));
        cmd.output().expect("the binary runs")
    }

    /// The names in `dir` that are neither allowed nor expected.
    fn stray_files(&self, expected: &[&Path]) -> Vec<String> {
        let mut stray = Vec::new();
        for entry in std::fs::read_dir(self.dir)
            .expect("temp dir is readable")
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if self.allowed.contains(&name) {
                continue;
            }
            if expected.iter().any(|p| {
                p.parent() == Some(self.dir) && p.file_name() == Some(entry.file_name().as_os_str())
            }) {
                continue;
            }
            stray.push(name);
        }
        stray.sort();
        stray
    }

    fn check_common(&mut self, label: &str, out: &Output, want_exit: i32) -> String {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let code = out.status.code();
        if stderr.contains("panicked") || code == Some(101) {
            let first = stderr
                .lines()
                .skip_while(|l| !l.contains("panicked"))
                .take(2)
                .collect::<Vec<_>>()
                .join(" / ");
            self.fail(label, format!("PANIC (exit {code:?}): {first}"));
        } else if code != Some(want_exit) {
            self.fail(
                label,
                format!(
                    "exit {code:?}, expected {want_exit}; stderr: {}",
                    brief(&stderr)
                ),
            );
        }
        stderr
    }

    /// Checks a run that must fail: message, no outputs, no strays; `sentinel` is the
    /// content a pre-existing output had (it must be kept).
    fn check_failure(&mut self, label: &str, stderr: &str, sentinel: Option<&[u8]>) {
        // A panic is reported once, by check_common.
        let panicked = stderr.contains("panicked");
        if !panicked && !stderr.contains("error:") {
            self.fail(label, format!("no 'error:' on stderr: {}", brief(stderr)));
        }
        let named = match &self.case.names_file {
            Some(n) => n.clone(),
            None => Path::new(&self.case.inputs[0])
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        for named in std::iter::once(&named).chain(&self.case.also_names) {
            if !panicked && !named.is_empty() && !stderr.contains(named.as_str()) {
                self.fail(
                    label,
                    format!("stderr does not name {named:?}: {}", brief(stderr)),
                );
            }
        }
        let out_path = self.out_path();
        let out_is_input = out_path
            .as_ref()
            .is_some_and(|o| self.inputs.iter().any(|i| Path::new(i) == o));
        if let Some(out) = out_path.as_ref().filter(|_| !out_is_input) {
            match (sentinel, std::fs::read(out)) {
                (None, Ok(_)) => self.fail(
                    label,
                    format!("output {} appeared on failure", out.display()),
                ),
                (Some(old), Ok(now)) if now != old => {
                    self.fail(label, "the previous output was changed by a failed run")
                }
                (Some(_), Err(_)) => {
                    self.fail(label, "the previous output was removed by a failed run")
                }
                _ => {}
            }
        }
        let mut keep: Vec<&Path> = Vec::new();
        if sentinel.is_some() {
            keep.extend(out_path.as_deref());
        }
        let stray = self.stray_files(&keep);
        if !stray.is_empty() {
            self.fail(
                label,
                format!("files left behind after a failed run: {stray:?}"),
            );
        }
    }

    fn check_row_message(&mut self, label: &str, stderr: &str) {
        let Some(row) = &self.case.row else { return };
        let place = format!("{} {}, column '{}'", row.place, row.line, row.column);
        if !stderr.contains(&place) {
            self.fail(label, format!("stderr lacks {place:?}: {}", brief(stderr)));
        }
        if let Some(v) = &row.value {
            let shown = format!("{v:?}");
            if !stderr.contains(&shown) {
                self.fail(
                    label,
                    format!("stderr lacks the value {shown}: {}", brief(stderr)),
                );
            }
        }
    }

    fn check_headline(&mut self, label: &str, stderr: &str, counts: Counts) {
        let n = self.inputs.len();
        let want = format!(
            "read {} rows from {n} file{}: {} used, {} rejected",
            counts.read,
            if n == 1 { "" } else { "s" },
            counts.used,
            counts.rejected
        );
        if !stderr.contains(&want) {
            self.fail(label, format!("stderr lacks {want:?}: {}", brief(stderr)));
        }
    }

    fn check_output(&mut self, label: &str) {
        let Some(out) = self.out_path() else { return };
        let text = match std::fs::read_to_string(&out) {
            Ok(t) => t,
            Err(e) => return self.fail(label, format!("no output {}: {e}", out.display())),
        };
        let lines: Vec<&str> = text.lines().collect();
        for want in &self.case.output {
            if !lines.contains(&want.as_str()) {
                self.fail(
                    label,
                    format!("output lacks the line {want:?}; it has:\n{text}"),
                );
            }
        }
        for bad in &self.case.output_absent {
            if let Some(l) = lines.iter().find(|l| l.starts_with(bad.as_str())) {
                self.fail(
                    label,
                    format!("output has the line {l:?} (nothing may start with {bad:?})"),
                );
            }
        }
    }

    fn check_quarantine(&mut self, label: &str) {
        let path = self.quarantine_path();
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) => return self.fail(label, format!("no quarantine file: {e}")),
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.as_slice());
        let records: Vec<csv::StringRecord> = match reader.records().collect() {
            Ok(r) => r,
            Err(e) => return self.fail(label, format!("quarantine file is not CSV: {e}")),
        };
        let header = records.first().map(|r| r.iter().collect::<Vec<_>>());
        if header != Some(vec!["file", "line", "column", "reason", "value", "record"]) {
            self.fail(label, format!("quarantine header is {header:?}"));
        }
        let rows = &records[1.min(records.len())..];
        if rows.len() != self.case.rejected.len() {
            self.fail(
                label,
                format!(
                    "quarantine has {} rows, expected {}:\n{}",
                    rows.len(),
                    self.case.rejected.len(),
                    String::from_utf8_lossy(&text)
                ),
            );
            return;
        }
        let file_names: Vec<String> = self
            .case
            .inputs
            .iter()
            .filter_map(|i| {
                Path::new(i)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .collect();
        for (k, (got, want)) in rows.iter().zip(&self.case.rejected).enumerate() {
            let field = |i: usize| got.get(i).unwrap_or("<missing>").to_string();
            let reason_key = field(3).split(':').next().unwrap_or_default().to_string();
            let file_ok = file_names.iter().any(|n| field(0).ends_with(n.as_str()));
            let value_ok = want.value.as_ref().is_none_or(|v| *v == field(4));
            if !file_ok
                || field(1) != want.line.to_string()
                || field(2) != want.column
                || want.reason.as_ref().is_some_and(|r| *r != reason_key)
                || !value_ok
            {
                self.fail(
                    label,
                    format!(
                        "quarantine row {}: got file={:?} line={} column={:?} reason={:?} value={:?}; expected line={} column={:?} reason={:?} value={:?}",
                        k + 1,
                        field(0),
                        field(1),
                        field(2),
                        field(3),
                        field(4),
                        want.line,
                        want.column,
                        want.reason,
                        want.value
                    ),
                );
            }
        }
    }
}

/// Runs one case; returns what went wrong (empty = as the manifest says), or `None` when
/// the case cannot run here.
fn run_case(case: &Case) -> Option<Vec<String>> {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let corpus = corpus();
    let mut allowed = BTreeSet::new();
    let mut originals = Vec::new();
    let mut unprivileged = None;
    let inputs: Vec<String> = case
        .inputs
        .iter()
        .map(|i| {
            let filled = i.replace("{corpus}", &corpus.display().to_string());
            let source = if filled.starts_with('/') {
                PathBuf::from(&filled)
            } else {
                corpus.join(&filled)
            };
            if case.copy_inputs {
                let name = source.file_name().expect("input has a name").to_owned();
                let copy = dir.join(&name);
                std::fs::copy(&source, &copy).expect("copy input");
                allowed.insert(name.to_string_lossy().into_owned());
                originals.push((copy.clone(), std::fs::read(&source).unwrap()));
                copy.display().to_string()
            } else {
                if let Ok(bytes) = std::fs::read(&source) {
                    originals.push((source.clone(), bytes));
                }
                source.display().to_string()
            }
        })
        .collect();
    match case.setup.as_deref() {
        None => {}
        Some("readonly_dir") => {
            use std::os::unix::fs::PermissionsExt;
            let ro = dir.join("ro");
            std::fs::create_dir(&ro).unwrap();
            std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
            allowed.insert("ro".into());
            // Root (CI, these machines) writes into a mode-555 directory all the same, so
            // then the binary runs as nobody, for whom the mode holds.
            let probe = ro.join("probe");
            if std::fs::write(&probe, b"").is_ok() {
                std::fs::remove_file(&probe).unwrap();
                unprivileged = Some(Unprivileged::new(&case.name, dir)?);
            }
        }
        Some("sys") => {
            let sys = Path::new("/sys");
            let probe = sys.join("custvalue-probe");
            if !sys.is_dir() || std::fs::write(&probe, b"").is_ok() {
                let _ = std::fs::remove_file(&probe);
                not_checked(
                    &format!("case {}", case.name),
                    "/sys is missing or writable here, so it is no unwritable directory",
                );
                return None;
            }
        }
        Some(other) => panic!("case {}: unknown setup {other:?}", case.name),
    }
    let mut run = Run {
        case,
        dir,
        corpus,
        inputs,
        allowed,
        unprivileged,
        problems: Vec::new(),
    };
    if let Some(u) = &run.unprivileged {
        // The fault must be the case's, not an input that nobody cannot read.
        let mut validate = u.command();
        validate.current_dir(dir).arg("validate");
        for input in &run.inputs {
            validate.arg("--input").arg(input);
        }
        let out = validate.output().expect("setpriv runs");
        if !out.status.success() {
            run.fail(
                "as nobody",
                format!(
                    "the inputs do not validate: {}",
                    brief(&String::from_utf8_lossy(&out.stderr))
                ),
            );
        }
    }
    if case.rows.is_some_and(|c| c.read != c.used + c.rejected) {
        run.fail("manifest", "rows.read != rows.used + rows.rejected");
    }
    if case.row.is_some() && case.rows.map(|c| c.rejected as usize) != Some(case.rejected.len()) {
        run.fail(
            "manifest",
            "a row-level case needs rows, and one `rejected` entry per rejected row",
        );
    }

    // 1. The run as the case gives it.
    let out = run.execute(Policy::AsGiven);
    let stderr = run.check_common("run", &out, case.exit);
    // The texts are looked for with the input paths blanked out, so that a file name
    // cannot satisfy them.
    let mut blanked = stderr.clone();
    for input in &run.inputs {
        blanked = blanked.replace(input.as_str(), "<input>");
    }
    for s in &case.stderr {
        if !blanked.contains(s.as_str()) {
            run.fail("run", format!("stderr lacks {s:?}: {}", brief(&stderr)));
        }
    }
    if case.exit == 0 {
        if let Some(c) = case.rows {
            run.check_headline("run", &stderr, c);
        }
        run.check_output("run");
        let expected: Vec<PathBuf> = run.out_path().into_iter().collect();
        let refs: Vec<&Path> = expected.iter().map(PathBuf::as_path).collect();
        let stray = run.stray_files(&refs);
        if !stray.is_empty() {
            run.fail("run", format!("unexpected files after success: {stray:?}"));
        }
    } else {
        run.check_failure("run", &stderr, None);
        run.check_row_message("run", &stderr);
    }

    let usage = case.names_file.as_deref() == Some("")
        || case
            .args
            .iter()
            .any(|a| a == "--on-bad-rows" || a == "--config")
        || case.out.is_some();
    if case.row.is_some() {
        // 2. The same rows under skip and quarantine: every row accounted for.
        let counts = case.rows.expect("checked above");
        let want_exit = if counts.used > 0 { 0 } else { 2 };
        for policy in [Policy::Skip, Policy::Quarantine] {
            let label = if policy == Policy::Skip {
                "skip"
            } else {
                "quarantine"
            };
            let _ = std::fs::remove_file(run.dir.join("out.csv"));
            let _ = std::fs::remove_file(run.quarantine_path());
            let out = run.execute(policy);
            let stderr = run.check_common(label, &out, want_exit);
            if want_exit == 0 {
                run.check_headline(label, &stderr, counts);
                run.check_output(label);
                let mut expected = vec![run.dir.join("out.csv")];
                if policy == Policy::Quarantine {
                    run.check_quarantine(label);
                    expected.push(run.quarantine_path());
                }
                let refs: Vec<&Path> = expected.iter().map(PathBuf::as_path).collect();
                let stray = run.stray_files(&refs);
                if !stray.is_empty() {
                    run.fail(label, format!("unexpected files: {stray:?}"));
                }
            } else {
                let want = format!(
                    "no usable transaction rows ({} read, {} rejected)",
                    counts.read, counts.rejected
                );
                if !stderr.contains(&want) {
                    run.fail(label, format!("stderr lacks {want:?}: {}", brief(&stderr)));
                }
                run.check_failure(label, &stderr, None);
            }
        }
    } else if case.exit != 0 && !usage {
        // 3. A whole-file failure stays a failure under skip, and keeps an existing output.
        let sentinel = b"previous output\n".to_vec();
        let out_path = run.dir.join("out.csv");
        std::fs::write(&out_path, &sentinel).unwrap();
        let out = run.execute(Policy::Skip);
        let stderr = run.check_common("skip over an existing output", &out, case.exit);
        run.check_failure("skip over an existing output", &stderr, Some(&sentinel));
        let _ = std::fs::remove_file(&out_path);
    }

    for (path, bytes) in &originals {
        if std::fs::read(path).ok().as_ref() != Some(bytes) {
            run.fail("inputs", format!("{} was modified", path.display()));
        }
    }
    if case.setup.as_deref() == Some("readonly_dir") {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir.join("ro"), std::fs::Permissions::from_mode(0o755));
    }
    Some(run.problems)
}

#[test]
fn every_bad_input_has_its_exact_outcome() {
    let manifest = manifest();
    let mut names = BTreeSet::new();
    for c in &manifest.case {
        assert!(
            names.insert(c.name.clone()),
            "duplicate case name {}",
            c.name
        );
    }
    // Every corpus file is used by some case (and every case's file exists).
    let used: BTreeSet<String> = manifest
        .case
        .iter()
        .flat_map(|c| c.inputs.iter().chain(c.args.iter()))
        .map(|s| s.replace("{corpus}/", ""))
        .collect();
    for entry in std::fs::read_dir(corpus()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "cases.toml" || name == "make_parquet.py" {
            continue;
        }
        assert!(
            used.contains(&name),
            "corpus file {name} is used by no case"
        );
    }

    let mut failures = Vec::new();
    let mut known = Vec::new();
    let mut fixed = Vec::new();
    let mut skipped = Vec::new();
    let mut runs = 0;
    for case in &manifest.case {
        runs += 1;
        let Some(problems) = run_case(case) else {
            skipped.push(case.name.clone());
            continue;
        };
        match (&case.known_bug, problems.is_empty()) {
            (None, true) => {}
            (None, false) => {
                failures.push(format!("{}:\n    {}", case.name, problems.join("\n    ")))
            }
            (Some(bug), false) => known.push(format!(
                "{} ({bug}):\n    {}",
                case.name,
                problems.join("\n    ")
            )),
            (Some(_), true) => fixed.push(case.name.clone()),
        }
    }
    eprintln!(
        "bad-input corpus: {runs} cases, {} as expected, {} known bugs, {} skipped {skipped:?}",
        runs - failures.len() - known.len() - fixed.len() - skipped.len(),
        known.len(),
        skipped.len()
    );
    for k in &known {
        eprintln!("KNOWN BUG {k}");
    }
    let mut message = String::new();
    if !failures.is_empty() {
        message.push_str(&format!(
            "{} corpus cases do not behave as tests/bad-inputs/cases.toml says:\n{}\n",
            failures.len(),
            failures.join("\n")
        ));
    }
    if !fixed.is_empty() {
        message.push_str(&format!(
            "these cases are marked known_bug but pass now: delete their known_bug line in cases.toml: {fixed:?}\n"
        ));
    }
    assert!(message.is_empty(), "{message}");
}

//! `custvalue run`: dated directories, manifest, migration, lock, latest pointer.

use predicates::prelude::*;

use crate::common::{bin, fixture, path_str};

fn config(dir: &std::path::Path, input: &std::path::Path, as_of: &str) -> std::path::PathBuf {
    let path = dir.join(format!("job-{as_of}.toml"));
    std::fs::write(
        &path,
        format!(
            "[input]\nfiles = [{:?}]\nas_of = {as_of:?}\n\n[run]\noutput_dir = {:?}\nsegments_format = \"csv\"\n",
            path_str(input),
            path_str(&dir.join("out"))
        ),
    )
    .unwrap();
    path
}

#[test]
fn two_runs_write_dated_directories_a_manifest_and_the_migration() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("hand.csv");
    let first = config(dir.path(), &input, "2024-04-01");
    bin()
        .args(["-q", "run", "--config", path_str(&first)])
        .assert()
        .success();
    let run1 = dir.path().join("out/2024-04-01");
    for name in [
        "segments.csv",
        "money_deciles.csv",
        "purchase_deciles.csv",
        "whale_curve.csv",
        "profit.json",
        "segment_sizes.csv",
        "report.html",
        "manifest.json",
    ] {
        assert!(run1.join(name).exists(), "{name}");
    }
    assert!(!run1.join("migration.csv").exists());
    let report = std::fs::read_to_string(run1.join("report.html")).unwrap();
    assert!(report.contains("<svg") && !report.contains("https://"));
    let latest = std::fs::read_link(dir.path().join("out/latest")).unwrap();
    assert_eq!(latest, std::path::Path::new("2024-04-01"));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run1.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["rows"]["read"], 18);
    assert_eq!(manifest["rows"]["used"], 18);
    assert_eq!(manifest["as_of"], "2024-04-01");
    assert_eq!(manifest["outputs"].as_array().unwrap().len(), 7);
    assert_eq!(manifest["outputs"][0]["name"], "segments.csv");
    assert_eq!(manifest["outputs"][0]["blake3"].as_str().unwrap().len(), 64);
    // Each file's size and checksum are its own (they are hashed side by side).
    let sum = |path: &std::path::Path| {
        let bytes = std::fs::read(path).unwrap();
        (bytes.len(), blake3::hash(&bytes).to_hex().to_string())
    };
    for out in manifest["outputs"].as_array().unwrap() {
        let (bytes, hash) = sum(&run1.join(out["name"].as_str().unwrap()));
        assert_eq!(
            (out["bytes"].as_u64(), out["blake3"].as_str()),
            (Some(bytes as u64), Some(hash.as_str()))
        );
    }
    let inputs = manifest["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 1);
    assert_eq!(inputs[0]["blake3"].as_str(), Some(sum(&input).1.as_str()));
    assert_eq!(
        manifest["config_blake3"].as_str(),
        Some(sum(&first).1.as_str())
    );
    // The segment file of the run equals the one `segments` writes.
    let direct = dir.path().join("direct.csv");
    bin()
        .args([
            "-q",
            "segments",
            "-i",
            path_str(&input),
            "--as-of",
            "2024-04-01",
            "-o",
            path_str(&direct),
        ])
        .assert()
        .success();
    assert_eq!(
        std::fs::read(&direct).unwrap(),
        std::fs::read(run1.join("segments.csv")).unwrap()
    );

    // A later as-of date: recency grows, segments move; the migration accounts for everyone.
    let second = config(dir.path(), &input, "2025-01-01");
    bin()
        .args(["run", "--config", path_str(&second)])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "changed segment since the previous run",
        ));
    let run2 = dir.path().join("out/2025-01-01");
    let migration = std::fs::read_to_string(run2.join("migration.csv")).unwrap();
    assert!(migration.starts_with("from_segment,to_segment,customers,revenue\n"));
    let total: i64 = migration
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(total, 9, "{migration}");
    assert_eq!(
        std::fs::read_link(dir.path().join("out/latest")).unwrap(),
        std::path::Path::new("2025-01-01")
    );
    // No partial directories are left behind.
    let names: Vec<String> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(".custvalue.lock"))
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, ["2024-04-01", "2025-01-01", "latest"]);
}

#[test]
fn the_second_run_reports_the_segment_migration() {
    let dir = tempfile::tempdir().unwrap();
    let first = fixture("hand.csv");
    // The second run: customer G is gone, Z is new and A buys again.
    let second = dir.path().join("later.csv");
    let lines: String = std::fs::read_to_string(&first)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("G,"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(
        &second,
        lines + "Z,2024-12-20,O98,500,,wine\nA,2024-12-27,O99,80,,wine\n",
    )
    .unwrap();
    let report = |input: &std::path::Path, as_of: &str| {
        bin()
            .args(["-q", "run", "--config"])
            .arg(config(dir.path(), input, as_of))
            .assert()
            .success();
        std::fs::read_to_string(dir.path().join("out").join(as_of).join("report.html")).unwrap()
    };
    assert!(!report(&first, "2024-04-01").contains("id=\"migration\""));
    let html = report(&second, "2025-01-01");
    let start = html.find("id=\"migration\"").expect("the migration panel");
    let section = &html[start..start + html[start..].find("</section>").unwrap()];
    assert!(section.contains("<svg"));
    // The reading states the moves of migration.csv: 8 customers in both runs.
    let csv = std::fs::read_to_string(dir.path().join("out/2025-01-01/migration.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let sum = |keep: &dyn Fn(&[&str]) -> bool| -> u64 {
        rows.iter()
            .filter(|f| keep(f))
            .map(|f| f[2].parse::<u64>().unwrap())
            .sum()
    };
    let new = sum(&|f| f[0] == "(new)");
    let vanished = sum(&|f| f[1] == "(vanished)");
    let moved = sum(&|f| f[0] != f[1] && f[0] != "(new)" && f[1] != "(vanished)");
    assert_eq!((new, vanished), (1, 1), "{csv}");
    let want = match moved {
        0 => "None of the 8 customers in both runs changed segment".to_string(),
        n => format!("{n} of the 8 customers in both runs ("),
    };
    assert!(section.contains(&want), "{want:?} in {section}");
    assert!(section.contains("; 1 is new and 1 vanished"), "{section}");
}

#[test]
fn a_held_lock_fails_with_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &fixture("hand.csv"), "2024-04-01");
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    let lock = std::fs::File::create(dir.path().join("out/.custvalue.lock")).unwrap();
    lock.lock().unwrap();
    bin()
        .args(["run", "--config", path_str(&cfg)])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("lock"));
    drop(lock);
    bin()
        .args(["-q", "run", "--config", path_str(&cfg)])
        .assert()
        .success();
}

#[test]
fn run_without_output_dir_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("job.toml");
    std::fs::write(
        &cfg,
        format!("[input]\nfiles = [{:?}]\n", path_str(&fixture("hand.csv"))),
    )
    .unwrap();
    bin()
        .args(["run", "--config", path_str(&cfg)])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("output_dir"));
}

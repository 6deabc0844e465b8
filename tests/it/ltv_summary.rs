//! `ltv --summary` and `--json`: fitting and scoring from a model summary file, the JSON
//! of `fit` and `ltv`, boundary solutions named in words, bad summaries rejected with the
//! file, line, column and value, and identical output at 1 and 2 threads.

use predicates::prelude::*;

use crate::common::{bin, fixture, path_str};

fn json(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out).expect("stdout is JSON")
}

/// The CDNOW summary `times` times over, each copy's recency shrunk by a hair, so that
/// records are distinct (recency continuous) and there are more than 40,000 customers
/// (the fits then start on a subsample and sums run in several chunks).
fn replicated_cdnow(dir: &std::path::Path, times: usize) -> std::path::PathBuf {
    let text = std::fs::read_to_string(fixture("cdnow_summary.csv")).unwrap();
    let mut out = String::from("customer_id,frequency,recency,T,monetary_value\n");
    for k in 0..times {
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            let t_x: f64 = f[2].parse().unwrap();
            let shrink = 1.0 - k as f64 * 1e-5;
            out.push_str(&format!(
                "{}-{k},{},{},{},{}\n",
                f[0],
                f[1],
                t_x * shrink,
                f[3],
                f[4]
            ));
        }
    }
    let path = dir.join("summary.csv");
    std::fs::write(&path, out).unwrap();
    path
}

#[test]
fn summary_with_the_papers_names_reproduces_the_published_fits() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ltv.csv");
    let run = bin()
        .args([
            "-q",
            "ltv",
            "--summary",
            path_str(&fixture("cdnow_summary.csv")),
        ])
        .args([
            "--time-unit",
            "W",
            "--horizon",
            "52",
            "--purchases-horizon",
            "39",
            "--json",
        ])
        .args(["-o", path_str(&out)])
        .assert()
        .success();
    let v = json(&run.get_output().stdout);
    let m = &v["purchase_model"];
    // Fader, Hardie & Lee (2005) and Fader & Hardie (2013) on CDNOW.
    let p = |k: &str| m["params"][k].as_f64().unwrap();
    assert_eq!(m["model"], "BG/NBD");
    assert!(
        (p("r") - 0.243).abs() < 5e-4 && (p("alpha") - 4.414).abs() < 5e-4,
        "{m}"
    );
    assert!(
        (p("a") - 0.793).abs() < 5e-4 && (p("b") - 2.426).abs() < 5e-4,
        "{m}"
    );
    assert!((m["log_likelihood"].as_f64().unwrap() + 9582.4).abs() < 0.05);
    assert!(m["std_errors"]["r"].as_f64().unwrap() > 0.0);
    assert_eq!(m["converged"], true);
    assert_eq!(m["at_boundary"], false);
    let g = &v["spend_model"]["params"];
    assert!((g["p"].as_f64().unwrap() - 6.25).abs() < 0.01, "{g}");
    assert!((g["q"].as_f64().unwrap() - 3.74).abs() < 0.01, "{g}");
    assert_eq!(v["customers"], 2357);
    assert_eq!(v["purchases_horizon"], 39);

    // Per customer, the output equals the model's own per-customer formulas (no
    // grouping by (x, T)): the paper's worked example, customer 1 (x 2, t_x 30.43,
    // T 38.86), expects 1.226 purchases in 39 weeks at the paper's estimates.
    let model = custvalue::models::BgNbd::with_params(p("r"), p("alpha"), p("a"), p("b")).unwrap();
    use custvalue::models::PurchaseModel;
    let mut reader = csv::Reader::from_path(&out).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (mut alive_sum, mut expected_sum, mut rows) = (0.0, 0.0, 0);
    for rec in reader.records() {
        let rec = rec.unwrap();
        let num = |name: &str| rec[col(name)].parse::<f64>().unwrap();
        let c = custvalue::models::Customer {
            x: num("x"),
            t_x: num("t_x"),
            t: num("T"),
        };
        let (alive, expected) = (model.p_alive(&c), model.expected_purchases(39.0, &c));
        assert!((num("p_alive") - alive).abs() < 1e-12, "{rec:?}");
        assert!(
            (num("expected_purchases") - expected).abs() < 1e-10 * expected.max(1.0),
            "{rec:?}"
        );
        if &rec[col("customer_id")] == "1" {
            assert_eq!((expected * 1000.0).round() / 1000.0, 1.226);
        }
        alive_sum += alive;
        expected_sum += expected;
        rows += 1;
    }
    assert_eq!(rows, 2357);
    let totals = &v["totals"];
    assert!((totals["p_alive"].as_f64().unwrap() - alive_sum).abs() < 1e-8 * alive_sum);
    assert!(
        (totals["expected_purchases"].as_f64().unwrap() - expected_sum).abs() < 1e-8 * expected_sum
    );
    // A new customer: P(X(52) = n) for n = 0..5, each in [0, 1].
    let probs = v["new_customer"]["p_purchases"].as_array().unwrap();
    assert_eq!(probs.len(), 6);
    assert!(
        probs
            .iter()
            .all(|p| (0.0..=1.0).contains(&p.as_f64().unwrap()))
    );
}

#[test]
fn lifetimes_names_holdout_and_identical_output_at_one_and_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let summary = replicated_cdnow(dir.path(), 20);
    let run = |threads: &str, model: &str| {
        let out = dir.path().join(format!("out-{threads}-{model}.csv"));
        let a = bin()
            .args([
                "-q",
                "--threads",
                threads,
                "ltv",
                "--summary",
                path_str(&summary),
            ])
            .args([
                "--time-unit",
                "W",
                "--model",
                model,
                "--json",
                "-o",
                path_str(&out),
            ])
            .assert()
            .success();
        (a.get_output().stdout.clone(), std::fs::read(&out).unwrap())
    };
    for model in ["bgnbd", "paretonbd", "mbgnbd"] {
        let (json1, csv1) = run("1", model);
        let (json2, csv2) = run("2", model);
        assert_eq!(
            json1, json2,
            "{model}: JSON differs between 1 and 2 threads"
        );
        assert_eq!(
            csv1, csv2,
            "{model}: per-customer output differs between 1 and 2 threads"
        );
        let v = json(&json1);
        assert_eq!(v["customers"], 47_140);
        assert_eq!(v["purchase_model"]["converged"], true, "{model}: {v}");
    }
    // Twenty copies of CDNOW have the CDNOW estimates.
    let v = json(&run("2", "bgnbd").0);
    let r = v["purchase_model"]["params"]["r"].as_f64().unwrap();
    assert!((r - 0.243).abs() < 2e-3, "{r}");

    // Holdout columns (lifetimes' names) give the holdout check.
    let text = std::fs::read_to_string(fixture("cdnow_summary.csv")).unwrap();
    let mut with_holdout = String::from(
        "ID,frequency_cal,recency_cal,T_cal,monetary_value_cal,frequency_holdout,duration_holdout\n",
    );
    for (i, line) in text.lines().skip(1).enumerate() {
        with_holdout.push_str(&format!("{line},{},39\n", i % 3));
    }
    let path = dir.path().join("holdout.csv");
    std::fs::write(&path, with_holdout).unwrap();
    let a = bin()
        .args([
            "-q",
            "ltv",
            "--summary",
            path_str(&path),
            "--time-unit",
            "W",
            "--json",
        ])
        .assert()
        .success();
    let v = json(&a.get_output().stdout);
    let h = &v["holdout"];
    assert_eq!(h["total_actual"], (0..2357).map(|i| i % 3).sum::<u64>());
    assert_eq!(h["length"], 39.0);
    assert!(h["total_predicted"].as_f64().unwrap() > 1000.0);
    // And the table says where the holdout came from.
    bin()
        .args([
            "-q",
            "ltv",
            "--summary",
            path_str(&path),
            "--time-unit",
            "W",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Holdout from the summary's holdout columns",
        ));
}

#[test]
fn no_dropout_is_named_and_the_run_goes_on() {
    // Every repeat buyer bought last at the end of the window (t_x = T): nothing in
    // the data suggests anyone dropped out, so BG/NBD's maximum is at a → 0.
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("x,t_x,T,zbar\n");
    for i in 0..3000u32 {
        let t = 20.0 + f64::from(i % 41);
        let x = [0, 0, 1, 2, 0, 3, 1, 5, 0, 8][i as usize % 10];
        let t_x = if x > 0 { t } else { 0.0 };
        let spend = 10.0 + f64::from(i % 17);
        text.push_str(&format!("{x},{t_x},{t},{spend}\n"));
    }
    let path = dir.path().join("nodropout.csv");
    std::fs::write(&path, text).unwrap();
    for model in ["bgnbd", "paretonbd", "mbgnbd"] {
        let a = bin()
            .args([
                "-q",
                "ltv",
                "--summary",
                path_str(&path),
                "--time-unit",
                "W",
            ])
            .args(["--model", model, "--json"])
            .assert()
            .success();
        let v = json(&a.get_output().stdout);
        let m = &v["purchase_model"];
        assert_eq!(m["at_boundary"], true, "{model}: {m}");
        assert!(
            m["boundary"]
                .as_str()
                .unwrap()
                .starts_with("no dropout in these data"),
            "{model}: {m}"
        );
        assert!(
            m["boundary"]
                .as_str()
                .unwrap()
                .ends_with("reduces to the NBD; P(alive) = 1")
        );
        assert_eq!(v["totals"]["mean_p_alive"], 1.0, "{model}");
    }
    bin()
        .args([
            "-q",
            "ltv",
            "--summary",
            path_str(&path),
            "--time-unit",
            "W",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "no dropout in these data: BG/NBD reduces to the NBD; P(alive) = 1",
        ));
}

#[test]
fn bad_summaries_name_file_line_column_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "frequency,recency,T\n1,2,5\n2.5,3,5\n",
            "line 3, column 'frequency'",
            "2.5",
        ),
        (
            "frequency,recency,T\n1,2,5\n-1,0,5\n",
            "line 3, column 'frequency'",
            "-1",
        ),
        (
            "frequency,recency,T\n1,2,5\n1,abc,5\n",
            "line 3, column 'recency'",
            "abc",
        ),
        (
            "frequency,recency,T\n1,2,5\n1,6,5\n",
            "line 3, column 'T'",
            "5",
        ),
        (
            "frequency,recency,T\n0,2,5\n",
            "line 2, column 'recency'",
            "2",
        ),
    ];
    for (k, (text, place, value)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{k}.csv"));
        std::fs::write(&path, text).unwrap();
        bin()
            .args(["-q", "ltv", "--summary", path_str(&path), "--spend", "none"])
            .assert()
            .code(2)
            .stderr(
                predicate::str::contains(path_str(&path))
                    .and(predicate::str::contains(*place))
                    .and(predicate::str::contains(format!("{value:?}"))),
            );
    }
    let path = dir.path().join("nocols.csv");
    std::fs::write(&path, "a,b\n1,2\n").unwrap();
    bin()
        .args(["-q", "ltv", "--summary", path_str(&path)])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "frequency_cal' or 'frequency' or 'x'",
        ));
}

#[test]
fn fit_json_has_estimates_errors_and_convergence() {
    let a = bin()
        .args(["fit", "--summary", path_str(&fixture("cdnow_summary.csv"))])
        .args(["--model", "mbgnbd", "--spend-col", "zbar", "--json"])
        .assert()
        .success();
    let v = json(&a.get_output().stdout);
    let m = &v["purchase_model"];
    assert_eq!(m["model"], "MBG/NBD");
    for k in ["r", "alpha", "a", "b"] {
        assert!(m["params"][k].as_f64().unwrap() > 0.0);
        assert!(m["std_errors"][k].as_f64().unwrap() > 0.0);
    }
    assert_eq!(m["converged"], true);
    assert!(m["iterations"].as_u64().unwrap() > 0);
    assert_eq!(v["spend_model"]["model"], "Gamma-Gamma");
    let a = bin()
        .args([
            "fit",
            "--summary",
            path_str(&fixture("donations.csv")),
            "--model",
            "bgbb",
            "--json",
        ])
        .assert()
        .success();
    let v = json(&a.get_output().stdout);
    assert!((v["purchase_model"]["params"]["delta"].as_f64().unwrap() - 2.783).abs() < 5e-4);
}

#[test]
fn bgbb_counts_must_be_whole_numbers() {
    // Before the fix 2.5 became 2 and −1 became 0 without a word.
    let dir = tempfile::tempdir().unwrap();
    let donations = std::fs::read_to_string(fixture("donations.csv")).unwrap();
    for (k, (from, to, column, line)) in [
        ("1,1,6,1091", "1,1.5,6,1091", "recency", 3),
        ("1,2,6,277", "-1,2,6,277", "frequency", 4),
        ("1,3,6,129", "1,3,6.5,129", "periods", 5),
    ]
    .iter()
    .enumerate()
    {
        assert!(donations.contains(from));
        let path = dir.path().join(format!("bad{k}.csv"));
        std::fs::write(&path, donations.replacen(from, to, 1)).unwrap();
        bin()
            .args(["fit", "--summary", path_str(&path), "--model", "bgbb"])
            .assert()
            .code(2)
            .stderr(
                predicate::str::contains(path_str(&path))
                    .and(predicate::str::contains(format!(
                        "line {line}, column '{column}'"
                    )))
                    .and(predicate::str::contains("a whole number >= 0")),
            );
    }
}

#[test]
fn parquet_summaries_read_like_csv_ones() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixture("cdnow_summary.csv")).unwrap();
    let rows: Vec<Vec<f64>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    let col = |k: usize| rows.iter().map(|r| r[k]).collect::<Vec<f64>>();
    let write = |name: &str, x: Vec<f64>| {
        let mut df = DataFrame::new(
            rows.len(),
            vec![
                Column::new(
                    "ID".into(),
                    col(0).iter().map(|v| *v as i64).collect::<Vec<_>>(),
                ),
                Column::new("x".into(), x),
                Column::new("t_x".into(), col(2)),
                Column::new("T".into(), col(3)),
                Column::new("zbar".into(), col(4)),
            ],
        )
        .unwrap();
        let path = dir.path().join(name);
        ParquetWriter::new(std::fs::File::create(&path).unwrap())
            .finish(&mut df)
            .unwrap();
        path
    };
    let good = write("summary.parquet", col(1));
    let run = |path: &std::path::Path| {
        let a = bin()
            .args([
                "-q",
                "ltv",
                "--summary",
                path_str(path),
                "--time-unit",
                "W",
                "--json",
            ])
            .assert()
            .success();
        json(&a.get_output().stdout)
    };
    let from_parquet = run(&good);
    let from_csv = run(&fixture("cdnow_summary.csv"));
    assert_eq!(from_parquet["purchase_model"], from_csv["purchase_model"]);
    assert_eq!(from_parquet["totals"], from_csv["totals"]);
    // A bad value is named by its row.
    let mut x = col(1);
    x[4] = 1.5;
    let bad = write("bad.parquet", x);
    bin()
        .args(["-q", "ltv", "--summary", path_str(&bad), "--time-unit", "W"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("row 5, column 'x'").and(predicate::str::contains("\"1.5\"")),
        );
}

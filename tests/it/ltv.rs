//! Lifetime value end to end on the CDNOW sample: the model summary we compute from the
//! raw transactions equals the published calibration summary of Fader, Hardie & Lee,
//! and the fitted models and the holdout table are consistent.

use predicates::prelude::*;

use crate::common::{bin, fixture, path_str, sample};

fn read_csv(path: &std::path::Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .map(String::from)
                .zip(rec.iter().map(String::from))
                .collect()
        })
        .collect()
}

#[test]
fn cdnow_model_summary_equals_the_published_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ltv.csv");
    bin()
        .args([
            "-q",
            "ltv",
            "-i",
            path_str(&sample("cdnow.csv")),
            "--time-col",
            "date",
        ])
        .args(["--calibration-end", "1997-09-30", "-o", path_str(&out)])
        .assert()
        .success()
        .stdout(predicate::str::contains("BG/NBD").and(predicate::str::contains("calibration x")));
    let ours: std::collections::HashMap<i64, _> = read_csv(&out)
        .into_iter()
        .map(|r| (r["customer_id"].parse::<i64>().unwrap(), r))
        .collect();
    let published = read_csv(&fixture("cdnow_summary.csv"));
    assert_eq!(published.len(), 2357);
    let mut compared = 0;
    for p in &published {
        let o = &ours[&p["ID"].parse::<i64>().unwrap()];
        if o["x"].is_empty() {
            // Customers whose only calibration lines are $0.00 have no purchase (amount > 0).
            assert_eq!(p["x"], "0");
            continue;
        }
        let weeks = |days: &str| days.parse::<f64>().unwrap() / 7.0;
        assert_eq!(o["x"], p["x"], "customer {}", p["ID"]);
        assert!(
            (weeks(&o["t_x"]) - p["t_x"].parse::<f64>().unwrap()).abs() < 0.006,
            "{}",
            p["ID"]
        );
        assert!(
            (weeks(&o["T"]) - p["T"].parse::<f64>().unwrap()).abs() < 0.006,
            "{}",
            p["ID"]
        );
        if p["x"] != "0" {
            let m: f64 = o["m_x"].parse().unwrap();
            assert!(
                (m - p["zbar"].parse::<f64>().unwrap()).abs() < 0.006,
                "{}",
                p["ID"]
            );
        }
        let p_alive: f64 = o["p_alive"].parse().unwrap();
        assert!((0.0..=1.0).contains(&p_alive));
        compared += 1;
    }
    assert_eq!(compared, 2349);
}

#[test]
fn every_model_fits_the_sample_and_the_holdout_adds_up() {
    for model in ["bgnbd", "paretonbd", "mbgnbd"] {
        let mut opts = custvalue::LoadOptions::new([path_str(&sample("cdnow.csv"))]);
        opts.columns.time = Some("date".into());
        let loaded = custvalue::load(&opts).unwrap();
        let settings = custvalue::ltv::LtvSettings {
            model: model.parse().unwrap(),
            period: custvalue::model_summary::Period::Week,
            horizon: 39,
            calibration_end: custvalue::time::parse_iso_date("1997-09-30"),
            ..Default::default()
        };
        let ltv = custvalue::ltv::value(&loaded.transactions, &settings).unwrap();
        assert!(ltv.report().converged, "{model}");
        let h = ltv.holdout.as_ref().unwrap();
        let valued = ltv.figures.iter().flatten().count() as u64;
        assert_eq!(h.buckets.iter().map(|b| b.customers).sum::<u64>(), valued);
        let actual: u64 = h.holdout.iter().map(|x| u64::from(x.x_holdout)).sum();
        assert_eq!(actual, h.total_actual);
        // The models predict the holdout total within 25% on this classic data set.
        let ratio = h.total_predicted / h.total_actual as f64;
        assert!((0.75..1.25).contains(&ratio), "{model}: {ratio}");
        assert!(ltv.clv.iter().flatten().all(|v| v.is_finite() && *v >= 0.0));
    }
}

#[test]
fn nobody_repeating_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("once.csv");
    std::fs::write(
        &input,
        "customer_id,ts,amount\nA,2024-01-01,5\nB,2024-02-01,7\nC,2024-03-01,9\n",
    )
    .unwrap();
    bin()
        .args(["ltv", "-i", path_str(&input)])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot be fitted"));
}

#[test]
fn the_segment_file_carries_p_alive_beside_the_stage() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("seg.csv");
    bin()
        .args([
            "-q",
            "segments",
            "-i",
            path_str(&sample("cdnow.csv")),
            "--time-col",
            "date",
        ])
        .args(["--model", "bgnbd", "-o", path_str(&out)])
        .assert()
        .success();
    let rows = read_csv(&out);
    assert_eq!(rows.len(), 2357);
    for r in &rows {
        if r["frequency"] == "0" {
            assert_eq!(r["p_alive"], "");
            assert_eq!(r["stage"], "");
        } else {
            let p: f64 = r["p_alive"].parse().unwrap();
            assert!((0.0..=1.0).contains(&p));
        }
    }
}

#[test]
fn fit_reproduces_the_published_estimates_from_the_command_line() {
    // Fader, Hardie & Lee (2005): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL −9582.4.
    bin()
        .args([
            "fit",
            "--summary",
            path_str(&fixture("cdnow_summary.csv")),
            "--model",
            "bgnbd",
        ])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("log-likelihood -9582.4")
                .and(predicate::str::is_match(r"r\s+0\.24(2[5-9]|3[0-4])").unwrap())
                .and(predicate::str::contains("alpha        4.41"))
                .and(predicate::str::contains("a            0.79"))
                .and(predicate::str::contains("b            2.42")),
        );
    // Fader, Hardie & Shang (2010): alpha 1.204, beta 0.750, gamma 0.657, delta 2.783.
    bin()
        .args([
            "fit",
            "--summary",
            path_str(&fixture("donations.csv")),
            "--model",
            "bgbb",
        ])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("log-likelihood -33225.5")
                .and(predicate::str::contains("delta        2.783")),
        );
    bin()
        .args(["fit", "--summary", path_str(&fixture("hand.csv"))])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no column 'x'"));
}

#[test]
fn horizons_take_units() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample("cdnow.csv");
    let run = |h: &str| {
        let out = dir.path().join(format!("{h}.csv"));
        bin()
            .args([
                "-q",
                "ltv",
                "-i",
                path_str(&input),
                "--time-col",
                "date",
                "--period",
                "W",
                "--spend",
                "none",
            ])
            .args(["--horizon", h, "-o", path_str(&out)])
            .assert()
            .success();
        std::fs::read(out).unwrap()
    };
    assert_eq!(run("52w"), run("52"));
    assert_eq!(run("364d"), run("52"));
    bin()
        .args([
            "ltv",
            "-i",
            path_str(&input),
            "--time-col",
            "date",
            "--horizon",
            "soon",
        ])
        .assert()
        .code(2);
}

#[test]
fn bgnbd_recovers_the_parameters_the_generator_used() {
    // The generator draws customers from BG/NBD with the CDNOW estimates (r 0.243,
    // alpha 4.414 per week, a 0.793, b 2.426); fitting its output must find them again.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tx.csv");
    let params = custvalue::synth::SynthParams::for_rows(200_000, 11);
    custvalue::synth::write_csv(&params, std::fs::File::create(&path).unwrap()).unwrap();
    let loaded = custvalue::load(&custvalue::LoadOptions::new([path_str(&path)])).unwrap();
    let settings = custvalue::ltv::LtvSettings {
        gamma_gamma: false,
        ..Default::default()
    };
    let ltv = custvalue::ltv::value(&loaded.transactions, &settings).unwrap();
    let p = |n: &str| ltv.report().param(n).unwrap();
    assert!((p("r") - 0.243).abs() < 0.03, "r {}", p("r"));
    assert!(
        (p("alpha") / 7.0 - 4.414).abs() < 0.15 * 4.414,
        "alpha {}",
        p("alpha")
    );
    assert!((p("a") - 0.793).abs() < 0.25 * 0.793, "a {}", p("a"));
    assert!((p("b") - 2.426).abs() < 0.3 * 2.426, "b {}", p("b"));
}

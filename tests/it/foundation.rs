//! The foundation: loading, validation, the summary and the CLI around them.

use predicates::prelude::*;

use crate::common::{bin, fixture, path_str};

#[test]
fn summary_matches_the_hand_computed_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("summary.csv");
    bin()
        .args([
            "summary",
            "--input",
            path_str(&fixture("hand.csv")),
            "--out",
            path_str(&out),
        ])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "read 18 rows from 1 file: 18 used, 0 rejected",
        ));
    let got = std::fs::read_to_string(&out).unwrap();
    let want = std::fs::read_to_string(fixture("hand_summary.csv")).unwrap();
    assert_eq!(got, want);
}

#[test]
fn summary_is_identical_at_one_and_two_threads_and_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("hand.csv");
    let mut outputs = Vec::new();
    for threads in ["1", "2"] {
        let out = dir.path().join(format!("s{threads}.parquet"));
        bin()
            .args([
                "--threads",
                threads,
                "-q",
                "summary",
                "-i",
                path_str(&input),
                "-o",
                path_str(&out),
            ])
            .assert()
            .success();
        outputs.push(std::fs::read(&out).unwrap());
    }
    assert_eq!(outputs[0], outputs[1]);
    // The Parquet output reads back to the same table as the CSV output.
    let parquet = dir.path().join("s1.parquet");
    let csv = dir.path().join("back.csv");
    let df = {
        let f = std::fs::File::open(&parquet).unwrap();
        use custvalue::polars::prelude::*;
        ParquetReader::new(f).finish().unwrap()
    };
    let mut df = df;
    custvalue::output::write_frame(&mut df, &csv).unwrap();
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap(),
        std::fs::read_to_string(fixture("hand_summary.csv")).unwrap()
    );
    for ext in ["json", "jsonl", "arrow"] {
        let out = dir.path().join(format!("s.{ext}"));
        bin()
            .args([
                "-q",
                "summary",
                "-i",
                path_str(&input),
                "-o",
                path_str(&out),
            ])
            .assert()
            .success();
        assert!(std::fs::metadata(&out).unwrap().len() > 100);
    }
    let jsonl = std::fs::read_to_string(dir.path().join("s.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(first["customer_id"], "10");
    assert_eq!(first["monetary"], 100.0);
    let b: serde_json::Value = serde_json::from_str(jsonl.lines().nth(3).unwrap()).unwrap();
    assert_eq!(b["first_purchase"], serde_json::Value::Null);
}

#[test]
fn a_bad_row_names_file_line_column_value_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("tx.csv");
    std::fs::write(
        &input,
        "customer_id,ts,amount\nA,2024-01-01,1.00\nB,2024-01-02,12,50\n",
    )
    .unwrap();
    let out = dir.path().join("out.csv");
    bin()
        .args(["summary", "-i", path_str(&input), "-o", path_str(&out)])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("tx.csv: line 3, column '(row)'"));
    std::fs::write(
        &input,
        "customer_id,ts,amount\nA,2024-01-01,1.00\nB,2024-01-02,\"12,50\"\n",
    )
    .unwrap();
    bin()
        .args(["summary", "-i", path_str(&input), "-o", path_str(&out)])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("line 3, column 'amount'")
                .and(predicate::str::contains("\"12,50\""))
                .and(predicate::str::contains("comma decimal")),
        );
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn skip_and_quarantine_account_for_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("tx.csv");
    std::fs::write(
        &input,
        "customer_id,ts,amount\nA,2024-01-01,1.00\n,2024-01-02,3\nB,2023-02-30,4\nC,2024-01-03,NaN\nD,2024-01-04,2\n",
    )
    .unwrap();
    let q = dir.path().join("rejected.csv");
    let policy = format!("quarantine={}", path_str(&q));
    bin()
        .args([
            "summary",
            "-i",
            path_str(&input),
            "--on-bad-rows",
            &policy,
            "-o",
        ])
        .arg(dir.path().join("s.csv"))
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "read 5 rows from 1 file: 2 used, 3 rejected",
        ));
    let rejected = std::fs::read_to_string(&q).unwrap();
    let lines: Vec<&str> = rejected.lines().collect();
    assert_eq!(lines.len(), 4, "{rejected}");
    assert!(
        lines[1].contains(",3,customer_id,missing_customer"),
        "{rejected}"
    );
    assert!(lines[2].contains(",4,ts,impossible_date"), "{rejected}");
    assert!(lines[3].contains(",5,amount,bad_amount"), "{rejected}");
}

#[test]
fn validate_reports_counts_and_examples() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("tx.csv");
    std::fs::write(
        &input,
        "customer_id,ts,amount\nA,2024-01-01,$1.00\nB,2024-01-02,2\n",
    )
    .unwrap();
    bin()
        .args(["validate", "-i", path_str(&input)])
        .assert()
        .code(2)
        .stdout(
            predicate::str::contains("bad_amount")
                .and(predicate::str::contains("line 2"))
                .and(predicate::str::contains("\"$1.00\""))
                .and(predicate::str::contains(
                    "2 rows from 1 file: 1 used, 1 rejected",
                )),
        );
    bin()
        .args(["validate", "-i", path_str(&fixture("hand.csv"))])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "9 customers, 9 categories, as-of date 2024-04-01",
        ));
}

#[test]
fn a_missing_column_lists_the_columns_present() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("tx.csv");
    std::fs::write(&input, "customer;ts;amount\nA;2024-01-01;1\n").unwrap();
    bin()
        .args(["summary", "-i", path_str(&input)])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("no column 'customer_id'")
                .and(predicate::str::contains("--delimiter ';'")),
        );
    bin()
        .args(["summary", "-i", path_str(&input), "--delimiter", ";"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "the file has columns: 'customer', 'ts', 'amount'",
        ));
    bin()
        .args([
            "-q",
            "summary",
            "-i",
            path_str(&input),
            "--delimiter",
            ";",
            "--customer-col",
            "customer",
        ])
        .assert()
        .success();
}

#[test]
fn receipts_with_quantity_and_unit_price_custom_time_and_config() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("receipts.csv");
    // member card, time, item, quantity, unit price (no amount column): amount = q × p.
    std::fs::write(
        &input,
        "\u{feff}card;time;item;qty;price\n0042;31/01/2024 10:15;tea;3;0.335\n0042;01/02/2024 09:00;cake;-1;2.50\n7;02/02/2024 18:00;tea;1;1.00\n",
    )
    .unwrap();
    let config = dir.path().join("job.toml");
    std::fs::write(
        &config,
        "[input]\ndelimiter = \";\"\ntime_format = \"%d/%m/%Y %H:%M\"\nmargin = 0.25\n\n[columns]\ncustomer = \"card\"\ntime = \"time\"\nquantity = \"qty\"\nunit_price = \"price\"\ncategory = \"item\"\n",
    )
    .unwrap();
    let out = dir.path().join("s.csv");
    bin()
        .args([
            "-q",
            "summary",
            "-i",
            path_str(&input),
            "--config",
            path_str(&config),
            "-o",
            path_str(&out),
        ])
        .assert()
        .success();
    let got = std::fs::read_to_string(&out).unwrap();
    // 3 × 0.335 = 1.005 → 1.01; the return -2.50; profit 25% of each line, rounded per line.
    assert_eq!(
        got,
        "customer_id,first_purchase,last_purchase,recency_days,tenure_days,frequency,monetary,profit,avg_order_value,n_categories\n\
         0042,2024-01-31,2024-01-31,3,3,1,-1.49,-0.38,-1.49,1\n\
         7,2024-02-02,2024-02-02,1,1,1,1,0.25,1,1\n"
    );
    std::fs::write(
        &config,
        "[input]\ndelimiter = \";\"\n[columns]\ncustomr = \"card\"\n",
    )
    .unwrap();
    bin()
        .args([
            "summary",
            "-i",
            path_str(&input),
            "--config",
            path_str(&config),
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("customr"));
}

#[test]
fn output_refuses_the_input_path_and_missing_directories() {
    let input = fixture("hand.csv");
    bin()
        .args(["summary", "-i", path_str(&input), "-o", path_str(&input)])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("same file as an input"));
    bin()
        .args([
            "summary",
            "-i",
            path_str(&input),
            "-o",
            "/nonexistent/dir/s.csv",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("does not exist"));
    bin()
        .args(["summary", "-i", "/nonexistent/tx.csv"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/tx.csv"));
}

#[test]
fn help_has_examples() {
    bin()
        .args(["summary", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Examples:"));
    bin()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit codes"));
}

//! Parquet and Arrow IPC files as warehouses export them: DECIMAL money, zoned timestamps
//! in every unit, dates, dictionary, large and view strings, small and unsigned integers,
//! upper-case column names. The fixtures in tests/fixtures/warehouse/ are written by
//! `python3 tests/fixtures/warehouse/make_warehouse.py` (pyarrow).

use std::path::{Path, PathBuf};

use custvalue::load::{Loaded, RejectReason};
use custvalue::{BadRowPolicy, LoadOptions};
use predicates::prelude::PredicateBooleanExt;

use crate::common::{bin, path_str};

fn warehouse(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/warehouse")
        .join(name)
}

fn load(path: &Path, range: Option<std::ops::Range<u64>>) -> Loaded {
    let mut o = LoadOptions::new([path_str(path)]);
    o.row_range = range;
    custvalue::load(&o).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The output file of `custvalue <command> --input <input> --out <dir>/<name>`.
fn output(command: &str, input: &Path, dir: &Path, name: &str) -> String {
    output_with(command, input, dir, name, &[])
}

fn output_with(command: &str, input: &Path, dir: &Path, name: &str, more: &[&str]) -> String {
    let out = dir.join(name);
    bin()
        .args([command, "--input", path_str(input), "--out", path_str(&out)])
        .args(more)
        .arg("--quiet")
        .assert()
        .success();
    std::fs::read_to_string(&out).unwrap()
}

/// Minor units of each customer's lines, customers in id order.
fn cents(l: &Loaded) -> Vec<i64> {
    l.transactions.amount.clone()
}

#[test]
fn a_warehouse_export_loads_to_the_cent_like_the_same_lines_as_doubles() {
    // DECIMAL(38,2) amount and cost, UTC microseconds, a dictionary-encoded category,
    // upper-case names; as Parquet (row groups of 5) and IPC (record batches of 7).
    let doubles = warehouse("export_doubles.parquet");
    let dir = tempfile::tempdir().unwrap();
    let want_summary = output("summary", &doubles, dir.path(), "want.csv");
    let want_segments = output("segments", &doubles, dir.path(), "want_segments.csv");
    let want = load(&doubles, None);
    for export in ["export.parquet", "export.arrow"] {
        let path = warehouse(export);
        let got = load(&path, None);
        assert_eq!(got.report.rows_used, 16, "{export}");
        assert_eq!(
            got.transactions.amount, want.transactions.amount,
            "{export}"
        );
        assert_eq!(
            got.transactions.profit, want.transactions.profit,
            "{export}"
        );
        assert_eq!(
            got.transactions.to_frame().unwrap(),
            want.transactions.to_frame().unwrap(),
            "{export}"
        );
        let summary = output("summary", &path, dir.path(), "summary.csv");
        assert_eq!(summary, want_summary, "{export}");
        let segments = output("segments", &path, dir.path(), "segments.csv");
        assert_eq!(segments, want_segments, "{export}");
        // Out of core: row ranges of 4 lines that cut row groups and record batches.
        let more = ["--partitions", "3", "--batch-rows", "4"];
        let streamed = output_with("segments", &path, dir.path(), "streamed.csv", &more);
        assert_eq!(streamed, want_segments, "{export} out of core");
        // Figures worked by hand from the lines in make_warehouse.py.
        let c002 = summary.lines().find(|l| l.starts_with("C002,")).unwrap();
        assert!(c002.contains(",1234567.89,234567.89,"), "{c002}");
        let c001 = summary.lines().find(|l| l.starts_with("C001,")).unwrap();
        // 125.50 + 19.99 − 19.99 + 310.00; profit 45.40 + 19.99 (no cost) − 7.99 + 159.75.
        assert!(c001.contains(",435.5,217.15,"), "{c001}");
    }
}

#[test]
fn row_ranges_of_a_decimal_export_cut_its_row_groups_and_batches_exactly() {
    let doubles = warehouse("export_doubles.parquet");
    for export in ["export.parquet", "export.arrow"] {
        for range in [0..16u64, 3..11, 7..8, 4..5, 10..16, 14..40] {
            let got = load(&warehouse(export), Some(range.clone()));
            let want = load(&doubles, Some(range.clone()));
            assert_eq!(
                got.transactions.to_frame().unwrap(),
                want.transactions.to_frame().unwrap(),
                "{export} {range:?}"
            );
        }
    }
}

#[test]
fn decimals_with_more_places_than_the_currency_round_half_away_from_zero() {
    // DECIMAL(20,5): 1.00500, -1.00500, 1.00499, -1.00499, 0.00500, -0.00499, 12.34567,
    // 7.00000 for customers R0..R7.
    for file in ["rounding_scale5.parquet", "rounding_scale5.arrow"] {
        let l = load(&warehouse(file), None);
        assert_eq!(cents(&l), [101, -101, 100, -100, 1, 0, 1235, 700], "{file}");
    }
    // quantity DECIMAL(10,3) × unit price DECIMAL(12,4), rounded once from the exact
    // product: 3.000 × 0.3350 = 1.005, −3.000 × 0.3350, 0.125 × 0.0400 = 0.005.
    for file in ["product_decimals.parquet", "product_decimals.arrow"] {
        let l = load(&warehouse(file), None);
        assert_eq!(cents(&l), [101, -101, 1], "{file}");
    }
    // The same as Spark stores DECIMAL(9,3) and DECIMAL(18,4) (INT32 and INT64 pages),
    // and as IPC's Decimal32 and Decimal64 (lz4-compressed), with a DECIMAL cost of
    // 0.10, null (the margin rule) and −0.01.
    for file in ["spark_int_decimals.parquet", "narrow_decimals.arrow"] {
        let l = load(&warehouse(file), None);
        assert_eq!(cents(&l), [101, -101, 1], "{file}");
        assert_eq!(l.transactions.profit, [91, -101, 2], "{file}");
    }
    // Whole currency units at `--currency-decimals 0`: 1.00500 → 1, 12.34567 → 12.
    let mut o = LoadOptions::new([path_str(&warehouse("rounding_scale5.parquet"))]);
    o.currency_decimals = 0;
    let l = custvalue::load(&o).unwrap();
    assert_eq!(cents(&l), [1, -1, 1, -1, 0, 0, 12, 7]);
}

#[test]
fn a_decimal_beyond_64_bit_minor_units_is_a_bad_row_named_by_file_row_column_and_value() {
    for file in ["too_large.parquet", "too_large.arrow"] {
        let path = warehouse(file);
        let err = custvalue::load(&LoadOptions::new([path_str(&path)]))
            .unwrap_err()
            .to_string();
        for part in [file, "row 3", "'amount'", "123456789012345678901234.56"] {
            assert!(err.contains(part), "{part} missing in: {err}");
        }
        bin()
            .args(["summary", "--input", path_str(&path)])
            .assert()
            .code(2)
            .stderr(predicates::str::contains("123456789012345678901234.56"))
            .stderr(predicates::str::contains("panicked").not());
        let mut o = LoadOptions::new([path_str(&path)]);
        o.on_bad_rows = BadRowPolicy::Skip;
        let l = custvalue::load(&o).unwrap();
        assert_eq!((l.report.rows_used, l.report.rows_rejected), (2, 1));
        assert_eq!(
            l.report
                .rejected_by_reason
                .get(&RejectReason::AmountOverflow),
            Some(&1)
        );
    }
}

#[test]
fn a_decimal_wider_than_38_digits_is_refused_from_the_schema_without_a_panic() {
    let path = warehouse("decimal256.parquet");
    let err = custvalue::load(&LoadOptions::new([path_str(&path)]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("decimal256.parquet"), "{err}");
    assert!(err.contains("\"amount\" is DECIMAL(40,2)"), "{err}");
    bin()
        .args(["summary", "--input", path_str(&path)])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("DECIMAL(40,2)"))
        .stderr(predicates::str::contains("panicked").not());
}

#[test]
fn every_type_an_export_carries_loads_like_the_same_lines_as_csv() {
    // Timestamps with a time zone in s (IPC only), ms, us and ns; a Berlin-zoned one (the
    // UTC date counts); Date32 and Date64; uint16 ids with uint8 amounts, uint64 ids with
    // uint32 amounts, int8 ids with int16 amounts; NUMBER(38,0) ids and amounts; large,
    // view and dictionary-encoded strings.
    let dir = tempfile::tempdir().unwrap();
    let want = output(
        "summary",
        &warehouse("types_reference.csv"),
        dir.path(),
        "want.csv",
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(warehouse(""))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with("types_") && !name.ends_with(".csv")
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 27);
    for path in &files {
        let got = output("summary", path, dir.path(), "got.csv");
        assert_eq!(got, want, "{}", path.display());
    }
}

#[test]
fn default_column_names_match_apart_from_case_unless_that_is_ambiguous() {
    let dir = tempfile::tempdir().unwrap();
    let upper = dir.path().join("upper.csv");
    std::fs::write(
        &upper,
        "Customer_ID,TS,AMOUNT,Category\nA,2024-01-01,1.50,x\nB,2024-01-02,2,y\n",
    )
    .unwrap();
    let l = load(&upper, None);
    assert_eq!(cents(&l), [150, 200]);
    assert_eq!(l.transactions.categories, ["x", "y"]);
    // An exact name wins over one that differs in case.
    let both = dir.path().join("both.csv");
    std::fs::write(&both, "customer_id,ts,AMOUNT,amount\nA,2024-01-01,1,2\n").unwrap();
    assert_eq!(cents(&load(&both, None)), [200]);
    // Two names that differ from the default only in case: which one is meant?
    let ambiguous = dir.path().join("ambiguous.csv");
    std::fs::write(
        &ambiguous,
        "customer_id,ts,Amount,AMOUNT\nA,2024-01-01,1,2\n",
    )
    .unwrap();
    let err = custvalue::load(&LoadOptions::new([path_str(&ambiguous)]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("'Amount' and 'AMOUNT'"), "{err}");
    assert!(err.contains("--amount-col"), "{err}");
    // A name the user gives is matched exactly.
    let mut o = LoadOptions::new([path_str(&upper)]);
    o.columns = custvalue::ColumnNames {
        amount: Some("amount".into()),
        ..Default::default()
    };
    let err = custvalue::load(&o).unwrap_err().to_string();
    assert!(err.contains("no column 'amount'"), "{err}");
}

//! Parquet and Arrow IPC loading: row ranges, row counts from metadata, and the
//! column-at-a-time path checked against the row-by-row path on tricky data.

use std::path::{Path, PathBuf};

use custvalue::load::{Loaded, columnar_rows};
use custvalue::polars::prelude::*;
use custvalue::{BadRowPolicy, LoadOptions};

use predicates::prelude::PredicateBooleanExt;

use crate::common::path_str;

const ROWS: usize = 2_000;

/// A frame of `ROWS` lines with a few bad rows (null customer, NaN amount, a row after
/// a given as-of) spread through it.
fn tricky_frame() -> DataFrame {
    let customer: Vec<Option<String>> = (0..ROWS)
        .map(|i| match i {
            17 | 1_203 => None,
            _ if i % 97 == 0 => Some(format!(" C{:04} ", i % 50)),
            _ => Some(format!("C{:04}", (i * 7919) % 173)),
        })
        .collect();
    let micros: Vec<Option<i64>> = (0..ROWS)
        .map(|i| match i {
            40 => None,
            _ => Some((1_700_000_000 + i as i64 * 86_399) * 1_000_000 + 123),
        })
        .collect();
    let amount: Vec<Option<f64>> = (0..ROWS)
        .map(|i| match i {
            5 | 1_500 => Some(f64::NAN),
            600 => Some(f64::INFINITY),
            77 => None,
            _ if i % 11 == 0 => Some(-0.125),
            _ if i % 13 == 0 => Some(1.005),
            _ => Some((i as f64) * 0.37 - 50.0),
        })
        .collect();
    let cost: Vec<Option<f64>> = (0..ROWS)
        .map(|i| (i % 3 != 0).then_some((i as f64) * 0.11))
        .collect();
    let order: Vec<Option<String>> = (0..ROWS)
        .map(|i| (i % 5 != 0).then(|| format!("O{}", i / 3)))
        .collect();
    let category: Vec<Option<&str>> = (0..ROWS)
        .map(|i| match i % 7 {
            0 => None,
            1 => Some(" toys"),
            k => Some(["books", "games", "food", "garden", "music"][k - 2]),
        })
        .collect();
    let n = ROWS;
    DataFrame::new(
        n,
        vec![
            Column::new("customer_id".into(), customer),
            Column::new("ts".into(), micros)
                .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
                .unwrap(),
            Column::new("amount".into(), amount),
            Column::new("cost".into(), cost),
            Column::new("order_id".into(), order),
            Column::new("category".into(), category),
            Column::new("unused".into(), vec![true; n]),
        ],
    )
    .unwrap()
}

fn write_parquet(df: &mut DataFrame, path: &Path) {
    ParquetWriter::new(std::fs::File::create(path).unwrap())
        .with_row_group_size(Some(300))
        .finish(df)
        .unwrap();
}

fn write_ipc(df: &mut DataFrame, path: &Path) {
    IpcWriter::new(std::fs::File::create(path).unwrap())
        .finish(df)
        .unwrap();
}

fn opts(path: &Path, range: Option<std::ops::Range<u64>>) -> LoadOptions {
    let mut o = LoadOptions::new([path_str(path)]);
    o.on_bad_rows = BadRowPolicy::Skip;
    o.max_examples = 10_000;
    o.as_of = Some(21_650);
    o.row_range = range;
    o
}

fn load(o: &LoadOptions) -> Loaded {
    custvalue::load(o).unwrap()
}

fn frame(l: &Loaded) -> DataFrame {
    l.transactions.to_frame().unwrap()
}

/// Both formats of the tricky frame, and the frame itself.
fn files(dir: &Path) -> (DataFrame, Vec<PathBuf>) {
    let mut df = tricky_frame();
    let pq = dir.join("tx.parquet");
    let ipc = dir.join("tx.arrow");
    write_parquet(&mut df, &pq);
    write_ipc(&mut df, &ipc);
    (df, vec![pq, ipc])
}

#[test]
fn columnar_rows_reads_the_count_from_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let (_, paths) = files(dir.path());
    for p in &paths {
        assert_eq!(columnar_rows(p).unwrap(), ROWS as u64, "{}", p.display());
    }
    let csv = dir.path().join("tx.csv");
    std::fs::write(&csv, "customer_id,ts,amount\n").unwrap();
    assert!(columnar_rows(&csv).is_err());
    let garbage = dir.path().join("garbage.parquet");
    std::fs::write(&garbage, "not parquet at all").unwrap();
    assert!(columnar_rows(&garbage).is_err());
}

#[test]
fn a_range_loads_like_a_file_of_those_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (df, paths) = files(dir.path());
    for (k, path) in paths.iter().enumerate() {
        for range in [
            0..2_000u64,
            0..1,
            299..301,
            17..1_204,
            1_000..1_999,
            1_900..5_000,
        ] {
            let ranged = load(&opts(path, Some(range.clone())));
            let end = range.end.min(ROWS as u64);
            let mut part = df.slice(range.start as i64, (end - range.start) as usize);
            let part_path = dir.path().join(format!("part{k}.parquet"));
            write_parquet(&mut part, &part_path);
            let whole = load(&opts(&part_path, None));
            assert_eq!(frame(&ranged), frame(&whole), "{range:?} of {path:?}");
            assert_eq!(ranged.transactions.ids, whole.transactions.ids);
            let (a, b) = (&ranged.report, &whole.report);
            assert_eq!(
                (a.rows_read, a.rows_used, a.rows_rejected),
                (b.rows_read, b.rows_used, b.rows_rejected),
            );
            assert_eq!(a.rejected_by_reason, b.rejected_by_reason);
            assert_eq!(a.rows_read, end - range.start);
            // Rejected rows keep their row number in the whole file.
            let lines =
                |l: &Loaded| -> Vec<u64> { l.report.examples.iter().map(|e| e.line).collect() };
            let shifted: Vec<u64> = lines(&whole).iter().map(|l| l + range.start).collect();
            assert_eq!(lines(&ranged), shifted);
        }
    }
}

#[test]
fn consecutive_ranges_add_up_to_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, paths) = files(dir.path());
    for path in &paths {
        let whole = load(&opts(path, None));
        let (mut read, mut used, mut rejected) = (0, 0, 0);
        let mut examples = Vec::new();
        let mut lines = 0;
        for start in (0..ROWS as u64).step_by(450) {
            let part = load(&opts(path, Some(start..start + 450)));
            read += part.report.rows_read;
            used += part.report.rows_used;
            rejected += part.report.rows_rejected;
            lines += part.transactions.n_lines();
            examples.extend(part.report.examples.iter().map(|e| (e.line, e.reason)));
        }
        let r = &whole.report;
        assert_eq!(
            (read, used, rejected),
            (r.rows_read, r.rows_used, r.rows_rejected)
        );
        assert_eq!(lines, whole.transactions.n_lines());
        let expected: Vec<_> = r.examples.iter().map(|e| (e.line, e.reason)).collect();
        assert_eq!(examples, expected);
    }
}

#[test]
fn a_bad_row_in_a_range_is_named_by_its_row_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, paths) = files(dir.path());
    for path in &paths {
        let mut o = opts(path, Some(1_100..1_600));
        o.on_bad_rows = BadRowPolicy::Error;
        let err = custvalue::load(&o).unwrap_err().to_string();
        // Row 1,203 (from 0) has no customer: it is row 1,204 counted from 1.
        assert!(err.contains("row 1204"), "{err}");
        assert!(err.contains("customer_id"), "{err}");
    }
}

#[test]
fn a_row_range_on_csv_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("tx.csv");
    std::fs::write(&csv, "customer_id,ts,amount\nA,2024-01-01,1\n").unwrap();
    let err = custvalue::load(&opts(&csv, Some(0..1))).unwrap_err();
    assert!(err.to_string().contains("row range"), "{err}");
}

#[test]
fn a_decimal_money_column_loads_exactly() {
    // tests/fixtures/decimal_amounts.parquet: customer_id, ts (date32), amount
    // DECIMAL(38,2), written by pyarrow 26 (3 rows: A 10.25, B 99.99, A -3.10). Once
    // refused; now read through the Parquet decoder without polars' decimal type (the
    // DECIMAL wider than 38 digits that is still refused: tests/it/warehouse.rs).
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/decimal_amounts.parquet");
    let loaded = load(&opts(&path, None));
    assert_eq!(loaded.report.rows_used, 3);
    assert_eq!(loaded.transactions.amount, [1025, -310, 9999]);
    assert_cmd::Command::cargo_bin("custvalue")
        .unwrap()
        .args(["summary", "--input", path_str(&path), "--quiet"])
        .assert()
        .code(0)
        .stdout(predicates::str::contains("7.15"))
        .stderr(predicates::str::contains("panicked").not());
}

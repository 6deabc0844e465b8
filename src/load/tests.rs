use std::sync::{Arc, Mutex};

use super::*;

/// Loads with an observer that records every event.
fn load_watched(opts: &mut LoadOptions) -> (Loaded, Vec<LoadProgress>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    opts.progress = LoadObserver::new(move |p| sink.lock().unwrap().push(p));
    // One worker, so Parquet rows are converted in groups small enough to report
    // mid-file whatever the machine.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let loaded = pool.install(|| load(opts)).unwrap();
    let events = events.lock().unwrap().clone();
    (loaded, events)
}

/// Events start at zero, only grow, report mid-file, and end at every byte and row.
fn check_events(events: &[LoadProgress], loaded: &Loaded, paths: &[&Path]) {
    let total: u64 = paths
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    let first = events.first().expect("some events");
    assert_eq!((first.bytes, first.rows, first.file), (0, 0, 0));
    for w in events.windows(2) {
        assert!(w[0].bytes <= w[1].bytes, "{w:?}");
        assert!(w[0].rows <= w[1].rows, "{w:?}");
        assert!(w[0].file <= w[1].file, "{w:?}");
    }
    assert!(
        events
            .iter()
            .all(|e| e.total_bytes == total && e.files == paths.len() && e.bytes <= total),
        "{events:?}"
    );
    let last = events.last().unwrap();
    assert_eq!(last.bytes, total);
    assert_eq!(last.rows, loaded.report.rows_read);
    assert_eq!(last.file, paths.len() - 1);
    let mid = events
        .iter()
        .filter(|e| e.rows > 0 && e.rows < last.rows && e.bytes > 0 && e.bytes < total)
        .count();
    assert!(mid >= 2, "no progress between start and end: {events:?}");
}

fn synth_csv(dir: &Path, rows: u64) -> PathBuf {
    let path = dir.join("tx.csv");
    let params = crate::synth::SynthParams::for_rows(rows, 3);
    crate::synth::write_csv(&params, File::create(&path).unwrap()).unwrap();
    path
}

/// A CSV of `rows` lines with a bad amount every 40,000 lines, and lines that make
/// cutting hard: quoted fields with delimiters, quotes and line ends inside, CRLF and
/// lone-CR line ends, blank lines.
fn csv_across_batches(dir: &Path, rows: usize) -> PathBuf {
    let path = dir.join("batches.csv");
    let mut text = String::from("customer_id,ts,amount,category\n");
    for i in 0..rows {
        let amount = if i % 40_000 == 7 {
            "x".to_string()
        } else {
            format!("{}.{:02}", i % 97, i % 100)
        };
        let category = match i % 11 {
            3 => format!("\"k{},\n\"\"x\"\"\"", i % 7),
            5 => format!("\"k{}\r\nq\"", i % 7),
            _ => format!("k{}", i % 7),
        };
        let end = match i % 13 {
            4 => "\r\n",
            6 => "\r",
            8 => "\n\n",
            9 => "\r\n\r\n",
            _ => "\n",
        };
        text.push_str(&format!(
            "c{},2024-01-{:02},{amount},{category}{end}",
            i % 5_000,
            1 + i % 28,
        ));
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// Loads `opts` with CSV blocks and pieces of these sizes on `threads` threads.
fn load_split(opts: &LoadOptions, threads: usize, split: (usize, usize)) -> Result<Loaded> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let config = LoadConfig {
        csv_split: split,
        ..LoadConfig::default()
    };
    pool.install(|| load_with(opts, config))
}

#[test]
fn csv_cut_into_blocks_and_pieces_gives_the_load_of_one_piece() {
    let dir = tempfile::tempdir().unwrap();
    let csv = csv_across_batches(dir.path(), 90_000);
    let whole = (usize::MAX / 2, usize::MAX / 2);
    let run = |threads: usize, split: (usize, usize), policy: BadRowPolicy| {
        let mut opts = LoadOptions::new([csv.to_str().unwrap()]);
        opts.on_bad_rows = policy;
        opts.max_examples = 100;
        load_split(&opts, threads, split).unwrap()
    };
    let one = run(1, whole, BadRowPolicy::Skip);
    assert_eq!(one.report.rows_read, 90_000);
    assert_eq!(one.report.rows_rejected, 3);
    // The bad amounts of rows 7, 40,007 and 80,007 are on these physical lines (header
    // 1; rows end in one line end, or two for blank lines and quoted line ends).
    let line_of = |row: usize| {
        2 + (0..row)
            .map(|i| {
                1 + usize::from(matches!(i % 13, 8 | 9)) + usize::from(matches!(i % 11, 3 | 5))
            })
            .sum::<usize>() as u64
    };
    let lines: Vec<u64> = one.report.examples.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![line_of(7), line_of(40_007), line_of(80_007)]);
    let quarantine = |threads, split| {
        let path = dir.path().join("q.csv");
        run(threads, split, BadRowPolicy::Quarantine(path.clone()));
        std::fs::read_to_string(path).unwrap()
    };
    let expected_quarantine = quarantine(1, whole);
    for threads in [1, 2, 3] {
        for split in [(1 << 16, 1 << 10), (4096, 97), (1 << 20, 1 << 14), whole] {
            let many = run(threads, split, BadRowPolicy::Skip);
            assert_eq!(many.report, one.report, "{threads} threads, {split:?}");
            let (a, b) = (
                many.transactions.to_frame().unwrap(),
                one.transactions.to_frame().unwrap(),
            );
            assert!(a.equals_missing(&b), "{threads} threads, {split:?}");
            assert_eq!(
                quarantine(threads, split),
                expected_quarantine,
                "{threads}, {split:?}"
            );
        }
    }
}

#[test]
fn plain_csv_cut_by_byte_search_keeps_every_line_number() {
    // Text without quotes or carriage returns is cut by byte search (`plain_cuts`); one
    // stretch of quoted fields and CRLF ends is cut line by line; blank lines move the
    // line numbers of the bad amounts after them.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("plain.csv");
    let mut text = String::from("customer_id,ts,amount,category\n");
    let (mut line, mut bad_lines) = (2u64, Vec::new());
    for i in 0..60_000 {
        let quoted = (20_000..20_050).contains(&i);
        let amount = if i % 9_000 == 5 {
            bad_lines.push(line);
            "x".to_string()
        } else {
            format!("{}.{:02}", i % 89, i % 100)
        };
        let category = if quoted { "\"k,1\"" } else { "k2" };
        let end = match (quoted, i % 17) {
            (true, _) => "\r\n",
            (false, 3) => "\n\n",
            _ => "\n",
        };
        text.push_str(&format!(
            "c{},2024-02-{:02},{amount},{category}{end}",
            i % 3_001,
            1 + i % 28
        ));
        line += if end == "\n\n" { 2 } else { 1 };
    }
    std::fs::write(&csv, text).unwrap();
    let mut opts = LoadOptions::new([csv.to_str().unwrap()]);
    opts.on_bad_rows = BadRowPolicy::Skip;
    opts.max_examples = 100;
    let whole = load_split(&opts, 1, (usize::MAX / 2, usize::MAX / 2)).unwrap();
    let lines: Vec<u64> = whole.report.examples.iter().map(|e| e.line).collect();
    assert_eq!(lines, bad_lines);
    for threads in [1, 2, 3] {
        for split in [(4096, 97), (1 << 16, 1 << 10), (1 << 20, 1 << 14)] {
            let cut = load_split(&opts, threads, split).unwrap();
            assert_eq!(cut.report, whole.report, "{threads} threads, {split:?}");
            let (a, b) = (
                cut.transactions.to_frame().unwrap(),
                whole.transactions.to_frame().unwrap(),
            );
            assert!(a.equals_missing(&b), "{threads} threads, {split:?}");
        }
    }
}

#[test]
fn a_csv_read_failure_after_a_bad_row_reports_the_bad_row_first() {
    // The first bad amount is on line 9 (data row 7); the file ends in a quote that
    // never closes, found in a later block.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("late.csv");
    let mut text = String::from("customer_id,ts,amount\n");
    for i in 0..20_000 {
        let amount = if i == 7 {
            "x".to_string()
        } else {
            format!("{}", i % 90)
        };
        text.push_str(&format!(
            "c{},2024-01-{:02},{amount}\n",
            i % 500,
            1 + i % 28
        ));
    }
    text.push_str("c1,2024-01-01,\"5\n");
    std::fs::write(&csv, text).unwrap();
    for threads in [1, 2] {
        for split in [(1 << 14, 1 << 10), (usize::MAX / 2, usize::MAX / 2)] {
            let err = load_split(&LoadOptions::new([csv.to_str().unwrap()]), threads, split)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("line 9") && !err.contains("never closed"),
                "{threads}: {err}"
            );
        }
    }
    // Without the bad row, the unclosed quote is named with its line.
    let text = std::fs::read_to_string(&csv)
        .unwrap()
        .replace(",x\n", ",1\n");
    std::fs::write(&csv, text).unwrap();
    let err = load_split(
        &LoadOptions::new([csv.to_str().unwrap()]),
        2,
        (1 << 14, 1 << 10),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("line 20002") && err.contains("never closed"),
        "{err}"
    );
}

#[test]
fn progress_covers_every_byte_and_row_of_csv_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    let csv = synth_csv(dir.path(), 150_000);
    let gz = dir.path().join("tx2.csv.gz");
    let mut enc =
        flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
    std::io::copy(&mut File::open(&csv).unwrap(), &mut enc).unwrap();
    enc.finish().unwrap();

    let mut opts = LoadOptions::new([csv.to_str().unwrap(), gz.to_str().unwrap()]);
    let (loaded, events) = load_watched(&mut opts);
    // More than one block of each file, so progress is heard mid-file.
    assert!(std::fs::metadata(&csv).unwrap().len() > CSV_BLOCK as u64);
    check_events(&events, &loaded, &[&csv, &gz]);
    // The gzip file reports its compressed bytes while it is read, not only at the end.
    let csv_size = std::fs::metadata(&csv).unwrap().len();
    let gz_size = std::fs::metadata(&gz).unwrap().len();
    assert!(
        events.iter().any(|e| e.file == 1
            && e.bytes > csv_size
            && e.bytes < csv_size + gz_size
            && e.rows > loaded.report.files[0].rows_read),
        "{events:?}"
    );
}

#[test]
fn progress_covers_every_byte_and_row_of_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let csv = synth_csv(dir.path(), 150_000);
    let loaded = load(&LoadOptions::new([csv.to_str().unwrap()])).unwrap();
    let parquet = dir.path().join("tx.parquet");
    crate::output::write_frame(&mut loaded.transactions.to_frame().unwrap(), &parquet).unwrap();

    let mut opts = LoadOptions::new([parquet.to_str().unwrap()]);
    opts.columns.time = Some("date".into());
    let (loaded, events) = load_watched(&mut opts);
    check_events(&events, &loaded, &[&parquet]);
}

/// Loads with both Parquet/IPC conversions, at one and at three threads, and checks
/// they agree on everything: lines, customers, report, error, quarantine file.
fn check_strategies_agree(df: &mut DataFrame, configure: impl Fn(&mut LoadOptions)) {
    let dir = tempfile::tempdir().unwrap();
    let parquet = dir.path().join("tx.parquet");
    ParquetWriter::new(File::create(&parquet).unwrap())
        .with_row_group_size(Some(7))
        .finish(df)
        .unwrap();
    let ipc = dir.path().join("tx.arrow");
    IpcWriter::new(File::create(&ipc).unwrap())
        .finish(df)
        .unwrap();
    let policies = [
        BadRowPolicy::Error,
        BadRowPolicy::Skip,
        BadRowPolicy::Quarantine(dir.path().join("q.csv")),
    ];
    for path in [&parquet, &ipc] {
        for policy in &policies {
            let mut opts = LoadOptions::new([path.to_str().unwrap()]);
            opts.on_bad_rows = policy.clone();
            opts.max_examples = 1_000;
            configure(&mut opts);
            let run = |strategy: Strategy, threads: usize, batch_rows: u64| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let config = LoadConfig {
                    strategy,
                    batch_rows,
                    ..LoadConfig::default()
                };
                let loaded = pool.install(|| load_with(&opts, config));
                let quarantined = match policy {
                    BadRowPolicy::Quarantine(q) => std::fs::read_to_string(q).ok(),
                    _ => None,
                };
                (loaded.map_err(|e| e.to_string()), quarantined)
            };
            // The reference reads the file in one batch. Parquet row groups hold 7
            // rows: batches of at most 5 rows cut each of them in two, batches of
            // 1,000 rows join 142.
            let (expected, expected_q) = run(Strategy::RowWise, 1, u64::MAX);
            let batchings = [(1, BATCH_ROWS), (3, BATCH_ROWS), (2, 5), (3, 1_000)];
            for (threads, batch_rows) in batchings {
                let (got, got_q) = run(Strategy::Columnar, threads, batch_rows);
                let what = format!(
                    "{path:?} {policy:?} at {threads} threads, batches of {batch_rows} rows"
                );
                assert_eq!(got_q, expected_q, "{what}");
                match (&got, &expected) {
                    (Ok(a), Ok(b)) => {
                        let (x, y) = (&a.transactions, &b.transactions);
                        assert_eq!(x.ids, y.ids, "{what}");
                        assert_eq!(x.offsets, y.offsets, "{what}");
                        assert_eq!(x.day, y.day, "{what}");
                        assert_eq!(x.amount, y.amount, "{what}");
                        assert_eq!(x.profit, y.profit, "{what}");
                        assert_eq!(x.order, y.order, "{what}");
                        assert_eq!(x.category, y.category, "{what}");
                        assert_eq!(x.categories, y.categories, "{what}");
                        assert_eq!(x.as_of, y.as_of, "{what}");
                        assert_eq!(a.report, b.report, "{what}");
                    }
                    (Err(a), Err(b)) => assert_eq!(a, b, "{what}"),
                    _ => panic!("{what}: {got:?} but row by row {expected:?}"),
                }
            }
        }
    }
}

const N: usize = 3_000;

/// Amounts that are awkward to convert: halves in binary and decimal, NaN, infinity,
/// nulls, returns, values too large for minor units.
fn tricky_amount(i: usize) -> Option<f64> {
    match i % 23 {
        0 => Some(1.005),
        1 => Some(-0.125),
        2 => Some(2.675),
        3 if i.is_multiple_of(5) => Some(f64::NAN),
        4 if i.is_multiple_of(7) => Some(f64::NEG_INFINITY),
        5 if i.is_multiple_of(11) => None,
        6 if i.is_multiple_of(13) => Some(1e300),
        7 => Some(-(i as f64) / 8.0),
        8 => Some(0.015),
        _ => Some(i as f64 * 0.37 - 100.0),
    }
}

fn tricky_micros(i: usize) -> Option<i64> {
    const DAY: i64 = 86_400_000_000;
    match i % 31 {
        0 if i.is_multiple_of(3) => None,
        1 if i.is_multiple_of(4) => Some(-719_162 * DAY), // 0001-01-01
        2 if i.is_multiple_of(4) => Some(2_932_896 * DAY), // 9999-12-31
        3 if i.is_multiple_of(9) => Some(2_932_897 * DAY), // year 10000
        4 if i.is_multiple_of(9) => Some(-719_163 * DAY), // year 0
        5 => Some(-1),                                    // just before 1970
        _ => Some(19_000 * DAY + (i as i64 * 7_777_777_777) % (400 * DAY)),
    }
}

fn text_ids() -> Vec<Option<String>> {
    (0..N)
        .map(|i| match i % 17 {
            0 if i.is_multiple_of(2) => None,
            1 => Some(format!("  C{:03} ", i % 40)),
            2 => Some(format!("C{:03}\u{a0}", i % 40)),
            3 => Some(format!("a-long-customer-id-{:05}", i % 60)),
            4 => Some("   ".into()),
            5 => Some(format!("Ü{}", i % 9)),
            _ => Some(format!("C{:03}", (i * 7) % 97)),
        })
        .collect()
}

fn tricky_frame(id: Column) -> DataFrame {
    let n = N;
    let ts = Column::new("ts".into(), (0..n).map(tricky_micros).collect::<Vec<_>>())
        .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
        .unwrap();
    let order: Vec<Option<String>> = (0..n)
        .map(|i| (i % 6 != 0).then(|| format!(" O{} ", i / 4)))
        .collect();
    let category: Vec<Option<&str>> = (0..n)
        .map(|i| match i % 9 {
            0 => None,
            1 => Some(" "),
            2 => Some(" toys "),
            k => Some(["books", "games", "food", "garden", "music", "Ölfarben"][k - 3]),
        })
        .collect();
    let cost: Vec<Option<f64>> = (0..n)
        .map(|i| match i % 10 {
            0 => None,
            1 if i.is_multiple_of(7) => Some(f64::NAN),
            _ => Some(i as f64 * 0.011),
        })
        .collect();
    DataFrame::new(
        n,
        vec![
            id,
            ts,
            Column::new(
                "amount".into(),
                (0..n).map(tricky_amount).collect::<Vec<_>>(),
            ),
            Column::new("cost".into(), cost),
            Column::new("order_id".into(), order),
            Column::new("category".into(), category),
        ],
    )
    .unwrap()
}

#[test]
fn columnar_equals_row_by_row_on_text_ids() {
    let mut df = tricky_frame(Column::new("customer_id".into(), text_ids()));
    check_strategies_agree(&mut df, |_| {});
    check_strategies_agree(&mut df, |o| o.as_of = Some(19_200));
    check_strategies_agree(&mut df, |o| {
        o.currency_decimals = 0;
        o.margin = money::Ratio::parse("0.35").unwrap();
    });
    // Text ids declared as integers: most are rejected.
    check_strategies_agree(&mut df, |o| o.customer_id_type = IdType::Int);
}

#[test]
fn columnar_equals_row_by_row_on_categorical_ids() {
    let ids = Column::new("customer_id".into(), text_ids())
        .cast(&DataType::from_categories(Categories::global()))
        .unwrap();
    let mut df = tricky_frame(ids);
    check_strategies_agree(&mut df, |_| {});
}

#[test]
fn columnar_equals_row_by_row_on_integer_ids() {
    let ids: Vec<Option<i64>> = (0..N)
        .map(|i| match i % 19 {
            0 if i.is_multiple_of(2) => None,
            1 => Some(i64::MIN),
            2 => Some(i64::MAX),
            3 => Some(-(i as i64 % 50)),
            _ => Some((i as i64 * 7) % 131),
        })
        .collect();
    let mut df = tricky_frame(Column::new("customer_id".into(), ids));
    check_strategies_agree(&mut df, |_| {});
    check_strategies_agree(&mut df, |o| o.customer_id_type = IdType::Text);
    let small: Vec<Option<i32>> = (0..N as i32)
        .map(|i| (i % 5 != 0).then_some(i % 77))
        .collect();
    let mut df = tricky_frame(Column::new("customer_id".into(), small));
    check_strategies_agree(&mut df, |_| {});
}

#[test]
fn columnar_equals_row_by_row_on_dates_and_other_column_types() {
    let ids = Column::new("customer_id".into(), text_ids());
    let mut df = tricky_frame(ids);
    // Days, far ones included, instead of timestamps.
    let days: Vec<Option<i32>> = (0..N as i32)
        .map(|i| match i % 41 {
            0 => None,
            1 => Some(-719_162),
            2 => Some(2_932_896),
            3 if i % 3 == 0 => Some(2_932_897),
            _ => Some(19_000 + i % 500),
        })
        .collect();
    df.replace(
        "ts",
        Column::new("ts".into(), days)
            .cast(&DataType::Date)
            .unwrap(),
    )
    .unwrap();
    check_strategies_agree(&mut df, |_| {});
    // Amounts as 32-bit floats, integers and text; nanosecond and millisecond times.
    let f32s: Vec<Option<f32>> = (0..N).map(|i| tricky_amount(i).map(|a| a as f32)).collect();
    let ints: Vec<Option<i64>> = (0..N)
        .map(|i| (i % 13 != 0).then_some(i as i64 - 900))
        .collect();
    let texts: Vec<Option<String>> = (0..N)
        .map(|i| match i % 8 {
            0 => None,
            1 => Some("1,5".into()),
            2 => Some(" 1.005 ".into()),
            3 => Some("-0.125".into()),
            4 => Some("1e3".into()),
            5 => Some("$4".into()),
            _ => Some(format!("{}.{:02}", i % 100, i % 97)),
        })
        .collect();
    for amount in [
        Column::new("amount".into(), f32s),
        Column::new("amount".into(), ints),
        Column::new("amount".into(), texts),
    ] {
        df.replace("amount", amount).unwrap();
        check_strategies_agree(&mut df, |_| {});
    }
    for unit in [TimeUnit::Nanoseconds, TimeUnit::Milliseconds] {
        let micros: Vec<Option<i64>> = (0..N)
            .map(|i| {
                tricky_micros(i).map(|m| m.clamp(-9_000_000_000_000_000 / 1000, i64::MAX / 1000))
            })
            .collect();
        let scaled: Vec<Option<i64>> = micros
            .iter()
            .map(|m| {
                m.map(|m| {
                    if unit == TimeUnit::Nanoseconds {
                        m * 1000
                    } else {
                        m / 1000
                    }
                })
            })
            .collect();
        let ts = Column::new("ts".into(), scaled)
            .cast(&DataType::Datetime(unit, None))
            .unwrap();
        df.replace("ts", ts).unwrap();
        check_strategies_agree(&mut df, |_| {});
    }
}

#[test]
fn columnar_equals_row_by_row_with_quantity_times_unit_price() {
    let n = N;
    let mut df = tricky_frame(Column::new("customer_id".into(), text_ids()));
    let _ = df.drop_in_place("amount").unwrap();
    let quantity: Vec<Option<i64>> = (0..n)
        .map(|i| (i % 29 != 0).then_some(i as i64 % 7 - 2))
        .collect();
    let price: Vec<Option<f64>> = (0..n).map(tricky_amount).collect();
    df.with_column(Column::new("quantity".into(), quantity))
        .unwrap();
    df.with_column(Column::new("unit_price".into(), price))
        .unwrap();
    check_strategies_agree(&mut df, |_| {});
}

/// Frames without nulls take the fast loop ([`FastColumns`]); a chunk holding a value
/// it does not settle (a blank id, NaN, a day out of range or after the as-of date)
/// is converted again row by row, and must come out the same.
#[test]
fn columnar_equals_row_by_row_without_nulls() {
    fn filled<T: Clone>(values: Vec<Option<T>>, with: T) -> Vec<T> {
        values
            .into_iter()
            .map(|v| v.unwrap_or_else(|| with.clone()))
            .collect()
    }
    let frame = |ids: Column, clean: bool| {
        let mut df = tricky_frame(ids);
        // The values of `tricky_frame`, without its nulls.
        let amount: Vec<Option<f64>> = (0..N).map(tricky_amount).collect();
        let cost: Vec<Option<f64>> = (0..N)
            .map(|i| (i % 10 != 0).then_some(i as f64 * 0.011))
            .map(|c| c.map(|c| if c > 20.0 { f64::NAN } else { c }))
            .collect();
        let order: Vec<Option<String>> = (0..N)
            .map(|i| (i % 6 != 0).then(|| format!(" O{} ", i / 4)))
            .collect();
        let category: Vec<Option<String>> = (0..N)
            .map(|i| match i % 9 {
                0 => None,
                1 => Some(" ".into()),
                k => {
                    Some(["toys", "books", "games", "food", "garden", "music", "Öl"][k - 2].into())
                }
            })
            .collect();
        let micros: Vec<Option<i64>> = (0..N).map(tricky_micros).collect();
        let day = 86_400_000_000i64;
        let (amount, cost, micros): (Vec<f64>, Vec<f64>, Vec<i64>) = if clean {
            let ok = |v: Option<f64>, i: usize| match v {
                Some(v) if v.is_finite() && v.abs() < 1e9 => v,
                _ => i as f64 * 0.01,
            };
            (
                amount.iter().enumerate().map(|(i, &v)| ok(v, i)).collect(),
                cost.iter().enumerate().map(|(i, &v)| ok(v, i)).collect(),
                (0..N as i64)
                    .map(|i| 19_000 * day + i * 7_777_777)
                    .collect(),
            )
        } else {
            (
                filled(amount, f64::NAN),
                filled(cost, 0.5),
                filled(micros, 2_932_897 * day),
            )
        };
        let ts = Column::new("ts".into(), micros)
            .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
            .unwrap();
        df.replace("ts", ts).unwrap();
        df.replace("amount", Column::new("amount".into(), amount))
            .unwrap();
        df.replace("cost", Column::new("cost".into(), cost))
            .unwrap();
        df.replace(
            "order_id",
            Column::new("order_id".into(), filled(order, "  ".into())),
        )
        .unwrap();
        df.replace(
            "category",
            Column::new("category".into(), filled(category, " ".into())),
        )
        .unwrap();
        for c in df.columns() {
            assert_eq!(c.null_count(), 0, "{}", c.name());
        }
        df
    };
    let text = |blank: &str| {
        let ids = filled(text_ids(), blank.to_string());
        Column::new("customer_id".into(), ids)
    };
    for clean in [false, true] {
        // Blank ids (rejected) only where the values are tricky too.
        let mut df = frame(text(if clean { "C000" } else { " " }), clean);
        check_strategies_agree(&mut df, |o| o.as_of = Some(19_030));
        if clean {
            // Without cost and order columns: margins and times stand in.
            let _ = df.drop_in_place("cost").unwrap();
            let _ = df.drop_in_place("order_id").unwrap();
            check_strategies_agree(&mut df, |o| {
                o.currency_decimals = 0;
                o.margin = money::Ratio::parse("0.35").unwrap();
            });
        } else {
            let ints: Vec<i64> = (0..N as i64).map(|i| (i * 7) % 131 - 20).collect();
            let mut df = frame(Column::new("customer_id".into(), ints), clean);
            check_strategies_agree(&mut df, |_| {});
        }
    }
}

#[test]
fn f64_to_minor_fast_path_equals_the_shortest_text() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for k in 0..200_000 {
        crate::xorshift(&mut x);
        let cents = (x % 2_000_000) as i64 - 1_000_000;
        // Values near halves of a cent, as written with three and four decimals.
        let v = match k % 3 {
            0 => cents as f64 / 1000.0,
            1 => cents as f64 / 10_000.0,
            _ => f64::from_bits(x >> 2) * if x & 1 == 0 { 1.0 } else { -1.0 },
        };
        if !v.is_finite() {
            continue;
        }
        for decimals in [0, 2, 3] {
            let slow = money::parse_decimal(&format!("{v}")).and_then(|d| d.to_minor(decimals));
            assert_eq!(money::f64_to_minor(v, decimals), slow, "{v} at {decimals}");
        }
    }
}

/// Rows cut into batches keep their numbers in the file and their order: a bad row
/// of a later batch is named by its row in the file, and a customer whose lines lie
/// in several batches gets them in file order, as when the file is read at once.
#[test]
fn batches_keep_row_numbers_and_line_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tx.parquet");
    let ids = ["A", "B", "A", "C", "B", "A", "C"];
    let days = [
        "2024-01-03",
        "2024-01-02",
        "2024-01-01",
        "2024-01-04",
        "not a date",
        "2024-01-02",
        "2024-01-05",
    ];
    let mut df = DataFrame::new(
        ids.len(),
        vec![
            Column::new("customer_id".into(), ids),
            Column::new("ts".into(), days),
            Column::new("amount".into(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]),
        ],
    )
    .unwrap();
    ParquetWriter::new(File::create(&path).unwrap())
        .with_row_group_size(Some(2))
        .finish(&mut df)
        .unwrap();
    let mut opts = LoadOptions::new([path.to_str().unwrap()]);
    let batched = LoadConfig {
        strategy: Strategy::Columnar,
        batch_rows: 2,
        ..LoadConfig::default()
    };
    let err = load_with(&opts, batched).unwrap_err().to_string();
    assert!(err.contains(": row 5, column 'ts'"), "{err}");
    assert!(err.contains("\"not a date\""), "{err}");

    opts.on_bad_rows = BadRowPolicy::Skip;
    let got = load_with(&opts, batched).unwrap();
    let whole = load_with(&opts, LoadConfig::default()).unwrap();
    assert_eq!((got.report.rows_read, got.report.rows_rejected), (7, 1));
    assert_eq!(got.report, whole.report);
    let tx = &got.transactions;
    assert_eq!(
        tx.ids,
        CustomerIds::Text(["A", "B", "C"].into_iter().collect())
    );
    assert_eq!(tx.offsets, [0, 3, 4, 6]);
    assert_eq!(tx.amount, [100, 300, 600, 200, 400, 700]);
    assert_eq!(tx.day, whole.transactions.day);
    assert_eq!(tx.order, whole.transactions.order);
}

use crate::xorshift;

#[test]
fn ids_registered_by_shard_get_the_codes_of_registering_them_row_by_row() {
    // 60,000 rows (four runs of rows) over 5,000 ids in 3 shards, every seventh row
    // rejected; the codes are appended after two earlier ones.
    let mut x = 7u64;
    let keys: Vec<i64> = (0..60_000)
        .map(|_| (xorshift(&mut x) % 5_000) as i64)
        .collect();
    let part: Vec<u8> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| match i % 7 {
            3 => REJECTED,
            _ => shard_of(shard_hash(k), 3) as u8,
        })
        .collect();
    let mut one_by_one = IdTable::<i64>::new(3);
    let mut expected = vec![8, 9];
    for (k, &q) in keys.iter().zip(&part) {
        if q != REJECTED {
            expected.push(one_by_one.code(k));
        }
    }
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let mut table = IdTable::<i64>::new(3);
        let mut codes = vec![8, 9];
        let hash: Vec<u64> = keys.iter().map(shard_hash).collect();
        pool.install(|| {
            table.register_partitioned::<i64, _>(&part, &hash, |i| keys[i], &mut codes)
        });
        assert_eq!(codes, expected, "{threads} threads");
    }
}

#[test]
fn scatter_moves_every_value_to_its_position_once_at_any_thread_count() {
    // A random permutation (Fisher-Yates), long enough for several parts a thread.
    let n = 300_000;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut position: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        position.swap(i, (xorshift(&mut x) % (i as u64 + 1)) as usize);
    }
    let values: Vec<u64> = (0..n as u64).map(|v| v * 10).collect();
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let placed = pool.install(|| scatter(&values, &position, |v| v + 1, Vec::new()));
        assert_eq!(placed.len(), n);
        for (i, &p) in position.iter().enumerate() {
            assert_eq!(placed[p], values[i] + 1, "value {i}, {threads} threads");
        }
    }
}

#[test]
fn grouping_lines_is_a_stable_sort_by_rank_in_any_number_of_parts() {
    // 1,000 lines of 37 customers coded in a scrambled order; customer 36 has none.
    let n_customers = 37;
    let rank: Vec<u32> = (0..n_customers as u32).map(|c| (c * 11) % 37).collect();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let customer: Vec<u32> = (0..1_000).map(|_| (xorshift(&mut x) % 36) as u32).collect();
    // The reference: line numbers sorted by rank, ties in line order.
    let mut by_rank: Vec<usize> = (0..customer.len()).collect();
    by_rank.sort_by_key(|&i| rank[customer[i] as usize]);
    for parts in [1, 2, 3, 4, 7, 1_000, 5_000] {
        let (offsets, position) = group_lines(&mut customer.clone(), &rank, n_customers, parts);
        for (place, &line) in by_rank.iter().enumerate() {
            assert_eq!(position[line], place, "line {line}, {parts} parts");
        }
        for r in 0..n_customers {
            for &i in &by_rank[offsets[r]..offsets[r + 1]] {
                assert_eq!(rank[customer[i] as usize], r as u32);
            }
        }
        assert_eq!(offsets[n_customers], customer.len());
    }
    let (offsets, position) = group_lines(&mut [], &rank, n_customers, 2);
    assert_eq!((offsets, position), (vec![0; n_customers + 1], vec![]));
}

#[test]
fn text_ids_keep_every_id_apart_even_empty_ones() {
    let ids: TextIds = ["", "ab", "", "c", ""].into_iter().collect();
    assert_eq!(ids.len(), 5);
    assert_eq!(ids.iter().collect::<Vec<_>>(), ["", "ab", "", "c", ""]);
    assert_eq!(&ids[1], "ab");
    let picked = ids.select([3, 1, 1]);
    assert_eq!(picked.iter().collect::<Vec<_>>(), ["c", "ab", "ab"]);
    let mut pushed = TextIds::new();
    for id in ["c", "ab", "ab"] {
        pushed.push(id);
    }
    assert_eq!(picked, pushed);
    assert!(TextIds::new().is_empty());
    assert!(std::panic::catch_unwind(|| ids.get(5).len()).is_err());
}

#[test]
fn text_ids_from_a_slice_equal_the_ids_pushed_one_by_one() {
    // Around the run size of 4,096 ids, with empty ids among them.
    for n in [0, 1, 4_095, 4_096, 4_097, 20_000] {
        let ids: Vec<String> = (0..n)
            .map(|i| {
                if i % 5 == 0 {
                    String::new()
                } else {
                    format!("{i:x}{}", "é".repeat(i % 3))
                }
            })
            .collect();
        let mut pushed = TextIds::new();
        ids.iter().for_each(|id| pushed.push(id));
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            assert_eq!(
                pool.install(|| TextIds::from_slice(&ids)),
                pushed,
                "{n} ids"
            );
        }
    }
}

#[test]
fn observers_leave_options_equal() {
    let watched = LoadOptions {
        progress: LoadObserver::new(|_| {}),
        ..LoadOptions::default()
    };
    assert!(watched.progress.is_set());
    assert_eq!(watched.progress, LoadOptions::default().progress);
    assert_eq!(format!("{:?}", watched.progress), "LoadObserver(set)");
}

#[test]
fn a_guarded_read_leaves_the_panic_hook_to_other_threads() {
    // A panic on another thread while a Parquet read runs must reach the process's hook
    // (a read used to swap in a silent hook for its duration, losing such messages).
    const MESSAGE: &str = "a panic beside a guarded read";
    let seen = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let previous = std::panic::take_hook();
    let flag = Arc::clone(&seen);
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() == Some(&MESSAGE) {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        } else {
            previous(info);
        }
    }));
    let read = guarded_read(Path::new("beside.parquet"), || {
        let _ = std::thread::spawn(|| std::panic::panic_any(MESSAGE)).join();
        Ok(7)
    });
    assert_eq!(read.unwrap(), 7);
    assert!(
        seen.load(std::sync::atomic::Ordering::SeqCst),
        "the other thread's panic never reached the hook"
    );
    // A panic inside the read is still bad input naming the file, not a crash.
    let err = guarded_read(Path::new("corrupt.parquet"), || -> PolarsResult<()> {
        panic!("out of range")
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("corrupt.parquet") && err.contains("corrupt (out of range)"),
        "{err}"
    );
}

//! Loading from a polars [`DataFrame`] already in memory (the result of a warehouse
//! query, or a frame handed over from Python): the same column mapping, validation,
//! bad-row policy and load report as a file, with rows numbered by their index in the
//! frame, from 0 (`df[i]`), and the frame named [`FRAME_NAME`] in messages.
//!
//! Not for: reading files (see `delimited` and `columnar`).

use super::*;

/// How a frame is named in messages and in the load report, where a file's path stands.
pub const FRAME_NAME: &str = "DataFrame";

/// Loads the transaction lines of a frame.
///
/// Columns are mapped to roles by `opts.columns` as for a Parquet file, typed columns
/// (integers, floats, dates, datetimes) are taken as they are, text columns are parsed
/// as in a CSV file, and every row is validated. A bad row is handled by
/// `opts.on_bad_rows`; its message names the row by its index in the frame. The inputs,
/// CSV dialect, row range and progress observer of `opts` are not used.
///
/// ```
/// use custvalue::polars::prelude::*;
/// let df = df!(
///     "customer_id" => ["A", "B", "A"],
///     "ts" => ["2024-01-01", "2024-01-02", "2024-01-03"],
///     "amount" => [10.0, 5.5, -2.0],
/// )
/// .unwrap();
/// let loaded = custvalue::load_frame(&df, &custvalue::LoadOptions::default()).unwrap();
/// assert_eq!(loaded.report.rows_used, 3);
/// assert_eq!(loaded.transactions.n_customers(), 2);
/// ```
pub fn load_frame(df: &DataFrame, opts: &LoadOptions) -> Result<Loaded> {
    let file = FRAME_NAME;
    let mut quarantine = match &opts.on_bad_rows {
        BadRowPolicy::Quarantine(path) => {
            let mut out = AtomicFile::create(path)?;
            let mut w = csv::Writer::from_writer(out.writer());
            w.write_record(["file", "line", "column", "reason", "value", "record"])
                .and_then(|_| w.flush().map_err(Into::into))
                .map_err(|e| Error::Data(format!("writing {}: {e}", path.display())))?;
            drop(w);
            Some(out)
        }
        _ => None,
    };
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let m = Mapping::resolve(file, &names, &opts.columns)?;
    let mut b = Builder::new(opts);
    {
        let mut sink = RejectSink {
            policy: &opts.on_bad_rows,
            report: &mut b.report,
            quarantine: quarantine.as_mut(),
            max_examples: opts.max_examples,
        };
        convert_frame(file, df, &m, &mut b.rows, &mut sink)?;
    }
    let (read, used_rows, rejected) = (
        b.report.rows_read,
        b.report.rows_used,
        b.report.rows_rejected,
    );
    debug_assert_eq!(read, used_rows + rejected);
    b.report.files.push(FileReport {
        path: file.to_string(),
        bytes: df.estimated_size() as u64,
        rows_read: read,
        rows_used: used_rows,
        rows_rejected: rejected,
    });
    if b.rows.day.is_empty() && !opts.allow_empty {
        return Err(no_usable_rows(&[PathBuf::from(file)], read, rejected));
    }
    if let Some(q) = quarantine {
        let path = q.target().to_path_buf();
        q.commit()?;
        b.report.quarantine = Some(path);
    }
    Ok(b.finish())
}

/// Converts every row of `df` (mapped by `m`) as a Parquet batch is converted (each
/// column is read in one chunk), numbering rows from 0.
fn convert_frame(
    file: &str,
    df: &DataFrame,
    m: &Mapping,
    rows: &mut Rows,
    sink: &mut RejectSink,
) -> Result<()> {
    let typed = |i: usize, role: Role| Typed::from_column(file, &df.columns()[i], role, None);
    let roles = RoleColumns::new(file, m, rows, typed)?;
    rows.reserve(df.height());
    let columns = ColumnarRows {
        n: df.height(),
        file,
        mapping: m,
        line: |i: usize| i as u64,
        cells: |i| roles.cells(i),
        customer: |i| roles.customer.cell(i),
        fast: roles.fast(),
    };
    columns.convert(rows, sink, |_| {})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CSV file's columns as text columns of a frame, as a query returns them.
    fn text_frame(path: &Path) -> DataFrame {
        let mut reader = csv::Reader::from_path(path).unwrap();
        let names: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        let mut values: Vec<Vec<String>> = vec![Vec::new(); names.len()];
        for record in reader.records() {
            for (k, v) in record.unwrap().iter().enumerate() {
                values[k].push(v.to_string());
            }
        }
        let height = values[0].len();
        let columns = names
            .iter()
            .zip(values)
            .map(|(n, v)| Column::new(n.as_str().into(), v))
            .collect();
        DataFrame::new(height, columns).unwrap()
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
    }

    #[test]
    fn a_frame_loads_as_its_file_does() {
        for name in ["tests/fixtures/hand.csv", "data-samples/transactions.csv"] {
            let path = fixture(name);
            let from_file = load(&LoadOptions::new([path.to_str().unwrap()])).unwrap();
            let from_frame = load_frame(&text_frame(&path), &LoadOptions::default()).unwrap();
            let (a, b) = (&from_frame.transactions, &from_file.transactions);
            assert_eq!(a.ids, b.ids, "{name}");
            assert_eq!(
                (
                    &a.offsets,
                    &a.day,
                    &a.amount,
                    &a.profit,
                    &a.order,
                    &a.category
                ),
                (
                    &b.offsets,
                    &b.day,
                    &b.amount,
                    &b.profit,
                    &b.order,
                    &b.category
                ),
                "{name}"
            );
            assert_eq!(
                (&a.categories, a.currency_decimals, a.as_of),
                (&b.categories, b.currency_decimals, b.as_of)
            );
            let (a, b) = (&from_frame.report, &from_file.report);
            assert_eq!(
                (a.rows_read, a.rows_used, a.rows_rejected, a.as_of),
                (b.rows_read, b.rows_used, b.rows_rejected, b.as_of)
            );
            assert_eq!(a.files[0].path, FRAME_NAME);
        }
    }

    #[test]
    fn typed_columns_are_taken_as_they_are() {
        let day = crate::time::parse_iso_date("2024-01-01").unwrap();
        let df = DataFrame::new(
            3,
            vec![
                Column::new("card".into(), [7i64, 8, 7]),
                Column::new("ts".into(), [day, day + 1, day + 2])
                    .cast(&DataType::Date)
                    .unwrap(),
                Column::new("amount".into(), [1.005, 2.5, -0.125]),
            ],
        )
        .unwrap();
        let opts = LoadOptions {
            columns: ColumnNames {
                customer: Some("card".into()),
                ..ColumnNames::default()
            },
            ..LoadOptions::default()
        };
        let loaded = load_frame(&df, &opts).unwrap();
        let tx = &loaded.transactions;
        assert_eq!(tx.ids, CustomerIds::Int(vec![7, 8]));
        assert_eq!(tx.amount, vec![101, -13, 250]);
        assert_eq!(tx.as_of, day + 3);
    }

    fn bad_frame() -> DataFrame {
        DataFrame::new(
            3,
            vec![
                Column::new("customer_id".into(), ["A", "B", "C"]),
                Column::new("ts".into(), ["2024-01-01", "2024-01-02", "2024-01-03"]),
                Column::new("amount".into(), ["1", "ten", "3"]),
            ],
        )
        .unwrap()
    }

    #[test]
    fn a_bad_row_is_named_by_its_index() {
        let err = load_frame(&bad_frame(), &LoadOptions::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "DataFrame: row 1, column 'amount': bad amount: not a number: \"ten\" \
             (expected a decimal number like 12.34 or -5)"
        );
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn skipped_and_quarantined_rows_are_reported() {
        let opts = LoadOptions {
            on_bad_rows: BadRowPolicy::Skip,
            ..LoadOptions::default()
        };
        let loaded = load_frame(&bad_frame(), &opts).unwrap();
        let r = &loaded.report;
        assert_eq!((r.rows_read, r.rows_used, r.rows_rejected), (3, 2, 1));
        assert_eq!(r.rejected_by_reason.get(&RejectReason::BadAmount), Some(&1));
        assert_eq!((r.examples[0].place, r.examples[0].line), ("row", 1));

        let dir = tempfile::tempdir().unwrap();
        let q = dir.path().join("bad.csv");
        let opts = LoadOptions {
            on_bad_rows: BadRowPolicy::Quarantine(q.clone()),
            ..LoadOptions::default()
        };
        let loaded = load_frame(&bad_frame(), &opts).unwrap();
        assert_eq!(loaded.report.quarantine.as_deref(), Some(q.as_path()));
        let text = std::fs::read_to_string(&q).unwrap();
        assert_eq!(
            text,
            "file,line,column,reason,value,record\n\
             DataFrame,1,amount,bad_amount: not a number,ten,\"B,2024-01-02,ten\"\n"
        );
    }

    #[test]
    fn a_missing_column_names_the_frame_and_its_columns() {
        let df = bad_frame().drop("ts").unwrap();
        let err = load_frame(&df, &LoadOptions::default()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("DataFrame: no column 'ts' for the time; the file has columns: 'customer_id', 'amount'"),
            "{text}"
        );
    }

    #[test]
    fn a_frame_without_usable_rows_is_an_error() {
        let df = bad_frame().slice(1, 1);
        let opts = LoadOptions {
            on_bad_rows: BadRowPolicy::Skip,
            ..LoadOptions::default()
        };
        let err = load_frame(&df, &opts).unwrap_err();
        assert!(
            err.to_string()
                .contains("no usable transaction rows (1 read, 1 rejected)"),
            "{err}"
        );
    }
}

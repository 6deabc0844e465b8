use super::*;

pub(super) fn check_duplicate_names(file: &str, names: &[String]) -> Result<()> {
    for (i, n) in names.iter().enumerate() {
        if let Some(j) = names[..i].iter().position(|m| m == n) {
            return Err(Error::input(
                file,
                format!(
                    "duplicate column name '{n}' (columns {} and {})",
                    j + 1,
                    i + 1
                ),
            ));
        }
    }
    Ok(())
}

/// Value `i` of a one-chunk numeric column, `None` if null.
#[inline]
pub(super) fn flat<T: PolarsNumericType>(c: &ChunkedArray<T>, i: usize) -> Option<T::Native> {
    let a = c.downcast_as_array();
    match a.validity() {
        Some(valid) if !valid.get_bit(i) => None,
        _ => Some(a.value(i)),
    }
}

/// How a Parquet/IPC column is read.
pub(super) enum Typed {
    Text(StringChunked),
    Int(Int64Chunked),
    Float(Float64Chunked),
    Float32(Float32Chunked),
    Day(Int32Chunked),
    Datetime(Int64Chunked, TimeUnit),
    /// A DECIMAL money column (see `warehouse`).
    Decimal(Arc<DecimalColumn>),
}

impl Typed {
    /// `maxima` holds the largest values of unsigned columns over the whole file when the
    /// column is one batch of it.
    pub(super) fn from_column(
        file: &str,
        col: &Column,
        role: Role,
        maxima: Option<&UnsignedMaxima>,
    ) -> Result<Typed> {
        let s = col.as_materialized_series().rechunk();
        let s = &s;
        let wrong = || {
            Error::input(
                file,
                format!(
                    "column '{}' ({}) has type {}, which cannot hold a {}",
                    col.name(),
                    role.describe(),
                    col.dtype(),
                    role.describe()
                ),
            )
        };
        let temporal = matches!(role, Role::Time);
        let numeric = matches!(
            role,
            Role::Amount | Role::Quantity | Role::UnitPrice | Role::Cost
        );
        Ok(match col.dtype() {
            DataType::String => Typed::Text(s.str()?.clone()),
            DataType::Categorical(..) | DataType::Enum(..) => {
                Typed::Text(s.cast(&DataType::String)?.str()?.rechunk().into_owned())
            }
            DataType::Date if temporal => Typed::Day(s.date()?.physical().clone()),
            DataType::Datetime(unit, _) if temporal => {
                Typed::Datetime(s.datetime()?.physical().clone(), *unit)
            }
            DataType::Float64 if numeric => Typed::Float(s.f64()?.clone()),
            DataType::Float32 if numeric => Typed::Float32(s.f32()?.clone()),
            dt if dt.is_integer() && !temporal => {
                if matches!(dt, DataType::UInt64) {
                    let whole = maxima.and_then(|m| m.get(col.name().as_str()));
                    let max = match whole {
                        Some(&max) => max,
                        None => s.u64()?.max().unwrap_or(0),
                    };
                    if max > i64::MAX as u64 {
                        return Err(Error::input(
                            file,
                            format!(
                                "column '{}' holds values beyond the 64-bit signed range",
                                col.name()
                            ),
                        ));
                    }
                }
                Typed::Int(s.cast(&DataType::Int64)?.i64()?.rechunk().into_owned())
            }
            _ => return Err(wrong()),
        })
    }

    /// The cell of row `i`. Columns hold one chunk (the batch was rechunked), so a cell
    /// is read straight from its array.
    pub(super) fn cell(&self, i: usize) -> Cell<'_> {
        match self {
            Typed::Text(c) => c.downcast_as_array().get(i).map(Cell::Text),
            Typed::Int(c) => flat(c, i).map(Cell::Int),
            Typed::Float(c) => flat(c, i).map(Cell::Float),
            Typed::Float32(c) => flat(c, i).map(Cell::Float32),
            Typed::Day(c) => flat(c, i).map(Cell::Day),
            Typed::Datetime(c, unit) => flat(c, i).map(|v| {
                Cell::Micros(match unit {
                    TimeUnit::Nanoseconds => v.div_euclid(1000),
                    TimeUnit::Microseconds => v,
                    TimeUnit::Milliseconds => v.saturating_mul(1000),
                })
            }),
            Typed::Decimal(c) => Some(c.cell(i)),
        }
        .unwrap_or(Cell::Null)
    }

    pub(super) fn is_int(&self) -> bool {
        matches!(self, Typed::Int(_))
    }
}

/// Runs a polars read of `path`, turning its errors and panics into bad-input errors.
///
/// polars panics on some corrupt files (a bad footer, say); those are bad input, not
/// crashes, so the panic is caught and reported as such, without its message on stderr.
/// Column types polars would panic on are read beside it or refused from the schema
/// first (see [`side_columns`]).
pub(super) fn guarded_read<T>(path: &Path, read: impl FnOnce() -> PolarsResult<T>) -> Result<T> {
    let file_name = path.display().to_string();
    let format = if is_ipc(path) { "Arrow IPC" } else { "Parquet" };
    match quiet_panics(read) {
        Ok(result) => {
            result.map_err(|e| Error::input(file_name, format!("cannot read as {format}: {e}")))
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unreadable");
            Err(Error::input(
                file_name,
                format!("cannot read as {format}: the file is corrupt ({what})"),
            ))
        }
    }
}

thread_local! {
    /// How many [`quiet_panics`] calls this thread is inside.
    static QUIET: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Runs `f`, catching a panic on this thread without the panic hook printing it.
///
/// The process's hook is wrapped once, never swapped around a read: the wrapper stays
/// silent only for a panic on a thread inside this function and passes every other panic
/// (on other threads, or after) to the hook it wrapped, so no message is lost to a race.
fn quiet_panics<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    static WRAPPED: std::sync::Once = std::sync::Once::new();
    WRAPPED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(|q| q.get()) == 0 {
                previous(info);
            }
        }));
    });
    QUIET.with(|q| q.set(q.get() + 1));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET.with(|q| q.set(q.get() - 1));
    result
}

pub(super) fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::io(path, e))
}

/// The number of rows of a Parquet or Arrow IPC file, from its metadata (no column data
/// is read).
pub fn columnar_rows(path: impl AsRef<Path>) -> Result<u64> {
    let path = path.as_ref();
    let file = open(path)?;
    let rows = match detect_format(path)? {
        Format::Parquet => guarded_read(path, || ParquetReader::new(file).num_rows())?,
        Format::Ipc => guarded_read(path, || {
            // An empty projection makes polars count the rows of each record batch
            // from its header instead of reading the batch.
            IpcReader::new(file)
                .with_projection(Some(Vec::new()))
                .finish()
                .map(|df| df.height())
        })?,
        Format::Csv { .. } => {
            return Err(Error::input(
                path.display().to_string(),
                "not a Parquet or Arrow IPC file",
            ));
        }
    };
    Ok(rows as u64)
}

/// Rows per batch of a Parquet/IPC file: the loader converts one batch at a time, so only
/// one batch of the decoded (string-heavy) frame exists at once.
pub(super) const BATCH_ROWS: u64 = 1 << 20;

/// A Parquet/IPC file opened for loading: only the mapped columns, only the rows of
/// `opts.row_range`, read a batch of rows at a time.
pub(super) struct ColumnarFile {
    pub(super) source: ColumnarSource,
    /// The columns to read, by name.
    pub(super) wanted: Vec<String>,
    /// Those of them read beside polars (DECIMAL, small unsigned integers).
    pub(super) side: Vec<SideColumn>,
    /// File rows (from 0) to load.
    pub(super) range: std::ops::Range<u64>,
}

pub(super) enum ColumnarSource {
    /// Parquet files are read a batch at a time (slice pushdown), reusing the footer.
    Parquet {
        path: PathBuf,
        metadata: FileMetadataRef,
    },
    /// The IPC reader can only stop early, so the file's rows up to the end of the range
    /// are read at once, unconcatenated, and each batch is one slice of them (the side
    /// columns too).
    Ipc {
        df: DataFrame,
        side: Vec<DecimalColumn>,
    },
}

impl ColumnarFile {
    pub(super) fn open(path: &Path, opts: &LoadOptions) -> Result<ColumnarFile> {
        let file_name = path.display().to_string();
        let ipc = is_ipc(path);
        let mut metadata = None;
        let schema = guarded_read(path, || {
            let file = File::open(path)?;
            if ipc {
                IpcReader::new(file).schema()
            } else {
                let mut reader = ParquetReader::new(file);
                let schema = reader.schema()?;
                metadata = Some(reader.get_metadata()?.clone());
                Ok(schema)
            }
        })?;
        let names: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
        // Resolving against every column names them all in a missing-column message.
        let wanted = Mapping::resolve(&file_name, &names, &opts.columns)?.used_names();
        let side = side_columns(&file_name, &schema, &wanted)?;
        let start = opts.row_range.as_ref().map_or(0, |r| r.start);
        let requested_end = opts.row_range.as_ref().map_or(u64::MAX, |r| r.end);
        let (source, rows) = match metadata {
            Some(metadata) => {
                let rows = metadata.num_rows as u64;
                let path = path.to_path_buf();
                (ColumnarSource::Parquet { path, metadata }, rows)
            }
            None => {
                let end = opts.row_range.as_ref().map(|r| r.end as usize);
                let df = guarded_read(path, || {
                    IpcReader::new(File::open(path)?)
                        .with_columns(Some(polars_columns(&wanted, &side)))
                        .with_n_rows(end)
                        .set_rechunk(false)
                        .finish()
                })?;
                let side_values = guarded_read(path, || read_ipc_side(path, end, &side))?;
                let rows = df.height() as u64;
                (
                    ColumnarSource::Ipc {
                        df,
                        side: side_values,
                    },
                    rows,
                )
            }
        };
        let end = requested_end.min(rows);
        Ok(ColumnarFile {
            source,
            wanted,
            side,
            range: start.min(end)..end,
        })
    }

    /// The row ranges read one at a time: whole Parquet row groups gathered up to about
    /// `batch_rows` rows (a larger row group is cut into pieces), or slices of
    /// `batch_rows` IPC rows. Always at least one range, so an empty file is still read.
    pub(super) fn batches(&self, batch_rows: u64) -> Vec<std::ops::Range<u64>> {
        let batch_rows = batch_rows.max(1);
        let mut ends: Vec<u64> = Vec::new();
        if let ColumnarSource::Parquet { metadata, .. } = &self.source {
            let mut group_start = 0u64;
            for group in &metadata.row_groups {
                let group_end = group_start + group.num_rows() as u64;
                let (lo, hi) = (
                    group_start.max(self.range.start),
                    group_end.min(self.range.end),
                );
                if lo < hi {
                    let pieces = (hi - lo).div_ceil(batch_rows);
                    ends.extend((1..pieces).map(|k| lo + (hi - lo) * k / pieces));
                    ends.push(hi);
                }
                group_start = group_end;
            }
        } else {
            ends.extend(
                (self.range.start..self.range.end)
                    .step_by(batch_rows as usize)
                    .skip(1),
            );
            ends.push(self.range.end);
        }
        // Neighbouring pieces are joined while the batch stays within `batch_rows`.
        let mut batches = Vec::new();
        let mut start = self.range.start;
        for (k, &end) in ends.iter().enumerate() {
            let last = k + 1 == ends.len();
            if last || ends[k + 1] - start > batch_rows {
                batches.push(start..end);
                start = end;
            }
        }
        if batches.is_empty() {
            batches.push(self.range.clone());
        }
        batches
    }

    /// The frame of one batch, each column in one chunk, and its DECIMAL columns.
    pub(super) fn read(&self, rows: &std::ops::Range<u64>) -> Result<(DataFrame, BatchDecimals)> {
        let len = (rows.end - rows.start) as usize;
        let (mut df, side) = match &self.source {
            ColumnarSource::Parquet { path, metadata } => guarded_read(path, || {
                let (groups, offset) = row_groups_of(metadata, rows);
                let side = read_parquet_side(path, &groups, offset, len, &self.side)?;
                let mut reader = ParquetReader::new(File::open(path)?);
                reader.set_metadata(groups);
                let df = reader
                    .with_columns(Some(polars_columns(&self.wanted, &self.side)))
                    .with_slice(Some((offset, len)))
                    // A batch is about one row group: decode its columns side by side.
                    .read_parallel(ParallelStrategy::Columns)
                    .finish()?;
                Ok((df, side))
            })?,
            ColumnarSource::Ipc { df, side } => {
                let start = rows.start.min(i64::MAX as u64);
                (
                    df.slice(start as i64, len),
                    slice_side(side, start as usize, len),
                )
            }
        };
        df.rechunk_mut();
        attach(df, &self.side, side)
    }
}

/// The columns polars reads: the wanted ones not read beside it.
fn polars_columns(wanted: &[String], side: &[SideColumn]) -> Vec<String> {
    wanted
        .iter()
        .filter(|w| !side.iter().any(|s| &s.name == *w))
        .cloned()
        .collect()
}

/// The footer of a Parquet file cut down to the row groups that hold `rows`, and where
/// `rows` start in them.
///
/// Given the whole footer and a slice, polars' reader still goes through every row group
/// before the slice (decompressing its pages to keep none of them), so reading a file a
/// batch at a time would cost time in the square of its length: 32 s of a 69 s load of
/// 100M lines.
pub(super) fn row_groups_of(
    metadata: &FileMetadataRef,
    rows: &std::ops::Range<u64>,
) -> (FileMetadataRef, usize) {
    let mut cut = (**metadata).clone();
    let mut start = 0u64;
    let mut first_start = None;
    cut.row_groups.clear();
    for group in &metadata.row_groups {
        let end = start + group.num_rows() as u64;
        if start < rows.end && rows.start < end {
            first_start.get_or_insert(start);
            cut.row_groups.push(group.clone());
        }
        start = end;
    }
    cut.num_rows = cut.row_groups.iter().map(|g| g.num_rows()).sum();
    let offset = rows.start - first_start.unwrap_or(rows.start);
    (Arc::new(cut), offset as usize)
}

/// Whether `path` names a Parquet file (by its extension).
pub fn is_parquet(path: &Path) -> bool {
    matches!(detect_format(path), Ok(Format::Parquet))
}

pub(super) fn is_ipc(path: &Path) -> bool {
    matches!(detect_format(path), Ok(Format::Ipc))
}

/// The largest value of each unsigned 64-bit column, by name, over a file's whole range.
pub(super) type UnsignedMaxima = BTreeMap<String, u64>;

impl ColumnarFile {
    /// The maxima of the columns of `first` (a batch) that hold unsigned 64-bit integers,
    /// read over the whole range, so that a value out of the signed range is reported
    /// before any row is converted, as when the file is read in one batch.
    pub(super) fn unsigned_maxima(&self, first: &DataFrame, time: &str) -> Result<UnsignedMaxima> {
        let names: Vec<String> = first
            .columns()
            .iter()
            .filter(|c| matches!(c.dtype(), DataType::UInt64) && c.name().as_str() != time)
            .map(|c| c.name().to_string())
            .collect();
        if names.is_empty() {
            return Ok(UnsignedMaxima::new());
        }
        let len = (self.range.end - self.range.start) as usize;
        let df = match &self.source {
            ColumnarSource::Parquet { path, metadata } => guarded_read(path, || {
                let (groups, offset) = row_groups_of(metadata, &self.range);
                let mut reader = ParquetReader::new(File::open(path)?);
                reader.set_metadata(groups);
                reader
                    .with_columns(Some(names.clone()))
                    .with_slice(Some((offset, len)))
                    .finish()
            })?,
            ColumnarSource::Ipc { df, .. } => df
                .select(names.iter().map(|n| n.as_str()))?
                .slice(self.range.start.min(i64::MAX as u64) as i64, len),
        };
        let mut maxima = UnsignedMaxima::new();
        for c in df.columns() {
            let max = c.as_materialized_series().u64()?.max().unwrap_or(0);
            maxima.insert(c.name().to_string(), max);
        }
        Ok(maxima)
    }
}

/// Loads the rows of a Parquet/IPC file a batch at a time.
///
/// Every batch is converted like a file of its own, except that rows keep their numbers
/// in the file and the file's bytes are credited as its rows are converted. Lines stay
/// in file order, so the grouped result does not depend on where batches are cut.
pub(super) fn load_columnar(
    path: &Path,
    opts: &LoadOptions,
    rows: &mut Rows,
    sink: &mut RejectSink,
    progress: &Tracker,
    config: LoadConfig,
) -> Result<()> {
    let file = path.display().to_string();
    let source = ColumnarFile::open(path, opts)?;
    let batches = source.batches(config.batch_rows);
    let n = source.range.end - source.range.start;
    let (size, rows_before) = (progress.size(), sink.report.rows_read);
    let credit = |done: u64| (u128::from(size) * u128::from(done) / u128::from(n.max(1))) as u64;
    rows.reserve(n as usize);
    let mut maxima = None;
    // With more than one thread, the next batch is decoded (on polars' threads) while
    // this one is converted (on rayon's), so the serial steps of either leave no core
    // idle; at most two batches are held. (With one thread, one thing at a time.) A
    // failing batch stops the load before the next one is looked at, as when reading
    // one batch at a time.
    let ahead = rayon::current_num_threads() > 1;
    std::thread::scope(|scope| {
        let (source, batches) = (&source, &batches);
        let read = |k: usize| scope.spawn(move || source.read(&batches[k]));
        let mut next = ahead.then(|| read(0));
        for (k, batch) in batches.iter().enumerate() {
            let (df, decimals) = match next.take().map(|h| h.join()) {
                Some(Ok(df)) => df?,
                Some(Err(panic)) => std::panic::resume_unwind(panic),
                None => source.read(batch)?,
            };
            if ahead && k + 1 < batches.len() {
                next = Some(read(k + 1));
            }
            let names: Vec<String> = df
                .get_column_names()
                .iter()
                .map(|n| n.to_string())
                .collect();
            let m = Mapping::resolve(&file, &names, &opts.columns)?;
            if k == 0 && batches.len() > 1 {
                maxima = Some(source.unsigned_maxima(&df, &m.names[m.time])?);
            }
            let before = batch.start - source.range.start;
            let frame = BatchFrame {
                file: &file,
                df: &df,
                mapping: &m,
                first_row: batch.start,
                maxima: maxima.as_ref(),
                decimals: &decimals,
            };
            frame.convert(rows, sink, config.strategy, |done| {
                let done = before + done as u64;
                progress.report(credit(done), rows_before + done);
            })?;
        }
        Ok(())
    })
}

/// How the loader reads Parquet/IPC files. Only tests change it.
#[derive(Debug, Clone, Copy)]
pub(super) struct LoadConfig {
    pub(super) strategy: Strategy,
    pub(super) batch_rows: u64,
    /// Hand the decoded batches' pages back before grouping (see
    /// [`release_free_memory`]); a streamed batch leaves that to the stream.
    pub(super) release_memory: bool,
    /// Bytes of a CSV block and of a piece parsed by one task.
    pub(super) csv_split: (usize, usize),
}

impl Default for LoadConfig {
    fn default() -> LoadConfig {
        LoadConfig {
            strategy: Strategy::Columnar,
            batch_rows: BATCH_ROWS,
            release_memory: true,
            csv_split: (CSV_BLOCK, CSV_PIECE),
        }
    }
}

/// One batch of a Parquet/IPC file, read into a frame.
pub(super) struct BatchFrame<'a> {
    pub(super) file: &'a str,
    pub(super) df: &'a DataFrame,
    pub(super) mapping: &'a Mapping,
    /// File row number (from 0) of the frame's first row.
    pub(super) first_row: u64,
    /// Set when the file is read in several batches.
    pub(super) maxima: Option<&'a UnsignedMaxima>,
    /// The batch's DECIMAL columns, which its frame holds as nulls.
    pub(super) decimals: &'a BatchDecimals,
}

impl BatchFrame<'_> {
    pub(super) fn convert(
        &self,
        rows: &mut Rows,
        sink: &mut RejectSink,
        strategy: Strategy,
        converted: impl FnMut(usize),
    ) -> Result<()> {
        let (file, m, first_row) = (self.file, self.mapping, self.first_row);
        let typed = |i: usize, role: Role| {
            let col = &self.df.columns()[i];
            match self.decimals.get(col.name().as_str()) {
                Some(decimal) => Typed::from_decimal(file, col.name(), decimal, role),
                None => Typed::from_column(file, col, role, self.maxima),
            }
        };
        let roles = RoleColumns::new(file, m, rows, typed)?;
        let row_cells = |i: usize| roles.cells(i);
        let line = |i: usize| first_row + i as u64 + 1;
        let n = self.df.height();
        if strategy == Strategy::RowWise {
            let convert_row = |i: usize, local: &mut Rows| -> Option<PendingReject> {
                let cells = row_cells(i);
                let reject = local.push(&cells, m).err()?;
                Some(PendingReject::new(&cells, m, reject, line(i)))
            };
            return convert(rows, sink, file, "row", n, convert_row, converted);
        }
        let columns = ColumnarRows {
            n,
            file,
            mapping: m,
            line,
            cells: row_cells,
            customer: |i| roles.customer.cell(i),
            fast: roles.fast(),
        };
        columns.convert(rows, sink, converted)
    }
}

/// A frame's mapped columns, typed once, and the kind of customer id they hold.
pub(super) struct RoleColumns {
    pub(super) kind: IdKind,
    pub(super) customer: Typed,
    time: Typed,
    amount: Typed,
    unit_price: Option<Typed>,
    order: Option<Typed>,
    cost: Option<Typed>,
    category: Option<Typed>,
}

impl RoleColumns {
    /// Types each mapped column (`typed(i, role)` for column `i`) and settles the kind of
    /// customer id, checked against the kind `rows` already holds.
    pub(super) fn new(
        file: &str,
        m: &Mapping,
        rows: &mut Rows,
        typed: impl Fn(usize, Role) -> Result<Typed>,
    ) -> Result<RoleColumns> {
        let customer = typed(m.customer, Role::Customer)?;
        let kind = match rows.declared {
            IdType::Int => IdKind::Int,
            IdType::Text => IdKind::Text,
            IdType::Auto if customer.is_int() => IdKind::Int,
            IdType::Auto => IdKind::Text,
        };
        rows.check_id_kind(kind, file)?;
        let time = typed(m.time, Role::Time)?;
        let (amount, unit_price) = match m.amount {
            AmountSource::Column(i) => (typed(i, Role::Amount)?, None),
            AmountSource::Product {
                quantity,
                unit_price,
            } => (
                typed(quantity, Role::Quantity)?,
                Some(typed(unit_price, Role::UnitPrice)?),
            ),
        };
        let optional = |i: Option<usize>, role| i.map(|i| typed(i, role)).transpose();
        Ok(RoleColumns {
            kind,
            customer,
            time,
            amount,
            unit_price,
            order: optional(m.order, Role::Order)?,
            cost: optional(m.cost, Role::Cost)?,
            category: optional(m.category, Role::Category)?,
        })
    }

    /// Row `i`'s cells by role.
    pub(super) fn cells(&self, i: usize) -> RowCells<'_> {
        fn opt(t: &Option<Typed>, i: usize) -> Cell<'_> {
            t.as_ref().map(|t| t.cell(i)).unwrap_or(Cell::Null)
        }
        RowCells {
            customer: self.customer.cell(i),
            time: self.time.cell(i),
            amount: self.amount.cell(i),
            unit_price: self.unit_price.as_ref().map(|t| t.cell(i)),
            order: opt(&self.order, i),
            cost: opt(&self.cost, i),
            category: opt(&self.category, i),
        }
    }

    /// The columns as arrays for the fast loop, when it can read them.
    pub(super) fn fast(&self) -> Option<FastColumns<'_>> {
        FastColumns::new(
            &self.customer,
            self.kind,
            &self.time,
            &self.amount,
            self.unit_price.is_some(),
            self.cost.as_ref(),
            self.order.as_ref(),
            self.category.as_ref(),
        )
    }
}

/// How Parquet/IPC rows are converted: column at a time (the default) or row by row
/// (the reference the tests compare against).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Strategy {
    Columnar,
    RowWise,
}

/// Marks a row without a customer partition: it was rejected.
pub(super) const REJECTED: u8 = u8::MAX;

/// The rows of a Parquet/IPC frame, converted column at a time.
///
/// Each row is validated by [`Rows::values`], exactly as [`Rows::push`] does, in
/// parallel chunks writing straight into whole-file columns. Customer ids are then
/// registered once per distinct id: rows are split into partitions by a hash of their
/// id and each partition is interned on its own thread, so no id is hashed into more
/// than one table and no chunk-local tables are merged. Rejections reach the bad-row
/// policy in row order and accepted rows keep their order, so the result equals the
/// row-by-row conversion.
pub(super) struct ColumnarRows<'a, 'c, L, R, C> {
    pub(super) n: usize,
    pub(super) file: &'a str,
    pub(super) mapping: &'a Mapping,
    /// Row number (from 1) in the file.
    pub(super) line: L,
    pub(super) cells: R,
    pub(super) customer: C,
    /// The columns' values as plain slices, when every column has a type the fast loop
    /// reads and no nulls.
    pub(super) fast: Option<FastColumns<'c>>,
}

/// A chunk's rejections and its categories in the order of their chunk-local codes.
pub(super) struct ChunkOutcome<'c> {
    pub(super) rejects: Vec<PendingReject>,
    pub(super) categories: Vec<std::borrow::Cow<'c, str>>,
}

impl<'c, L, R, C> ColumnarRows<'_, 'c, L, R, C>
where
    L: Fn(usize) -> u64 + Sync,
    R: Fn(usize) -> RowCells<'c> + Sync,
    C: Fn(usize) -> Cell<'c> + Sync,
{
    pub(super) fn convert(
        &self,
        rows: &mut Rows,
        sink: &mut RejectSink,
        mut converted: impl FnMut(usize),
    ) -> Result<()> {
        use rayon::prelude::*;
        let n = self.n;
        let threads = rayon::current_num_threads().max(1);
        // A row's partition is its customer's shard in the id table.
        let parts = rows.text_ids.shards.len();
        // The rows are converted straight into the line columns, which are taken out of
        // `rows` meanwhile; rejected rows are squeezed out at the end.
        let mut columns = rows.open_batch(n);
        let base = columns.day.len() - n;
        let (day, amount, profit, order, category) = (
            &mut columns.day[base..],
            &mut columns.amount[base..],
            &mut columns.profit[base..],
            &mut columns.order[base..],
            &mut columns.category[base..],
        );
        let mut part = vec![REJECTED; n];
        let mut hash = vec![0u64; n];
        // Chunks are converted a group at a time so rejections reach the policy (and
        // progress is told) as the file goes, as in `convert`.
        let group = 4 * threads * CHUNK_ROWS;
        let mut lo = 0;
        let mut convert_groups = || -> Result<()> {
            while lo < n {
                let hi = n.min(lo + group);
                let outcomes: Vec<ChunkOutcome> = (
                    day[lo..hi].par_chunks_mut(CHUNK_ROWS),
                    amount[lo..hi].par_chunks_mut(CHUNK_ROWS),
                    profit[lo..hi].par_chunks_mut(CHUNK_ROWS),
                    order[lo..hi].par_chunks_mut(CHUNK_ROWS),
                    category[lo..hi].par_chunks_mut(CHUNK_ROWS),
                    part[lo..hi].par_chunks_mut(CHUNK_ROWS),
                    hash[lo..hi].par_chunks_mut(CHUNK_ROWS),
                )
                    .into_par_iter()
                    .enumerate()
                    .map(|(k, (day, amount, profit, order, category, part, hash))| {
                        let first = lo + k * CHUNK_ROWS;
                        let mut outcome = ChunkOutcome {
                            rejects: Vec::new(),
                            categories: Vec::new(),
                        };
                        let mut local: PlHashMap<std::borrow::Cow<'c, str>, u32> =
                            PlHashMap::default();
                        if let Some(fast) = &self.fast {
                            let out = FastOut {
                                day: &mut *day,
                                amount: &mut *amount,
                                profit: &mut *profit,
                                order: &mut *order,
                                category: &mut *category,
                                part: &mut *part,
                                hash: &mut *hash,
                            };
                            let categories = &mut outcome.categories;
                            if fast.convert(rows, first, out, &mut local, categories, parts) {
                                return outcome;
                            }
                            // A value the fast loop does not settle: the chunk is converted
                            // again from the start by the checks every row goes through.
                            part.fill(REJECTED);
                            category.fill(NO_CATEGORY);
                            local.clear();
                            outcome.categories.clear();
                        }
                        for j in 0..day.len() {
                            let i = first + j;
                            let cells = (self.cells)(i);
                            let v = match rows.values(&cells, self.mapping) {
                                Ok(v) => v,
                                Err(reject) => {
                                    outcome.rejects.push(PendingReject::new(
                                        &cells,
                                        self.mapping,
                                        reject,
                                        (self.line)(i),
                                    ));
                                    continue;
                                }
                            };
                            day[j] = v.day;
                            amount[j] = v.amount;
                            profit[j] = v.profit;
                            order[j] = v.order;
                            if let Some(key) = v.category {
                                let next = local.len() as u32;
                                category[j] = *local.entry(key).or_insert_with_key(|key| {
                                    outcome.categories.push(key.clone());
                                    next
                                });
                            }
                            hash[j] = match &v.customer {
                                CustomerKey::Int(id) => shard_hash(id),
                                CustomerKey::Text(id) => shard_hash(*id),
                                CustomerKey::Owned(id) => shard_hash(id.as_str()),
                            };
                            part[j] = shard_of(hash[j], parts) as u8;
                        }
                        outcome
                    })
                    .collect();
                for (k, outcome) in outcomes.into_iter().enumerate() {
                    for r in outcome.rejects {
                        let loc = Loc {
                            file: self.file,
                            place: "row",
                            line: r.line,
                        };
                        sink.reject(&loc, r.reject, r.value, r.record)?;
                    }
                    let codes: Vec<u32> = outcome
                        .categories
                        .iter()
                        .map(|key| intern(&mut rows.categories, key))
                        .collect();
                    let first = lo + k * CHUNK_ROWS;
                    let chunk = first..n.min(first + CHUNK_ROWS);
                    for (c, &p) in category[chunk.clone()].iter_mut().zip(&part[chunk]) {
                        if p != REJECTED && *c != NO_CATEGORY {
                            *c = codes[*c as usize];
                        }
                    }
                }
                let accepted = part[lo..hi].iter().filter(|&&p| p != REJECTED).count() as u64;
                sink.used_n(accepted);
                lo = hi;
                converted(hi);
            }
            Ok(())
        };
        if let Err(e) = convert_groups() {
            part.fill(REJECTED);
            rows.close_batch(columns, &part);
            return Err(e);
        }
        self.customer_codes(rows, &part, &hash, &mut columns.customer);
        rows.close_batch(columns, &part);
        Ok(())
    }

    /// Appends to `codes` the table code of every accepted row's customer (registering
    /// new customers). `part` holds each row's shard and `hash` its id's hash.
    pub(super) fn customer_codes(
        &self,
        rows: &mut Rows,
        part: &[u8],
        hash: &[u64],
        codes: &mut Vec<u32>,
    ) {
        let col = self.mapping.names[self.mapping.customer].as_str();
        // The tables are taken out while the rows' settings check the ids.
        if rows.id_kind.as_ref().map(|k| k.0) == Some(IdKind::Int) {
            let mut table = std::mem::replace(&mut rows.int_ids, IdTable::new(1));
            let key = |i| match rows.customer_key((self.customer)(i), col) {
                Ok(CustomerKey::Int(id)) => id,
                _ => unreachable!("an accepted row has an integer id"),
            };
            table.register_partitioned::<i64, _>(part, hash, key, codes);
            rows.int_ids = table;
        } else {
            let mut table = std::mem::replace(&mut rows.text_ids, IdTable::new(1));
            let key = |i| match rows.customer_key((self.customer)(i), col) {
                Ok(CustomerKey::Text(id)) => std::borrow::Cow::Borrowed(id),
                Ok(CustomerKey::Owned(id)) => std::borrow::Cow::Owned(id),
                _ => unreachable!("an accepted row has a text id"),
            };
            table.register_partitioned::<str, _>(part, hash, key, codes);
            rows.text_ids = table;
        }
    }
}

/// polars' array of text values (views into buffers).
pub(super) type TextArray = <StringType as PolarsDataType>::Array;

/// The columns of a batch as plain arrays, for the loop that converts a chunk of rows
/// without going through [`Cell`]s: built only when no column has a null.
pub(super) struct FastColumns<'c> {
    pub(super) customer: FastId<'c>,
    pub(super) time: FastTime<'c>,
    pub(super) amount: FastMoney<'c>,
    pub(super) cost: Option<FastMoney<'c>>,
    pub(super) order: Option<&'c TextArray>,
    pub(super) category: Option<&'c TextArray>,
}

pub(super) enum FastId<'c> {
    Text(&'c TextArray),
    Int(&'c [i64]),
}

/// A money column without nulls: doubles, or the unscaled integers of a DECIMAL.
pub(super) enum FastMoney<'c> {
    Float(&'c [f64]),
    Decimal(&'c [i128], u8),
}

impl FastMoney<'_> {
    #[inline]
    fn minor(&self, i: usize, decimals: u32) -> std::result::Result<i64, DecimalError> {
        match *self {
            FastMoney::Float(v) => money::f64_to_minor(v[i], decimals),
            FastMoney::Decimal(v, scale) => Decimal {
                mantissa: v[i],
                scale: i32::from(scale),
            }
            .to_minor(decimals),
        }
    }
}

pub(super) enum FastTime<'c> {
    Day(&'c [i32]),
    Datetime(&'c [i64], TimeUnit),
}

/// The output columns of one chunk.
pub(super) struct FastOut<'o> {
    pub(super) day: &'o mut [i32],
    pub(super) amount: &'o mut [i64],
    pub(super) profit: &'o mut [i64],
    pub(super) order: &'o mut [u64],
    pub(super) category: &'o mut [u32],
    pub(super) part: &'o mut [u8],
    pub(super) hash: &'o mut [u64],
}

impl<'c> FastColumns<'c> {
    /// The batch's columns as arrays, or `None` when a column has a type the fast loop
    /// does not read, an amount made of quantity × unit price, or any null.
    pub(super) fn new(
        customer: &'c Typed,
        kind: IdKind,
        time: &'c Typed,
        amount: &'c Typed,
        product: bool,
        cost: Option<&'c Typed>,
        order: Option<&'c Typed>,
        category: Option<&'c Typed>,
    ) -> Option<FastColumns<'c>> {
        fn floats(t: &Typed) -> Option<FastMoney<'_>> {
            match t {
                Typed::Float(c) if c.null_count() == 0 => {
                    Some(FastMoney::Float(c.downcast_as_array().values().as_slice()))
                }
                Typed::Decimal(c) => c
                    .plain()
                    .map(|(values, scale)| FastMoney::Decimal(values, scale)),
                _ => None,
            }
        }
        fn texts(t: &Typed) -> Option<&TextArray> {
            match t {
                Typed::Text(c) if c.null_count() == 0 => Some(c.downcast_as_array()),
                _ => None,
            }
        }
        if product {
            return None;
        }
        let customer = match (kind, customer) {
            (IdKind::Text, t @ Typed::Text(_)) => FastId::Text(texts(t)?),
            (IdKind::Int, Typed::Int(c)) if c.null_count() == 0 => {
                FastId::Int(c.downcast_as_array().values().as_slice())
            }
            _ => return None,
        };
        let time = match time {
            Typed::Day(c) if c.null_count() == 0 => {
                FastTime::Day(c.downcast_as_array().values().as_slice())
            }
            Typed::Datetime(c, unit) if c.null_count() == 0 => {
                FastTime::Datetime(c.downcast_as_array().values().as_slice(), *unit)
            }
            _ => return None,
        };
        Some(FastColumns {
            customer,
            time,
            amount: floats(amount)?,
            cost: match cost {
                Some(t) => Some(floats(t)?),
                None => None,
            },
            order: match order {
                Some(t) => Some(texts(t)?),
                None => None,
            },
            category: match category {
                Some(t) => Some(texts(t)?),
                None => None,
            },
        })
    }

    /// Converts rows `first..first + out.day.len()` as [`Rows::values`] does; false, with
    /// the outputs half written, as soon as a row needs more than this loop checks (a
    /// value to reject, a blank id, money that is not a plain float): the caller then
    /// converts the chunk row by row.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn convert(
        &self,
        rows: &Rows,
        first: usize,
        out: FastOut,
        local: &mut PlHashMap<std::borrow::Cow<'c, str>, u32>,
        categories: &mut Vec<std::borrow::Cow<'c, str>>,
        parts: usize,
    ) -> bool {
        let range = crate::time::MIN_DAY..=crate::time::MAX_DAY;
        let as_of = rows.as_of.unwrap_or(i32::MAX);
        for j in 0..out.day.len() {
            let i = first + j;
            let micros = match self.time {
                FastTime::Day(d) => i64::from(d[i]) * crate::time::MICROS_PER_DAY,
                FastTime::Datetime(v, unit) => match unit {
                    TimeUnit::Nanoseconds => v[i].div_euclid(1000),
                    TimeUnit::Microseconds => v[i],
                    TimeUnit::Milliseconds => v[i].saturating_mul(1000),
                },
            };
            let day = match self.time {
                FastTime::Day(d) => d[i],
                FastTime::Datetime(..) => LineTime::from_micros(micros).day,
            };
            if !range.contains(&day) || day > as_of {
                return false;
            }
            let Ok(amount) = self.amount.minor(i, rows.decimals) else {
                return false;
            };
            let profit = match &self.cost {
                None => rows.margin.apply(amount).ok(),
                Some(cost) => cost
                    .minor(i, rows.decimals)
                    .ok()
                    .and_then(|c| amount.checked_sub(c)),
            };
            let Some(profit) = profit else {
                return false;
            };
            let order = match self.order.map(|o| trim(o.value(i))) {
                Some(id) if !id.is_empty() => order_key(id),
                _ => TS_ORDER_BIT | (micros as u64 & !TS_ORDER_BIT),
            };
            if let Some(c) = self.category.map(|c| trim(c.value(i)))
                && !c.is_empty()
            {
                let next = local.len() as u32;
                out.category[j] = *local
                    .entry(std::borrow::Cow::Borrowed(c))
                    .or_insert_with_key(|key| {
                        categories.push(key.clone());
                        next
                    });
            }
            let hash = match self.customer {
                FastId::Text(ids) => {
                    let id = trim(ids.value(i));
                    if id.is_empty() {
                        return false;
                    }
                    shard_hash(id)
                }
                FastId::Int(ids) => shard_hash(&ids[i]),
            };
            out.day[j] = day;
            out.amount[j] = amount;
            out.profit[j] = profit;
            out.order[j] = order;
            out.part[j] = shard_of(hash, parts) as u8;
            out.hash[j] = hash;
        }
        true
    }
}

impl PendingReject {
    /// A rejection of the Parquet/IPC row `cells`, numbered `line` from 1.
    pub(super) fn new(cells: &RowCells, m: &Mapping, reject: Reject, line: u64) -> PendingReject {
        PendingReject {
            line,
            value: cell_for(cells, m, &reject.0).shown(),
            reject,
            record: [cells.customer, cells.time, cells.amount]
                .iter()
                .map(Cell::shown)
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

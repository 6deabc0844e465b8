//! Writing results: CSV, JSON, JSON Lines, Parquet or Arrow IPC by file extension, always
//! atomically (a temporary file in the target directory, fsync, rename, fsync of the
//! directory), so a failed or killed run never leaves a half-written file and never
//! destroys the previous output.
//!
//! Not for: terminal tables (see `terminal`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use polars::prelude::*;

use crate::error::{Error, Result};

const TMP_MARK: &str = ".custvalue-tmp.";

/// A file being written: it appears at its target name only on [`AtomicFile::commit`].
pub struct AtomicFile {
    tmp: Option<tempfile::NamedTempFile>,
    writer: Option<BufWriter<File>>,
    target: PathBuf,
}

impl AtomicFile {
    /// Starts writing `target`. Fails if the directory is missing or not writable.
    pub fn create(target: &Path) -> Result<AtomicFile> {
        let name = target
            .file_name()
            .ok_or_else(|| {
                Error::Usage(format!("output path {} has no file name", target.display()))
            })?
            .to_string_lossy()
            .into_owned();
        if target.is_dir() {
            return Err(Error::Usage(format!(
                "output path {} is a directory; give a file name",
                target.display()
            )));
        }
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            return Err(Error::Usage(format!(
                "cannot write {}: directory {} does not exist",
                target.display(),
                dir.display()
            )));
        }
        let prefix = format!(".{name}{TMP_MARK}");
        remove_stale_temporaries(&dir, &prefix);
        let tmp = tempfile::Builder::new()
            .prefix(&prefix)
            .tempfile_in(&dir)
            .map_err(|e| Error::io(&dir, e))?;
        // Temporary files are private (0600); the output gets the permissions of the
        // file it replaces, or the usual 0644.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(target)
                .map(|m| m.permissions().mode())
                .unwrap_or(0o644);
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))
                .map_err(|e| Error::io(tmp.path(), e))?;
        }
        // The lock tells a later run that this temporary is alive (see
        // remove_stale_temporaries); the OS drops it when the process dies.
        let _ = tmp.as_file().try_lock();
        let file = tmp.reopen().map_err(|e| Error::io(tmp.path(), e))?;
        Ok(AtomicFile {
            tmp: Some(tmp),
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
            target: target.to_path_buf(),
        })
    }

    /// The buffered writer of the temporary file.
    pub fn writer(&mut self) -> &mut BufWriter<File> {
        self.writer.as_mut().expect("writer exists until commit")
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(mut self) -> Result<()> {
        let target = self.target.clone();
        let writer = self.writer.take().expect("writer exists until commit");
        let file = writer
            .into_inner()
            .map_err(|e| Error::io(&target, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&target, e))?;
        drop(file);
        let tmp = self.tmp.take().expect("temporary exists until commit");
        tmp.persist(&target)
            .map_err(|e| Error::io(&target, e.error))?;
        if let Some(dir) = target.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

/// Temporaries of an earlier run that was killed before it could clean up.
fn remove_stale_temporaries(dir: &Path, prefix: &str) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(prefix)
                && let Ok(f) = File::open(e.path())
                && f.try_lock().is_ok()
            {
                // Nobody holds it: its writer died before renaming it into place.
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// True when both paths name the same existing file (or the same path text).
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Output formats, chosen by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Csv,
    Json,
    JsonLines,
    Parquet,
    Ipc,
}

impl OutputFormat {
    pub fn from_path(path: &Path) -> Result<OutputFormat> {
        let name = path.to_string_lossy().to_ascii_lowercase();
        let formats = [
            (".csv", OutputFormat::Csv),
            (".jsonl", OutputFormat::JsonLines),
            (".ndjson", OutputFormat::JsonLines),
            (".json", OutputFormat::Json),
            (".parquet", OutputFormat::Parquet),
            (".arrow", OutputFormat::Ipc),
            (".ipc", OutputFormat::Ipc),
            (".feather", OutputFormat::Ipc),
        ];
        formats
            .iter()
            .find(|(ext, _)| name.ends_with(ext))
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "output {}: unknown extension; use .csv, .json, .jsonl, .parquet or .arrow",
                    path.display()
                ))
            })
    }
}

/// Checks an output path before any work is done: known extension, existing directory,
/// and not one of the inputs.
pub fn check_output(path: &Path, inputs: &[String]) -> Result<()> {
    OutputFormat::from_path(path)?;
    check_target(path, inputs)
}

/// Checks that an output path is not one of the inputs and that its directory exists.
pub fn check_target(path: &Path, inputs: &[String]) -> Result<()> {
    for input in inputs {
        if same_file(Path::new(input), path) {
            return Err(Error::Usage(format!(
                "output {} is the same file as an input; choose another path",
                path.display()
            )));
        }
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "cannot write {}: directory {} does not exist",
            path.display(),
            dir.display()
        )));
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: the whole file or none of it.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.writer()
        .write_all(bytes)
        .map_err(|e| Error::io(path, e))?;
    file.commit()
}

/// Writes a frame to `path` in the format its extension names, atomically.
pub fn write_frame(df: &mut DataFrame, path: &Path) -> Result<()> {
    let format = OutputFormat::from_path(path)?;
    let mut file = AtomicFile::create(path)?;
    let target = path.to_path_buf();
    let io = |e: std::io::Error| Error::io(&target, e);
    match format {
        OutputFormat::Csv => write_csv(df, file.writer()).map_err(io)?,
        OutputFormat::Json => write_json(df, file.writer(), false).map_err(io)?,
        OutputFormat::JsonLines => write_json(df, file.writer(), true).map_err(io)?,
        OutputFormat::Parquet => {
            ParquetWriter::new(file.writer())
                .with_compression(ParquetCompression::Zstd(None))
                .finish(df)?;
        }
        OutputFormat::Ipc => {
            IpcWriter::new(file.writer()).finish(df)?;
        }
    }
    file.commit()
}

/// Builds one column of a frame (see [`par_columns`]).
pub type ColumnTask<'a> = Box<dyn FnOnce() -> PolarsResult<Column> + Send + 'a>;

/// Builds a frame's columns in parallel, one task each, in the order given: a chunk
/// of the segment file takes a few tens of milliseconds to build, which would otherwise
/// hold one thread while the others wait.
pub fn par_columns(tasks: Vec<ColumnTask<'_>>) -> PolarsResult<Vec<Column>> {
    use rayon::prelude::*;
    tasks.into_par_iter().map(|task| task()).collect()
}

/// The task building column `name` of rows `0..n` from `value(row)`.
pub fn column_task<'a, T>(
    name: &'static str,
    n: usize,
    value: impl Fn(usize) -> T + Send + 'a,
) -> ColumnTask<'a>
where
    Series: NamedFrom<Vec<T>, [T]>,
{
    Box::new(move || {
        Ok(Column::new(
            name.into(),
            (0..n).map(value).collect::<Vec<_>>(),
        ))
    })
}

/// Rows per chunk of [`write_chunked`]: polars' Parquet row-group size, so a chunked
/// Parquet file has the row groups a single write would give.
pub const CHUNK_ROWS: usize = 512 * 512;

/// Writes the frames `chunk(0..n_chunks)` one after the other as one file in the format
/// `path`'s extension names, atomically, holding a few chunks per thread at a time (a
/// JSON array is the exception: it is assembled whole). Every chunk has the same columns;
/// `n_chunks` is at least 1 (an empty chunk gives the header or an empty file of that
/// schema).
///
/// CSV and JSON Lines chunks are built and rendered to text in parallel, a window of a
/// few chunks per thread at a time, and written in order; Parquet chunks are built,
/// encoded and compressed the same way (see `write_parquet_chunks`). Each chunk's bytes
/// depend on that chunk alone, so the file is the same at any thread count.
pub fn write_chunked(
    path: &Path,
    n_chunks: usize,
    chunk: impl Fn(usize) -> Result<DataFrame> + Sync,
) -> Result<()> {
    let format = OutputFormat::from_path(path)?;
    let n_chunks = n_chunks.max(1);
    if format == OutputFormat::Json {
        let mut all = chunk(0)?;
        for i in 1..n_chunks {
            all.vstack_mut_owned(chunk(i)?)?;
        }
        return write_frame(&mut all, path);
    }
    let mut file = AtomicFile::create(path)?;
    let target = path.to_path_buf();
    let io = |e: std::io::Error| Error::io(&target, e);
    if matches!(format, OutputFormat::Csv | OutputFormat::JsonLines) {
        let csv = format == OutputFormat::Csv;
        write_text_chunks(file.writer(), n_chunks, |i| {
            let df = chunk(i)?;
            let mut text = Vec::new();
            if csv {
                write_csv_rows(&df, &mut text, i == 0).map_err(io)?;
            } else {
                write_json(&df, &mut text, true).map_err(io)?;
            }
            Ok(text)
        })
        .map_err(|e| match e {
            TextChunkError::Io(e) => io(e),
            TextChunkError::Chunk(e) => e,
        })?;
        return file.commit();
    }
    match format {
        OutputFormat::Parquet => write_parquet_chunks(file.writer(), n_chunks, &chunk)?,
        OutputFormat::Ipc => {
            let first = chunk(0)?;
            let mut w = IpcWriter::new(file.writer()).batched(first.schema(), Vec::new())?;
            w.write_batch(&first)?;
            drop(first);
            for i in 1..n_chunks {
                w.write_batch(&chunk(i)?)?;
            }
            w.finish()?;
        }
        OutputFormat::Csv | OutputFormat::JsonLines | OutputFormat::Json => {
            unreachable!("text formats are written above")
        }
    }
    file.commit()
}

/// Writes the frames `chunk(0..n_chunks)` as one Parquet file of one row group per
/// chunk, zstd-compressed.
///
/// polars' batched writer compresses pages on the thread that writes the file, one
/// column after the other. Here a window of chunks (two per thread) is built and
/// encoded side by side, every column of every chunk a task of its own, so that a few
/// large chunks still share the threads evenly; the row groups are then appended in
/// order. The pages are those polars' own writer gives with the same options
/// (`WriteOptions` below mirrors `ParquetWriter::new`'s defaults; a test compares the
/// files byte for byte), so the file does not depend on the number of threads.
fn write_parquet_chunks<W: Write + Send>(
    w: W,
    n_chunks: usize,
    chunk: &(impl Fn(usize) -> Result<DataFrame> + Sync),
) -> Result<()> {
    use polars_parquet::write::{
        CompressedPage, StatisticsOptions, Version, WriteOptions, array_to_columns, compress,
    };
    use rayon::prelude::*;
    let compression = ParquetCompression::Zstd(None);
    let options = WriteOptions {
        statistics: StatisticsOptions::default(),
        version: Version::V1,
        compression: compression.into(),
        data_page_size: None,
    };
    let build = |i: usize| -> Result<DataFrame> {
        let mut df = chunk(i)?;
        df.rechunk_mut_par();
        Ok(df)
    };
    // The file opens with the first chunk's schema, which every chunk shares.
    let first = build(0)?;
    let schema = first.schema().clone();
    let encodings =
        polars::io::parquet::write::get_encodings(&schema.to_arrow(CompatLevel::newest()));
    let mut writer = ParquetWriter::new(w)
        .with_compression(compression)
        .batched(&schema)?;
    let fields = writer.parquet_schema().fields().to_vec();
    let width = fields.len();
    // A chunk's row groups (rows, pages): every column of every batch is encoded and
    // compressed as a task of its own, so that a few large chunks still share the
    // threads evenly.
    let encode = |df: DataFrame| -> Result<Vec<(u64, Vec<Vec<CompressedPage>>)>> {
        let batches: Vec<_> = df
            .iter_chunks(CompatLevel::newest(), false)
            .filter(|batch| !batch.is_empty())
            .collect();
        drop(df);
        // Task `t` is column `t % width` of batch `t / width`; its leaf columns' pages.
        let encoded: Vec<PolarsResult<Vec<Vec<CompressedPage>>>> = (0..batches.len() * width)
            .into_par_iter()
            .map(|t| {
                let (batch, column) = (&batches[t / width], t % width);
                let leaves = array_to_columns(
                    &batch.columns()[column],
                    fields[column].clone(),
                    options,
                    &encodings[column],
                )?;
                leaves
                    .into_iter()
                    .map(|pages| {
                        pages
                            .map(|page| Ok(compress(page?, Vec::new(), options.compression)?))
                            .collect::<PolarsResult<Vec<_>>>()
                    })
                    .collect()
            })
            .collect();
        let mut encoded = encoded.into_iter();
        batches
            .iter()
            .map(|batch| {
                let mut group = Vec::new();
                for leaves in encoded.by_ref().take(width) {
                    group.extend(leaves?);
                }
                Ok((batch.len() as u64, group))
            })
            .collect()
    };
    // A window of chunks (two per thread) is built and encoded side by side: a thread
    // done with one chunk helps with the columns of another, and only the window's end
    // waits for the slowest. The row groups are appended in chunk order, and the first
    // failure in chunk order is the one reported, whatever the threads' timing.
    let window = 2 * rayon::current_num_threads().clamp(1, 8);
    let mut first = Some(first);
    for lo in (0..n_chunks).step_by(window) {
        let hi = n_chunks.min(lo + window);
        let next = lo + usize::from(first.is_some());
        let (head, rest) = rayon::join(
            || first.take().map(encode),
            || {
                (next..hi)
                    .into_par_iter()
                    .map(|i| encode(build(i)?))
                    .collect::<Vec<_>>()
            },
        );
        for groups in head.into_iter().chain(rest) {
            for (rows, group) in groups? {
                writer.write_row_group(rows, &group)?;
            }
        }
    }
    writer.finish()?;
    Ok(())
}

/// Rows per chunk of a text file rendered straight from per-row data (see
/// [`write_text`]): small, so that a few threads share the rows evenly, yet large enough
/// that the cost of a chunk is negligible. Text chunks need not match Parquet row groups.
pub const TEXT_CHUNK_ROWS: usize = 16 * 1024;

/// Writes the texts `text(0..n_chunks)` one after the other as the file `path`,
/// atomically. Chunks are rendered in parallel and written in order, so the file is the
/// same at any thread count.
pub fn write_text(
    path: &Path,
    n_chunks: usize,
    text: impl Fn(usize) -> Result<Vec<u8>> + Sync,
) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    write_text_chunks(file.writer(), n_chunks, text).map_err(|e| match e {
        TextChunkError::Io(e) => Error::io(path, e),
        TextChunkError::Chunk(e) => e,
    })?;
    file.commit()
}

/// Why [`write_text_chunks`] stopped: building a chunk's text, or writing it.
enum TextChunkError {
    Chunk(Error),
    Io(std::io::Error),
}

/// Writes `text(0..n_chunks)` to `w` in order, computing up to two chunks per thread at
/// once while the window before is written, so at most two windows' text is held.
fn write_text_chunks<W: Write + Send>(
    w: &mut W,
    n_chunks: usize,
    text: impl Fn(usize) -> Result<Vec<u8>> + Sync,
) -> std::result::Result<(), TextChunkError> {
    use rayon::prelude::*;
    let window = 2 * rayon::current_num_threads().max(1);
    let mut written: Vec<Vec<u8>> = Vec::new();
    let mut lo = 0;
    while lo < n_chunks {
        let hi = n_chunks.min(lo + window);
        let (texts, done) = rayon::join(
            || (lo..hi).into_par_iter().map(&text).collect::<Vec<_>>(),
            || written.iter().try_for_each(|t| w.write_all(t)),
        );
        done.map_err(TextChunkError::Io)?;
        // The first failure in chunk order, whatever the threads' timing.
        written = texts
            .into_iter()
            .collect::<Result<_>>()
            .map_err(TextChunkError::Chunk)?;
        lo = hi;
    }
    written
        .iter()
        .try_for_each(|t| w.write_all(t))
        .map_err(TextChunkError::Io)
}

/// A column prepared for text output.
enum TextColumn {
    Str(StringChunked),
    Int(Int64Chunked),
    Float(Float64Chunked),
    Bool(BooleanChunked),
    Date(Int32Chunked),
}

impl TextColumn {
    fn new(col: &Column) -> PolarsResult<TextColumn> {
        let s = col.as_materialized_series().rechunk();
        Ok(match s.dtype() {
            DataType::String => TextColumn::Str(s.str()?.clone()),
            DataType::Boolean => TextColumn::Bool(s.bool()?.clone()),
            DataType::Date => TextColumn::Date(s.date()?.physical().clone()),
            DataType::Float32 | DataType::Float64 => {
                TextColumn::Float(s.cast(&DataType::Float64)?.f64()?.clone())
            }
            dt if dt.is_integer() => TextColumn::Int(s.cast(&DataType::Int64)?.i64()?.clone()),
            _ => TextColumn::Str(s.cast(&DataType::String)?.str()?.clone()),
        })
    }

    /// Appends the text of row `i`; false when the value is null.
    fn text(&self, i: usize, out: &mut String) -> bool {
        match self {
            TextColumn::Str(c) => c.get(i).map(|v| out.push_str(v)).is_some(),
            TextColumn::Int(c) => c.get(i).map(|v| push_int(out, v)).is_some(),
            TextColumn::Float(c) => match c.get(i) {
                Some(v) if v.is_finite() => {
                    push_float(out, v);
                    true
                }
                _ => false,
            },
            TextColumn::Bool(c) => c
                .get(i)
                .map(|v| out.push_str(if v { "true" } else { "false" }))
                .is_some(),
            TextColumn::Date(c) => c.get(i).map(|d| crate::time::push_day(d, out)).is_some(),
        }
    }

    fn is_text(&self) -> bool {
        matches!(self, TextColumn::Str(_) | TextColumn::Date(_))
    }
}

fn text_columns(df: &DataFrame) -> std::io::Result<Vec<TextColumn>> {
    df.columns()
        .iter()
        .map(TextColumn::new)
        .collect::<PolarsResult<Vec<_>>>()
        .map_err(std::io::Error::other)
}

/// CSV with a header; nulls are empty fields; dates ISO; floats in shortest form.
pub fn write_csv<W: Write>(df: &DataFrame, w: W) -> std::io::Result<()> {
    write_csv_rows(df, w, true)
}

/// CSV rows of `df`, after the header line when `header`: the text the `csv` crate
/// writes, with quoting decided per column (only text can need quotes).
fn write_csv_rows<W: Write>(df: &DataFrame, mut w: W, header: bool) -> std::io::Result<()> {
    let cols = text_columns(df)?;
    let mut out = String::new();
    if header {
        for (k, name) in df.get_column_names().iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            push_csv_field(&mut out, name.as_str());
        }
        end_csv_record(&mut out, 0);
    }
    let mut cell = String::new();
    for i in 0..df.height() {
        let start = out.len();
        for (k, c) in cols.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            if matches!(c, TextColumn::Str(_)) {
                cell.clear();
                c.text(i, &mut cell);
                push_csv_field(&mut out, &cell);
            } else {
                c.text(i, &mut out);
            }
        }
        end_csv_record(&mut out, start);
        if out.len() >= 1 << 16 {
            w.write_all(out.as_bytes())?;
            out.clear();
        }
    }
    w.write_all(out.as_bytes())?;
    w.flush()
}

/// Ends the record begun at `start`; like the `csv` crate, a record with no text at all
/// (one empty field) is written as `""`, so that it is not read as a blank line.
fn end_csv_record(out: &mut String, start: usize) {
    if out.len() == start {
        out.push_str("\"\"");
    }
    out.push('\n');
}

/// Appends `v` in decimal, as `{v}` would.
pub fn push_int(out: &mut String, v: i64) {
    if v < 0 {
        out.push('-');
    }
    push_u64(out, v.unsigned_abs());
}

fn push_u64(out: &mut String, v: u64) {
    let mut digits = [0u8; 20];
    out.extend(
        decimal_digits(v, &mut digits)
            .iter()
            .map(|&b| char::from(b)),
    );
}

/// The decimal digits of `v` (ASCII, no sign or padding), written into the end of `buf`.
pub(crate) fn decimal_digits(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut k = buf.len();
    loop {
        k -= 1;
        buf[k] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[k..]
}

/// Appends a finite float in its shortest round-trip form, as `{v}` would; nothing for
/// NaN and infinities (written as nulls).
pub fn push_float(out: &mut String, v: f64) {
    use std::fmt::Write as _;
    if v.is_finite() {
        let _ = write!(out, "{v}");
    }
}

/// Appends minor units as the currency amount `crate::money::minor_to_f64` gives,
/// written as [`push_float`] writes it: "-1234.5" for -123450 at 2 decimals.
///
/// Below 10^15 in magnitude the amount has at most 15 significant digits, so it is
/// itself the shortest decimal text of its nearest f64 (every decimal of up to 15 digits
/// survives the trip through an f64), and it is written from the integers directly.
pub fn push_money(out: &mut String, minor: i64, decimals: u32) {
    const EXACT: u64 = 1_000_000_000_000_000;
    let abs = minor.unsigned_abs();
    if decimals > 15 || abs >= EXACT {
        push_float(out, crate::money::minor_to_f64(minor, decimals));
        return;
    }
    if minor < 0 {
        out.push('-');
    }
    let unit = 10u64.pow(decimals);
    push_u64(out, abs / unit);
    let (mut frac, mut width) = (abs % unit, decimals as usize);
    if frac == 0 {
        return;
    }
    while frac % 10 == 0 {
        frac /= 10;
        width -= 1;
    }
    out.push('.');
    let start = out.len();
    push_u64(out, frac);
    let zeros = width - (out.len() - start);
    out.insert_str(start, &"000000000000000"[..zeros]);
}

/// Appends a CSV field as the `csv` crate writes it: in double quotes, with quotes
/// doubled, when it holds a comma, a quote, a CR or an LF; otherwise as it is.
pub fn push_csv_field(out: &mut String, field: &str) {
    if field
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
    {
        out.push('"');
        for (k, part) in field.split('"').enumerate() {
            if k > 0 {
                out.push_str("\"\"");
            }
            out.push_str(part);
        }
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// JSON: an array of objects, or one object per line.
pub fn write_json<W: Write>(df: &DataFrame, mut w: W, lines: bool) -> std::io::Result<()> {
    let cols = text_columns(df)?;
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|n| serde_json::to_string(n.as_str()).unwrap_or_default())
        .collect();
    if !lines {
        w.write_all(b"[")?;
    }
    let mut cell = String::new();
    for i in 0..df.height() {
        if !lines {
            w.write_all(if i == 0 { b"\n" } else { b",\n" })?;
        }
        w.write_all(b"{")?;
        for (k, c) in cols.iter().enumerate() {
            if k > 0 {
                w.write_all(b",")?;
            }
            w.write_all(names[k].as_bytes())?;
            w.write_all(b":")?;
            cell.clear();
            if !c.text(i, &mut cell) {
                w.write_all(b"null")?;
            } else if c.is_text() {
                serde_json::to_writer(&mut w, &cell)?;
            } else {
                w.write_all(cell.as_bytes())?;
            }
        }
        w.write_all(b"}")?;
        if lines {
            w.write_all(b"\n")?;
        }
    }
    if !lines {
        w.write_all(b"\n]\n")?;
    }
    w.flush()
}

/// 1234567 → "1,234,567".
pub fn thousands(n: u64) -> String {
    thousands_u128(u128::from(n))
}

fn thousands_u128(n: u128) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Minor units as currency text with thousands separators: -123456 → "-1,234.56".
pub fn money_text(minor: impl Into<i128>, decimals: u32) -> String {
    let minor: i128 = minor.into();
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let unit = 10u128.pow(decimals);
    let whole = thousands_u128(abs / unit);
    if decimals == 0 {
        format!("{sign}{whole}")
    } else {
        format!(
            "{sign}{whole}.{:0width$}",
            abs % unit,
            width = decimals as usize
        )
    }
}

/// A share as a percentage with one decimal: 0.4123 → "41.2%".
pub fn percent(share: f64) -> String {
    if share.is_finite() {
        format!("{:.1}%", share * 100.0)
    } else {
        "n/a".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_text() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(money_text(-123456, 2), "-1,234.56");
        assert_eq!(money_text(5, 2), "0.05");
        assert_eq!(money_text(1234, 0), "1,234");
    }

    #[test]
    fn cells_are_written_as_format_writes_them() {
        let mut ints = vec![0, 1, -1, 9, 10, -10, i64::MIN, i64::MAX, 1 << 53];
        let mut money = ints.clone();
        // Values of every magnitude, from a fixed sequence (deterministic).
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = (x >> (x % 64)) as i64;
            ints.push(v);
            ints.push(v.wrapping_neg());
            money.extend([
                v,
                v.wrapping_neg(),
                v % 1_000_000_000_000_000,
                v % 1000,
                v / 1000 * 1000,
            ]);
        }
        money.extend([
            999_999_999_999_999,
            1_000_000_000_000_000,
            -999_999_999_999_999,
        ]);
        let mut out = String::new();
        for &v in &ints {
            out.clear();
            push_int(&mut out, v);
            assert_eq!(out, v.to_string());
        }
        for d in 0..=6 {
            for &m in &money {
                out.clear();
                push_money(&mut out, m, d);
                assert_eq!(
                    out,
                    format!("{}", crate::money::minor_to_f64(m, d)),
                    "{m} at {d} decimals"
                );
            }
        }
        for v in [0.1 + 0.2, -0.0, 1e21, 1e-7, f64::MAX, f64::MIN_POSITIVE] {
            out.clear();
            push_float(&mut out, v);
            assert_eq!(out, format!("{v}"));
        }
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            out.clear();
            push_float(&mut out, v);
            assert_eq!(out, "");
        }
    }

    #[test]
    fn csv_fields_are_quoted_as_the_csv_crate_quotes_them() {
        let fields = [
            "",
            "plain",
            "a,b",
            "q\"uote",
            "\"",
            "line\nbreak",
            "cr\r",
            " space ",
            "tab\t",
            "été",
            "'single'",
            "#hash",
            "\"\"",
        ];
        let mut ours = String::new();
        for f in fields {
            ours.clear();
            push_csv_field(&mut ours, f);
            ours.push_str(",x\n");
            let mut theirs = csv::Writer::from_writer(Vec::new());
            theirs.write_record([f, "x"]).unwrap();
            let written = theirs.into_inner().unwrap();
            assert_eq!(ours.as_bytes(), written.as_slice(), "{f:?}");
        }
    }

    /// CSV as the `csv` crate writes it, cell by cell: the reference for `write_csv`.
    fn csv_crate_text(df: &DataFrame) -> Vec<u8> {
        let cols = text_columns(df).unwrap();
        let mut out = csv::Writer::from_writer(Vec::new());
        out.write_record(df.get_column_names().iter().map(|n| n.as_str()))
            .unwrap();
        let mut cell = String::new();
        for i in 0..df.height() {
            for c in &cols {
                cell.clear();
                c.text(i, &mut cell);
                out.write_field(&cell).unwrap();
            }
            out.write_record(None::<&[u8]>).unwrap();
        }
        out.into_inner().unwrap()
    }

    #[test]
    fn csv_text_equals_the_csv_crate() {
        let n = 9;
        let texts = [
            Some("plain"),
            Some("a,b"),
            Some("q\"uote"),
            None,
            Some(""),
            Some("line\nbreak"),
            Some("cr\r"),
            Some(" é "),
            Some("\"\""),
        ];
        let df = DataFrame::new(
            n,
            vec![
                Column::new("id, \"quoted\"".into(), texts.to_vec()),
                Column::new(
                    "n".into(),
                    (0..n as i64)
                        .map(|i| (i != 2).then_some(i64::MAX / 9 * (i - 4) - 99))
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "x".into(),
                    vec![
                        Some(0.1 + 0.2),
                        None,
                        Some(f64::NAN),
                        Some(f64::INFINITY),
                        Some(-0.0),
                        Some(-1e-9),
                        Some(1e22),
                        Some(-12.5),
                        Some(f64::NEG_INFINITY),
                    ],
                ),
                Column::new(
                    "b".into(),
                    (0..n)
                        .map(|i| (i % 3 != 0).then_some(i % 2 == 0))
                        .collect::<Vec<_>>(),
                ),
                Column::new(
                    "d".into(),
                    (0..n as i32)
                        .map(|i| (i != 4).then_some(i * 4000 - 9000))
                        .collect::<Vec<_>>(),
                )
                .cast(&DataType::Date)
                .unwrap(),
            ],
        )
        .unwrap();
        let mut ours = Vec::new();
        write_csv(&df, &mut ours).unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(csv_crate_text(&df)).unwrap()
        );
        // A record of one empty field is written as "", not as a blank line.
        let single = DataFrame::new(
            3,
            vec![Column::new("s".into(), vec![None, Some(""), Some("x")])],
        )
        .unwrap();
        let mut ours = Vec::new();
        write_csv(&single, &mut ours).unwrap();
        assert_eq!(ours, csv_crate_text(&single));
        assert_eq!(ours, b"s\n\"\"\n\"\"\nx\n");
    }

    #[test]
    fn atomic_file_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.csv");
        std::fs::write(&target, "old").unwrap();
        let mut f = AtomicFile::create(&target).unwrap();
        f.writer().write_all(b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        drop(f);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut f = AtomicFile::create(&target).unwrap();
        f.writer().write_all(b"new").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// `n` rows: the text `id(i)` (None = null), an integer and a float with nulls.
    fn sample_frame(n: usize, id: impl Fn(usize) -> Option<String>) -> DataFrame {
        DataFrame::new(
            n,
            vec![
                Column::new("id".into(), (0..n).map(id).collect::<Vec<_>>()),
                Column::new(
                    "n".into(),
                    (0..n as i64).map(|i| i * 7 - 50).collect::<Vec<_>>(),
                ),
                Column::new(
                    "x".into(),
                    (0..n)
                        .map(|i| (i % 4 != 0).then(|| i as f64 / 3.0))
                        .collect::<Vec<_>>(),
                ),
            ],
        )
        .unwrap()
    }

    #[test]
    fn chunked_text_files_equal_one_write_of_the_whole_frame() {
        let n = 23;
        let df = sample_frame(n, |i| (i % 5 != 3).then(|| format!("c,{i}\"q")));
        let dir = tempfile::tempdir().unwrap();
        for ext in ["csv", "jsonl"] {
            let whole = dir.path().join(format!("whole.{ext}"));
            write_frame(&mut df.clone(), &whole).unwrap();
            for threads in [1, 3] {
                let chunked = dir.path().join(format!("chunked{threads}.{ext}"));
                let size = 2;
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap()
                    .install(|| {
                        write_chunked(&chunked, n.div_ceil(size), |i| {
                            Ok(df.slice((i * size) as i64, size))
                        })
                    })
                    .unwrap();
                assert_eq!(
                    std::fs::read(&chunked).unwrap(),
                    std::fs::read(&whole).unwrap(),
                    "{ext} at {threads} threads"
                );
            }
        }
    }

    #[test]
    fn parallel_parquet_equals_polars_batched_writer_byte_for_byte() {
        // Text with nulls and repeats (dictionary pages), integers, floats and dates.
        let n = 5_000;
        let mut df = sample_frame(n, |i| (i % 7 != 3).then(|| format!("c{}", i % 900)));
        let day = Column::new("day".into(), (0..n as i32).collect::<Vec<_>>());
        df.with_column(day.cast(&DataType::Date).unwrap()).unwrap();
        // 1.5 MB of distinct text a chunk: columns of several data pages.
        let long = (0..n).map(|i| format!("{i:0>1500}")).collect::<Vec<_>>();
        df.with_column(Column::new("long".into(), long)).unwrap();
        let size = 1_100;
        let chunks = n.div_ceil(size);
        let part = |i: usize| df.slice((i * size) as i64, size);
        let dir = tempfile::tempdir().unwrap();
        let oracle = dir.path().join("oracle.parquet");
        let mut w = ParquetWriter::new(File::create(&oracle).unwrap())
            .with_compression(ParquetCompression::Zstd(None))
            .batched(df.schema())
            .unwrap();
        for i in 0..chunks {
            w.write_batch(&part(i)).unwrap();
        }
        w.finish().unwrap();
        for threads in [1, 3] {
            let ours = dir.path().join(format!("ours{threads}.parquet"));
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| write_chunked(&ours, chunks, |i| Ok(part(i))))
                .unwrap();
            assert_eq!(
                std::fs::read(&ours).unwrap(),
                std::fs::read(&oracle).unwrap(),
                "{threads} threads"
            );
        }
        let back = ParquetReader::new(File::open(&oracle).unwrap())
            .finish()
            .unwrap();
        assert!(back.equals_missing(&df));
    }

    #[test]
    fn missing_directory_is_a_usage_error() {
        let err = AtomicFile::create(Path::new("/nonexistent-dir/x.csv"))
            .err()
            .unwrap();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("does not exist"));
    }
}

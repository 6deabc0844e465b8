use super::*;

/// A reader that counts the bytes taken from the file, before any decompression.
pub(super) struct Counted<R> {
    pub(super) inner: R,
    pub(super) count: Rc<CountCell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Opens a text file (gzip or not) for reading; `consumed` counts the file's bytes read.
pub(super) fn open_text(path: &Path, gzip: bool, consumed: Rc<CountCell<u64>>) -> Result<Box<dyn BufRead>> {
    let file = Counted {
        inner: File::open(path).map_err(|e| Error::io(path, e))?,
        count: consumed,
    };
    let mut reader: Box<dyn BufRead> = if gzip {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::read::MultiGzDecoder::new(BufReader::new(file)),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, file))
    };
    let head = reader.fill_buf().map_err(|e| {
        if gzip {
            Error::input(
                path.display().to_string(),
                format!("not a readable gzip file: {e}"),
            )
        } else {
            Error::io(path, e)
        }
    })?;
    if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
        reader.consume(3);
    }
    Ok(reader)
}

pub(super) fn load_csv(
    path: &Path,
    gzip: bool,
    opts: &LoadOptions,
    rows: &mut Rows,
    sink: &mut RejectSink,
    progress: &Tracker,
) -> Result<()> {
    let file = path.display().to_string();
    let consumed = Rc::new(CountCell::new(0));
    let text = open_text(path, gzip, Rc::clone(&consumed))?;
    let lines = LineIndex::new(text, opts.delimiter, opts.quote);
    let line_starts = lines.starts.clone();
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(opts.delimiter)
        .quote(opts.quote)
        .has_headers(false)
        .flexible(true)
        .from_reader(lines);
    let read_error = |e: csv::Error| match e.kind() {
        csv::ErrorKind::Io(io) => Error::input(file.clone(), format!("read failed: {io}")),
        _ => Error::input(file.clone(), format!("unreadable CSV: {e}")),
    };
    let mut record = csv::ByteRecord::new();
    if !csv.read_byte_record(&mut record).map_err(read_error)? {
        return Err(Error::input(file, "file is empty (expected a header line)"));
    }
    let (names, mut pending_first) = if opts.has_header {
        let mut names = Vec::with_capacity(record.len());
        for (i, field) in record.iter().enumerate() {
            let name = std::str::from_utf8(field).map_err(|_| {
                Error::input(
                    file.clone(),
                    format!("line 1, column {}: header is not UTF-8", i + 1),
                )
            })?;
            names.push(name.trim().to_string());
        }
        (names, false)
    } else {
        (
            (1..=record.len()).map(|i| format!("column_{i}")).collect(),
            true,
        )
    };
    check_duplicate_names(&file, &names)?;
    rows.check_id_kind(
        match rows.declared {
            IdType::Int => IdKind::Int,
            _ => IdKind::Text,
        },
        &file,
    )?;
    let m = Mapping::resolve(&file, &names, &opts.columns)?;
    let delimiter = (opts.delimiter as char).to_string();
    // Records are read a batch at a time, then converted in parallel. With more than
    // one thread, a batch is converted on the pool while the next one is read, so the
    // serial parsing leaves no core idle; a failure of the reading waits for the batch
    // before it, so the first failure in the file is the one reported. (With one
    // thread, one thing at a time.)
    let rows_before = sink.report.rows_read;
    let mut read_so_far = 0u64;
    // Reads the next batch into `batch`: its length, each record's line, and whether
    // the file is done.
    let mut read_batch = |batch: &mut Vec<csv::ByteRecord>| -> Result<(usize, Vec<u64>, bool)> {
        let mut done = false;
        let mut len = 0;
        if pending_first {
            batch.push(std::mem::take(&mut record));
            len = 1;
            pending_first = false;
        }
        while len < CSV_BATCH {
            if len == batch.len() {
                batch.push(csv::ByteRecord::new());
            }
            if !csv.read_byte_record(&mut batch[len]).map_err(read_error)? {
                done = true;
                break;
            }
            len += 1;
            if len % PROGRESS_ROWS == 0 {
                progress.report(consumed.get(), rows_before + read_so_far + len as u64);
            }
        }
        if done && let Some(at) = line_starts.borrow().open_quote {
            let line = line_starts.borrow().line_of(at);
            return Err(Error::input(
                file.clone(),
                format!(
                    "line {line}: a quote opens a field that is never closed; everything after it would be read as one value"
                ),
            ));
        }
        let batch = &batch[..len];
        let record_lines: Vec<u64> = {
            let mut starts = line_starts.borrow_mut();
            let lines: Vec<u64> = batch
                .iter()
                .map(|r| starts.line_of(r.position().map_or(0, |p| p.byte())))
                .collect();
            if let Some(last) = batch.last().and_then(|r| r.position()) {
                starts.forget_before(last.byte());
            }
            lines
        };
        read_so_far += len as u64;
        Ok((len, record_lines, done))
    };
    let convert_batch = |rows: &mut Rows,
                         sink: &mut RejectSink,
                         batch: &[csv::ByteRecord],
                         record_lines: &[u64]|
     -> Result<()> {
        let convert_record = |k: usize, local: &mut Rows| -> Option<PendingReject> {
            let record = &batch[k];
            let line = record_lines[k];
            let joined = || {
                record
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect::<Vec<_>>()
                    .join(&delimiter)
            };
            if record.len() != names.len() {
                let reject = (
                    "(row)".to_string(),
                    RejectReason::WrongFieldCount,
                    format!("{} fields, the header has {}", record.len(), names.len()),
                    format!("{} fields", names.len()),
                );
                return Some(PendingReject {
                    line,
                    reject,
                    value: joined(),
                    record: joined(),
                });
            }
            let cell = |i: usize| -> Cell {
                let bytes = &record[i];
                match std::str::from_utf8(bytes) {
                    Ok(s) if trim(s).is_empty() => Cell::Null,
                    Ok(s) => Cell::Text(s),
                    Err(_) => Cell::Invalid(bytes),
                }
            };
            let opt_cell = |i: Option<usize>| i.map(cell).unwrap_or(Cell::Null);
            let (amount, unit_price) = match m.amount {
                AmountSource::Column(i) => (cell(i), None),
                AmountSource::Product {
                    quantity,
                    unit_price,
                } => (cell(quantity), Some(cell(unit_price))),
            };
            let cells = RowCells {
                customer: cell(m.customer),
                time: cell(m.time),
                amount,
                unit_price,
                order: opt_cell(m.order),
                cost: opt_cell(m.cost),
                category: opt_cell(m.category),
            };
            local.push(&cells, &m).err().map(|reject| PendingReject {
                line,
                value: cell_for(&cells, &m, &reject.0).shown(),
                reject,
                record: joined(),
            })
        };
        convert(
            rows,
            sink,
            &file,
            "line",
            batch.len(),
            convert_record,
            |_| {},
        )
    };
    let mut batch: Vec<csv::ByteRecord> = Vec::new();
    if rayon::current_num_threads() <= 1 {
        loop {
            let (len, lines, done) = read_batch(&mut batch)?;
            convert_batch(rows, sink, &batch[..len], &lines)?;
            if done {
                return Ok(());
            }
        }
    }
    let (mut len, mut lines, mut done) = read_batch(&mut batch)?;
    let mut next: Vec<csv::ByteRecord> = Vec::new();
    loop {
        let (mut converted, mut read) = (None, None);
        // The conversion is a task of the current pool; this thread reads meanwhile.
        rayon::in_place_scope(|scope| {
            let (rows, sink, records) = (&mut *rows, &mut *sink, &batch[..len]);
            let (convert_batch, lines, converted) = (&convert_batch, &lines, &mut converted);
            scope.spawn(move |_| *converted = Some(convert_batch(rows, sink, records, lines)));
            if !done {
                read = Some(read_batch(&mut next));
            }
        });
        converted.expect("the scope waits for its task")?;
        match read {
            None => return Ok(()),
            Some(read) => (len, lines, done) = read?,
        }
        std::mem::swap(&mut batch, &mut next);
    }
}

/// Where physical lines start in the bytes read so far. The csv crate's own line count
/// misses blank lines and lone-CR line ends, so records get their line from their byte
/// offset instead.
#[derive(Default)]
pub(super) struct LineStarts {
    /// Offsets where a line starts (after `\n` or a lone `\r`; at the LF of `\r\n`),
    /// ascending, each with whether the line is blank (the csv crate skips blank lines
    /// and starts the next record at the first of them).
    pub(super) starts: std::collections::VecDeque<(u64, bool)>,
    /// Line starts already forgotten.
    pub(super) forgotten: u64,
    /// Where the quoted field still open at the end of the bytes so far began.
    pub(super) open_quote: Option<u64>,
}

impl LineStarts {
    /// The 1-based line holding byte `offset`.
    pub(super) fn line_of(&self, offset: u64) -> u64 {
        let mut k = self.starts.partition_point(|&(s, _)| s <= offset);
        while k >= 1 && k < self.starts.len() && self.starts[k - 1].1 {
            k += 1;
        }
        1 + self.forgotten + k as u64
    }

    /// Drops line starts at or before `offset`: later records start after it.
    pub(super) fn forget_before(&mut self, offset: u64) {
        while self.starts.front().is_some_and(|&(s, _)| s <= offset) {
            self.starts.pop_front();
            self.forgotten += 1;
        }
    }
}

/// Where the bytes stand in CSV terms, to notice a quote that is never closed (the csv
/// crate would silently read the rest of the file as one field).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum QuoteState {
    FieldStart,
    Unquoted,
    Quoted,
    QuoteInQuoted,
}

/// A reader that records where lines start as the bytes go through it.
pub(super) struct LineIndex<R> {
    pub(super) inner: R,
    pub(super) offset: u64,
    pub(super) after_cr: bool,
    pub(super) delimiter: u8,
    pub(super) quote: u8,
    pub(super) state: QuoteState,
    pub(super) quote_start: u64,
    /// Where the current line's content begins (to tell blank lines).
    pub(super) content_start: u64,
    pub(super) starts: std::rc::Rc<std::cell::RefCell<LineStarts>>,
}

impl<R> LineIndex<R> {
    pub(super) fn new(inner: R, delimiter: u8, quote: u8) -> Self {
        LineIndex {
            inner,
            offset: 0,
            after_cr: false,
            delimiter,
            quote,
            state: QuoteState::FieldStart,
            quote_start: 0,
            content_start: 0,
            starts: Default::default(),
        }
    }
}

impl<R: std::io::Read> std::io::Read for LineIndex<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut starts = self.starts.borrow_mut();
        for (i, &b) in buf[..n].iter().enumerate() {
            let at = self.offset + i as u64;
            match b {
                b'\n' if self.after_cr => {
                    // CRLF: the csv crate starts the next record at the LF, so the line
                    // is taken to start there; its content starts after the LF.
                    if let Some(last) = starts.starts.back_mut() {
                        last.0 = at;
                    }
                    self.content_start = at + 1;
                }
                b'\n' | b'\r' => {
                    if at == self.content_start
                        && let Some(last) = starts.starts.back_mut()
                    {
                        last.1 = true;
                    }
                    starts.starts.push_back((at + 1, false));
                    self.content_start = at + 1;
                }
                _ => {}
            }
            self.after_cr = b == b'\r';
            let end_of_field = b == self.delimiter || b == b'\n' || b == b'\r';
            self.state = match self.state {
                QuoteState::FieldStart | QuoteState::Unquoted if end_of_field => {
                    QuoteState::FieldStart
                }
                QuoteState::FieldStart if b == self.quote => {
                    self.quote_start = at;
                    QuoteState::Quoted
                }
                QuoteState::FieldStart | QuoteState::Unquoted => QuoteState::Unquoted,
                QuoteState::Quoted if b == self.quote => QuoteState::QuoteInQuoted,
                QuoteState::Quoted => QuoteState::Quoted,
                QuoteState::QuoteInQuoted if b == self.quote => QuoteState::Quoted,
                QuoteState::QuoteInQuoted if end_of_field => QuoteState::FieldStart,
                QuoteState::QuoteInQuoted => QuoteState::Unquoted,
            };
            starts.open_quote = (self.state == QuoteState::Quoted).then_some(self.quote_start);
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// Records read before converting them in parallel.
pub(super) const CSV_BATCH: usize = 1 << 17;
/// Rows one worker converts at a time.
pub(super) const CHUNK_ROWS: usize = 1 << 14;

/// A rejected row waiting for the bad-row policy.
pub(super) struct PendingReject {
    pub(super) line: u64,
    pub(super) reject: Reject,
    pub(super) value: String,
    pub(super) record: String,
}

/// Converts rows `0..n` in parallel chunks, each into its own `Rows`, then merges the
/// chunks and hands their rejections to the policy in row order, so the result is the
/// same as converting sequentially. `converted` hears how many rows are done after each
/// group of chunks.
pub(super) fn convert<F>(
    rows: &mut Rows,
    sink: &mut RejectSink,
    file: &str,
    place: &'static str,
    n: usize,
    row: F,
    mut converted: impl FnMut(usize),
) -> Result<()>
where
    F: Fn(usize, &mut Rows) -> Option<PendingReject> + Sync,
{
    use rayon::prelude::*;
    let n_chunks = n.div_ceil(CHUNK_ROWS);
    // Chunks are converted a group at a time so the extra memory stays bounded.
    let group = 4 * rayon::current_num_threads().max(1);
    for first in (0..n_chunks).step_by(group) {
        let chunks: Vec<(Rows, Vec<PendingReject>)> = (first..n_chunks.min(first + group))
            .into_par_iter()
            .map(|k| {
                let mut local = rows.empty_like();
                let mut rejects = Vec::new();
                for i in k * CHUNK_ROWS..n.min((k + 1) * CHUNK_ROWS) {
                    if let Some(r) = row(i, &mut local) {
                        rejects.push(r);
                    }
                }
                (local, rejects)
            })
            .collect();
        for (local, rejects) in chunks {
            for r in rejects {
                let loc = Loc {
                    file,
                    place,
                    line: r.line,
                };
                sink.reject(&loc, r.reject, r.value, r.record)?;
            }
            sink.used_n(local.day.len() as u64);
            rows.absorb(local);
        }
        converted(n.min((first + group) * CHUNK_ROWS));
    }
    Ok(())
}

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
pub(super) fn open_text(
    path: &Path,
    gzip: bool,
    consumed: Rc<CountCell<u64>>,
) -> Result<Box<dyn BufRead>> {
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

/// Bytes of a CSV file read at a time (after decompression), then split into pieces.
pub(super) const CSV_BLOCK: usize = 8 << 20;
/// About how many bytes one task parses: a block is cut at the first record boundary
/// after every multiple of this.
pub(super) const CSV_PIECE: usize = 256 << 10;

/// One piece of a block, parsed and converted: its accepted rows, its rejections in
/// line order, how many records it held, and the failure that ended it (after those).
struct Piece {
    rows: Rows,
    rejects: Vec<PendingReject>,
    records: u64,
    failure: Option<Error>,
}

/// The header's names and their roles.
struct Header {
    names: Vec<String>,
    mapping: Mapping,
}

/// Maps a plain file for reading, or `None` when it cannot be mapped (a pipe, an empty
/// file): the caller reads it through a buffer instead.
fn map_file(path: &Path) -> Result<Option<memmap2::Mmap>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() || meta.len() == 0 {
        return Ok(None);
    }
    // SAFETY: the map is only read, as a byte slice that lives as long as the map. A file
    // rewritten by another process while it is read gives mixed text, as reads would (the
    // nightly run's input checksum tells it); one truncated meanwhile ends the process
    // with SIGBUS, as in every reader that maps files (polars' among them).
    let Ok(map) = (unsafe { memmap2::Mmap::map(&file) }) else {
        return Ok(None);
    };
    let _ = map.advise(memmap2::Advice::Sequential);
    Ok(Some(map))
}

/// Loads a CSV file a block at a time: each block is cut at record boundaries (quotes
/// respected) into pieces parsed and converted side by side, then merged in file order.
/// Records keep the physical line they start on, and the first failure in file order
/// wins: a piece's read failure is reported after the rows before it.
#[allow(clippy::too_many_arguments)]
pub(super) fn load_csv_in(
    path: &Path,
    gzip: bool,
    opts: &LoadOptions,
    rows: &mut Rows,
    sink: &mut RejectSink,
    progress: &Tracker,
    (block_bytes, piece_bytes): (usize, usize),
) -> Result<()> {
    use rayon::prelude::*;
    let file = path.display().to_string();
    let consumed = Rc::new(CountCell::new(0));
    let mut blocks = Blocks::open(path, gzip, opts, Rc::clone(&consumed))?;
    let mut header: Option<Header> = None;
    let delimiter = (opts.delimiter as char).to_string();
    let rows_before = sink.report.rows_read;
    let mut read_so_far = 0u64;
    let mut pending: Vec<Piece> = Vec::new();
    loop {
        let done = blocks
            .fill(block_bytes)
            .map_err(|e| Error::input(file.clone(), format!("read failed: {e}")))?;
        let (cuts, first_lines, lines_at_cut) = blocks.cuts(piece_bytes, done);
        let skip_header = header.is_none() && opts.has_header;
        if header.is_none() {
            if cuts.len() < 2 {
                if done {
                    return Err(Error::input(file, "file is empty (expected a header line)"));
                }
                continue;
            }
            header = Some(read_header(&file, &blocks.bytes()[..cuts[1]], opts, rows)?);
        }
        let h = header.as_ref().expect("the header is read first");
        let bytes = blocks.bytes();
        let template = rows.empty_like();
        let shared = Shared {
            file: &file,
            opts,
            h,
            delimiter: &delimiter,
        };
        // This block's pieces are parsed while the last block's are merged (ids registered
        // in the file's table shard by shard, rows appended in file order).
        let (parsed, merged) = rayon::join(
            || {
                cuts.par_windows(2)
                    .zip(first_lines.par_iter())
                    .enumerate()
                    .map(|(k, (w, &first_line))| {
                        let skip = usize::from(k == 0 && skip_header);
                        let piece = &bytes[w[0]..w[1]];
                        parse_piece(&shared, piece, first_line, skip, template.empty_like())
                    })
                    .collect::<Vec<Piece>>()
            },
            || merge_pieces(&file, rows, sink, std::mem::take(&mut pending)),
        );
        merged?;
        // Progress counts records once parsed: they are read, if not yet merged.
        let records = parsed.iter().map(|p| p.records).sum::<u64>();
        if read_so_far == 0 && !done {
            // Room for the whole file, as its first block suggests (with some to spare:
            // untouched room costs no memory), so the columns are not copied as they grow.
            if let Some(size) = blocks.size() {
                let per_byte = records as f64 / cuts.last().copied().unwrap_or(1).max(1) as f64;
                rows.reserve((size as f64 * per_byte * 1.1) as usize);
            }
        }
        read_so_far += records;
        pending = parsed;
        if done {
            merge_pieces(&file, rows, sink, std::mem::take(&mut pending))?;
            progress.report(consumed.get(), rows_before + read_so_far);
            return Ok(());
        }
        progress.report(consumed.get(), rows_before + read_so_far);
        blocks.consume(cuts.last().copied().unwrap_or(0), lines_at_cut);
    }
}

/// Hands the pieces' rejections to the policy and appends their rows, in file order;
/// a piece's failure ends the file after its rows.
fn merge_pieces(
    file: &str,
    rows: &mut Rows,
    sink: &mut RejectSink,
    pieces: Vec<Piece>,
) -> Result<()> {
    let mut done = Vec::with_capacity(pieces.len());
    let mut outcome = Ok(());
    'pieces: for piece in pieces {
        for r in piece.rejects {
            let loc = Loc {
                file,
                place: "line",
                line: r.line,
            };
            if let Err(e) = sink.reject(&loc, r.reject, r.value, r.record) {
                outcome = Err(e);
                break 'pieces;
            }
        }
        sink.used_n(piece.rows.day.len() as u64);
        done.push(piece.rows);
        if let Some(e) = piece.failure {
            outcome = Err(e);
            break;
        }
    }
    rows.absorb_all(done);
    outcome
}

/// A csv reader of these bytes with the file's dialect, lines indexed as they pass.
fn reader<'a>(
    bytes: &'a [u8],
    opts: &LoadOptions,
) -> (
    csv::Reader<LineIndex<&'a [u8]>>,
    std::rc::Rc<std::cell::RefCell<LineStarts>>,
) {
    let lines = LineIndex::new(bytes, opts.delimiter, opts.quote);
    let starts = lines.starts.clone();
    let csv = csv::ReaderBuilder::new()
        .delimiter(opts.delimiter)
        .quote(opts.quote)
        .has_headers(false)
        .flexible(true)
        .from_reader(lines);
    (csv, starts)
}

/// The header of the file from the first piece (the names `column_1`, … without one).
fn read_header(file: &str, first: &[u8], opts: &LoadOptions, rows: &mut Rows) -> Result<Header> {
    let (mut csv, _) = reader(first, opts);
    let mut record = csv::ByteRecord::new();
    if !csv
        .read_byte_record(&mut record)
        .map_err(|e| Error::input(file.to_string(), format!("unreadable CSV: {e}")))?
    {
        return Err(Error::input(
            file.to_string(),
            "file is empty (expected a header line)",
        ));
    }
    let names: Vec<String> = if opts.has_header {
        let mut names = Vec::with_capacity(record.len());
        for (i, field) in record.iter().enumerate() {
            let name = std::str::from_utf8(field).map_err(|_| {
                Error::input(
                    file.to_string(),
                    format!("line 1, column {}: header is not UTF-8", i + 1),
                )
            })?;
            names.push(name.trim().to_string());
        }
        names
    } else {
        (1..=record.len()).map(|i| format!("column_{i}")).collect()
    };
    check_duplicate_names(file, &names)?;
    rows.check_id_kind(
        match rows.declared {
            IdType::Int => IdKind::Int,
            _ => IdKind::Text,
        },
        file,
    )?;
    let mapping = Mapping::resolve(file, &names, &opts.columns)?;
    Ok(Header { names, mapping })
}

/// Parses and converts one piece (whole records starting on physical line
/// `first_line`), skipping its first `skip` records (the header).
fn parse_piece(at: &Shared, bytes: &[u8], first_line: u64, skip: usize, rows: Rows) -> Piece {
    let line_end = matches!(at.opts.delimiter, b'\n' | b'\r');
    if !line_end && memchr::memchr(at.opts.quote, bytes).is_none() {
        return parse_plain_piece(at, bytes, first_line, skip, rows);
    }
    parse_quoted_piece(at, bytes, first_line, skip, rows)
}

/// What every piece of a file shares: its name, the dialect, the header and the
/// delimiter as text (to show a rejected record).
#[derive(Clone, Copy)]
struct Shared<'a> {
    file: &'a str,
    opts: &'a LoadOptions,
    h: &'a Header,
    delimiter: &'a str,
}

/// [`parse_piece`] for a piece without a quote character: every record is one line
/// and its fields lie between delimiters, so lines and fields are found with byte
/// searches. Records, their lines and the rows are those the csv reader would give:
/// `\n`, `\r` and `\r\n` end a line and blank lines hold no record.
fn parse_plain_piece(at: &Shared, bytes: &[u8], first_line: u64, skip: usize, rows: Rows) -> Piece {
    let (h, delimiter, delimiter_byte) = (at.h, at.delimiter, at.opts.delimiter);
    let mut piece = Piece {
        rows,
        rejects: Vec::new(),
        records: 0,
        failure: None,
    };
    let mut ends = Vec::with_capacity(h.names.len() + 1);
    // One check of the whole piece (most are ASCII) instead of one per field.
    let utf8 = if delimiter_byte.is_ascii() {
        std::str::from_utf8(bytes).ok()
    } else {
        None
    };
    // One search finds the delimiters and the line ends of the whole piece.
    let mut hits = memchr::memchr3_iter(delimiter_byte, b'\n', b'\r', bytes);
    let (mut line, mut start, mut skipped) = (first_line, 0, 0);
    loop {
        let hit = hits.next();
        let end = match hit {
            Some(p) if bytes[p] == delimiter_byte => {
                ends.push(p - start);
                continue;
            }
            Some(p) => p,
            None => bytes.len(),
        };
        let (text, this_line) = (&bytes[start..end], line);
        let mut next = end;
        if end < bytes.len() {
            next += 1;
            if bytes[end] == b'\r' && bytes.get(end + 1) == Some(&b'\n') {
                next += 1;
                hits.next(); // the `\n` of `\r\n`
            }
            line += 1;
        }
        if text.is_empty() {
            // A blank line holds no record.
        } else if skipped < skip {
            skipped += 1;
        } else {
            ends.push(text.len());
            let fields = Fields {
                text,
                utf8: utf8.map(|u| &u[start..end]),
                ends: &ends,
            };
            convert_record(&mut piece, &fields, this_line, h, delimiter);
        }
        ends.clear();
        start = next;
        if hit.is_none() || start >= bytes.len() {
            return piece;
        }
    }
}

/// The fields of one record.
trait Record {
    fn len(&self) -> usize;
    fn field(&self, i: usize) -> &[u8];

    /// Field `i` as text, or its bytes when they are not UTF-8.
    fn text(&self, i: usize) -> std::result::Result<&str, &[u8]> {
        let bytes = self.field(i);
        std::str::from_utf8(bytes).map_err(|_| bytes)
    }
}

impl Record for csv::ByteRecord {
    fn len(&self) -> usize {
        csv::ByteRecord::len(self)
    }

    fn field(&self, i: usize) -> &[u8] {
        &self[i]
    }
}

/// An unquoted record: field `i` ends at `ends[i]` and starts after the one before.
/// `utf8` is the whole line when it is valid UTF-8 (checked once for its piece).
struct Fields<'a> {
    text: &'a [u8],
    utf8: Option<&'a str>,
    ends: &'a [usize],
}

impl Record for Fields<'_> {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn field(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] + 1 };
        &self.text[start..self.ends[i]]
    }

    fn text(&self, i: usize) -> std::result::Result<&str, &[u8]> {
        match self.utf8 {
            // Fields end at an ASCII delimiter or the line's end: char boundaries.
            Some(line) => Ok(&line[if i == 0 { 0 } else { self.ends[i - 1] + 1 }..self.ends[i]]),
            None => {
                let bytes = self.field(i);
                std::str::from_utf8(bytes).map_err(|_| bytes)
            }
        }
    }
}

/// [`parse_piece`] through the csv reader, for a piece with quotes.
fn parse_quoted_piece(
    at: &Shared,
    bytes: &[u8],
    first_line: u64,
    skip: usize,
    rows: Rows,
) -> Piece {
    let Shared {
        file,
        opts,
        h,
        delimiter,
    } = *at;
    let (mut csv, starts) = reader(bytes, opts);
    let mut piece = Piece {
        rows,
        rejects: Vec::new(),
        records: 0,
        failure: None,
    };
    let mut record = csv::ByteRecord::new();
    // A record is converted once the next one is read (or the piece ends), so that the
    // record a never-closed quote swallowed is not converted: the failure is its.
    let mut held: Option<(csv::ByteRecord, u64)> = None;
    let mut skipped = 0;
    loop {
        match csv.read_byte_record(&mut record) {
            Ok(true) if skipped < skip => skipped += 1,
            Ok(true) => {
                let line = first_line - 1
                    + starts
                        .borrow()
                        .line_of(record.position().map_or(0, |p| p.byte()));
                if let Some((r, l)) = held.replace((std::mem::take(&mut record), line)) {
                    convert_record(&mut piece, &r, l, h, delimiter);
                    record = r;
                }
            }
            Ok(false) => break,
            Err(e) => {
                if let Some((r, l)) = held.take() {
                    convert_record(&mut piece, &r, l, h, delimiter);
                }
                piece.failure = Some(Error::input(
                    file.to_string(),
                    format!("unreadable CSV: {e}"),
                ));
                return piece;
            }
        }
    }
    let open_quote = starts.borrow().open_quote;
    match (held, open_quote) {
        (_, Some(at)) => {
            let line = first_line - 1 + starts.borrow().line_of(at);
            piece.failure = Some(Error::input(
                file.to_string(),
                format!(
                    "line {line}: a quote opens a field that is never closed; everything after it would be read as one value"
                ),
            ));
        }
        (Some((r, l)), None) => convert_record(&mut piece, &r, l, h, delimiter),
        (None, None) => {}
    }
    piece
}

/// Converts one record (on physical line `line`) into the piece's rows.
fn convert_record(piece: &mut Piece, record: &impl Record, line: u64, h: &Header, delimiter: &str) {
    piece.records += 1;
    let m = &h.mapping;
    let joined = || {
        (0..record.len())
            .map(|i| String::from_utf8_lossy(record.field(i)).into_owned())
            .collect::<Vec<_>>()
            .join(delimiter)
    };
    if record.len() != h.names.len() {
        let reject = (
            "(row)".to_string(),
            RejectReason::WrongFieldCount,
            format!("{} fields, the header has {}", record.len(), h.names.len()),
            format!("{} fields", h.names.len()),
        );
        piece.rejects.push(PendingReject {
            line,
            reject,
            value: joined(),
            record: joined(),
        });
        return;
    }
    let cell = |i: usize| -> Cell {
        match record.text(i) {
            Ok(s) if trim(s).is_empty() => Cell::Null,
            Ok(s) => Cell::Text(s),
            Err(bytes) => Cell::Invalid(bytes),
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
    if let Err(reject) = piece.rows.push(&cells, m) {
        piece.rejects.push(PendingReject {
            line,
            value: cell_for(&cells, m, &reject.0).shown(),
            reject,
            record: joined(),
        });
    }
}

/// The text of a CSV file a block at a time, with where its records end.
struct Blocks {
    source: Source,
    /// Bytes read and not yet consumed, from a stream; they begin at a record boundary.
    buf: Vec<u8>,
    /// From a mapped file: the bytes not yet consumed and taken so far, `start..end`.
    window: (usize, usize),
    /// From a mapped file: the bytes before this were handed back (see `consume`).
    released: usize,
    /// Bytes of the file taken so far (before decompression), for progress.
    consumed: Rc<CountCell<u64>>,
    /// Physical lines before the bytes not yet consumed.
    lines_before: u64,
    delimiter: u8,
    quote: u8,
}

/// Consumed text of a mapped file is handed back in multiples of this (a multiple of
/// every page size in use).
const RELEASE_ALIGN: usize = 1 << 20;

/// Where a CSV file's bytes come from.
enum Source {
    /// Decompressed or otherwise read through a buffer (gzip, pipes).
    Stream(Box<dyn BufRead>),
    /// A plain file, mapped: blocks are windows of it, never copied.
    Mapped(memmap2::Mmap),
}

impl Blocks {
    /// Maps a plain file (read through a buffer when it cannot be mapped, as a pipe or an
    /// empty file cannot) or opens a gzip stream; a UTF-8 byte order mark is skipped.
    fn open(
        path: &Path,
        gzip: bool,
        opts: &LoadOptions,
        consumed: Rc<CountCell<u64>>,
    ) -> Result<Blocks> {
        let mapped = if gzip { None } else { map_file(path)? };
        let (source, start) = match mapped {
            Some(map) => {
                let bom = usize::from(map.starts_with(&[0xEF, 0xBB, 0xBF])) * 3;
                (Source::Mapped(map), bom)
            }
            None => (
                Source::Stream(open_text(path, gzip, Rc::clone(&consumed))?),
                0,
            ),
        };
        Ok(Blocks {
            source,
            buf: Vec::new(),
            window: (start, start),
            released: 0,
            consumed,
            lines_before: 0,
            delimiter: opts.delimiter,
            quote: opts.quote,
        })
    }

    /// The file's size in bytes when it is mapped (not known for a stream).
    fn size(&self) -> Option<usize> {
        match &self.source {
            Source::Mapped(map) => Some(map.len()),
            Source::Stream(_) => None,
        }
    }

    /// The bytes taken and not yet consumed; they begin at a record boundary.
    fn bytes(&self) -> &[u8] {
        match &self.source {
            Source::Mapped(map) => &map[self.window.0..self.window.1],
            Source::Stream(_) => &self.buf,
        }
    }

    /// Takes bytes until at least `block` are held, and at least one more than now; true
    /// at the end of the file.
    fn fill(&mut self, block: usize) -> std::io::Result<bool> {
        let text = match &mut self.source {
            Source::Mapped(map) => {
                let (start, end) = self.window;
                let target = block.max(end - start + 1);
                self.window.1 = (start + target).min(map.len());
                self.consumed.set(self.window.1 as u64);
                return Ok(self.window.1 == map.len());
            }
            Source::Stream(text) => text,
        };
        let target = block.max(self.buf.len() + 1);
        while self.buf.len() < target {
            let chunk = match text.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                return Ok(true);
            }
            let n = chunk.len();
            self.buf.extend_from_slice(chunk);
            text.consume(n);
        }
        Ok(false)
    }

    /// Where to cut `buf` into pieces of about `piece` bytes: offsets from 0 to the end
    /// of the last whole record (the whole buffer at the end of the file), and the
    /// physical line each piece starts on. A cut is made only after a line end outside
    /// quotes that is followed by more than another line end, so each piece starts a
    /// record exactly where the csv crate would.
    fn cuts(&self, piece: usize, done: bool) -> (Vec<usize>, Vec<u64>, u64) {
        if let Some(cuts) = self.plain_cuts(piece, done) {
            return cuts;
        }
        let buf = self.bytes();
        let (mut cuts, mut first_lines) = (vec![0], vec![self.lines_before + 1]);
        let mut lines = self.lines_before;
        let mut quoted = false;
        let mut next_cut = piece;
        let mut last_boundary = (0, lines);
        let mut at = 0;
        while let Some(k) = memchr::memchr3(self.quote, b'\n', b'\r', &buf[at..]) {
            let p = at + k;
            let b = buf[p];
            at = p + 1;
            if b == self.quote {
                if quoted {
                    if buf.get(p + 1) == Some(&self.quote) {
                        at = p + 2; // an escaped quote inside a quoted field
                    } else {
                        quoted = false;
                    }
                } else if p == 0
                    || matches!(buf[p - 1], b'\n' | b'\r')
                    || buf[p - 1] == self.delimiter
                {
                    quoted = true;
                }
                continue;
            }
            // A line end: `\r\n` counts once, at its `\r`.
            if b == b'\r' || p == 0 || buf[p - 1] != b'\r' {
                lines += 1;
            }
            if quoted {
                continue;
            }
            let end = p + 1;
            match buf.get(end) {
                // The `\n` of `\r\n`, or a blank line next: no cut here.
                Some(b'\n') if b == b'\r' => continue,
                Some(b'\n' | b'\r') => continue,
                // The buffer ends here: the next byte is not known yet.
                None if !done => continue,
                _ => {}
            }
            last_boundary = (end, lines);
            if end >= next_cut {
                cuts.push(end);
                first_lines.push(lines + 1);
                next_cut = end + piece;
            }
        }
        if done {
            if *cuts.last().unwrap() < buf.len() {
                cuts.push(buf.len());
            } else {
                first_lines.pop();
            }
        } else {
            if *cuts.last().unwrap() < last_boundary.0 {
                cuts.push(last_boundary.0);
            } else {
                first_lines.pop();
            }
        }
        (cuts, first_lines, last_boundary.1)
    }

    /// [`Blocks::cuts`] of text without quotes or carriage returns, where every `\n` ends
    /// a record: each cut is one byte search from where a piece would end, and the
    /// pieces' lines are counted side by side. `None` (cut one line end at a time) when
    /// the text has either byte, or no line end.
    fn plain_cuts(&self, piece: usize, done: bool) -> Option<(Vec<usize>, Vec<u64>, u64)> {
        use rayon::prelude::*;
        let buf = self.bytes();
        let end = if done {
            buf.len()
        } else {
            memchr::memrchr(b'\n', buf)? + 1
        };
        let mut cuts = vec![0];
        while let Some(&last) = cuts.last()
            && last + piece < end
        {
            let cut = memchr::memchr(b'\n', &buf[last + piece..end])
                .map_or(end, |k| last + piece + k + 1);
            cuts.push(cut);
        }
        if *cuts.last()? < end {
            cuts.push(end);
        }
        if cuts.len() < 2 {
            return None;
        }
        let quote = self.quote;
        let counted: Option<Vec<u64>> = cuts
            .par_windows(2)
            .map(|w| {
                let text = &buf[w[0]..w[1]];
                memchr::memchr2(quote, b'\r', text)
                    .is_none()
                    .then(|| memchr::memchr_iter(b'\n', text).count() as u64)
            })
            .collect();
        let mut first_lines = Vec::with_capacity(cuts.len() - 1);
        let mut lines = self.lines_before;
        for n in counted? {
            first_lines.push(lines + 1);
            lines += n;
        }
        Some((cuts, first_lines, lines))
    }

    /// Drops the first `n` bytes (whole records), which end on physical line `lines`.
    fn consume(&mut self, n: usize, lines: u64) {
        self.lines_before = lines;
        match &self.source {
            Source::Mapped(map) => {
                self.window.0 += n;
                // Consumed text is not read again: its pages leave this process (they stay
                // in the page cache), so resident memory does not grow with the file.
                let done = self.window.0 / RELEASE_ALIGN * RELEASE_ALIGN;
                if done > self.released {
                    // SAFETY: MADV_DONTNEED on a shared read-only file map only unmaps
                    // the pages; read again, they come back from the file unchanged. No
                    // slice of these bytes is held: pieces are parsed before `consume`.
                    let _ = unsafe {
                        map.unchecked_advise_range(
                            memmap2::UncheckedAdvice::DontNeed,
                            self.released,
                            done - self.released,
                        )
                    };
                    self.released = done;
                }
            }
            Source::Stream(_) => drop(self.buf.drain(..n)),
        }
    }
}

/// Where physical lines start in a piece's bytes. The csv crate's own line count
/// misses blank lines and lone-CR line ends, so records get their line from their byte
/// offset instead.
pub(super) struct LineStarts {
    /// Offsets where a line starts (0, then after `\n` or a lone `\r`; at the LF of
    /// `\r\n`), ascending, each with whether the line is blank (the csv crate skips blank
    /// lines and starts the next record at the first of them).
    pub(super) starts: std::collections::VecDeque<(u64, bool)>,
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
        k as u64
    }
}

impl Default for LineStarts {
    /// Line 1 starts at 0 (and may be blank too).
    fn default() -> LineStarts {
        LineStarts {
            starts: std::collections::VecDeque::from([(0, false)]),
            open_quote: None,
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
        let bytes = &buf[..n];
        let mut i = 0;
        while i < n {
            let b = bytes[i];
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
            i += 1;
            // Bytes that change nothing are skipped a run at a time: inside an unquoted
            // field all but a delimiter or line end, inside a quoted one all but a quote
            // or line end. None of them is a CR, so after a skip no CR is pending.
            let stop = match self.state {
                QuoteState::Unquoted => memchr::memchr3(self.delimiter, b'\n', b'\r', &bytes[i..]),
                QuoteState::Quoted => memchr::memchr3(self.quote, b'\n', b'\r', &bytes[i..]),
                _ => Some(0),
            };
            let skip = stop.unwrap_or(n - i);
            if skip > 0 {
                self.after_cr = false;
                i += skip;
            }
        }
        starts.open_quote = (self.state == QuoteState::Quoted).then_some(self.quote_start);
        self.offset += n as u64;
        Ok(n)
    }
}

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
        let mut done = Vec::with_capacity(chunks.len());
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
            done.push(local);
        }
        rows.absorb_all(done);
        converted(n.min((first + group) * CHUNK_ROWS));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What a parsed piece amounts to: every column, each row's customer id, and each
    /// rejection with its line, value and record.
    fn outcome(piece: Piece) -> (Vec<Vec<i64>>, Vec<String>, Vec<String>, u64) {
        let Piece {
            rows,
            rejects,
            records,
            failure,
        } = piece;
        assert!(failure.is_none());
        let columns = vec![
            rows.day.iter().map(|&d| i64::from(d)).collect(),
            rows.amount.clone(),
            rows.profit.clone(),
            rows.order.iter().map(|&o| o as i64).collect(),
            rows.category.iter().map(|&c| i64::from(c)).collect(),
        ];
        let ids = (0..rows.day.len())
            .map(|i| rows.pending.text_at(i).to_string())
            .collect();
        let rejects = rejects
            .iter()
            .map(|r| format!("{} {:?} {} | {}", r.line, r.reject, r.value, r.record))
            .collect();
        (columns, ids, rejects, records)
    }

    proptest! {
        /// Without quotes, the byte-search parser gives what the csv reader gives: the
        /// same rows, the same rejections on the same physical lines, whatever the line
        /// ends (LF, CRLF, lone CR), blank lines, field counts and values.
        #[test]
        fn plain_pieces_parse_as_the_csv_reader_does(
            lines in proptest::collection::vec(
                (0usize..8, 0usize..4, 0u32..40, 0u32..3, 0usize..3),
                1..40,
            ),
            skip in 0usize..2,
            first_line in 1u64..5,
        ) {
            let opts = LoadOptions::default();
            let names: Vec<String> = ["customer_id", "ts", "amount", "category"]
                .iter().map(|s| s.to_string()).collect();
            let mapping = Mapping::resolve("t.csv", &names, &opts.columns).unwrap();
            let h = Header { names, mapping };
            let mut text: Vec<u8> = Vec::new();
            for (i, &(shape, end, value, day, extra)) in lines.iter().enumerate() {
                let line = match shape {
                    0 => String::new(),
                    1 => format!("c{value},2024-01-{:02},{}.{:02},cat{extra}", day + 1, value, i),
                    2 => format!("c{value},2024-01-{:02},x{value},", day + 1),
                    3 => format!("c{value},2024-13-01,1.00"),
                    4 => format!(" c{value} ,2024-01-02T10:00:00, {value} ,"),
                    5 => format!("c{value}é,2024-01-02,1,Kaffee ☕"),
                    6 => format!("c{value},2024-01-02,1,bad \u{FFFD}"),
                    _ => ",,,".to_string(),
                };
                let mut line = line.into_bytes();
                if shape == 6 {
                    // Not UTF-8: a lone continuation byte in place of the replacement char.
                    let n = line.len();
                    line.truncate(n - 3);
                    line.push(0x80);
                }
                text.extend_from_slice(&line);
                let ends = ["\n", "\r\n", "\r", ""];
                text.extend_from_slice(ends[end.min(if i + 1 == lines.len() { 3 } else { 2 })].as_bytes());
            }
            let bytes = &text[..];
            let rows = || Builder::new(&opts).rows;
            let at = Shared { file: "t.csv", opts: &opts, h: &h, delimiter: "," };
            let plain = parse_plain_piece(&at, bytes, first_line, skip, rows());
            let quoted = parse_quoted_piece(&at, bytes, first_line, skip, rows());
            prop_assert_eq!(outcome(plain), outcome(quoted));
        }
    }
}

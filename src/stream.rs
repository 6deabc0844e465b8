//! Out-of-core scoring: the job of `segment` over inputs larger than memory.
//!
//! Pass 1 reads the inputs in batches (a file, or a row range of a Parquet/IPC file),
//! validates each batch with the normal loader and scatters its lines into hash partitions
//! of the customer id, spilled to disk; a batch is scattered while the next one loads.
//! Pass 2 reads every partition's ids (skipping its lines) and merges them into
//! customer-id order. Pass 3 builds one partition's transactions at a time, reading the
//! next one meanwhile, and runs the per-customer kernels on it (summary, best-customer
//! window, reactivation, category pairs, whose counts add up over partitions); each
//! result goes straight to its customer's place. The global steps (NTILE scores,
//! deciles, stages, the ranking of category pairs) run on them; pass 4 revisits each
//! partition for the next category, which needs the global pair ranking. Memory grows
//! with the number of customers, two batches and two partitions, not with the number of
//! lines, and the result equals `segment` on the whole input, byte for byte.
//!
//! Not for: the report panels that need every line (cube, cohorts); see `report`.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use polars::prelude::PlHashMap;

use crate::affinity;
use crate::best::{BestCustomers, best_customers};
use crate::error::{Error, Result};
use crate::lifecycle::lifecycle;
use crate::load::{BadRowPolicy, LoadOptions};
use crate::load::{FileReport, LoadReport, load_batch};
use crate::segments::{AnalysisSettings, Segmentation};
use crate::summary::{Summary, summarize};
use crate::transactions::{CustomerIds, NO_CATEGORY, TextIds, Transactions};

/// How to stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamOptions {
    /// Hash partitions of the customer id (each is aggregated in memory on its own; two
    /// are in memory at once, one being worked on while the next is read).
    pub partitions: usize,
    /// Rows per batch of a Parquet/IPC file (CSV files are read a file at a time).
    pub batch_rows: u64,
    /// Where partitions are spilled (a temporary directory inside it, removed at the
    /// end); the system's temporary directory when None.
    pub spill_dir: Option<PathBuf>,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            partitions: 64,
            batch_rows: 2_000_000,
            spill_dir: None,
        }
    }
}

/// The scored customers and the report of every row read.
pub struct Streamed {
    pub segmentation: Segmentation,
    pub report: LoadReport,
    /// Lines spilled to disk (= rows used).
    pub spilled_lines: u64,
}

/// Runs `segment` over `opts`' inputs out of core.
pub fn segment_streaming(
    opts: &LoadOptions,
    settings: &AnalysisSettings,
    so: &StreamOptions,
) -> Result<Streamed> {
    settings.check()?;
    if so.partitions == 0 || so.batch_rows == 0 {
        return Err(Error::Usage(
            "partitions and batch rows must be at least 1".into(),
        ));
    }
    let spill_root = so.spill_dir.clone().unwrap_or_else(std::env::temp_dir);
    let spill = tempfile::Builder::new()
        .prefix("custvalue-spill-")
        .tempdir_in(&spill_root)
        .map_err(|e| Error::io(&spill_root, e))?;
    let mut pass1 = Scatter::new(spill.path(), so.partitions)?;
    let report = pass1.read_all(opts, so)?;
    let (paths, categories, code_rank, int_ids) = pass1.finish()?;
    let as_of = report.as_of;
    let decimals = opts.currency_decimals;
    let part_tx = |p: usize, bytes: &mut Vec<u8>| -> Result<Transactions> {
        let codes = (&categories[..], &code_rank[..]);
        read_partition(&paths[p], bytes, int_ids, codes, as_of, decimals)
    };

    // Pass 2: every partition's ids, merged into customer-id order; each customer's
    // place in it.
    let part_ids: Vec<CustomerIds> = {
        use rayon::prelude::*;
        let read: Vec<Result<CustomerIds>> = (0..paths.len())
            .into_par_iter()
            .map(|p| read_partition_ids(&paths[p], int_ids))
            .collect();
        // The first failure in partition order, whatever the threads' timing.
        read.into_iter().collect::<Result<_>>()?
    };
    let (ids, places) = merge_ids(part_ids);
    let n = ids.len();

    // Pass 3: per-partition kernels, each result moved to its place at once.
    let mut g = Gathered::new(ids, n, as_of, decimals);
    let mut affinities = Vec::with_capacity(paths.len());
    each_partition(
        paths.len(),
        |p, bytes| part_tx(p, bytes),
        |p, tx| {
            // Independent passes side by side, as in `segments::segment`.
            let (summary, best) =
                rayon::join(|| summarize(&tx), || best_customers(&tx, &settings.best));
            let (summary, best) = (summary?, best?);
            let (reactivated, partial) = rayon::join(
                || lifecycle(&tx, &summary, &settings.lifecycle).reactivated,
                || affinity::affinity(&tx, &summary),
            );
            affinities.push(partial);
            g.put(&places[p], &summary, &best, &reactivated);
            Ok(())
        },
    )?;
    let pairs = affinity::merge(affinities.iter().collect())?.pairs;
    drop(affinities);

    // Pass 4: next categories with the global pair ranking.
    let mut next_category = vec![None; n];
    each_partition(
        paths.len(),
        |p, bytes| part_tx(p, bytes),
        |p, tx| {
            let summary = summarize(&tx)?;
            let next = affinity::next_category_codes(&tx, &summary, &pairs);
            for (c, &at) in places[p].iter().enumerate() {
                next_category[at as usize] = next[c];
            }
            Ok(())
        },
    )?;
    drop(places);
    drop(spill);
    // The partitions are gone; the scoring's sorts need their pages.
    crate::load::release_free_memory();

    let spilled_lines = report.rows_used;
    let segmentation = crate::segments::score_summary(
        g.summary,
        settings,
        g.best,
        g.reactivated,
        (next_category, categories),
    )?;
    Ok(Streamed {
        segmentation,
        report,
        spilled_lines,
    })
}

/// Runs `work` on each partition's transactions in order, `read` reading the next
/// partition (into one reused buffer) while the current one is worked on.
fn each_partition(
    n: usize,
    read: impl Fn(usize, &mut Vec<u8>) -> Result<Transactions> + Sync,
    mut work: impl FnMut(usize, Transactions) -> Result<()> + Send,
) -> Result<()> {
    let mut bytes = Vec::new();
    let mut next = (n > 0).then(|| read(0, &mut bytes)).transpose()?;
    for p in 0..n {
        let Some(tx) = next.take() else { break };
        let (done, read_next) = rayon::join(
            || work(p, tx),
            || (p + 1 < n).then(|| read(p + 1, &mut bytes)).transpose(),
        );
        done?;
        next = read_next?;
        // Partitions are built and dropped on different threads: now and then, hand
        // their pages back rather than leave them in each thread's arena.
        if p % 8 == 7 {
            crate::load::release_free_memory();
        }
    }
    Ok(())
}

/// The ids of all partitions in customer-id order, and where each partition's
/// customers go in it.
fn merge_ids(parts: Vec<CustomerIds>) -> (CustomerIds, Vec<Vec<u32>>) {
    let mut order: Vec<(u32, u32)> = parts
        .iter()
        .enumerate()
        .flat_map(|(p, ids)| (0..ids.len()).map(move |c| (p as u32, c as u32)))
        .collect();
    {
        use rayon::slice::ParallelSliceMut;
        let parts = &parts;
        order.par_sort_unstable_by(|&(pa, ca), &(pb, cb)| {
            match (&parts[pa as usize], &parts[pb as usize]) {
                (CustomerIds::Int(x), CustomerIds::Int(y)) => x[ca as usize].cmp(&y[cb as usize]),
                (CustomerIds::Text(x), CustomerIds::Text(y)) => {
                    x[ca as usize].as_bytes().cmp(y[cb as usize].as_bytes())
                }
                // One id type per run (checked while scattering).
                _ => std::cmp::Ordering::Equal,
            }
        });
    }
    let mut places: Vec<Vec<u32>> = parts.iter().map(|ids| vec![0; ids.len()]).collect();
    for (at, &(p, c)) in order.iter().enumerate() {
        places[p as usize][c as usize] = at as u32;
    }
    let int_ids = parts.iter().any(|ids| matches!(ids, CustomerIds::Int(_)));
    let ids = if int_ids {
        let mut out = vec![0i64; order.len()];
        for (p, ids) in parts.into_iter().enumerate() {
            if let CustomerIds::Int(v) = ids {
                for (c, id) in v.into_iter().enumerate() {
                    out[places[p][c] as usize] = id;
                }
            }
        }
        CustomerIds::Int(out)
    } else {
        let mut out = TextIds::new();
        for &(p, c) in &order {
            if let CustomerIds::Text(v) = &parts[p as usize] {
                out.push(&v[c as usize]);
            }
        }
        CustomerIds::Text(out)
    };
    (ids, places)
}

/// Per-customer results in customer-id order, filled partition by partition.
struct Gathered {
    summary: Summary,
    best: BestCustomers,
    reactivated: Vec<bool>,
}

impl Gathered {
    fn new(ids: CustomerIds, n: usize, as_of: i32, decimals: u32) -> Gathered {
        Gathered {
            summary: Summary {
                ids,
                as_of,
                currency_decimals: decimals,
                first_purchase: vec![None; n],
                last_purchase: vec![None; n],
                frequency: vec![0; n],
                monetary: vec![0; n],
                profit: vec![0; n],
                n_categories: vec![0; n],
            },
            best: BestCustomers {
                spend: vec![0; n],
                categories: vec![0; n],
                orders: vec![0; n],
                best: vec![false; n],
            },
            reactivated: vec![false; n],
        }
    }

    /// Moves one partition's results (customer `c` of it goes to `places[c]`).
    fn put(&mut self, places: &[u32], s: &Summary, best: &BestCustomers, reactivated: &[bool]) {
        let (g, b) = (&mut self.summary, &mut self.best);
        for (c, &at) in places.iter().enumerate() {
            let at = at as usize;
            g.first_purchase[at] = s.first_purchase[c];
            g.last_purchase[at] = s.last_purchase[c];
            g.frequency[at] = s.frequency[c];
            g.monetary[at] = s.monetary[c];
            g.profit[at] = s.profit[c];
            g.n_categories[at] = s.n_categories[c];
            b.spend[at] = best.spend[c];
            b.categories[at] = best.categories[c];
            b.orders[at] = best.orders[c];
            b.best[at] = best.best[c];
            self.reactivated[at] = reactivated[c];
        }
    }
}

/// The partition files, category names in order, first-appearance code → rank, and
/// whether ids are integers.
type Spilled = (Vec<PathBuf>, Vec<String>, Vec<u32>, bool);

/// Pass 1: validated batches scattered into spilled hash partitions.
struct Scatter {
    paths: Vec<PathBuf>,
    writers: Vec<BufWriter<File>>,
    /// Category name → code in order of first appearance.
    categories: PlHashMap<String, u32>,
    names: Vec<String>,
    /// Whether ids are integers (None before the first batch).
    int_ids: Option<bool>,
}

impl Scatter {
    fn new(dir: &Path, partitions: usize) -> Result<Scatter> {
        let mut paths = Vec::with_capacity(partitions);
        let mut writers = Vec::with_capacity(partitions);
        for p in 0..partitions {
            let path = dir.join(format!("part-{p:05}.bin"));
            let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
            writers.push(BufWriter::with_capacity(1 << 16, file));
            paths.push(path);
        }
        Ok(Scatter {
            paths,
            writers,
            categories: PlHashMap::default(),
            names: Vec::new(),
            int_ids: None,
        })
    }

    /// Reads every input batch; returns the report of all of them.
    fn read_all(&mut self, opts: &LoadOptions, so: &StreamOptions) -> Result<LoadReport> {
        let inputs = crate::load::expand_inputs(&opts.inputs)?;
        let quarantine = match &opts.on_bad_rows {
            BadRowPolicy::Quarantine(path) => Some(path.clone()),
            _ => None,
        };
        let q_dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
        let mut q_parts: Vec<PathBuf> = Vec::new();
        let mut report: Option<LoadReport> = None;
        let mut pending: Option<Transactions> = None;
        for path in &inputs {
            let shown = path.display().to_string();
            let mut file_report = FileReport {
                path: shown.clone(),
                bytes: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
                rows_read: 0,
                rows_used: 0,
                rows_rejected: 0,
            };
            for range in batches(path, so.batch_rows)? {
                let mut o = opts.clone();
                o.inputs = vec![shown.clone()];
                o.row_range = range;
                o.allow_empty = true;
                if quarantine.is_some() {
                    let q = q_dir.path().join(format!("q-{}.csv", q_parts.len()));
                    o.on_bad_rows = BadRowPolicy::Quarantine(q.clone());
                    q_parts.push(q);
                }
                // The previous batch is scattered while this one loads.
                let (loaded, scattered) = rayon::join(
                    || load_batch(&o),
                    || pending.take().map_or(Ok(()), |tx| self.scatter(&tx)),
                );
                scattered?;
                let loaded = loaded?;
                let r = loaded.report;
                file_report.rows_read += r.rows_read;
                file_report.rows_used += r.rows_used;
                file_report.rows_rejected += r.rows_rejected;
                if loaded.transactions.n_lines() > 0 {
                    pending = Some(loaded.transactions);
                }
                report = Some(match report.take() {
                    None => LoadReport {
                        files: Vec::new(),
                        ..r
                    },
                    Some(acc) => add_reports(acc, r, opts.max_examples),
                });
            }
            if let Some(acc) = report.as_mut() {
                acc.files.push(file_report);
            }
        }
        if let Some(tx) = pending {
            self.scatter(&tx)?;
        }
        let mut report = report.ok_or_else(|| {
            Error::Usage(
                "no input given: name the input files (--input FILE, or [input] files)".into(),
            )
        })?;
        if report.rows_used == 0 {
            return Err(crate::load::no_usable_rows(
                &inputs,
                report.rows_read,
                report.rows_rejected,
            ));
        }
        if let Some(target) = quarantine {
            concat_quarantine(&q_parts, &target)?;
            report.quarantine = Some(target);
        }
        Ok(report)
    }

    fn category_code(&mut self, name: &str) -> u32 {
        if let Some(&k) = self.categories.get(name) {
            return k;
        }
        let k = self.names.len() as u32;
        self.names.push(name.to_string());
        self.categories.insert(name.to_string(), k);
        k
    }

    fn scatter(&mut self, tx: &Transactions) -> Result<()> {
        let int_ids = matches!(tx.ids, CustomerIds::Int(_));
        match self.int_ids {
            Some(k) if k != int_ids => {
                return Err(Error::Usage(
                    "some inputs have integer customer ids and others text ids: set \
                     --customer-id-type so that every file reads ids alike"
                        .into(),
                ));
            }
            _ => self.int_ids = Some(int_ids),
        }
        let codes: Vec<u32> = tx
            .categories
            .iter()
            .map(|c| self.category_code(c))
            .collect();
        let n = self.writers.len() as u64;
        let mut buf: Vec<u8> = Vec::with_capacity(256);
        for c in 0..tx.n_customers() {
            buf.clear();
            let p = match &tx.ids {
                CustomerIds::Int(v) => {
                    buf.extend_from_slice(&v[c].to_le_bytes());
                    crate::parallel::mix(v[c] as u64) % n
                }
                CustomerIds::Text(v) => {
                    let b = v[c].as_bytes();
                    buf.extend_from_slice(&(b.len() as u32).to_le_bytes());
                    buf.extend_from_slice(b);
                    crate::parallel::mix(crate::parallel::fnv(b)) % n
                }
            };
            let lines = tx.lines(c);
            buf.extend_from_slice(&(lines.len() as u32).to_le_bytes());
            for i in lines {
                buf.extend_from_slice(&tx.day[i].to_le_bytes());
                buf.extend_from_slice(&tx.order[i].to_le_bytes());
                let k = match tx.category[i] {
                    NO_CATEGORY => NO_CATEGORY,
                    k => codes[k as usize],
                };
                buf.extend_from_slice(&k.to_le_bytes());
                buf.extend_from_slice(&tx.amount[i].to_le_bytes());
                buf.extend_from_slice(&tx.profit[i].to_le_bytes());
            }
            let path = &self.paths[p as usize];
            self.writers[p as usize]
                .write_all(&buf)
                .map_err(|e| Error::io(path, e))?;
        }
        Ok(())
    }

    /// Flushes the partitions; returns their paths, the category names sorted by UTF-8
    /// bytes, each first-appearance code's rank among them, and whether ids are integers.
    fn finish(self) -> Result<Spilled> {
        for (w, path) in self.writers.into_iter().zip(&self.paths) {
            let file = w
                .into_inner()
                .map_err(|e| Error::io(path, e.into_error()))?;
            drop(file);
        }
        let mut sorted: Vec<(usize, &String)> = self.names.iter().enumerate().collect();
        sorted.sort_unstable_by(|a, b| a.1.as_bytes().cmp(b.1.as_bytes()));
        let mut rank = vec![0u32; self.names.len()];
        for (r, (code, _)) in sorted.iter().enumerate() {
            rank[*code] = r as u32;
        }
        let names = sorted.into_iter().map(|(_, n)| n.clone()).collect();
        Ok((self.paths, names, rank, self.int_ids.unwrap_or(false)))
    }
}

/// The row ranges of one input read as batches: `None` = the whole file (CSV files, and
/// Parquet/IPC files of at most `batch_rows` rows).
fn batches(path: &Path, batch_rows: u64) -> Result<Vec<Option<std::ops::Range<u64>>>> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let columnar = [".parquet", ".pq", ".arrow", ".ipc", ".feather"]
        .iter()
        .any(|e| name.ends_with(e));
    if !columnar {
        return Ok(vec![None]);
    }
    let n = crate::load::columnar_rows(path)?;
    if n <= batch_rows {
        return Ok(vec![None]);
    }
    Ok((0..n)
        .step_by(batch_rows as usize)
        .map(|s| Some(s..n.min(s + batch_rows)))
        .collect())
}

/// Adds a batch's report to the run's: counts summed, the first `max_examples` rejected
/// rows kept, the latest as-of date unless one was given.
fn add_reports(mut acc: LoadReport, r: LoadReport, max_examples: usize) -> LoadReport {
    acc.add_counts(&r);
    if acc.examples.len() < max_examples {
        acc.examples.extend(r.examples);
        acc.examples.truncate(max_examples);
    }
    if !acc.as_of_given {
        acc.as_of = acc.as_of.max(r.as_of);
    }
    acc
}

/// Joins per-batch quarantine files (each with the header) into `target`, atomically.
fn concat_quarantine(parts: &[PathBuf], target: &Path) -> Result<()> {
    let mut out = crate::output::AtomicFile::create(target)?;
    let w = out.writer();
    for (i, part) in parts.iter().enumerate() {
        let text = std::fs::read(part).map_err(|e| Error::io(part, e))?;
        let body = if i == 0 {
            &text[..]
        } else {
            match text.iter().position(|&b| b == b'\n') {
                Some(nl) => &text[nl + 1..],
                None => &[],
            }
        };
        w.write_all(body).map_err(|e| Error::io(target, e))?;
    }
    out.commit()
}

/// Bytes of one spilled line: day, order key, category code, amount, profit.
const LINE_BYTES: usize = 4 + 8 + 4 + 8 + 8;

/// The distinct customer ids of one spilled partition, in id order. The lines are
/// skipped on disk: only a read buffer and the ids are held.
fn read_partition_ids(path: &Path, int_ids: bool) -> Result<CustomerIds> {
    let corrupt = || Error::Data(format!("spill file {} is corrupt", path.display()));
    let fail = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => corrupt(),
        _ => Error::io(path, e),
    };
    let file = File::open(path).map_err(fail)?;
    let size = file.metadata().map_err(fail)?.len();
    let mut r = std::io::BufReader::with_capacity(1 << 16, file);
    let mut word = [0u8; 4];
    let mut ints = Vec::new();
    let mut texts = TextIds::new();
    let mut text = Vec::new();
    let mut at = 0u64;
    while at < size {
        if int_ids {
            let mut id = [0u8; 8];
            r.read_exact(&mut id).map_err(fail)?;
            ints.push(i64::from_le_bytes(id));
            at += 8;
        } else {
            r.read_exact(&mut word).map_err(fail)?;
            text.resize(u32::from_le_bytes(word) as usize, 0);
            r.read_exact(&mut text).map_err(fail)?;
            texts.push(std::str::from_utf8(&text).map_err(|_| corrupt())?);
            at += 4 + text.len() as u64;
        }
        r.read_exact(&mut word).map_err(fail)?;
        let skip = u64::from(u32::from_le_bytes(word)) * LINE_BYTES as u64;
        at += 4 + skip;
        if at > size {
            return Err(corrupt());
        }
        r.seek_relative(skip as i64).map_err(fail)?;
    }
    Ok(if int_ids {
        ints.sort_unstable();
        ints.dedup();
        CustomerIds::Int(ints)
    } else {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_unstable_by(|&a, &b| texts[a].as_bytes().cmp(texts[b].as_bytes()));
        order.dedup_by(|a, b| texts[*a] == texts[*b]);
        CustomerIds::Text(texts.select(order))
    })
}

/// Reads one spilled partition into transactions grouped by customer in id order.
/// `codes`: the category names and each spilled code's rank among them.
fn read_partition(
    path: &Path,
    bytes: &mut Vec<u8>,
    int_ids: bool,
    (categories, code_rank): (&[String], &[u32]),
    as_of: i32,
    decimals: u32,
) -> Result<Transactions> {
    bytes.clear();
    File::open(path)
        .and_then(|mut f| f.read_to_end(bytes))
        .map_err(|e| Error::io(path, e))?;
    let bytes: &[u8] = bytes;
    let corrupt = || Error::Data(format!("spill file {} is corrupt", path.display()));
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> Result<&[u8]> {
        let s = bytes.get(*at..*at + n).ok_or_else(corrupt)?;
        *at += n;
        Ok(s)
    };
    // Records: (id, byte offset of the first line, lines) in file order; the lines are
    // decoded once, straight into customer order.
    let mut text_ids: Vec<&str> = Vec::new();
    let mut int_vals: Vec<i64> = Vec::new();
    let mut records: Vec<(u32, usize, usize)> = Vec::new();
    let le4 = |s: &[u8]| u32::from_le_bytes([s[0], s[1], s[2], s[3]]);
    let le8 = |s: &[u8]| u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]);
    let mut n_lines = 0usize;
    while at < bytes.len() {
        let id_index = if int_ids {
            int_vals.push(le8(take(&mut at, 8)?) as i64);
            int_vals.len() - 1
        } else {
            let len = le4(take(&mut at, 4)?) as usize;
            let s = std::str::from_utf8(take(&mut at, len)?).map_err(|_| corrupt())?;
            text_ids.push(s);
            text_ids.len() - 1
        };
        let n = le4(take(&mut at, 4)?) as usize;
        records.push((id_index as u32, at, n));
        take(&mut at, n * LINE_BYTES)?;
        n_lines += n;
    }
    // Stable sort of records by id keeps each customer's lines in read order.
    if int_ids {
        records.sort_by_key(|r| int_vals[r.0 as usize]);
    } else {
        records.sort_by(|a, b| {
            text_ids[a.0 as usize]
                .as_bytes()
                .cmp(text_ids[b.0 as usize].as_bytes())
        });
    }
    let same = |a: &(u32, usize, usize), b: &(u32, usize, usize)| {
        if int_ids {
            int_vals[a.0 as usize] == int_vals[b.0 as usize]
        } else {
            text_ids[a.0 as usize] == text_ids[b.0 as usize]
        }
    };
    let mut tx = Transactions {
        ids: CustomerIds::Int(Vec::new()),
        offsets: vec![0],
        day: Vec::with_capacity(n_lines),
        amount: Vec::with_capacity(n_lines),
        profit: Vec::with_capacity(n_lines),
        order: Vec::with_capacity(n_lines),
        category: Vec::with_capacity(n_lines),
        categories: categories.to_vec(),
        currency_decimals: decimals,
        as_of,
    };
    let starts: Vec<bool> = (0..records.len())
        .map(|i| i == 0 || !same(&records[i - 1], &records[i]))
        .collect();
    let mut ints = Vec::new();
    let mut texts = TextIds::new();
    for (i, r) in records.iter().enumerate() {
        if starts[i] {
            if i > 0 {
                tx.offsets.push(tx.day.len());
            }
            if int_ids {
                ints.push(int_vals[r.0 as usize]);
            } else {
                texts.push(text_ids[r.0 as usize]);
            }
        }
        let n = r.2;
        for l in bytes[r.1..r.1 + n * LINE_BYTES].chunks_exact(LINE_BYTES) {
            tx.day.push(le4(&l[0..4]) as i32);
            tx.order.push(le8(&l[4..12]));
            let k = le4(&l[12..16]);
            tx.category.push(if k == NO_CATEGORY {
                NO_CATEGORY
            } else {
                *code_rank.get(k as usize).ok_or_else(corrupt)?
            });
            tx.amount.push(le8(&l[16..24]) as i64);
            tx.profit.push(le8(&l[24..32]) as i64);
        }
    }
    if !records.is_empty() {
        tx.offsets.push(tx.day.len());
    }
    tx.ids = if int_ids {
        CustomerIds::Int(ints)
    } else {
        CustomerIds::Text(texts)
    };
    Ok(tx)
}

use super::*;

/// Accepted rows, before grouping by customer.
pub(super) struct Rows {
    pub(super) id_kind: Option<(IdKind, String)>,
    pub(super) text_ids: IdTable<IdKey>,
    pub(super) int_ids: IdTable<i64>,
    pub(super) customer: Vec<u32>,
    /// A chunk's customer ids, until [`Rows::absorb_all`] registers them: a chunk's rows
    /// leave `customer` empty.
    pub(super) pending: PendingIds,
    pub(super) day: Vec<i32>,
    pub(super) amount: Vec<i64>,
    pub(super) profit: Vec<i64>,
    pub(super) order: Vec<u64>,
    pub(super) category: Vec<u32>,
    pub(super) categories: PlHashMap<Box<str>, u32>,
    pub(super) declared: IdType,
    pub(super) decimals: u32,
    pub(super) margin: money::Ratio,
    pub(super) time_format: TimeFormat,
    pub(super) as_of: Option<i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IdKind {
    Text,
    Int,
}

/// Order keys for lines without an order id live above this bit, so they never meet
/// the codes of order ids.
pub(super) const TS_ORDER_BIT: u64 = 1 << 63;

pub(super) struct Builder {
    pub(super) rows: Rows,
    pub(super) report: LoadReport,
}

impl Builder {
    pub(super) fn new(opts: &LoadOptions) -> Builder {
        Builder {
            rows: Rows::new(
                match opts.customer_id_type {
                    IdType::Auto => None,
                    IdType::Text => Some((
                        IdKind::Text,
                        "--customer-id-type or [input] customer_id_type".into(),
                    )),
                    IdType::Int => Some((
                        IdKind::Int,
                        "--customer-id-type or [input] customer_id_type".into(),
                    )),
                },
                opts.customer_id_type,
                opts.currency_decimals,
                opts.margin,
                opts.time_format.clone(),
                opts.as_of,
            ),
            report: LoadReport::default(),
        }
    }

    /// Groups lines by customer (customers sorted into output order) and derives as-of.
    pub(super) fn finish(self) -> Loaded {
        let Builder { rows, mut report } = self;
        let (ids, rank) = match rows.id_kind.map(|k| k.0) {
            Some(IdKind::Int) => sorted_ids(
                rows.int_ids.into_coded(),
                |&a| a,
                |a, b| a.cmp(b),
                CustomerIds::Int,
            ),
            _ => sorted_ids(
                rows.text_ids.into_coded(),
                |a| byte_prefix(a.as_str()),
                |a: &IdKey, b: &IdKey| a.as_str().as_bytes().cmp(b.as_str().as_bytes()),
                // Ids kept on the heap (over 22 bytes) are freed on this thread: freeing
                // them in parallel makes the threads queue for each other's heaps.
                |v| CustomerIds::Text(TextIds::from_slice(&v)),
            ),
        };
        // Each part holds a count per customer (8 bytes each): two parts halve the
        // random moves' time for one count more than a serial pass holds.
        let parts = rayon::current_num_threads().clamp(1, 2);
        let mut customer = rows.customer;
        let (offsets, position) = group_lines(&mut customer, &rank, ids.len(), parts);
        let (categories, cat_rank) = sorted_ids(
            (rows.categories.len(), rows.categories.into_iter().collect()),
            |a| byte_prefix(a),
            |a: &Box<str>, b: &Box<str>| a.as_bytes().cmp(b.as_bytes()),
            |v| v.into_iter().map(String::from).collect::<Vec<_>>(),
        );
        let ranked_category = |k: u32| {
            if k == NO_CATEGORY {
                NO_CATEGORY
            } else {
                cat_rank[k as usize]
            }
        };
        // One column at a time, each placed by every thread: a column exists twice only
        // while it is being placed. Profit goes where amount was, categories where the
        // customer codes were.
        let position = &position;
        let day = scatter(&rows.day, position, |d| d, Vec::new());
        drop(rows.day);
        let order = scatter(&rows.order, position, |o| o, Vec::new());
        drop(rows.order);
        let amount = scatter(&rows.amount, position, |a| a, Vec::new());
        let profit = scatter(&rows.profit, position, |p| p, rows.amount);
        drop(rows.profit);
        let category = scatter(&rows.category, position, ranked_category, customer);
        drop(rows.category);
        let as_of = rows
            .as_of
            .unwrap_or_else(|| day.iter().copied().max().unwrap_or(0) + 1);
        report.as_of = as_of;
        report.as_of_given = rows.as_of.is_some();
        Loaded {
            transactions: Transactions {
                ids,
                offsets,
                day,
                amount,
                profit,
                order,
                category,
                categories,
                currency_decimals: rows.decimals,
                as_of,
            },
            report,
        }
    }
}

/// A validated customer id, not yet registered.
pub(super) enum CustomerKey<'a> {
    Int(i64),
    Text(&'a str),
    Owned(String),
}

/// A validated row whose customer and category are not yet registered.
pub(super) struct RowValues<'a> {
    pub(super) customer: CustomerKey<'a>,
    pub(super) day: i32,
    pub(super) amount: i64,
    pub(super) profit: i64,
    pub(super) order: u64,
    pub(super) category: Option<std::borrow::Cow<'a, str>>,
}

/// The category of a cell (`None` when empty), or `Err` for bytes that are not UTF-8.
pub(super) fn category_key(
    cell: Cell<'_>,
) -> std::result::Result<Option<std::borrow::Cow<'_, str>>, ()> {
    use std::borrow::Cow;
    match cell {
        c if c.is_null() => Ok(None),
        Cell::Text(s) => Ok(Some(Cow::Borrowed(trim(s)))),
        Cell::Invalid(_) => Err(()),
        other => Ok(Some(Cow::Owned(other.shown()))),
    }
}

/// The cells of one row by role.
pub(super) struct RowCells<'a> {
    pub(super) customer: Cell<'a>,
    pub(super) time: Cell<'a>,
    pub(super) amount: Cell<'a>,
    /// Set when amount = quantity × unit price.
    pub(super) unit_price: Option<Cell<'a>>,
    pub(super) order: Cell<'a>,
    pub(super) cost: Cell<'a>,
    pub(super) category: Cell<'a>,
}

/// A rejection in the making: column, reason, detail, expected.
pub(super) type Reject = (String, RejectReason, String, String);

impl Rows {
    /// An empty table with these settings.
    pub(super) fn new(
        id_kind: Option<(IdKind, String)>,
        declared: IdType,
        decimals: u32,
        margin: money::Ratio,
        time_format: TimeFormat,
        as_of: Option<i32>,
    ) -> Rows {
        // Enough shards for every thread to register ids with some to spare; a row's
        // partition in the columnar loader is its id's shard.
        let shards = (4 * rayon::current_num_threads().max(1)).min(usize::from(REJECTED));
        Rows {
            id_kind,
            text_ids: IdTable::new(shards),
            int_ids: IdTable::new(shards),
            customer: Vec::new(),
            pending: PendingIds::default(),
            day: Vec::new(),
            amount: Vec::new(),
            profit: Vec::new(),
            order: Vec::new(),
            category: Vec::new(),
            categories: PlHashMap::default(),
            declared,
            decimals,
            margin,
            time_format,
            as_of,
        }
    }

    /// An empty table with the same settings, for one chunk of rows.
    pub(super) fn empty_like(&self) -> Rows {
        Rows::new(
            self.id_kind.clone(),
            self.declared,
            self.decimals,
            self.margin,
            self.time_format.clone(),
            self.as_of,
        )
    }

    /// Appends chunks' rows in chunk order, registering their customer ids (the chunks'
    /// [`PendingIds`]) shard by shard side by side, and recoding their categories into
    /// this table's codes (new keys get codes in the chunks' order of first appearance).
    pub(super) fn absorb_all(&mut self, chunks: Vec<Rows>) {
        use rayon::prelude::*;
        let added: usize = chunks.iter().map(|c| c.day.len()).sum();
        let shards = self.text_ids.shards.len();
        let mut hash = Vec::with_capacity(added);
        for chunk in &chunks {
            hash.extend_from_slice(&chunk.pending.hash);
        }
        assert_eq!(hash.len(), added, "every chunk row has a pending id");
        let part: Vec<u8> = hash
            .par_iter()
            .map(|&h| shard_of(h, shards) as u8)
            .collect();
        if chunks.iter().all(|c| c.pending.int.is_empty()) {
            let ids: Vec<&str> = chunks
                .iter()
                .flat_map(|c| (0..c.day.len()).map(|i| c.pending.text_at(i)))
                .collect();
            self.text_ids.register_partitioned::<str, _>(
                &part,
                &hash,
                |i| ids[i],
                &mut self.customer,
            );
        } else {
            let ids: Vec<i64> = chunks
                .iter()
                .flat_map(|c| c.pending.int.iter().copied())
                .collect();
            assert_eq!(
                ids.len(),
                added,
                "a chunk's ids are all integers or all text"
            );
            self.int_ids.register_partitioned::<i64, _>(
                &part,
                &hash,
                |i| ids[i],
                &mut self.customer,
            );
        }
        for mut chunk in chunks {
            let categories: Vec<u32> = {
                let mut keyed: Vec<(Box<str>, u32)> =
                    std::mem::take(&mut chunk.categories).into_iter().collect();
                keyed.sort_unstable_by_key(|e| e.1);
                keyed
                    .into_iter()
                    .map(|(k, _)| intern(&mut self.categories, &k))
                    .collect()
            };
            self.category.extend(chunk.category.iter().map(|&k| {
                if k == NO_CATEGORY {
                    k
                } else {
                    categories[k as usize]
                }
            }));
            self.day.extend(chunk.day);
            self.amount.extend(chunk.amount);
            self.profit.extend(chunk.profit);
            self.order.extend(chunk.order);
        }
    }

    pub(super) fn check_id_kind(&mut self, kind: IdKind, file: &str) -> Result<()> {
        match &self.id_kind {
            None => {
                self.id_kind = Some((kind, file.to_string()));
                Ok(())
            }
            Some((k, _)) if *k == kind => Ok(()),
            Some((_, first)) => Err(Error::input(
                file,
                format!(
                    "customer ids are {} here but {} in {first}; declare --customer-id-type text (or int; [input] customer_id_type in a config file) to read every file the same way",
                    if kind == IdKind::Int {
                        "integers"
                    } else {
                        "text"
                    },
                    if kind == IdKind::Int {
                        "text"
                    } else {
                        "integers"
                    },
                ),
            )),
        }
    }

    /// Validates one row and appends it to this chunk, or says why not: its customer id
    /// waits in [`Rows::pending`].
    pub(super) fn push(
        &mut self,
        cells: &RowCells,
        m: &Mapping,
    ) -> std::result::Result<(), Reject> {
        let v = self.values(cells, m)?;
        let category = match v.category {
            None => NO_CATEGORY,
            Some(key) => intern(&mut self.categories, &key),
        };
        match v.customer {
            CustomerKey::Int(i) => self.pending.push_int(i),
            CustomerKey::Text(s) => self.pending.push_text(s),
            CustomerKey::Owned(s) => self.pending.push_text(&s),
        }
        self.day.push(v.day);
        self.amount.push(v.amount);
        self.profit.push(v.profit);
        self.order.push(v.order);
        self.category.push(category);
        Ok(())
    }

    /// Validates one row: its values, with the customer and category not yet registered.
    pub(super) fn values<'c>(
        &self,
        cells: &RowCells<'c>,
        m: &Mapping,
    ) -> std::result::Result<RowValues<'c>, Reject> {
        let name = |i: usize| m.names[i].clone();
        let col = |i: usize| m.names[i].as_str();
        let customer = self.customer_key(cells.customer, col(m.customer))?;
        let time = self.parse_time(cells.time, col(m.time))?;
        if let Some(as_of) = self.as_of
            && time.day > as_of
        {
            return Err((
                name(m.time),
                RejectReason::AfterAsOf,
                format!("as-of date is {}", crate::time::format_day(as_of)),
                "a time on or before the as-of date".into(),
            ));
        }
        let amount = match (m.amount, cells.unit_price) {
            (
                AmountSource::Product {
                    quantity,
                    unit_price,
                },
                Some(price),
            ) => {
                let q = self.decimal(cells.amount, col(quantity), RejectReason::BadQuantity)?;
                let p = self.decimal(price, col(unit_price), RejectReason::BadUnitPrice)?;
                let product = q.checked_mul(p).map_err(|e| {
                    (
                        name(quantity),
                        RejectReason::AmountOverflow,
                        e.to_string(),
                        money_expected(),
                    )
                })?;
                product.to_minor(self.decimals).map_err(|e| {
                    (
                        name(quantity),
                        RejectReason::AmountOverflow,
                        e.to_string(),
                        money_expected(),
                    )
                })?
            }
            (AmountSource::Column(i), _) | (AmountSource::Product { quantity: i, .. }, None) => {
                self.money(cells.amount, col(i), RejectReason::BadAmount)?
            }
        };
        let profit = if cells.cost.is_null() {
            self.margin.apply(amount).map_err(|e| {
                (
                    name(m.customer),
                    RejectReason::AmountOverflow,
                    e.to_string(),
                    money_expected(),
                )
            })?
        } else {
            let col = m.cost.map(name).unwrap_or_default();
            let cost = self.money(cells.cost, &col, RejectReason::BadCost)?;
            amount.checked_sub(cost).ok_or_else(|| {
                (
                    col,
                    RejectReason::AmountOverflow,
                    "amount − cost overflows".into(),
                    money_expected(),
                )
            })?
        };
        let order = match cells.order {
            c if c.is_null() => TS_ORDER_BIT | (time.micros as u64 & !TS_ORDER_BIT),
            Cell::Text(s) => order_key(trim(s)),
            Cell::Invalid(_) => {
                return Err((
                    m.order.map(name).unwrap_or_default(),
                    RejectReason::InvalidUtf8,
                    String::new(),
                    "UTF-8 text".into(),
                ));
            }
            other => order_key(&other.shown()),
        };
        let category = category_key(cells.category).map_err(|()| {
            (
                m.category.map(name).unwrap_or_default(),
                RejectReason::InvalidUtf8,
                String::new(),
                "UTF-8 text".into(),
            )
        })?;
        Ok(RowValues {
            customer,
            day: time.day,
            amount,
            profit,
            order,
            category,
        })
    }

    /// Checks a customer cell; the id is only registered once the whole row is valid,
    /// so a rejected row never creates a customer.
    pub(super) fn customer_key<'c>(
        &self,
        cell: Cell<'c>,
        col: &str,
    ) -> std::result::Result<CustomerKey<'c>, Reject> {
        let kind = self.id_kind.as_ref().map(|k| k.0).unwrap_or(IdKind::Text);
        let bad = |reason, detail: &str, expected: &str| {
            Err((
                col.to_string(),
                reason,
                detail.to_string(),
                expected.to_string(),
            ))
        };
        if cell.is_null() {
            return bad(RejectReason::MissingCustomer, "", "a customer id");
        }
        match (kind, cell) {
            (_, Cell::Invalid(_)) => bad(RejectReason::InvalidUtf8, "", "UTF-8 text"),
            (IdKind::Int, Cell::Int(i)) => Ok(CustomerKey::Int(i)),
            (IdKind::Int, Cell::Text(s)) => match trim(s).parse::<i64>() {
                Ok(i) => Ok(CustomerKey::Int(i)),
                Err(_) => bad(
                    RejectReason::BadCustomerId,
                    "not an integer",
                    "an integer id (declared with --customer-id-type int or [input] customer_id_type)",
                ),
            },
            (IdKind::Int, _) => bad(RejectReason::BadCustomerId, "", "an integer id"),
            (IdKind::Text, Cell::Text(s)) => Ok(CustomerKey::Text(trim(s))),
            (IdKind::Text, other) => Ok(CustomerKey::Owned(other.shown())),
        }
    }

    pub(super) fn parse_time(
        &self,
        cell: Cell,
        col: &str,
    ) -> std::result::Result<LineTime, Reject> {
        let time = self.parse_time_unchecked(cell, col)?;
        if !(crate::time::MIN_DAY..=crate::time::MAX_DAY).contains(&time.day) {
            return Err((
                col.to_string(),
                RejectReason::BadTime,
                "outside the years 1 to 9999".into(),
                self.time_format.describe(),
            ));
        }
        Ok(time)
    }

    pub(super) fn parse_time_unchecked(
        &self,
        cell: Cell,
        col: &str,
    ) -> std::result::Result<LineTime, Reject> {
        let expected = || self.time_format.describe();
        let reject =
            |reason, detail: &str| Err((col.to_string(), reason, detail.to_string(), expected()));
        match cell {
            Cell::Day(d) => Ok(LineTime::from_day(d)),
            Cell::Micros(m) => Ok(LineTime::from_micros(m)),
            Cell::Text(s) => match self.time_format.parse(s) {
                Ok(t) => Ok(t),
                Err(TimeError::Empty) => reject(RejectReason::MissingTime, ""),
                Err(TimeError::Impossible) => {
                    reject(RejectReason::ImpossibleDate, "no such day or time")
                }
                Err(TimeError::Unparsable) => reject(RejectReason::BadTime, ""),
            },
            Cell::Null => reject(RejectReason::MissingTime, ""),
            Cell::Invalid(_) => reject(RejectReason::InvalidUtf8, ""),
            Cell::Int(_) | Cell::Float(_) | Cell::Float32(_) | Cell::Decimal(..) => {
                reject(RejectReason::BadTime, "a number is not a time")
            }
        }
    }

    pub(super) fn decimal(
        &self,
        cell: Cell,
        col: &str,
        reason: RejectReason,
    ) -> std::result::Result<Decimal, Reject> {
        let fail = |r: RejectReason, e: DecimalError| {
            (col.to_string(), r, e.to_string(), money_expected())
        };
        let missing = if reason == RejectReason::BadAmount {
            RejectReason::MissingAmount
        } else {
            reason
        };
        match cell {
            Cell::Null => Err(fail(missing, DecimalError::Empty)),
            Cell::Text(s) => money::parse_decimal(s).map_err(|e| match e {
                DecimalError::Empty => fail(missing, e),
                DecimalError::TooLarge => fail(RejectReason::AmountOverflow, e),
                _ => fail(reason, e),
            }),
            Cell::Int(i) => Ok(Decimal {
                mantissa: i128::from(i),
                scale: 0,
            }),
            Cell::Decimal(&mantissa, scale) => Ok(Decimal {
                mantissa,
                scale: i32::from(scale),
            }),
            Cell::Float(f) if f.is_finite() => money::parse_decimal(&format!("{f}"))
                .map_err(|e| fail(RejectReason::AmountOverflow, e)),
            Cell::Float32(f) if f.is_finite() => money::parse_decimal(&format!("{f}"))
                .map_err(|e| fail(RejectReason::AmountOverflow, e)),
            Cell::Float(_) | Cell::Float32(_) => Err(fail(reason, DecimalError::NotFinite)),
            Cell::Invalid(_) => Err((
                col.to_string(),
                RejectReason::InvalidUtf8,
                String::new(),
                money_expected(),
            )),
            Cell::Day(_) | Cell::Micros(_) => Err(fail(reason, DecimalError::NotANumber)),
        }
    }

    pub(super) fn money(
        &self,
        cell: Cell,
        col: &str,
        reason: RejectReason,
    ) -> std::result::Result<i64, Reject> {
        if let Cell::Text(text) = cell
            && let Some(minor) = money::plain_minor(text, self.decimals)
        {
            return Ok(minor);
        }
        if let Cell::Float(f) = cell
            && f.is_finite()
        {
            return money::f64_to_minor(f, self.decimals).map_err(|e| {
                (
                    col.to_string(),
                    RejectReason::AmountOverflow,
                    e.to_string(),
                    money_expected(),
                )
            });
        }
        let d = self.decimal(cell, col, reason)?;
        d.to_minor(self.decimals).map_err(|e| {
            (
                col.to_string(),
                RejectReason::AmountOverflow,
                e.to_string(),
                money_expected(),
            )
        })
    }
}

pub(super) fn money_expected() -> String {
    "a decimal number like 12.34 or -5".into()
}

/// Applies the bad-row policy to rejected rows and counts every row.
pub(super) struct RejectSink<'a> {
    pub(super) policy: &'a BadRowPolicy,
    pub(super) report: &'a mut LoadReport,
    pub(super) quarantine: Option<&'a mut AtomicFile>,
    pub(super) max_examples: usize,
}

impl RejectSink<'_> {
    pub(super) fn used_n(&mut self, n: u64) {
        self.report.rows_read += n;
        self.report.rows_used += n;
    }

    pub(super) fn reject(
        &mut self,
        loc: &Loc,
        reject: Reject,
        value: String,
        record: String,
    ) -> Result<()> {
        let (column, reason, detail, expected) = reject;
        let rejection = Rejection {
            file: loc.file.to_string(),
            place: loc.place,
            line: loc.line,
            column,
            value,
            reason,
            detail,
            expected,
        };
        if *self.policy == BadRowPolicy::Error {
            return Err(rejection.into_error());
        }
        self.report.rows_read += 1;
        self.report.rows_rejected += 1;
        *self.report.rejected_by_reason.entry(reason).or_insert(0) += 1;
        if let Some(q) = self.quarantine.as_deref_mut() {
            let target = q.target().display().to_string();
            let reason_text = if rejection.detail.is_empty() {
                reason.key().to_string()
            } else {
                format!("{}: {}", reason.key(), rejection.detail)
            };
            let mut w = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(q.writer());
            w.write_record([
                rejection.file.as_str(),
                &rejection.line.to_string(),
                rejection.column.as_str(),
                reason_text.as_str(),
                rejection.value.as_str(),
                record.as_str(),
            ])
            .and_then(|_| w.flush().map_err(Into::into))
            .map_err(|e| Error::Data(format!("writing {target}: {e}")))?;
        }
        if self.report.examples.len() < self.max_examples {
            self.report.examples.push(rejection);
        }
        Ok(())
    }
}

/// The value shown for a rejection: the cell of the rejected column.
pub(super) fn cell_for<'a>(cells: &RowCells<'a>, m: &Mapping, column: &str) -> Cell<'a> {
    let idx = m.names.iter().position(|n| n == column);
    let is = |i: Option<usize>| i.is_some() && i == idx;
    match m.amount {
        AmountSource::Product { unit_price, .. } if is(Some(unit_price)) => {
            return cells.unit_price.unwrap_or(Cell::Null);
        }
        _ => {}
    }
    if is(Some(m.customer)) {
        cells.customer
    } else if is(Some(m.time)) {
        cells.time
    } else if is(m.cost) {
        cells.cost
    } else if is(m.order) {
        cells.order
    } else if is(m.category) {
        cells.category
    } else {
        cells.amount
    }
}

/// The line columns of [`Rows`] while a batch is converted into them.
pub(super) struct Columns {
    pub(super) customer: Vec<u32>,
    pub(super) day: Vec<i32>,
    pub(super) amount: Vec<i64>,
    pub(super) profit: Vec<i64>,
    pub(super) order: Vec<u64>,
    pub(super) category: Vec<u32>,
}

impl Rows {
    /// Room for `additional` more rows, so that appending a file batch by batch does not
    /// copy the columns as they grow.
    pub(super) fn reserve(&mut self, additional: usize) {
        self.customer.reserve(additional);
        self.day.reserve(additional);
        self.amount.reserve(additional);
        self.profit.reserve(additional);
        self.order.reserve(additional);
        self.category.reserve(additional);
    }

    /// Takes the line columns out, all but `customer` grown by `n` rows of filler for a
    /// batch to be converted into; [`Rows::close_batch`] puts them back. The filler is
    /// written side by side: it is the first touch of the reserved pages.
    pub(super) fn open_batch(&mut self, n: usize) -> Columns {
        fn grown<T: Copy + Send + Sync>(v: &mut Vec<T>, n: usize, filler: T) -> Vec<T> {
            use rayon::iter::ParallelExtend;
            let mut v = std::mem::take(v);
            v.par_extend(rayon::iter::repeat_n(filler, n));
            v
        }
        Columns {
            customer: std::mem::take(&mut self.customer),
            day: grown(&mut self.day, n, 0),
            amount: grown(&mut self.amount, n, 0),
            profit: grown(&mut self.profit, n, 0),
            order: grown(&mut self.order, n, 0),
            category: grown(&mut self.category, n, NO_CATEGORY),
        }
    }

    /// Puts back the columns of [`Rows::open_batch`], keeping of the batch's rows only
    /// the accepted ones (`part` below [`REJECTED`]), in order; `customer` already holds
    /// the accepted rows' customer codes.
    pub(super) fn close_batch(&mut self, columns: Columns, part: &[u8]) {
        fn keep<T: Copy>(mut v: Vec<T>, part: &[u8]) -> Vec<T> {
            let base = v.len() - part.len();
            if part.contains(&REJECTED) {
                let mut to = base;
                for (i, &p) in part.iter().enumerate() {
                    if p != REJECTED {
                        v[to] = v[base + i];
                        to += 1;
                    }
                }
                v.truncate(to);
            }
            v
        }
        self.customer = columns.customer;
        self.day = keep(columns.day, part);
        self.amount = keep(columns.amount, part);
        self.profit = keep(columns.profit, part);
        self.order = keep(columns.order, part);
        self.category = keep(columns.category, part);
    }
}

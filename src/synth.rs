//! Seeded, streaming generator of synthetic retail transaction lines.
//!
//! The generator produces data whose *customer-level* structure follows the two
//! standard probability models for non-contractual customer value, so that the
//! models fitted by this crate have a known ground truth to recover:
//!
//! * **Purchase timing — BG/NBD** (Fader, Hardie & Lee 2005, "Counting your
//!   customers the easy way: An alternative to the Pareto/NBD model",
//!   *Marketing Science* 24(2), 275–284). Each customer has a purchase rate
//!   `lambda ~ Gamma(r, alpha)` (shape `r`, rate `alpha`, per week) and a
//!   dropout probability `p ~ Beta(a, b)`. While active, inter-purchase times
//!   are exponential with rate `lambda`; after each *repeat* purchase the
//!   customer becomes inactive for good with probability `p`. As in the paper,
//!   dropout cannot happen right after the first (trial) purchase. Defaults are
//!   the CDNOW estimates of the paper (`r = 0.243, alpha = 4.414, a = 0.793,
//!   b = 2.426`).
//! * **Order value — Gamma-Gamma** (Fader & Hardie 2013, "The Gamma-Gamma
//!   Model of Monetary Value", <http://brucehardie.com/notes/025/>). Each
//!   customer has `nu ~ Gamma(q, gamma)` (shape, rate) and every order value is
//!   `z ~ Gamma(p, nu)`, so the customer's mean order value is `p / nu`,
//!   independent of the purchase process. Defaults are the CDNOW estimates
//!   (`p = 6.25, q = 3.74, gamma = 15.44`), i.e. about 35 dollars per order on
//!   average, which is a plausible small-shop basket; `spend_scale` rescales it.
//!
//! Retail detail layered on top (it leaves the two models intact apart from
//! rounding order values to shelf prices):
//! each order is split into 1..=6 lines (bigger baskets get more lines); each
//! line gets a category from [`CATEGORIES`] drawn from a customer-specific
//! preference vector (population popularity × a Dirichlet-like random skew), a
//! quantity 1..=5 chosen so the unit price is near the category's typical
//! price, a retail-looking unit price (mostly ending in 9), `amount =
//! quantity × unit_price` exactly and `cost` = a fixed per-category 55–80 % of
//! the amount rounded half away from zero to the cent. A small share of lines
//! (default 2 % of all output lines) are returns: a later line, with its own
//! order id, that repeats an earlier purchased line of the same customer with a
//! negative quantity (so amount and cost are negative, unit price stays
//! positive). Order timestamps fall within store hours 08:00–21:00 with a
//! lunch and an evening peak.
//!
//! # Window and acquisition
//! The history spans `days` days starting at `start_day` (days since
//! 1970-01-01; default 2023-01-01 and 730 days). First purchases are uniform
//! over the first `acquisition_days` of the window (default 240), mimicking a
//! cohort acquired over a few months and then observed, as in CDNOW. Anything
//! that would happen after the window end is not generated.
//!
//! # Output order and determinism
//! Lines are emitted customer by customer (`C…1`, `C…2`, …); within a customer
//! in time order (purchases and returns interleaved). Across customers the
//! output is *not* sorted by time. Order ids are assigned in emission order,
//! starting at 1, so they increase through the output. Every customer draws
//! from its own xoshiro256** stream keyed by `(seed, customer number)`, so a
//! customer's history does not depend on how many customers are generated
//! (only the order ids shift). Output is byte-identical for the same
//! parameters on the same platform (floating-point `ln`/`exp`/`powf` come from
//! the platform's math library).
//!
//! Nothing is kept across customers and per customer only a few pending
//! returns, so memory use is constant and any size (1k .. 100M lines) can be
//! streamed.
//!
//! # Randomness
//! Only std: xoshiro256** (Blackman & Vigna) seeded through SplitMix64,
//! Gamma by Marsaglia & Tsang (2000) with the `U^(1/a)` boost for shapes below
//! 1, Beta as a ratio of two Gammas, exponential by inversion, normal by the
//! polar method.

use std::fmt;
use std::io::{self, Write};

/// The 20 product categories, in a fixed order (indices are stable).
pub const CATEGORIES: [&str; 20] = [
    "produce",
    "dairy",
    "bakery",
    "meat",
    "seafood",
    "deli",
    "frozen",
    "pantry",
    "snacks",
    "beverages",
    "wine",
    "beer",
    "spirits",
    "coffee",
    "tea",
    "household",
    "personal_care",
    "baby",
    "pet",
    "flowers",
];

/// Population-level share of lines per category (relative weights); staples
/// dominate as in a neighbourhood grocery.
const POPULARITY: [f64; 20] = [
    12.0, 11.0, 9.0, 7.0, 3.0, 5.0, 6.0, 10.0, 7.0, 7.0, 4.0, 3.0, 1.5, 3.0, 1.5, 5.0, 4.0, 1.5,
    2.5, 1.0,
];

/// Typical unit price per category in cents; quantities are chosen so unit
/// prices land near these, which keeps e.g. spirits dearer than produce.
const TYPICAL_PRICE_CENTS: [f64; 20] = [
    249.0, 319.0, 399.0, 899.0, 1199.0, 699.0, 499.0, 349.0, 299.0, 249.0, 1499.0, 1099.0, 2699.0,
    899.0, 549.0, 599.0, 749.0, 1299.0, 1599.0, 1299.0,
];

/// Cost of goods as per-mille of the amount, per category (55–80 %): fresh
/// and specialty goods carry higher margins than alcohol and baby goods.
const COST_PERMILLE: [i64; 20] = [
    700, 750, 600, 720, 700, 620, 720, 740, 650, 680, 680, 720, 780, 640, 600, 700, 600, 760, 740,
    550,
];

/// Width of the zero-padded number in order ids (`O0000000001`); fixed so ids
/// do not depend on the (unknown in advance) number of orders. 10 digits cover
/// far more orders than 100M lines can produce.
pub const ORDER_ID_WIDTH: usize = 10;

/// Minimum width of the zero-padded number in customer ids (`C0000123`).
pub const MIN_CUSTOMER_ID_WIDTH: usize = 7;

/// The CSV header written by [`write_csv`].
pub const CSV_HEADER: &str = "order_id,customer_id,ts,category,quantity,unit_price,amount,cost";

/// Store opening hour; timestamps lie in `[OPEN_HOUR:00, OPEN_HOUR+13:00)`.
const OPEN_HOUR: u32 = 8;
/// Relative traffic per opening hour (08..21): lunch and after-work peaks.
const HOURLY_TRAFFIC: [f64; 13] = [
    2.0, 4.0, 6.0, 8.0, 10.0, 9.0, 7.0, 7.0, 9.0, 12.0, 12.0, 9.0, 5.0,
];

/// Average number of output lines per customer under the default window and
/// model parameters, used by [`SynthParams::for_rows`] for large targets.
///
/// Calibrated empirically: mean lines/customer of `generate` with default
/// parameters over seeds 1..=8 × 200,000 customers each (1.6M customers,
/// 12.9M lines): 8.04 (per-seed range 7.99..8.07). About 2.98 purchase orders
/// per customer (CDNOW: 2.94) × 2.64 lines per order, plus 2 % returns.
pub const LINES_PER_CUSTOMER: f64 = 8.04;

/// Largest target for which [`SynthParams::for_rows`] counts lines exactly
/// instead of using [`LINES_PER_CUSTOMER`].
pub const EXACT_ROWS_LIMIT: u64 = 1_000_000;

/// BG/NBD purchase-process parameters (Fader, Hardie & Lee 2005).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbdParams {
    /// Shape of the Gamma distribution of purchase rates.
    pub r: f64,
    /// Rate of the Gamma distribution of purchase rates, in weeks.
    pub alpha: f64,
    /// First shape of the Beta distribution of dropout probabilities.
    pub a: f64,
    /// Second shape of the Beta distribution of dropout probabilities.
    pub b: f64,
}

impl BgNbdParams {
    /// Estimates for the CDNOW sample reported by Fader, Hardie & Lee (2005).
    pub const CDNOW: Self = Self {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };
}

/// Gamma-Gamma spend parameters (Fader & Hardie 2013).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaGammaParams {
    /// Shape of the per-order value distribution.
    pub p: f64,
    /// Shape of the Gamma distribution of the per-customer rate `nu`.
    pub q: f64,
    /// Rate of the Gamma distribution of `nu`.
    pub gamma: f64,
}

impl GammaGammaParams {
    /// Estimates for the CDNOW sample reported by Fader & Hardie (2013).
    pub const CDNOW: Self = Self {
        p: 6.25,
        q: 3.74,
        gamma: 15.44,
    };
}

/// Everything that determines the generated data.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthParams {
    /// Seed of all randomness; same parameters and seed give identical output.
    pub seed: u64,
    /// Number of customers; each makes at least one purchase.
    pub customers: usize,
    /// First day of the window, in days since 1970-01-01.
    pub start_day: i32,
    /// Length of the window in days.
    pub days: u32,
    /// First purchases are uniform over this many days from the window start
    /// (capped at `days`).
    pub acquisition_days: u32,
    /// Purchase process.
    pub bgnbd: BgNbdParams,
    /// Order values, in dollars before `spend_scale`.
    pub spend: GammaGammaParams,
    /// Multiplier on every order value (1.0 keeps the CDNOW dollar scale).
    pub spend_scale: f64,
    /// Target share of output lines that are returns, in `[0, 0.5)`.
    pub return_rate: f64,
}

/// Days since 1970-01-01 of 2023-01-01, the default window start.
const DEFAULT_START_DAY: i32 = 19_358;

impl Default for SynthParams {
    fn default() -> Self {
        Self {
            seed: 42,
            customers: 1_000,
            start_day: DEFAULT_START_DAY,
            days: 730,
            acquisition_days: 240,
            bgnbd: BgNbdParams::CDNOW,
            spend: GammaGammaParams::CDNOW,
            spend_scale: 1.0,
            return_rate: 0.02,
        }
    }
}

/// Why a [`SynthParams`] cannot be generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthParamsError(pub String);

impl fmt::Display for SynthParamsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid synthetic-data parameters: {}", self.0)
    }
}

impl std::error::Error for SynthParamsError {}

/// Earliest and latest day whose year prints as four digits (0000-01-01 and
/// 9999-12-31), so timestamps always have the documented fixed format.
const MIN_DAY: i64 = -719_528;
const MAX_DAY: i64 = 2_932_896;

impl SynthParams {
    /// Default parameters with a customer count that yields approximately
    /// `target_rows` lines.
    ///
    /// Up to [`EXACT_ROWS_LIMIT`] lines the count is found by running the
    /// generator (without formatting; a customer's history does not depend on
    /// the customer count) and stopping at the customer whose cumulative line
    /// count is closest to the target, so the result is within half of one
    /// customer's history of the target. This costs about a third of writing
    /// the CSV. Above that, the heavy-tailed per-customer noise averages out
    /// and the count is `round(target_rows / LINES_PER_CUSTOMER)` (see
    /// [`LINES_PER_CUSTOMER`]), within about 1 % of the target. Either way
    /// the choice is deterministic in `(target_rows, seed)`.
    pub fn for_rows(target_rows: u64, seed: u64) -> Self {
        let base = Self {
            seed,
            customers: 0,
            ..Self::default()
        };
        if target_rows == 0 {
            return base;
        }
        if target_rows > EXACT_ROWS_LIMIT {
            let customers = (target_rows as f64 / LINES_PER_CUSTOMER).round() as usize;
            return Self { customers, ..base };
        }
        // Walk an unbounded customer stream; stop once a completed prefix of
        // customers reaches the target.
        let probe = Self {
            customers: usize::MAX,
            ..base.clone()
        };
        let (mut lines, mut current, mut before_current) = (0u64, 0u64, 0u64);
        let mut chosen = 1u64;
        run(&probe, |line| {
            if line.customer != current {
                if lines >= target_rows {
                    // Customers 1..=current give `lines`; 1..current gave
                    // `before_current` < target. Keep whichever is closer.
                    let keep_all = lines - target_rows <= target_rows - before_current;
                    chosen = if keep_all || current == 1 {
                        current
                    } else {
                        current - 1
                    };
                    return false;
                }
                current = line.customer;
                before_current = lines;
            }
            lines += 1;
            true
        });
        Self {
            customers: usize::try_from(chosen).unwrap_or(usize::MAX),
            ..base
        }
    }

    /// Sets the window start from a calendar date; `None` if the date does
    /// not exist.
    pub fn with_start_date(mut self, year: i32, month: u32, day: u32) -> Option<Self> {
        self.start_day = days_from_civil(year, month, day)?;
        Some(self)
    }

    /// Checks that the parameters describe a valid process and a window whose
    /// dates print as `YYYY-MM-DD`.
    pub fn validate(&self) -> Result<(), SynthParamsError> {
        let positive = [
            ("bgnbd.r", self.bgnbd.r),
            ("bgnbd.alpha", self.bgnbd.alpha),
            ("bgnbd.a", self.bgnbd.a),
            ("bgnbd.b", self.bgnbd.b),
            ("spend.p", self.spend.p),
            ("spend.q", self.spend.q),
            ("spend.gamma", self.spend.gamma),
            ("spend_scale", self.spend_scale),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(SynthParamsError(format!(
                    "{name} must be finite and > 0, got {v}"
                )));
            }
        }
        if !(self.return_rate.is_finite() && (0.0..0.5).contains(&self.return_rate)) {
            return Err(SynthParamsError(format!(
                "return_rate must be in [0, 0.5), got {}",
                self.return_rate
            )));
        }
        if self.days == 0 {
            return Err(SynthParamsError("days must be at least 1".into()));
        }
        let first = i64::from(self.start_day);
        let last = first + i64::from(self.days) - 1;
        if first < MIN_DAY || last > MAX_DAY {
            return Err(SynthParamsError(format!(
                "window {first}..={last} (days since 1970-01-01) must lie within years 0000..=9999"
            )));
        }
        Ok(())
    }
}

/// One generated transaction line. Money is in integer cents so that
/// `amount_cents == quantity * unit_price_cents` holds exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthLine<'a> {
    /// Global order number; format with [`format_order_id`].
    pub order_id: u64,
    /// Customer number, 1-based; format with [`format_customer_id`].
    pub customer: u64,
    /// Day of the order, in days since 1970-01-01.
    pub day: i32,
    /// Seconds since midnight (store hours).
    pub seconds: u32,
    /// One of [`CATEGORIES`].
    pub category: &'a str,
    /// Units bought; negative for returns.
    pub quantity: i64,
    /// Unit price in cents, always positive.
    pub unit_price_cents: i64,
    /// `quantity * unit_price_cents`.
    pub amount_cents: i64,
    /// Cost of goods in cents, same sign as the amount.
    pub cost_cents: i64,
}

/// Counts of what was generated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SynthStats {
    /// All lines, purchases and returns.
    pub lines: u64,
    /// Customers generated (every one has at least one purchase).
    pub customers: u64,
    /// Purchase orders (return orders are not included).
    pub orders: u64,
    /// Return lines; each return is its own one-line order.
    pub returns: u64,
}

/// Streams every line to `emit`, customer by customer (see the module docs
/// for the order), and returns the counts.
///
/// # Panics
/// If `params` fails [`SynthParams::validate`]; [`write_csv`] reports that
/// as an error instead.
pub fn generate(params: &SynthParams, mut emit: impl FnMut(&SynthLine)) -> SynthStats {
    if let Err(e) = params.validate() {
        panic!("{e}");
    }
    run(params, |line| {
        emit(line);
        true
    })
}

/// Writes [`CSV_HEADER`] and every line as CSV to `w` (buffered internally;
/// no need to wrap `w` in a `BufWriter`).
///
/// Columns: `order_id` (`O` + 10 digits), `customer_id` (`C` + at least 7
/// digits), `ts` (`YYYY-MM-DDTHH:MM:SS`), `category`, `quantity` (integer),
/// `unit_price`, `amount`, `cost` (dollars with exactly two decimals, e.g.
/// `12.50`, `-3.99`). Stops at the first write error.
pub fn write_csv<W: Write>(params: &SynthParams, mut w: W) -> io::Result<SynthStats> {
    params
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    const FLUSH_AT: usize = 1 << 16;
    let width = customer_id_width(params.customers);
    let mut buf = Vec::with_capacity(FLUSH_AT + 256);
    buf.extend_from_slice(CSV_HEADER.as_bytes());
    buf.push(b'\n');
    let mut failure = None;
    let stats = run(params, |line| {
        push_csv_line(&mut buf, line, width);
        if buf.len() >= FLUSH_AT {
            if let Err(e) = w.write_all(&buf) {
                failure = Some(e);
                return false;
            }
            buf.clear();
        }
        true
    });
    if let Some(e) = failure {
        return Err(e);
    }
    w.write_all(&buf)?;
    w.flush()?;
    Ok(stats)
}

/// Number of digits in customer ids for `customers` customers: enough for the
/// largest number, at least [`MIN_CUSTOMER_ID_WIDTH`].
pub fn customer_id_width(customers: usize) -> usize {
    decimal_digits(customers as u64).max(MIN_CUSTOMER_ID_WIDTH)
}

/// Customer id text, e.g. `format_customer_id(123, 7) == "C0000123"`; use
/// `width = customer_id_width(params.customers)` to match [`write_csv`].
pub fn format_customer_id(customer: u64, width: usize) -> String {
    let mut buf = Vec::with_capacity(width + 1);
    buf.push(b'C');
    push_padded(&mut buf, customer, width);
    ascii_string(buf)
}

/// Order id text, e.g. `format_order_id(42) == "O0000000042"`, as in
/// [`write_csv`].
pub fn format_order_id(order_id: u64) -> String {
    let mut buf = Vec::with_capacity(ORDER_ID_WIDTH + 1);
    buf.push(b'O');
    push_padded(&mut buf, order_id, ORDER_ID_WIDTH);
    ascii_string(buf)
}

/// Cents as dollars with exactly two decimals, e.g. `-5 -> "-0.05"`, as in
/// [`write_csv`].
pub fn format_cents(cents: i64) -> String {
    let mut buf = Vec::with_capacity(24);
    push_cents(&mut buf, cents);
    ascii_string(buf)
}

/// Timestamp text `YYYY-MM-DDTHH:MM:SS` for a day (since 1970-01-01) and
/// seconds since midnight, as in [`write_csv`].
pub fn format_timestamp(day: i32, seconds: u32) -> String {
    let mut buf = Vec::with_capacity(24);
    push_timestamp(&mut buf, day, seconds);
    ascii_string(buf)
}

/// Days since 1970-01-01 of a proleptic Gregorian date, or `None` if the
/// date does not exist (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i32, month: u32, day: u32) -> Option<i32> {
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let (m, d) = (i64::from(month), i64::from(day));
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12; // March-based month so the leap day is last
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    i32::try_from(era * 146_097 + doe - 719_468).ok()
}

pub use crate::time::civil_from_days;

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            if leap { 29 } else { 28 }
        }
    }
}

// ---------------------------------------------------------------------------
// Generation

/// A return scheduled for a purchased line, emitted once its time comes.
#[derive(Clone, Copy)]
struct PendingReturn {
    /// Days since the window start (continuous).
    t: f64,
    category: usize,
    quantity: i64,
    unit_price_cents: i64,
}

/// Output side of the generator: numbering, counting and early stop.
struct Sink<F> {
    emit: F,
    customer: u64,
    start_day: i32,
    next_order: u64,
    stats: SynthStats,
    stopped: bool,
}

impl<F: FnMut(&SynthLine) -> bool> Sink<F> {
    fn line(&mut self, order_id: u64, t: f64, category: usize, quantity: i64, price: i64) {
        if self.stopped {
            return;
        }
        let amount = quantity * price;
        let (day_offset, seconds) = split_time(t);
        let line = SynthLine {
            order_id,
            customer: self.customer,
            day: self.start_day + day_offset,
            seconds,
            category: CATEGORIES[category],
            quantity,
            unit_price_cents: price,
            amount_cents: amount,
            cost_cents: cost_of(amount, COST_PERMILLE[category]),
        };
        self.stats.lines += 1;
        if quantity < 0 {
            self.stats.returns += 1;
        }
        if !(self.emit)(&line) {
            self.stopped = true;
        }
    }

    fn new_order(&mut self) -> u64 {
        let id = self.next_order;
        self.next_order += 1;
        id
    }

    /// Emits (as one-line orders) the pending returns due strictly before
    /// `t`; `pending` is sorted by descending time so the next one is last.
    fn flush_returns(&mut self, pending: &mut Vec<PendingReturn>, t: f64) {
        while let Some(r) = pending.last().copied() {
            if r.t >= t {
                break;
            }
            pending.pop();
            let id = self.new_order();
            self.line(id, r.t, r.category, -r.quantity, r.unit_price_cents);
        }
    }
}

/// Per-run constants derived from the parameters.
struct Model {
    end: f64,
    acquisition: f64,
    /// Probability that a purchased line is later returned, chosen so that
    /// returns make up `return_rate` of all lines: q / (1 + q) = rate.
    return_prob: f64,
}

fn run(params: &SynthParams, emit: impl FnMut(&SynthLine) -> bool) -> SynthStats {
    let model = Model {
        end: f64::from(params.days),
        acquisition: f64::from(params.acquisition_days.min(params.days)),
        return_prob: params.return_rate / (1.0 - params.return_rate),
    };
    let mut sink = Sink {
        emit,
        customer: 0,
        start_day: params.start_day,
        next_order: 1,
        stats: SynthStats::default(),
        stopped: false,
    };
    let mut pending = Vec::new();
    for customer in 1..=params.customers as u64 {
        if sink.stopped {
            break;
        }
        sink.customer = customer;
        sink.stats.customers += 1;
        let mut rng = Rng::for_customer(params.seed, customer);
        simulate_customer(params, &model, &mut rng, &mut sink, &mut pending);
    }
    sink.stats
}

fn simulate_customer<F: FnMut(&SynthLine) -> bool>(
    params: &SynthParams,
    model: &Model,
    rng: &mut Rng,
    sink: &mut Sink<F>,
    pending: &mut Vec<PendingReturn>,
) {
    let BgNbdParams { r, alpha, a, b } = params.bgnbd;
    let per_day_rate = rng.gamma(r) / alpha / 7.0;
    let dropout = rng.beta(a, b);
    // A floor on nu only guards against absurd order values from an
    // astronomically unlikely draw; it never binds at realistic parameters.
    let nu = (rng.gamma(params.spend.q) / params.spend.gamma).max(1e-3);

    // Category preferences: popularity times a Gamma(1/2) skew (a
    // Dirichlet(1/2)-like profile once normalised), so each customer leans on
    // a few categories. Gamma(1/2) is half a squared standard normal; the 1/2
    // cancels on normalisation, and a normal is far cheaper than the general
    // Gamma sampler for 20 draws per customer.
    let mut preference = [0.0f64; 20];
    let mut acc = 0.0;
    for (slot, pop) in preference.iter_mut().zip(POPULARITY) {
        let z = rng.normal();
        acc += pop * z * z;
        *slot = acc;
    }

    pending.clear();
    let mut t = rng.uniform() * model.acquisition;
    order(params, model, rng, sink, pending, &preference, nu, t);
    loop {
        // Exponential gap; a zero rate (underflowed Gamma draw) gives +inf
        // (or NaN for 0/0) and ends the history, which is the right limit.
        t += rng.exponential() / per_day_rate;
        if t.is_nan() || t >= model.end {
            break;
        }
        order(params, model, rng, sink, pending, &preference, nu, t);
        if rng.uniform() < dropout {
            break;
        }
    }
    sink.flush_returns(pending, f64::INFINITY);
}

#[allow(clippy::too_many_arguments)]
fn order<F: FnMut(&SynthLine) -> bool>(
    params: &SynthParams,
    model: &Model,
    rng: &mut Rng,
    sink: &mut Sink<F>,
    pending: &mut Vec<PendingReturn>,
    preference: &[f64; 20],
    nu: f64,
    t: f64,
) {
    sink.flush_returns(pending, t);
    let order_id = sink.new_order();
    sink.stats.orders += 1;

    let value = rng.gamma(params.spend.p) / nu * params.spend_scale; // dollars
    // Bigger baskets hold more distinct lines: 1 + Binomial(5, z / (z + 60)).
    let fill = value / (value + 60.0);
    let lines = 1 + (0..5).filter(|_| rng.uniform() < fill).count();
    let mut shares = [0.0f64; 6];
    let mut total_share = 0.0;
    for s in shares.iter_mut().take(lines) {
        *s = 0.25 + 1.5 * rng.uniform();
        total_share += *s;
    }
    let total_pref = preference[19];
    for &share in shares.iter().take(lines) {
        let target = value * 100.0 * share / total_share; // cents
        let u = rng.uniform() * total_pref;
        let category = preference.iter().position(|&c| u < c).unwrap_or(19);
        // Stochastic rounding of a damped "units at the typical price" keeps
        // single units common while cheap categories still come in multiples.
        let ideal = 0.6 * target / TYPICAL_PRICE_CENTS[category];
        let quantity = ((ideal + rng.uniform()).floor() as i64).clamp(1, 5);
        let price = retail_price(rng, target / quantity as f64);
        sink.line(order_id, t, category, quantity, price);

        if rng.uniform() < model.return_prob {
            let returned = if rng.uniform() < 0.8 {
                quantity
            } else {
                1 + rng.below(quantity as u64) as i64
            };
            // Mostly within a couple of weeks; squeezed into the window near
            // its end so returns are not silently lost there.
            let mut when = t + (0.5 + 6.0 * rng.exponential()).min(30.0);
            if when >= model.end {
                when = t + (model.end - t) * rng.uniform();
                if when >= model.end {
                    when = t; // rounding; the return still follows its purchase
                }
            }
            let r = PendingReturn {
                t: when,
                category,
                quantity: returned,
                unit_price_cents: price,
            };
            let at = pending.partition_point(|p| p.t > when);
            pending.insert(at, r);
        }
    }
}

/// Ten million dollars: no realistic basket gets near it.
const MAX_UNIT_PRICE_CENTS: i64 = 1_000_000_000;

/// A shelf-looking price near `target` cents: mostly `x.x9`, some `x.99`,
/// a few exact; between 9 cents and [`MAX_UNIT_PRICE_CENTS`].
fn retail_price(rng: &mut Rng, target: f64) -> i64 {
    let c = target.max(19.0);
    let u = rng.uniform();
    let p = if u < 0.2 && c >= 150.0 {
        (c / 100.0).round() * 100.0 - 1.0
    } else if u < 0.9 {
        (c / 10.0).round() * 10.0 - 1.0
    } else {
        c.round()
    };
    // `as` saturates; the bounds keep prices positive and far from i64
    // overflow in `quantity * price * permille`, even for absurd spend scales.
    (p as i64).clamp(9, MAX_UNIT_PRICE_CENTS)
}

/// Cost rounded half away from zero, so a return's cost is exactly the
/// negated cost of the same purchase.
fn cost_of(amount: i64, permille: i64) -> i64 {
    let scaled = amount * permille;
    (scaled + scaled.signum() * 500) / 1000
}

/// Splits a window time (continuous days) into a day offset and a time of
/// day. The fraction of the day is mapped through the inverse CDF of the
/// hourly traffic profile: monotone, so events keep their order within a day.
fn split_time(t: f64) -> (i32, u32) {
    let day = t.floor();
    let total: f64 = HOURLY_TRAFFIC.iter().sum();
    let mut x = (t - day) * total;
    let mut hour = OPEN_HOUR;
    let mut within = 0.0;
    for (i, w) in HOURLY_TRAFFIC.iter().enumerate() {
        if x < *w || i == HOURLY_TRAFFIC.len() - 1 {
            within = (x / w).clamp(0.0, 1.0);
            break;
        }
        x -= w;
        hour += 1;
    }
    let close = (OPEN_HOUR + HOURLY_TRAFFIC.len() as u32) * 3600 - 1;
    let seconds = (hour * 3600 + (within * 3600.0) as u32).min(close);
    (day as i32, seconds)
}

// ---------------------------------------------------------------------------
// Randomness: xoshiro256** seeded through SplitMix64, plus samplers.

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// Independent stream per customer: hashing (seed, customer) before
    /// SplitMix expansion avoids the overlapping streams that consecutive
    /// SplitMix states would give.
    fn for_customer(seed: u64, customer: u64) -> Self {
        let mut h = seed;
        let k = splitmix64(&mut h) ^ customer;
        let mut h = k;
        let mut state = splitmix64(&mut h);
        let mut s = [0u64; 4];
        for x in &mut s {
            *x = splitmix64(&mut state);
        }
        if s == [0; 4] {
            s[0] = 1; // the one state xoshiro cannot leave
        }
        Self { s }
    }

    fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1) with 53 random bits.
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in (0, 1], safe to take the logarithm of.
    fn uniform_pos(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n) (multiply-shift; the bias is < n / 2^64).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Exponential with rate 1.
    fn exponential(&mut self) -> f64 {
        -self.uniform_pos().ln()
    }

    /// Standard normal (Marsaglia polar method; the second value is dropped
    /// to keep the generator state-free).
    fn normal(&mut self) -> f64 {
        loop {
            let u = 2.0 * self.uniform() - 1.0;
            let v = 2.0 * self.uniform() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                return u * (-2.0 * s.ln() / s).sqrt();
            }
        }
    }

    /// Gamma with the given shape and scale 1 (Marsaglia & Tsang 2000; for
    /// shape < 1 the boost Gamma(a) = Gamma(a + 1) · U^(1/a)).
    fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let g = self.gamma(shape + 1.0);
            return g * self.uniform_pos().powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = 1.0 + c * x;
            if v <= 0.0 {
                continue;
            }
            let v = v * v * v;
            let u = self.uniform_pos();
            let x2 = x * x;
            if u < 1.0 - 0.0331 * x2 * x2 || u.ln() < 0.5 * x2 + d * (1.0 - v + v.ln()) {
                return d * v;
            }
        }
    }

    /// Beta(a, b) as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b).
    fn beta(&mut self, a: f64, b: f64) -> f64 {
        loop {
            let x = self.gamma(a);
            let s = x + self.gamma(b);
            // Both draws underflowing to 0 is possible only for tiny shapes.
            if s > 0.0 {
                return x / s;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Formatting into a byte buffer (hot path of `write_csv`).

fn push_csv_line(buf: &mut Vec<u8>, l: &SynthLine, customer_width: usize) {
    buf.push(b'O');
    push_padded(buf, l.order_id, ORDER_ID_WIDTH);
    buf.extend_from_slice(b",C");
    push_padded(buf, l.customer, customer_width);
    buf.push(b',');
    push_timestamp(buf, l.day, l.seconds);
    buf.push(b',');
    buf.extend_from_slice(l.category.as_bytes());
    buf.push(b',');
    if l.quantity < 0 {
        buf.push(b'-');
    }
    push_padded(buf, l.quantity.unsigned_abs(), 1);
    buf.push(b',');
    push_cents(buf, l.unit_price_cents);
    buf.push(b',');
    push_cents(buf, l.amount_cents);
    buf.push(b',');
    push_cents(buf, l.cost_cents);
    buf.push(b'\n');
}

fn decimal_digits(mut n: u64) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// Decimal digits of `n`, left-padded with zeros to `width` (never truncated).
fn push_padded(buf: &mut Vec<u8>, n: u64, width: usize) {
    let mut tmp = [0u8; 20];
    let digits = crate::output::decimal_digits(n, &mut tmp);
    for _ in digits.len()..width {
        buf.push(b'0');
    }
    buf.extend_from_slice(digits);
}

fn push_cents(buf: &mut Vec<u8>, cents: i64) {
    if cents < 0 {
        buf.push(b'-');
    }
    let abs = cents.unsigned_abs();
    push_padded(buf, abs / 100, 1);
    buf.push(b'.');
    push_padded(buf, abs % 100, 2);
}

fn push_timestamp(buf: &mut Vec<u8>, day: i32, seconds: u32) {
    let (y, m, d) = civil_from_days(day);
    if y < 0 {
        buf.push(b'-');
    }
    push_padded(buf, u64::from(y.unsigned_abs()), 4);
    buf.push(b'-');
    push_padded(buf, u64::from(m), 2);
    buf.push(b'-');
    push_padded(buf, u64::from(d), 2);
    buf.push(b'T');
    push_padded(buf, u64::from(seconds / 3600), 2);
    buf.push(b':');
    push_padded(buf, u64::from(seconds / 60 % 60), 2);
    buf.push(b':');
    push_padded(buf, u64::from(seconds % 60), 2);
}

fn ascii_string(buf: Vec<u8>) -> String {
    // Only ASCII digits and letters are ever pushed by the formatters above.
    String::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn csv(params: &SynthParams) -> (Vec<u8>, SynthStats) {
        let mut out = Vec::new();
        let stats = write_csv(params, &mut out).expect("writing to a Vec cannot fail");
        (out, stats)
    }

    fn collect(params: &SynthParams) -> (Vec<SynthLine<'static>>, SynthStats) {
        let mut lines = Vec::new();
        let stats = generate(params, |l| {
            let category = CATEGORIES
                .iter()
                .find(|c| **c == l.category)
                .expect("category comes from CATEGORIES");
            lines.push(SynthLine { category, ..*l });
        });
        (lines, stats)
    }

    #[test]
    fn same_seed_gives_identical_bytes_and_other_seed_differs() {
        let p = SynthParams::for_rows(5_000, 7);
        let (a, sa) = csv(&p);
        let (b, sb) = csv(&p);
        assert_eq!(sa, sb);
        assert!(a == b, "same seed must give identical bytes");
        let (c, _) = csv(&SynthParams { seed: 8, ..p });
        assert!(a != c, "different seeds must differ");
    }

    #[test]
    fn stats_match_emitted_lines() {
        let p = SynthParams::for_rows(20_000, 3);
        let (lines, stats) = collect(&p);
        assert_eq!(stats.lines, lines.len() as u64);
        assert_eq!(stats.customers, p.customers as u64);
        assert_eq!(
            stats.returns,
            lines.iter().filter(|l| l.quantity < 0).count() as u64
        );
        let mut purchase_orders: Vec<u64> = lines
            .iter()
            .filter(|l| l.quantity > 0)
            .map(|l| l.order_id)
            .collect();
        purchase_orders.dedup();
        assert_eq!(stats.orders, purchase_orders.len() as u64);
        // Ids are handed out in emission order, globally unique, 1..=n.
        let mut ids: Vec<u64> = lines.iter().map(|l| l.order_id).collect();
        assert!(ids.windows(2).all(|w| w[0] <= w[1]));
        ids.dedup();
        assert_eq!(ids.len() as u64, stats.orders + stats.returns);
        assert_eq!(ids.first(), Some(&1));
        assert_eq!(ids.last(), Some(&(stats.orders + stats.returns)));
        let counts = lines.iter().fold(HashMap::new(), |mut m, l| {
            *m.entry(l.order_id).or_insert(0usize) += 1;
            m
        });
        assert!(counts.values().all(|&n| (1..=6).contains(&n)));
    }

    #[test]
    fn amounts_are_exact_and_costs_within_margin() {
        let (lines, _) = collect(&SynthParams::for_rows(30_000, 11));
        for l in &lines {
            assert_eq!(l.amount_cents, l.quantity * l.unit_price_cents, "{l:?}");
            assert!(l.unit_price_cents > 0);
            assert!(l.quantity != 0 && (-5..=5).contains(&l.quantity));
            assert_eq!(l.cost_cents.signum(), l.amount_cents.signum());
            let ratio = l.cost_cents as f64 / l.amount_cents as f64;
            let slack = 0.5 / l.amount_cents.abs() as f64;
            assert!((0.55 - slack..=0.80 + slack).contains(&ratio), "{l:?}");
        }
        assert_eq!(cost_of(-1999, 700), -cost_of(1999, 700));
        assert_eq!(cost_of(5, 700), 4); // 3.5 rounds away from zero
        assert_eq!(cost_of(-5, 700), -4);
    }

    #[test]
    fn about_two_percent_of_lines_are_returns() {
        for seed in [1, 2, 3] {
            let (_, stats) = csv(&SynthParams::for_rows(50_000, seed));
            let share = stats.returns as f64 / stats.lines as f64;
            assert!((0.01..=0.03).contains(&share), "seed {seed}: {share}");
        }
    }

    #[test]
    fn returns_repeat_an_earlier_purchase_of_the_same_customer() {
        let (lines, stats) = collect(&SynthParams::for_rows(50_000, 5));
        assert!(stats.returns > 500);
        // (customer, category, price) -> purchased-and-not-yet-returned units
        // with the time of purchase.
        type Open<'a> = HashMap<(u64, &'a str, i64), Vec<((i32, u32), i64)>>;
        let mut open: Open = HashMap::new();
        let mut last_time: HashMap<u64, (i32, u32)> = HashMap::new();
        for l in &lines {
            let time = (l.day, l.seconds);
            let prev = last_time.insert(l.customer, time);
            assert!(
                prev.is_none_or(|p| p <= time),
                "customer lines out of time order"
            );
            let key = (l.customer, l.category, l.unit_price_cents);
            if l.quantity > 0 {
                open.entry(key).or_default().push((time, l.quantity));
            } else {
                let slots = open.get_mut(&key).expect("return without earlier purchase");
                let slot = slots
                    .iter_mut()
                    .find(|(t, q)| *t <= time && *q >= -l.quantity)
                    .expect("return exceeds earlier purchased quantity");
                slot.1 += l.quantity;
            }
        }
    }

    #[test]
    fn customers_are_contiguous_and_ids_follow_the_count() {
        let (lines, _) = collect(&SynthParams::for_rows(10_000, 9));
        assert!(lines.windows(2).all(|w| w[0].customer <= w[1].customer));
        assert_eq!(lines.first().map(|l| l.customer), Some(1));
    }

    #[test]
    fn id_formats() {
        assert_eq!(format_customer_id(123, 7), "C0000123");
        assert_eq!(format_customer_id(123, customer_id_width(999)), "C0000123");
        assert_eq!(customer_id_width(9_999_999), 7);
        assert_eq!(customer_id_width(10_000_000), 8);
        assert_eq!(format_customer_id(10_000_000, 8), "C10000000");
        assert_eq!(format_customer_id(5, 8), "C00000005");
        assert_eq!(format_order_id(1), "O0000000001");
        assert_eq!(format_order_id(12_345_678_901), "O12345678901");
        // The CSV writer and the public formatters agree.
        let p = SynthParams::for_rows(2_000, 1);
        let (lines, _) = collect(&p);
        let (bytes, _) = csv(&p);
        let text = String::from_utf8(bytes).expect("CSV is ASCII");
        let width = customer_id_width(p.customers);
        for (row, l) in text.lines().skip(1).zip(&lines) {
            let f: Vec<&str> = row.split(',').collect();
            assert_eq!(f[0], format_order_id(l.order_id));
            assert_eq!(f[1], format_customer_id(l.customer, width));
            assert_eq!(f[2], format_timestamp(l.day, l.seconds));
            assert_eq!(f[3], l.category);
            assert_eq!(f[4], l.quantity.to_string());
            assert_eq!(f[5], format_cents(l.unit_price_cents));
            assert_eq!(f[6], format_cents(l.amount_cents));
            assert_eq!(f[7], format_cents(l.cost_cents));
        }
    }

    #[test]
    fn csv_header_and_two_decimal_money() {
        assert_eq!(format_cents(0), "0.00");
        assert_eq!(format_cents(5), "0.05");
        assert_eq!(format_cents(-5), "-0.05");
        assert_eq!(format_cents(-399), "-3.99");
        assert_eq!(format_cents(1250), "12.50");
        assert_eq!(format_cents(123_456_789), "1234567.89");
        assert_eq!(format_cents(i64::MIN), "-92233720368547758.08");
        assert_eq!(
            format_timestamp(19_358, 8 * 3600 + 5 * 60 + 9),
            "2023-01-01T08:05:09"
        );

        let (bytes, stats) = csv(&SynthParams::for_rows(20_000, 4));
        let text = String::from_utf8(bytes).expect("CSV is ASCII");
        let mut rows = text.lines();
        assert_eq!(
            rows.next(),
            Some("order_id,customer_id,ts,category,quantity,unit_price,amount,cost")
        );
        let mut negatives = 0;
        let mut n = 0;
        for row in rows {
            n += 1;
            let f: Vec<&str> = row.split(',').collect();
            assert_eq!(f.len(), 8, "{row}");
            assert!(f[0].len() == 11 && f[0].starts_with('O'));
            assert!(f[1].len() == 8 && f[1].starts_with('C'));
            let ts = f[2].as_bytes();
            assert_eq!(ts.len(), 19, "{row}");
            assert!(ts[4] == b'-' && ts[7] == b'-' && ts[10] == b'T' && ts[13] == b':');
            let hour: u32 = f[2][11..13].parse().expect("hour");
            assert!((8..21).contains(&hour), "{row}");
            assert!(CATEGORIES.contains(&f[3]));
            assert!(f[4].parse::<i64>().is_ok());
            for money in &f[5..8] {
                let digits = money.strip_prefix('-').unwrap_or(money);
                let (whole, frac) = digits.split_once('.').expect("decimal point");
                assert!(!whole.is_empty() && whole.bytes().all(|b| b.is_ascii_digit()));
                assert!(
                    frac.len() == 2 && frac.bytes().all(|b| b.is_ascii_digit()),
                    "{row}"
                );
                negatives += usize::from(money.starts_with('-'));
            }
        }
        assert_eq!(n as u64, stats.lines);
        assert_eq!(
            negatives as u64,
            2 * stats.returns,
            "amount and cost negative on returns"
        );
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn dates_stay_in_window_and_first_purchases_in_acquisition() {
        let p = SynthParams {
            days: 100,
            acquisition_days: 30,
            ..SynthParams::for_rows(20_000, 6)
        }
        .with_start_date(2024, 2, 20)
        .expect("valid date");
        let start = p.start_day;
        let (lines, _) = collect(&p);
        let mut seen = 0;
        for l in &lines {
            assert!((start..start + 100).contains(&l.day), "{l:?}");
            assert!((8 * 3600..21 * 3600).contains(&l.seconds));
            if l.customer > seen {
                seen = l.customer;
                assert!(
                    l.day < start + 30,
                    "first purchase after acquisition: {l:?}"
                );
            }
        }
    }

    #[test]
    fn a_customer_history_does_not_depend_on_the_customer_count() {
        let strip = |p: &SynthParams| {
            let (lines, _) = collect(p);
            lines
                .into_iter()
                .filter(|l| l.customer <= 50)
                .map(|l| SynthLine { order_id: 0, ..l })
                .collect::<Vec<_>>()
        };
        let small = SynthParams {
            customers: 50,
            ..SynthParams::default()
        };
        let big = SynthParams {
            customers: 500,
            ..SynthParams::default()
        };
        assert_eq!(strip(&small), strip(&big));
    }

    #[test]
    fn for_rows_is_close_to_target() {
        for (rows, seed) in [
            (1_000u64, 1u64),
            (1_000, 2),
            (30_000, 42),
            (30_000, 7),
            (100_000, 3),
        ] {
            let (_, stats) = csv(&SynthParams::for_rows(rows, seed));
            let rel = stats.lines as f64 / rows as f64 - 1.0;
            assert!(
                rel.abs() <= 0.05,
                "{rows} rows seed {seed}: {} lines",
                stats.lines
            );
        }
        // Above the exact-counting limit the calibrated average is used.
        let p = SynthParams::for_rows(EXACT_ROWS_LIMIT + 1, 3);
        assert_eq!(p.customers, 124_378);
        assert_eq!(SynthParams::for_rows(1, 5).customers, 1);
        assert_eq!(SynthParams::for_rows(0, 1).customers, 0);
        let (bytes, stats) = csv(&SynthParams::for_rows(0, 1));
        assert_eq!(stats.lines, 0);
        assert_eq!(bytes, format!("{CSV_HEADER}\n").into_bytes());
    }

    /// Gauss hypergeometric 2F1(a, b; c; z) by its power series (|z| < 1).
    fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
        let (mut term, mut sum) = (1.0, 1.0);
        for k in 0..1_000_000 {
            let k = f64::from(k);
            term *= (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
            sum += term;
            if term.abs() < 1e-15 * sum.abs() {
                break;
            }
        }
        sum
    }

    /// BG/NBD expected number of repeat purchases in (0, t], t in weeks
    /// (Fader, Hardie & Lee 2005, eq. 9).
    fn expected_repeats(m: &BgNbdParams, t: f64) -> f64 {
        let BgNbdParams { r, alpha, a, b } = *m;
        let z = t / (alpha + t);
        (a + b - 1.0) / (a - 1.0)
            * (1.0 - (alpha / (alpha + t)).powf(r) * hyp2f1(r, b, a + b - 1.0, z))
    }

    #[test]
    fn closed_form_expectation_is_sane() {
        let m = BgNbdParams::CDNOW;
        // For small t, E[X(t)] ~ r t / alpha.
        let t = 1e-3;
        let small = expected_repeats(&m, t);
        assert!((small / (m.r * t / m.alpha) - 1.0).abs() < 1e-2, "{small}");
        // Increasing in t, and below the no-dropout Poisson mean r t / alpha.
        let e39 = expected_repeats(&m, 39.0);
        let e78 = expected_repeats(&m, 78.0);
        assert!(0.0 < e39 && e39 < e78 && e78 < m.r / m.alpha * 78.0);
    }

    #[test]
    fn repeat_purchases_match_bgnbd_expectation() {
        let p = SynthParams {
            customers: 20_000,
            seed: 2005,
            ..SynthParams::default()
        };
        let (lines, _) = collect(&p);
        let mut first_day: HashMap<u64, i32> = HashMap::new();
        let mut orders: HashMap<u64, usize> = HashMap::new();
        let mut last_order = 0;
        for l in lines.iter().filter(|l| l.quantity > 0) {
            first_day.entry(l.customer).or_insert(l.day);
            if l.order_id != last_order {
                last_order = l.order_id;
                *orders.entry(l.customer).or_default() += 1;
            }
        }
        assert_eq!(first_day.len(), p.customers);
        let end = p.start_day + p.days as i32;
        let mut cache: HashMap<i32, f64> = HashMap::new();
        let mut expected = 0.0;
        let mut observed = 0.0;
        for (customer, day) in &first_day {
            // The first purchase lies somewhere within its day: use mid-day.
            let weeks = (f64::from(end - day) - 0.5) / 7.0;
            expected += *cache
                .entry(*day)
                .or_insert_with(|| expected_repeats(&p.bgnbd, weeks));
            observed += (orders[customer] - 1) as f64;
        }
        let (expected, observed) = (expected / 20_000.0, observed / 20_000.0);
        assert!(
            (observed / expected - 1.0).abs() < 0.08,
            "mean repeats observed {observed:.4}, BG/NBD expects {expected:.4}"
        );
    }

    #[test]
    fn mean_order_value_matches_gamma_gamma() {
        let p = SynthParams {
            customers: 20_000,
            seed: 2013,
            ..SynthParams::default()
        };
        let mut per_order: HashMap<u64, i64> = HashMap::new();
        generate(&p, |l| {
            if l.quantity > 0 {
                *per_order.entry(l.order_id).or_default() += l.amount_cents;
            }
        });
        let mean = per_order.values().sum::<i64>() as f64 / per_order.len() as f64 / 100.0;
        let GammaGammaParams { p, q, gamma } = GammaGammaParams::CDNOW;
        let theory = p * gamma / (q - 1.0);
        assert!(
            (mean / theory - 1.0).abs() < 0.05,
            "mean order {mean:.2} vs {theory:.2}"
        );
    }

    #[test]
    fn samplers_have_the_right_moments() {
        let mut rng = Rng::for_customer(1, 1);
        let n = 200_000;
        for shape in [0.243, 0.793, 1.0, 3.74, 6.25] {
            let xs: Vec<f64> = (0..n).map(|_| rng.gamma(shape)).collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            assert!(
                (mean / shape - 1.0).abs() < 0.03,
                "gamma({shape}) mean {mean}"
            );
            assert!((var / shape - 1.0).abs() < 0.08, "gamma({shape}) var {var}");
        }
        let (a, b) = (0.793, 2.426);
        let mean = (0..n).map(|_| rng.beta(a, b)).sum::<f64>() / n as f64;
        assert!((mean - a / (a + b)).abs() < 0.005, "beta mean {mean}");
        let mean = (0..n).map(|_| rng.exponential()).sum::<f64>() / n as f64;
        assert!((mean - 1.0).abs() < 0.01);
        let u: Vec<f64> = (0..n).map(|_| rng.uniform()).collect();
        assert!(u.iter().all(|x| (0.0..1.0).contains(x)));
        assert!((u.iter().sum::<f64>() / n as f64 - 0.5).abs() < 0.005);
        assert!((0..1000).all(|_| rng.below(5) < 5));
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(2023, 1, 1), Some(DEFAULT_START_DAY));
        assert_eq!(days_from_civil(0, 1, 1), Some(MIN_DAY as i32));
        assert_eq!(days_from_civil(9999, 12, 31), Some(MAX_DAY as i32));
        assert_eq!(days_from_civil(2024, 2, 30), None);
        assert_eq!(days_from_civil(2023, 2, 29), None);
        assert_eq!(days_from_civil(2000, 2, 29), Some(11_016));
        assert_eq!(days_from_civil(2023, 13, 1), None);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        let mut expected = (1899, 12, 31);
        for day in
            days_from_civil(1900, 1, 1).expect("date")..=days_from_civil(2101, 1, 1).expect("date")
        {
            let (y, m, d) = civil_from_days(day);
            let next = if expected.2 < days_in_month(expected.0, expected.1) {
                (expected.0, expected.1, expected.2 + 1)
            } else if expected.1 < 12 {
                (expected.0, expected.1 + 1, 1)
            } else {
                (expected.0 + 1, 1, 1)
            };
            assert_eq!((y, m, d), next);
            assert_eq!(days_from_civil(y, m, d), Some(day));
            expected = next;
        }
    }

    #[test]
    fn invalid_parameters_are_rejected() {
        let bad = [
            SynthParams {
                days: 0,
                ..SynthParams::default()
            },
            SynthParams {
                return_rate: 0.5,
                ..SynthParams::default()
            },
            SynthParams {
                spend_scale: f64::NAN,
                ..SynthParams::default()
            },
            SynthParams {
                bgnbd: BgNbdParams {
                    r: 0.0,
                    ..BgNbdParams::CDNOW
                },
                ..SynthParams::default()
            },
            SynthParams {
                start_day: MAX_DAY as i32,
                days: 2,
                ..SynthParams::default()
            },
        ];
        for p in bad {
            assert!(p.validate().is_err(), "{p:?}");
            let err = write_csv(&p, Vec::new()).expect_err("invalid params");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
        assert!(SynthParams::default().validate().is_ok());
    }

    #[test]
    fn extreme_spend_scales_do_not_overflow() {
        for spend_scale in [1e-9, 1e300] {
            let p = SynthParams {
                spend_scale,
                customers: 200,
                ..SynthParams::default()
            };
            let (lines, _) = collect(&p);
            assert!(
                lines
                    .iter()
                    .all(|l| l.amount_cents == l.quantity * l.unit_price_cents)
            );
            assert!(
                lines
                    .iter()
                    .all(|l| (9..=MAX_UNIT_PRICE_CENTS).contains(&l.unit_price_cents))
            );
        }
    }

    #[test]
    fn write_errors_stop_generation() {
        struct Fails(usize);
        impl Write for Fails {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("disk full"));
                }
                self.0 -= 1;
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let err = write_csv(&SynthParams::for_rows(100_000, 1), Fails(1)).expect_err("fails");
        assert_eq!(err.to_string(), "disk full");
    }

    #[test]
    fn time_of_day_mapping_is_monotone_and_in_store_hours() {
        let mut prev = (0, 0);
        for i in 0..=10_000 {
            let t = 3.0 + f64::from(i) / 10_000.0 * 0.999_999;
            let now = split_time(t);
            assert!(now >= prev && now.0 == 3);
            assert!((8 * 3600..21 * 3600).contains(&now.1));
            prev = now;
        }
        assert_eq!(split_time(0.0), (0, 8 * 3600));
    }
}

//! The three-dimensional view of JOB.md, "Customer × product × behaviour" (三维分析:
//! 顾客结构 × 商品结构 × 消费行为结构): a customer dimension — money decile, RFM segment,
//! lifecycle stage or cohort — crossed with the product dimension (category), with
//! behaviour measures in every cell: customers and orders with a purchase line, revenue
//! (returns included), penetration, share of the group's revenue and the marketing index
//! (above 100 the group over-buys the category).
//!
//! Choices where JOB.md is silent:
//! - Groups sort in their dimension's own order: deciles 1..10 numerically, segments in
//!   the segment table's order (the order `custvalue segments` prints them, fallback
//!   last), stages in rule order (new, active, at_risk, lapsed, lost), cohorts
//!   chronologically (which is also `YYYY-MM` byte order). Categories sort by UTF-8
//!   bytes, with `(none)` (lines without a category) among them.
//! - Customers without a group — those without a purchase have no segment, stage or
//!   cohort — are left out of that view entirely, and the index's denominators (the
//!   category's revenue, total revenue) are taken over the customers in the view, so
//!   the groups add up to the categories and the categories to the total. Every customer
//!   has a money decile, so the decile view covers all lines.
//!
//! One pass over the lines: rayon over ranges of customers, each summed into a dense
//! groups × categories array, with per-category marks instead of sorting to count
//! customers and orders. Sums are integers, so any thread count gives the same result.
//!
//! Not for: the cohort retention triangle (see `cohorts`), category pairs (see
//! `affinity`).

use polars::prelude::*;
use rayon::prelude::*;

use crate::cohorts::{cohort_months, month_label};
use crate::error::{Error, Result};
use crate::lifecycle::{Lifecycle, Stage};
use crate::money;
use crate::rfm::{RfmScores, SegmentRules};
use crate::segments::Segmentation;
use crate::summary::Summary;
use crate::transactions::{NO_CATEGORY, Transactions};

/// The category of lines without one.
pub const NONE_CATEGORY: &str = "(none)";

/// An index at or above this marks a group that over-buys a category (`+`).
pub const OVER_INDEX: f64 = 120.0;
/// An index at or below this marks a group that under-buys a category (`-`).
pub const UNDER_INDEX: f64 = 80.0;

/// The customer dimension of a cube.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dimension {
    /// Money decile, 1 (top) to 10.
    #[default]
    Decile,
    /// Named RFM segment.
    Segment,
    /// Lifecycle stage.
    Stage,
    /// Month of the first purchase.
    Cohort,
}

impl Dimension {
    /// The name, also used as the group column's name.
    pub fn name(self) -> &'static str {
        match self {
            Dimension::Decile => "decile",
            Dimension::Segment => "segment",
            Dimension::Stage => "stage",
            Dimension::Cohort => "cohort",
        }
    }
}

impl std::str::FromStr for Dimension {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "decile" | "deciles" => Ok(Dimension::Decile),
            "segment" | "segments" => Ok(Dimension::Segment),
            "stage" | "stages" | "lifecycle" => Ok(Dimension::Stage),
            "cohort" | "cohorts" => Ok(Dimension::Cohort),
            _ => Err(format!(
                "group customers by decile, segment, stage or cohort, not {s:?}"
            )),
        }
    }
}

/// Every customer's group along one dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Groups {
    pub dimension: Dimension,
    /// Group labels in output order.
    pub labels: Vec<String>,
    /// The group (index into `labels`) of each customer; None leaves the customer out.
    pub of: Vec<Option<u32>>,
}

impl Groups {
    /// Money deciles (from `deciles::assign`): groups "1".."10".
    ///
    /// ```
    /// let g = custvalue::cube::Groups::deciles(&[2, 1, 10]);
    /// assert_eq!(g.of, vec![Some(1), Some(0), Some(9)]);
    /// assert_eq!(g.labels[9], "10");
    /// ```
    pub fn deciles(decile: &[u8]) -> Groups {
        Groups {
            dimension: Dimension::Decile,
            labels: (1..=10).map(|d: u8| d.to_string()).collect(),
            of: decile
                .iter()
                .map(|&d| (1..=10).contains(&d).then(|| u32::from(d) - 1))
                .collect(),
        }
    }

    /// RFM segments, in the table's order; customers without a purchase are left out.
    ///
    /// ```
    /// use custvalue::rfm::{RfmScores, SegmentRules};
    /// let scores = RfmScores { k: 5, r: vec![5, 0, 1], f: vec![5, 0, 1], m: vec![5, 0, 1] };
    /// let g = custvalue::cube::Groups::segments(&scores, &SegmentRules::default());
    /// assert_eq!(g.labels[0], "Champions");
    /// assert_eq!(g.of[0], Some(0));
    /// assert_eq!(g.of[1], None);
    /// assert_eq!(g.labels[g.of[2].unwrap() as usize], "Lost");
    /// ```
    pub fn segments(scores: &RfmScores, rules: &SegmentRules) -> Groups {
        let labels: Vec<String> = rules.names().iter().map(|n| n.to_string()).collect();
        let of = (0..scores.r.len())
            .map(|c| {
                rules
                    .segment(scores, c)
                    .and_then(|name| labels.iter().position(|l| l == name))
                    .map(|k| k as u32)
            })
            .collect();
        Groups {
            dimension: Dimension::Segment,
            labels,
            of,
        }
    }

    /// Lifecycle stages in rule order; customers without a purchase are left out.
    ///
    /// ```
    /// use custvalue::lifecycle::{Lifecycle, Stage};
    /// let lc = Lifecycle { stage: vec![Some(Stage::Lost), None], reactivated: vec![false; 2] };
    /// let g = custvalue::cube::Groups::stages(&lc);
    /// assert_eq!(g.labels, ["new", "active", "at_risk", "lapsed", "lost"]);
    /// assert_eq!(g.of, vec![Some(4), None]);
    /// ```
    pub fn stages(lifecycle: &Lifecycle) -> Groups {
        Groups {
            dimension: Dimension::Stage,
            labels: Stage::ALL.iter().map(|s| s.name().to_string()).collect(),
            of: lifecycle
                .stage
                .iter()
                .map(|s| s.and_then(|s| Stage::ALL.iter().position(|&x| x == s)))
                .map(|k| k.map(|k| k as u32))
                .collect(),
        }
    }

    /// Cohorts (month of the first purchase), chronologically; customers without a
    /// purchase are left out.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("tx.csv");
    /// # std::fs::write(&path, "customer_id,ts,amount\nA,2024-03-01,10\nB,2024-01-31,5\nC,2024-02-10,-3\n").unwrap();
    /// # let loaded = custvalue::load(&custvalue::LoadOptions::new([path.to_str().unwrap()])).unwrap();
    /// let summary = custvalue::summarize(&loaded.transactions).unwrap();
    /// let g = custvalue::cube::Groups::cohorts(&summary);
    /// assert_eq!(g.labels, ["2024-01", "2024-03"]);
    /// assert_eq!(g.of, vec![Some(1), Some(0), None]);
    /// ```
    pub fn cohorts(s: &Summary) -> Groups {
        let months = cohort_months(s);
        let mut present: Vec<i32> = months.iter().flatten().copied().collect();
        present.sort_unstable();
        present.dedup();
        Groups {
            dimension: Dimension::Cohort,
            labels: present.iter().map(|&m| month_label(m)).collect(),
            of: months
                .iter()
                .map(|m| {
                    m.and_then(|m| present.binary_search(&m).ok())
                        .map(|k| k as u32)
                })
                .collect(),
        }
    }

    /// The groups of `dimension` from a full segmentation.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("tx.csv");
    /// # std::fs::write(&path, "customer_id,ts,amount\nA,2024-03-01,10\nB,2024-01-31,5\n").unwrap();
    /// # let loaded = custvalue::load(&custvalue::LoadOptions::new([path.to_str().unwrap()])).unwrap();
    /// use custvalue::cube::{Dimension, Groups};
    /// let seg = custvalue::segment(&loaded.transactions, &Default::default()).unwrap();
    /// let g = Groups::of(Dimension::Stage, &seg);
    /// assert_eq!(g.of, vec![Some(0), Some(0)]); // both new
    /// ```
    pub fn of(dimension: Dimension, seg: &Segmentation) -> Groups {
        match dimension {
            Dimension::Decile => Groups::deciles(&seg.decile),
            Dimension::Segment => Groups::segments(&seg.scores, &seg.rules),
            Dimension::Stage => Groups::stages(&seg.lifecycle),
            Dimension::Cohort => Groups::cohorts(&seg.summary),
        }
    }
}

/// One (group, category) cell. Money in minor units.
#[derive(Debug, Clone, PartialEq)]
pub struct CubeRow {
    /// Index into [`Cube::groups`].
    pub group: usize,
    /// Index into [`Cube::categories`].
    pub category: usize,
    /// Customers of the group with a line of amount > 0 in the category.
    pub customers: u64,
    /// Distinct orders of the group with a line of amount > 0 in the category.
    pub orders: u64,
    /// Sum of amount over the group's lines in the category (returns included).
    pub revenue: i64,
    /// customers / customers of the group.
    pub penetration: f64,
    /// revenue / the group's revenue (None when that is ≤ 0).
    pub share: Option<f64>,
    /// 100 × share / (category revenue / total revenue) (None when a denominator is ≤ 0).
    pub index: Option<f64>,
}

/// The long-format cube: one row per (group, category) with a line, by group then
/// category.
#[derive(Debug, Clone, PartialEq)]
pub struct Cube {
    pub dimension: Dimension,
    /// Group labels in output order (groups without customers included).
    pub groups: Vec<String>,
    /// Customers per group.
    pub group_customers: Vec<u64>,
    /// Revenue per group over all categories.
    pub group_revenue: Vec<i64>,
    /// Category names by UTF-8 bytes, `(none)` among them when a line has no category.
    pub categories: Vec<String>,
    /// Revenue per category over the customers in the view.
    pub category_revenue: Vec<i64>,
    pub total_revenue: i64,
    pub rows: Vec<CubeRow>,
    pub currency_decimals: u32,
}

/// The cube's category axis: the loaded categories plus `(none)` where needed.
struct ProductAxis {
    names: Vec<String>,
    /// Axis index of each loaded category code; the last entry is for NO_CATEGORY.
    index: Vec<u32>,
}

impl ProductAxis {
    fn new(tx: &Transactions) -> ProductAxis {
        let n = tx.categories.len();
        let has_none = tx.category.par_iter().any(|&k| k == NO_CATEGORY);
        let mut names = tx.categories.clone();
        let mut index: Vec<u32> = (0..n as u32).collect();
        let none_at = match names.binary_search_by(|n| n.as_bytes().cmp(NONE_CATEGORY.as_bytes())) {
            // A real category named "(none)" is the same category.
            Ok(at) => at,
            Err(at) if has_none => {
                names.insert(at, NONE_CATEGORY.to_string());
                for k in &mut index[at..] {
                    *k += 1;
                }
                at
            }
            Err(_) => 0,
        };
        index.push(none_at as u32);
        ProductAxis { names, index }
    }

    fn of(&self, code: u32) -> usize {
        let k = if code == NO_CATEGORY {
            self.index.len() - 1
        } else {
            code as usize
        };
        self.index[k] as usize
    }
}

/// Sums of one share of the customers, groups × categories.
struct Cells {
    /// Whether the cell has a line.
    lines: Vec<bool>,
    customers: Vec<u64>,
    orders: Vec<u64>,
    revenue: Vec<i128>,
    group_customers: Vec<u64>,
}

impl Cells {
    fn new(groups: usize, categories: usize) -> Cells {
        let n = groups * categories;
        Cells {
            lines: vec![false; n],
            customers: vec![0; n],
            orders: vec![0; n],
            revenue: vec![0; n],
            group_customers: vec![0; groups],
        }
    }

    fn add(mut self, other: Cells) -> Cells {
        fn sum<T: std::ops::AddAssign + Copy>(a: &mut [T], b: &[T]) {
            for (x, &y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
        for (x, &y) in self.lines.iter_mut().zip(&other.lines) {
            *x |= y;
        }
        sum(&mut self.customers, &other.customers);
        sum(&mut self.orders, &other.orders);
        sum(&mut self.revenue, &other.revenue);
        sum(&mut self.group_customers, &other.group_customers);
        self
    }
}

/// Builds the cube of `groups` × category.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("tx.csv");
/// # std::fs::write(&path, "customer_id,ts,order_id,amount,category\n\
/// #     A,2024-01-05,1,30,wine\nA,2024-01-05,1,10,\nB,2024-01-06,2,20,cheese\nB,2024-01-07,3,-5,cheese\n").unwrap();
/// # let loaded = custvalue::load(&custvalue::LoadOptions::new([path.to_str().unwrap()])).unwrap();
/// use custvalue::cube::{Groups, cube};
/// let tx = &loaded.transactions;
/// let summary = custvalue::summarize(tx).unwrap();
/// let deciles = custvalue::deciles::assign(&summary, Default::default());
/// let c = cube(tx, &Groups::deciles(&deciles)).unwrap();
/// assert_eq!(c.categories, ["(none)", "cheese", "wine"]);
/// // Decile 1 is A (40.00): wine 30 of 40 while wine is 30 of the 55 in total.
/// let wine = &c.rows[1];
/// assert_eq!((wine.group, wine.category, wine.revenue), (0, 2, 3000));
/// assert_eq!(wine.share, Some(0.75));
/// assert_eq!(wine.index, Some(100.0 * 0.75 / (3000.0 / 5500.0)));
/// ```
pub fn cube(tx: &Transactions, groups: &Groups) -> Result<Cube> {
    if groups.of.len() != tx.n_customers() {
        return Err(Error::Data(format!(
            "the groups cover {} customers, the transactions {}",
            groups.of.len(),
            tx.n_customers()
        )));
    }
    let axis = ProductAxis::new(tx);
    let (n_groups, n_cat) = (groups.labels.len(), axis.names.len());
    if groups.of.iter().flatten().any(|&g| g as usize >= n_groups) {
        return Err(Error::Data("a customer's group has no label".into()));
    }
    let cells = crate::parallel::customer_chunks(tx.n_customers())
        .into_par_iter()
        .map(|range| {
            let mut cells = Cells::new(n_groups, n_cat);
            let mut scratch = Scratch::new(n_cat);
            for c in range {
                if let Some(g) = groups.of[c] {
                    add_customer(tx, c, g as usize, &axis, &mut cells, &mut scratch);
                }
            }
            cells
        })
        .reduce(|| Cells::new(n_groups, n_cat), Cells::add);
    finish(tx, groups, axis, cells)
}

/// Per-category marks of the customer being added (customer index + 1; 0 = nobody yet)
/// and of the order run last counted, each with a sink entry for lines that do not count.
struct Scratch {
    bought: Vec<usize>,
    run_mark: Vec<u64>,
    /// Runs numbered across customers, so a mark never matches a run of another.
    run: u64,
    /// The order key of each of the customer's runs (the first `runs` entries).
    run_orders: Vec<u64>,
    /// Scratch for customers whose orders are recounted.
    pairs: Vec<(u32, u64)>,
}

impl Scratch {
    fn new(categories: usize) -> Scratch {
        Scratch {
            bought: vec![0; categories + 1],
            run_mark: vec![0; categories + 1],
            run: 0,
            run_orders: Vec::new(),
            pairs: Vec::new(),
        }
    }
}

/// Adds one customer's lines to their group's row of cells.
///
/// Orders are counted by runs: purchase lines of one order usually follow each other, so
/// a run of equal order keys is an order, and a category counts one order per run it
/// appears in. That holds when no order key starts two runs; otherwise the customer's
/// (category, order) pairs are sorted instead.
///
/// The loop has no branches on the data (which lines are purchases, which categories and
/// orders are new is unpredictable): lines that do not count write to a sink entry.
fn add_customer(
    tx: &Transactions,
    c: usize,
    g: usize,
    axis: &ProductAxis,
    cells: &mut Cells,
    sc: &mut Scratch,
) {
    let row = g * axis.names.len();
    let sink = axis.names.len();
    let mark = c + 1;
    cells.group_customers[g] += 1;
    let lines = tx.lines(c);
    if sc.run_orders.len() <= lines.len() {
        sc.run_orders.resize(lines.len() + 1, 0);
    }
    let mut runs = 0;
    let mut last_order = None;
    for i in lines {
        let k = axis.of(tx.category[i]);
        let cell = row + k;
        cells.lines[cell] = true;
        cells.revenue[cell] += i128::from(tx.amount[i]);
        let buys = tx.amount[i] > 0;
        let slot = if buys { k } else { sink };
        let new_buyer = buys & (sc.bought[slot] != mark);
        sc.bought[slot] = mark;
        cells.customers[cell] += u64::from(new_buyer);
        let order = tx.order[i];
        let new_run = buys & (last_order != Some(order));
        last_order = if buys { Some(order) } else { last_order };
        sc.run_orders[runs] = order;
        runs += usize::from(new_run);
        sc.run += u64::from(new_run);
        let new_order = buys & (sc.run_mark[slot] != sc.run);
        sc.run_mark[slot] = sc.run;
        cells.orders[cell] += u64::from(new_order);
    }
    if repeats(&mut sc.run_orders[..runs]) {
        recount_orders(tx, c, axis, &mut cells.orders[row..], &mut sc.pairs);
    }
}

/// Whether a key occurs twice (may reorder `keys`).
fn repeats(keys: &mut [u64]) -> bool {
    if keys.len() <= 8 {
        // Most customers have a few orders: comparing beats sorting.
        return (1..keys.len()).any(|j| keys[..j].contains(&keys[j]));
    }
    keys.sort_unstable();
    keys.windows(2).any(|w| w[0] == w[1])
}

/// Replaces customer `c`'s orders counted by runs with their distinct (category,
/// order) pairs, for the rare customer whose order's lines do not all follow each other.
fn recount_orders(
    tx: &Transactions,
    c: usize,
    axis: &ProductAxis,
    orders: &mut [u64],
    pairs: &mut Vec<(u32, u64)>,
) {
    let purchases = || tx.lines(c).filter(|&i| tx.amount[i] > 0);
    pairs.clear();
    let mut run = 0u64;
    let mut previous = None;
    for i in purchases() {
        if previous != Some(tx.order[i]) {
            previous = Some(tx.order[i]);
            run += 1;
        }
        pairs.push((axis.of(tx.category[i]) as u32, run));
    }
    pairs.sort_unstable();
    pairs.dedup();
    for &(k, _) in pairs.iter() {
        orders[k as usize] -= 1;
    }
    pairs.clear();
    pairs.extend(purchases().map(|i| (axis.of(tx.category[i]) as u32, tx.order[i])));
    pairs.sort_unstable();
    pairs.dedup();
    for &(k, _) in pairs.iter() {
        orders[k as usize] += 1;
    }
}

fn finish(tx: &Transactions, groups: &Groups, axis: ProductAxis, cells: Cells) -> Result<Cube> {
    let (n_groups, n_cat) = (groups.labels.len(), axis.names.len());
    let to_i64 = |v: i128, what: &dyn Fn() -> String| {
        i64::try_from(v).map_err(|_| {
            Error::Data(format!(
                "the revenue of {} exceeds 64-bit minor units",
                what()
            ))
        })
    };
    let mut group_revenue = Vec::with_capacity(n_groups);
    for g in 0..n_groups {
        let sum: i128 = cells.revenue[g * n_cat..(g + 1) * n_cat].iter().sum();
        group_revenue.push(to_i64(sum, &|| {
            format!("{} {}", groups.dimension.name(), groups.labels[g])
        })?);
    }
    let mut category_revenue = Vec::with_capacity(n_cat);
    for k in 0..n_cat {
        let sum: i128 = (0..n_groups).map(|g| cells.revenue[g * n_cat + k]).sum();
        category_revenue.push(to_i64(sum, &|| format!("category {}", axis.names[k]))?);
    }
    let total: i128 = category_revenue.iter().map(|&r| i128::from(r)).sum();
    let total_revenue = to_i64(total, &|| "all customers".into())?;
    let mut rows = Vec::new();
    for (g, &group_total) in group_revenue.iter().enumerate() {
        for (k, &category_total) in category_revenue.iter().enumerate() {
            let cell = g * n_cat + k;
            if !cells.lines[cell] {
                continue;
            }
            let revenue = to_i64(cells.revenue[cell], &|| {
                format!("{} {}", groups.labels[g], axis.names[k])
            })?;
            let share = (group_total > 0).then(|| revenue as f64 / group_total as f64);
            let category_share = (total_revenue > 0)
                .then(|| category_total as f64 / total_revenue as f64)
                .filter(|&s| s > 0.0);
            rows.push(CubeRow {
                group: g,
                category: k,
                customers: cells.customers[cell],
                orders: cells.orders[cell],
                revenue,
                penetration: cells.customers[cell] as f64 / cells.group_customers[g] as f64,
                share,
                index: share.zip(category_share).map(|(s, cs)| 100.0 * s / cs),
            });
        }
    }
    Ok(Cube {
        dimension: groups.dimension,
        groups: groups.labels.clone(),
        group_customers: cells.group_customers,
        group_revenue,
        categories: axis.names,
        category_revenue,
        total_revenue,
        rows,
        currency_decimals: tx.currency_decimals,
    })
}

/// `+` where a group over-buys (index ≥ 120), `-` where it under-buys (≤ 80).
///
/// ```
/// use custvalue::cube::index_mark;
/// assert_eq!((index_mark(Some(182.0)), index_mark(Some(64.0)), index_mark(Some(100.0))), ("+", "-", ""));
/// assert_eq!(index_mark(None), "");
/// ```
pub fn index_mark(index: Option<f64>) -> &'static str {
    match index {
        Some(i) if i >= OVER_INDEX => "+",
        Some(i) if i <= UNDER_INDEX => "-",
        _ => "",
    }
}

impl Cube {
    /// The cube as a frame: the group column named after the dimension (`decile` as an
    /// integer, the others as text), then `category, customers, orders, revenue,
    /// penetration, share, index`; money in currency units.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("tx.csv");
    /// # std::fs::write(&path, "customer_id,ts,amount,category\nA,2024-01-05,30,wine\nB,2024-01-06,-5,wine\n").unwrap();
    /// # let loaded = custvalue::load(&custvalue::LoadOptions::new([path.to_str().unwrap()])).unwrap();
    /// # let summary = custvalue::summarize(&loaded.transactions).unwrap();
    /// # let deciles = custvalue::deciles::assign(&summary, Default::default());
    /// let c = custvalue::cube::cube(&loaded.transactions, &custvalue::cube::Groups::deciles(&deciles)).unwrap();
    /// let frame = c.to_frame().unwrap();
    /// assert_eq!(frame.get_column_names(),
    ///     ["decile", "category", "customers", "orders", "revenue", "penetration", "share", "index"]);
    /// // B's decile has revenue -5: share and index are null.
    /// assert_eq!(frame.column("share").unwrap().null_count(), 1);
    /// ```
    pub fn to_frame(&self) -> Result<DataFrame> {
        let r = &self.rows;
        let name: PlSmallStr = self.dimension.name().into();
        let group = if self.dimension == Dimension::Decile {
            Column::new(
                name,
                r.iter()
                    .map(|x| self.groups[x.group].parse::<i64>().ok())
                    .collect::<Vec<_>>(),
            )
        } else {
            Column::new(
                name,
                r.iter()
                    .map(|x| self.groups[x.group].as_str())
                    .collect::<Vec<_>>(),
            )
        };
        let count = |f: fn(&CubeRow) -> u64| r.iter().map(|x| f(x) as i64).collect::<Vec<_>>();
        let columns = vec![
            group,
            Column::new(
                "category".into(),
                r.iter()
                    .map(|x| self.categories[x.category].as_str())
                    .collect::<Vec<_>>(),
            ),
            Column::new("customers".into(), count(|x| x.customers)),
            Column::new("orders".into(), count(|x| x.orders)),
            Column::new(
                "revenue".into(),
                r.iter()
                    .map(|x| money::minor_to_f64(x.revenue, self.currency_decimals))
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                "penetration".into(),
                r.iter().map(|x| x.penetration).collect::<Vec<_>>(),
            ),
            Column::new(
                "share".into(),
                r.iter().map(|x| x.share).collect::<Vec<_>>(),
            ),
            Column::new(
                "index".into(),
                r.iter().map(|x| x.index).collect::<Vec<_>>(),
            ),
        ];
        Ok(DataFrame::new(r.len(), columns)?)
    }

    /// Categories with the largest revenue (ties by name), at most `max`, in name order.
    pub fn shown_categories(&self, max: usize) -> Vec<usize> {
        let mut by_revenue: Vec<usize> = (0..self.categories.len()).collect();
        by_revenue.sort_by(|&a, &b| {
            self.category_revenue[b]
                .cmp(&self.category_revenue[a])
                .then(a.cmp(&b))
        });
        by_revenue.truncate(max);
        by_revenue.sort_unstable();
        by_revenue
    }

    /// One sentence from the data: the largest index, among categories other than
    /// `(none)` in groups of at least 30 customers (or of the largest group's size, when
    /// smaller), e.g. "decile 1 over-buys wine: index 182".
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("tx.csv");
    /// # std::fs::write(&path, "customer_id,ts,amount,category\nA,2024-01-05,30,wine\nA,2024-01-05,10,cheese\nB,2024-01-06,20,cheese\n").unwrap();
    /// # let loaded = custvalue::load(&custvalue::LoadOptions::new([path.to_str().unwrap()])).unwrap();
    /// # let summary = custvalue::summarize(&loaded.transactions).unwrap();
    /// # let deciles = custvalue::deciles::assign(&summary, Default::default());
    /// let c = custvalue::cube::cube(&loaded.transactions, &custvalue::cube::Groups::deciles(&deciles)).unwrap();
    /// assert_eq!(c.headline(), "decile 2 over-buys cheese: index 200");
    /// ```
    pub fn headline(&self) -> String {
        const MIN_GROUP: u64 = 30;
        let largest = self.group_customers.iter().copied().max().unwrap_or(0);
        let min_group = MIN_GROUP.min(largest);
        // The first row wins ties, so the sentence is stable.
        let best = self
            .rows
            .iter()
            .filter(|r| {
                self.group_customers[r.group] >= min_group
                    && r.customers > 0
                    && self.categories[r.category] != NONE_CATEGORY
            })
            .filter_map(|r| r.index.map(|i| (r, i)))
            .fold(None::<(&CubeRow, f64)>, |best, (r, i)| match best {
                Some((_, b)) if b >= i => best,
                _ => Some((r, i)),
            });
        let dim = self.dimension.name();
        match best {
            Some((r, i)) => format!(
                "{dim} {} {} {}: index {i:.0}",
                self.groups[r.group],
                if i > 100.0 {
                    "over-buys"
                } else {
                    "buys no category above average; its highest is"
                },
                self.categories[r.category],
            ),
            None => format!("no {dim} has a defined index: revenue is not positive"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_sorts_among_the_categories_by_bytes() {
        let tx = |cats: &[&str], codes: Vec<u32>| Transactions {
            ids: crate::transactions::CustomerIds::Int(vec![0]),
            offsets: vec![0, codes.len()],
            day: vec![0; codes.len()],
            amount: vec![1; codes.len()],
            profit: vec![1; codes.len()],
            order: vec![0; codes.len()],
            category: codes,
            categories: cats.iter().map(|s| s.to_string()).collect(),
            currency_decimals: 2,
            as_of: 1,
        };
        let axis = ProductAxis::new(&tx(&["!", "a", "b"], vec![0, NO_CATEGORY, 2]));
        assert_eq!(axis.names, ["!", "(none)", "a", "b"]);
        assert_eq!(
            (axis.of(0), axis.of(1), axis.of(2), axis.of(NO_CATEGORY)),
            (0, 2, 3, 1)
        );
        let axis = ProductAxis::new(&tx(&["(none)", "a"], vec![0, NO_CATEGORY, 1]));
        assert_eq!(axis.names, ["(none)", "a"]);
        assert_eq!((axis.of(0), axis.of(NO_CATEGORY)), (0, 0));
        let axis = ProductAxis::new(&tx(&["a"], vec![0]));
        assert_eq!(axis.names, ["a"]);
    }

    #[test]
    fn orders_split_over_several_runs_count_once() {
        // Lines (category, order): (a, 1) (b, 2) (a, 1) (a, 2) (b, 3 — a return).
        // a: orders 1 and 2; b: order 2 (order 3 is a return). Runs alone would give a 3.
        let tx = Transactions {
            ids: crate::transactions::CustomerIds::Int(vec![0, 1]),
            offsets: vec![0, 5, 6],
            day: vec![0; 6],
            amount: vec![5, 5, 5, 5, -5, 5],
            profit: vec![0; 6],
            order: vec![1, 2, 1, 2, 3, 9],
            category: vec![0, 1, 0, 0, 1, 0],
            categories: vec!["a".into(), "b".into()],
            currency_decimals: 2,
            as_of: 1,
        };
        let groups = Groups::deciles(&[1, 1]);
        let c = cube(&tx, &groups).unwrap();
        let got: Vec<(usize, u64, u64, i64)> = c
            .rows
            .iter()
            .map(|r| (r.category, r.customers, r.orders, r.revenue))
            .collect();
        assert_eq!(got, [(0, 2, 3, 20), (1, 1, 1, 0)]);
    }
}

//! Category affinity for cross-selling (JOB.md, "Category affinity"): for every ordered
//! pair of categories bought together by at least one customer, how many customers
//! bought both, the support, the confidence and the lift; and each customer's **next
//! category** — the B of the first pair, in that order, whose A they bought and whose B
//! they did not.
//!
//! Over customers with frequency ≥ 1, a customer "bought" a category when they have a
//! line of amount > 0 in it; lines without a category do not count. Pairs sort by lift
//! descending, compared exactly as the fraction both·N / (n_A·n_B) by cross-multiplying
//! in u128, then `both` descending, then A, then B by name bytes (category codes follow
//! name order, so codes compare the same way).
//!
//! Counting never scans the data per pair: each customer's bought categories are a small
//! list (found with per-category marks, no sorting), and pair counts go into a dense
//! categories × categories array (a hash map of pair keys beyond 512 categories),
//! accumulated by rayon over ranges of customers. Counts are integers, so every thread
//! count gives the same result. The u128 products are exact for counts below 2^42.
//!
//! Not for: the cube of groups × categories (see `cube`).

use std::cmp::Ordering;
use std::collections::HashMap;

use polars::prelude::*;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::summary::Summary;
use crate::transactions::{NO_CATEGORY, Transactions};

/// Up to this many categories, pair counts go into a dense array.
const DENSE_MAX_CATEGORIES: usize = 512;

/// One ordered pair (A, B), A ≠ B, with the counts its measures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    /// Category codes (indices into `Transactions::categories`).
    pub a: u32,
    pub b: u32,
    /// Customers who bought A and B.
    pub both: u64,
    /// Customers who bought A, and B.
    pub n_a: u64,
    pub n_b: u64,
    /// N: customers with frequency ≥ 1.
    pub customers: u64,
}

impl Pair {
    /// both / N.
    pub fn support(&self) -> f64 {
        self.both as f64 / self.customers as f64
    }

    /// both / n_A.
    pub fn confidence(&self) -> f64 {
        self.both as f64 / self.n_a as f64
    }

    /// confidence / (n_B / N) = both·N / (n_A·n_B), from exact integer products.
    ///
    /// ```
    /// let p = custvalue::affinity::Pair { a: 0, b: 1, both: 3, n_a: 3, n_b: 5, customers: 6 };
    /// assert_eq!(p.lift(), 1.2);
    /// assert_eq!((p.support(), p.confidence()), (0.5, 1.0));
    /// ```
    pub fn lift(&self) -> f64 {
        let num = u128::from(self.both) * u128::from(self.customers);
        let den = u128::from(self.n_a) * u128::from(self.n_b);
        num as f64 / den as f64
    }

    /// JOB.md's order: lift descending (exactly: both·n_A'·n_B' against both'·n_A·n_B,
    /// N being common), then both descending, then A, then B. Pairs of one computation
    /// share N.
    ///
    /// ```
    /// use custvalue::affinity::Pair;
    /// let p = |a, b, both, n_a, n_b| Pair { a, b, both, n_a, n_b, customers: 6 };
    /// // Lift 6/5 both ways; more customers first.
    /// assert!(p(1, 2, 3, 3, 5).rank_cmp(&p(0, 2, 2, 2, 5)).is_lt());
    /// assert!(p(0, 2, 2, 2, 5).rank_cmp(&p(2, 0, 2, 5, 2)).is_lt());
    /// ```
    pub fn rank_cmp(&self, other: &Pair) -> Ordering {
        let mine = u128::from(self.both) * u128::from(other.n_a) * u128::from(other.n_b);
        let theirs = u128::from(other.both) * u128::from(self.n_a) * u128::from(self.n_b);
        theirs
            .cmp(&mine)
            .then(other.both.cmp(&self.both))
            .then(self.a.cmp(&other.a))
            .then(self.b.cmp(&other.b))
    }
}

/// Every pair bought together, in JOB.md's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Affinity {
    /// Category names; pair codes index into them.
    pub categories: Vec<String>,
    /// N: customers with frequency ≥ 1.
    pub customers: u64,
    /// Customers who bought each category.
    pub bought: Vec<u64>,
    pub pairs: Vec<Pair>,
}

/// The categories one customer bought (`(none)` excluded): a list for pairs and marks
/// (customer + 1 per category) for constant-time membership.
struct Bought {
    /// One mark per category, then a sink for lines that do not count.
    mark: Vec<usize>,
    owner: usize,
    /// The first `len` entries are the customer's categories.
    list: Vec<u32>,
    len: usize,
}

impl Bought {
    fn new(categories: usize) -> Bought {
        Bought {
            mark: vec![0; categories + 1],
            owner: 0,
            list: vec![0; categories + 1],
            len: 0,
        }
    }

    /// Takes customer `c`'s categories; none for a customer without a purchase.
    fn fill(&mut self, tx: &Transactions, s: &Summary, c: usize) {
        self.owner = c + 1;
        self.len = 0;
        if s.frequency[c] == 0 {
            return;
        }
        let sink = self.mark.len() - 1;
        // Without branches on the data: which lines count and which categories are new
        // is unpredictable, and a mispredicted branch costs more than the writes.
        for i in tx.lines(c) {
            let k = tx.category[i];
            let counts = (tx.amount[i] > 0) & (k != NO_CATEGORY);
            let slot = if counts { k as usize } else { sink };
            let new = counts & (self.mark[slot] != self.owner);
            self.mark[slot] = self.owner;
            self.list[self.len] = k;
            self.len += usize::from(new);
        }
    }

    fn categories(&self) -> &[u32] {
        &self.list[..self.len]
    }

    fn contains(&self, k: u32) -> bool {
        (k as usize) < self.mark.len() - 1 && self.mark[k as usize] == self.owner
    }
}

/// Counts of one share of the customers.
struct Counts {
    customers: u64,
    bought: Vec<u64>,
    /// Dense: `n × n`, cell a·n + b for a < b. Sparse: counts by pair key
    /// (a << 32 | b), a < b.
    dense: Vec<u64>,
    sparse: HashMap<u64, u64>,
}

impl Counts {
    fn new(n: usize, dense: bool) -> Counts {
        Counts {
            customers: 0,
            bought: vec![0; n],
            dense: if dense { vec![0; n * n] } else { Vec::new() },
            sparse: HashMap::new(),
        }
    }

    fn add_set(&mut self, set: &[u32], n: usize) {
        self.customers += 1;
        for (i, &x) in set.iter().enumerate() {
            self.bought[x as usize] += 1;
            for &y in &set[i + 1..] {
                let (a, b) = (x.min(y), x.max(y));
                if self.dense.is_empty() {
                    *self
                        .sparse
                        .entry(u64::from(a) << 32 | u64::from(b))
                        .or_default() += 1;
                } else {
                    self.dense[a as usize * n + b as usize] += 1;
                }
            }
        }
    }

    fn add(mut self, mut other: Counts) -> Counts {
        self.customers += other.customers;
        for (x, y) in self.bought.iter_mut().zip(other.bought) {
            *x += y;
        }
        for (x, y) in self.dense.iter_mut().zip(other.dense) {
            *x += y;
        }
        if self.sparse.len() < other.sparse.len() {
            std::mem::swap(&mut self.sparse, &mut other.sparse);
        }
        for (key, count) in other.sparse {
            *self.sparse.entry(key).or_default() += count;
        }
        self
    }
}

/// Computes the pairs.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("tx.csv");
/// # std::fs::write(&path, "customer_id,ts,amount,category\n\
/// #     A,2024-01-05,30,wine\nA,2024-01-05,10,cheese\nB,2024-01-06,20,cheese\nC,2024-01-07,5,wine\n").unwrap();
/// # let loaded = custvalue::load(&custvalue::LoadOptions::new([path.to_str().unwrap()])).unwrap();
/// let tx = &loaded.transactions;
/// let summary = custvalue::summarize(tx).unwrap();
/// let aff = custvalue::affinity::affinity(tx, &summary);
/// assert_eq!(aff.categories, ["cheese", "wine"]);
/// // A bought both; N = 3, two customers each: lift = 1·3 / (2·2).
/// assert_eq!(aff.pairs.len(), 2);
/// assert_eq!((aff.pairs[0].a, aff.pairs[0].b, aff.pairs[0].both), (0, 1, 1));
/// assert_eq!(aff.pairs[0].lift(), 0.75);
/// ```
pub fn affinity(tx: &Transactions, s: &Summary) -> Affinity {
    affinity_with(tx, s, DENSE_MAX_CATEGORIES)
}

fn affinity_with(tx: &Transactions, s: &Summary, dense_max: usize) -> Affinity {
    let n = tx.categories.len();
    let dense = n <= dense_max;
    let counts = crate::parallel::customer_chunks(tx.n_customers().min(s.len()))
        .into_par_iter()
        .map(|range| {
            let mut counts = Counts::new(n, dense);
            let mut bought = Bought::new(n);
            for c in range {
                if s.frequency[c] > 0 {
                    bought.fill(tx, s, c);
                    counts.add_set(bought.categories(), n);
                }
            }
            counts
        })
        .reduce(|| Counts::new(n, dense), Counts::add);
    let mut together: Vec<(u32, u32, u64)> = Vec::new();
    if dense {
        for a in 0..n {
            for b in a + 1..n {
                let both = counts.dense[a * n + b];
                if both > 0 {
                    together.push((a as u32, b as u32, both));
                }
            }
        }
    } else {
        let mut keys: Vec<(u64, u64)> = counts.sparse.iter().map(|(&k, &v)| (k, v)).collect();
        keys.sort_unstable();
        together.extend(
            keys.iter()
                .map(|&(k, both)| ((k >> 32) as u32, k as u32, both)),
        );
    }
    let pair = |a: u32, b: u32, both: u64| Pair {
        a,
        b,
        both,
        n_a: counts.bought[a as usize],
        n_b: counts.bought[b as usize],
        customers: counts.customers,
    };
    let mut pairs: Vec<Pair> = together
        .iter()
        .flat_map(|&(a, b, both)| [pair(a, b, both), pair(b, a, both)])
        .collect();
    pairs.par_sort_unstable_by(Pair::rank_cmp);
    Affinity {
        categories: tx.categories.clone(),
        customers: counts.customers,
        bought: counts.bought,
        pairs,
    }
}

/// The affinity of the union of disjoint sets of customers, from each set's affinity
/// (all over the same category list): customer and pair counts add up, the pairs are
/// ranked again.
pub fn merge(parts: Vec<&Affinity>) -> Result<Affinity> {
    let Some(first) = parts.first() else {
        return Err(Error::Data("no affinity to merge".into()));
    };
    let n = first.categories.len();
    if parts.iter().any(|p| p.categories != first.categories) {
        return Err(Error::Data("affinities over different categories".into()));
    }
    let mut customers = 0u64;
    let mut bought = vec![0u64; n];
    let mut both: std::collections::BTreeMap<(u32, u32), u64> = Default::default();
    for p in &parts {
        customers += p.customers;
        for (k, b) in p.bought.iter().enumerate() {
            bought[k] += b;
        }
        for pair in &p.pairs {
            *both.entry((pair.a, pair.b)).or_insert(0) += pair.both;
        }
    }
    let mut pairs: Vec<Pair> = both
        .into_iter()
        .map(|((a, b), both)| Pair {
            a,
            b,
            both,
            n_a: bought[a as usize],
            n_b: bought[b as usize],
            customers,
        })
        .collect();
    pairs.par_sort_unstable_by(Pair::rank_cmp);
    Ok(Affinity {
        categories: first.categories.clone(),
        customers,
        bought,
        pairs,
    })
}

/// Each customer's next category as a code: the B of the first pair in `pairs` (give
/// them in [`affinity`]'s order, all of them) whose A the customer bought and whose B
/// they did not; None when no pair qualifies or the customer has no purchase.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("tx.csv");
/// # std::fs::write(&path, "customer_id,ts,amount,category\n\
/// #     A,2024-01-05,30,wine\nA,2024-01-05,10,cheese\nB,2024-01-06,20,cheese\nC,2024-01-07,5,wine\n").unwrap();
/// # let loaded = custvalue::load(&custvalue::LoadOptions::new([path.to_str().unwrap()])).unwrap();
/// let tx = &loaded.transactions;
/// let summary = custvalue::summarize(tx).unwrap();
/// let aff = custvalue::affinity::affinity(tx, &summary);
/// let next = custvalue::affinity::next_category_codes(tx, &summary, &aff.pairs);
/// assert_eq!(next, vec![None, Some(1), Some(0)]); // A has both; B: wine; C: cheese
/// ```
pub fn next_category_codes(tx: &Transactions, s: &Summary, pairs: &[Pair]) -> Vec<Option<u32>> {
    // For each A, its pairs' Bs in rank order: a customer skips at most as many entries
    // as they have categories.
    let width = pairs
        .iter()
        .map(|p| p.a.max(p.b) as usize + 1)
        .max()
        .unwrap_or(0);
    let mut by_a: Vec<Vec<(u32, u32)>> = vec![Vec::new(); width];
    for (rank, p) in pairs.iter().enumerate() {
        by_a[p.a as usize].push((rank as u32, p.b));
    }
    let parts: Vec<Vec<Option<u32>>> =
        crate::parallel::customer_chunks(tx.n_customers().min(s.len()))
            .into_par_iter()
            .map(|range| {
                let mut bought = Bought::new(tx.categories.len());
                range
                    .map(|c| {
                        bought.fill(tx, s, c);
                        bought
                            .categories()
                            .iter()
                            .filter_map(|&a| {
                                by_a.get(a as usize)?
                                    .iter()
                                    .find(|&&(_, b)| !bought.contains(b))
                            })
                            .min()
                            .map(|&(_, b)| b)
                    })
                    .collect()
            })
            .collect();
    parts.concat()
}

/// Each customer's next category by name (see [`next_category_codes`]): the column the
/// segment file carries for cross-selling offers.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("tx.csv");
/// # std::fs::write(&path, "customer_id,ts,amount,category\n\
/// #     A,2024-01-05,30,wine\nA,2024-01-05,10,cheese\nB,2024-01-06,20,cheese\nC,2024-01-07,-5,wine\n").unwrap();
/// # let loaded = custvalue::load(&custvalue::LoadOptions::new([path.to_str().unwrap()])).unwrap();
/// let tx = &loaded.transactions;
/// let summary = custvalue::summarize(tx).unwrap();
/// let aff = custvalue::affinity::affinity(tx, &summary);
/// let next = custvalue::affinity::next_category(tx, &summary, &aff.pairs);
/// assert_eq!(next, vec![None, Some("wine".to_string()), None]); // C only returned wine
/// ```
pub fn next_category(tx: &Transactions, s: &Summary, pairs: &[Pair]) -> Vec<Option<String>> {
    next_category_codes(tx, s, pairs)
        .into_iter()
        .map(|k| k.and_then(|k| tx.categories.get(k as usize).cloned()))
        .collect()
}

impl Affinity {
    /// The first `top` pairs (all when None) as a frame: `category_a, category_b, both,
    /// support, confidence, lift`.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("tx.csv");
    /// # std::fs::write(&path, "customer_id,ts,amount,category\nA,2024-01-05,30,wine\nA,2024-01-05,10,cheese\n").unwrap();
    /// # let loaded = custvalue::load(&custvalue::LoadOptions::new([path.to_str().unwrap()])).unwrap();
    /// # let summary = custvalue::summarize(&loaded.transactions).unwrap();
    /// let aff = custvalue::affinity::affinity(&loaded.transactions, &summary);
    /// let frame = aff.to_frame(None).unwrap();
    /// assert_eq!(frame.get_column_names(),
    ///     ["category_a", "category_b", "both", "support", "confidence", "lift"]);
    /// assert_eq!(frame.height(), 2);
    /// ```
    pub fn to_frame(&self, top: Option<usize>) -> Result<DataFrame> {
        let p = &self.pairs[..top.unwrap_or(usize::MAX).min(self.pairs.len())];
        let name = |k: u32| self.categories[k as usize].as_str();
        let columns = vec![
            Column::new(
                "category_a".into(),
                p.iter().map(|x| name(x.a)).collect::<Vec<_>>(),
            ),
            Column::new(
                "category_b".into(),
                p.iter().map(|x| name(x.b)).collect::<Vec<_>>(),
            ),
            Column::new(
                "both".into(),
                p.iter().map(|x| x.both as i64).collect::<Vec<_>>(),
            ),
            Column::new(
                "support".into(),
                p.iter().map(Pair::support).collect::<Vec<_>>(),
            ),
            Column::new(
                "confidence".into(),
                p.iter().map(Pair::confidence).collect::<Vec<_>>(),
            ),
            Column::new("lift".into(), p.iter().map(Pair::lift).collect::<Vec<_>>()),
        ];
        Ok(DataFrame::new(p.len(), columns)?)
    }

    /// One sentence from the data: the strongest pair bought together by at least 10
    /// customers (or by the most customers, when no pair reaches 10).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let path = dir.path().join("tx.csv");
    /// # std::fs::write(&path, "customer_id,ts,amount,category\n\
    /// #     A,2024-01-05,30,wine\nA,2024-01-05,10,cheese\nB,2024-01-06,20,cheese\nC,2024-01-07,5,bread\n").unwrap();
    /// # let loaded = custvalue::load(&custvalue::LoadOptions::new([path.to_str().unwrap()])).unwrap();
    /// # let summary = custvalue::summarize(&loaded.transactions).unwrap();
    /// let aff = custvalue::affinity::affinity(&loaded.transactions, &summary);
    /// assert_eq!(
    ///     aff.headline(),
    ///     "customers who buy cheese buy wine 1.50 times as often as the average customer (lift 1.50, 1 customer bought both)"
    /// );
    /// ```
    pub fn headline(&self) -> String {
        const MIN_BOTH: u64 = 10;
        let most = self.pairs.iter().map(|p| p.both).max().unwrap_or(0);
        let min_both = MIN_BOTH.min(most);
        match self.pairs.iter().find(|p| p.both >= min_both) {
            Some(p) => format!(
                "customers who buy {} buy {} {:.2} times as often as the average customer (lift {:.2}, {} customer{} bought both)",
                self.categories[p.a as usize],
                self.categories[p.b as usize],
                p.lift(),
                p.lift(),
                crate::output::thousands(p.both),
                if p.both == 1 { "" } else { "s" }
            ),
            None => "no two categories were bought by the same customer".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transactions::CustomerIds;

    /// Customers' bought categories as transactions (one line per category, amount 1).
    fn tx_of(sets: &[&[u32]], n_cat: usize) -> (Transactions, Summary) {
        let mut offsets = vec![0];
        let mut category = Vec::new();
        for set in sets {
            category.extend_from_slice(set);
            offsets.push(category.len());
        }
        let n = category.len();
        let tx = Transactions {
            ids: CustomerIds::Int((0..sets.len() as i64).collect()),
            offsets,
            day: vec![0; n],
            amount: vec![1; n],
            profit: vec![1; n],
            order: vec![0; n],
            category,
            categories: (0..n_cat).map(|k| format!("k{k:02}")).collect(),
            currency_decimals: 2,
            as_of: 1,
        };
        let s = crate::summarize(&tx).unwrap();
        (tx, s)
    }

    #[test]
    fn dense_and_sparse_counting_agree() {
        let sets: Vec<Vec<u32>> = (0..200u32)
            .map(|c| (0..12).filter(|k| (c * 7 + k * 3) % 5 < 2).collect())
            .collect();
        let refs: Vec<&[u32]> = sets.iter().map(|s| s.as_slice()).collect();
        let (tx, s) = tx_of(&refs, 12);
        let dense = affinity_with(&tx, &s, 512);
        let sparse = affinity_with(&tx, &s, 0);
        assert!(!dense.pairs.is_empty());
        assert_eq!(dense, sparse);
    }

    #[test]
    fn equal_lifts_rank_by_customers_then_names() {
        // N = 6; bread 0 {A, D}, cheese 1 {B, C, D}, wine 2 {A, B, C, D, G}; F bought
        // nothing with a category. lift(c,w) = 3·6/15 = lift(b,w) = 2·6/10 = 6/5.
        let none: &[u32] = &[NO_CATEGORY];
        let (tx, s) = tx_of(&[&[0, 2], &[1, 2], &[1, 2], &[0, 1, 2], none, &[2]], 3);
        let aff = affinity(&tx, &s);
        assert_eq!(aff.customers, 6);
        let order: Vec<(u32, u32, u64)> = aff.pairs.iter().map(|p| (p.a, p.b, p.both)).collect();
        assert_eq!(
            order,
            [
                (1, 2, 3),
                (2, 1, 3),
                (0, 2, 2),
                (2, 0, 2),
                (0, 1, 1),
                (1, 0, 1)
            ]
        );
        assert_eq!(aff.pairs[0].lift(), aff.pairs[2].lift());
        let next = next_category_codes(&tx, &s, &aff.pairs);
        assert_eq!(next, [Some(1), Some(0), Some(0), None, None, Some(1)]);
    }
}

//! RFM scores and named segments (JOB.md, "RFM scores").
//!
//! R, F and M are NTILE(k) scores over the customers with at least one purchase, ties
//! broken by customer id, so every score is reproducible by a SQL `NTILE` with the same
//! ORDER BY. Segments come from a rule table (first match wins): a documented default on
//! the 1–5 scale, or the user's own TOML table.
//!
//! Not for: deciles (see `deciles`), lifecycle stages (see `lifecycle`).

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::summary::Summary;

/// The NTILE group (1-based) of 0-based position `i` among `n` rows in `k` groups: the
/// first `n mod k` groups have ⌊n/k⌋+1 rows, the rest ⌊n/k⌋.
pub fn ntile(i: usize, n: usize, k: usize) -> usize {
    debug_assert!(i < n && k > 0);
    let q = n / k;
    let r = n % k;
    let big = (q + 1) * r;
    if i < big {
        i / (q + 1) + 1
    } else {
        r + (i - big) / q + 1
    }
}

/// Assigns NTILE(k) groups to `members` (customer indices) after sorting them by `cmp`;
/// returns the group per customer, 0 for customers not in `members`.
pub fn ntile_by(
    n_customers: usize,
    mut members: Vec<u32>,
    k: usize,
    cmp: impl Fn(u32, u32) -> std::cmp::Ordering + Sync,
) -> Vec<u8> {
    use rayon::slice::ParallelSliceMut;
    members.par_sort_unstable_by(|&a, &b| cmp(a, b));
    // A plain loop, apart from `place_ntiles`: this is the reference the tests hold
    // `ntile_by_key` to.
    let mut group = vec![0u8; n_customers];
    let n = members.len();
    for (i, &c) in members.iter().enumerate() {
        group[c as usize] = ntile(i, n, k) as u8;
    }
    group
}

/// The group per customer when `order[i]` names the customer at position `i`: NTILE(k)
/// of the position, 0 for customers not in `order`. Positions are placed side by side;
/// each customer appears once, so every slot is written at most once and the result does
/// not depend on the number of threads.
fn place_ntiles<T: Sync>(
    n_customers: usize,
    order: &[T],
    k: usize,
    customer: impl Fn(&T) -> u32 + Sync,
) -> Vec<u8> {
    use rayon::prelude::*;
    use std::sync::atomic::{AtomicU8, Ordering};
    let group: Vec<AtomicU8> = (0..n_customers).map(|_| AtomicU8::new(0)).collect();
    let n = order.len();
    // Group g takes the positions from the first of g on: one run per group, no division
    // per position.
    let first = |g: usize| (g - 1) * (n / k) + (g - 1).min(n % k);
    for g in 1..=k {
        order[first(g)..first(g + 1)]
            .par_iter()
            .for_each(|t| group[customer(t) as usize].store(g as u8, Ordering::Relaxed));
    }
    group.into_iter().map(AtomicU8::into_inner).collect()
}

/// Assigns NTILE(k) groups to the customers for which `member` holds, ordered by `key`
/// ascending, then customer index: the order `ntile_by` gives with that comparison, found
/// by sorting (key, index) pairs, which compare without looking anything up (2–3× faster
/// on a million customers). For a descending key pass `!key` (bitwise not:
/// order-reversing, never overflows). Non-members get group 0.
pub fn ntile_by_key(
    n_customers: usize,
    member: impl Fn(u32) -> bool + Sync,
    k: usize,
    key: impl Fn(u32) -> i64 + Sync,
) -> Vec<u8> {
    use rayon::prelude::*;
    // Members are picked on the fly, in runs of customers (one plain loop each): no list
    // of them is held beside the sort's pairs.
    const RUN: u32 = 1 << 14;
    let runs = (n_customers as u32).div_ceil(RUN);
    let member = &member;
    let members = move || {
        (0..runs).into_par_iter().flat_map_iter(move |r| {
            (r * RUN..(r * RUN).saturating_add(RUN).min(n_customers as u32))
                .filter(move |&c| member(c))
        })
    };
    // When the keys' range leaves room for the customer index in 64 bits, each pair is
    // packed into one u64 ((key - least) above the index): half the memory of a pair,
    // the same order.
    let (least, most) = members()
        .fold(
            || (i64::MAX, i64::MIN),
            |(least, most), c| {
                let v = key(c);
                (least.min(v), most.max(v))
            },
        )
        .reduce(|| (i64::MAX, i64::MIN), |a, b| (a.0.min(b.0), a.1.max(b.1)));
    let index_bits = usize::BITS - n_customers.leading_zeros();
    let span = (i128::from(most) - i128::from(least)).max(0) as u128;
    if index_bits < 64 && span < 1u128 << (64 - index_bits) {
        let mut packed: Vec<u64> = members()
            .map(|c| ((i128::from(key(c)) - i128::from(least)) as u64) << index_bits | u64::from(c))
            .collect();
        packed.par_sort_unstable();
        let index = (1u64 << index_bits) - 1;
        place_ntiles(n_customers, &packed, k, |&p| (p & index) as u32)
    } else {
        let mut keyed: Vec<(i64, u32)> = members().map(|c| (key(c), c)).collect();
        keyed.par_sort_unstable();
        place_ntiles(n_customers, &keyed, k, |&(_, c)| c)
    }
}

/// Scores per customer; 0 marks a customer without a purchase (null in outputs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RfmScores {
    pub k: u8,
    pub r: Vec<u8>,
    pub f: Vec<u8>,
    pub m: Vec<u8>,
}

/// Allowed numbers of score groups.
pub const ALLOWED_K: [u8; 4] = [3, 4, 5, 10];

/// Checks a number of score groups.
pub fn check_k(k: u8) -> Result<()> {
    if ALLOWED_K.contains(&k) {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "RFM groups k must be 3, 4, 5 or 10, got {k}"
        )))
    }
}

/// Computes R, F and M scores with `k` groups.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("tx.csv");
/// # std::fs::write(&path, "customer_id,ts,amount\nA,2024-01-01,10\nB,2024-01-05,20\nB,2024-01-06,5\n").unwrap();
/// # let loaded = custvalue::load(&custvalue::LoadOptions::new([path.to_str().unwrap()])).unwrap();
/// let summary = custvalue::summarize(&loaded.transactions).unwrap();
/// let scores = custvalue::rfm::score(&summary, 5).unwrap();
/// assert_eq!(scores.cell(1).as_deref(), Some("222")); // B: more recent, more often, more money
/// ```
pub fn score(s: &Summary, k: u8) -> Result<RfmScores> {
    check_k(k)?;
    let buyer = |c: u32| s.frequency[c as usize] > 0;
    let n = s.len();
    let kk = usize::from(k);
    let recency = |c: u32| s.recency_days(c as usize).unwrap_or(i32::MAX);
    // R: more recent (fewer days) scores higher, so days descending.
    // Three independent sorts, side by side: one's serial placing overlaps another's sort.
    let (r, (f, m)) = rayon::join(
        || ntile_by_key(n, buyer, kk, |c| !i64::from(recency(c))),
        || {
            rayon::join(
                || ntile_by_key(n, buyer, kk, |c| i64::from(s.frequency[c as usize])),
                || ntile_by_key(n, buyer, kk, |c| s.monetary[c as usize]),
            )
        },
    );
    Ok(RfmScores { k, r, f, m })
}

impl RfmScores {
    /// "545"; with k = 10 the scores are joined by '-' ("10-4-7") to stay unambiguous.
    pub fn cell(&self, c: usize) -> Option<String> {
        (self.r[c] > 0).then(|| {
            if self.k >= 10 {
                format!("{}-{}-{}", self.r[c], self.f[c], self.m[c])
            } else {
                format!("{}{}{}", self.r[c], self.f[c], self.m[c])
            }
        })
    }

    /// R + F + M.
    pub fn total(&self, c: usize) -> Option<u8> {
        (self.r[c] > 0).then(|| self.r[c] + self.f[c] + self.m[c])
    }
}

/// One rule of a segment table: inclusive score ranges; the first rule that matches wins.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentRule {
    pub name: String,
    #[serde(default = "full_range")]
    pub r: [u8; 2],
    #[serde(default = "full_range")]
    pub f: [u8; 2],
    #[serde(default = "full_range")]
    pub m: [u8; 2],
}

fn full_range() -> [u8; 2] {
    [1, u8::MAX]
}

/// A segment table and the scale its ranges are written on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentRules {
    /// The score scale the ranges use; scores of another k are rescaled to it
    /// (s' = ⌈s × scale / k⌉). Default 5.
    #[serde(default = "five")]
    pub scale: u8,
    /// Name for customers no rule matches.
    #[serde(default = "other")]
    pub otherwise: String,
    #[serde(rename = "segment")]
    pub rules: Vec<SegmentRule>,
}

fn five() -> u8 {
    5
}

fn other() -> String {
    "Other".into()
}

/// The default table (1–5 scale), in match order.
pub const DEFAULT_SEGMENTS: &[(&str, [u8; 2], [u8; 2], [u8; 2])] = &[
    ("Champions", [4, 5], [4, 5], [4, 5]),
    ("Loyal", [3, 5], [4, 5], [1, 5]),
    ("Can't lose them", [1, 2], [4, 5], [4, 5]),
    ("At risk", [1, 2], [3, 5], [1, 5]),
    ("Potential loyalist", [4, 5], [2, 3], [1, 5]),
    ("New", [5, 5], [1, 1], [1, 5]),
    ("Promising", [4, 4], [1, 1], [1, 5]),
    ("Need attention", [3, 3], [2, 3], [1, 5]),
    ("About to sleep", [3, 3], [1, 1], [1, 5]),
    ("Hibernating", [2, 2], [1, 2], [1, 5]),
    ("Lost", [1, 1], [1, 2], [1, 5]),
];

impl Default for SegmentRules {
    fn default() -> Self {
        SegmentRules {
            scale: 5,
            otherwise: other(),
            rules: DEFAULT_SEGMENTS
                .iter()
                .map(|(name, r, f, m)| SegmentRule {
                    name: name.to_string(),
                    r: *r,
                    f: *f,
                    m: *m,
                })
                .collect(),
        }
    }
}

impl SegmentRules {
    /// Reads a user table: `[[segment]] name = "VIP"  r = [4, 5]  f = [4, 5]` (m optional).
    pub fn read(path: &Path) -> Result<SegmentRules> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let rules: SegmentRules = toml::from_str(&text).map_err(|e| {
            Error::Usage(format!("{}: {}", path.display(), e.to_string().trim_end()))
        })?;
        rules
            .check()
            .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
        Ok(rules)
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.rules.is_empty() {
            return Err("the segment table has no [[segment]] rules".into());
        }
        if !ALLOWED_K.contains(&self.scale) {
            return Err(format!("scale must be 3, 4, 5 or 10, got {}", self.scale));
        }
        for rule in &self.rules {
            for (axis, [lo, hi]) in [("r", rule.r), ("f", rule.f), ("m", rule.m)] {
                if lo > hi || lo == 0 {
                    return Err(format!(
                        "segment {:?}: {axis} range [{lo}, {hi}] is empty or starts below 1",
                        rule.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// The segment of one customer (None without a purchase).
    pub fn segment(&self, scores: &RfmScores, c: usize) -> Option<&str> {
        if scores.r[c] == 0 {
            return None;
        }
        let rescale = |s: u8| -> u8 {
            if scores.k == self.scale {
                s
            } else {
                (u16::from(s) * u16::from(self.scale)).div_ceil(u16::from(scores.k)) as u8
            }
        };
        let (r, f, m) = (
            rescale(scores.r[c]),
            rescale(scores.f[c]),
            rescale(scores.m[c]),
        );
        let within = |v: u8, [lo, hi]: [u8; 2]| lo <= v && v <= hi;
        Some(
            self.rules
                .iter()
                .find(|rule| within(r, rule.r) && within(f, rule.f) && within(m, rule.m))
                .map_or(self.otherwise.as_str(), |rule| rule.name.as_str()),
        )
    }

    /// Segment names in table order, then the fallback.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for r in &self.rules {
            if !names.contains(&r.name.as_str()) {
                names.push(&r.name);
            }
        }
        names.push(&self.otherwise);
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntile_by_key_equals_ntile_by_the_same_comparison() {
        // Many ties, extreme values, and members that skip customers.
        // Keys spanning all of i64 (sorted as pairs) and keys in a narrow range (packed).
        for extremes in [true, false] {
            ntile_by_key_agrees(extremes);
        }
    }

    fn ntile_by_key_agrees(extremes: bool) {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let values: Vec<i64> = (0..5_000)
            .map(|i| {
                let x = crate::xorshift(&mut x);
                match i % 50 {
                    0 if extremes => i64::MIN,
                    1 if extremes => i64::MAX,
                    _ => (x % 40) as i64 - 20,
                }
            })
            .collect();
        let members: Vec<u32> = (0..5_000u32).filter(|c| c % 7 != 3).collect();
        for k in [3, 4, 5, 10] {
            let ascending = ntile_by(values.len(), members.clone(), k, |a, b| {
                values[a as usize].cmp(&values[b as usize]).then(a.cmp(&b))
            });
            let member = |c: u32| c % 7 != 3;
            let by_key = ntile_by_key(values.len(), member, k, |c| values[c as usize]);
            assert_eq!(by_key, ascending, "k = {k}");
            let descending = ntile_by(values.len(), members.clone(), k, |a, b| {
                values[b as usize].cmp(&values[a as usize]).then(a.cmp(&b))
            });
            let by_key = ntile_by_key(values.len(), member, k, |c| !values[c as usize]);
            assert_eq!(by_key, descending, "k = {k}, descending");
            assert_ne!(ascending, descending);
        }
    }

    #[test]
    fn ntile_matches_the_sql_definition() {
        // 7 rows in 3 groups: sizes 3, 2, 2.
        let groups: Vec<usize> = (0..7).map(|i| ntile(i, 7, 3)).collect();
        assert_eq!(groups, vec![1, 1, 1, 2, 2, 3, 3]);
        // Fewer rows than groups: one row each.
        assert_eq!(
            (0..3).map(|i| ntile(i, 3, 5)).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        for n in 1..60 {
            for k in [3, 4, 5, 10] {
                let mut sizes = vec![0; k + 1];
                for i in 0..n {
                    sizes[ntile(i, n, k)] += 1;
                }
                for (g, &size) in sizes.iter().enumerate().skip(1) {
                    let want = n / k + usize::from(g <= n % k);
                    assert_eq!(size, want, "n={n} k={k} g={g}");
                }
            }
        }
    }

    #[test]
    fn default_table_covers_every_score() {
        let rules = SegmentRules::default();
        for k in ALLOWED_K {
            for r in 1..=k {
                for f in 1..=k {
                    for m in 1..=k {
                        let s = RfmScores {
                            k,
                            r: vec![r],
                            f: vec![f],
                            m: vec![m],
                        };
                        assert_ne!(rules.segment(&s, 0), Some("Other"), "{r}{f}{m}/{k}");
                    }
                }
            }
        }
        let s = RfmScores {
            k: 5,
            r: vec![5, 1, 0],
            f: vec![5, 1, 0],
            m: vec![5, 1, 0],
        };
        assert_eq!(rules.segment(&s, 0), Some("Champions"));
        assert_eq!(rules.segment(&s, 1), Some("Lost"));
        assert_eq!(rules.segment(&s, 2), None);
    }

    #[test]
    fn user_tables_parse_and_are_checked() {
        let t: SegmentRules =
            toml::from_str("[[segment]]\nname = \"VIP\"\nr = [4, 5]\nf = [4, 5]\n").unwrap();
        assert_eq!(t.rules[0].m, [1, u8::MAX]);
        assert!(t.check().is_ok());
        let bad: SegmentRules = toml::from_str("[[segment]]\nname = \"x\"\nr = [5, 4]\n").unwrap();
        assert!(bad.check().is_err());
        assert!(
            toml::from_str::<SegmentRules>("[[segment]]\nname = \"x\"\nrr = [1, 2]\n").is_err()
        );
    }
}

//! Customer summaries prepared for fast, repeated likelihood evaluation, and the
//! deterministic parallel sums the fits are built on.
//!
//! A fit evaluates the log-likelihood and its gradient a few dozen times over every
//! customer. Three things make that cheap: identical records are evaluated once
//! (weighted), terms that depend on x alone (ln Γ(r+x), ψ(r+x), ...) are computed
//! once per distinct x, and the per-record work runs in parallel over fixed-size
//! chunks whose partial sums are added in chunk order, so the result is the same bits
//! at any thread count.
//!
//! Not for: the models' formulas (each model file) or the optimiser (`optim`).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};

use rayon::prelude::*;

use super::Customer;

/// Records per chunk of a parallel sum: large enough to amortise scheduling, small
/// enough that two cores share a million records evenly.
pub(super) const CHUNK: usize = 4096;

/// One distinct customer record with its multiplicity and the index of its x in
/// [`Prepared::xs`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Row {
    pub x: f64,
    pub t_x: f64,
    pub t: f64,
    pub w: f64,
    pub xi: u32,
}

/// Distinct records (in order of first appearance) and the distinct x values
/// (ascending) with their total weights.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Prepared {
    pub rows: Vec<Row>,
    pub xs: Vec<f64>,
    pub x_weights: Vec<f64>,
    pub total_weight: f64,
}

/// A multiply-rotate hasher for the 64-bit keys of the de-duplication (the
/// standard SipHash costs more than the rest of the preparation together).
#[derive(Default)]
struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type MixMap<K, V> = HashMap<K, V, BuildHasherDefault<MixHasher>>;

impl Prepared {
    /// Validated customers (see `validate_for_fit`) → distinct weighted rows.
    pub fn new(data: &[Customer]) -> Prepared {
        let mut index: MixMap<(u64, u64, u64), usize> = MixMap::default();
        index.reserve(data.len() / 2);
        let mut rows: Vec<Row> = Vec::new();
        for c in data {
            let key = (c.x.to_bits(), c.t_x.to_bits(), c.t.to_bits());
            match index.entry(key) {
                Entry::Occupied(i) => rows[*i.get()].w += 1.0,
                Entry::Vacant(slot) => {
                    slot.insert(rows.len());
                    rows.push(Row {
                        x: c.x,
                        t_x: c.t_x,
                        t: c.t,
                        w: 1.0,
                        xi: 0,
                    });
                }
            }
        }
        let mut xs: Vec<f64> = rows.iter().map(|r| r.x).collect();
        xs.sort_unstable_by(f64::total_cmp);
        xs.dedup();
        let position: MixMap<u64, u32> = xs
            .iter()
            .enumerate()
            .map(|(i, x)| (x.to_bits(), i as u32))
            .collect();
        let mut x_weights = vec![0.0; xs.len()];
        for r in &mut rows {
            r.xi = position[&r.x.to_bits()];
            x_weights[r.xi as usize] += r.w;
        }
        Prepared {
            rows,
            xs,
            x_weights,
            total_weight: data.len() as f64,
        }
    }
}

/// Every `k`-th element (k ≥ 1) from the first: a deterministic subsample of about
/// `target` elements, for a cheap first fit whose optimum starts the full one.
pub(super) fn subsample<T: Clone>(data: &[T], target: usize) -> Vec<T> {
    let k = data.len().div_ceil(target.max(1)).max(1);
    data.iter().step_by(k).cloned().collect()
}

/// Σ over `rows` of a vector of `K` figures that `add` accumulates for one row.
/// Chunks of [`CHUNK`] rows are summed in parallel, each plainly in row order,
/// and the partial sums are then added in chunk order with Neumaier compensation:
/// the result does not depend on the number of threads.
pub(super) fn par_sum<T: Sync, const K: usize>(
    rows: &[T],
    add: impl Fn(&T, &mut [f64; K]) + Sync,
) -> [f64; K] {
    let partial = |chunk: &[T]| {
        let mut acc = [0.0; K];
        for r in chunk {
            add(r, &mut acc);
        }
        acc
    };
    let parts: Vec<[f64; K]> = if rows.len() <= CHUNK {
        vec![partial(rows)]
    } else {
        rows.par_chunks(CHUNK).map(partial).collect()
    };
    let mut total = [0.0; K];
    let mut comp = [0.0; K];
    for p in &parts {
        for k in 0..K {
            super::neumaier_add(&mut total[k], &mut comp[k], p[k]);
        }
    }
    let mut out = [0.0; K];
    for k in 0..K {
        out[k] = total[k] + comp[k];
    }
    out
}

/// ln(1 + eᴰ) and the logistic 1/(1 + e⁻ᴰ) from one exponential, stable for
/// either sign of D.
#[inline]
pub(super) fn softplus_and_logistic(d: f64) -> (f64, f64) {
    let e = (-d.abs()).exp();
    let softplus = d.max(0.0) + e.ln_1p();
    let logistic = if d >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    };
    (softplus, logistic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_sum_is_the_same_bits_at_any_thread_count() {
        let rows: Vec<f64> = (0..50_000)
            .map(|i| ((i * 7919) % 1000) as f64 * 1e-3 + 1e6)
            .collect();
        let sum = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool")
                .install(|| {
                    par_sum(&rows, |v, acc: &mut [f64; 2]| {
                        acc[0] += v;
                        acc[1] += v.ln();
                    })
                })
        };
        let one = sum(1);
        assert_eq!(one.map(f64::to_bits), sum(2).map(f64::to_bits));
        assert_eq!(one.map(f64::to_bits), sum(3).map(f64::to_bits));
        // And it is the sum: against a plain sequential reference.
        let plain: f64 = rows.iter().sum();
        assert!((one[0] - plain).abs() < 1e-9 * plain);
    }

    #[test]
    fn preparation_weights_distinct_records() {
        let c = |x: f64, t_x: f64, t: f64| Customer { x, t_x, t };
        let data = [
            c(0.0, 0.0, 10.0),
            c(2.0, 3.0, 10.0),
            c(0.0, 0.0, 10.0),
            c(1.0, 3.0, 10.0),
            c(2.0, 3.0, 10.0),
        ];
        let p = Prepared::new(&data);
        assert_eq!(p.rows.len(), 3);
        assert_eq!(p.xs, vec![0.0, 1.0, 2.0]);
        assert_eq!(p.x_weights, vec![2.0, 1.0, 2.0]);
        assert_eq!(p.total_weight, 5.0);
        assert_eq!((p.rows[1].x, p.rows[1].w, p.rows[1].xi), (2.0, 2.0, 2));
        assert_eq!(subsample(&[1, 2, 3, 4, 5, 6, 7], 3), vec![1, 4, 7]);
    }

    #[test]
    fn softplus_and_logistic_agree_with_direct_forms() {
        for d in [-800.0, -30.0, -1.0, 0.0, 0.5, 30.0, 800.0] {
            let (sp, l) = softplus_and_logistic(d);
            let direct_l = 1.0 / (1.0 + (-d as f64).exp());
            assert!((l - direct_l).abs() < 1e-15, "{d}");
            if d.abs() < 30.0 {
                assert!((sp - d.exp().ln_1p()).abs() < 1e-14, "{d}");
            }
            assert!(sp.is_finite());
        }
    }
}

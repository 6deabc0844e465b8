//! Helpers of the parallel kernels: customer ranges for the pool, ordered prefix sums,
//! tallies, and the hashes that spread keys over shards and partitions. Integer results
//! only, so none of them depends on the number of threads.
//!
//! Not for: anything that knows what a customer or a line is (see `transactions`).

use rayon::prelude::*;

/// Customer ranges for the parallel kernels: a few per worker, each summed into its own
/// dense arrays. Sums are integers, so neither the ranges nor the order in which their
/// sums are added change a result.
pub fn customer_chunks(n: usize) -> Vec<std::ops::Range<usize>> {
    let per = (n / (rayon::current_num_threads() * 8)).max(4096);
    (0..n).step_by(per).map(|s| s..(s + per).min(n)).collect()
}

/// The sums of `values[..end]` for every end in `ends` (ascending, distinct, the first
/// 0, none past the end): the spans between ends are summed side by side, then added up
/// in order. Integer sums: the same at any thread count.
pub fn prefix_sums(values: &[i64], ends: &[u64]) -> Vec<i128> {
    let spans: Vec<i128> = ends
        .par_windows(2)
        .map(|w| {
            values[w[0] as usize..w[1] as usize]
                .iter()
                .map(|&v| i128::from(v))
                .sum()
        })
        .collect();
    std::iter::once(0)
        .chain(spans.iter().scan(0i128, |before, &span| {
            *before += span;
            Some(*before)
        }))
        .collect()
}

/// Per slot `0..slots`, how many of the items `0..n` fall in it and the sum of their
/// amounts, where `at(i)` gives item `i`'s slot and amount (None: counted nowhere).
/// Summed in parallel; integer sums, so the result does not depend on the threads.
pub fn tally<A>(
    n: usize,
    slots: usize,
    at: impl Fn(usize) -> Option<(usize, A)> + Sync,
) -> Vec<(u64, A)>
where
    A: Copy + Default + std::ops::AddAssign + Send,
{
    let zero = || vec![(0u64, A::default()); slots];
    (0..n)
        .into_par_iter()
        .fold(zero, |mut tally, i| {
            if let Some((k, amount)) = at(i) {
                tally[k].0 += 1;
                tally[k].1 += amount;
            }
            tally
        })
        .reduce(zero, |mut tally, more| {
            for (a, b) in tally.iter_mut().zip(more) {
                a.0 += b.0;
                a.1 += b.1;
            }
            tally
        })
}

/// FNV-1a of bytes.
pub fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A 64-bit finaliser (so that nearby ids spread over partitions).
pub fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

//! Kotler's 20/80/30 profitability view and the whale curve (JOB.md, "Profitability").
//!
//! Customers ranked by profit: the share of profit the top 20% bring, the profit (often
//! a loss) of the bottom 30%, what profit would be without them, and the whale curve of
//! cumulative profit share against customer share, whose peak shows how far profit rises
//! before the unprofitable customers pull it down. Plus the Gini coefficient of monetary.
//!
//! Not for: decile tables (see `deciles`).

use rayon::prelude::*;

use crate::summary::Summary;

/// The 20/80/30 figures. Shares are `None` when total profit is ≤ 0 (undefined).
#[derive(Debug, Clone, PartialEq)]
pub struct ProfitView {
    pub customers: u64,
    /// Total profit P, minor units.
    pub total_profit: i128,
    /// Customers in the top 20%: ceil(0.2 N).
    pub top20_customers: u64,
    pub top20_profit: i128,
    pub top20_profit_share: Option<f64>,
    /// Customers in the bottom 30%: ceil(0.3 N).
    pub bottom30_customers: u64,
    pub bottom30_profit: i128,
    pub profit_without_bottom30: i128,
    /// 101 points, q = 0..100: cumulative profit of the first ceil(qN/100) / P.
    pub whale_curve: Option<Vec<f64>>,
    /// Largest point of the curve and the customer share (q/100) where it is first reached.
    pub whale_peak: Option<f64>,
    pub whale_peak_customer_share: Option<f64>,
    /// Gini coefficient of monetary over customers with monetary > 0.
    pub gini: Option<f64>,
}

/// ceil(numerator × n / denominator) in integers.
fn ceil_part(n: u64, numerator: u64, denominator: u64) -> u64 {
    (n * numerator).div_ceil(denominator)
}

/// Computes the view.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("tx.csv");
/// # std::fs::write(&path, "customer_id,ts,amount,cost\nA,2024-01-01,100,20\nB,2024-01-05,50,60\nC,2024-01-06,10,5\n").unwrap();
/// # let loaded = custvalue::load(&custvalue::LoadOptions::new([path.to_str().unwrap()])).unwrap();
/// let summary = custvalue::summarize(&loaded.transactions).unwrap();
/// let view = custvalue::profit::profit_view(&summary);
/// assert_eq!(view.total_profit, 7500); // 80 + (-10) + 5, in cents
/// assert_eq!(view.bottom30_profit, -1000); // ceil(0.3 × 3) = 1 customer: B
/// ```
pub fn profit_view(s: &Summary) -> ProfitView {
    let n = s.len() as u64;
    // JOB.md orders customers by profit descending, then id; every figure below is a sum
    // over a prefix of that order, and equal profits in any order give the same sums, so
    // sorting the profits is enough.
    let (profits, gini) = rayon::join(
        || {
            let mut profits = s.profit.clone();
            profits.par_sort_unstable_by(|a, b| b.cmp(a));
            profits
        },
        || gini(&s.monetary),
    );
    let top20_customers = ceil_part(n, 2, 10);
    let bottom30_customers = ceil_part(n, 3, 10);
    // Only these prefixes are read: the 101 points of the whale curve, the top 20%, all
    // but the bottom 30%, and everyone.
    let mut ends: Vec<u64> = (0..=100u64)
        .map(|q| ceil_part(n, q, 100))
        .chain([top20_customers, n - bottom30_customers, n])
        .collect();
    ends.sort_unstable();
    ends.dedup();
    let sums = crate::parallel::prefix_sums(&profits, &ends);
    // cum(i) = profit of the first i customers in that order.
    let cum = |i: u64| sums[ends.binary_search(&i).expect("a prefix that was summed")];
    let total = cum(n);
    let top20_profit = cum(top20_customers);
    let bottom30_profit = total - cum(n - bottom30_customers);
    let defined = total > 0;
    let whale_curve: Option<Vec<f64>> = defined.then(|| {
        (0..=100u64)
            .map(|q| cum(ceil_part(n, q, 100)) as f64 / total as f64)
            .collect()
    });
    let (whale_peak, whale_peak_customer_share) = match &whale_curve {
        Some(curve) => {
            // Compare the exact integers, not the floats, to find the first maximum.
            let points: Vec<i128> = (0..=100u64).map(|q| cum(ceil_part(n, q, 100))).collect();
            let mut best = 0usize;
            for (q, &p) in points.iter().enumerate() {
                if p > points[best] {
                    best = q;
                }
            }
            (Some(curve[best]), Some(best as f64 / 100.0))
        }
        None => (None, None),
    };
    ProfitView {
        customers: n,
        total_profit: total,
        top20_customers,
        top20_profit,
        top20_profit_share: defined.then(|| top20_profit as f64 / total as f64),
        bottom30_customers,
        bottom30_profit,
        profit_without_bottom30: total - bottom30_profit,
        whale_curve,
        whale_peak,
        whale_peak_customer_share,
        gini,
    }
}

/// G = 2 Σ i·x_i / (n Σ x_i) − (n + 1)/n over x > 0 sorted ascending, i = 1..n, computed
/// as one exact integer fraction.
pub fn gini(values: &[i64]) -> Option<f64> {
    let mut x: Vec<i64> = values.par_iter().copied().filter(|&v| v > 0).collect();
    if x.is_empty() {
        return None;
    }
    x.par_sort_unstable();
    let n = x.len() as i128;
    let (sum, weighted) = x
        .par_iter()
        .enumerate()
        .map(|(i, &v)| (i128::from(v), (i as i128 + 1) * i128::from(v)))
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    Some((2 * weighted - (n + 1) * sum) as f64 / (n * sum) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::test_data::summary_of;

    #[test]
    fn twenty_eighty_thirty_by_hand() {
        // 10 customers' profit: sorted desc 500, 300, 100, 50, 50, 20, 0, -10, -40, -70.
        let p = vec![50, -70, 300, 0, 500, -10, 100, 20, -40, 50];
        let s = summary_of(&[1; 10], &p);
        let v = profit_view(&s);
        assert_eq!(v.total_profit, 900);
        assert_eq!((v.top20_customers, v.top20_profit), (2, 800));
        assert_eq!(v.top20_profit_share, Some(800.0 / 900.0));
        assert_eq!((v.bottom30_customers, v.bottom30_profit), (3, -120));
        assert_eq!(v.profit_without_bottom30, 1020);
        let curve = v.whale_curve.unwrap();
        assert_eq!(curve.len(), 101);
        assert_eq!(curve[0], 0.0);
        assert_eq!(curve[10], 500.0 / 900.0);
        assert_eq!(curve[11], 800.0 / 900.0); // ceil(11 × 10 / 100) = 2 customers
        assert_eq!(curve[100], 1.0);
        // The peak: 1020 after 6 customers, first reached at q = 51 (ceil(5.1) = 6).
        assert_eq!(v.whale_peak, Some(1020.0 / 900.0));
        assert_eq!(v.whale_peak_customer_share, Some(0.51));
    }

    #[test]
    fn undefined_when_profit_is_not_positive() {
        let s = summary_of(&[1, 1], &[-5, 5]);
        let v = profit_view(&s);
        assert_eq!(v.total_profit, 0);
        assert_eq!(v.top20_profit_share, None);
        assert_eq!(v.whale_curve, None);
        assert_eq!(v.bottom30_profit, -5);
    }

    #[test]
    fn gini_by_hand() {
        assert_eq!(gini(&[5, 5, 5, 5]), Some(0.0));
        // Only positive monetary counts: one customer is perfect equality.
        assert_eq!(gini(&[0, 0, 0, 8, -3]), Some(0.0));
        assert_eq!(
            gini(&[1, 1, 1, 9]),
            Some((2.0 * (1.0 + 2.0 + 3.0 + 36.0) - 5.0 * 12.0) / 48.0)
        );
        assert_eq!(gini(&[-1, 0]), None);
    }

    #[test]
    fn the_view_of_many_customers_equals_a_plain_walk_at_any_thread_count() {
        // 70,001 customers with ties, zeros and losses.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let p: Vec<i64> = (0..70_001)
            .map(|_| (crate::xorshift(&mut x) % 3_000) as i64 - 900)
            .collect();
        let m: Vec<i64> = p.iter().map(|&v| v + 400).collect();
        let s = summary_of(&m, &p);
        // The plain walk: every prefix sum of the profits, largest first.
        let mut sorted = p.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        let mut cum = vec![0i128];
        for &v in &sorted {
            cum.push(cum.last().unwrap() + i128::from(v));
        }
        let n = p.len() as u64;
        let total = cum[p.len()];
        assert!(total > 0);
        let curve: Vec<f64> = (0..=100)
            .map(|q| cum[(n * q).div_ceil(100) as usize] as f64 / total as f64)
            .collect();
        let mut positive: Vec<i128> = m
            .iter()
            .filter(|&&v| v > 0)
            .map(|&v| i128::from(v))
            .collect();
        positive.sort();
        let (k, sum) = (positive.len() as i128, positive.iter().sum::<i128>());
        let weighted: i128 = (1..).zip(&positive).map(|(i, &v)| i * v).sum();
        let expected_gini = (2 * weighted - (k + 1) * sum) as f64 / (k * sum) as f64;
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let v = pool.install(|| profit_view(&s));
            assert_eq!(v.total_profit, total);
            assert_eq!((v.top20_customers, v.top20_profit), (14_001, cum[14_001]));
            assert_eq!(v.bottom30_customers, 21_001);
            assert_eq!(v.bottom30_profit, total - cum[70_001 - 21_001]);
            assert_eq!(
                v.whale_curve.as_deref(),
                Some(&curve[..]),
                "{threads} threads"
            );
            assert_eq!(v.gini, Some(expected_gini), "{threads} threads");
        }
    }
}

impl ProfitView {
    /// The whale curve as a frame: `percentile` 0..100, `customer_share`,
    /// `cum_profit_share` (null when total profit ≤ 0).
    pub fn whale_frame(&self) -> crate::Result<polars::prelude::DataFrame> {
        use polars::prelude::*;
        let q: Vec<i64> = (0..=100).collect();
        let share: Vec<f64> = q.iter().map(|&q| q as f64 / 100.0).collect();
        let points: Vec<Option<f64>> = (0..=100usize)
            .map(|q| self.whale_curve.as_ref().map(|c| c[q]))
            .collect();
        Ok(DataFrame::new(
            101,
            vec![
                Column::new("percentile".into(), q),
                Column::new("customer_share".into(), share),
                Column::new("cum_profit_share".into(), points),
            ],
        )?)
    }

    /// The figures as JSON, money in currency units.
    pub fn to_json(&self, decimals: u32) -> serde_json::Value {
        let units = |m: i128| m as f64 / 10f64.powi(decimals as i32);
        serde_json::json!({
            "customers": self.customers,
            "total_profit": units(self.total_profit),
            "top20_customers": self.top20_customers,
            "top20_profit": units(self.top20_profit),
            "top20_profit_share": self.top20_profit_share,
            "bottom30_customers": self.bottom30_customers,
            "bottom30_profit": units(self.bottom30_profit),
            "profit_without_bottom30": units(self.profit_without_bottom30),
            "whale_peak": self.whale_peak,
            "whale_peak_customer_share": self.whale_peak_customer_share,
            "gini": self.gini,
            "whale_curve": self.whale_curve,
        })
    }

    /// "the top 20% of customers bring 78.0% of profit; the bottom 30% lose 12.3 ..."
    pub fn headline(&self, decimals: u32) -> String {
        let money = |v: i128| crate::output::money_text(v, decimals);
        match self.top20_profit_share {
            Some(share) => format!(
                "the top 20% of customers bring {} of profit; the bottom 30% bring {}, and without them profit would be {} ({} of today's)",
                crate::output::percent(share),
                money(self.bottom30_profit),
                money(self.profit_without_bottom30),
                crate::output::percent(
                    self.profit_without_bottom30 as f64 / self.total_profit as f64
                ),
            ),
            None => format!(
                "total profit is {}: profit shares and the whale curve are undefined",
                money(self.total_profit)
            ),
        }
    }
}

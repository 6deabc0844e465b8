//! Money deciles (货币十分位) and purchase deciles (购买十分位), JOB.md.
//!
//! Money deciles rank customers by monetary (or profit) and cut them into ten NTILE
//! groups: how much of revenue and profit each tenth of the customers brings. Purchase
//! deciles cut total revenue into ten equal slices and count the customers who make each
//! slice. Every sum is an integer in minor units; shares are ratios of those integers.
//!
//! Not for: the 20/80/30 view and the whale curve (see `profit`).

use rayon::prelude::*;

use crate::rfm::ntile_by_key;
use crate::summary::Summary;

/// What money deciles rank by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecileBy {
    #[default]
    #[serde(alias = "monetary", alias = "sales")]
    Revenue,
    Profit,
}

impl std::str::FromStr for DecileBy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "revenue" | "monetary" | "sales" => Ok(DecileBy::Revenue),
            "profit" => Ok(DecileBy::Profit),
            _ => Err(format!("rank deciles by revenue or profit, not {s:?}")),
        }
    }
}

/// The decile (1 = top) of every customer, ranked by `by` descending, then customer id.
pub fn assign(s: &Summary, by: DecileBy) -> Vec<u8> {
    let key = key_of(s, by);
    // `!` reverses the order of the key: largest first, ties by customer.
    ntile_by_key(s.len(), |_| true, 10, |c| !key[c as usize])
}

fn key_of(s: &Summary, by: DecileBy) -> &[i64] {
    match by {
        DecileBy::Revenue => &s.monetary,
        DecileBy::Profit => &s.profit,
    }
}

/// One row of the money-decile table (money in minor units).
#[derive(Debug, Clone, PartialEq)]
pub struct MoneyDecile {
    pub decile: u8,
    pub customers: u64,
    pub revenue: i128,
    pub revenue_share: Option<f64>,
    pub profit: i128,
    pub profit_share: Option<f64>,
    pub cum_revenue_share: Option<f64>,
    pub cum_profit_share: Option<f64>,
    /// Smallest and largest monetary in the decile (None when empty).
    pub min_monetary: Option<i64>,
    pub max_monetary: Option<i64>,
}

/// `part / total`; undefined (None, written as null) when the total is not positive, as
/// JOB.md has it for the profit view: a share of a loss reads as nonsense (a decile
/// that lost money would hold a positive "share").
fn share(part: i128, total: i128) -> Option<f64> {
    (total > 0).then(|| part as f64 / total as f64)
}

/// The ten money deciles (always ten rows; empty ones when there are fewer than ten
/// customers).
pub fn money_deciles(s: &Summary, deciles: &[u8]) -> Vec<MoneyDecile> {
    let total_revenue = s.total_monetary();
    let total_profit = s.total_profit();
    let empty = || -> Vec<MoneyDecile> {
        (1..=10)
            .map(|d| MoneyDecile {
                decile: d,
                customers: 0,
                revenue: 0,
                revenue_share: None,
                profit: 0,
                profit_share: None,
                cum_revenue_share: None,
                cum_profit_share: None,
                min_monetary: None,
                max_monetary: None,
            })
            .collect()
    };
    // Integer sums, least and most: the same rows in any split of the customers.
    let mut rows = deciles
        .par_chunks(RUN)
        .zip(s.monetary.par_chunks(RUN).zip(s.profit.par_chunks(RUN)))
        .map(|(deciles, (monetary, profit))| {
            let mut rows = empty();
            for ((&d, &m), &p) in deciles.iter().zip(monetary).zip(profit) {
                let row = &mut rows[usize::from(d) - 1];
                row.customers += 1;
                row.revenue += i128::from(m);
                row.profit += i128::from(p);
                row.min_monetary = Some(row.min_monetary.map_or(m, |x| x.min(m)));
                row.max_monetary = Some(row.max_monetary.map_or(m, |x| x.max(m)));
            }
            rows
        })
        .reduce(empty, |mut a, b| {
            for (row, other) in a.iter_mut().zip(b) {
                row.customers += other.customers;
                row.revenue += other.revenue;
                row.profit += other.profit;
                row.min_monetary = match (row.min_monetary, other.min_monetary) {
                    (Some(x), Some(y)) => Some(x.min(y)),
                    (x, y) => x.or(y),
                };
                // None orders below every Some.
                row.max_monetary = row.max_monetary.max(other.max_monetary);
            }
            a
        });
    let (mut cum_r, mut cum_p) = (0i128, 0i128);
    for row in &mut rows {
        cum_r += row.revenue;
        cum_p += row.profit;
        row.revenue_share = share(row.revenue, total_revenue);
        row.profit_share = share(row.profit, total_profit);
        row.cum_revenue_share = share(cum_r, total_revenue);
        row.cum_profit_share = share(cum_p, total_profit);
    }
    rows
}

/// One row of the purchase-decile table. `slice` None is the row of customers whose
/// monetary is ≤ 0.
#[derive(Debug, Clone, PartialEq)]
pub struct PurchaseSlice {
    pub slice: Option<u8>,
    pub customers: u64,
    /// Customers in this row / all customers.
    pub customer_share: f64,
    pub revenue: i128,
}

/// Customers per task of the decile tables.
const RUN: usize = 1 << 14;

/// Ten revenue slices and the customers who make each; then the monetary ≤ 0 row.
pub fn purchase_deciles(s: &Summary) -> Vec<PurchaseSlice> {
    // JOB.md orders customers by monetary descending, then id; the running sums only see
    // the values, and equal values in any order give the same sums, so sorting the values
    // is enough.
    let mut positive: Vec<i64> = s.monetary.par_iter().copied().filter(|&m| m > 0).collect();
    positive.par_sort_unstable_by(|a, b| b.cmp(a));
    // The running sum, cut into runs: the sum of every run first, then each run walks
    // its values from the sum of the runs before it, side by side. Integer counts and
    // sums: the same rows in any split.
    let ends: Vec<u64> = (0..positive.len())
        .step_by(RUN)
        .chain([positive.len()])
        .map(|end| end as u64)
        .collect();
    // The sum before each run, then the total.
    let before = crate::parallel::prefix_sums(&positive, &ends);
    let total = *before.last().expect("the sum of none is there");
    let runs: Vec<(&[i64], i128)> = positive.chunks(RUN).zip(before).collect();
    let slices = runs
        .par_iter()
        .map(|&(run, start)| {
            let mut slices = [(0u64, 0i128); 10];
            let mut running = start;
            for &m in run {
                running += i128::from(m);
                // slice = ceil(10 × C_i / T), clamped to 1..10.
                let k = (10 * running + total - 1) / total;
                let slice = &mut slices[k.clamp(1, 10) as usize - 1];
                slice.0 += 1;
                slice.1 += i128::from(m);
            }
            slices
        })
        .reduce(
            || [(0u64, 0i128); 10],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    x.0 += y.0;
                    x.1 += y.1;
                }
                a
            },
        );
    let mut rows: Vec<PurchaseSlice> = (1..=10)
        .zip(slices)
        .map(|(k, (customers, revenue))| PurchaseSlice {
            slice: Some(k),
            customers,
            customer_share: 0.0,
            revenue,
        })
        .collect();
    let (customers, revenue) = s
        .monetary
        .par_iter()
        .filter(|&&m| m <= 0)
        .map(|&m| (1u64, i128::from(m)))
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    rows.push(PurchaseSlice {
        slice: None,
        customers,
        customer_share: 0.0,
        revenue,
    });
    let all = s.len().max(1) as f64;
    for row in &mut rows {
        row.customer_share = row.customers as f64 / all;
    }
    rows
}

/// The sentence a course would state, from the data: "the top 10% of customers bring
/// 41.2% of revenue; 0.9% of customers make the first 10% of revenue".
pub fn headline(money: &[MoneyDecile], purchase: &[PurchaseSlice], by: DecileBy) -> String {
    let what = match by {
        DecileBy::Revenue => "revenue",
        DecileBy::Profit => "profit",
    };
    let top = money.first().and_then(|d| match by {
        DecileBy::Revenue => d.revenue_share,
        DecileBy::Profit => d.profit_share,
    });
    let top20 = money.get(1).and_then(|d| match by {
        DecileBy::Revenue => d.cum_revenue_share,
        DecileBy::Profit => d.cum_profit_share,
    });
    let first_slice = purchase.first().map(|p| p.customer_share);
    let pct = crate::output::percent;
    match (top, top20, first_slice) {
        (Some(t), Some(t20), Some(f)) => format!(
            "the top 10% of customers bring {} of {what} (the top 20%: {}); {} of customers make the first 10% of revenue",
            pct(t),
            pct(t20),
            pct(f)
        ),
        _ => format!("total {what} is zero: shares are undefined"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::summary::test_data::summary_of;

    #[test]
    fn shares_of_a_loss_are_undefined() {
        // Revenue 100 + 50 = 150 > 0, but profit 30 − 100 = −70: every profit share is
        // null (dividing by −70 would give the losing customer a "share" of 1.43).
        let s = summary_of(&[100, 50], &[30, -100]);
        let rows = money_deciles(&s, &assign(&s, DecileBy::Revenue));
        assert_eq!(rows[0].revenue_share, Some(100.0 / 150.0));
        assert!(
            rows.iter()
                .all(|r| r.profit_share.is_none() && r.cum_profit_share.is_none())
        );
        let s = summary_of(&[-10, 0], &[-10, 0]);
        let rows = money_deciles(&s, &assign(&s, DecileBy::Revenue));
        assert!(
            rows.iter()
                .all(|r| r.revenue_share.is_none() && r.cum_revenue_share.is_none())
        );
    }

    #[test]
    fn money_deciles_by_hand() {
        // 12 customers: deciles of sizes 2,2,1,1,1,1,1,1,1,1.
        let m: Vec<i64> = vec![100, 1200, 300, 50, 50, 0, -20, 700, 10, 10, 5, 900];
        let s = summary_of(&m, &m);
        let d = assign(&s, DecileBy::Revenue);
        // Sorted desc with id ties: 1200(1), 900(11), 700(7), 300(2), 100(0), 50(3), 50(4),
        // 10(8), 10(9), 5(10), 0(5), -20(6).
        assert_eq!(d, vec![3, 1, 2, 4, 5, 9, 10, 2, 6, 7, 8, 1]);
        let rows = money_deciles(&s, &d);
        assert_eq!(rows[0].customers, 2);
        assert_eq!(rows[0].revenue, 2100);
        assert_eq!(rows[9].revenue, -20);
        assert_eq!(rows[9].min_monetary, Some(-20));
        assert_eq!(rows[9].max_monetary, Some(-20));
        assert_eq!(rows[8].revenue, 0);
        let total: i64 = m.iter().sum();
        assert_eq!(total, 3305);
        assert_eq!(rows[0].revenue_share, Some(2100.0 / 3305.0));
        assert_eq!(rows[1].cum_revenue_share, Some((2100.0 + 1000.0) / 3305.0));
        assert_eq!(rows[9].cum_revenue_share, Some(1.0));
        assert_eq!(rows.iter().map(|r| r.customers).sum::<u64>(), 12);
    }

    #[test]
    fn purchase_deciles_by_hand() {
        // Total of positives 1000: 600 → C=600 → slice 6; 300 → 900 → 9; 50 → 950 → 10;
        // 50 → 1000 → 10; and one customer at -5.
        let m = vec![50, 600, -5, 300, 50];
        let s = summary_of(&m, &m);
        let rows = purchase_deciles(&s);
        let counts: Vec<u64> = rows.iter().map(|r| r.customers).collect();
        assert_eq!(counts, vec![0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 1]);
        assert_eq!(rows[10].slice, None);
        assert_eq!(rows[10].revenue, -5);
        assert_eq!(rows[5].customer_share, 0.2);
        assert_eq!(rows.iter().map(|r| r.customers).sum::<u64>(), 5);
        let money = money_deciles(&s, &assign(&s, DecileBy::Revenue));
        let line = headline(&money, &rows, DecileBy::Revenue);
        // 600 of a total 995.
        assert!(line.contains("bring 60.3% of revenue"), "{line}");
        assert!(
            line.contains("0.0% of customers make the first 10%"),
            "{line}"
        );
    }

    #[test]
    fn deciles_of_many_customers_equal_a_plain_walk_at_any_thread_count() {
        // 70,003 customers: more than four runs of the running sum, deciles of unequal
        // sizes, ties, zeros and losses.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let m: Vec<i64> = (0..70_003)
            .map(|_| (crate::xorshift(&mut x) % 2_000) as i64 - 300)
            .collect();
        let p: Vec<i64> = m
            .iter()
            .enumerate()
            .map(|(i, &v)| v - (i as i64 % 97))
            .collect();
        let s = summary_of(&m, &p);
        // The plain walk after JOB.md: monetary descending, then id.
        let mut order: Vec<usize> = (0..m.len()).collect();
        order.sort_by(|&a, &b| m[b].cmp(&m[a]).then(a.cmp(&b)));
        let n = order.len();
        let mut expected = vec![0u8; n];
        for (i, &c) in order.iter().enumerate() {
            expected[c] = crate::rfm::ntile(i, n, 10) as u8;
        }
        let total: i128 = m.iter().filter(|&&v| v > 0).map(|&v| i128::from(v)).sum();
        let mut slices = vec![(0u64, 0i128); 11];
        let mut running = 0i128;
        for &c in &order {
            let v = i128::from(m[c]);
            let k = if v > 0 {
                running += v;
                ((10 * running + total - 1) / total).clamp(1, 10) as usize - 1
            } else {
                10
            };
            slices[k].0 += 1;
            slices[k].1 += v;
        }
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let (deciles, rows, purchase) = pool.install(|| {
                let deciles = assign(&s, DecileBy::Revenue);
                let rows = money_deciles(&s, &deciles);
                (deciles, rows, purchase_deciles(&s))
            });
            assert_eq!(deciles, expected, "{threads} threads");
            for row in &rows {
                let members: Vec<usize> = (0..n).filter(|&c| expected[c] == row.decile).collect();
                let sum = |v: &[i64]| members.iter().map(|&c| i128::from(v[c])).sum::<i128>();
                assert_eq!(row.customers, members.len() as u64);
                assert_eq!((row.revenue, row.profit), (sum(&m), sum(&p)));
                assert_eq!(row.min_monetary, members.iter().map(|&c| m[c]).min());
                assert_eq!(row.max_monetary, members.iter().map(|&c| m[c]).max());
            }
            let got: Vec<(u64, i128)> = purchase.iter().map(|r| (r.customers, r.revenue)).collect();
            assert_eq!(got, slices, "{threads} threads");
        }
    }
}

/// The money-decile table as a frame (money in currency units).
pub fn money_frame(
    rows: &[MoneyDecile],
    decimals: u32,
) -> crate::Result<polars::prelude::DataFrame> {
    use polars::prelude::*;
    let unit = 10f64.powi(decimals as i32);
    let money = |f: &dyn Fn(&MoneyDecile) -> Option<i128>| {
        rows.iter()
            .map(|r| f(r).map(|m| m as f64 / unit))
            .collect::<Vec<_>>()
    };
    let share = |f: &dyn Fn(&MoneyDecile) -> Option<f64>| rows.iter().map(f).collect::<Vec<_>>();
    let columns = vec![
        Column::new(
            "decile".into(),
            rows.iter().map(|r| i64::from(r.decile)).collect::<Vec<_>>(),
        ),
        Column::new(
            "customers".into(),
            rows.iter().map(|r| r.customers as i64).collect::<Vec<_>>(),
        ),
        Column::new("revenue".into(), money(&|r| Some(r.revenue))),
        Column::new("revenue_share".into(), share(&|r| r.revenue_share)),
        Column::new("profit".into(), money(&|r| Some(r.profit))),
        Column::new("profit_share".into(), share(&|r| r.profit_share)),
        Column::new("cum_revenue_share".into(), share(&|r| r.cum_revenue_share)),
        Column::new("cum_profit_share".into(), share(&|r| r.cum_profit_share)),
        Column::new(
            "min_monetary".into(),
            money(&|r| r.min_monetary.map(i128::from)),
        ),
        Column::new(
            "max_monetary".into(),
            money(&|r| r.max_monetary.map(i128::from)),
        ),
    ];
    Ok(DataFrame::new(rows.len(), columns)?)
}

/// The purchase-decile table as a frame; the monetary ≤ 0 row has a null slice.
pub fn purchase_frame(
    rows: &[PurchaseSlice],
    decimals: u32,
) -> crate::Result<polars::prelude::DataFrame> {
    use polars::prelude::*;
    let columns = vec![
        Column::new(
            "slice".into(),
            rows.iter()
                .map(|r| r.slice.map(i64::from))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "customers".into(),
            rows.iter().map(|r| r.customers as i64).collect::<Vec<_>>(),
        ),
        Column::new(
            "customer_share".into(),
            rows.iter().map(|r| r.customer_share).collect::<Vec<_>>(),
        ),
        Column::new(
            "revenue".into(),
            rows.iter()
                .map(|r| r.revenue as f64 / 10f64.powi(decimals as i32))
                .collect::<Vec<_>>(),
        ),
    ];
    Ok(DataFrame::new(rows.len(), columns)?)
}

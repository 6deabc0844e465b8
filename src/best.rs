//! The best-customer rule, after Sears (JOB.md, "Best-customer rule"): within a window
//! before the as-of date, spend at least a threshold, buy in several categories and come
//! back often. Every threshold and the window are configurable.
//!
//! Not for: RFM segments (see `rfm`).

use rayon::prelude::*;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::money;
use crate::summary::count_distinct;
use crate::transactions::{NO_CATEGORY, Transactions};

/// Thresholds of the rule.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BestRule {
    /// Minimum spend in currency units (sum of amount over the window, returns included).
    pub min_spend: f64,
    /// Minimum distinct categories bought (lines with amount > 0).
    pub min_categories: u32,
    /// Minimum distinct orders with a purchase line.
    pub min_orders: u32,
    /// Window length: lines dated as_of − window_days ≤ day < as_of.
    pub window_days: u32,
}

impl Default for BestRule {
    fn default() -> Self {
        BestRule {
            min_spend: 1000.0,
            min_categories: 4,
            min_orders: 6,
            window_days: 365,
        }
    }
}

/// Window figures per customer and the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BestCustomers {
    pub spend: Vec<i64>,
    pub categories: Vec<u32>,
    pub orders: Vec<u32>,
    pub best: Vec<bool>,
}

impl BestCustomers {
    pub fn count(&self) -> usize {
        self.best.iter().filter(|&&b| b).count()
    }
}

/// Applies the rule to every customer.
pub fn best_customers(tx: &Transactions, rule: &BestRule) -> Result<BestCustomers> {
    let min_spend = min_spend_minor(rule, tx.currency_decimals)?;
    let start = tx.as_of - rule.window_days as i32;
    let per: Vec<(i64, u32, u32)> = (0..tx.n_customers())
        .into_par_iter()
        .map_init(
            || (Vec::new(), Vec::new()),
            |(orders, cats), c| {
                orders.clear();
                cats.clear();
                let mut spend = 0i64;
                for i in tx.lines(c) {
                    if tx.day[i] < start || tx.day[i] >= tx.as_of {
                        continue;
                    }
                    spend = spend.saturating_add(tx.amount[i]);
                    if tx.amount[i] > 0 {
                        orders.push(tx.order[i]);
                        if tx.category[i] != NO_CATEGORY {
                            cats.push(u64::from(tx.category[i]));
                        }
                    }
                }
                (spend, count_distinct(cats), count_distinct(orders))
            },
        )
        .collect();
    Ok(classify(per, rule, min_spend))
}

/// Applies the rule to each customer's window totals (spend in minor units, distinct
/// categories, distinct orders), computed here or elsewhere (e.g. on a cluster).
pub fn classify(per: Vec<(i64, u32, u32)>, rule: &BestRule, min_spend: i64) -> BestCustomers {
    let best = per
        .iter()
        .map(|&(spend, cats, orders)| {
            spend >= min_spend && cats >= rule.min_categories && orders >= rule.min_orders
        })
        .collect();
    BestCustomers {
        spend: per.iter().map(|p| p.0).collect(),
        categories: per.iter().map(|p| p.1).collect(),
        orders: per.iter().map(|p| p.2).collect(),
        best,
    }
}

/// The rule's minimum spend in minor units.
pub fn min_spend_minor(rule: &BestRule, decimals: u32) -> Result<i64> {
    money::f64_to_minor(rule.min_spend, decimals)
        .map_err(|e| Error::Usage(format!("best.min_spend {}: {e}", rule.min_spend)))
}

//! Lifecycle stages and the reactivated flag (JOB.md, "Lifecycle stage").
//!
//! A customer's stage is the first rule that matches: new (short tenure), active, at
//! risk, lapsed (by recency), else lost. Reactivated means the last purchase came after a
//! long silence. All thresholds are configurable.
//!
//! Not for: probabilistic P(alive) (see `models`).

use rayon::prelude::*;
use serde::Deserialize;

use crate::summary::Summary;
use crate::transactions::Transactions;

/// Thresholds in days; a stage matches when the value is ≤ its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleRules {
    /// `new`: tenure_days ≤ this.
    pub new_max_tenure: i32,
    /// `active`: recency_days ≤ this.
    pub active_max_recency: i32,
    /// `at_risk`: recency_days ≤ this.
    pub at_risk_max_recency: i32,
    /// `lapsed`: recency_days ≤ this; `lost` beyond.
    pub lapsed_max_recency: i32,
    /// `reactivated`: more than this many days between the last purchase day and the
    /// distinct purchase day before it.
    pub reactivation_gap: i32,
}

impl Default for LifecycleRules {
    fn default() -> Self {
        LifecycleRules {
            new_max_tenure: 90,
            active_max_recency: 180,
            at_risk_max_recency: 365,
            lapsed_max_recency: 730,
            reactivation_gap: 365,
        }
    }
}

/// The stages, in rule order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    New,
    Active,
    AtRisk,
    Lapsed,
    Lost,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::New,
        Stage::Active,
        Stage::AtRisk,
        Stage::Lapsed,
        Stage::Lost,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::New => "new",
            Stage::Active => "active",
            Stage::AtRisk => "at_risk",
            Stage::Lapsed => "lapsed",
            Stage::Lost => "lost",
        }
    }
}

/// Stage and flag per customer (stage None without a purchase).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    pub stage: Vec<Option<Stage>>,
    pub reactivated: Vec<bool>,
}

impl LifecycleRules {
    /// The stage for a recency and tenure (both known when the customer has a purchase).
    pub fn stage(&self, recency: i32, tenure: i32) -> Stage {
        if tenure <= self.new_max_tenure {
            Stage::New
        } else if recency <= self.active_max_recency {
            Stage::Active
        } else if recency <= self.at_risk_max_recency {
            Stage::AtRisk
        } else if recency <= self.lapsed_max_recency {
            Stage::Lapsed
        } else {
            Stage::Lost
        }
    }
}

/// Stages and reactivated flags of every customer.
pub fn lifecycle(tx: &Transactions, s: &Summary, rules: &LifecycleRules) -> Lifecycle {
    let stage = stages(s, rules);
    let reactivated = (0..tx.n_customers())
        .into_par_iter()
        .map(|c| previous_purchase_gap(tx, c).is_some_and(|gap| gap > rules.reactivation_gap))
        .collect();
    Lifecycle { stage, reactivated }
}

/// Each customer's stage (None without a purchase).
pub fn stages(s: &Summary, rules: &LifecycleRules) -> Vec<Option<Stage>> {
    (0..s.len())
        .map(|c| match (s.recency_days(c), s.tenure_days(c)) {
            (Some(r), Some(t)) => Some(rules.stage(r, t)),
            _ => None,
        })
        .collect()
}

/// Days between the last purchase day and the distinct purchase day before it.
pub fn previous_purchase_gap(tx: &Transactions, c: usize) -> Option<i32> {
    let buys = tx.lines(c).filter(|&i| tx.amount[i] > 0);
    let last = buys.clone().map(|i| tx.day[i]).max()?;
    let before = buys.map(|i| tx.day[i]).filter(|&d| d < last).max()?;
    Some(last - before)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_rule_wins() {
        let r = LifecycleRules::default();
        assert_eq!(r.stage(10, 90), Stage::New);
        assert_eq!(r.stage(400, 90), Stage::New);
        assert_eq!(r.stage(180, 91), Stage::Active);
        assert_eq!(r.stage(181, 500), Stage::AtRisk);
        assert_eq!(r.stage(365, 500), Stage::AtRisk);
        assert_eq!(r.stage(730, 900), Stage::Lapsed);
        assert_eq!(r.stage(731, 900), Stage::Lost);
    }
}

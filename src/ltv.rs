//! Lifetime value: fit a purchase model (BG/NBD, Pareto/NBD, MBG/NBD) and the
//! Gamma-Gamma spend model to the model summary, then predict per customer P(alive),
//! expected purchases over a horizon, expected spend and discounted CLV; with a
//! calibration cut-off, also check the predictions against the holdout period.
//!
//! Not for: the models' mathematics (see `models`) or the summary itself (see
//! `model_summary`).

use polars::prelude::*;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::transactions::{CustomerIds, Transactions};
use crate::model_summary::{
    HoldoutFigures, Period, RepeatFigures, check_calibration_end, holdout_figures, repeat_figures,
};
use crate::models::{
    self, Customer, FitObserver, FitReport, GammaGamma, ModelKind, PurchaseModel,
    spend_frequency_correlation,
};

/// How to value customers.
#[derive(Debug, Clone, PartialEq)]
pub struct LtvSettings {
    pub model: ModelKind,
    /// Fit the Gamma-Gamma spend model (otherwise each customer's own mean spend per
    /// purchase period is used).
    pub gamma_gamma: bool,
    pub period: Period,
    /// Prediction horizon in periods.
    pub horizon: u32,
    /// Annual discount rate (0.10 = 10%).
    pub annual_discount: f64,
    /// Margin on spend for CLV; `None` = total profit / total revenue of the data.
    pub margin: Option<f64>,
    /// Fit on lines dated on or before this day (T measured to it) and check the
    /// predictions on the lines after it.
    pub calibration_end: Option<i32>,
    /// Told how the model fits get on; none by default.
    pub progress: FitObserver,
}

impl Default for LtvSettings {
    fn default() -> Self {
        LtvSettings {
            model: ModelKind::BgNbd,
            gamma_gamma: true,
            period: Period::Day,
            horizon: 365,
            annual_discount: 0.10,
            margin: None,
            calibration_end: None,
            progress: FitObserver::default(),
        }
    }
}

/// Predicted against actual for one calibration-frequency bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// "0" … "6", "7+".
    pub label: String,
    pub customers: u64,
    pub predicted_mean: f64,
    pub actual_mean: f64,
}

/// Predicted against actual spend per period, over customers who repeat in both periods.
#[derive(Debug, Clone, PartialEq)]
pub struct SpendCheck {
    pub customers: u64,
    pub predicted_mean: f64,
    pub actual_mean: f64,
    pub mae: f64,
    pub rmse: f64,
}

/// The calibration/holdout check.
#[derive(Debug, Clone, PartialEq)]
pub struct HoldoutCheck {
    pub calibration_end: i32,
    /// Holdout length in periods.
    pub length: f64,
    pub buckets: Vec<Bucket>,
    pub total_predicted: f64,
    pub total_actual: u64,
    /// Per-customer errors of predicted holdout purchases.
    pub mae: f64,
    pub rmse: f64,
    pub spend: Option<SpendCheck>,
    pub holdout: Vec<HoldoutFigures>,
    pub predicted: Vec<Option<f64>>,
}

/// Fitted models and per-customer predictions.
pub struct Ltv {
    pub ids: CustomerIds,
    pub settings: LtvSettings,
    pub currency_decimals: u32,
    /// Model summary at the end of the fitting window (None: no purchase in it).
    pub figures: Vec<Option<RepeatFigures>>,
    pub purchase: Box<dyn PurchaseModel + Send + Sync>,
    pub spend: Option<GammaGamma>,
    /// Pearson correlation of x and m_x over the spend-model customers.
    pub spend_correlation: Option<f64>,
    /// Customers with x > 0 left out of the spend model because m_x ≤ 0.
    pub spend_excluded: u64,
    pub margin: f64,
    pub p_alive: Vec<Option<f64>>,
    pub expected_purchases: Vec<Option<f64>>,
    /// Expected spend per purchase period, currency units.
    pub expected_spend: Vec<Option<f64>>,
    /// Discounted CLV over the horizon, currency units.
    pub clv: Vec<Option<f64>>,
    pub holdout: Option<HoldoutCheck>,
}

fn model_error(e: models::ModelError) -> Error {
    Error::Data(format!("the model cannot be fitted: {e}"))
}

/// Fits and predicts.
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// # let path = dir.path().join("tx.csv");
/// # let params = custvalue::synth::SynthParams::for_rows(5_000, 7);
/// # custvalue::synth::write_csv(&params, std::fs::File::create(&path).unwrap()).unwrap();
/// let loaded = custvalue::load(&custvalue::LoadOptions::new([path.to_str().unwrap()])).unwrap();
/// let ltv = custvalue::ltv::value(&loaded.transactions, &Default::default()).unwrap();
/// assert!(ltv.p_alive.iter().flatten().all(|p| (0.0..=1.0).contains(p)));
/// assert_eq!(ltv.purchase.report().params.len(), 4); // r, alpha, a, b
/// ```
pub fn value(tx: &Transactions, settings: &LtvSettings) -> Result<Ltv> {
    if !(settings.annual_discount > -1.0 && settings.annual_discount.is_finite()) {
        return Err(Error::Usage(format!(
            "discount rate must be above -1, got {}",
            settings.annual_discount
        )));
    }
    if settings.horizon == 0 {
        return Err(Error::Usage("horizon must be at least one period".into()));
    }
    let end = match settings.calibration_end {
        Some(end) => {
            check_calibration_end(tx, end)?;
            end
        }
        None => tx.as_of,
    };
    let period = settings.period;
    let figures = repeat_figures(tx, end, period);
    let customers: Vec<Customer> = figures.iter().flatten().map(customer).collect();
    let purchase =
        models::fit_purchase_model_observed(settings.model, &customers, &settings.progress)
            .map_err(model_error)?;
    let unit = 10f64.powi(tx.currency_decimals as i32);

    let repeaters: Vec<(f64, f64)> = figures
        .iter()
        .flatten()
        .filter_map(|f| f.m_x.map(|m| (f64::from(f.x), m / unit)))
        .collect();
    let spend_excluded = repeaters.iter().filter(|r| r.1 <= 0.0).count() as u64;
    let positive: Vec<(f64, f64)> = repeaters.into_iter().filter(|r| r.1 > 0.0).collect();
    let (xs, ms): (Vec<f64>, Vec<f64>) = positive.iter().copied().unzip();
    let spend = if settings.gamma_gamma {
        Some(GammaGamma::fit_observed(&xs, &ms, &settings.progress).map_err(model_error)?)
    } else {
        None
    };
    let spend_correlation = (xs.len() > 2)
        .then(|| spend_frequency_correlation(&xs, &ms))
        .filter(|r| r.is_finite());

    let margin = match settings.margin {
        Some(m) => m,
        None => {
            let revenue: i128 = tx.amount.iter().map(|&a| i128::from(a)).sum();
            let profit: i128 = tx.profit.iter().map(|&a| i128::from(a)).sum();
            if revenue > 0 {
                profit as f64 / revenue as f64
            } else {
                1.0
            }
        }
    };
    let own_spend = own_spend_per_period(tx, &figures, end, period, unit);
    let horizon = f64::from(settings.horizon);
    // Predictions depend on (x, t_x, T) only, and many customers share them: compute each
    // distinct pattern once (in parallel), then look it up. CLV is linear in spend × margin,
    // so the discounted expected purchases of a pattern serve every customer with it.
    let key = |f: &RepeatFigures| (f.x, f.t_x.to_bits(), f.t.to_bits());
    let mut patterns: Vec<(u32, u64, u64)> = figures.iter().flatten().map(key).collect();
    patterns.sort_unstable();
    patterns.dedup();
    let predictions: Vec<(f64, f64, f64)> = patterns
        .par_iter()
        .map(|&(x, t_x, t)| {
            let cust = Customer {
                x: f64::from(x),
                t_x: f64::from_bits(t_x),
                t: f64::from_bits(t),
            };
            let discounted = discounted_purchases(
                purchase.as_ref(),
                settings.annual_discount,
                period.per_year(),
                settings.horizon,
                &cust,
            );
            (
                purchase.p_alive(&cust),
                purchase.expected_purchases(horizon, &cust),
                discounted,
            )
        })
        .collect();
    let per_customer: Vec<(Option<f64>, Option<f64>, Option<f64>, Option<f64>)> = figures
        .par_iter()
        .enumerate()
        .map(|(c, f)| match f {
            None => (None, None, None, None),
            Some(f) => {
                let spend_per = match &spend {
                    Some(gg) => gg.expected_spend(f64::from(f.x), f.m_x.map_or(0.0, |m| m / unit)),
                    None => own_spend[c],
                };
                let k = patterns.binary_search(&key(f)).unwrap_or(0);
                let (alive, expected, discounted) = predictions[k];
                (
                    Some(alive),
                    Some(expected),
                    Some(spend_per),
                    Some(discounted * spend_per * margin),
                )
            }
        })
        .collect();
    let holdout = settings.calibration_end.map(|cal| {
        holdout_check(
            tx,
            &figures,
            purchase.as_ref(),
            spend.as_ref(),
            cal,
            period,
            unit,
        )
    });
    Ok(Ltv {
        ids: tx.ids.clone(),
        settings: settings.clone(),
        currency_decimals: tx.currency_decimals,
        figures,
        purchase,
        spend,
        spend_correlation,
        spend_excluded,
        margin,
        p_alive: per_customer.iter().map(|p| p.0).collect(),
        expected_purchases: per_customer.iter().map(|p| p.1).collect(),
        expected_spend: per_customer.iter().map(|p| p.2).collect(),
        clv: per_customer.iter().map(|p| p.3).collect(),
        holdout,
    })
}

/// Σ over steps of (E[X(T, T+kⱼ)] − E[X(T, T+kⱼ₋₁)]) / (1+d)^kⱼ, d the per-period rate of
/// the annual discount. Steps are ⌈H/52⌉ periods long (one period for weekly models,
/// eight days for daily ones) so that a year's horizon costs at most 53 evaluations per
/// customer pattern; purchases are discounted to the end of their step.
pub fn discounted_purchases(
    model: &(dyn PurchaseModel + Send + Sync),
    annual_discount: f64,
    periods_per_year: f64,
    horizon: u32,
    c: &Customer,
) -> f64 {
    let step = horizon.div_ceil(52).max(1);
    let ln_growth = annual_discount.ln_1p() / periods_per_year;
    let (mut total, mut before, mut k) = (0.0, 0.0, 0u32);
    while k < horizon {
        k = (k + step).min(horizon);
        let now = model.expected_purchases(f64::from(k), c);
        total += (now - before) * (-ln_growth * f64::from(k)).exp();
        before = now;
    }
    total
}

fn customer(f: &RepeatFigures) -> Customer {
    Customer {
        x: f64::from(f.x),
        t_x: f.t_x,
        t: f.t,
    }
}

/// Each customer's mean spend per purchase period (first included), currency units.
fn own_spend_per_period(
    tx: &Transactions,
    figures: &[Option<RepeatFigures>],
    end: i32,
    period: Period,
    unit: f64,
) -> Vec<f64> {
    let all = holdout_figures(tx, figures, i32::MIN, end, period);
    all.iter()
        .map(|h| h.m_holdout.map_or(0.0, |m| m / unit))
        .collect()
}

fn holdout_check(
    tx: &Transactions,
    figures: &[Option<RepeatFigures>],
    purchase: &(dyn PurchaseModel + Send + Sync),
    spend: Option<&GammaGamma>,
    cal_end: i32,
    period: Period,
    unit: f64,
) -> HoldoutCheck {
    let length = f64::from(tx.as_of - cal_end) / f64::from(period.days());
    let holdout = holdout_figures(tx, figures, cal_end, tx.as_of, period);
    let predicted: Vec<Option<f64>> = figures
        .par_iter()
        .map(|f| {
            f.as_ref()
                .map(|f| purchase.expected_purchases(length, &customer(f)))
        })
        .collect();
    let mut sums = vec![(0u64, 0.0f64, 0u64); 8];
    let (mut abs, mut sq, mut n) = (0.0, 0.0, 0u64);
    let (mut total_predicted, mut total_actual) = (0.0, 0u64);
    for (c, f) in figures.iter().enumerate() {
        let (Some(f), Some(p)) = (f, predicted[c]) else {
            continue;
        };
        let actual = holdout[c].x_holdout;
        let b = &mut sums[(f.x as usize).min(7)];
        b.0 += 1;
        b.1 += p;
        b.2 += u64::from(actual);
        let err = p - f64::from(actual);
        abs += err.abs();
        sq += err * err;
        n += 1;
        total_predicted += p;
        total_actual += u64::from(actual);
    }
    let buckets = sums
        .iter()
        .enumerate()
        .map(|(k, &(count, pred, act))| Bucket {
            label: if k == 7 { "7+".into() } else { k.to_string() },
            customers: count,
            predicted_mean: if count > 0 { pred / count as f64 } else { 0.0 },
            actual_mean: if count > 0 {
                act as f64 / count as f64
            } else {
                0.0
            },
        })
        .collect();
    let spend = spend.and_then(|gg| {
        let pairs: Vec<(f64, f64)> = figures
            .iter()
            .zip(&holdout)
            .filter_map(|(f, h)| {
                let f = f.as_ref()?;
                let actual = h.m_holdout? / unit;
                Some((
                    gg.expected_spend(f64::from(f.x), f.m_x.map_or(0.0, |m| m / unit)),
                    actual,
                ))
            })
            .collect();
        if pairs.is_empty() {
            return None;
        }
        let k = pairs.len() as f64;
        Some(SpendCheck {
            customers: pairs.len() as u64,
            predicted_mean: pairs.iter().map(|p| p.0).sum::<f64>() / k,
            actual_mean: pairs.iter().map(|p| p.1).sum::<f64>() / k,
            mae: pairs.iter().map(|p| (p.0 - p.1).abs()).sum::<f64>() / k,
            rmse: (pairs.iter().map(|p| (p.0 - p.1).powi(2)).sum::<f64>() / k).sqrt(),
        })
    });
    let count = n.max(1) as f64;
    HoldoutCheck {
        calibration_end: cal_end,
        length,
        buckets,
        total_predicted,
        total_actual,
        mae: abs / count,
        rmse: (sq / count).sqrt(),
        spend,
        holdout,
        predicted,
    }
}

impl Ltv {
    pub fn report(&self) -> &FitReport {
        self.purchase.report()
    }

    /// Per-customer results: `customer_id, x, t_x, T, m_x, p_alive, expected_purchases,
    /// expected_spend, clv`, and with a calibration split `x_holdout, m_holdout,
    /// predicted_holdout`. Money in currency units; time in the model's periods.
    pub fn to_frame(&self) -> Result<DataFrame> {
        let n = self.ids.len();
        let unit = 10f64.powi(self.currency_decimals as i32);
        let fig = |g: &dyn Fn(&RepeatFigures) -> Option<f64>| {
            self.figures
                .iter()
                .map(|f| f.as_ref().and_then(g))
                .collect::<Vec<_>>()
        };
        let mut columns = vec![
            self.ids.to_column(None),
            Column::new(
                "x".into(),
                self.figures
                    .iter()
                    .map(|f| f.map(|f| i64::from(f.x)))
                    .collect::<Vec<_>>(),
            ),
            Column::new("t_x".into(), fig(&|f| Some(f.t_x))),
            Column::new("T".into(), fig(&|f| Some(f.t))),
            Column::new("m_x".into(), fig(&|f| f.m_x.map(|m| m / unit))),
            Column::new("p_alive".into(), self.p_alive.clone()),
            Column::new("expected_purchases".into(), self.expected_purchases.clone()),
            Column::new("expected_spend".into(), self.expected_spend.clone()),
            Column::new("clv".into(), self.clv.clone()),
        ];
        if let Some(h) = &self.holdout {
            columns.push(Column::new(
                "x_holdout".into(),
                h.holdout
                    .iter()
                    .map(|x| i64::from(x.x_holdout))
                    .collect::<Vec<_>>(),
            ));
            columns.push(Column::new(
                "m_holdout".into(),
                h.holdout
                    .iter()
                    .map(|x| x.m_holdout.map(|m| m / unit))
                    .collect::<Vec<_>>(),
            ));
            columns.push(Column::new("predicted_holdout".into(), h.predicted.clone()));
        }
        Ok(DataFrame::new(n, columns)?)
    }

    /// Sum of CLV over customers.
    pub fn total_clv(&self) -> f64 {
        self.clv.iter().flatten().sum()
    }
}

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
use crate::model_summary::{
    HoldoutFigures, Period, RepeatFigures, SummaryFile, check_calibration_end, holdout_figures,
    repeat_figures,
};
use crate::models::{
    self, Customer, FitObserver, FitOptions, FitReport, GammaGamma, ModelKind, PurchaseModel,
    spend_frequency_correlation,
};
use crate::transactions::{CustomerIds, Transactions};

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
    /// lifetimes' L2 penalizer on the model parameters (0 = plain maximum likelihood).
    pub penalizer: f64,
    /// Horizon of the expected-purchases column, in periods, when it differs from the CLV
    /// horizon (e.g. 39 weeks of purchases beside a year of CLV).
    pub purchases_horizon: Option<u32>,
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
            penalizer: 0.0,
            purchases_horizon: None,
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
    /// The cut-off day; 0 when the holdout came from a model summary's columns (the
    /// settings' `calibration_end` is then `None`).
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
    check_settings(settings)?;
    let end = match settings.calibration_end {
        Some(end) => {
            check_calibration_end(tx, end)?;
            end
        }
        None => tx.as_of,
    };
    let period = settings.period;
    let figures = repeat_figures(tx, end, period);
    let unit = 10f64.powi(tx.currency_decimals as i32);
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
    let own_spend = (!settings.gamma_gamma)
        .then(|| own_spend_per_period(tx, &figures, end, period, unit))
        .unwrap_or_default();
    let mut ltv = fit_and_score(
        tx.ids.clone(),
        tx.currency_decimals,
        figures,
        settings,
        margin,
        &own_spend,
    )?;
    if let Some(cal) = settings.calibration_end {
        let length = f64::from(tx.as_of - cal) / f64::from(period.days());
        let holdout = holdout_figures(tx, &ltv.figures, cal, tx.as_of, period);
        let lengths = vec![length; holdout.len()];
        ltv.holdout = Some(holdout_check(&ltv, holdout, &lengths, cal, unit));
    }
    Ok(ltv)
}

/// Fits and predicts from a model summary read from a file (see
/// [`crate::model_summary::read_summary`]), without transactions: the same
/// per-customer outputs as [`value`], money in the file's units, T and t_x in
/// `settings.period`, and the holdout check when the file has holdout columns.
/// Without a spend model each customer's own mean spend per repeat purchase is used;
/// the margin defaults to 1.
pub fn value_summary(summary: &SummaryFile, settings: &LtvSettings) -> Result<Ltv> {
    check_settings(settings)?;
    let figures: Vec<Option<RepeatFigures>> = (0..summary.x.len())
        .map(|i| {
            Some(RepeatFigures {
                x: summary.x[i],
                t_x: summary.t_x[i],
                t: summary.t[i],
                m_x: summary.m_x[i],
                first_day: 0,
            })
        })
        .collect();
    let own_spend: Vec<f64> = summary.m_x.iter().map(|m| m.unwrap_or(0.0)).collect();
    let mut ltv = fit_and_score(
        summary.ids.clone(),
        0,
        figures,
        settings,
        settings.margin.unwrap_or(1.0),
        &own_spend,
    )?;
    if let Some(h) = &summary.holdout {
        let holdout: Vec<HoldoutFigures> =
            h.x.iter()
                .zip(&h.m)
                .map(|(&x, &m)| HoldoutFigures {
                    x_holdout: x,
                    m_holdout: m,
                })
                .collect();
        ltv.holdout = Some(holdout_check(&ltv, holdout, &h.length, 0, 1.0));
    }
    Ok(ltv)
}

fn check_settings(settings: &LtvSettings) -> Result<()> {
    if !(settings.annual_discount > -1.0 && settings.annual_discount.is_finite()) {
        return Err(Error::Usage(format!(
            "discount rate must be above -1, got {}",
            settings.annual_discount
        )));
    }
    if settings.horizon == 0 {
        return Err(Error::Usage("horizon must be at least one period".into()));
    }
    if !(settings.penalizer.is_finite() && settings.penalizer >= 0.0) {
        return Err(Error::Usage(format!(
            "the penalizer must be a number >= 0, got {}",
            settings.penalizer
        )));
    }
    Ok(())
}

/// Fits both models to `figures` and scores every customer; `own_spend` (money units
/// per purchase, by customer) is used when there is no spend model.
fn fit_and_score(
    ids: CustomerIds,
    currency_decimals: u32,
    figures: Vec<Option<RepeatFigures>>,
    settings: &LtvSettings,
    margin: f64,
    own_spend: &[f64],
) -> Result<Ltv> {
    let period = settings.period;
    let customers: Vec<Customer> = figures.iter().flatten().map(customer).collect();
    let options = FitOptions {
        penalizer: settings.penalizer,
    };
    let purchase =
        models::fit_purchase_model_with(settings.model, &customers, &options, &settings.progress)
            .map_err(model_error)?;
    let unit = 10f64.powi(currency_decimals as i32);
    let repeaters: Vec<(f64, f64)> = figures
        .iter()
        .flatten()
        .filter_map(|f| f.m_x.map(|m| (f64::from(f.x), m / unit)))
        .collect();
    let spend_excluded = repeaters.iter().filter(|r| r.1 <= 0.0).count() as u64;
    let (xs, ms): (Vec<f64>, Vec<f64>) = repeaters.into_iter().filter(|r| r.1 > 0.0).unzip();
    let spend = if settings.gamma_gamma {
        Some(GammaGamma::fit_with(&xs, &ms, &options, &settings.progress).map_err(model_error)?)
    } else {
        None
    };
    let spend_correlation = (xs.len() > 2)
        .then(|| spend_frequency_correlation(&xs, &ms))
        .filter(|r| r.is_finite());
    let scores = score(purchase.as_ref(), &customers, settings, period.per_year());
    // Scores are in the order of the customers with figures; map them back by rank.
    let mut rank = Vec::with_capacity(figures.len());
    let mut next = 0usize;
    for f in &figures {
        rank.push(f.map(|_| {
            next += 1;
            next - 1
        }));
    }
    // Column by column, in parallel: a million rows of four figures at once would
    // be one large short-lived allocation.
    let expected_spend: Vec<Option<f64>> = figures
        .par_iter()
        .enumerate()
        .map(|(c, f)| {
            f.as_ref().map(|f| match &spend {
                Some(gg) => gg.expected_spend(f64::from(f.x), f.m_x.map_or(0.0, |m| m / unit)),
                None => own_spend[c],
            })
        })
        .collect();
    let score = |k: &Option<usize>| k.map(|k| scores[k]);
    let p_alive = rank
        .par_iter()
        .map(|k| score(k).map(|s| s.p_alive))
        .collect();
    let expected_purchases = rank
        .par_iter()
        .map(|k| score(k).map(|s| s.expected_purchases))
        .collect();
    let clv = rank
        .par_iter()
        .zip(&expected_spend)
        .map(|(k, spend_per)| Some(score(k)?.discounted_purchases * (*spend_per)? * margin))
        .collect();
    Ok(Ltv {
        ids,
        settings: settings.clone(),
        currency_decimals,
        figures,
        purchase,
        spend,
        spend_correlation,
        spend_excluded,
        margin,
        p_alive,
        expected_purchases,
        expected_spend,
        clv,
        holdout: None,
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

/// One customer's predictions over the horizon.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub p_alive: f64,
    pub expected_purchases: f64,
    /// Expected purchases discounted as in [`discounted_purchases`]; CLV is this times
    /// spend per purchase times margin.
    pub discounted_purchases: f64,
}

/// Scores every customer for `settings.horizon` periods at `settings.annual_discount`
/// (expected purchases over `settings.purchases_horizon` when given).
///
/// A customer's expectation is P(alive) times the expectation of an active customer,
/// which depends on (x, T) only: that part (and its discounted sum over the horizon,
/// the costly ₂F₁ work) is computed once per distinct (x, T), in parallel, and P(alive)
/// per customer in parallel. Every value is computed independently of the others, so
/// the result is the same at any thread count, and equals [`discounted_purchases`] and
/// [`PurchaseModel::expected_purchases`] customer by customer (see the tests).
pub fn score(
    model: &(dyn PurchaseModel + Send + Sync),
    customers: &[Customer],
    settings: &LtvSettings,
    periods_per_year: f64,
) -> Vec<Score> {
    let key = |c: &Customer| (c.x.to_bits(), c.t.to_bits());
    let mut groups: Vec<(u64, u64)> = customers.par_iter().map(key).collect();
    groups.par_sort_unstable();
    groups.dedup();
    let horizon = settings.horizon;
    let step = horizon.div_ceil(52).max(1);
    let ln_growth = settings.annual_discount.ln_1p() / periods_per_year;
    // The ends of the steps, each with its discount factor, then the purchases
    // horizon unless it is one of them.
    let mut ends: Vec<f64> = (1..=horizon.div_ceil(step))
        .map(|j| f64::from((j * step).min(horizon)))
        .collect();
    let discounts: Vec<f64> = ends.iter().map(|&k| (-ln_growth * k).exp()).collect();
    let steps = ends.len();
    let purchases_at = match settings.purchases_horizon {
        Some(h) if h != horizon => {
            let h = f64::from(h);
            Some(ends.iter().position(|&k| k == h).unwrap_or_else(|| {
                ends.push(h);
                steps
            }))
        }
        _ => steps.checked_sub(1),
    };
    let per_group: Vec<(f64, f64)> = groups
        .par_iter()
        .map_init(
            || vec![0.0; ends.len()],
            |values, &(x, t)| {
                let (x, t) = (f64::from_bits(x), f64::from_bits(t));
                model.expected_purchases_if_alive_at(&ends, x, t, values);
                let (mut total, mut before) = (0.0, 0.0);
                for (&now, &discount) in values[..steps].iter().zip(&discounts) {
                    total += (now - before) * discount;
                    before = now;
                }
                (purchases_at.map_or(0.0, |i| values[i]), total)
            },
        )
        .collect();
    customers
        .par_iter()
        .map(|c| {
            let g = groups
                .binary_search(&key(c))
                .map_or((f64::NAN, f64::NAN), |i| per_group[i]);
            let p_alive = model.p_alive(c);
            Score {
                p_alive,
                expected_purchases: p_alive * g.0,
                discounted_purchases: p_alive * g.1,
            }
        })
        .collect()
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

/// Predicted against actual purchases in the holdout, `lengths[c]` periods long for
/// customer c; predictions grouped by (x, T, length) as in [`score`].
fn holdout_check(
    ltv: &Ltv,
    holdout: Vec<HoldoutFigures>,
    lengths: &[f64],
    cal_end: i32,
    unit: f64,
) -> HoldoutCheck {
    let figures = &ltv.figures;
    let purchase = ltv.purchase.as_ref();
    let spend = ltv.spend.as_ref();
    let length = lengths.iter().sum::<f64>() / lengths.len().max(1) as f64;
    let key = |f: &RepeatFigures, c: usize| (f.x, f.t.to_bits(), lengths[c].to_bits());
    let mut groups: Vec<(u32, u64, u64)> = figures
        .iter()
        .enumerate()
        .filter_map(|(c, f)| f.as_ref().map(|f| key(f, c)))
        .collect();
    groups.par_sort_unstable();
    groups.dedup();
    let alive_part: Vec<f64> = groups
        .par_iter()
        .map(|&(x, t, len)| {
            purchase.expected_purchases_if_alive(
                f64::from_bits(len),
                f64::from(x),
                f64::from_bits(t),
            )
        })
        .collect();
    let predicted: Vec<Option<f64>> = figures
        .par_iter()
        .enumerate()
        .map(|(c, f)| {
            f.as_ref().map(|f| {
                let g = groups
                    .binary_search(&key(f, c))
                    .map_or(f64::NAN, |i| alive_part[i]);
                purchase.p_alive(&customer(f)) * g
            })
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
            Column::new("p_alive".into(), self.p_alive.as_slice()),
            Column::new(
                "expected_purchases".into(),
                self.expected_purchases.as_slice(),
            ),
            Column::new("expected_spend".into(), self.expected_spend.as_slice()),
            Column::new("clv".into(), self.clv.as_slice()),
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
            columns.push(Column::new(
                "predicted_holdout".into(),
                h.predicted.as_slice(),
            ));
        }
        Ok(DataFrame::new(n, columns)?)
    }

    /// Sum of CLV over customers.
    pub fn total_clv(&self) -> f64 {
        self.clv.iter().flatten().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{BgNbd, MbgNbd, ParetoNbd};

    /// Customers sharing (x, T) with different t_x, and a few of their own.
    fn customers() -> Vec<Customer> {
        (0..3000)
            .map(|i| {
                let x = f64::from(i % 7);
                let t = 20.0 + f64::from(i % 13);
                let t_x = if x > 0.0 {
                    t * f64::from(1 + i % 97) / 98.0
                } else {
                    0.0
                };
                Customer { x, t_x, t }
            })
            .collect()
    }

    #[test]
    fn grouped_scores_equal_the_per_customer_formulas_at_any_thread_count() {
        let models: Vec<Box<dyn PurchaseModel + Send + Sync>> = vec![
            Box::new(BgNbd::with_params(0.243, 4.414, 0.793, 2.426).unwrap()),
            Box::new(ParetoNbd::with_params(0.553, 10.578, 0.606, 11.669).unwrap()),
            Box::new(MbgNbd::with_params(0.525, 6.183, 0.891, 1.614).unwrap()),
        ];
        let data = customers();
        let settings = LtvSettings {
            horizon: 52,
            purchases_horizon: Some(39),
            annual_discount: 0.1,
            ..Default::default()
        };
        for m in &models {
            let pool = |n| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .unwrap()
            };
            let one = pool(1).install(|| score(m.as_ref(), &data, &settings, 52.0));
            let two = pool(2).install(|| score(m.as_ref(), &data, &settings, 52.0));
            assert_eq!(one, two, "{}", m.name());
            for (c, s) in data.iter().zip(&one) {
                // The plain sequential reference: each customer on his own.
                let alive = m.p_alive(c);
                let expected = m.expected_purchases(39.0, c);
                let discounted = discounted_purchases(m.as_ref(), 0.1, 52.0, 52, c);
                assert_eq!(s.p_alive, alive);
                assert!(
                    (s.expected_purchases - expected).abs() <= 1e-13 * expected.max(1e-3),
                    "{c:?}"
                );
                assert!(
                    (s.discounted_purchases - discounted).abs() <= 1e-13 * discounted.max(1e-3),
                    "{c:?}"
                );
            }
        }
    }
}

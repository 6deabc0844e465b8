//! Probabilistic customer-lifetime-value models ("buy 'til you die").
//!
//! * Non-contractual, continuous time — purchase models implementing
//!   [`PurchaseModel`]: [`BgNbd`] (Fader, Hardie & Lee 2005), [`ParetoNbd`]
//!   (Schmittlein, Morrison & Colombo 1987) and [`MbgNbd`] (Batislam, Denizel &
//!   Filiztekin 2007). Fit any of them with [`fit_purchase_model`].
//! * Non-contractual, discrete time — [`BgBb`] (Fader, Hardie & Shang 2010).
//! * Contractual, discrete time — [`Sbg`], the shifted-beta-geometric retention
//!   model (Fader & Hardie 2007).
//! * Spend per transaction — [`GammaGamma`] (Colombo & Jiang 1999; Fader &
//!   Hardie 2013).
//! * [`clv`] combines a purchase model with a spend figure and a discount rate.
//!
//! All fitting is maximum likelihood over the logarithms of the (positive)
//! parameters with [`optim::minimize`] from a fixed set of starting points, and
//! every sum over customers runs sequentially in input order, so a fit on the
//! same data is bit-identical from run to run and thread to thread. Standard
//! errors come from a central-difference Hessian of the negative
//! log-likelihood in the original parameter scale.
//!
//! The module depends on nothing outside itself (no external crates and no
//! other module of the crate), so it can be compiled on its own.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

pub mod bgbb;
pub mod bgnbd;
pub mod gamma_gamma;
pub mod mbgnbd;
pub mod optim;
pub mod pareto_nbd;
pub mod sbg;
pub mod special;

pub use bgbb::{BgBb, Pattern};
pub use bgnbd::BgNbd;
pub use gamma_gamma::{GammaGamma, spend_frequency_correlation};
pub use mbgnbd::MbgNbd;
pub use pareto_nbd::ParetoNbd;
pub use sbg::Sbg;

/// One customer's calibration-period summary, in any consistent time unit
/// (the CDNOW papers use weeks).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Customer {
    /// Number of repeat purchases (whole number >= 0); the first purchase is
    /// not counted.
    pub x: f64,
    /// Recency: time of the last repeat purchase, measured from the first
    /// purchase; must be 0 when `x` is 0.
    pub t_x: f64,
    /// Time from the first purchase to the end of the calibration period
    /// (`T` in the papers); `t >= t_x`.
    pub t: f64,
}

/// Result of a maximum-likelihood fit.
#[derive(Debug, Clone, PartialEq)]
pub struct FitReport {
    /// Model name, e.g. `"BG/NBD"`.
    pub model: &'static str,
    /// Estimates, named as in the model's paper (`r`, `alpha`, `a`, `b`, ...).
    pub params: Vec<(&'static str, f64)>,
    /// Asymptotic standard errors, in the same order as `params`, from the
    /// inverse of the numerical Hessian of the negative log-likelihood. They
    /// are NaN only when that Hessian is not positive definite (so not
    /// invertible as an information matrix), and for models built with
    /// `with_params` rather than fitted.
    pub std_errors: Vec<f64>,
    /// Maximised log-likelihood (NaN for models built with `with_params`).
    pub log_likelihood: f64,
    /// Optimiser iterations used by the start that produced the estimates.
    pub iterations: usize,
    /// Whether the optimiser's gradient test was met at the estimates.
    pub converged: bool,
    /// Number of starting points the optimiser ran (0 when not fitted).
    pub starts: usize,
}

impl FitReport {
    /// Estimate of the parameter called `name`, if the model has one.
    pub fn param(&self, name: &str) -> Option<f64> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    /// Standard error of the parameter called `name`, if the model has one.
    pub fn std_error(&self, name: &str) -> Option<f64> {
        self.params
            .iter()
            .position(|(n, _)| *n == name)
            .and_then(|i| self.std_errors.get(i).copied())
    }
}

/// Where a fit stands, as told to a [`FitObserver`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitProgress {
    /// Model name, e.g. `"BG/NBD"`.
    pub model: &'static str,
    /// The starting point being run, counted from 1.
    pub start: usize,
    /// Starting points the fit may try (it stops early once two agree).
    pub starts: usize,
    /// Optimiser iterations of this start so far.
    pub iteration: usize,
    /// Log-likelihood at the current point of this start.
    pub log_likelihood: f64,
}

/// A callback told how a fit gets on (see [`FitProgress`]), or none.
///
/// Called from the fitting thread at each start and after every optimiser
/// iteration. Any two observers compare equal and print only whether they are
/// set: an observer changes how a fit is watched, never its result.
#[derive(Clone, Default)]
pub struct FitObserver(Option<Arc<dyn Fn(FitProgress) + Send + Sync>>);

impl FitObserver {
    pub fn new(f: impl Fn(FitProgress) + Send + Sync + 'static) -> FitObserver {
        FitObserver(Some(Arc::new(f)))
    }

    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    fn notify(&self, progress: FitProgress) {
        if let Some(f) = &self.0 {
            f(progress);
        }
    }
}

impl fmt::Debug for FitObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_set() {
            "FitObserver(set)"
        } else {
            "FitObserver(none)"
        })
    }
}

impl PartialEq for FitObserver {
    fn eq(&self, _: &FitObserver) -> bool {
        true
    }
}

/// Why a model could not be fitted or built.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelError {
    /// No observations (or only observations of zero weight).
    Empty,
    /// The data cannot identify the model, e.g. nobody made a repeat purchase,
    /// or a parameter runs off to 0 or infinity.
    NotIdentified(String),
    /// The optimiser found no usable optimum.
    NoConvergence(String),
    /// An input value is out of range (negative counts, `t_x > T`, ...).
    InvalidInput(String),
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::Empty => write!(f, "no observations to fit"),
            ModelError::NotIdentified(m) => write!(f, "model not identified by the data: {m}"),
            ModelError::NoConvergence(m) => write!(f, "estimation did not converge: {m}"),
            ModelError::InvalidInput(m) => write!(f, "invalid input: {m}"),
        }
    }
}

impl std::error::Error for ModelError {}

/// Which continuous-time purchase model to fit with [`fit_purchase_model`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// [`BgNbd`].
    BgNbd,
    /// [`ParetoNbd`].
    ParetoNbd,
    /// [`MbgNbd`].
    MbgNbd,
}

impl FromStr for ModelKind {
    type Err = ModelError;

    /// Accepts `bgnbd`, `paretonbd` and `mbgnbd`, ignoring case and the
    /// separators `/`, `-`, `_` (so `"BG/NBD"` works too).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key: String = s
            .chars()
            .filter(|c| !matches!(c, '/' | '-' | '_' | ' '))
            .flat_map(char::to_lowercase)
            .collect();
        match key.as_str() {
            "bgnbd" => Ok(ModelKind::BgNbd),
            "paretonbd" => Ok(ModelKind::ParetoNbd),
            "mbgnbd" => Ok(ModelKind::MbgNbd),
            _ => Err(ModelError::InvalidInput(format!(
                "unknown model {s:?}; expected one of bgnbd, paretonbd, mbgnbd"
            ))),
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModelKind::BgNbd => "bgnbd",
            ModelKind::ParetoNbd => "paretonbd",
            ModelKind::MbgNbd => "mbgnbd",
        })
    }
}

/// A fitted continuous-time, non-contractual purchase model.
///
/// Prediction methods return NaN only for an invalid customer record
/// (non-finite or negative fields, `t_x > T`) or a negative/non-finite
/// horizon; valid inputs give finite results.
pub trait PurchaseModel {
    /// Model name, e.g. `"BG/NBD"`.
    fn name(&self) -> &'static str;
    /// Estimates and fit diagnostics.
    fn report(&self) -> &FitReport;
    /// Conditional expectation E[X(T, T+t) | x, t_x, T]: purchases in the
    /// next `t` time units by a customer with history `c`.
    fn expected_purchases(&self, t: f64, c: &Customer) -> f64;
    /// Probability that the customer is still active at the end of the
    /// calibration period.
    fn p_alive(&self, c: &Customer) -> f64;
    /// Unconditional E[X(t)]: repeat purchases in the first `t` time units by
    /// a newly acquired customer.
    fn expected_purchases_new(&self, t: f64) -> f64;
    /// Log-likelihood of `data` at the model's parameters (sequential sum).
    fn log_likelihood(&self, data: &[Customer]) -> Result<f64, ModelError>;
}

/// Fits the chosen purchase model to customer summaries.
///
/// Errors: [`ModelError::Empty`] for no customers, [`ModelError::InvalidInput`]
/// for a malformed record, [`ModelError::NotIdentified`] when nobody repeats
/// (all `x = 0`) or a parameter diverges, [`ModelError::NoConvergence`] when the
/// likelihood is not finite at any start or no optimum is found.
pub fn fit_purchase_model(
    kind: ModelKind,
    data: &[Customer],
) -> Result<Box<dyn PurchaseModel + Send + Sync>, ModelError> {
    fit_purchase_model_observed(kind, data, &FitObserver::default())
}

/// [`fit_purchase_model`], telling `progress` how the optimiser gets on.
pub fn fit_purchase_model_observed(
    kind: ModelKind,
    data: &[Customer],
    progress: &FitObserver,
) -> Result<Box<dyn PurchaseModel + Send + Sync>, ModelError> {
    Ok(match kind {
        ModelKind::BgNbd => Box::new(BgNbd::fit_observed(data, progress)?),
        ModelKind::ParetoNbd => Box::new(ParetoNbd::fit_observed(data, progress)?),
        ModelKind::MbgNbd => Box::new(MbgNbd::fit_observed(data, progress)?),
    })
}

/// Discounted residual customer value over the next `horizon_periods` periods.
///
/// CLV = Σₖ₌₁..H (E[X(T, T+k)] − E[X(T, T+k−1)]) · spend · margin / (1+d)ᵏ,
/// where E is [`PurchaseModel::expected_purchases`] (in model time units, one
/// period = one unit, e.g. weeks for CDNOW) and d is the per-period rate
/// equivalent to `annual_discount`: d = (1 + annual)^(1/periods_per_year) − 1.
/// Purchases expected in period k are discounted to the present as if they
/// occur at its end. `spend_per_purchase` is typically a Gamma-Gamma
/// [`GammaGamma::expected_spend`]; `margin` is a fraction (0.3 for 30%).
///
/// Returns NaN if `periods_per_year <= 0`, `annual_discount <= −1`, any
/// argument is non-finite, or the customer record is invalid.
pub fn clv(
    model: &dyn PurchaseModel,
    spend_per_purchase: f64,
    margin: f64,
    annual_discount: f64,
    periods_per_year: f64,
    horizon_periods: usize,
    c: &Customer,
) -> f64 {
    let args_ok = spend_per_purchase.is_finite()
        && margin.is_finite()
        && annual_discount.is_finite()
        && annual_discount > -1.0
        && periods_per_year.is_finite()
        && periods_per_year > 0.0;
    if !args_ok || validate_customer(c).is_err() {
        return f64::NAN;
    }
    // ln(1+d) straight from the annual rate avoids rounding in the pow/−1/+1 trip.
    let ln_growth = annual_discount.ln_1p() / periods_per_year;
    let mut total = 0.0;
    let mut previous = 0.0;
    for k in 1..=horizon_periods {
        let cumulative = model.expected_purchases(k as f64, c);
        total += (cumulative - previous) * (-(k as f64) * ln_growth).exp();
        previous = cumulative;
    }
    total * spend_per_purchase * margin
}

/// Checks one customer record.
fn validate_customer(c: &Customer) -> Result<(), ModelError> {
    let Customer { x, t_x, t } = *c;
    if !(x.is_finite() && t_x.is_finite() && t.is_finite()) {
        return Err(ModelError::InvalidInput(format!(
            "non-finite value in {c:?}"
        )));
    }
    if x < 0.0 || x.fract() != 0.0 {
        return Err(ModelError::InvalidInput(format!(
            "x must be a whole number >= 0, got {x}"
        )));
    }
    if t_x < 0.0 || t < t_x {
        return Err(ModelError::InvalidInput(format!(
            "need 0 <= t_x <= T, got t_x = {t_x}, T = {t}"
        )));
    }
    if x == 0.0 && t_x != 0.0 {
        return Err(ModelError::InvalidInput(format!(
            "t_x must be 0 when x = 0, got {t_x}"
        )));
    }
    Ok(())
}

/// Validation shared by the continuous-time purchase models before fitting.
fn validate_for_fit(data: &[Customer]) -> Result<(), ModelError> {
    if data.is_empty() {
        return Err(ModelError::Empty);
    }
    for c in data {
        validate_customer(c)?;
    }
    if data.iter().all(|c| c.x == 0.0) {
        return Err(ModelError::NotIdentified(
            "no customer made a repeat purchase (all x = 0), so purchase rates and drop-out cannot be separated"
                .into(),
        ));
    }
    Ok(())
}

/// Distinct customer records with their multiplicities, in order of first
/// appearance. Fitting evaluates each distinct record once per likelihood
/// call (CDNOW's 1,411 non-repeaters share about 80 distinct T values), and the
/// first-appearance order keeps the weighted sum deterministic.
fn distinct_weighted(data: &[Customer]) -> Vec<(Customer, f64)> {
    let mut index: std::collections::HashMap<(u64, u64, u64), usize> =
        std::collections::HashMap::new();
    let mut out: Vec<(Customer, f64)> = Vec::new();
    for c in data {
        let key = (c.x.to_bits(), c.t_x.to_bits(), c.t.to_bits());
        match index.get(&key) {
            Some(&i) => out[i].1 += 1.0,
            None => {
                index.insert(key, out.len());
                out.push((*c, 1.0));
            }
        }
    }
    out
}

/// Means of x and T, used to scale deterministic starting points so that they
/// do not depend on the time unit of the data.
fn data_scale(data: &[Customer]) -> (f64, f64) {
    let n = data.len() as f64;
    let mean_x = data.iter().map(|c| c.x).sum::<f64>() / n;
    let mean_t = data.iter().map(|c| c.t).sum::<f64>() / n;
    (mean_x.max(1e-3), mean_t.max(1e-3))
}

/// Sequential, input-order sum of per-record log-likelihood contributions.
/// Stops at the first non-finite term, which the optimiser treats as +inf.
///
/// Neumaier-compensated: the estimates of weakly identified parameters (e.g.
/// Pareto/NBD β) move with log-likelihood differences of 1e-8 on totals near
/// 1e4, so rounding noise in the sum would otherwise blur the optimum.
fn sum_ll<T: Sync>(data: &[T], term: impl Fn(&T) -> f64 + Sync) -> f64 {
    // Fixed-size chunks summed in parallel, then added in chunk order: the result does
    // not depend on the number of threads (and equals the plain sequential sum when the
    // data fit in one chunk).
    const CHUNK: usize = 1 << 13;
    use rayon::prelude::*;
    let partial = |chunk: &[T]| -> (f64, f64) {
        let mut total = 0.0_f64;
        let mut comp = 0.0_f64;
        for d in chunk {
            let v = term(d);
            if !v.is_finite() {
                return (f64::NAN, 0.0);
            }
            neumaier_add(&mut total, &mut comp, v);
        }
        (total, comp)
    };
    let parts: Vec<(f64, f64)> = if data.len() <= CHUNK {
        vec![partial(data)]
    } else {
        data.par_chunks(CHUNK).map(partial).collect()
    };
    let mut total = 0.0_f64;
    let mut comp = 0.0_f64;
    for (t, c) in parts {
        if !t.is_finite() {
            return f64::NAN;
        }
        neumaier_add(&mut total, &mut comp, t);
        comp += c;
    }
    total + comp
}

fn neumaier_add(total: &mut f64, comp: &mut f64, v: f64) {
    let t = *total + v;
    if total.abs() >= v.abs() {
        *comp += (*total - t) + v;
    } else {
        *comp += (v - t) + *total;
    }
    *total = t;
}

/// Log-parameters further than this from the first (data-scaled) starting
/// point are treated as outside the model.
const LOG_BOUND: f64 = 30.0;
/// An estimate whose logarithm ends further than this from the first
/// starting point (a factor of 6.6e7 either way) is reported as not
/// identified: the likelihood keeps improving towards a boundary. Measuring
/// from the data-scaled start keeps the test independent of time and money
/// units.
const LOG_DIVERGED: f64 = 18.0;

/// Maximum-likelihood fit of positive parameters.
///
/// `nll` is the negative log-likelihood in the original parameter scale;
/// `starts` are starting points in that scale. The search runs on ln θ so
/// that positivity is automatic.
fn fit_ml<F: Fn(&[f64]) -> f64>(
    model: &'static str,
    names: &[&'static str],
    starts: &[Vec<f64>],
    nll: F,
    progress: &FitObserver,
) -> Result<FitReport, ModelError> {
    let log_starts: Vec<Vec<f64>> = starts
        .iter()
        .map(|s| s.iter().map(|v| v.ln()).collect())
        .collect();
    let Some(reference) = log_starts.first().cloned() else {
        return Err(ModelError::NoConvergence(format!(
            "{model}: no starting points"
        )));
    };
    let objective = |u: &[f64]| -> f64 {
        if u.iter()
            .zip(&reference)
            .any(|(v, r)| (v - r).abs() > LOG_BOUND)
        {
            return f64::INFINITY;
        }
        let theta: Vec<f64> = u.iter().map(|v| v.exp()).collect();
        nll(&theta)
    };
    let opts = optim::OptimOptions::default();
    let mut report = |p: optim::OptimProgress| {
        progress.notify(FitProgress {
            model,
            start: p.start,
            starts: p.starts,
            iteration: p.iteration,
            log_likelihood: -p.f,
        })
    };
    let Some(best) = optim::minimize_with(&objective, &log_starts, &opts, &mut report) else {
        return Err(ModelError::NoConvergence(format!(
            "{model}: the log-likelihood is not finite at any of the {} starting points",
            starts.len()
        )));
    };
    for ((name, u), r) in names.iter().zip(&best.x).zip(&reference) {
        if (u - r).abs() > LOG_DIVERGED {
            return Err(ModelError::NotIdentified(format!(
                "{model}: parameter {name} runs off to {:e}; the data do not pin it down",
                u.exp()
            )));
        }
    }
    // A gradient this large means no optimum was reached at all, as opposed to
    // the strict test narrowly failing because of rounding noise.
    let near_optimum = best.max_gradient <= 1e-5 * (1.0 + best.f.abs());
    if !best.converged && !near_optimum {
        return Err(ModelError::NoConvergence(format!(
            "{model}: largest gradient {:e} at log-likelihood {}",
            best.max_gradient, -best.f
        )));
    }
    let theta: Vec<f64> = best.x.iter().map(|v| v.exp()).collect();
    let steps: Vec<f64> = theta.iter().map(|v| 1e-4 * v).collect();
    let std_errors = match optim::hessian(&nll, &theta, &steps).and_then(|h| optim::invert_spd(&h))
    {
        Some(cov) => (0..theta.len())
            .map(|i| {
                if cov[i][i] > 0.0 {
                    cov[i][i].sqrt()
                } else {
                    f64::NAN
                }
            })
            .collect(),
        None => vec![f64::NAN; theta.len()],
    };
    Ok(FitReport {
        model,
        params: names.iter().copied().zip(theta.iter().copied()).collect(),
        std_errors,
        log_likelihood: -best.f,
        iterations: best.iterations,
        converged: best.converged,
        starts: best.starts,
    })
}

/// Report for a model built from given parameters instead of fitted.
fn unfitted_report(model: &'static str, names: &[&'static str], values: &[f64]) -> FitReport {
    FitReport {
        model,
        params: names.iter().copied().zip(values.iter().copied()).collect(),
        std_errors: vec![f64::NAN; values.len()],
        log_likelihood: f64::NAN,
        iterations: 0,
        converged: false,
        starts: 0,
    }
}

/// Checks that user-supplied parameters are finite and positive.
fn check_positive(model: &str, names: &[&str], values: &[f64]) -> Result<(), ModelError> {
    for (n, v) in names.iter().zip(values) {
        if !(v.is_finite() && *v > 0.0) {
            return Err(ModelError::InvalidInput(format!(
                "{model}: parameter {n} must be finite and > 0, got {v}"
            )));
        }
    }
    Ok(())
}

/// Evaluates `f(p)` where the closed form `f` has a removable singularity at
/// `p = at` (e.g. the 1/(a−1) factor of BG/NBD expectations): within `1e-5`
/// of it, linearly interpolates between the two sides. The interpolation error
/// is O(1e-10) relative, below the cancellation error the closed form itself
/// would suffer that close to the singularity.
fn across_removable(p: f64, at: f64, f: impl Fn(f64) -> f64) -> f64 {
    const H: f64 = 1e-5;
    if (p - at).abs() >= H {
        return f(p);
    }
    let lo = f(at - H);
    let hi = f(at + H);
    lo + (hi - lo) * (p - (at - H)) / (2.0 * H)
}

#[cfg(test)]
mod test_data {
    //! Fixture readers shared by the model tests.
    use super::Customer;

    /// CDNOW calibration summary: (customer, zbar) in file order.
    pub fn cdnow() -> Vec<(Customer, f64)> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/cdnow_summary.csv"
        );
        let text = std::fs::read_to_string(path).expect("CDNOW fixture present");
        let mut out = Vec::new();
        for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let f: Vec<f64> = line
                .split(',')
                .map(|v| v.trim().parse::<f64>().expect("numeric field"))
                .collect();
            assert_eq!(f.len(), 5, "ID,x,t_x,T,zbar");
            out.push((
                Customer {
                    x: f[1],
                    t_x: f[2],
                    t: f[3],
                },
                f[4],
            ));
        }
        assert_eq!(out.len(), 2357);
        out
    }

    pub fn cdnow_customers() -> Vec<Customer> {
        cdnow().into_iter().map(|(c, _)| c).collect()
    }

    /// Donations patterns: (frequency, recency, periods, weight).
    pub fn donations() -> Vec<super::Pattern> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/donations.csv");
        let text = std::fs::read_to_string(path).expect("donations fixture present");
        let mut out = Vec::new();
        for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            assert_eq!(f.len(), 4, "frequency,recency,periods,weights");
            out.push(super::Pattern {
                x: f[0].parse().expect("frequency"),
                t_x: f[1].parse().expect("recency"),
                n: f[2].parse().expect("periods"),
                weight: f[3].parse().expect("weights"),
            });
        }
        out
    }

    pub use super::special::tanh_sinh_nodes as tanh_sinh;

    /// Rounds to `d` decimals, as the papers print.
    pub fn round(v: f64, d: i32) -> f64 {
        let s = 10f64.powi(d);
        (v * s).round() / s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_kind_parses() {
        assert_eq!("bgnbd".parse::<ModelKind>(), Ok(ModelKind::BgNbd));
        assert_eq!("ParetoNBD".parse::<ModelKind>(), Ok(ModelKind::ParetoNbd));
        assert_eq!("MBG/NBD".parse::<ModelKind>(), Ok(ModelKind::MbgNbd));
        assert!(matches!(
            "nbd".parse::<ModelKind>(),
            Err(ModelError::InvalidInput(_))
        ));
        for k in [ModelKind::BgNbd, ModelKind::ParetoNbd, ModelKind::MbgNbd] {
            assert_eq!(k.to_string().parse::<ModelKind>(), Ok(k));
        }
    }

    #[test]
    fn errors_for_empty_unidentified_and_invalid_data() {
        for kind in [ModelKind::BgNbd, ModelKind::ParetoNbd, ModelKind::MbgNbd] {
            assert_eq!(fit_purchase_model(kind, &[]).err(), Some(ModelError::Empty));
            let nobody = vec![
                Customer {
                    x: 0.0,
                    t_x: 0.0,
                    t: 30.0
                };
                50
            ];
            assert!(matches!(
                fit_purchase_model(kind, &nobody),
                Err(ModelError::NotIdentified(_))
            ));
            let bad = [Customer {
                x: 1.0,
                t_x: 5.0,
                t: 4.0,
            }];
            assert!(matches!(
                fit_purchase_model(kind, &bad),
                Err(ModelError::InvalidInput(_))
            ));
            let bad = [Customer {
                x: 1.5,
                t_x: 1.0,
                t: 4.0,
            }];
            assert!(matches!(
                fit_purchase_model(kind, &bad),
                Err(ModelError::InvalidInput(_))
            ));
            let bad = [Customer {
                x: 1.0,
                t_x: f64::NAN,
                t: 4.0,
            }];
            assert!(matches!(
                fit_purchase_model(kind, &bad),
                Err(ModelError::InvalidInput(_))
            ));
        }
        let e = ModelError::NotIdentified("x".into());
        assert!(e.to_string().contains("not identified"));
    }

    #[test]
    fn fit_report_lookup() {
        let r = unfitted_report("M", &["r", "alpha"], &[0.5, 2.0]);
        assert_eq!(r.param("alpha"), Some(2.0));
        assert_eq!(r.param("beta"), None);
        assert!(r.std_error("r").is_some_and(f64::is_nan));
    }

    #[test]
    fn clv_discounts_incremental_purchases() {
        let m = BgNbd::with_params(0.243, 4.414, 0.793, 2.426).expect("valid");
        let c = Customer {
            x: 2.0,
            t_x: 30.43,
            t: 38.86,
        };
        // Zero discount: CLV telescopes to E[X(T, T+H)] · spend · margin.
        let undiscounted = clv(&m, 10.0, 0.5, 0.0, 52.0, 39, &c);
        let want = m.expected_purchases(39.0, &c) * 5.0;
        assert!((undiscounted - want).abs() < 1e-12 * want);
        // A positive rate lowers it; per-period rate compounds to the annual one.
        let discounted = clv(&m, 10.0, 0.5, 0.10, 52.0, 39, &c);
        assert!(discounted < undiscounted && discounted > 0.9 * undiscounted);
        let mut manual = 0.0;
        let d = 1.10_f64.powf(1.0 / 52.0) - 1.0;
        for k in 1..=39 {
            let inc = m.expected_purchases(k as f64, &c) - m.expected_purchases(k as f64 - 1.0, &c);
            manual += inc * 5.0 / (1.0 + d).powi(k);
        }
        assert!((discounted - manual).abs() < 1e-12 * manual);
        assert!(clv(&m, 10.0, 0.5, -1.0, 52.0, 39, &c).is_nan());
        // Works through the boxed trait object that fit_purchase_model returns.
        let boxed: Box<dyn PurchaseModel + Send + Sync> = Box::new(m.clone());
        assert_eq!(clv(&*boxed, 10.0, 0.5, 0.10, 52.0, 39, &c), discounted);
        assert!(clv(&m, 10.0, 0.5, 0.1, 0.0, 39, &c).is_nan());
        assert_eq!(clv(&m, 10.0, 0.5, 0.1, 52.0, 0, &c), 0.0);
    }
}

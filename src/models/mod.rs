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
//! The purchase models and Gamma-Gamma are fitted by maximum likelihood with exact
//! gradients (digamma for the Γ terms; for Pareto/NBD the ₂F₁ series differentiated
//! term by term): BFGS on the logarithms of the parameters from the first of a few
//! data-scaled starting points, further starts only when that search does not
//! converge or ends where the Hessian is not positive definite. Above 40,000
//! customers a fit on a deterministic subsample of 20,000 starts the full fit,
//! with its curvature, a few steps from the optimum. The likelihood sums run over
//! distinct records in fixed-size parallel chunks added in order (see
//! `likelihood`), so a fit is bit-identical at any thread count. Standard errors
//! come from the inverse Hessian, as central differences of the exact gradient.
//! When the maximum lies on the boundary of the parameter space (no dropout;
//! no spend heterogeneity) the reduced model is fitted (NBD; constant spend) and
//! [`FitReport::boundary`] says so in words. BG/BB and sBG, small weighted
//! problems, use central-difference gradients ([`optim::minimize`]).
//!
//! The module depends on no other module of the crate and on no external crate but
//! rayon, so it can be compiled on its own.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

pub mod bgbb;
pub mod bgnbd;
pub mod gamma_gamma;
mod likelihood;
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
    /// inverse of the Hessian of the negative log-likelihood. They
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
    /// When the likelihood's maximum lies on the boundary of the parameter space,
    /// what the data say in words (e.g. "no dropout in these data: BG/NBD reduces
    /// to the NBD; P(alive) = 1"); `params` are then the reduced model's.
    pub boundary: Option<String>,
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
    /// E[X(T, T+t) | alive at T, x, T]: purchases in the next `t` time units by a
    /// customer with `x` repeat purchases and age `age` (T) who is still active. The
    /// conditional expectation is P(alive) times this, and since it does not depend
    /// on t_x, customers sharing (x, T) share it (see `ltv`'s scoring).
    fn expected_purchases_if_alive(&self, t: f64, x: f64, age: f64) -> f64;
    /// [`expected_purchases_if_alive`](Self::expected_purchases_if_alive) at every
    /// horizon of `ts`, into `out` (as long as `ts`): the same values, computed
    /// together where horizons share work (the ₂F₁ series of BG/NBD and MBG/NBD).
    fn expected_purchases_if_alive_at(&self, ts: &[f64], x: f64, age: f64, out: &mut [f64]) {
        for (o, &t) in out.iter_mut().zip(ts) {
            *o = self.expected_purchases_if_alive(t, x, age);
        }
    }
    /// P(X(t) = n): the probability that a newly acquired customer makes exactly `n`
    /// repeat purchases in the first `t` time units (lifetimes'
    /// `probability_of_n_purchases_up_to_time`).
    fn probability_of_purchases(&self, n: u32, t: f64) -> f64;
}

/// ln [Γ(r+n)/(Γ(r) n!) · (α/(α+t))^r (t/(α+t))^n], the NBD probability of n
/// purchases in (0, t] with λ ~ Gamma(r, α) (−inf for n > 0 at t = 0).
fn ln_nbd_probability(r: f64, alpha: f64, n: u32, t: f64) -> f64 {
    let n = f64::from(n);
    let ln_weight = special::ln_gamma(r + n) - special::ln_gamma(r) - special::ln_gamma(n + 1.0);
    let ln_p = -(t / alpha).ln_1p(); // ln(α/(α+t))
    let ln_q = if n == 0.0 {
        0.0
    } else {
        n * (t / (alpha + t)).ln()
    };
    ln_weight + r * ln_p + ln_q
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
    fit_purchase_model_with(kind, data, &FitOptions::default(), progress)
}

/// [`fit_purchase_model_observed`] with [`FitOptions`] (lifetimes' penalizer).
pub fn fit_purchase_model_with(
    kind: ModelKind,
    data: &[Customer],
    options: &FitOptions,
    progress: &FitObserver,
) -> Result<Box<dyn PurchaseModel + Send + Sync>, ModelError> {
    Ok(match kind {
        ModelKind::BgNbd => Box::new(BgNbd::fit_with(data, options, progress)?),
        ModelKind::ParetoNbd => Box::new(ParetoNbd::fit_with(data, options, progress)?),
        ModelKind::MbgNbd => Box::new(MbgNbd::fit_with(data, options, progress)?),
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
        boundary: None,
    })
}

/// How to fit a model.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FitOptions {
    /// L2 penalty c as in lifetimes' `penalizer_coef`: c·Σθ² is added to the *mean*
    /// negative log-likelihood (θ the model's parameters). 0, the default, is plain
    /// maximum likelihood.
    pub penalizer: f64,
}

impl FitOptions {
    fn check(&self) -> Result<(), ModelError> {
        if self.penalizer.is_finite() && self.penalizer >= 0.0 {
            Ok(())
        } else {
            Err(ModelError::InvalidInput(format!(
                "the penalizer must be a finite number >= 0, got {}",
                self.penalizer
            )))
        }
    }
}

/// Data sets at or below this many records are fitted directly; larger ones are
/// first fitted on a deterministic subsample of about this size, whose optimum
/// and curvature start the full fit a few steps from its optimum.
const SUBSAMPLE: usize = 20_000;

/// lifetimes' L2 penalty: c·Σ(θᵢ·kᵢ)², k = `scales`, added to the mean negative
/// log-likelihood (so c·N·Σ(θᵢkᵢ)² to the sum), or with `on_total` to the sum itself
/// (lifetimes' Pareto/NBD divides by the mean weight, 1). Time-unit parameters
/// (α, β) get k = 1/max T, as lifetimes fits them with T scaled to at most 1.
#[derive(Clone, Copy)]
pub(super) struct Penalty<'a> {
    pub scales: &'a [f64],
    pub on_total: bool,
}

/// A negative log-likelihood with exact gradient in the model's own parameters θ,
/// and the number of customers it sums over (which scales the penalty).
pub(super) struct Objective<'a> {
    pub nll: &'a (dyn optim::ValueGradient + Sync),
    pub weight: f64,
}

/// Outcome of [`fit_ml_grad`].
pub(super) struct GradFit {
    pub report: FitReport,
    /// The search ran into the boundary of the model, or a parameter ran off
    /// towards it; the model should fit its reduced form.
    pub at_boundary: bool,
    /// The Hessian at the estimates is positive definite (an interior maximum).
    pub positive_definite: bool,
    /// Fitted with a penalty, which keeps the estimates off the boundary.
    pub penalized: bool,
}

impl GradFit {
    /// Whether the reduced model should be fitted and compared: the search hit the
    /// boundary, the maximum is not a proper interior one, or the estimates lie
    /// close to the boundary (`near`).
    fn doubtful(&self, near: impl Fn(&[f64]) -> bool) -> bool {
        let theta: Vec<f64> = self.report.params.iter().map(|p| p.1).collect();
        self.at_boundary || (!self.penalized && (!self.positive_definite || near(&theta)))
    }

    /// Whether the reduced model, fitted with `reduced_ll`, is the answer: always at
    /// the boundary, otherwise when the full model improves on it by less than
    /// [`BOUNDARY_LL`] (a likelihood-ratio statistic below 0.002: the data cannot
    /// tell them apart).
    fn reduces_to(&self, reduced_ll: f64) -> bool {
        self.at_boundary || reduced_ll >= self.report.log_likelihood - BOUNDARY_LL
    }
}

/// See [`GradFit::reduces_to`].
const BOUNDARY_LL: f64 = 1e-3;

/// One search in ln θ with its Hessian (ln θ scale) when positive definite.
struct Search {
    result: optim::GradientResult,
    /// The Hessian in ln θ (penalty included) where the search converged.
    curvature: Option<Vec<Vec<f64>>>,
    /// `curvature` when it is positive definite.
    hessian: Option<Vec<Vec<f64>>>,
    start: usize,
}

/// Maximum-likelihood fit with exact gradients: BFGS on ln θ from the first
/// starting point, further starts only when that search does not converge or its
/// Hessian is not positive definite. Above [`SUBSAMPLE`] customers the first fit
/// runs on a subsample (`sub`) and the full fit starts at its optimum with its
/// curvature scaled to the full data. `at_boundary` (on θ) stops a search that is
/// heading for the model's boundary. Standard errors come from central
/// differences of the exact gradient. The penalty (if any) is lifetimes' (see
/// [`Penalty`]).
#[allow(clippy::too_many_arguments)]
pub(super) fn fit_ml_grad(
    model: &'static str,
    names: &[&'static str],
    starts: &[Vec<f64>],
    full: Objective<'_>,
    sub: Option<Objective<'_>>,
    options: &FitOptions,
    penalty: Penalty<'_>,
    at_boundary: &dyn Fn(&[f64]) -> bool,
    progress: &FitObserver,
) -> Result<GradFit, ModelError> {
    options.check()?;
    let log_starts: Vec<Vec<f64>> = starts
        .iter()
        .map(|s| s.iter().map(|v| v.ln()).collect())
        .collect();
    let Some(reference) = log_starts.first().cloned() else {
        return Err(ModelError::NoConvergence(format!(
            "{model}: no starting points"
        )));
    };
    let n = reference.len();
    let penalizer = options.penalizer;
    let full_weight = full.weight;
    // The objective in ln θ: f(e^u) + penalty, gradient by the chain rule.
    let in_logs = |obj: &Objective<'_>, u: &[f64]| -> Option<(f64, Vec<f64>)> {
        if u.iter()
            .zip(&reference)
            .any(|(v, r)| (v - r).abs() > LOG_BOUND)
        {
            return None;
        }
        let theta: Vec<f64> = u.iter().map(|v| v.exp()).collect();
        let (mut f, mut g) = obj.nll.value_gradient(&theta)?;
        if penalizer > 0.0 {
            // Per customer (mean likelihood) or once for the whole sum, which a
            // subsample carries in proportion.
            let c = if penalty.on_total {
                penalizer * obj.weight / full_weight
            } else {
                penalizer * obj.weight
            };
            // lifetimes penalises its time-scaled parameters (T scaled to at most 1).
            for ((gi, t), k) in g.iter_mut().zip(&theta).zip(penalty.scales) {
                f += c * (t * k) * (t * k);
                *gi += 2.0 * c * t * k * k;
            }
        }
        g.iter_mut().zip(&theta).for_each(|(gi, t)| *gi *= t);
        (f.is_finite() && g.iter().all(|v| v.is_finite())).then_some((f, g))
    };
    let opts = optim::OptimOptions::default();
    let stop = |u: &[f64]| at_boundary(&u.iter().map(|v| v.exp()).collect::<Vec<_>>());
    let search = |obj: &Objective<'_>, u0: &[f64], h0: Option<Vec<Vec<f64>>>, start: usize| {
        let fg = |u: &[f64]| in_logs(obj, u);
        let mut told = |iteration: usize, f: f64| {
            progress.notify(FitProgress {
                model,
                start,
                starts: starts.len(),
                iteration,
                log_likelihood: -f,
            })
        };
        let result = optim::bfgs_with_gradient(&fg, u0, h0, &opts, &stop, &mut told)?;
        let curvature = if result.converged && !result.stopped {
            optim::hessian_forward(&fg, &result.x, &result.gradient, 1e-5)
        } else {
            None
        };
        let hessian = curvature.clone().filter(|h| optim::invert_spd(h).is_some());
        Some(Search {
            result,
            curvature,
            hessian,
            start,
        })
    };
    let better = |a: &Search, b: &Search| {
        let rank = |s: &Search| (s.hessian.is_some(), s.result.converged);
        rank(a) > rank(b) || (rank(a) == rank(b) && a.result.f < b.result.f)
    };
    // Starts in order until one converges to an optimum with a positive-definite
    // Hessian; the best of those run otherwise.
    let multi_start = |obj: &Objective<'_>, runs: &mut usize| -> Option<Search> {
        let mut best: Option<Search> = None;
        for (k, u0) in log_starts.iter().enumerate() {
            let Some(s) = search(obj, u0, None, k + 1) else {
                continue;
            };
            *runs += 1;
            let done = s.hessian.is_some();
            if best.as_ref().is_none_or(|b| better(&s, b)) {
                best = Some(s);
            }
            if done {
                break;
            }
        }
        best
    };
    let mut runs = 0;
    let mut found: Option<Search> = None;
    if let Some(sub) = &sub {
        let mut sub_runs = 0;
        if let Some(first) = multi_start(sub, &mut sub_runs)
            && let Some(h) = &first.hessian
        {
            let scale = full.weight / sub.weight;
            let scaled: Vec<Vec<f64>> = h
                .iter()
                .map(|row| row.iter().map(|v| v * scale).collect())
                .collect();
            let h0 = optim::invert_spd(&scaled);
            if let Some(s) = search(&full, &first.result.x, h0, first.start) {
                runs += 1;
                if s.hessian.is_some() {
                    found = Some(s);
                }
            }
        }
    }
    let best = match found {
        Some(s) => s,
        None => multi_start(&full, &mut runs).ok_or_else(|| {
            ModelError::NoConvergence(format!(
                "{model}: the log-likelihood is not finite at any of the {} starting points",
                starts.len()
            ))
        })?,
    };
    let r = &best.result;
    let diverged =
        r.x.iter()
            .zip(&reference)
            .any(|(u, c)| (u - c).abs() > LOG_DIVERGED);
    let theta: Vec<f64> = r.x.iter().map(|v| v.exp()).collect();
    let at_edge = r.stopped || diverged || at_boundary(&theta);
    if !at_edge && !r.converged {
        let near_optimum = optim_max_abs(&r.gradient) <= 1e-5 * (1.0 + r.f.abs());
        if !near_optimum {
            return Err(ModelError::NoConvergence(format!(
                "{model}: largest gradient {:e} at log-likelihood {}",
                optim_max_abs(&r.gradient),
                -r.f
            )));
        }
    }
    // The Hessian in θ from the one in ln θ: H_θ = D⁻¹(H_u − diag(g_u))D⁻¹, D = diag(θ),
    // less the penalty's 2c·kᵢ² on the diagonal; otherwise differences in θ afresh.
    let std_errors = match &best.curvature {
        Some(h_u) => {
            let c = if penalizer == 0.0 {
                0.0
            } else if penalty.on_total {
                penalizer
            } else {
                penalizer * full_weight
            };
            let h: Vec<Vec<f64>> = (0..n)
                .map(|i| {
                    (0..n)
                        .map(|j| {
                            let mut v = h_u[i][j];
                            if i == j {
                                v -= r.gradient[i];
                            }
                            v /= theta[i] * theta[j];
                            if i == j {
                                v -= 2.0 * c * penalty.scales[i] * penalty.scales[i];
                            }
                            v
                        })
                        .collect()
                })
                .collect();
            errors_from_hessian(&h)
        }
        None => standard_errors(&full, &theta),
    };
    // The maximised objective includes the penalty; report the likelihood itself.
    let log_likelihood = if penalizer > 0.0 {
        full.nll
            .value_gradient(&theta)
            .map_or(f64::NAN, |(f, _)| -f)
    } else {
        -r.f
    };
    Ok(GradFit {
        penalized: penalizer > 0.0,
        report: FitReport {
            model,
            params: names.iter().copied().zip(theta.iter().copied()).collect(),
            std_errors,
            log_likelihood,
            iterations: r.iterations,
            converged: r.converged,
            starts: runs,
            boundary: None,
        },
        at_boundary: at_edge,
        positive_definite: best.hessian.is_some(),
    })
}

/// Negative log-likelihood of the NBD (Ehrenberg 1959), the purchase model
/// without dropout, and its gradient in (r, α):
/// ln L = ln Γ(r+x) − ln Γ(r) + r ln α − (r+x) ln(α+T)
/// (t_x drops out: with no dropout only the count over (0, T] matters).
fn nbd_nll_gradient(p: &[f64], data: &likelihood::Prepared) -> Option<(f64, Vec<f64>)> {
    use special::{digamma, ln_gamma};
    let (r, alpha) = (p[0], p[1]);
    let (lg_r, psi_r) = (ln_gamma(r), digamma(r));
    let mut c = [0.0; 2];
    for (&x, &w) in data.xs.iter().zip(&data.x_weights) {
        c[0] += w * (ln_gamma(r + x) - lg_r);
        c[1] += w * (digamma(r + x) - psi_r);
    }
    let sums = likelihood::par_sum(&data.rows, |row: &likelihood::Row, acc: &mut [f64; 3]| {
        let ln_t = (alpha + row.t).ln();
        acc[0] += row.w * (r + row.x) * ln_t;
        acc[1] += row.w * ln_t;
        acc[2] += row.w * (r + row.x) / (alpha + row.t);
    });
    let n = data.total_weight;
    let ll = c[0] + n * r * alpha.ln() - sums[0];
    let g = [c[1] + n * alpha.ln() - sums[1], n * r / alpha - sums[2]];
    (ll.is_finite() && g.iter().all(|v| v.is_finite())).then(|| (-ll, vec![-g[0], -g[1]]))
}

/// Fits the NBD, the reduced form of the purchase models when the data show no
/// dropout; returns the report (parameters r, alpha) and (r, α).
fn fit_nbd(
    model: &'static str,
    data: &[Customer],
    prepared: &likelihood::Prepared,
    options: &FitOptions,
    progress: &FitObserver,
) -> Result<(FitReport, [f64; 2]), ModelError> {
    let (mean_x, mean_t) = data_scale(data);
    let unit = mean_t / mean_x;
    let nll = |p: &[f64]| nbd_nll_gradient(p, prepared);
    let fit = fit_ml_grad(
        model,
        &["r", "alpha"],
        &[
            vec![1.0, unit],
            vec![0.5, 0.5 * unit],
            vec![2.0, 2.0 * unit],
        ],
        Objective {
            nll: &nll,
            weight: prepared.total_weight,
        },
        None,
        options,
        Penalty {
            scales: &[1.0, 1.0 / max_age(data)],
            on_total: false,
        },
        &|_| false,
        progress,
    )?;
    if fit.at_boundary {
        return Err(ModelError::NotIdentified(format!(
            "{model}: even without dropout the purchase rates are not identified (the NBD's r or alpha runs off)"
        )));
    }
    let v = [fit.report.params[0].1, fit.report.params[1].1];
    Ok((fit.report, v))
}

/// The longest T, the time unit of lifetimes' penalty.
fn max_age(data: &[Customer]) -> f64 {
    data.iter()
        .map(|c| c.t)
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE)
}

fn optim_max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0_f64, |m, x| m.max(x.abs()))
}

/// Asymptotic standard errors in θ from the inverse of the Hessian of the
/// (unpenalised) negative log-likelihood, by central differences of its exact
/// gradient; NaN where that Hessian is not positive definite.
fn standard_errors(obj: &Objective<'_>, theta: &[f64]) -> Vec<f64> {
    let steps: Vec<f64> = theta.iter().map(|v| 1e-5 * v).collect();
    match optim::hessian_from_gradient(obj.nll, theta, &steps) {
        Some(h) => errors_from_hessian(&h),
        None => vec![f64::NAN; theta.len()],
    }
}

/// Square roots of the diagonal of the inverse Hessian; NaN where it is not
/// positive definite.
fn errors_from_hessian(h: &[Vec<f64>]) -> Vec<f64> {
    match optim::invert_spd(h) {
        Some(cov) => (0..h.len())
            .map(|i| {
                if cov[i][i] > 0.0 {
                    cov[i][i].sqrt()
                } else {
                    f64::NAN
                }
            })
            .collect(),
        None => vec![f64::NAN; h.len()],
    }
}

/// Largest relative difference between an exact gradient and central differences
/// of the value, for the tests of every model's gradient.
#[cfg(test)]
pub(super) fn gradient_error(fg: &dyn optim::ValueGradient, theta: &[f64]) -> f64 {
    let (_, g) = fg.value_gradient(theta).expect("finite");
    let mut worst = 0.0_f64;
    for i in 0..theta.len() {
        // Richardson-extrapolated central differences, O(h⁴), with a step large
        // enough that rounding (ε·|f|/h) stays near 1e-8 for |f| ~ 1e4.
        let quotient = |h: f64| {
            let mut p = theta.to_vec();
            p[i] = theta[i] + h;
            let fp = fg.value_gradient(&p).expect("finite").0;
            p[i] = theta[i] - h;
            let fm = fg.value_gradient(&p).expect("finite").0;
            (fp - fm) / (2.0 * h)
        };
        let h = 1e-3 * theta[i];
        let fd = (4.0 * quotient(h / 2.0) - quotient(h)) / 3.0;
        // At an optimum the gradient is ~0: compare on the scale of 1 there.
        let scale = g[i].abs().max(fd.abs()).max(1.0);
        worst = worst.max((g[i] - fd).abs() / scale);
    }
    worst
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
        boundary: None,
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
    let mut out = [0.0];
    across_removable_many(p, at, &mut out, |p, out| out[0] = f(p));
    out[0]
}

/// [`across_removable`] for a closed form `f(p, out)` with several values.
fn across_removable_many(p: f64, at: f64, out: &mut [f64], f: impl Fn(f64, &mut [f64])) {
    const H: f64 = 1e-5;
    if (p - at).abs() >= H {
        return f(p, out);
    }
    let mut hi = vec![0.0; out.len()];
    f(at - H, out);
    f(at + H, &mut hi);
    for (lo, hi) in out.iter_mut().zip(hi) {
        *lo += (hi - *lo) * (p - (at - H)) / (2.0 * H);
    }
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

    /// CDNOW `times` over, each copy's recency shrunk by a hair (distinct records,
    /// 2357·times customers): its maximum is CDNOW's, and above 40,000 customers the
    /// fits start on a subsample and sum in many chunks.
    fn replicated_cdnow(times: usize) -> Vec<Customer> {
        let base = test_data::cdnow_customers();
        (0..times)
            .flat_map(|k| {
                base.iter().map(move |c| Customer {
                    t_x: c.t_x * (1.0 - k as f64 * 1e-5),
                    ..*c
                })
            })
            .collect()
    }

    fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool")
            .install(f)
    }

    #[test]
    fn fits_are_the_same_bits_at_one_and_two_threads() {
        let data = replicated_cdnow(20);
        for kind in [ModelKind::BgNbd, ModelKind::ParetoNbd, ModelKind::MbgNbd] {
            let one = in_pool(1, || fit_purchase_model(kind, &data).expect("fit"));
            let two = in_pool(2, || fit_purchase_model(kind, &data).expect("fit"));
            let bits = |m: &(dyn PurchaseModel + Send + Sync)| {
                let r = m.report();
                let mut v: Vec<u64> = r.params.iter().map(|p| p.1.to_bits()).collect();
                v.extend(r.std_errors.iter().map(|s| s.to_bits()));
                v.push(r.log_likelihood.to_bits());
                v
            };
            assert_eq!(bits(one.as_ref()), bits(two.as_ref()), "{kind}");
            assert!(one.report().converged, "{kind}: {:?}", one.report());
        }
        // Twenty copies of CDNOW (recency shrunk by up to 0.02%): the CDNOW
        // estimates to 0.1%, from the subsample start.
        let m = BgNbd::fit(&data).expect("fit");
        for (got, want) in [
            (m.r, 0.242593),
            (m.alpha, 4.413532),
            (m.a, 0.792886),
            (m.b, 2.425752),
        ] {
            assert!((got / want - 1.0).abs() < 1e-3, "{:?}", m.report());
        }
        let round = test_data::round;
        let g = GammaGamma::fit(
            &data.iter().map(|c| c.x).collect::<Vec<_>>(),
            &(0..20)
                .flat_map(|_| test_data::cdnow().into_iter().map(|p| p.1))
                .collect::<Vec<_>>(),
        )
        .expect("fit");
        assert_eq!(
            (round(g.p, 2), round(g.q, 2)),
            (6.25, 3.74),
            "{:?}",
            g.report()
        );
    }

    #[test]
    fn penalizer_matches_lifetimes() {
        // lifetimes 0.11.3 on the same CDNOW summary (its penalizer_coef):
        // BetaGeoFitter(0.1), ParetoNBDFitter(0.1), GammaGammaFitter(0.01).
        let data = test_data::cdnow_customers();
        let options = FitOptions { penalizer: 0.1 };
        let close = |got: f64, want: f64| (got / want - 1.0).abs() < 1e-3;
        let bg = BgNbd::fit_with(&data, &options, &FitObserver::default()).expect("fit");
        for (got, want) in [
            (bg.r, 0.230947),
            (bg.alpha, 4.219288),
            (bg.a, 0.128655),
            (bg.b, 0.267127),
        ] {
            assert!(close(got, want), "{:?}", bg.report());
        }
        let pa = ParetoNbd::fit_with(&data, &options, &FitObserver::default()).expect("fit");
        for (got, want) in [
            (pa.r, 0.553580),
            (pa.alpha, 10.578351),
            (pa.s, 0.600787),
            (pa.beta, 11.494915),
        ] {
            assert!(close(got, want), "{:?}", pa.report());
        }
        let (x, m): (Vec<f64>, Vec<f64>) =
            test_data::cdnow().iter().map(|(c, z)| (c.x, *z)).unzip();
        let gg = GammaGamma::fit_with(
            &x,
            &m,
            &FitOptions { penalizer: 0.01 },
            &FitObserver::default(),
        )
        .expect("fit");
        for (got, want) in [(gg.p, 4.109250), (gg.q, 0.968385), (gg.gamma, 3.780801)] {
            assert!(close(got, want), "{:?}", gg.report());
        }
        assert!(
            BgNbd::fit_with(
                &data,
                &FitOptions { penalizer: -1.0 },
                &FitObserver::default()
            )
            .is_err()
        );
    }

    #[test]
    fn probabilities_of_n_purchases_sum_to_one_and_average_to_the_expectation() {
        let models: Vec<Box<dyn PurchaseModel>> = vec![
            Box::new(BgNbd::with_params(0.243, 4.414, 0.793, 2.426).expect("valid")),
            Box::new(MbgNbd::with_params(0.525, 6.183, 0.891, 1.614).expect("valid")),
            Box::new(ParetoNbd::with_params(0.553, 10.578, 0.606, 11.669).expect("valid")),
            Box::new(BgNbd::with_params(2.0, 3.0, 1.5, 4.0).expect("valid")),
        ];
        for m in &models {
            for t in [5.0, 39.0, 78.0] {
                let p: Vec<f64> = (0..1500)
                    .map(|n| m.probability_of_purchases(n, t))
                    .collect();
                assert!(p.iter().all(|v| (0.0..=1.0).contains(v)), "{}", m.name());
                let total: f64 = p.iter().sum();
                let mean: f64 = p.iter().enumerate().map(|(n, v)| n as f64 * v).sum();
                assert!((total - 1.0).abs() < 1e-9, "{} t {t}: {total}", m.name());
                let want = m.expected_purchases_new(t);
                assert!(
                    (mean / want - 1.0).abs() < 1e-8,
                    "{} t {t}: {mean} vs {want}",
                    m.name()
                );
            }
        }
        // FHL 2005 eq. (8) at n = 0 by hand: B(a, b)/B(a, b) · (α/(α+t))^r.
        let bg = BgNbd::with_params(0.243, 4.414, 0.793, 2.426).expect("valid");
        let want = (4.414_f64 / 43.414).powf(0.243);
        assert!((bg.probability_of_purchases(0, 39.0) - want).abs() < 1e-15);
    }

    #[test]
    fn no_dropout_data_give_the_nbd_at_the_boundary() {
        // Every repeat buyer bought last at the end of the window: the likelihood
        // rises towards "nobody drops out", the NBD.
        let data: Vec<Customer> = (0..3000)
            .map(|i| {
                let t = 20.0 + f64::from(i % 41);
                let x = [0.0, 0.0, 1.0, 2.0, 0.0, 3.0, 1.0, 5.0, 0.0, 8.0][i as usize % 10];
                Customer {
                    x,
                    t_x: if x > 0.0 { t } else { 0.0 },
                    t,
                }
            })
            .collect();
        // The NBD's maximum by a plain independent route: for fixed r, α̂ solves
        // Σ r/α − (r+x)/(α+T) = 0; check the fitted (r, α) satisfies it.
        for kind in [ModelKind::BgNbd, ModelKind::ParetoNbd, ModelKind::MbgNbd] {
            let m = fit_purchase_model(kind, &data).expect("fit");
            let rep = m.report();
            let sentence = rep.boundary.as_deref().unwrap_or("");
            assert!(
                sentence.starts_with("no dropout in these data"),
                "{kind}: {rep:?}"
            );
            assert_eq!(rep.params.len(), 2, "{rep:?}");
            let (r, alpha) = (rep.params[0].1, rep.params[1].1);
            let score: f64 = data
                .iter()
                .map(|c| r / alpha - (r + c.x) / (alpha + c.t))
                .sum();
            assert!(score.abs() < 1e-6 * data.len() as f64, "{kind}: {score}");
            let c = data[9];
            assert_eq!(m.p_alive(&c), 1.0);
            assert!(
                (m.expected_purchases(10.0, &c) - 10.0 * (r + c.x) / (alpha + c.t)).abs() < 1e-12
            );
            assert!((m.expected_purchases_new(10.0) - 10.0 * r / alpha).abs() < 1e-12);
        }
    }

    #[test]
    fn constant_spend_is_the_gamma_gamma_boundary() {
        // Spend drawn with one scale ν for everybody: m_x ~ Gamma(px, νx), p = 2,
        // ν = 0.1, as sums of 2x exponentials (deterministic generator), then pulled
        // towards the mean 20 the more the more purchases: the spread falls faster
        // than 1/x, less than any mixture over ν gives, so the maximum is at q → ∞
        // for certain rather than by chance of the draw.
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut uniform = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let (mut xs, mut ms) = (Vec::new(), Vec::new());
        for i in 0..20_000 {
            let x = f64::from(1 + i % 6);
            let sum: f64 = (0..(2 * (1 + i % 6))).map(|_| -uniform().ln()).sum();
            xs.push(x);
            ms.push(20.0 + (sum / (0.1 * x) - 20.0) / x.sqrt());
        }
        let g = GammaGamma::fit(&xs, &ms).expect("fit");
        let rep = g.report();
        assert!(
            rep.boundary
                .as_deref()
                .is_some_and(|b| b.contains("constant spend")),
            "{rep:?}"
        );
        assert!(g.q.is_infinite());
        // Maximum likelihood of the constant-spend model: p/ν̂ = Σxm/Σx exactly
        // (the ν score equation), whatever p is.
        let mean = xs.iter().zip(&ms).map(|(x, m)| x * m).sum::<f64>() / xs.iter().sum::<f64>();
        assert!(
            (g.expected_spend(3.0, 12.0) / mean - 1.0).abs() < 1e-8,
            "{rep:?}"
        );
    }
}

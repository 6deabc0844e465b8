//! BG/NBD model of Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005),
//! "'Counting your customers' the easy way: an alternative to the Pareto/NBD
//! model", *Marketing Science* 24(2), 275–284.
//!
//! While active, a customer buys as a Poisson process with rate λ ~ Gamma(r, α);
//! after every repeat purchase she drops out with probability p ~ Beta(a, b).
//! Equation numbers refer to the paper; P(alive) is the expression of Fader,
//! Hardie & Lee (2008), "Computing P(alive) using the BG/NBD model" (note 021).
//!
//! On the CDNOW calibration data the paper reports r = 0.243, α = 4.414,
//! a = 0.793, b = 2.426 with log-likelihood −9582.4; the tests reproduce them.

use super::likelihood::{Prepared, Row, par_sum, softplus_and_logistic};
use super::special::{
    digamma, ln_abs_hyp2f1_many, ln_beta, ln_gamma, log_add_exp, tanh_sinh_nodes,
};
use super::{Customer, FitReport, ModelError, PurchaseModel};

const NAME: &str = "BG/NBD";
const PARAMS: [&str; 4] = ["r", "alpha", "a", "b"];

/// A BG/NBD model with parameters named as in the paper.
#[derive(Debug, Clone, PartialEq)]
pub struct BgNbd {
    /// Shape of the Gamma distribution of purchase rates λ.
    pub r: f64,
    /// Rate parameter of the Gamma distribution of purchase rates; it carries
    /// the time unit of the data.
    pub alpha: f64,
    /// First shape of the Beta distribution of drop-out probabilities p.
    pub a: f64,
    /// Second shape of the Beta distribution of drop-out probabilities p.
    pub b: f64,
    report: FitReport,
}

impl BgNbd {
    /// Maximum-likelihood fit to customer summaries (see
    /// [`super::fit_purchase_model`] for the errors).
    pub fn fit(data: &[Customer]) -> Result<Self, ModelError> {
        Self::fit_observed(data, &super::FitObserver::default())
    }

    /// [`fit`](Self::fit), telling `progress` how the optimiser gets on.
    pub fn fit_observed(
        data: &[Customer],
        progress: &super::FitObserver,
    ) -> Result<Self, ModelError> {
        Self::fit_with(data, &super::FitOptions::default(), progress)
    }

    /// [`fit_observed`](Self::fit_observed) with [`super::FitOptions`] (a penalty).
    /// At the no-dropout boundary the model is the NBD: a = 0, b = +inf,
    /// P(alive) = 1, and the report says so.
    pub fn fit_with(
        data: &[Customer],
        options: &super::FitOptions,
        progress: &super::FitObserver,
    ) -> Result<Self, ModelError> {
        let (report, [r, alpha, a, b]) = fit_family(NAME, data, options, progress, false)?;
        Ok(BgNbd {
            r,
            alpha,
            a,
            b,
            report,
        })
    }

    /// A model with given parameters (all finite and > 0); its report has
    /// NaN log-likelihood and standard errors.
    pub fn with_params(r: f64, alpha: f64, a: f64, b: f64) -> Result<Self, ModelError> {
        let v = [r, alpha, a, b];
        super::check_positive(NAME, &PARAMS, &v)?;
        Ok(BgNbd {
            r,
            alpha,
            a,
            b,
            report: super::unfitted_report(NAME, &PARAMS, &v),
        })
    }
}

/// Individual log-likelihood, eq. (6) in log-sum form:
/// ln L = ln A₁ + ln A₂ + ln(A₃ + δ_{x>0} A₄), combined with log-add-exp so that
/// heavy buyers (large x) neither overflow nor underflow.
pub(super) fn ln_lik(r: f64, alpha: f64, a: f64, b: f64, c: &Customer) -> f64 {
    let x = c.x;
    // A₁ = Γ(r+x) α^r / Γ(r)
    let ln_a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
    // A₂ = B(a, b+x) / B(a, b)
    let ln_a2 = ln_beta(a, b + x) - ln_beta(a, b);
    // A₃ = (α+T)^−(r+x)
    let ln_a3 = -(r + x) * (alpha + c.t).ln();
    if x == 0.0 {
        return ln_a1 + ln_a2 + ln_a3;
    }
    // A₄ = a/(b+x−1) · (α+t_x)^−(r+x)
    let ln_a4 = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + c.t_x).ln();
    ln_a1 + ln_a2 + log_add_exp(ln_a3, ln_a4)
}

/// Negative log-likelihood of eq. (6) summed over `data`, and its exact gradient
/// in (r, α, a, b); with `modified`, the same for MBG/NBD (see `mbgnbd`).
///
/// Both likelihoods have the form
/// ln L = c(x) + r ln α − (r+x) ln(α+T) + δ · ln(1 + eᴰ),
/// D = ln a − ln(b+k) − (r+x)(ln(α+t_x) − ln(α+T)),
/// where for BG/NBD c(x) = ln Γ(r+x) − ln Γ(r) + ln B(a, b+x) − ln B(a, b), k = x−1 and
/// δ = [x > 0] (eq. 6 with A₁A₂ = e^{c(x)} α^r); for MBG/NBD b+x becomes b+x+1 in c,
/// k = x and δ = 1. c(x), its derivatives (digammas) and ln(b+k) are computed once
/// per distinct x; each record costs two logarithms and one exponential.
pub(super) fn nll_gradient(p: &[f64], data: &Prepared, modified: bool) -> Option<(f64, Vec<f64>)> {
    let (r, alpha, a, b) = (p[0], p[1], p[2], p[3]);
    let shift = if modified { 1.0 } else { 0.0 };
    let (psi_r, psi_b, psi_ab) = (digamma(r), digamma(b), digamma(a + b));
    let (lg_r, lg_b, lg_ab) = (ln_gamma(r), ln_gamma(b), ln_gamma(a + b));
    // Per distinct x: c, ∂c/∂r, ∂c/∂a, ∂c/∂b, ln(b+k), 1/(b+k).
    let mut c_sum = [0.0; 4];
    let per_x: Vec<(f64, f64)> = data
        .xs
        .iter()
        .zip(&data.x_weights)
        .map(|(&x, &w)| {
            let bx = b + x + shift;
            let abx = a + b + x + shift;
            let psi_abx = digamma(abx);
            c_sum[0] += w * (ln_gamma(r + x) - lg_r + ln_gamma(bx) - ln_gamma(abx) - lg_b + lg_ab);
            c_sum[1] += w * (digamma(r + x) - psi_r);
            c_sum[2] += w * (psi_ab - psi_abx);
            c_sum[3] += w * (digamma(bx) - psi_abx - psi_b + psi_ab);
            let k = b + x - 1.0 + shift;
            if k > 0.0 {
                (k.ln(), 1.0 / k)
            } else {
                (f64::NAN, f64::NAN)
            }
        })
        .collect();
    let ln_a = a.ln();
    let ln_alpha = alpha.ln();
    // Per record: value, ∂/∂r, ∂/∂α, Σσ (for ∂/∂a), Σσ/(b+k) (for ∂/∂b).
    let sums = par_sum(&data.rows, |row: &Row, acc: &mut [f64; 5]| {
        let rx = r + row.x;
        let ln_t = (alpha + row.t).ln();
        let inv_t = 1.0 / (alpha + row.t);
        let mut v = -rx * ln_t;
        let mut gr = -ln_t;
        let mut galpha = -rx * inv_t;
        if modified || row.x > 0.0 {
            let (ln_k, inv_k) = per_x[row.xi as usize];
            let ln_tx = (alpha + row.t_x).ln();
            let gap = ln_tx - ln_t;
            let (softplus, sigma) = softplus_and_logistic(ln_a - ln_k - rx * gap);
            v += softplus;
            gr -= sigma * gap;
            galpha -= sigma * rx * (1.0 / (alpha + row.t_x) - inv_t);
            acc[3] += row.w * sigma;
            acc[4] += row.w * sigma * inv_k;
        }
        acc[0] += row.w * v;
        acc[1] += row.w * gr;
        acc[2] += row.w * galpha;
    });
    let n = data.total_weight;
    let ll = c_sum[0] + n * r * ln_alpha + sums[0];
    let grad = [
        c_sum[1] + n * ln_alpha + sums[1],
        n * r / alpha + sums[2],
        c_sum[2] + sums[3] / a,
        c_sum[3] - sums[4],
    ];
    (ll.is_finite() && grad.iter().all(|g| g.is_finite()))
        .then(|| (-ll, grad.iter().map(|g| -g).collect()))
}

/// Starting points in the data's time unit: α has units of time, so starts are
/// scaled by the observed purchase rate to make them independent of weeks vs days.
pub(super) fn starts(data: &[Customer]) -> Vec<Vec<f64>> {
    let (mean_x, mean_t) = super::data_scale(data);
    let unit = mean_t / mean_x;
    vec![
        vec![1.0, unit, 1.0, 1.0],
        vec![0.5, 0.5 * unit, 0.5, 2.0],
        vec![2.0, 2.0 * unit, 2.0, 5.0],
        vec![0.25, 0.25 * unit, 1.5, 0.5],
    ]
}

/// No dropout: the mean dropout probability a/(a+b) per purchase is below one in
/// a million, so the data cannot tell the model from the NBD.
pub(super) fn dropout_vanishes(theta: &[f64]) -> bool {
    theta[2] / (theta[2] + theta[3]) < 1e-6
}

/// Fits the BG/NBD likelihood (or MBG/NBD with `modified`); at the no-dropout
/// boundary fits the NBD instead. Returns the report and (r, α, a, b), a = 0 and
/// b = +inf on the boundary.
pub(super) fn fit_family(
    name: &'static str,
    data: &[Customer],
    options: &super::FitOptions,
    progress: &super::FitObserver,
    modified: bool,
) -> Result<(FitReport, [f64; 4]), ModelError> {
    super::validate_for_fit(data)?;
    let full = Prepared::new(data);
    let full_nll = |p: &[f64]| nll_gradient(p, &full, modified);
    let sample = (data.len() > 2 * super::SUBSAMPLE).then(|| {
        let part = super::likelihood::subsample(data, super::SUBSAMPLE);
        Prepared::new(&part)
    });
    let sub_nll = |p: &[f64]| nll_gradient(p, sample.as_ref().expect("subsample"), modified);
    let fit = super::fit_ml_grad(
        name,
        &PARAMS,
        &starts(data),
        super::Objective {
            nll: &full_nll,
            weight: full.total_weight,
        },
        sample.as_ref().map(|s| super::Objective {
            nll: &sub_nll,
            weight: s.total_weight,
        }),
        options,
        super::Penalty {
            scales: &[1.0, 1.0 / super::max_age(data), 1.0, 1.0],
            on_total: false,
        },
        &dropout_vanishes,
        progress,
    )?;
    if fit.doubtful(|t| t[2] / (t[2] + t[3]) < 1e-3) {
        let nbd = super::fit_nbd(name, data, &full, options, progress)?;
        if fit.reduces_to(nbd.0.log_likelihood) {
            return Ok(nbd_at_boundary(name, nbd));
        }
    }
    let v: Vec<f64> = fit.report.params.iter().map(|(_, v)| *v).collect();
    Ok((fit.report, [v[0], v[1], v[2], v[3]]))
}

/// The NBD fit as the no-dropout boundary of BG/NBD or MBG/NBD: a = 0, b = +inf.
fn nbd_at_boundary(name: &str, nbd: (FitReport, [f64; 2])) -> (FitReport, [f64; 4]) {
    let mut report = nbd.0;
    report.boundary = Some(format!(
        "no dropout in these data: {name} reduces to the NBD; P(alive) = 1"
    ));
    (report, [nbd.1[0], nbd.1[1], 0.0, f64::INFINITY])
}

/// Eq. (8) of the paper, P(X(t) = n) for a new customer (see
/// [`PurchaseModel::probability_of_purchases`]); MBG/NBD reuses it with b + 1.
pub(super) fn probability_of_purchases(r: f64, alpha: f64, a: f64, b: f64, n: u32, t: f64) -> f64 {
    if !(t >= 0.0 && t.is_finite()) {
        return f64::NAN;
    }
    let nbd = |k: u32| super::ln_nbd_probability(r, alpha, k, t).exp();
    if a == 0.0 {
        return nbd(n);
    }
    let nf = f64::from(n);
    let ln_norm = ln_beta(a, b);
    let still = (ln_beta(a, b + nf) - ln_norm).exp() * nbd(n);
    if n == 0 {
        return still;
    }
    // P(NBD(t) >= n) = 1 − Σ_{j<n} NBD(j; t), clamped at 0 against rounding.
    let below: f64 = (0..n).map(nbd).sum();
    let at_least = (1.0 - below).max(0.0);
    still + (ln_beta(a + 1.0, b + nf - 1.0) - ln_norm).exp() * at_least
}

/// E[(1/p)(1 − e^{−λpt})] for λ ~ Gamma(r, α), p ~ Beta(a, b): expected
/// purchases in (0, t] of a customer alive at 0 (one drop-out chance per
/// purchase). This is eq. (7):
/// (a+b−1)/(a−1) · [1 − (α/(α+t))^r ₂F₁(r, b; a+b−1; t/(α+t))],
/// and, with the posterior (r+x, α+T, a, b+x), the bracket of eq. (10). The
/// MBG/NBD expectations reuse it with b shifted by one.
pub(super) fn alive_expectation(r: f64, alpha: f64, a: f64, b: f64, t: f64) -> f64 {
    let mut out = [0.0];
    alive_expectations(r, alpha, a, b, &[t], &mut out);
    out[0]
}

/// [`alive_expectation`] at every horizon of `ts`, into `out`, bit for bit: the
/// ₂F₁ series of all horizons differ only in their argument and are summed side
/// by side (see [`ln_abs_hyp2f1_many`]).
pub(super) fn alive_expectations(r: f64, alpha: f64, a: f64, b: f64, ts: &[f64], out: &mut [f64]) {
    let closed_form = |a: f64, b: f64, out: &mut [f64]| {
        let zs: Vec<f64> = ts.iter().map(|&t| t / (alpha + t)).collect();
        // ₂F₁ is negative when a + b < 1 (c < 0), hence the signed form.
        let values = ln_abs_hyp2f1_many(r, b, a + b - 1.0, &zs);
        for ((o, &t), (ln_f, sign)) in out.iter_mut().zip(ts).zip(values) {
            // ln(α/(α+t)) via ln_1p keeps precision for small t.
            let ln_one_minus_z = -(t / alpha).ln_1p();
            let scaled = r * ln_one_minus_z + ln_f;
            let bracket = if sign > 0.0 {
                -scaled.exp_m1()
            } else {
                1.0 - sign * scaled.exp()
            };
            *o = (a + b - 1.0) / (a - 1.0) * bracket;
        }
    };
    // Both a = 1 and a + b = 1 are removable singularities of the closed form
    // (the expectation itself is smooth in a and b).
    super::across_removable_many(a, 1.0, out, |a, out| {
        super::across_removable_many(a + b, 1.0, out, |s, out| closed_form(a, s - a, out))
    });
    for (o, &t) in out.iter_mut().zip(ts) {
        if !(t >= 0.0 && t.is_finite()) {
            *o = f64::NAN;
        } else if t == 0.0 {
            *o = 0.0;
        } else if !o.is_finite() {
            *o = alive_expectation_by_quadrature(r, alpha, a, b, t);
        }
    }
}

/// The same expectation as a 1-D integral over p, after integrating λ out
/// analytically: E_p[(1 − (α/(α+pt))^r)/p] with p ~ Beta(a, b). Used when the
/// ₂F₁ series cannot converge in reasonable time (t/(α+t) within ~2e-5 of 1,
/// i.e. horizons beyond about 50 000 times α). The integrand bends at
/// p ≈ α/(rt), so the interval is split there; tanh-sinh handles the Beta
/// end-point singularities.
pub(super) fn alive_expectation_by_quadrature(r: f64, alpha: f64, a: f64, b: f64, t: f64) -> f64 {
    if !(t >= 0.0 && t.is_finite()) {
        return f64::NAN;
    }
    if t == 0.0 {
        return 0.0;
    }
    let ln_norm = ln_beta(a, b);
    let integrand = |p: f64, one_minus_p: f64| -> f64 {
        let bought = -(-r * (p * t / alpha).ln_1p()).exp_m1() / p;
        bought * ((a - 1.0) * p.ln() + (b - 1.0) * one_minus_p.ln() - ln_norm).exp()
    };
    let split = (alpha / (r.max(1.0) * t)).min(0.5);
    let h = 1.0 / 64.0;
    let mut total = 0.0;
    for (p, _, w) in tanh_sinh_nodes(split, h) {
        total += w * integrand(p, 1.0 - p);
    }
    for (u, uc, w) in tanh_sinh_nodes(1.0 - split, h) {
        total += w * integrand(split + u, uc);
    }
    total
}

impl PurchaseModel for BgNbd {
    fn name(&self) -> &'static str {
        NAME
    }

    fn report(&self) -> &FitReport {
        &self.report
    }

    /// Eq. (10): P(alive) times the expectation for an active customer whose
    /// posterior is λ ~ Gamma(r+x, α+T), p ~ Beta(a, b+x).
    fn expected_purchases(&self, t: f64, c: &Customer) -> f64 {
        if super::validate_customer(c).is_err() {
            return f64::NAN;
        }
        self.p_alive(c) * self.expected_purchases_if_alive(t, c.x, c.t)
    }

    /// Note 021: 1 / (1 + δ_{x>0} a/(b+x−1) ((α+T)/(α+t_x))^{r+x});
    /// a customer with no repeat purchase cannot have dropped out, so it is 1.
    fn p_alive(&self, c: &Customer) -> f64 {
        if super::validate_customer(c).is_err() {
            return f64::NAN;
        }
        if c.x == 0.0 || self.a == 0.0 {
            return 1.0;
        }
        let x = c.x;
        let ln_odds = self.a.ln() - (self.b + x - 1.0).ln()
            + (self.r + x) * ((self.alpha + c.t).ln() - (self.alpha + c.t_x).ln());
        1.0 / (1.0 + ln_odds.exp())
    }

    /// Eq. (7); r t/α for the NBD at the no-dropout boundary.
    fn expected_purchases_new(&self, t: f64) -> f64 {
        if self.a == 0.0 {
            return t * self.r / self.alpha;
        }
        alive_expectation(self.r, self.alpha, self.a, self.b, t)
    }

    /// The bracket of eq. (10); t(r+x)/(α+T) for the NBD at the no-dropout boundary.
    fn expected_purchases_if_alive(&self, t: f64, x: f64, age: f64) -> f64 {
        let mut out = [0.0];
        self.expected_purchases_if_alive_at(&[t], x, age, &mut out);
        out[0]
    }

    fn expected_purchases_if_alive_at(&self, ts: &[f64], x: f64, age: f64, out: &mut [f64]) {
        let (r, alpha, a, b) = (self.r, self.alpha, self.a, self.b);
        if a == 0.0 {
            for (o, &t) in out.iter_mut().zip(ts) {
                *o = t * (r + x) / (alpha + age);
            }
            return;
        }
        alive_expectations(r + x, alpha + age, a, b + x, ts, out);
    }

    /// Eq. (8): B(a, b+n)/B(a, b) · NBD(n; t) + δ_{n>0} B(a+1, b+n−1)/B(a, b) · P(NBD(t) >= n),
    /// NBD(n; t) the Gamma-Poisson probability of n purchases in t; the NBD alone at the
    /// no-dropout boundary.
    fn probability_of_purchases(&self, n: u32, t: f64) -> f64 {
        probability_of_purchases(self.r, self.alpha, self.a, self.b, n, t)
    }

    fn log_likelihood(&self, data: &[Customer]) -> Result<f64, ModelError> {
        if data.is_empty() {
            return Err(ModelError::Empty);
        }
        for c in data {
            super::validate_customer(c)?;
        }
        let ll = super::sum_ll(data, |c| ln_lik(self.r, self.alpha, self.a, self.b, c));
        if ll.is_finite() {
            Ok(ll)
        } else {
            Err(ModelError::NotIdentified(format!(
                "{NAME}: log-likelihood is not finite at {:?}",
                self.report.params
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_data::{cdnow_customers, round, tanh_sinh};
    use super::*;

    #[test]
    fn reproduces_fader_hardie_lee_2005_cdnow_estimates() {
        let data = cdnow_customers();
        let start = std::time::Instant::now();
        let m = BgNbd::fit(&data).expect("fit");
        let elapsed = start.elapsed();
        let rep = m.report();
        assert!(rep.converged, "{rep:?}");
        assert_eq!(round(m.r, 3), 0.243, "{rep:?}");
        assert_eq!(round(m.alpha, 3), 4.414, "{rep:?}");
        assert_eq!(round(m.a, 3), 0.793, "{rep:?}");
        assert_eq!(round(m.b, 3), 2.426, "{rep:?}");
        assert_eq!(round(rep.log_likelihood, 1), -9582.4, "{rep:?}");
        assert!(
            rep.std_errors.iter().all(|s| s.is_finite() && *s > 0.0),
            "{rep:?}"
        );
        eprintln!("BG/NBD fit {elapsed:?}: {rep:?}");
    }

    #[test]
    fn exact_gradient_matches_finite_differences_and_the_likelihood() {
        let data = cdnow_customers();
        let prepared = Prepared::new(&data);
        for modified in [false, true] {
            let fg = |p: &[f64]| nll_gradient(p, &prepared, modified);
            for p in [
                [0.243, 4.414, 0.793, 2.426],
                [2.0, 0.5, 0.05, 30.0],
                [0.1, 40.0, 3.0, 0.3],
            ] {
                let err = super::super::gradient_error(&fg, &p);
                assert!(err < 1e-6, "{modified} {p:?}: {err}");
                let plain: f64 = data
                    .iter()
                    .map(|c| {
                        if modified {
                            super::super::mbgnbd::ln_lik(p[0], p[1], p[2], p[3], c)
                        } else {
                            ln_lik(p[0], p[1], p[2], p[3], c)
                        }
                    })
                    .sum();
                let fast = -fg(&p).expect("finite").0;
                assert!(
                    (fast - plain).abs() < 1e-10 * plain.abs(),
                    "{fast} vs {plain}"
                );
            }
        }
    }

    #[test]
    fn fit_does_not_depend_on_the_time_unit() {
        // Weeks → milliseconds: α scales, r, a, b and the fit quality do not.
        let k = 7.0 * 24.0 * 3600.0 * 1000.0;
        let ms: Vec<Customer> = cdnow_customers()
            .into_iter()
            .map(|c| Customer {
                x: c.x,
                t_x: c.t_x * k,
                t: c.t * k,
            })
            .collect();
        let m = BgNbd::fit(&ms).expect("fit");
        assert!(m.report().converged, "{:?}", m.report());
        assert_eq!(
            (
                round(m.r, 3),
                round(m.alpha / k, 3),
                round(m.a, 3),
                round(m.b, 3)
            ),
            (0.243, 4.414, 0.793, 2.426)
        );
    }

    #[test]
    fn fit_is_deterministic() {
        let data = cdnow_customers();
        let a = BgNbd::fit(&data).expect("fit");
        let b = BgNbd::fit(&data).expect("fit");
        assert_eq!(
            a.report().log_likelihood.to_bits(),
            b.report().log_likelihood.to_bits()
        );
        assert_eq!(a.r.to_bits(), b.r.to_bits());
    }

    /// Brute-force E[X(T,T+t) | x, t_x, T]: the individual-level model
    /// integrated over the Gamma and Beta mixing densities by 2-D tanh-sinh
    /// quadrature, independently of the closed form and of ₂F₁.
    fn brute_force_conditional(r: f64, alpha: f64, a: f64, b: f64, c: &Customer, t: f64) -> f64 {
        let h = 1.0 / 48.0;
        // λ = u/α with u ~ Gamma(r, 1); the integrand decays like
        // u^{x+r} e^{−u(1 + t_x/α)}, which sets where to stop.
        let umax = (80.0 + 8.0 * (c.x + r)) / (1.0 + c.t_x / alpha);
        let lam_nodes = tanh_sinh(umax, h);
        let p_nodes = tanh_sinh(1.0, h);
        let ln_norm_p = ln_beta(a, b);
        let ln_norm_u = ln_gamma(r);
        let x = c.x;
        let mut num = 0.0;
        let mut den = 0.0;
        for &(u, _, wu) in &lam_nodes {
            let lam = u / alpha;
            let dens_u = ((r - 1.0) * u.ln() - u - ln_norm_u).exp() * wu;
            for &(p, q, wp) in &p_nodes {
                // q = 1 − p without cancellation near p = 1.
                let dens_p = ((a - 1.0) * p.ln() + (b - 1.0) * q.ln() - ln_norm_p).exp() * wp;
                let alive = (x * q.ln() + x * lam.ln() - lam * c.t).exp();
                let dead = if x > 0.0 {
                    p * ((x - 1.0) * q.ln() + x * lam.ln() - lam * c.t_x).exp()
                } else {
                    0.0
                };
                let future = (-(lam * p * t)).exp_m1() / -p;
                num += dens_u * dens_p * alive * future;
                den += dens_u * dens_p * (alive + dead);
            }
        }
        num / den
    }

    #[test]
    fn conditional_expectation_matches_numerical_integration() {
        let m = BgNbd::with_params(0.243, 4.414, 0.793, 2.426).expect("valid");
        for c in [
            Customer {
                x: 2.0,
                t_x: 30.43,
                t: 38.86,
            },
            Customer {
                x: 0.0,
                t_x: 0.0,
                t: 20.0,
            },
            Customer {
                x: 7.0,
                t_x: 35.0,
                t: 36.0,
            },
        ] {
            let exact = m.expected_purchases(39.0, &c);
            let numeric = brute_force_conditional(m.r, m.alpha, m.a, m.b, &c, 39.0);
            assert!(
                ((exact - numeric) / exact).abs() < 1e-7,
                "{c:?}: {exact} vs {numeric}"
            );
        }
    }

    #[test]
    fn conditional_expectation_matches_high_precision_reference() {
        // Eq. (10) evaluated with mpmath 1.3 at 30 significant digits.
        let m = BgNbd::with_params(0.243, 4.414, 0.793, 2.426).expect("valid");
        for (c, want) in [
            (
                Customer {
                    x: 2.0,
                    t_x: 30.43,
                    t: 38.86,
                },
                1.226_028_174_767_144,
            ),
            (
                Customer {
                    x: 0.0,
                    t_x: 0.0,
                    t: 20.0,
                },
                0.322_659_522_685_405_1,
            ),
            (
                Customer {
                    x: 7.0,
                    t_x: 35.0,
                    t: 36.0,
                },
                4.939_432_635_090_128,
            ),
        ] {
            let got = m.expected_purchases(39.0, &c);
            assert!((got / want - 1.0).abs() < 1e-13, "{c:?}: {got} vs {want}");
        }
    }

    #[test]
    fn quadrature_fallback_agrees_with_closed_form() {
        for (r, alpha, a, b, t) in [
            (0.243, 4.414, 0.793, 2.426, 39.0),
            (2.5, 30.0, 3.0, 0.4, 500.0),
            (0.8, 1.0, 0.3, 0.5, 5.0),
        ] {
            let closed = alive_expectation(r, alpha, a, b, t);
            let quad = alive_expectation_by_quadrature(r, alpha, a, b, t);
            assert!((closed / quad - 1.0).abs() < 1e-10, "{closed} vs {quad}");
        }
        // Where the series gives up, the fallback still answers.
        let m = BgNbd::with_params(143.0, 0.000_472, 0.000_864, 10.5).expect("valid");
        let e = m.expected_purchases_new(52.0);
        assert!(e.is_finite() && e > 0.0, "{e}");
    }

    #[test]
    fn fhl_2005_example_customer_prediction() {
        // The paper's worked example (its Section 5): x = 2, t_x = 30.43,
        // T = 38.86 is expected to make 1.226 purchases in the next 39 weeks.
        let m = BgNbd::with_params(0.243, 4.414, 0.793, 2.426).expect("valid");
        let c = Customer {
            x: 2.0,
            t_x: 30.43,
            t: 38.86,
        };
        assert_eq!(round(m.expected_purchases(39.0, &c), 3), 1.226);
    }

    #[test]
    fn p_alive_properties() {
        let m = BgNbd::with_params(0.243, 4.414, 0.793, 2.426).expect("valid");
        assert_eq!(
            m.p_alive(&Customer {
                x: 0.0,
                t_x: 0.0,
                t: 38.0
            }),
            1.0
        );
        let mut last = 0.0;
        // More recent last purchase → more likely alive.
        for tx in [1.0, 10.0, 20.0, 30.0, 38.0] {
            let p = m.p_alive(&Customer {
                x: 3.0,
                t_x: tx,
                t: 38.0,
            });
            assert!((0.0..=1.0).contains(&p) && p > last, "{tx}: {p}");
            last = p;
        }
        // Longer silence since the last purchase → less likely alive.
        let early = m.p_alive(&Customer {
            x: 3.0,
            t_x: 10.0,
            t: 20.0,
        });
        let late = m.p_alive(&Customer {
            x: 3.0,
            t_x: 10.0,
            t: 60.0,
        });
        assert!(late < early);
        // Extreme buyer: no overflow, no NaN.
        let p = m.p_alive(&Customer {
            x: 5000.0,
            t_x: 1.0,
            t: 1000.0,
        });
        assert!((0.0..=1.0).contains(&p));
        assert!(
            m.p_alive(&Customer {
                x: 1.0,
                t_x: 3.0,
                t: 2.0
            })
            .is_nan()
        );
    }

    #[test]
    fn unconditional_expectation_identities() {
        let m = BgNbd::with_params(0.243, 4.414, 0.793, 2.426).expect("valid");
        // d/dt E[X(t)] at 0 equals the mean purchase rate r/α.
        let h = 1e-6;
        let slope = m.expected_purchases_new(h) / h;
        assert!((slope / (m.r / m.alpha) - 1.0).abs() < 1e-5, "{slope}");
        assert_eq!(m.expected_purchases_new(0.0), 0.0);
        // Increasing and concave in t.
        let e: Vec<f64> = (0..=10)
            .map(|k| m.expected_purchases_new(10.0 * k as f64))
            .collect();
        for w in e.windows(3) {
            assert!(w[1] > w[0] && w[2] - w[1] < w[1] - w[0]);
        }
        // Long horizons (z close to 1) stay finite.
        assert!(m.expected_purchases_new(1e5).is_finite());
        // A new customer is a customer with x = 0, t_x = 0, T = 0.
        let c0 = Customer {
            x: 0.0,
            t_x: 0.0,
            t: 0.0,
        };
        assert!((m.expected_purchases(52.0, &c0) - m.expected_purchases_new(52.0)).abs() < 1e-13);
        // In the long run everyone drops out after 1/p purchases on average,
        // and E[1/p] = (a+b−1)/(a−1) for p ~ Beta(a, b) with a > 1.
        let m2 = BgNbd::with_params(5.0, 3.0, 3.0, 4.0).expect("valid");
        assert!((m2.expected_purchases_new(1e4) - 3.0).abs() < 1e-4);
    }

    #[test]
    fn removable_singularity_at_a_equal_one() {
        // Inside the interpolation band the value must agree with the smooth
        // continuation from outside it (second-order accurate midpoint).
        let d = 3e-5;
        let near = |a: f64| {
            BgNbd::with_params(0.5, 3.0, a, 2.0)
                .expect("valid")
                .expected_purchases_new(26.0)
        };
        let at = near(1.0);
        assert!(at.is_finite());
        assert!((at - 0.5 * (near(1.0 + d) + near(1.0 - d))).abs() < 1e-8 * at);
        // Same for a + b = 1, where ₂F₁ has c = a + b − 1 = 0.
        let also = |b: f64| {
            BgNbd::with_params(0.5, 3.0, 0.4, b)
                .expect("valid")
                .expected_purchases_new(26.0)
        };
        let at = also(0.6);
        assert!(at.is_finite());
        assert!((at - 0.5 * (also(0.6 + d) + also(0.6 - d))).abs() < 1e-8 * at);
    }

    #[test]
    fn random_parameter_points_never_give_nan() {
        let data = cdnow_customers();
        // Deterministic LCG so the test needs no external crate.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for _ in 0..200 {
            let p: Vec<f64> = (0..4).map(|_| (next() * 16.0 - 8.0).exp()).collect();
            let m = BgNbd::with_params(p[0], p[1], p[2], p[3]).expect("valid");
            match m.log_likelihood(&data) {
                Ok(ll) => assert!(ll.is_finite() && ll < 0.0),
                Err(ModelError::NotIdentified(_)) => {}
                Err(e) => panic!("{e}"),
            }
            let c = Customer {
                x: 3.0,
                t_x: 20.0,
                t: 30.0,
            };
            assert!(m.expected_purchases(52.0, &c).is_finite(), "{p:?}");
            assert!(m.expected_purchases_new(52.0).is_finite(), "{p:?}");
        }
    }
}

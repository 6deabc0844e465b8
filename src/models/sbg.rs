//! Shifted-beta-geometric (sBG) retention model of Fader, P. S. & Hardie,
//! B. G. S. (2007), "How to project customer retention", *Journal of
//! Interactive Marketing* 21(1), 76–90.
//!
//! In a contractual setting with discrete renewal periods, each customer
//! churns at the end of every period with probability θ ~ Beta(α, β). The
//! comments name the paper's expressions (P(T = t), S(t), their recursions,
//! the likelihood and the retention rate) rather than number them, as the
//! numbering could not be checked against the paper here. DEL, the discounted
//! expected lifetime, is from Fader & Hardie (2010), "Customer-base valuation
//! in a contractual setting: the perils of ignoring heterogeneity",
//! *Marketing Science* 29(1).

use super::special::{hyp2f1, ln_beta};
use super::{FitReport, ModelError};

const NAME: &str = "sBG";
const PARAMS: [&str; 2] = ["alpha", "beta"];

/// A shifted-beta-geometric model with the paper's parameter names.
#[derive(Debug, Clone, PartialEq)]
pub struct Sbg {
    /// First shape of the Beta distribution of churn probabilities θ.
    pub alpha: f64,
    /// Second shape of the Beta distribution of churn probabilities θ.
    pub beta: f64,
    report: FitReport,
}

impl Sbg {
    /// Maximum-likelihood fit to a survivor curve: `survivors[t]` customers of
    /// the cohort are still active at the start of period t (t = 0, 1, ...,
    /// k), so `survivors[0]` is the cohort size. Counts may be fractional
    /// (e.g. percentages) and must be non-increasing.
    ///
    /// Errors: [`ModelError::Empty`] for fewer than three points (two
    /// retention rates are needed to separate α from β),
    /// [`ModelError::InvalidInput`] for negative, non-finite or increasing
    /// counts, [`ModelError::NotIdentified`] when nobody churns or everybody
    /// churns in the first period.
    pub fn fit(survivors: &[f64]) -> Result<Self, ModelError> {
        if survivors.len() < 3 {
            return Err(ModelError::Empty);
        }
        if survivors.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err(ModelError::InvalidInput(
                "survivor counts must be finite and >= 0".into(),
            ));
        }
        if survivors.windows(2).any(|w| w[1] > w[0]) {
            return Err(ModelError::InvalidInput(
                "survivor counts must not increase".into(),
            ));
        }
        let k = survivors.len() - 1;
        if survivors[0] <= 0.0 {
            return Err(ModelError::Empty);
        }
        if survivors[k] == survivors[0] {
            return Err(ModelError::NotIdentified(
                "nobody churned, so the churn distribution is not identified".into(),
            ));
        }
        if survivors[1] == 0.0 {
            return Err(ModelError::NotIdentified(
                "everybody churned in the first period".into(),
            ));
        }
        let starts = vec![
            vec![1.0, 1.0],
            vec![0.5, 2.0],
            vec![2.0, 5.0],
            vec![0.3, 0.3],
        ];
        let nll = |p: &[f64]| -ln_lik(p[0], p[1], survivors);
        let report = super::fit_ml(NAME, &PARAMS, &starts, nll, &super::FitObserver::default())?;
        let (alpha, beta) = (report.params[0].1, report.params[1].1);
        Ok(Sbg {
            alpha,
            beta,
            report,
        })
    }

    /// A model with given parameters (both finite and > 0); its report has
    /// NaN log-likelihood and standard errors.
    pub fn with_params(alpha: f64, beta: f64) -> Result<Self, ModelError> {
        let v = [alpha, beta];
        super::check_positive(NAME, &PARAMS, &v)?;
        Ok(Sbg {
            alpha,
            beta,
            report: super::unfitted_report(NAME, &PARAMS, &v),
        })
    }

    /// Estimates and fit diagnostics.
    pub fn report(&self) -> &FitReport {
        &self.report
    }

    /// P(T = t) = B(α+1, β+t−1)/B(α,β), the probability of churning at the
    /// end of period t (t >= 1; 0 for t = 0).
    pub fn churn_probability(&self, t: u32) -> f64 {
        if t == 0 {
            return 0.0;
        }
        let t = t as f64;
        (ln_beta(self.alpha + 1.0, self.beta + t - 1.0) - ln_beta(self.alpha, self.beta)).exp()
    }

    /// S(t) = B(α, β+t)/B(α,β), the share of the cohort still active at
    /// the start of period t+1 (S(0) = 1).
    pub fn survival(&self, t: u32) -> f64 {
        (ln_beta(self.alpha, self.beta + t as f64) - ln_beta(self.alpha, self.beta)).exp()
    }

    /// Retention rate r_t = S(t)/S(t−1) = (β+t−1)/(α+β+t−1) for t >= 1;
    /// it rises with t because the cohort sorts towards loyal customers.
    pub fn retention_rate(&self, t: u32) -> f64 {
        if t == 0 {
            return 1.0;
        }
        let t = t as f64;
        (self.beta + t - 1.0) / (self.alpha + self.beta + t - 1.0)
    }

    /// Projected survivors n₀·S(t) for t = 0..=periods.
    pub fn project_survivors(&self, cohort_size: f64, periods: u32) -> Vec<f64> {
        // The recursion S(t) = S(t−1)·r_t avoids one ln_beta per period.
        let mut out = Vec::with_capacity(periods as usize + 1);
        let mut s = 1.0;
        out.push(cohort_size);
        for t in 1..=periods {
            s *= self.retention_rate(t);
            out.push(cohort_size * s);
        }
        out
    }

    /// Discounted expected lifetime in periods, counting the period in which
    /// the customer is acquired: DEL(d) = Σ_{t>=0} S(t)/(1+d)^t =
    /// ₂F₁(1, β; α+β; 1/(1+d)) (Fader & Hardie 2010). Requires d > 0 (the
    /// undiscounted expected lifetime is infinite when α <= 1); NaN otherwise.
    pub fn discounted_expected_lifetime(&self, d: f64) -> f64 {
        if !(d > 0.0 && d.is_finite()) {
            return f64::NAN;
        }
        hyp2f1(1.0, self.beta, self.alpha + self.beta, 1.0 / (1.0 + d))
    }
}

/// LL = Σ_{t=1}^{k} (n_{t−1} − n_t) ln P(T = t) + n_k ln S(k): churners in
/// each observed period, and the still-active customers as right-censored.
fn ln_lik(alpha: f64, beta: f64, survivors: &[f64]) -> f64 {
    let k = survivors.len() - 1;
    // P(T=1) = α/(α+β), P(T=t) = (β+t−2)/(α+β+t−1) · P(T=t−1).
    let mut p = alpha / (alpha + beta);
    let mut s = 1.0 - p;
    let mut ll = 0.0;
    for t in 1..=k {
        if t > 1 {
            let tf = t as f64;
            p *= (beta + tf - 2.0) / (alpha + beta + tf - 1.0);
            // S(t) = S(t−1) − P(T = t).
            s -= p;
        }
        let churned = survivors[t - 1] - survivors[t];
        if churned > 0.0 {
            ll += churned * p.ln();
        }
    }
    if survivors[k] > 0.0 {
        // Recomputing S(k) from Beta functions avoids the cancellation of the
        // subtraction recursion when S(k) is small.
        let sk = (ln_beta(alpha, beta + k as f64) - ln_beta(alpha, beta)).exp();
        debug_assert!((sk - s).abs() <= 1e-9 + 1e-9 * sk || !s.is_finite());
        ll += survivors[k] * sk.ln();
    }
    if ll.is_finite() { ll } else { f64::NAN }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGULAR: [f64; 13] = [
        1000.0, 631.0, 468.0, 382.0, 326.0, 289.0, 262.0, 241.0, 223.0, 207.0, 194.0, 183.0, 173.0,
    ];
    const HIGH_END: [f64; 13] = [
        1000.0, 869.0, 743.0, 653.0, 593.0, 551.0, 517.0, 491.0, 468.0, 445.0, 427.0, 409.0, 394.0,
    ];

    #[test]
    fn recovers_parameters_from_an_exact_survivor_curve() {
        let truth = Sbg::with_params(0.668, 3.806).expect("valid");
        let curve = truth.project_survivors(1_000_000.0, 7);
        let fit = Sbg::fit(&curve).expect("fit");
        assert!(fit.report().converged);
        assert!(
            (fit.alpha - 0.668).abs() < 1e-5 && (fit.beta - 3.806).abs() < 1e-4,
            "{:?}",
            fit.report()
        );
    }

    #[test]
    fn fits_the_papers_cohorts_and_projects_their_holdout() {
        // Fitted on years 0–7 as in the paper. The estimates asserted are the
        // paper's (Fader & Hardie 2007, "How to project customer retention":
        // regular α = 0.704, β = 1.182; high end α = 0.668, β = 3.806). The
        // projection check is the paper's point: held-out years 8–12 are
        // tracked closely.
        for (data, alpha, beta) in [(REGULAR, 0.704, 1.182), (HIGH_END, 0.668, 3.806)] {
            let m = Sbg::fit(&data[..8]).expect("fit");
            assert!(m.report().converged);
            assert_eq!(
                (round3(m.alpha), round3(m.beta)),
                (alpha, beta),
                "{:?}",
                m.report()
            );
            let proj = m.project_survivors(1000.0, 12);
            for t in 8..=12 {
                let rel = (proj[t] - data[t]).abs() / data[t];
                assert!(rel < 0.06, "t={t}: {} vs {}", proj[t], data[t]);
            }
        }
    }

    fn round3(v: f64) -> f64 {
        (v * 1000.0).round() / 1000.0
    }

    #[test]
    fn curve_identities() {
        let m = Sbg::with_params(0.704, 1.182).expect("valid");
        assert_eq!(m.survival(0), 1.0);
        let mut s = 1.0;
        for t in 1..30 {
            s -= m.churn_probability(t);
            assert!((m.survival(t) - s).abs() < 1e-12);
            assert!((m.survival(t) / m.survival(t - 1) - m.retention_rate(t)).abs() < 1e-12);
            assert!(m.retention_rate(t + 1) > m.retention_rate(t));
        }
        // DEL as an explicit discounted sum.
        let d: f64 = 0.1;
        let mut sum = 0.0;
        for t in 0..5000u32 {
            sum += m.survival(t) / (1.0 + d).powi(t as i32);
        }
        assert!((m.discounted_expected_lifetime(d) / sum - 1.0).abs() < 1e-9);
        assert!(m.discounted_expected_lifetime(0.0).is_nan());
    }

    #[test]
    fn errors() {
        assert_eq!(Sbg::fit(&[1000.0, 600.0]).err(), Some(ModelError::Empty));
        assert!(matches!(
            Sbg::fit(&[1000.0, 1000.0, 1000.0]),
            Err(ModelError::NotIdentified(_))
        ));
        assert!(matches!(
            Sbg::fit(&[1000.0, 0.0, 0.0]),
            Err(ModelError::NotIdentified(_))
        ));
        assert!(matches!(
            Sbg::fit(&[1000.0, 600.0, 700.0]),
            Err(ModelError::InvalidInput(_))
        ));
        assert!(matches!(
            Sbg::fit(&[1000.0, f64::NAN, 700.0]),
            Err(ModelError::InvalidInput(_))
        ));
    }
}

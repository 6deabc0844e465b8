//! BG/BB model of Fader, P. S., Hardie, B. G. S. & Shang, J. (2010),
//! "Customer-base analysis in a discrete-time noncontractual setting",
//! *Marketing Science* 29(6), 1086–1108.
//!
//! Customers face discrete transaction opportunities (e.g. one annual appeal
//! of a charity). While alive, a customer transacts at each opportunity with
//! probability p ~ Beta(α, β); at the start of each opportunity after the first
//! she becomes inactive for good with probability θ ~ Beta(γ, δ). Data are
//! summarised by (x, t_x, n): x transactions in n opportunities, the last at
//! opportunity t_x, and can be weighted patterns since many customers share
//! them. (The paper's equation numbers could not be checked here; the
//! comments name the expressions.)
//!
//! On the donations data the paper reports α = 1.204, β = 0.750, γ = 0.657,
//! δ = 2.783 with log-likelihood −33225.6; the tests reproduce them.

use super::special::{ln_beta, ln_gamma, log_add_exp};
use super::{FitReport, ModelError};

const NAME: &str = "BG/BB";
const PARAMS: [&str; 4] = ["alpha", "beta", "gamma", "delta"];

/// A recency/frequency pattern for `weight` customers: `x` transactions in
/// `n` opportunities, the last one at opportunity `t_x` (0 when `x` = 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pattern {
    /// Number of transactions (repeat transactions in the paper's setting).
    pub x: u32,
    /// Opportunity of the last transaction, 0 if none.
    pub t_x: u32,
    /// Number of transaction opportunities observed.
    pub n: u32,
    /// Number of customers sharing the pattern (any finite value >= 0).
    pub weight: f64,
}

/// A BG/BB model with parameters named as in the paper.
#[derive(Debug, Clone, PartialEq)]
pub struct BgBb {
    /// First shape of the Beta distribution of transaction probabilities p.
    pub alpha: f64,
    /// Second shape of the Beta distribution of transaction probabilities p.
    pub beta: f64,
    /// First shape of the Beta distribution of drop-out probabilities θ.
    pub gamma: f64,
    /// Second shape of the Beta distribution of drop-out probabilities θ.
    pub delta: f64,
    report: FitReport,
}

fn validate_pattern(p: &Pattern) -> Result<(), ModelError> {
    if !(p.weight.is_finite() && p.weight >= 0.0) {
        return Err(ModelError::InvalidInput(format!(
            "pattern weight must be finite and >= 0: {p:?}"
        )));
    }
    let ok = if p.x == 0 {
        p.t_x == 0
    } else {
        p.x <= p.t_x && p.t_x <= p.n
    };
    if !ok {
        return Err(ModelError::InvalidInput(format!(
            "need x <= t_x <= n, and t_x = 0 when x = 0: {p:?}"
        )));
    }
    Ok(())
}

impl BgBb {
    /// Maximum-likelihood fit to weighted patterns.
    ///
    /// Errors: [`ModelError::Empty`] if there are no patterns or all weights
    /// are zero, [`ModelError::InvalidInput`] for an impossible pattern,
    /// [`ModelError::NotIdentified`] if nobody ever transacts or a parameter
    /// diverges, [`ModelError::NoConvergence`] if no optimum is found.
    pub fn fit(patterns: &[Pattern]) -> Result<Self, ModelError> {
        Self::fit_observed(patterns, &super::FitObserver::default())
    }

    /// [`fit`](Self::fit), telling `progress` how the optimiser gets on.
    pub fn fit_observed(
        patterns: &[Pattern],
        progress: &super::FitObserver,
    ) -> Result<Self, ModelError> {
        for p in patterns {
            validate_pattern(p)?;
        }
        let weighted: Vec<&Pattern> = patterns.iter().filter(|p| p.weight > 0.0).collect();
        if weighted.is_empty() {
            return Err(ModelError::Empty);
        }
        if weighted.iter().all(|p| p.x == 0) {
            return Err(ModelError::NotIdentified(
                "nobody transacted (all x = 0), so transaction and drop-out probabilities cannot be separated".into(),
            ));
        }
        let starts = vec![
            vec![1.0, 1.0, 1.0, 1.0],
            vec![0.5, 0.5, 0.5, 2.0],
            vec![2.0, 2.0, 2.0, 5.0],
            vec![1.5, 0.5, 0.3, 3.0],
        ];
        let nll =
            |q: &[f64]| -super::sum_ll(&weighted, |p| p.weight * ln_lik(q[0], q[1], q[2], q[3], p));
        let report = super::fit_ml(NAME, &PARAMS, &starts, nll, progress)?;
        let v: Vec<f64> = report.params.iter().map(|(_, v)| *v).collect();
        Ok(BgBb {
            alpha: v[0],
            beta: v[1],
            gamma: v[2],
            delta: v[3],
            report,
        })
    }

    /// A model with given parameters (all finite and > 0); its report has
    /// NaN log-likelihood and standard errors.
    pub fn with_params(alpha: f64, beta: f64, gamma: f64, delta: f64) -> Result<Self, ModelError> {
        let v = [alpha, beta, gamma, delta];
        super::check_positive(NAME, &PARAMS, &v)?;
        Ok(BgBb {
            alpha,
            beta,
            gamma,
            delta,
            report: super::unfitted_report(NAME, &PARAMS, &v),
        })
    }

    /// Estimates and fit diagnostics.
    pub fn report(&self) -> &FitReport {
        &self.report
    }

    /// Weighted log-likelihood of `patterns` at the model's parameters.
    pub fn log_likelihood(&self, patterns: &[Pattern]) -> Result<f64, ModelError> {
        if patterns.is_empty() {
            return Err(ModelError::Empty);
        }
        for p in patterns {
            validate_pattern(p)?;
        }
        let ll = super::sum_ll(patterns, |p| {
            if p.weight == 0.0 {
                0.0
            } else {
                p.weight * ln_lik(self.alpha, self.beta, self.gamma, self.delta, p)
            }
        });
        if ll.is_finite() {
            Ok(ll)
        } else {
            Err(ModelError::NotIdentified(format!(
                "{NAME}: log-likelihood is not finite at {:?}",
                self.report.params
            )))
        }
    }

    /// Probability that a customer with history `p` is alive at opportunity
    /// n+1: B(α+x, β+n−x)/B(α,β) · B(γ, δ+n+1)/B(γ,δ) / L. NaN for an invalid
    /// pattern.
    pub fn p_alive(&self, p: &Pattern) -> f64 {
        if validate_pattern(p).is_err() {
            return f64::NAN;
        }
        let (a, b, g, d) = (self.alpha, self.beta, self.gamma, self.delta);
        let (x, n) = (p.x as f64, p.n as f64);
        let alive_next =
            ln_beta(a + x, b + n - x) - ln_beta(a, b) + ln_beta(g, d + n + 1.0) - ln_beta(g, d);
        (alive_next - ln_lik(a, b, g, d, p)).exp()
    }

    /// Expected transactions in the next `n_star` opportunities (n, n+n*] for a
    /// customer with history `p`:
    /// (1/L) · B(α+x+1, β+n−x)/B(α,β) · δ/(γ−1) · Γ(γ+δ)/Γ(1+δ)
    ///       · [Γ(1+δ+n)/Γ(γ+δ+n) − Γ(1+δ+n+n*)/Γ(γ+δ+n+n*)].
    /// NaN for an invalid pattern.
    pub fn expected_transactions(&self, n_star: u32, p: &Pattern) -> f64 {
        if validate_pattern(p).is_err() {
            return f64::NAN;
        }
        let (a, b, d) = (self.alpha, self.beta, self.delta);
        let (x, n) = (p.x as f64, p.n as f64);
        let ln_l = ln_lik(a, b, self.gamma, d, p);
        let ln_p_part = ln_beta(a + x + 1.0, b + n - x) - ln_beta(a, b);
        let survival_sum = super::across_removable(self.gamma, 1.0, |g| {
            // g(m) = ln Γ(1+δ+m) − ln Γ(γ+δ+m); the bracket is e^{g(n)} − e^{g(n+n*)}.
            let gm = |m: f64| ln_gamma(1.0 + d + m) - ln_gamma(g + d + m);
            let head = gm(n);
            let diff = -(gm(n + n_star as f64) - head).exp_m1();
            d / (g - 1.0) * (ln_gamma(g + d) - ln_gamma(1.0 + d) + head).exp() * diff
        });
        (ln_p_part - ln_l).exp() * survival_sum
    }

    /// Unconditional expected transactions in the first `n` opportunities of a
    /// new customer: α/(α+β) · δ/(γ−1) · [1 − Γ(γ+δ)Γ(1+δ+n)/(Γ(γ+δ+n)Γ(1+δ))].
    pub fn expected_transactions_new(&self, n: u32) -> f64 {
        let (a, b, d) = (self.alpha, self.beta, self.delta);
        let nf = n as f64;
        let survival_sum = super::across_removable(self.gamma, 1.0, |g| {
            let ln_ratio =
                ln_gamma(g + d) + ln_gamma(1.0 + d + nf) - ln_gamma(g + d + nf) - ln_gamma(1.0 + d);
            d / (g - 1.0) * -ln_ratio.exp_m1()
        });
        a / (a + b) * survival_sum
    }
}

/// Individual log-likelihood
///
/// ```text
/// L = B(α+x, β+n−x)/B(α,β) · B(γ, δ+n)/B(γ,δ)
///   + Σ_{i=0}^{n−t_x−1} B(α+x, β+t_x−x+i)/B(α,β) · B(γ+1, δ+t_x+i)/B(γ,δ)
/// ```
///
/// the first term for "alive through n", the sum over the opportunity
/// t_x+i+1 at which she became inactive unobserved.
fn ln_lik(alpha: f64, beta: f64, gamma: f64, delta: f64, p: &Pattern) -> f64 {
    let (x, tx, n) = (p.x as f64, p.t_x as f64, p.n as f64);
    let norm = ln_beta(alpha, beta) + ln_beta(gamma, delta);
    let mut acc = ln_beta(alpha + x, beta + n - x) + ln_beta(gamma, delta + n);
    for i in 0..p.n.saturating_sub(p.t_x) {
        let i = i as f64;
        acc = log_add_exp(
            acc,
            ln_beta(alpha + x, beta + tx - x + i) + ln_beta(gamma + 1.0, delta + tx + i),
        );
    }
    acc - norm
}

#[cfg(test)]
mod tests {
    use super::super::special::ln_beta;
    use super::super::test_data::{donations, round};
    use super::*;

    #[test]
    fn reproduces_fader_hardie_shang_2010_donations_estimates() {
        let data = donations();
        assert_eq!(data.iter().map(|p| p.weight).sum::<f64>(), 11104.0);
        let m = BgBb::fit(&data).expect("fit");
        let rep = m.report();
        assert!(rep.converged, "{rep:?}");
        assert_eq!(round(m.alpha, 3), 1.204, "{rep:?}");
        assert_eq!(round(m.beta, 3), 0.750, "{rep:?}");
        assert_eq!(round(m.gamma, 3), 0.657, "{rep:?}");
        assert_eq!(round(m.delta, 3), 2.783, "{rep:?}");
        assert_eq!(round(rep.log_likelihood, 1), -33225.6, "{rep:?}");
        assert!(
            rep.std_errors.iter().all(|s| s.is_finite() && *s > 0.0),
            "{rep:?}"
        );
        eprintln!("BG/BB fit: {rep:?}");
    }

    /// P(alive at opportunity t) = E[(1−θ)^t] = B(γ, δ+t)/B(γ,δ).
    fn survive(g: f64, d: f64, t: f64) -> f64 {
        (ln_beta(g, d + t) - ln_beta(g, d)).exp()
    }

    #[test]
    fn likelihood_sums_to_one_over_all_patterns() {
        // The patterns (x, t_x) for fixed n are exhaustive, with multiplicity
        // C(t_x−1, x−1) for the orderings of the earlier transactions.
        let m = BgBb::with_params(1.204, 0.750, 0.657, 2.783).expect("valid");
        let n = 6u32;
        let choose =
            |k: u32, j: u32| -> f64 { (0..j).map(|i| (k - i) as f64 / (i + 1) as f64).product() };
        let mut total = (ln_lik(
            m.alpha,
            m.beta,
            m.gamma,
            m.delta,
            &Pattern {
                x: 0,
                t_x: 0,
                n,
                weight: 1.0,
            },
        ))
        .exp();
        for tx in 1..=n {
            for x in 1..=tx {
                let p = Pattern {
                    x,
                    t_x: tx,
                    n,
                    weight: 1.0,
                };
                total +=
                    choose(tx - 1, x - 1) * ln_lik(m.alpha, m.beta, m.gamma, m.delta, &p).exp();
            }
        }
        assert!((total - 1.0).abs() < 1e-12, "{total}");
    }

    #[test]
    fn expectations_match_finite_sums() {
        let m = BgBb::with_params(1.204, 0.750, 0.657, 2.783).expect("valid");
        let (a, b, g, d) = (m.alpha, m.beta, m.gamma, m.delta);
        // Unconditional: E[p] Σ_{t=1..n} P(alive at t).
        for n in [1u32, 6, 11, 50] {
            let want = a / (a + b) * (1..=n).map(|t| survive(g, d, t as f64)).sum::<f64>();
            assert!(
                (m.expected_transactions_new(n) / want - 1.0).abs() < 1e-12,
                "n={n}"
            );
        }
        // Conditional: joint weight of (alive at n, p, future survival) over L.
        let p = Pattern {
            x: 3,
            t_x: 4,
            n: 6,
            weight: 1.0,
        };
        let l = ln_lik(a, b, g, d, &p).exp();
        let p_part = (ln_beta(a + 4.0, b + 3.0) - ln_beta(a, b)).exp();
        for n_star in [1u32, 5, 10] {
            let sum: f64 = (1..=n_star).map(|i| survive(g, d, 6.0 + i as f64)).sum();
            let want = p_part * sum / l;
            assert!((m.expected_transactions(n_star, &p) / want - 1.0).abs() < 1e-12);
        }
        assert_eq!(m.expected_transactions(0, &p), 0.0);
        // γ = 1 is a removable singularity of the closed forms.
        let one = BgBb::with_params(1.2, 0.75, 1.0, 2.8).expect("valid");
        let want = 1.2 / 1.95 * (1..=6).map(|t| survive(1.0, 2.8, t as f64)).sum::<f64>();
        assert!((one.expected_transactions_new(6) / want - 1.0).abs() < 1e-9);
    }

    #[test]
    fn p_alive_properties() {
        let m = BgBb::with_params(1.204, 0.750, 0.657, 2.783).expect("valid");
        // Transacting at the last opportunity: alive at n, so P(alive at n+1) =
        // survival of one more opportunity, E[1−θ | alive at n].
        let last = m.p_alive(&Pattern {
            x: 6,
            t_x: 6,
            n: 6,
            weight: 1.0,
        });
        let want = survive(m.gamma, m.delta, 7.0) / survive(m.gamma, m.delta, 6.0);
        assert!((last - want).abs() < 1e-12);
        // More recent → more likely alive; all within [0, 1].
        let mut prev = 0.0;
        for tx in 1..=6 {
            let v = m.p_alive(&Pattern {
                x: 1,
                t_x: tx,
                n: 6,
                weight: 1.0,
            });
            assert!(v > prev && v <= 1.0);
            prev = v;
        }
        assert!(
            m.p_alive(&Pattern {
                x: 2,
                t_x: 1,
                n: 6,
                weight: 1.0
            })
            .is_nan()
        );
    }

    #[test]
    fn random_parameter_points_never_give_nan() {
        let data = donations();
        let mut state: u64 = 0x1234_5678_9ABC_DEF1;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let p = Pattern {
            x: 3,
            t_x: 4,
            n: 6,
            weight: 1.0,
        };
        for _ in 0..200 {
            let v: Vec<f64> = (0..4).map(|_| (next() * 16.0 - 8.0).exp()).collect();
            let m = BgBb::with_params(v[0], v[1], v[2], v[3]).expect("valid");
            match m.log_likelihood(&data) {
                Ok(ll) => assert!(ll.is_finite() && ll < 0.0),
                Err(ModelError::NotIdentified(_)) => {}
                Err(e) => panic!("{e}"),
            }
            assert!(m.expected_transactions(5, &p).is_finite(), "{v:?}");
            assert!(m.expected_transactions_new(6).is_finite(), "{v:?}");
            assert!((0.0..=1.0).contains(&m.p_alive(&p)), "{v:?}");
        }
    }

    #[test]
    fn errors() {
        assert_eq!(BgBb::fit(&[]).err(), Some(ModelError::Empty));
        let zero_weight = [Pattern {
            x: 1,
            t_x: 1,
            n: 6,
            weight: 0.0,
        }];
        assert_eq!(BgBb::fit(&zero_weight).err(), Some(ModelError::Empty));
        let nobody = [Pattern {
            x: 0,
            t_x: 0,
            n: 6,
            weight: 100.0,
        }];
        assert!(matches!(
            BgBb::fit(&nobody),
            Err(ModelError::NotIdentified(_))
        ));
        let bad = [Pattern {
            x: 3,
            t_x: 2,
            n: 6,
            weight: 1.0,
        }];
        assert!(matches!(BgBb::fit(&bad), Err(ModelError::InvalidInput(_))));
        let bad = [Pattern {
            x: 1,
            t_x: 1,
            n: 6,
            weight: f64::NAN,
        }];
        assert!(matches!(BgBb::fit(&bad), Err(ModelError::InvalidInput(_))));
    }
}

//! MBG/NBD model of Batislam, E. P., Denizel, M. & Filiztekin, A. (2007),
//! "Empirical validation and comparison of models for customer base
//! analysis", *International Journal of Research in Marketing* 24(3), 201–209.
//!
//! The BG/NBD story (Poisson purchases with λ ~ Gamma(r, α), drop-out with
//! probability p ~ Beta(a, b) after a purchase) except that a customer may
//! also drop out right after the *first* purchase at time 0. This removes the
//! BG/NBD oddity that customers with x = 0 are certainly alive. The individual
//! likelihood is
//! L(λ, p | x, t_x, T) = (1−p)^{x+1} λ^x e^{−λT} + p (1−p)^x λ^x e^{−λ t_x},
//! and mixing over λ and p gives the paper's likelihood, P(alive) and
//! expectations in terms of Beta functions and ₂F₁. (The paper's equation
//! numbers could not be checked here; the comments name the expressions.)

use super::bgnbd::{alive_expectation, alive_expectations, probability_of_purchases};
use super::special::{ln_beta, ln_gamma, log_add_exp};
use super::{Customer, FitReport, ModelError, PurchaseModel};

const NAME: &str = "MBG/NBD";
const PARAMS: [&str; 4] = ["r", "alpha", "a", "b"];

/// An MBG/NBD model with parameters named as in the paper.
#[derive(Debug, Clone, PartialEq)]
pub struct MbgNbd {
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

impl MbgNbd {
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
        let (report, [r, alpha, a, b]) =
            super::bgnbd::fit_family(NAME, data, options, progress, true)?;
        Ok(MbgNbd {
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
        Ok(MbgNbd {
            r,
            alpha,
            a,
            b,
            report: super::unfitted_report(NAME, &PARAMS, &v),
        })
    }
}

/// Individual log-likelihood:
/// L = Γ(r+x)α^r/Γ(r) · [ B(a, b+x+1)/B(a,b) · (α+T)^−(r+x)
///                       + B(a+1, b+x)/B(a,b) · (α+t_x)^−(r+x) ].
/// Unlike BG/NBD the second ("dropped out after the last purchase") term is
/// present for x = 0 too, with t_x = 0: drop-out right after the first purchase.
pub(super) fn ln_lik(r: f64, alpha: f64, a: f64, b: f64, c: &Customer) -> f64 {
    let x = c.x;
    let common = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() - ln_beta(a, b);
    let alive = ln_beta(a, b + x + 1.0) - (r + x) * (alpha + c.t).ln();
    let dropped = ln_beta(a + 1.0, b + x) - (r + x) * (alpha + c.t_x).ln();
    common + log_add_exp(alive, dropped)
}

impl PurchaseModel for MbgNbd {
    fn name(&self) -> &'static str {
        NAME
    }

    fn report(&self) -> &FitReport {
        &self.report
    }

    /// P(alive) · (a+b+x)/(a−1) · [1 − ((α+T)/(α+T+t))^{r+x}
    /// ₂F₁(r+x, b+x+1; a+b+x; t/(α+T+t))]: an alive customer's posterior is
    /// λ ~ Gamma(r+x, α+T), p ~ Beta(a, b+x+1).
    fn expected_purchases(&self, t: f64, c: &Customer) -> f64 {
        if super::validate_customer(c).is_err() {
            return f64::NAN;
        }
        self.p_alive(c) * self.expected_purchases_if_alive(t, c.x, c.t)
    }

    /// 1 / (1 + a/(b+x) · ((α+T)/(α+t_x))^{r+x}), for every x including 0.
    fn p_alive(&self, c: &Customer) -> f64 {
        if super::validate_customer(c).is_err() {
            return f64::NAN;
        }
        if self.a == 0.0 {
            return 1.0;
        }
        let x = c.x;
        let ln_odds = self.a.ln() - (self.b + x).ln()
            + (self.r + x) * ((self.alpha + c.t).ln() - (self.alpha + c.t_x).ln());
        1.0 / (1.0 + ln_odds.exp())
    }

    /// E[X(t)] = b/(a−1) · [1 − (α/(α+t))^r ₂F₁(r, b+1; a+b; t/(α+t))]: a new
    /// customer survives the drop-out at time 0 with probability b/(a+b), and
    /// then behaves like a BG/NBD customer with p ~ Beta(a, b+1).
    fn expected_purchases_new(&self, t: f64) -> f64 {
        let (a, b) = (self.a, self.b);
        if a == 0.0 {
            return t * self.r / self.alpha;
        }
        b / (a + b) * alive_expectation(self.r, self.alpha, a, b + 1.0, t)
    }

    /// The alive customer's expectation: λ ~ Gamma(r+x, α+T), p ~ Beta(a, b+x+1);
    /// t(r+x)/(α+T) for the NBD at the no-dropout boundary.
    fn expected_purchases_if_alive(&self, t: f64, x: f64, age: f64) -> f64 {
        let mut out = [0.0];
        self.expected_purchases_if_alive_at(&[t], x, age, &mut out);
        out[0]
    }

    fn expected_purchases_if_alive_at(&self, ts: &[f64], x: f64, age: f64, out: &mut [f64]) {
        if self.a == 0.0 {
            for (o, &t) in out.iter_mut().zip(ts) {
                *o = t * (self.r + x) / (self.alpha + age);
            }
            return;
        }
        let (r, alpha, a, b) = (self.r + x, self.alpha + age, self.a, self.b + x + 1.0);
        alive_expectations(r, alpha, a, b, ts, out);
    }

    /// A new customer drops out at time 0 with probability p and otherwise behaves
    /// as a BG/NBD customer, so mixing over p ~ Beta(a, b):
    /// P(X(t) = n) = δ_{n0} a/(a+b) + b/(a+b) · P_BG/NBD(X(t) = n | r, α, a, b+1).
    fn probability_of_purchases(&self, n: u32, t: f64) -> f64 {
        let (a, b) = (self.a, self.b);
        if a == 0.0 {
            return probability_of_purchases(self.r, self.alpha, 0.0, b, n, t);
        }
        let dead_at_start = if n == 0 { a / (a + b) } else { 0.0 };
        dead_at_start + b / (a + b) * probability_of_purchases(self.r, self.alpha, a, b + 1.0, n, t)
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
    use super::super::bgnbd::BgNbd;
    use super::super::special::{hyp2f1, ln_gamma};
    use super::super::test_data::cdnow_customers;
    use super::*;

    #[test]
    fn reproduces_the_published_cdnow_estimates() {
        // lifetimes' documentation fits MBG/NBD to the same CDNOW calibration
        // summary and prints r 0.525, α 6.183, a 0.891, b 1.614.
        let m = MbgNbd::fit(&cdnow_customers()).expect("fit");
        let rep = m.report();
        assert!(rep.converged && rep.boundary.is_none(), "{rep:?}");
        let round = |v: f64| (v * 1000.0).round() / 1000.0;
        assert_eq!(
            (round(m.r), round(m.alpha), round(m.a), round(m.b)),
            (0.525, 6.183, 0.891, 1.614),
            "{rep:?}"
        );
    }

    #[test]
    fn fits_cdnow_at_least_as_well_as_bgnbd() {
        let data = cdnow_customers();
        let start = std::time::Instant::now();
        let m = MbgNbd::fit(&data).expect("fit");
        let elapsed = start.elapsed();
        let bg = BgNbd::fit(&data).expect("fit");
        let rep = m.report();
        assert!(rep.converged, "{rep:?}");
        // Same number of parameters; the extra drop-out chance at time 0 should
        // not fit CDNOW materially worse than BG/NBD's −9582.4.
        assert!(
            rep.log_likelihood > bg.report().log_likelihood - 5.0,
            "{rep:?}"
        );
        assert!(
            rep.std_errors.iter().all(|s| s.is_finite() && *s > 0.0),
            "{rep:?}"
        );
        eprintln!("MBG/NBD fit {elapsed:?}: {rep:?}");
    }

    /// The paper's likelihood written out directly with Γ functions, without
    /// Beta-function or log-sum shortcuts.
    fn direct_likelihood(r: f64, alpha: f64, a: f64, b: f64, c: &Customer) -> f64 {
        let g = |v: f64| ln_gamma(v).exp();
        let beta_fn = |p: f64, q: f64| g(p) * g(q) / g(p + q);
        let a1 = g(r + c.x) * alpha.powf(r) / g(r);
        let b_ab = beta_fn(a, b);
        a1 * (beta_fn(a, b + c.x + 1.0) / b_ab / (alpha + c.t).powf(r + c.x)
            + beta_fn(a + 1.0, b + c.x) / b_ab / (alpha + c.t_x).powf(r + c.x))
    }

    #[test]
    fn random_parameter_points_never_give_nan() {
        let data = cdnow_customers();
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let c = Customer {
            x: 3.0,
            t_x: 20.0,
            t: 30.0,
        };
        for _ in 0..100 {
            let p: Vec<f64> = (0..4).map(|_| (next() * 16.0 - 8.0).exp()).collect();
            let m = MbgNbd::with_params(p[0], p[1], p[2], p[3]).expect("valid");
            match m.log_likelihood(&data) {
                Ok(ll) => assert!(ll.is_finite() && ll < 0.0),
                Err(ModelError::NotIdentified(_)) => {}
                Err(e) => panic!("{e}"),
            }
            assert!(m.expected_purchases(52.0, &c).is_finite(), "{p:?}");
            assert!(m.expected_purchases_new(52.0).is_finite(), "{p:?}");
            assert!((0.0..=1.0).contains(&m.p_alive(&c)), "{p:?}");
        }
    }

    #[test]
    fn likelihood_matches_direct_formula() {
        for c in [
            Customer {
                x: 0.0,
                t_x: 0.0,
                t: 38.86,
            },
            Customer {
                x: 2.0,
                t_x: 30.43,
                t: 38.86,
            },
            Customer {
                x: 9.0,
                t_x: 12.0,
                t: 20.0,
            },
        ] {
            for (r, alpha, a, b) in [(0.525, 6.183, 0.891, 1.614), (2.0, 1.5, 3.0, 0.7)] {
                let want = direct_likelihood(r, alpha, a, b, &c).ln();
                assert!((ln_lik(r, alpha, a, b, &c) - want).abs() < 1e-12, "{c:?}");
            }
        }
    }

    #[test]
    fn expectations_match_published_closed_forms() {
        let m = MbgNbd::with_params(0.525, 6.183, 0.891, 1.614).expect("valid");
        let (r, alpha, a, b) = (m.r, m.alpha, m.a, m.b);
        let t = 39.0;
        // Unconditional: b/(a−1)[1 − (α/(α+t))^r ₂F₁(r, b+1; a+b; t/(α+t))].
        let want = b / (a - 1.0)
            * (1.0 - (alpha / (alpha + t)).powf(r) * hyp2f1(r, b + 1.0, a + b, t / (alpha + t)));
        assert!((m.expected_purchases_new(t) / want - 1.0).abs() < 1e-12);
        // Conditional with the closed form written out.
        let c = Customer {
            x: 2.0,
            t_x: 30.43,
            t: 38.86,
        };
        let (x, tx, big_t) = (c.x, c.t_x, c.t);
        let z = t / (alpha + big_t + t);
        let num = (a + b + x) / (a - 1.0)
            * (1.0
                - ((alpha + big_t) / (alpha + big_t + t)).powf(r + x)
                    * hyp2f1(r + x, b + x + 1.0, a + b + x, z));
        let den = 1.0 + a / (b + x) * ((alpha + big_t) / (alpha + tx)).powf(r + x);
        assert!((m.expected_purchases(t, &c) / (num / den) - 1.0).abs() < 1e-12);
        // Slope at 0 is the mean rate times the share surviving time 0.
        let h = 1e-6;
        assert!((m.expected_purchases_new(h) / h / (r / alpha * b / (a + b)) - 1.0).abs() < 1e-5);
        // Unlike BG/NBD, a customer without repeat purchases may be dead.
        let p0 = m.p_alive(&Customer {
            x: 0.0,
            t_x: 0.0,
            t: 38.86,
        });
        assert!(p0 > 0.0 && p0 < 1.0);
    }
}

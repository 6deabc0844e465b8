//! Special functions needed by the lifetime-value models: `ln Γ`, `ln B` and the
//! Gauss hypergeometric function ₂F₁ for real parameters and `0 <= z < 1`.
//!
//! Everything is written from the textbook definitions (Abramowitz & Stegun
//! 6.1.40–6.1.41 for the Stirling series, 15.1.1 for the ₂F₁ series and 15.3.3
//! for Euler's transformation) so that the module needs no external crate.
//! Also here: log-sum helpers and tanh-sinh quadrature nodes, which the models
//! use where a ₂F₁ series would be too long (argument very close to 1).

/// Bernoulli-number coefficients `B_{2k} / (2k (2k−1))` of Stirling's series for
/// `ln Γ` (A&S 6.1.40), k = 1..8. They are exact rationals, so no fitted
/// constants are involved.
const STIRLING: [f64; 8] = [
    1.0 / 12.0,
    -1.0 / 360.0,
    1.0 / 1260.0,
    -1.0 / 1680.0,
    1.0 / 1188.0,
    -691.0 / 360360.0,
    1.0 / 156.0,
    -3617.0 / 122400.0,
];

/// Below this argument `ln Γ` is shifted upwards with the recurrence before the
/// asymptotic series is used; at 10 the first omitted Stirling term is < 2e-18.
const STIRLING_MIN: f64 = 10.0;

const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// Natural logarithm of the gamma function for `x > 0`.
///
/// Stirling's series with 8 correction terms, applied after shifting `x` to at
/// least 10 with `Γ(x+1) = xΓ(x)`. Absolute error is about 1e-15 near the zeros
/// at 1 and 2 and relative error about 1e-15 elsewhere. Returns NaN for
/// `x <= 0` or NaN input (the models never need the negative axis), `+inf` for
/// `x = +inf`.
pub fn ln_gamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    if x.is_infinite() {
        return f64::INFINITY;
    }
    let mut z = x;
    let mut prod = 1.0;
    while z < STIRLING_MIN {
        prod *= z;
        z += 1.0;
    }
    let inv = 1.0 / z;
    let inv2 = inv * inv;
    // Horner evaluation of the series in 1/z², highest order first.
    let mut series = 0.0;
    for c in STIRLING.iter().rev() {
        series = series * inv2 + c;
    }
    let stirling = (z - 0.5) * z.ln() - z + HALF_LN_2PI + series * inv;
    stirling - prod.ln()
}

/// Digamma ψ(x) = d ln Γ(x)/dx for `x > 0` (NaN otherwise), the derivative the
/// likelihood gradients need.
///
/// Shifted to at least 10 with ψ(x) = ψ(x+1) − 1/x, then the asymptotic series
/// ψ(z) ~ ln z − 1/(2z) − Σ B₂ₖ/(2k z²ᵏ) (A&S 6.3.18) with the same Bernoulli
/// numbers as [`ln_gamma`]; relative error about 1e-15 away from the root at
/// 1.4616.
pub fn digamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    if x.is_infinite() {
        return f64::INFINITY;
    }
    let mut z = x;
    let mut shift = 0.0;
    while z < STIRLING_MIN {
        shift += 1.0 / z;
        z += 1.0;
    }
    let inv2 = 1.0 / (z * z);
    // B₂ₖ/(2k) = STIRLING[k−1] · (2k−1), highest order first.
    let mut series = 0.0;
    for (k, c) in STIRLING.iter().enumerate().rev() {
        series = series * inv2 + c * (2 * k + 1) as f64;
    }
    z.ln() - 0.5 / z - series * inv2 - shift
}

/// Natural logarithm of the beta function `B(a, b) = Γ(a)Γ(b)/Γ(a+b)` for
/// `a, b > 0` (NaN otherwise).
pub fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// `ln(exp(u) + exp(v))` without overflow; `-inf` terms are allowed.
pub fn log_add_exp(u: f64, v: f64) -> f64 {
    let (hi, lo) = if u >= v { (u, v) } else { (v, u) };
    if hi == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    hi + (lo - hi).exp().ln_1p()
}

/// `ln(exp(u) − exp(v))` for `u >= v`; returns `-inf` when they are equal and
/// NaN when `u < v`.
pub fn log_sub_exp(u: f64, v: f64) -> f64 {
    if u < v {
        return f64::NAN;
    }
    if v == f64::NEG_INFINITY {
        return u;
    }
    if u == v {
        return f64::NEG_INFINITY;
    }
    // ln(1 − e^d) with d < 0: ln(−expm1(d)) keeps precision when d is near 0.
    u + (-(v - u).exp_m1()).ln()
}

/// Relative size below which the remaining tail of a ₂F₁ series is ignored.
const SERIES_EPS: f64 = 1e-17;
/// Hard cap on series length (a few milliseconds); reached only for `z`
/// within about 2e-5 of 1, where callers switch to quadrature.
const SERIES_MAX_TERMS: usize = 2_000_000;
/// Partial sums are rescaled by 2^-RESCALE_BITS when they pass 2^RESCALE_BITS,
/// so that series whose value overflows f64 can still be returned as a log.
const RESCALE_BITS: i32 = 600;

/// `2^RESCALE_BITS` and its inverse, exact powers of two.
const RESCALE_UP: f64 = f64::from_bits(((1023 + RESCALE_BITS) as u64) << 52);
const RESCALE_DOWN: f64 = f64::from_bits(((1023 - RESCALE_BITS) as u64) << 52);

/// A Gauss series (value as `exp(ln_scale) · (one + tail)`) part-way through its
/// summation: [`gauss_series`] sums one argument with it, [`gauss_series_many`]
/// several side by side, with the same floating-point operations per term.
struct SeriesSum {
    ln_scale: f64,
    one: f64,
    term: f64,
    /// Neumaier-compensated sum of the terms n >= 1: long series near z = 1 add
    /// many small terms.
    sum: f64,
    comp: f64,
}

/// What adding a term did to a [`SeriesSum`].
enum Added {
    More,
    /// The rest of the series is negligible (or zero): [`SeriesSum::parts`] is the value.
    Settled,
    /// A term is not finite.
    Failed,
}

impl SeriesSum {
    fn new() -> SeriesSum {
        SeriesSum {
            ln_scale: 0.0,
            one: 1.0,
            term: 1.0,
            sum: 0.0,
            comp: 0.0,
        }
    }

    /// Adds the next term, the last one times `ratio` (the term ratio at `z`).
    #[inline(always)]
    fn add(&mut self, ratio: f64, z: f64) -> Added {
        self.term *= ratio;
        let term = self.term;
        if term == 0.0 {
            // A non-positive integer a or b ends the series: it is a polynomial
            // (or the terms underflowed far below the sum).
            return Added::Settled;
        }
        if !term.is_finite() {
            return Added::Failed;
        }
        let t = self.sum + term;
        if self.sum.abs() >= term.abs() {
            self.comp += (self.sum - t) + term;
        } else {
            self.comp += (term - t) + self.sum;
        }
        self.sum = t;
        if self.sum.abs() > RESCALE_UP {
            self.sum *= RESCALE_DOWN;
            self.comp *= RESCALE_DOWN;
            self.term *= RESCALE_DOWN;
            self.one *= RESCALE_DOWN;
            self.ln_scale += RESCALE_BITS as f64 * std::f64::consts::LN_2;
        }
        let q = ratio.abs().max(z);
        if q < 1.0 {
            // Once past their peak the term ratios tend to z monotonically, so
            // the geometric bound |term| q/(1−q) caps what is left.
            let (above, below) = (self.term.abs() * q, 1.0 - q);
            let sum = (self.one + self.sum + self.comp).abs();
            let bound = SERIES_EPS * sum.max(f64::MIN_POSITIVE);
            if !quotient_surely_above(above, below, bound) && quotient_at_most(above, below, bound)
            {
                return Added::Settled;
            }
        }
        Added::More
    }

    /// `(ln_scale, one, tail)`.
    fn parts(&self) -> (f64, f64, f64) {
        (self.ln_scale, self.one, self.sum + self.comp)
    }
}

/// Whether the rounded quotient `p / d` is certainly above `bound` (`d` in (0, 1]),
/// found with two multiplications instead of the division, which would cost more
/// than the rest of a series term. When `p > bound · d · (1 + 2⁻²⁰)` with rounding
/// errors of at most 2⁻⁵³ each in the normal range, the exact quotient exceeds
/// `bound` by far more than half an ulp, so it rounds above `bound`. `false`
/// says nothing; the caller then divides.
#[inline(always)]
fn quotient_surely_above(p: f64, d: f64, bound: f64) -> bool {
    const MARGIN: f64 = 1.0 + 1.0 / (1u64 << 20) as f64;
    let scaled = bound * d * MARGIN;
    scaled >= f64::MIN_POSITIVE && p > scaled
}

/// `p / d <= bound`, apart so that the division is done only where
/// [`quotient_surely_above`] cannot decide (in the last terms of a series), not
/// speculatively for every term.
#[cold]
#[inline(never)]
fn quotient_at_most(p: f64, d: f64, bound: f64) -> bool {
    p / d <= bound
}

/// Whether the series at `z` would need more than [`SERIES_MAX_TERMS`]: terms
/// grow like n^(a+b−c−1) zⁿ up to their peak and then need about 40/(1−z) more
/// to fall below 1e-17.
fn series_too_long(a: f64, b: f64, c: f64, z: f64) -> bool {
    let needed = ((a + b - c - 1.0).max(0.0) * z + 40.0) / (1.0 - z);
    needed > SERIES_MAX_TERMS as f64
}

/// The ratio of term n+1 to term n of the Gauss series, divided by z.
#[inline(always)]
fn term_ratio(a: f64, b: f64, c: f64, n: usize) -> f64 {
    let nf = n as f64;
    (a + nf) * (b + nf) / ((c + nf) * (nf + 1.0))
}

/// The Gauss series Σ (a)ₙ(b)ₙ/((c)ₙ n!) zⁿ (A&S 15.1.1) as
/// `exp(ln_scale) · (one + tail)`, where `tail` collects the terms n >= 1 and
/// `one` is the n = 0 term in the same scale. Keeping the tail apart lets
/// callers use `ln_1p` when the function is close to 1. `None` if a term is
/// not finite or the series does not settle within [`SERIES_MAX_TERMS`].
fn gauss_series(a: f64, b: f64, c: f64, z: f64) -> Option<(f64, f64, f64)> {
    if series_too_long(a, b, c, z) {
        return None;
    }
    let mut series = SeriesSum::new();
    for n in 0..SERIES_MAX_TERMS {
        match series.add(term_ratio(a, b, c, n) * z, z) {
            Added::More => {}
            Added::Settled => return Some(series.parts()),
            Added::Failed => return None,
        }
    }
    None
}

/// [`gauss_series`] at every argument of `zs`, summed side by side: the term
/// ratio without z is computed once per n for all of them, and each argument
/// keeps its own sum, rescaling and stop test, so every result is bit for bit
/// what `gauss_series` gives for that argument alone.
fn gauss_series_many(a: f64, b: f64, c: f64, zs: &[f64]) -> Vec<Option<(f64, f64, f64)>> {
    let mut out = vec![None; zs.len()];
    // (index in zs, z, its sum); settled ones leave, so the inner loop below
    // runs over the open series only.
    let mut open: Vec<(usize, f64, SeriesSum)> = zs
        .iter()
        .enumerate()
        .filter(|&(_, &z)| !series_too_long(a, b, c, z))
        .map(|(i, &z)| (i, z, SeriesSum::new()))
        .collect();
    for n in 0..SERIES_MAX_TERMS {
        if open.is_empty() {
            break;
        }
        let ratio = term_ratio(a, b, c, n);
        let mut k = 0;
        while k < open.len() {
            let (i, z, series) = &mut open[k];
            match series.add(ratio * *z, *z) {
                Added::More => k += 1,
                Added::Settled => {
                    out[*i] = Some(series.parts());
                    open.swap_remove(k);
                }
                Added::Failed => {
                    open.swap_remove(k);
                }
            }
        }
    }
    out
}

/// How ₂F₁(a, b; c; ·) is summed, which does not depend on the argument: the
/// defining series or Euler's transformation (A&S 15.3.3)
/// ₂F₁(a,b;c;z) = (1−z)^(c−a−b) ₂F₁(c−a, c−b; c; z).
///
/// A series whose terms all have one sign cannot lose precision to
/// cancellation, so that property decides first; among such series the
/// transformed one is preferred when c−a−b < 0, because its terms decay like
/// n^(c−a−b−1) from the start instead of growing like n^(a+b−c−1) before the
/// geometric decay wins (which near z = 1 costs many terms). A terminating
/// (polynomial) form is always taken.
struct Form {
    /// The series' upper parameters (c−a, c−b after Euler's transformation).
    a: f64,
    b: f64,
    c: f64,
    /// c−a−b after Euler's transformation, the power of (1−z) in front.
    power: Option<f64>,
}

impl Form {
    /// `None` for non-finite parameters or a non-positive integer `c`.
    fn choose(a: f64, b: f64, c: f64) -> Option<Form> {
        if !(a.is_finite() && b.is_finite() && c.is_finite()) {
            return None;
        }
        let non_positive_integer = |p: f64| p <= 0.0 && p == p.round();
        if non_positive_integer(c) {
            return None;
        }
        let (ea, eb) = (c - a, c - b);
        let s = c - a - b;
        // 2: every term > 0, no cancellation at all; 1: the terms n >= 1 share one
        // sign, so only the final 1 + tail can cancel; 0: signs may alternate.
        let quality = |p: f64, q: f64| -> u8 {
            if c > 0.0 && p >= 0.0 && q >= 0.0 {
                2
            } else if c > -1.0 && p > -1.0 && q > -1.0 {
                1
            } else {
                0
            }
        };
        let use_euler = if non_positive_integer(a) || non_positive_integer(b) {
            false
        } else if non_positive_integer(ea) || non_positive_integer(eb) {
            true
        } else {
            let (qd, qe) = (quality(a, b), quality(ea, eb));
            // Between equally safe forms the decaying one (s < 0) is cheaper.
            qe > qd || (qe == qd && s < 0.0)
        };
        Some(if use_euler {
            Form {
                a: ea,
                b: eb,
                c,
                power: Some(s),
            }
        } else {
            Form {
                a,
                b,
                c,
                power: None,
            }
        })
    }

    /// The value at `z` from the series summed at `z`.
    fn finish(&self, z: f64, (ln_scale, one, tail): (f64, f64, f64)) -> (f64, f64, f64) {
        match self.power {
            Some(s) => (ln_scale + s * (-z).ln_1p(), one, tail),
            None => (ln_scale, one, tail),
        }
    }
}

/// The arguments ₂F₁ is computed for.
fn in_domain(z: f64) -> bool {
    z.is_finite() && (0.0..1.0).contains(&z)
}

/// ₂F₁(a, b; c; z) = exp(ln_pre) · (one + tail), in the [`Form`] chosen for
/// (a, b, c).
fn hyp2f1_parts(a: f64, b: f64, c: f64, z: f64) -> Option<(f64, f64, f64)> {
    let form = Form::choose(a, b, c)?;
    if !in_domain(z) {
        return None;
    }
    if z == 0.0 {
        return Some((0.0, 1.0, 0.0));
    }
    let parts = gauss_series(form.a, form.b, form.c, z)?;
    Some(form.finish(z, parts))
}

/// [`hyp2f1_parts`] at every argument of `zs`, bit for bit, with the series
/// summed side by side ([`gauss_series_many`]).
fn hyp2f1_parts_many(a: f64, b: f64, c: f64, zs: &[f64]) -> Vec<Option<(f64, f64, f64)>> {
    let mut out = vec![None; zs.len()];
    let Some(form) = Form::choose(a, b, c) else {
        return out;
    };
    let mut summed = Vec::with_capacity(zs.len());
    for (i, &z) in zs.iter().enumerate() {
        if z == 0.0 {
            out[i] = Some((0.0, 1.0, 0.0));
        } else if in_domain(z) {
            summed.push(i);
        }
    }
    let args: Vec<f64> = summed.iter().map(|&i| zs[i]).collect();
    let series = gauss_series_many(form.a, form.b, form.c, &args);
    for (&i, parts) in summed.iter().zip(series) {
        out[i] = parts.map(|p| form.finish(zs[i], p));
    }
    out
}

/// Gauss hypergeometric function ₂F₁(a, b; c; z) for real parameters and
/// `0 <= z < 1`.
///
/// Uses the defining series or Euler's transformation of it (see the module
/// docs). `c` must not be a non-positive integer. When a, b, c > 0 every term
/// is positive and the result is accurate to a few ulps times the number of
/// terms; with negative parameters the series may cancel and lose relative
/// precision where the function is small. Returns NaN outside the domain, if
/// the value overflows (use [`ln_hyp2f1`]), or if the series would need more
/// than two million terms (`z` within about 2e-5 of 1).
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    match hyp2f1_parts(a, b, c, z) {
        Some((ln_pre, one, tail)) => ln_pre.exp() * (one + tail),
        None => f64::NAN,
    }
}

/// `ln ₂F₁(a, b; c; z)` for the same domain as [`hyp2f1`], computed without
/// forming the possibly overflowing value. NaN if the function is not positive
/// there (it always is when a, b, c > 0); see [`ln_abs_hyp2f1`] otherwise.
pub fn ln_hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let (ln_abs, sign) = ln_abs_hyp2f1(a, b, c, z);
    if sign > 0.0 { ln_abs } else { f64::NAN }
}

/// `(ln |₂F₁(a, b; c; z)|, sign)` for the same domain as [`hyp2f1`]; the sign
/// is ±1 (0 if the value is exactly 0). Needed where c < 0 makes the function
/// negative, e.g. BG/NBD expectations with a + b < 1. Returns (NaN, NaN) on
/// failure.
pub fn ln_abs_hyp2f1(a: f64, b: f64, c: f64, z: f64) -> (f64, f64) {
    ln_abs_of_parts(hyp2f1_parts(a, b, c, z))
}

/// [`ln_abs_hyp2f1`] at every argument of `zs`, bit for bit the same values,
/// faster than one at a time: the terms of the series share their ratios
/// except for the factor z, so the series are summed side by side.
pub fn ln_abs_hyp2f1_many(a: f64, b: f64, c: f64, zs: &[f64]) -> Vec<(f64, f64)> {
    hyp2f1_parts_many(a, b, c, zs)
        .into_iter()
        .map(ln_abs_of_parts)
        .collect()
}

fn ln_abs_of_parts(parts: Option<(f64, f64, f64)>) -> (f64, f64) {
    match parts {
        Some((ln_pre, one, tail)) => {
            let v = one + tail;
            let sign = if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                0.0
            };
            // one == 1 unless the partial sums were rescaled; then ln_1p keeps
            // the digits of a small tail.
            let ln_abs = if one == 1.0 && tail > -1.0 {
                ln_pre + tail.ln_1p()
            } else {
                ln_pre + v.abs().ln()
            };
            (ln_abs, sign)
        }
        None => (f64::NAN, f64::NAN),
    }
}

/// Tanh-sinh (double-exponential) quadrature nodes on (0, len) with step `h`
/// over t ∈ [−5, 5], as (x, len − x, weight). Both distances to the ends are
/// computed without cancellation, so integrands with algebraic end-point
/// singularities (Beta or Gamma densities with shape < 1) still integrate to
/// near machine precision (Takahasi & Mori 1974).
pub fn tanh_sinh_nodes(len: f64, h: f64) -> Vec<(f64, f64, f64)> {
    let pi = std::f64::consts::PI;
    let kmax = (5.0 / h).round() as i64;
    let mut out = Vec::with_capacity(2 * kmax as usize + 1);
    for k in -kmax..=kmax {
        let t = k as f64 * h;
        // x = len (1 + tanh(π/2 sinh t))/2 = len / (1 + e^{−π sinh t}).
        let e = (-pi * t.sinh()).exp();
        let x = len / (1.0 + e);
        let xc = len * e / (1.0 + e);
        let w = len * pi * t.cosh() * e / ((1.0 + e) * (1.0 + e)) * h;
        if x > 0.0 && xc > 0.0 && w > 0.0 && w.is_finite() {
            out.push((x, xc, w));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        ((a - b) / b).abs()
    }

    #[test]
    fn digamma_matches_known_values_and_ln_gamma_differences() {
        // ψ(1) = −γ, ψ(1/2) = −γ − 2 ln 2, ψ(n+1) = ψ(n) + 1/n.
        let euler = 0.577_215_664_901_532_9;
        assert!((digamma(1.0) + euler).abs() < 1e-15);
        assert!((digamma(0.5) + euler + 2.0 * 2f64.ln()).abs() < 1e-14);
        assert!((digamma(11.0) - digamma(10.0) - 0.1).abs() < 1e-15);
        // Central difference of ln Γ, independently of the series.
        for x in [0.05, 0.3, 1.7, 6.25, 42.0, 1e4] {
            let h = 1e-5 * x;
            let fd = (ln_gamma(x + h) - ln_gamma(x - h)) / (2.0 * h);
            assert!(rel(digamma(x), fd) < 1e-7, "{x}: {} vs {fd}", digamma(x));
        }
        assert!(digamma(0.0).is_nan() && digamma(-1.0).is_nan());
    }

    #[test]
    fn ln_gamma_at_integers_matches_log_factorial() {
        let mut ln_fact = 0.0_f64;
        for n in 1..=170u32 {
            // ln Γ(n) = ln (n−1)!, accumulated exactly enough in f64.
            let got = ln_gamma(n as f64);
            assert!(
                (got - ln_fact).abs() <= 1e-14 * ln_fact.abs().max(1.0),
                "n={n}: {got} vs {ln_fact}"
            );
            ln_fact += (n as f64).ln();
        }
    }

    #[test]
    fn ln_gamma_at_half_integers() {
        // Γ(n + 1/2) = (2n)! √π / (4ⁿ n!)
        let ln_sqrt_pi = 0.5 * std::f64::consts::PI.ln();
        let mut ln_ratio = 0.0_f64; // ln((2n)!/(4^n n!))
        for n in 0..60u32 {
            if n > 0 {
                let nf = n as f64;
                ln_ratio += ((2.0 * nf) * (2.0 * nf - 1.0) / (4.0 * nf)).ln();
            }
            let want = ln_sqrt_pi + ln_ratio;
            let got = ln_gamma(n as f64 + 0.5);
            assert!(
                (got - want).abs() <= 2e-14 * want.abs().max(1.0),
                "n={n}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn ln_gamma_small_and_large_arguments() {
        // Γ(x) ≈ 1/x − γ for tiny x.
        let x = 1e-10;
        let euler_gamma = 0.577_215_664_901_532_9;
        assert!(rel(ln_gamma(x), -(x.ln()) - euler_gamma * x) < 1e-14);
        // Recurrence across the Stirling switch point.
        for &x in &[0.1, 0.7, 3.3, 9.99, 10.0, 10.01, 25.5, 1234.5] {
            let lhs = ln_gamma(x + 1.0);
            let rhs = ln_gamma(x) + x.ln();
            assert!((lhs - rhs).abs() < 1e-13 * lhs.abs().max(1.0), "x={x}");
        }
        assert!(ln_gamma(0.0).is_nan());
        assert!(ln_gamma(-1.5).is_nan());
        assert_eq!(ln_gamma(f64::INFINITY), f64::INFINITY);
    }

    #[test]
    fn ln_beta_identities() {
        // B(1, b) = 1/b and B(a, b) = B(b, a).
        assert!((ln_beta(1.0, 4.0) + 4.0_f64.ln()).abs() < 1e-14);
        assert!((ln_beta(0.3, 7.2) - ln_beta(7.2, 0.3)).abs() < 1e-14);
        // B(1/2, 1/2) = π.
        assert!((ln_beta(0.5, 0.5) - std::f64::consts::PI.ln()).abs() < 1e-14);
    }

    #[test]
    fn log_add_and_sub() {
        assert!((log_add_exp(2.0_f64.ln(), 3.0_f64.ln()) - 5.0_f64.ln()).abs() < 1e-15);
        assert!((log_sub_exp(5.0_f64.ln(), 3.0_f64.ln()) - 2.0_f64.ln()).abs() < 1e-15);
        assert_eq!(
            log_add_exp(f64::NEG_INFINITY, f64::NEG_INFINITY),
            f64::NEG_INFINITY
        );
        assert_eq!(log_sub_exp(1.0, 1.0), f64::NEG_INFINITY);
        assert!(log_sub_exp(0.0, 1.0).is_nan());
        // No overflow for large logs.
        assert!((log_add_exp(1000.0, 1000.0) - (1000.0 + 2.0_f64.ln())).abs() < 1e-12);
    }

    #[test]
    fn hyp2f1_log_closed_form() {
        // ₂F₁(1,1;2;z) = −ln(1−z)/z: c−a−b = 0, plain series, slow near 1.
        for &z in &[1e-8_f64, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999] {
            let want = -(-z).ln_1p() / z;
            assert!(rel(hyp2f1(1.0, 1.0, 2.0, z), want) < 1e-14, "z={z}");
        }
    }

    #[test]
    fn hyp2f1_power_closed_form() {
        // ₂F₁(a,b;b;z) = (1−z)^(−a), both with c−a−b < 0 (Euler) and > 0 (series).
        for &a in &[2.5, 0.3, -0.7, -2.2] {
            for &z in &[0.05_f64, 0.5, 0.95, 0.999] {
                let want = (1.0 - z).powf(-a);
                let got = hyp2f1(a, 1.3, 1.3, z);
                assert!(rel(got, want) < 1e-13, "a={a} z={z}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn hyp2f1_trigonometric_closed_forms() {
        for &x in &[0.01, 0.3, 0.7, 0.95, 0.999] {
            let z = x * x;
            // ₂F₁(1/2,1/2;3/2;x²) = arcsin(x)/x
            assert!(
                rel(hyp2f1(0.5, 0.5, 1.5, z), x.asin() / x) < 1e-13,
                "asin x={x}"
            );
            // ₂F₁(1/2,1;3/2;x²) = artanh(x)/x
            assert!(
                rel(hyp2f1(0.5, 1.0, 1.5, z), x.atanh() / x) < 1e-13,
                "atanh x={x}"
            );
            // ₂F₁(1,1;3/2;x²) = arcsin(x)/(x√(1−x²)); c−a−b < 0 takes the Euler path.
            let want = x.asin() / (x * (1.0 - z).sqrt());
            assert!(rel(hyp2f1(1.0, 1.0, 1.5, z), want) < 1e-13, "euler x={x}");
        }
        // ₂F₁(a, 1−a; 3/2; sin²θ) = sin((2a−1)θ)/((2a−1) sin θ)
        for &a in &[0.2, 1.7, 3.4] {
            for &th in &[0.2_f64, 1.0, 1.5] {
                let s = th.sin();
                let want = ((2.0 * a - 1.0) * th).sin() / ((2.0 * a - 1.0) * s);
                assert!(
                    rel(hyp2f1(a, 1.0 - a, 1.5, s * s), want) < 1e-12,
                    "a={a} th={th}"
                );
            }
        }
    }

    /// Straight summation of the defining series with no transformation, to
    /// check the Euler path independently.
    fn naive(a: f64, b: f64, c: f64, z: f64) -> f64 {
        let mut term = 1.0;
        let mut sum = 1.0;
        for n in 0..200_000 {
            let nf = n as f64;
            term *= (a + nf) * (b + nf) / ((c + nf) * (nf + 1.0)) * z;
            sum += term;
            if term.abs() < 1e-19 * sum.abs() && nf > 10.0 {
                break;
            }
        }
        sum
    }

    #[test]
    fn hyp2f1_euler_path_matches_plain_series() {
        let cases = [
            (2.3, 3.1, 1.7, 0.4),
            (0.553 + 3.0 + 0.606, 1.606, 0.553 + 3.0 + 0.606 + 1.0, 0.3),
            (7.24, 9.43, 10.2, 0.8),
            (0.4, 5.5, 2.0, 0.95),
            // A BG/NBD call (r+x, b+x; a+b+x−1) where the Euler form would
            // alternate in sign and cancel.
            (16.27, 3.038, 2.142, 0.63),
        ];
        for &(a, b, c, z) in &cases {
            assert!(c - a - b < 0.0);
            let want = naive(a, b, c, z);
            assert!(rel(hyp2f1(a, b, c, z), want) < 1e-12, "{a} {b} {c} {z}");
            assert!((ln_hyp2f1(a, b, c, z) - want.ln()).abs() < 1e-12);
        }
    }

    #[test]
    fn hyp2f1_gauss_contiguous_relation() {
        // c(c−1)(z−1)F(c−1) + c[c−1−(2c−a−b−1)z]F(c) + (c−a)(c−b)z F(c+1) = 0
        // (A&S 15.2.18), across parameters that switch between the two paths.
        for &(a, b, c, z) in &[
            (2.1, 3.4, 4.0, 0.6),
            (20.2, 22.4, 21.8, 0.9),
            (0.3, 0.8, 1.6, 0.97),
        ] {
            let f0 = hyp2f1(a, b, c - 1.0, z);
            let f1 = hyp2f1(a, b, c, z);
            let f2 = hyp2f1(a, b, c + 1.0, z);
            let t0 = c * (c - 1.0) * (z - 1.0) * f0;
            let t1 = c * (c - 1.0 - (2.0 * c - a - b - 1.0) * z) * f1;
            let t2 = (c - a) * (c - b) * z * f2;
            let scale = t0.abs().max(t1.abs()).max(t2.abs());
            assert!((t0 + t1 + t2).abs() < 1e-12 * scale, "{a} {b} {c} {z}");
        }
    }

    #[test]
    fn hyp2f1_large_parameters_stay_finite_in_log_form() {
        // A BG/NBD-style call for a heavy buyer: the value itself overflows
        // f64, its logarithm must not.
        let (r, b, a, x) = (0.243, 2.426, 0.793, 400.0);
        let v = ln_hyp2f1(r + x, b + x, a + b + x - 1.0, 0.999);
        assert!(v.is_finite() && v > 700.0, "{v}");
        // Polynomial case: a = −2 terminates after three terms.
        let z = 0.9;
        let want =
            1.0 - 2.0 * 3.0 / 4.0 * z + (-2.0 * -1.0) * (3.0 * 4.0) / (4.0 * 5.0 * 2.0) * z * z;
        assert!(rel(hyp2f1(-2.0, 3.0, 4.0, z), want) < 1e-15);
    }

    #[test]
    fn hyp2f1_negative_c_gives_signed_values() {
        // c ∈ (−1, 0): the tail is negative and can outweigh the leading 1.
        for &(a, b, c, z) in &[
            (0.5, 0.3, -0.4, 0.9),
            (13.27, 0.0383, -0.858, 0.9),
            (2.0, 1.5, -0.2, 0.3),
        ] {
            let want = naive(a, b, c, z);
            let got = hyp2f1(a, b, c, z);
            assert!(rel(got, want) < 1e-12, "{a} {b} {c} {z}: {got} vs {want}");
            let (l, sgn) = ln_abs_hyp2f1(a, b, c, z);
            assert_eq!(sgn, want.signum());
            assert!((l - want.abs().ln()).abs() < 1e-12);
        }
        assert!(ln_hyp2f1(0.5, 0.3, -0.4, 0.9).is_nan());
    }

    proptest::proptest! {
        /// The shortcut never claims a quotient above the bound that the
        /// division puts at or below it, also right at the margin.
        #[test]
        fn quotient_surely_above_agrees_with_the_division(
            p_exp in -330i32..300,
            p_frac in 1.0f64..2.0,
            d in 1e-17f64..=1.0,
            bound_exp in -340i32..300,
            nudge in -4i64..=4,
            at_margin in proptest::bool::ANY,
        ) {
            let bound = p_frac * 2f64.powi(bound_exp);
            let p = if at_margin {
                // p within a few ulps of bound · d · (1 + 2⁻²⁰).
                let edge = bound * d * (1.0 + 1.0 / (1u64 << 20) as f64);
                f64::from_bits((edge.to_bits() as i64 + nudge) as u64)
            } else {
                p_frac * 2f64.powi(p_exp)
            };
            if quotient_surely_above(p, d, bound) {
                proptest::prop_assert!(p / d > bound, "{p} / {d} vs {bound}");
            }
        }
    }

    #[test]
    fn rescale_factors_are_the_powers_of_two() {
        assert_eq!(RESCALE_UP, 2f64.powi(RESCALE_BITS));
        assert_eq!(RESCALE_DOWN, 2f64.powi(-RESCALE_BITS));
    }

    #[test]
    fn many_arguments_give_the_bits_of_one_at_a_time() {
        // Unsorted, with z = 0, points outside the domain and one too close to 1.
        let zs = [
            0.5,
            0.0,
            1e-9,
            0.999,
            0.01,
            0.63,
            0.1,
            0.9,
            0.99,
            0.3,
            0.9999,
            1.0 - 1e-7,
            1.0,
            -0.1,
            f64::NAN,
            0.63,
        ];
        let (r, alpha_b, a) = (0.243, 2.426, 0.793);
        let mut cases: Vec<(f64, f64, f64)> = [0.0, 1.0, 7.0, 40.0, 400.0]
            .iter()
            .map(|x| (r + x, alpha_b + x, a + alpha_b + x - 1.0))
            .collect();
        cases.extend([
            // Euler's transformation: c−a−b < 0 with positive terms either way.
            (2.3, 3.1, 1.7),
            (1.0, 1.0, 1.5),
            (0.4, 5.5, 2.0),
            (16.27, 3.038, 2.142),
            // Polynomials, directly and after the transformation (c − a = −1).
            (-2.0, 3.0, 4.0),
            (3.5, 1.2, 2.5),
            // Negative c, and outside the domain of the parameters.
            (0.5, 0.3, -0.4),
            (13.27, 0.0383, -0.858),
            (1.0, 1.0, -2.0),
            (f64::NAN, 1.0, 2.0),
        ]);
        let bits =
            |p: Option<(f64, f64, f64)>| p.map(|(l, o, t)| (l.to_bits(), o.to_bits(), t.to_bits()));
        let (mut euler, mut rescaled) = (false, false);
        for &(a, b, c) in &cases {
            euler |= Form::choose(a, b, c).is_some_and(|f| f.power.is_some());
            let many = hyp2f1_parts_many(a, b, c, &zs);
            let ln_many = ln_abs_hyp2f1_many(a, b, c, &zs);
            for (i, &z) in zs.iter().enumerate() {
                let one = hyp2f1_parts(a, b, c, z);
                rescaled |= one.is_some_and(|p| p.0 > 0.0 && p.1 < 1.0);
                assert_eq!(bits(many[i]), bits(one), "{a} {b} {c} {z}");
                let (l, s) = ln_abs_hyp2f1(a, b, c, z);
                assert_eq!(
                    (ln_many[i].0.to_bits(), ln_many[i].1.to_bits()),
                    (l.to_bits(), s.to_bits()),
                    "{a} {b} {c} {z}"
                );
            }
        }
        assert!(euler && rescaled);
        assert!(hyp2f1_parts_many(1.0, 1.0, 2.0, &[]).is_empty());
    }

    #[test]
    fn tanh_sinh_integrates_singular_densities() {
        // ∫₀¹ p^(a−1)(1−p)^(b−1) dp = B(a, b) with both ends singular.
        for &(a, b) in &[(0.3, 0.6), (0.793, 2.426), (2.0, 5.0)] {
            let s: f64 = tanh_sinh_nodes(1.0, 1.0 / 64.0)
                .iter()
                .map(|&(p, q, w)| ((a - 1.0) * p.ln() + (b - 1.0) * q.ln()).exp() * w)
                .sum();
            assert!((s.ln() - ln_beta(a, b)).abs() < 1e-12, "{a} {b}");
        }
    }

    #[test]
    fn hyp2f1_gives_up_quickly_when_z_is_too_close_to_one() {
        let start = std::time::Instant::now();
        assert!(hyp2f1(143.0, 10.5, 9.5, 1.0 - 1e-7).is_nan());
        assert!(start.elapsed().as_millis() < 50);
    }

    #[test]
    fn hyp2f1_domain_errors_are_nan() {
        assert!(hyp2f1(1.0, 1.0, 2.0, 1.0).is_nan());
        assert!(hyp2f1(1.0, 1.0, 2.0, -0.1).is_nan());
        assert!(hyp2f1(1.0, 1.0, -2.0, 0.5).is_nan());
        assert!(hyp2f1(f64::NAN, 1.0, 2.0, 0.5).is_nan());
        assert_eq!(hyp2f1(3.0, 4.0, 5.0, 0.0), 1.0);
    }
}

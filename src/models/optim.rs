//! Small unconstrained minimiser for smooth objectives of a handful of
//! parameters, plus the numerical Hessian and SPD inverse used for standard
//! errors.
//!
//! The models minimise a negative log-likelihood over the logarithms of their
//! (positive) parameters. The main engine is BFGS with central-difference
//! gradients and a backtracking Armijo line search (Nocedal & Wright 2006,
//! Algorithm 6.1 and 3.1); Nelder–Mead (Nelder & Mead 1965, with the usual
//! reflection/expansion/contraction/shrink coefficients 1, 2, ½, ½) rescues
//! starts where BFGS stalls. Several deterministic starting points are tried in a
//! fixed order, so results are bit-identical from run to run.

/// Outcome of [`minimize`].
#[derive(Debug, Clone, PartialEq)]
pub struct OptimResult {
    /// Minimiser found (in the optimiser's coordinates).
    pub x: Vec<f64>,
    /// Objective value at `x`.
    pub f: f64,
    /// Iterations (BFGS steps plus Nelder–Mead steps) spent on the start that
    /// produced `x`.
    pub iterations: usize,
    /// Whether the gradient test `max |∂f/∂xᵢ| <= grad_tol·(1 + |f|)` holds at `x`.
    pub converged: bool,
    /// Number of starting points that were run (the loop stops early once two
    /// starts agree on the optimum).
    pub starts: usize,
    /// Largest absolute component of the numerical gradient at `x`.
    pub max_gradient: f64,
}

/// Where a minimisation stands, as told to the `progress` callback of
/// [`minimize_with`] once at each start and after every iteration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimProgress {
    /// The starting point being run, counted from 1.
    pub start: usize,
    /// Starting points given (the loop may stop before the last).
    pub starts: usize,
    /// Iterations of this start so far, counted as in [`OptimResult::iterations`].
    pub iteration: usize,
    /// Objective value at the current point of this start.
    pub f: f64,
}

/// Tuning knobs of [`minimize`]; the defaults suit log-likelihoods of a few
/// thousand observations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimOptions {
    /// Convergence test on the gradient, relative to `1 + |f|`.
    pub grad_tol: f64,
    /// Maximum BFGS iterations per start and attempt.
    pub max_bfgs_iter: usize,
    /// Maximum Nelder–Mead iterations per start.
    pub max_nm_iter: usize,
    /// Two starts "agree" when their optima differ by less than this, relative
    /// to `1 + |f|`.
    pub agree_tol: f64,
    /// Central-difference step for gradients (in the optimiser's coordinates).
    pub grad_step: f64,
}

impl Default for OptimOptions {
    fn default() -> Self {
        OptimOptions {
            grad_tol: 1e-10,
            max_bfgs_iter: 500,
            max_nm_iter: 4000,
            agree_tol: 1e-9,
            grad_step: 1e-5,
        }
    }
}

/// Objective wrapper: non-finite values become `+inf` so that every search
/// treats them as "worse than anything" instead of propagating NaN.
fn eval<F: Fn(&[f64]) -> f64>(f: &F, x: &[f64]) -> f64 {
    let v = f(x);
    if v.is_finite() { v } else { f64::INFINITY }
}

/// Central-difference gradient. Returns `None` if any probe is non-finite.
pub fn gradient<F: Fn(&[f64]) -> f64>(f: &F, x: &[f64], h: f64) -> Option<Vec<f64>> {
    let mut g = vec![0.0; x.len()];
    let mut probe = x.to_vec();
    for i in 0..x.len() {
        probe[i] = x[i] + h;
        let fp = eval(f, &probe);
        probe[i] = x[i] - h;
        let fm = eval(f, &probe);
        probe[i] = x[i];
        if !fp.is_finite() || !fm.is_finite() {
            return None;
        }
        g[i] = (fp - fm) / (2.0 * h);
    }
    Some(g)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0_f64, |m, x| m.max(x.abs()))
}

struct LocalResult {
    x: Vec<f64>,
    f: f64,
    iterations: usize,
}

/// BFGS on the inverse Hessian approximation. Stops on the gradient test, when
/// the line search can make no progress, or after `max_iter` steps. `stepped`
/// hears the iteration count and objective value after every step.
fn bfgs<F: Fn(&[f64]) -> f64>(
    f: &F,
    x0: &[f64],
    opts: &OptimOptions,
    stepped: &mut dyn FnMut(usize, f64),
) -> LocalResult {
    let n = x0.len();
    let mut x = x0.to_vec();
    let mut fx = eval(f, &x);
    let mut iterations = 0;
    let Some(mut g) = gradient(f, &x, opts.grad_step) else {
        return LocalResult {
            x,
            f: fx,
            iterations,
        };
    };
    let mut h = identity(n);
    // Log-parameter steps larger than this would scale a parameter by e^3 in
    // one go, which only sends the search into overflow territory.
    let max_step = 3.0;
    while iterations < opts.max_bfgs_iter {
        if max_abs(&g) <= opts.grad_tol * (1.0 + fx.abs()) {
            break;
        }
        let mut d: Vec<f64> = (0..n).map(|i| -dot(&h[i], &g)).collect();
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            // The approximation lost positive definiteness: fall back to
            // steepest descent and start accumulating curvature afresh.
            h = identity(n);
            d = g.iter().map(|v| -v).collect();
            slope = dot(&g, &d);
        }
        let len = max_abs(&d);
        if len > max_step {
            let s = max_step / len;
            d.iter_mut().for_each(|v| *v *= s);
            slope *= s;
        }
        // Backtracking Armijo search (N&W Algorithm 3.1, c₁ = 1e-4), halving.
        let mut step = 1.0;
        let mut accepted = None;
        for _ in 0..60 {
            let xn: Vec<f64> = x.iter().zip(&d).map(|(xi, di)| xi + step * di).collect();
            let fnew = eval(f, &xn);
            if fnew <= fx + 1e-4 * step * slope {
                accepted = Some((xn, fnew));
                break;
            }
            step *= 0.5;
        }
        iterations += 1;
        stepped(iterations, accepted.as_ref().map_or(fx, |a| a.1));
        let Some((xn, fnew)) = accepted else { break };
        let Some(gn) = gradient(f, &xn, opts.grad_step) else {
            break;
        };
        let s: Vec<f64> = xn.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = gn.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        let no_progress = (fx - fnew).abs() <= 1e-16 * (1.0 + fx.abs()) && max_abs(&s) < 1e-12;
        x = xn;
        fx = fnew;
        g = gn;
        if no_progress {
            break;
        }
        // Skip the update unless the curvature condition holds, which keeps
        // the inverse-Hessian approximation positive definite.
        if sy > 1e-12 * dot(&s, &s).sqrt() * dot(&y, &y).sqrt() {
            if iterations == 1 {
                // Scale the initial identity to the observed curvature (N&W 6.20).
                let scale = sy / dot(&y, &y);
                h.iter_mut()
                    .for_each(|row| row.iter_mut().for_each(|v| *v *= scale));
            }
            let rho = 1.0 / sy;
            let hy: Vec<f64> = (0..n).map(|i| dot(&h[i], &y)).collect();
            let yhy = dot(&y, &hy);
            // H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ, expanded (N&W 6.17).
            for i in 0..n {
                for j in 0..n {
                    h[i][j] += -rho * (hy[i] * s[j] + s[i] * hy[j])
                        + (rho * rho * yhy + rho) * s[i] * s[j];
                }
            }
        }
    }
    LocalResult {
        x,
        f: fx,
        iterations,
    }
}

fn identity(n: usize) -> Vec<Vec<f64>> {
    (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect()
}

/// Nelder–Mead from `x0` with an initial simplex of side `step`; restarts from
/// the best vertex until a restart no longer improves the value, because a
/// collapsed simplex can stall away from the minimum. `stepped` hears the
/// iteration count and the best vertex's value after every step.
fn nelder_mead<F: Fn(&[f64]) -> f64>(
    f: &F,
    x0: &[f64],
    step: f64,
    max_iter: usize,
    stepped: &mut dyn FnMut(usize, f64),
) -> LocalResult {
    let n = x0.len();
    let mut best_x = x0.to_vec();
    let mut best_f = eval(f, x0);
    let mut iterations = 0;
    let mut side = step;
    for _restart in 0..20 {
        let mut simplex: Vec<(Vec<f64>, f64)> = Vec::with_capacity(n + 1);
        simplex.push((best_x.clone(), best_f));
        for i in 0..n {
            let mut v = best_x.clone();
            v[i] += side;
            let fv = eval(f, &v);
            simplex.push((v, fv));
        }
        let start_f = best_f;
        while iterations < max_iter {
            simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
            let f_lo = simplex[0].1;
            let f_hi = simplex[n].1;
            let spread = (f_hi - f_lo).abs();
            let size = simplex
                .iter()
                .skip(1)
                .map(|(v, _)| {
                    max_abs(
                        &v.iter()
                            .zip(&simplex[0].0)
                            .map(|(a, b)| a - b)
                            .collect::<Vec<_>>(),
                    )
                })
                .fold(0.0_f64, f64::max);
            if f_hi.is_finite() && spread <= 1e-15 * (1.0 + f_lo.abs()) || size < 1e-11 {
                break;
            }
            iterations += 1;
            let centroid: Vec<f64> = (0..n)
                .map(|j| simplex[..n].iter().map(|(v, _)| v[j]).sum::<f64>() / n as f64)
                .collect();
            let worst = simplex[n].0.clone();
            let along = |t: f64| -> Vec<f64> {
                centroid
                    .iter()
                    .zip(&worst)
                    .map(|(c, w)| c + t * (c - w))
                    .collect()
            };
            let xr = along(1.0);
            let fr = eval(f, &xr);
            if fr < simplex[0].1 {
                let xe = along(2.0);
                let fe = eval(f, &xe);
                simplex[n] = if fe < fr { (xe, fe) } else { (xr, fr) };
            } else if fr < simplex[n - 1].1 {
                simplex[n] = (xr, fr);
            } else {
                let (xc, fc) = if fr < simplex[n].1 {
                    let xc = along(0.5);
                    let fc = eval(f, &xc);
                    (xc, fc)
                } else {
                    let xc = along(-0.5);
                    let fc = eval(f, &xc);
                    (xc, fc)
                };
                if fc < simplex[n].1.min(fr) {
                    simplex[n] = (xc, fc);
                } else {
                    let lo = simplex[0].0.clone();
                    for v in simplex.iter_mut().skip(1) {
                        let xs: Vec<f64> = lo
                            .iter()
                            .zip(&v.0)
                            .map(|(l, x)| l + 0.5 * (x - l))
                            .collect();
                        let fs = eval(f, &xs);
                        *v = (xs, fs);
                    }
                }
            }
            stepped(
                iterations,
                simplex.iter().map(|v| v.1).fold(f64::INFINITY, f64::min),
            );
        }
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        if simplex[0].1 < best_f {
            best_x = simplex[0].0.clone();
            best_f = simplex[0].1;
        }
        let improved = start_f - best_f > 1e-12 * (1.0 + best_f.abs());
        if iterations >= max_iter || !improved {
            break;
        }
        side = (side * 0.5).max(1e-3);
    }
    LocalResult {
        x: best_x,
        f: best_f,
        iterations,
    }
}

/// Minimises `f` from each of `starts` in order and returns the best optimum.
///
/// Each start runs BFGS; if that does not meet the gradient test, Nelder–Mead
/// continues from where it stopped and BFGS polishes the result. The loop stops
/// early once two starts reach optima that agree within `agree_tol`, since
/// further starts would only cost time. Starts whose objective is not finite
/// are skipped. Returns `None` if no start has a finite objective.
pub fn minimize<F: Fn(&[f64]) -> f64>(
    f: &F,
    starts: &[Vec<f64>],
    opts: &OptimOptions,
) -> Option<OptimResult> {
    minimize_with(f, starts, opts, &mut |_| {})
}

/// [`minimize`], telling `progress` where each start stands: once as it begins
/// (iteration 0) and after every iteration, with iteration counts that grow
/// within a start.
pub fn minimize_with<F: Fn(&[f64]) -> f64>(
    f: &F,
    starts: &[Vec<f64>],
    opts: &OptimOptions,
    progress: &mut dyn FnMut(OptimProgress),
) -> Option<OptimResult> {
    let mut best: Option<OptimResult> = None;
    let mut runs = 0;
    let mut agreed = false;
    for (k, x0) in starts.iter().enumerate() {
        let f0 = eval(f, x0);
        if !f0.is_finite() {
            continue;
        }
        runs += 1;
        let mut report = |iteration: usize, f: f64| {
            progress(OptimProgress {
                start: k + 1,
                starts: starts.len(),
                iteration,
                f,
            })
        };
        report(0, f0);
        let mut r = bfgs(f, x0, opts, &mut report);
        let mut iterations = r.iterations;
        let mut g = gradient(f, &r.x, opts.grad_step);
        let passes = |g: &Option<Vec<f64>>, fx: f64| {
            g.as_ref()
                .is_some_and(|g| max_abs(g) <= opts.grad_tol * (1.0 + fx.abs()))
        };
        if !passes(&g, r.f) {
            let nm = nelder_mead(f, &r.x, 0.2, opts.max_nm_iter, &mut |i, v| {
                report(iterations + i, v)
            });
            iterations += nm.iterations;
            let polished = bfgs(f, &nm.x, opts, &mut |i, v| report(iterations + i, v));
            iterations += polished.iterations;
            r = if polished.f <= nm.f { polished } else { nm };
            g = gradient(f, &r.x, opts.grad_step);
        }
        let converged = passes(&g, r.f);
        let max_gradient = g.as_ref().map_or(f64::INFINITY, |g| max_abs(g));
        let candidate = OptimResult {
            x: r.x,
            f: r.f,
            iterations,
            converged,
            starts: runs,
            max_gradient,
        };
        match &best {
            Some(b) => {
                if converged
                    && b.converged
                    && (candidate.f - b.f).abs() <= opts.agree_tol * (1.0 + b.f.abs())
                {
                    agreed = true;
                }
                // Prefer a converged optimum; among equals the lower value.
                let better = (candidate.converged && !b.converged)
                    || (candidate.converged == b.converged && candidate.f < b.f);
                if better {
                    best = Some(candidate);
                }
            }
            None => best = Some(candidate),
        }
        if agreed {
            break;
        }
    }
    best.map(|mut b| {
        b.starts = runs;
        b
    })
}

/// An objective that returns its value and gradient together, or `None` where
/// it is not finite (outside the model or overflowing).
pub trait ValueGradient {
    fn value_gradient(&self, x: &[f64]) -> Option<(f64, Vec<f64>)>;
}

impl<F: Fn(&[f64]) -> Option<(f64, Vec<f64>)>> ValueGradient for F {
    fn value_gradient(&self, x: &[f64]) -> Option<(f64, Vec<f64>)> {
        self(x)
    }
}

/// Outcome of [`bfgs_with_gradient`].
#[derive(Debug, Clone, PartialEq)]
pub struct GradientResult {
    pub x: Vec<f64>,
    pub f: f64,
    pub gradient: Vec<f64>,
    pub iterations: usize,
    /// The gradient test `max |∂f/∂xᵢ| <= grad_tol·(1 + |f|)` holds at `x`.
    pub converged: bool,
    /// The search was stopped by the `stop` predicate (e.g. a parameter
    /// heading for the boundary of the model).
    pub stopped: bool,
}

/// BFGS with an exact gradient (Nocedal & Wright 2006, Algorithm 6.1) and a
/// backtracking Armijo line search, from `x0` with an optional initial
/// inverse-Hessian `h0` (identity, rescaled after the first step, otherwise).
///
/// `stop` is asked after every accepted step whether to give up on this
/// search; `stepped` hears the iteration count and the objective value.
/// Returns `None` if the objective is not finite at `x0`.
pub fn bfgs_with_gradient(
    fg: &dyn ValueGradient,
    x0: &[f64],
    h0: Option<Vec<Vec<f64>>>,
    opts: &OptimOptions,
    stop: &dyn Fn(&[f64]) -> bool,
    stepped: &mut dyn FnMut(usize, f64),
) -> Option<GradientResult> {
    let n = x0.len();
    let (mut fx, mut g) = fg
        .value_gradient(x0)
        .filter(|(f, g)| f.is_finite() && g.iter().all(|v| v.is_finite()))?;
    let mut x = x0.to_vec();
    let scaled_start = h0.is_some();
    let mut h = h0.unwrap_or_else(|| identity(n));
    let mut iterations = 0;
    let mut stopped = false;
    let max_step = 3.0;
    let passes = |g: &[f64], f: f64| max_abs(g) <= opts.grad_tol * (1.0 + f.abs());
    while iterations < opts.max_bfgs_iter && !passes(&g, fx) {
        let mut d: Vec<f64> = (0..n).map(|i| -dot(&h[i], &g)).collect();
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            h = identity(n);
            d = g.iter().map(|v| -v).collect();
            slope = dot(&g, &d);
        }
        let len = max_abs(&d);
        if len > max_step {
            let s = max_step / len;
            d.iter_mut().for_each(|v| *v *= s);
            slope *= s;
        }
        let mut step = 1.0;
        let mut accepted = None;
        for _ in 0..60 {
            let xn: Vec<f64> = x.iter().zip(&d).map(|(xi, di)| xi + step * di).collect();
            if let Some((fnew, gn)) = fg.value_gradient(&xn)
                && fnew.is_finite()
                && gn.iter().all(|v| v.is_finite())
            {
                // Armijo; or, where the decrease it asks for is below the rounding
                // of f (sums over a million customers, near the optimum), the
                // approximate Wolfe test of Hager & Zhang (2005): f no higher up to
                // rounding and the slope along d reduced in size.
                let armijo = fnew <= fx + 1e-4 * step * slope;
                let noise = 1e-12 * fx.abs();
                let approximate_wolfe =
                    fnew <= fx + noise && dot(&gn, &d).abs() <= 0.9 * slope.abs();
                if armijo || approximate_wolfe {
                    accepted = Some((xn, fnew, gn));
                    break;
                }
            }
            step *= 0.5;
        }
        iterations += 1;
        stepped(iterations, accepted.as_ref().map_or(fx, |a| a.1));
        let Some((xn, fnew, gn)) = accepted else {
            break;
        };
        let s: Vec<f64> = xn.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = gn.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        let no_progress = (fx - fnew).abs() <= 1e-16 * (1.0 + fx.abs()) && max_abs(&s) < 1e-12;
        x = xn;
        fx = fnew;
        g = gn;
        if stop(&x) {
            stopped = true;
            break;
        }
        if no_progress {
            break;
        }
        if sy > 1e-12 * dot(&s, &s).sqrt() * dot(&y, &y).sqrt() {
            if iterations == 1 && !scaled_start {
                let scale = sy / dot(&y, &y);
                h.iter_mut()
                    .for_each(|row| row.iter_mut().for_each(|v| *v *= scale));
            }
            let rho = 1.0 / sy;
            let hy: Vec<f64> = (0..n).map(|i| dot(&h[i], &y)).collect();
            let yhy = dot(&y, &hy);
            for i in 0..n {
                for j in 0..n {
                    h[i][j] += -rho * (hy[i] * s[j] + s[i] * hy[j])
                        + (rho * rho * yhy + rho) * s[i] * s[j];
                }
            }
        }
    }
    Some(GradientResult {
        converged: passes(&g, fx),
        x,
        f: fx,
        gradient: g,
        iterations,
        stopped,
    })
}

/// Hessian as central differences of an exact gradient, symmetrised:
/// Hᵢⱼ = ½[(gᵢ(x+hⱼeⱼ) − gᵢ(x−hⱼeⱼ))/2hⱼ + (i↔j)]; O(h²) accurate with 2n
/// gradient evaluations. `None` if a probe is not finite.
pub fn hessian_from_gradient(
    fg: &dyn ValueGradient,
    x: &[f64],
    h: &[f64],
) -> Option<Vec<Vec<f64>>> {
    let n = x.len();
    let mut cols = vec![vec![0.0; n]; n];
    let mut p = x.to_vec();
    for j in 0..n {
        p[j] = x[j] + h[j];
        let (_, gp) = fg.value_gradient(&p)?;
        p[j] = x[j] - h[j];
        let (_, gm) = fg.value_gradient(&p)?;
        p[j] = x[j];
        for i in 0..n {
            cols[j][i] = (gp[i] - gm[i]) / (2.0 * h[j]);
        }
    }
    let mut out = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..n {
            out[i][j] = 0.5 * (cols[j][i] + cols[i][j]);
            if !out[i][j].is_finite() {
                return None;
            }
        }
    }
    Some(out)
}

/// Hessian as forward differences of an exact gradient from its value `g0` at `x`,
/// symmetrised: n gradient evaluations, O(h) accurate (about 1e-5 relative with
/// h = 1e-5 in log parameters, ample for standard errors and the definiteness test).
pub fn hessian_forward(
    fg: &dyn ValueGradient,
    x: &[f64],
    g0: &[f64],
    h: f64,
) -> Option<Vec<Vec<f64>>> {
    let n = x.len();
    let mut cols = vec![vec![0.0; n]; n];
    let mut p = x.to_vec();
    for j in 0..n {
        p[j] = x[j] + h;
        let (_, g) = fg.value_gradient(&p)?;
        p[j] = x[j];
        for i in 0..n {
            cols[j][i] = (g[i] - g0[i]) / h;
        }
    }
    let out: Vec<Vec<f64>> = (0..n)
        .map(|i| (0..n).map(|j| 0.5 * (cols[j][i] + cols[i][j])).collect())
        .collect();
    out.iter().flatten().all(|v| v.is_finite()).then_some(out)
}

/// Central-difference Hessian of `f` at `x` with per-coordinate steps `h`.
///
/// Diagonal entries use (f(x+hᵢ) − 2f(x) + f(x−hᵢ))/hᵢ², off-diagonal ones the
/// four-point formula; both are O(h²) accurate. Returns `None` if a probe is
/// not finite.
pub fn hessian<F: Fn(&[f64]) -> f64>(f: &F, x: &[f64], h: &[f64]) -> Option<Vec<Vec<f64>>> {
    let n = x.len();
    let f0 = f(x);
    if !f0.is_finite() {
        return None;
    }
    let mut out = vec![vec![0.0; n]; n];
    let mut p = x.to_vec();
    let at = |p: &[f64]| -> Option<f64> {
        let v = f(p);
        v.is_finite().then_some(v)
    };
    for i in 0..n {
        p[i] = x[i] + h[i];
        let fp = at(&p)?;
        p[i] = x[i] - h[i];
        let fm = at(&p)?;
        p[i] = x[i];
        out[i][i] = (fp - 2.0 * f0 + fm) / (h[i] * h[i]);
        for j in 0..i {
            let mut q = |si: f64, sj: f64| {
                p[i] = x[i] + si * h[i];
                p[j] = x[j] + sj * h[j];
                let v = at(&p);
                p[i] = x[i];
                p[j] = x[j];
                v
            };
            let fpp = q(1.0, 1.0)?;
            let fpm = q(1.0, -1.0)?;
            let fmp = q(-1.0, 1.0)?;
            let fmm = q(-1.0, -1.0)?;
            let v = (fpp - fpm - fmp + fmm) / (4.0 * h[i] * h[j]);
            out[i][j] = v;
            out[j][i] = v;
        }
    }
    Some(out)
}

/// Inverse of a symmetric positive-definite matrix through its Cholesky
/// factor. Returns `None` if the matrix is not (numerically) positive definite,
/// which at a likelihood maximum means the information matrix is singular.
#[allow(clippy::needless_range_loop)] // index form mirrors the textbook algorithm
pub fn invert_spd(m: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = m.len();
    if m.iter()
        .any(|row| row.len() != n || row.iter().any(|v| !v.is_finite()))
    {
        return None;
    }
    // A = L Lᵀ.
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = m[i][j] - (0..j).map(|k| l[i][k] * l[j][k]).sum::<f64>();
            if i == j {
                if s.is_nan() || s <= 0.0 {
                    return None;
                }
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    // A⁻¹ = L⁻ᵀ L⁻¹; invert the triangular factor column by column.
    let mut linv = vec![vec![0.0; n]; n];
    for c in 0..n {
        for i in c..n {
            let rhs = if i == c { 1.0 } else { 0.0 };
            let s: f64 = rhs - (c..i).map(|k| l[i][k] * linv[k][c]).sum::<f64>();
            linv[i][c] = s / l[i][i];
        }
    }
    let mut inv = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..n {
            inv[i][j] = (i.max(j)..n).map(|k| linv[k][i] * linv[k][j]).sum();
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rosenbrock(x: &[f64]) -> f64 {
        (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2)
    }

    #[test]
    fn finds_rosenbrock_minimum() {
        let starts = vec![vec![-1.2, 1.0], vec![2.0, 2.0]];
        let r = minimize(&rosenbrock, &starts, &OptimOptions::default()).expect("finite");
        assert!(r.converged);
        assert!(
            (r.x[0] - 1.0).abs() < 1e-5 && (r.x[1] - 1.0).abs() < 1e-5,
            "{:?}",
            r.x
        );
        assert_eq!(r.starts, 2);
    }

    #[test]
    #[allow(clippy::needless_range_loop)]
    fn quadratic_minimum_and_hessian() {
        // f = ½ xᵀ A x − bᵀx with A SPD: minimiser A⁻¹b, Hessian A.
        let a = [[4.0, 1.0, 0.5], [1.0, 3.0, 0.2], [0.5, 0.2, 2.0]];
        let b = [1.0, -2.0, 0.5];
        let f = |x: &[f64]| {
            let mut v = 0.0;
            for i in 0..3 {
                for j in 0..3 {
                    v += 0.5 * x[i] * a[i][j] * x[j];
                }
                v -= b[i] * x[i];
            }
            v
        };
        let r = minimize(&f, &[vec![0.0; 3]], &OptimOptions::default()).expect("finite");
        let h = hessian(&f, &r.x, &[1e-3; 3]).expect("finite");
        let am: Vec<Vec<f64>> = a.iter().map(|r| r.to_vec()).collect();
        for i in 0..3 {
            for j in 0..3 {
                assert!((h[i][j] - a[i][j]).abs() < 1e-6);
            }
        }
        let inv = invert_spd(&am).expect("spd");
        for i in 0..3 {
            let xi: f64 = (0..3).map(|j| inv[i][j] * b[j]).sum();
            assert!((xi - r.x[i]).abs() < 1e-6);
            for j in 0..3 {
                let prod: f64 = (0..3).map(|k| am[i][k] * inv[k][j]).sum();
                assert!((prod - if i == j { 1.0 } else { 0.0 }).abs() < 1e-14);
            }
        }
    }

    #[test]
    fn singular_or_indefinite_matrix_is_rejected() {
        assert!(invert_spd(&[vec![1.0, 1.0], vec![1.0, 1.0]]).is_none());
        assert!(invert_spd(&[vec![1.0, 0.0], vec![0.0, -1.0]]).is_none());
        assert!(invert_spd(&[vec![f64::NAN]]).is_none());
    }

    #[test]
    fn non_finite_everywhere_gives_none() {
        let f = |_: &[f64]| f64::NAN;
        assert!(minimize(&f, &[vec![0.0], vec![1.0]], &OptimOptions::default()).is_none());
    }

    #[test]
    fn nelder_mead_takes_over_when_no_gradient_at_start() {
        // Undefined for x₀ < 0, so the central difference at x₀ = 0 fails and
        // BFGS cannot even start; Nelder–Mead must carry the search.
        let f = |x: &[f64]| {
            if x[0] < 0.0 {
                f64::NAN
            } else {
                (x[0] - 1.0).powi(2) + (x[1] + 2.0).powi(2)
            }
        };
        let r = minimize(&f, &[vec![0.0, 0.0]], &OptimOptions::default()).expect("finite");
        assert!(r.converged);
        assert!(
            (r.x[0] - 1.0).abs() < 1e-6 && (r.x[1] + 2.0).abs() < 1e-6,
            "{:?}",
            r.x
        );
    }

    #[test]
    fn progress_counts_iterations_up_within_each_start() {
        let watch = |f: &dyn Fn(&[f64]) -> f64, starts: &[Vec<f64>]| {
            let mut events = Vec::new();
            let r = minimize_with(&f, starts, &OptimOptions::default(), &mut |p| {
                events.push(p)
            })
            .expect("finite");
            (r, events)
        };
        let (r, events) = watch(&rosenbrock, &[vec![-1.2, 1.0], vec![2.0, 2.0]]);
        assert_eq!(events[0].iteration, 0);
        assert_eq!(events[0].f, rosenbrock(&[-1.2, 1.0]));
        for w in events.windows(2) {
            let next_start = w[1].start == w[0].start + 1 && w[1].iteration == 0;
            let next_iteration = w[1].start == w[0].start && w[1].iteration > w[0].iteration;
            assert!(next_start || next_iteration, "{w:?}");
        }
        assert_eq!(events.last().unwrap().start, r.starts);
        assert!(events.iter().all(|e| e.starts == 2));
        assert!(events.len() > 10);

        // One start whose BFGS cannot begin: the Nelder–Mead and polishing
        // iterations are reported too, and the count ends where the result's does.
        let f = |x: &[f64]| {
            if x[0] < 0.0 {
                f64::NAN
            } else {
                (x[0] - 1.0).powi(2) + (x[1] + 2.0).powi(2)
            }
        };
        let (r, events) = watch(&f, &[vec![0.0, 0.0]]);
        for w in events.windows(2) {
            assert!(w[1].iteration > w[0].iteration, "{w:?}");
        }
        assert_eq!(events.last().unwrap().iteration, r.iterations);
        assert!(r.iterations > 1);
    }

    #[test]
    fn infinite_regions_are_avoided() {
        // Minimum at 2 inside a domain x > 0; outside, the objective is NaN.
        let f = |x: &[f64]| {
            if x[0] > 0.0 {
                (x[0] - 2.0).powi(2) - x[0].ln()
            } else {
                f64::NAN
            }
        };
        let r = minimize(&f, &[vec![0.1]], &OptimOptions::default()).expect("finite");
        // d/dx: 2(x−2) − 1/x = 0 → x = 1 + √(1.5)
        assert!((r.x[0] - (1.0 + 1.5_f64.sqrt())).abs() < 1e-6, "{:?}", r.x);
    }

    #[test]
    fn bfgs_with_exact_gradient_finds_rosenbrock_and_hessian() {
        let fg = |x: &[f64]| {
            let f = rosenbrock(x);
            let g = vec![
                -2.0 * (1.0 - x[0]) - 400.0 * x[0] * (x[1] - x[0] * x[0]),
                200.0 * (x[1] - x[0] * x[0]),
            ];
            Some((f, g))
        };
        let r = bfgs_with_gradient(
            &fg,
            &[-1.2, 1.0],
            None,
            &OptimOptions::default(),
            &|_| false,
            &mut |_, _| {},
        )
        .expect("finite");
        assert!(r.converged && !r.stopped, "{r:?}");
        assert!(
            (r.x[0] - 1.0).abs() < 1e-6 && (r.x[1] - 1.0).abs() < 1e-6,
            "{r:?}"
        );
        // Analytic Hessian at (1, 1): [[802, −400], [−400, 200]].
        let h = hessian_from_gradient(&fg, &[1.0, 1.0], &[1e-4, 1e-4]).expect("finite");
        for (got, want) in h.iter().flatten().zip([802.0, -400.0, -400.0, 200.0]) {
            assert!((got - want).abs() < 1e-4, "{h:?}");
        }
        let g0 = fg(&[1.0, 1.0]).expect("finite").1;
        // Forward differences are first order: the error is about h times the
        // third derivative, 1.2e-3 here.
        let h = hessian_forward(&fg, &[1.0, 1.0], &g0, 1e-6).expect("finite");
        for (got, want) in h.iter().flatten().zip([802.0, -400.0, -400.0, 200.0]) {
            assert!((got - want).abs() < 1e-2, "{h:?}");
        }
        // A stop predicate ends the search early and says so.
        let r = bfgs_with_gradient(
            &fg,
            &[-1.2, 1.0],
            None,
            &OptimOptions::default(),
            &|x| x[0] > -1.0,
            &mut |_, _| {},
        )
        .expect("finite");
        assert!(r.stopped && !r.converged);
    }
}

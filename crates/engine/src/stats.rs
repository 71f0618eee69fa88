//! Intervals and paired tests: what the optimizer says about its numbers, and how it decides.
//!
//! - [`ci95`]: a 95% interval for one prompt's mean score (Wilson for 0/1 scores, a seeded
//!   bootstrap otherwise).
//! - [`paired_test`]: does a candidate beat the best prompt on the *same* rows? One-sided:
//!   the exact sign test on the discordant rows for 0/1 scores (McNemar's exact test), the
//!   paired t-test otherwise.
//! - [`TestDelta`]: best − initial on test, per row, with a 95% interval: Agresti–Min's
//!   interval for paired 0/1 scores (a Wald interval after adding ½ to each cell of the 2×2
//!   table, which stays honest when every row ties), the paired t-interval otherwise.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use serde::{Deserialize, Serialize};

const Z95: f64 = 1.959_963_984_540_054;

/// A 95% interval for the mean of `scores`: Wilson's for 0/1 scores, a seeded percentile
/// bootstrap (2,000 resamples) otherwise. `None` for no scores.
///
/// ```
/// let (lo, hi) = metaprompt_engine::ci95(&[1.0, 1.0, 0.0, 1.0], 0).unwrap();
/// assert!(lo < 0.75 && 0.75 < hi);
/// ```
pub fn ci95(scores: &[f64], seed: u64) -> Option<(f64, f64)> {
    if scores.is_empty() {
        return None;
    }
    let n = scores.len() as f64;
    if binary(scores) {
        let p = scores.iter().sum::<f64>() / n;
        let z = Z95;
        let denom = 1.0 + z * z / n;
        let centre = (p + z * z / (2.0 * n)) / denom;
        let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
        return Some(((centre - half).max(0.0), (centre + half).min(1.0)));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..2000)
        .map(|_| {
            let mut sum = 0.0;
            for _ in 0..scores.len() {
                let i = crate::seeded::below(&mut rng, scores.len());
                sum += scores[i];
            }
            sum / n
        })
        .collect();
    means.sort_by(f64::total_cmp);
    Some((means[49], means[1949]))
}

fn binary(scores: &[f64]) -> bool {
    scores.iter().all(|s| *s == 0.0 || *s == 1.0)
}

/// The natural log of the gamma function (Lanczos, g = 7), for x > 0.
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection keeps the series in its accurate range.
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The continued fraction of the regularized incomplete beta function (Lentz's method).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    let tiny = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < tiny {
        d = tiny;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..300 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < tiny {
            d = tiny;
        }
        c = 1.0 + aa / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < tiny {
            d = tiny;
        }
        c = 1.0 + aa / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-14 {
            break;
        }
    }
    h
}

/// The regularized incomplete beta function I_x(a, b).
fn beta_inc(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, 1.0 - x) / b
    }
}

/// P(T ≤ t) for Student's t with `df` degrees of freedom.
pub(crate) fn t_cdf(t: f64, df: f64) -> f64 {
    let x = df / (df + t * t);
    let tail = 0.5 * beta_inc(df / 2.0, 0.5, x);
    if t >= 0.0 { 1.0 - tail } else { tail }
}

/// The `p` quantile of Student's t with `df` degrees of freedom (bisection on the CDF).
pub(crate) fn t_quantile(p: f64, df: f64) -> f64 {
    let (mut lo, mut hi) = (-1e3, 1e3);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// P(X ≥ k) for X ~ Binomial(n, 1/2).
pub(crate) fn sign_tail(k: u64, n: u64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    let nf = n as f64;
    let ln_total = nf * std::f64::consts::LN_2;
    let sum: f64 = (k..=n)
        .map(|i| {
            let i = i as f64;
            (ln_gamma(nf + 1.0) - ln_gamma(i + 1.0) - ln_gamma(nf - i + 1.0) - ln_total).exp()
        })
        .sum();
    sum.min(1.0)
}

/// The outcome of a one-sided paired test "the candidate scores higher than the incumbent".
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedTest {
    /// Mean of candidate − incumbent over the rows.
    pub difference: f64,
    /// One-sided p-value.
    pub p_value: f64,
    /// Whether the candidate wins at the requested confidence.
    pub significant: bool,
}

/// Tests whether `candidate` beats `incumbent` on the same rows (same order), one-sided, at
/// `confidence`.
///
/// ```
/// use metaprompt_engine::paired_test;
/// // 9 rows won, 1 lost, 10 tied: the exact sign test gives p = 11/1024.
/// let cand: Vec<f64> = [1.0; 9].into_iter().chain([0.0]).chain([1.0; 10]).collect();
/// let inc: Vec<f64> = [0.0; 9].into_iter().chain([1.0]).chain([1.0; 10]).collect();
/// let t = paired_test(&cand, &inc, 0.9);
/// assert!((t.p_value - 11.0 / 1024.0).abs() < 1e-9 && t.significant);
/// ```
pub fn paired_test(candidate: &[f64], incumbent: &[f64], confidence: f64) -> PairedTest {
    let n = candidate.len().min(incumbent.len());
    if n == 0 {
        return PairedTest {
            difference: 0.0,
            p_value: 1.0,
            significant: false,
        };
    }
    let d: Vec<f64> = (0..n).map(|i| candidate[i] - incumbent[i]).collect();
    let mean = d.iter().sum::<f64>() / n as f64;
    let p_value = if binary(&candidate[..n]) && binary(&incumbent[..n]) {
        let wins = d.iter().filter(|x| **x > 0.0).count() as u64;
        let losses = d.iter().filter(|x| **x < 0.0).count() as u64;
        sign_tail(wins, wins + losses)
    } else {
        continuous_p(&d, mean)
    };
    PairedTest {
        difference: mean,
        p_value,
        significant: mean > 0.0 && p_value <= 1.0 - confidence,
    }
}

/// The one-sided p-value of "the mean difference is above zero" for continuous scores.
///
/// Degenerate spreads never give p = 0: fewer than two rows or no nonzero difference give
/// p = 1; differences that are all the same nonzero value (zero variance, where the t
/// statistic is undefined) fall back to the exact sign test on the nonzero rows; and the
/// t-test's p is never below the sign test's floor ½^m for m nonzero rows, the smallest
/// p-value m rows can honestly support.
fn continuous_p(d: &[f64], mean: f64) -> f64 {
    let n = d.len();
    let nonzero = d.iter().filter(|x| **x != 0.0).count() as u64;
    if n < 2 || nonzero == 0 {
        return 1.0;
    }
    let wins = d.iter().filter(|x| **x > 0.0).count() as u64;
    let sd = std_dev(d, mean);
    if sd == 0.0 || !sd.is_finite() {
        return sign_tail(wins, nonzero);
    }
    let t = mean / (sd / (n as f64).sqrt());
    let p = 1.0 - t_cdf(t, (n - 1) as f64);
    p.max(0.5f64.powi(nonzero.min(1000) as i32))
}

fn std_dev(d: &[f64], mean: f64) -> f64 {
    if d.len() < 2 {
        return 0.0;
    }
    (d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (d.len() - 1) as f64).sqrt()
}

/// Best − initial on test, row by row: the claim the final report makes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TestDelta {
    /// Mean of (best − initial) per test row.
    pub difference: f64,
    /// Its 95% interval.
    pub ci95: (f64, f64),
    /// Whether the interval lies above zero: only then is the gain real.
    pub significant: bool,
    /// Rows where the best prompt scored higher.
    pub wins: usize,
    /// Rows where it scored lower.
    pub losses: usize,
    /// Rows where both scored the same.
    pub ties: usize,
}

impl TestDelta {
    /// The paired difference of `best` and `initial` scored on the same rows (same order).
    /// `None` for no rows.
    ///
    /// ```
    /// use metaprompt_engine::TestDelta;
    /// // Every row ties: no gain, and an interval around zero that says so.
    /// let d = TestDelta::of(&[1.0, 0.0, 1.0], &[1.0, 0.0, 1.0]).unwrap();
    /// assert_eq!((d.difference, d.wins, d.losses, d.ties), (0.0, 0, 0, 3));
    /// assert!(d.ci95.0 < 0.0 && d.ci95.1 > 0.0 && !d.significant);
    /// ```
    pub fn of(best: &[f64], initial: &[f64]) -> Option<TestDelta> {
        let n = best.len().min(initial.len());
        if n == 0 {
            return None;
        }
        let d: Vec<f64> = (0..n).map(|i| best[i] - initial[i]).collect();
        let wins = d.iter().filter(|x| **x > 0.0).count();
        let losses = d.iter().filter(|x| **x < 0.0).count();
        let mean = d.iter().sum::<f64>() / n as f64;
        let ci95 = if binary(&best[..n]) && binary(&initial[..n]) {
            agresti_min(wins, losses, n)
        } else {
            let sd = std_dev(&d, mean);
            if n < 2 {
                (-1.0, 1.0)
            } else {
                let half = t_quantile(0.975, (n - 1) as f64) * sd / (n as f64).sqrt();
                ((mean - half).max(-1.0), (mean + half).min(1.0))
            }
        };
        Some(TestDelta {
            difference: mean,
            ci95,
            significant: ci95.0 > 0.0,
            wins,
            losses,
            ties: n - wins - losses,
        })
    }
}

/// Agresti and Min's (2005) interval for a difference of paired proportions: add ½ to each of
/// the four cells, then Wald. `wins` = rows 1 → 0 reversed (best 1, initial 0).
fn agresti_min(wins: usize, losses: usize, n: usize) -> (f64, f64) {
    let n_adj = n as f64 + 2.0;
    let p10 = (wins as f64 + 0.5) / n_adj;
    let p01 = (losses as f64 + 0.5) / n_adj;
    let diff = p10 - p01;
    let var = ((p10 + p01) - diff * diff) / n_adj;
    let half = Z95 * var.max(0.0).sqrt();
    ((diff - half).max(-1.0), (diff + half).min(1.0))
}

#[cfg(test)]
mod tests;

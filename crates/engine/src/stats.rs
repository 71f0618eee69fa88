//! Confidence intervals for a mean score.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

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
    if scores.iter().all(|s| *s == 0.0 || *s == 1.0) {
        let p = scores.iter().sum::<f64>() / n;
        let z = 1.959_963_984_540_054_f64;
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
                let i = ((rng.next_u64() as u128 * scores.len() as u128) >> 64) as usize;
                sum += scores[i];
            }
            sum / n
        })
        .collect();
    means.sort_by(f64::total_cmp);
    Some((means[49], means[1949]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_a_known_value() {
        // 8 of 10: Wilson 95% interval ≈ (0.4902, 0.9433).
        let s: Vec<f64> = [1.0; 8].into_iter().chain([0.0; 2]).collect();
        let (lo, hi) = ci95(&s, 0).unwrap();
        assert!(
            (lo - 0.4902).abs() < 1e-3 && (hi - 0.9433).abs() < 1e-3,
            "{lo} {hi}"
        );
    }

    #[test]
    fn bootstrap_brackets_the_mean_and_is_seeded() {
        let s: Vec<f64> = (0..50).map(|i| (i % 10) as f64 / 10.0).collect();
        let a = ci95(&s, 3).unwrap();
        assert_eq!(a, ci95(&s, 3).unwrap());
        assert!(a.0 < 0.45 && 0.45 < a.1);
        assert_eq!(ci95(&[], 0), None);
    }
}

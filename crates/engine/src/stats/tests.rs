//! The statistics' unit tests.
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

#[test]
fn t_quantiles_match_tables() {
    // Student's t tables: t(0.975, 1) = 12.706, t(0.975, 9) = 2.262, t(0.975, 30) = 2.042.
    for (df, want) in [(1.0, 12.706), (9.0, 2.262), (30.0, 2.042)] {
        let got = t_quantile(0.975, df);
        assert!((got - want).abs() < 1e-3, "df {df}: {got}");
    }
    assert!((t_cdf(0.0, 5.0) - 0.5).abs() < 1e-12);
}

#[test]
fn sign_tail_matches_hand_counts() {
    // P(X >= 4 | n = 5) = (5 + 1) / 32.
    assert!((sign_tail(4, 5) - 6.0 / 32.0).abs() < 1e-12);
    assert_eq!(sign_tail(0, 7), 1.0);
    assert!((sign_tail(3, 3) - 0.125).abs() < 1e-12);
}

#[test]
fn no_rows_and_one_row_are_never_significant() {
    assert_eq!(paired_test(&[], &[], 0.9).p_value, 1.0);
    // One row of continuous scores: a lead of 0.4 on one row says nothing.
    let t = paired_test(&[0.9], &[0.5], 0.9);
    assert_eq!(t.p_value, 1.0);
    assert!(!t.significant);
    // One row of 0/1 scores: the sign test on one discordant row, p = 1/2.
    assert!((paired_test(&[1.0], &[0.0], 0.9).p_value - 0.5).abs() < 1e-9);
}

#[test]
fn identical_differences_fall_back_to_the_sign_test() {
    // Every row 0.2 higher: zero variance, so the t statistic is undefined; three rows
    // all won give the sign test's p = 1/8, not 0.
    let t = paired_test(&[0.7, 0.5, 0.9], &[0.5, 0.3, 0.7], 0.9);
    assert!((t.p_value - 0.125).abs() < 1e-9, "{}", t.p_value);
    assert!(!t.significant);
    // Ten such rows are a real (if small) effect: p = 1/1024.
    let c = [0.6; 10];
    let b = [0.4; 10];
    let t = paired_test(&c, &b, 0.9);
    assert!((t.p_value - 1.0 / 1024.0).abs() < 1e-12 && t.significant);
}

#[test]
fn zero_variance_without_a_difference_is_not_significant() {
    let t = paired_test(&[0.3, 0.3, 0.3], &[0.3, 0.3, 0.3], 0.9);
    assert_eq!(t.p_value, 1.0);
    // One nonzero difference among ties: the t-test's p is floored at 1/2.
    let t = paired_test(&[0.3, 0.3, 0.9, 0.3], &[0.3, 0.3, 0.3, 0.3], 0.9);
    assert!(t.p_value >= 0.5, "{}", t.p_value);
}

#[test]
fn the_t_test_p_is_never_zero() {
    let c: Vec<f64> = (0..40).map(|i| 0.9 + 0.001 * (i % 3) as f64).collect();
    let b: Vec<f64> = (0..40).map(|i| 0.1 + 0.001 * (i % 2) as f64).collect();
    let t = paired_test(&c, &b, 0.9);
    assert!(t.p_value > 0.0 && t.significant, "{}", t.p_value);
}

#[test]
fn the_paired_test_needs_more_than_a_small_lead() {
    // 3 wins, 1 loss: p = P(X >= 3 | 4) = 5/16 > 0.1.
    let c = [1.0, 1.0, 1.0, 0.0, 1.0, 0.0];
    let b = [0.0, 0.0, 0.0, 1.0, 1.0, 0.0];
    let t = paired_test(&c, &b, 0.9);
    assert!((t.p_value - 5.0 / 16.0).abs() < 1e-12);
    assert!(!t.significant);
    // Continuous scores: a consistent lead is significant.
    let c: Vec<f64> = (0..20).map(|i| 0.6 + 0.01 * (i % 3) as f64).collect();
    let b: Vec<f64> = (0..20).map(|i| 0.5 + 0.01 * (i % 2) as f64).collect();
    assert!(paired_test(&c, &b, 0.9).significant);
    assert!(!paired_test(&b, &c, 0.9).significant);
}

#[test]
fn the_test_delta_matches_a_hand_computation() {
    // 12 rows: 5 wins, 1 loss, 6 ties. Agresti-Min: n' = 14, p10 = 5.5/14, p01 = 1.5/14,
    // diff = 4/14, var = ((7/14) - (4/14)^2) / 14, half = 1.96 * sqrt(var).
    let best = [1., 1., 1., 1., 1., 0., 1., 1., 1., 0., 0., 0.];
    let init = [0., 0., 0., 0., 0., 1., 1., 1., 1., 0., 0., 0.];
    let d = TestDelta::of(&best, &init).unwrap();
    assert_eq!((d.wins, d.losses, d.ties), (5, 1, 6));
    assert!((d.difference - 4.0 / 12.0).abs() < 1e-12);
    let diff = 4.0 / 14.0;
    let half = Z95 * (((7.0 / 14.0) - diff * diff) / 14.0_f64).sqrt();
    assert!((d.ci95.0 - (diff - half)).abs() < 1e-12);
    assert!((d.ci95.1 - (diff + half)).abs() < 1e-12);
    // 5 wins against 1 loss in 12 rows is not enough: the interval reaches below zero.
    assert!(d.ci95.0 < 0.0 && !d.significant);
    // 10 wins and no loss is.
    let d = TestDelta::of(&[1.0; 12], &[[0.0; 10].as_slice(), &[1.0; 2]].concat()).unwrap();
    assert!(d.ci95.0 > 0.4 && d.significant, "{d:?}");
    // Continuous: the paired t-interval, mean ± t(0.975, n-1) · sd / sqrt(n).
    let best = [0.5, 0.75, 1.0, 0.25];
    let init = [0.25, 0.5, 0.5, 0.25];
    let d = TestDelta::of(&best, &init).unwrap();
    let diffs = [0.25, 0.25, 0.5, 0.0];
    let mean = 0.25;
    let sd = (diffs.iter().map(|x: &f64| (x - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
    let half = t_quantile(0.975, 3.0) * sd / 2.0;
    assert!((d.ci95.0 - (mean - half)).abs() < 1e-9 && (d.ci95.1 - (mean + half)).abs() < 1e-9);
}

//! Seeded train/val/test splits.
//!
//! Randomness comes from ChaCha8 seeded with the configured seed, and shuffles are a plain
//! Fisher–Yates written here, so the same seed gives the same split on every platform and
//! every version of the dependencies. Nothing depends on hash-map order.

use std::collections::BTreeMap;

use metaprompt_core::Row;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::dataset::Dataset;
use crate::error::DataError;

/// Below this many rows a split is allowed but warned about: scores on a handful of rows are
/// mostly noise.
pub const SMALL_DATASET: usize = 20;

/// How to split a dataset by fractions.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SplitConfig {
    /// Fraction of rows for training (the minibatches the teacher learns from).
    pub train: f64,
    /// Fraction for validation (accepting candidates).
    pub val: f64,
    /// Fraction for the final, untouched test score.
    pub test: f64,
    /// The seed.
    pub seed: u64,
    /// Keep the class ratios of this field in every split.
    pub stratify_by: Option<String>,
}

impl Default for SplitConfig {
    fn default() -> Self {
        SplitConfig {
            train: 0.5,
            val: 0.25,
            test: 0.25,
            seed: 0,
            stratify_by: None,
        }
    }
}

/// The three splits, and any warnings about them.
#[derive(Debug, Clone, Default)]
pub struct Splits {
    /// Rows the teacher learns from.
    pub train: Vec<Row>,
    /// Rows that decide whether a candidate is accepted.
    pub val: Vec<Row>,
    /// Rows for the final score only.
    pub test: Vec<Row>,
    /// Things the user should know (small data, empty splits).
    pub warnings: Vec<String>,
}

/// A uniform integer in `0..n` from 64 random bits (multiply-shift; bias < n / 2^64).
fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    ((rng.next_u64() as u128 * n as u128) >> 64) as usize
}

/// Fisher–Yates shuffle with [`below`].
pub(crate) fn shuffle<T>(items: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..items.len()).rev() {
        let j = below(rng, i + 1);
        items.swap(i, j);
    }
}

pub(crate) fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Largest-remainder allocation of `n` items to `fractions` (already normalised): each count
/// is within one of `n × fraction`.
fn allocate(n: usize, fractions: [f64; 3]) -> [usize; 3] {
    let exact: Vec<f64> = fractions.iter().map(|f| f * n as f64).collect();
    let mut counts = [0usize; 3];
    for i in 0..3 {
        counts[i] = exact[i].floor() as usize;
    }
    let mut left = n - counts.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..3).collect();
    // Stable sort: ties go to train, then val, then test.
    order.sort_by(|&a, &b| {
        let ra = exact[a] - exact[a].floor();
        let rb = exact[b] - exact[b].floor();
        rb.total_cmp(&ra)
    });
    for &i in order.iter().cycle() {
        if left == 0 {
            break;
        }
        if fractions[i] > 0.0 {
            counts[i] += 1;
            left -= 1;
        }
    }
    counts
}

fn normalised(config: &SplitConfig) -> Result<[f64; 3], DataError> {
    let f = [config.train, config.val, config.test];
    if f.iter().any(|x| !x.is_finite() || *x < 0.0) {
        return Err(DataError::Split(format!(
            "fractions must be non-negative numbers, got train={} val={} test={}",
            f[0], f[1], f[2]
        )));
    }
    let sum: f64 = f.iter().sum();
    if (sum - 1.0).abs() > 1e-6 {
        return Err(DataError::Split(format!(
            "fractions must add up to 1, got train={} + val={} + test={} = {sum}",
            f[0], f[1], f[2]
        )));
    }
    if f[0] == 0.0 {
        return Err(DataError::Split(
            "the train fraction must be above 0: the teacher learns from train rows".into(),
        ));
    }
    Ok(f)
}

impl Dataset {
    /// Splits by fractions with a seed (optionally stratified).
    ///
    /// Small data: with fewer than [`SMALL_DATASET`] rows the split is made and a warning is
    /// returned. Every split with a fraction above 0 gets at least one row, taken from the
    /// largest split; if there are too few rows for that, it is an error.
    ///
    /// ```
    /// use metaprompt_core::Row;
    /// use metaprompt_data::{Dataset, SplitConfig};
    /// let rows = (1..=100).map(|i| Row::from_json(i.to_string(), serde_json::json!({"x": i})).unwrap()).collect();
    /// let s = Dataset::new(rows).split(&SplitConfig { seed: 7, ..SplitConfig::default() }).unwrap();
    /// assert_eq!((s.train.len(), s.val.len(), s.test.len()), (50, 25, 25));
    /// ```
    pub fn split(&self, config: &SplitConfig) -> Result<Splits, DataError> {
        let fractions = normalised(config)?;
        let mut rng = rng(config.seed);
        let n = self.len();
        let mut warnings = Vec::new();
        let wanted = fractions.iter().filter(|f| **f > 0.0).count();
        if n < wanted {
            return Err(DataError::Split(format!(
                "{n} row(s) cannot fill {wanted} splits; add rows or set the unused fractions to 0"
            )));
        }
        if n < SMALL_DATASET {
            warnings.push(format!(
                "only {n} rows: scores on so few rows are noisy; {SMALL_DATASET} or more are advised"
            ));
        }
        let mut parts: [Vec<Row>; 3] = Default::default();
        match &config.stratify_by {
            None => {
                let mut rows = self.rows().to_vec();
                shuffle(&mut rows, &mut rng);
                let counts = ensure_nonempty(allocate(n, fractions), fractions);
                let mut it = rows.into_iter();
                for (i, c) in counts.iter().enumerate() {
                    parts[i] = it.by_ref().take(*c).collect();
                }
            }
            Some(field) => {
                self.require_known_field(field, "`stratify_by`")?;
                let mut groups: BTreeMap<String, Vec<Row>> = BTreeMap::new();
                for row in self.rows() {
                    let key = row.text(field).unwrap_or_default();
                    groups.entry(key).or_default().push(row.clone());
                }
                for (_, mut group) in groups {
                    shuffle(&mut group, &mut rng);
                    let counts = allocate(group.len(), fractions);
                    let mut it = group.into_iter();
                    for (i, c) in counts.iter().enumerate() {
                        parts[i].extend(it.by_ref().take(*c));
                    }
                }
                // Per-class rounding can leave a split empty on small data; move one row in
                // from the largest split so that no requested split is silently empty.
                for i in 0..3 {
                    if fractions[i] > 0.0 && parts[i].is_empty() {
                        let largest = (0..3).max_by_key(|&j| parts[j].len()).unwrap_or(0);
                        if let Some(row) = parts[largest].pop() {
                            parts[i].push(row);
                        }
                    }
                }
                for p in parts.iter_mut() {
                    shuffle(p, &mut rng);
                }
            }
        }
        let [train, val, test] = parts;
        if val.is_empty() {
            warnings.push(
                "the val split is empty: candidates are accepted on train minibatch scores alone"
                    .into(),
            );
        }
        for w in &warnings {
            tracing::warn!("{w}");
        }
        Ok(Splits {
            train,
            val,
            test,
            warnings,
        })
    }

    /// Splits by a column whose values are `train`, `val` (or `validation`, `dev`) and `test`.
    pub fn split_by_column(&self, column: &str) -> Result<Splits, DataError> {
        self.require_known_field(column, "the split column")?;
        let mut s = Splits::default();
        for row in self.rows() {
            let value = row.text(column).unwrap_or_default();
            match value.trim().to_ascii_lowercase().as_str() {
                "train" => s.train.push(row.clone()),
                "val" | "valid" | "validation" | "dev" => s.val.push(row.clone()),
                "test" => s.test.push(row.clone()),
                other => {
                    return Err(DataError::Split(format!(
                        "row `{}`: the split column `{column}` holds `{other}`; use train, val or test",
                        row.id()
                    )));
                }
            }
        }
        if s.train.is_empty() {
            return Err(DataError::Split(format!(
                "no row has `{column}` = train; the teacher needs train rows"
            )));
        }
        Ok(s)
    }
}

fn ensure_nonempty(mut counts: [usize; 3], fractions: [f64; 3]) -> [usize; 3] {
    for i in 0..3 {
        if fractions[i] > 0.0 && counts[i] == 0 {
            let largest = (0..3).max_by_key(|&j| counts[j]).unwrap_or(0);
            if counts[largest] > 1 {
                counts[largest] -= 1;
                counts[i] += 1;
            }
        }
    }
    counts
}

impl Splits {
    /// Splits from separate datasets (separate files). Ids are prefixed with the split name
    /// (`train:3`) so that line numbers from different files do not collide.
    pub fn from_datasets(train: Dataset, val: Dataset, test: Option<Dataset>) -> Self {
        fn prefixed(prefix: &str, ds: Dataset) -> Vec<Row> {
            ds.into_rows()
                .into_iter()
                .map(|r| Row::new(format!("{prefix}:{}", r.id()), r.fields().clone()))
                .collect()
        }
        Splits {
            train: prefixed("train", train),
            val: prefixed("val", val),
            test: test.map(|t| prefixed("test", t)).unwrap_or_default(),
            warnings: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_is_within_one_row() {
        for n in 0..200 {
            for f in [
                [0.5, 0.25, 0.25],
                [0.7, 0.2, 0.1],
                [0.34, 0.33, 0.33],
                [0.6, 0.4, 0.0],
            ] {
                let c = allocate(n, f);
                assert_eq!(c.iter().sum::<usize>(), n);
                for i in 0..3 {
                    assert!(
                        (c[i] as f64 - f[i] * n as f64).abs() < 1.0,
                        "{n} {f:?} {c:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<u32> = (0..100).collect();
        shuffle(&mut v, &mut rng(1));
        let mut sorted = v.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_ne!(v, sorted);
    }
}

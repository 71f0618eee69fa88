//! Choosing which rows a round evaluates.

use metaprompt_core::Row;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::split::{rng, shuffle};

/// Seeded minibatches that walk the train split epoch by epoch.
///
/// Each epoch is a fresh shuffle of every row; batches are cut from the stream of epochs, so
/// within the first `ceil(n / size)` batches every row is seen, and each row appears exactly
/// once per epoch. A batch never holds the same row twice: when a batch spans two epochs, the
/// rows it already has are moved to the back of the new epoch's order.
///
/// The walker's position is plain data ([`MinibatchState`]) so a resumed run continues with the
/// same batches.
///
/// ```
/// use metaprompt_core::Row;
/// use metaprompt_data::Minibatches;
/// let rows: Vec<Row> = (1..=5).map(|i| Row::from_json(i.to_string(), serde_json::json!({})).unwrap()).collect();
/// let mut mb = Minibatches::new(rows, 2, 42);
/// let seen: Vec<String> = (0..3).flat_map(|_| mb.next_batch()).map(|r| r.id().to_string()).collect();
/// let mut sorted = seen[..5].to_vec();
/// sorted.sort();
/// assert_eq!(sorted, ["1", "2", "3", "4", "5"]);
/// ```
#[derive(Debug, Clone)]
pub struct Minibatches {
    rows: Vec<Row>,
    size: usize,
    seed: u64,
    state: MinibatchState,
    order: Vec<usize>,
}

/// Where a [`Minibatches`] walker stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinibatchState {
    /// Batches handed out so far.
    pub batches: u64,
}

impl Minibatches {
    /// A walker over `rows` with batches of `size` (capped at the number of rows).
    pub fn new(rows: Vec<Row>, size: usize, seed: u64) -> Self {
        let size = size.clamp(1, rows.len().max(1));
        Minibatches {
            rows,
            size,
            seed,
            state: MinibatchState::default(),
            order: Vec::new(),
        }
    }

    /// A walker positioned after `state.batches` batches.
    pub fn resume(rows: Vec<Row>, size: usize, seed: u64, state: MinibatchState) -> Self {
        let mut mb = Minibatches::new(rows, size, seed);
        for _ in 0..state.batches {
            mb.next_indices();
        }
        mb
    }

    /// The walker's position.
    pub fn state(&self) -> MinibatchState {
        self.state
    }

    /// The batch size.
    pub fn size(&self) -> usize {
        self.size
    }

    fn epoch_rng(&self, epoch: u64) -> ChaCha8Rng {
        // One independent stream per epoch, derived from the seed.
        rng(self.seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    fn next_indices(&mut self) -> Vec<usize> {
        let n = self.rows.len();
        let mut batch = Vec::with_capacity(self.size);
        if n == 0 {
            return batch;
        }
        let mut epoch = (self.state.batches * self.size as u64) / n as u64;
        let mut pos = ((self.state.batches * self.size as u64) % n as u64) as usize;
        while batch.len() < self.size {
            if pos == 0 || self.order.is_empty() {
                self.order = self.epoch_order(epoch, &batch);
            }
            batch.push(self.order[pos]);
            pos += 1;
            if pos == n {
                pos = 0;
                epoch += 1;
            }
        }
        self.state.batches += 1;
        batch
    }

    fn epoch_order(&self, epoch: u64, already: &[usize]) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.rows.len()).collect();
        shuffle(&mut order, &mut self.epoch_rng(epoch));
        if already.is_empty() {
            return order;
        }
        let (dup, rest): (Vec<usize>, Vec<usize>) =
            order.into_iter().partition(|i| already.contains(i));
        rest.into_iter().chain(dup).collect()
    }

    /// The next batch.
    pub fn next_batch(&mut self) -> Vec<Row> {
        self.next_indices()
            .into_iter()
            .map(|i| self.rows[i].clone())
            .collect()
    }
}

/// The first `n` rows, in order.
pub fn first_n(rows: &[Row], n: usize) -> Vec<Row> {
    rows.iter().take(n).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn rows(n: usize) -> Vec<Row> {
        (0..n)
            .map(|i| Row::from_json(i.to_string(), serde_json::json!({})).unwrap())
            .collect()
    }

    proptest! {
        #[test]
        fn every_row_once_per_epoch(n in 1usize..60, size in 1usize..70, seed in any::<u64>(), epochs in 1usize..4) {
            let mut mb = Minibatches::new(rows(n), size, seed);
            let size = mb.size();
            let per_epoch = n.div_ceil(size);
            let mut stream = Vec::new();
            for _ in 0..per_epoch * epochs {
                let b = mb.next_batch();
                prop_assert_eq!(b.len(), size);
                let mut ids: Vec<_> = b.iter().map(|r| r.id().clone()).collect();
                ids.sort();
                ids.dedup();
                prop_assert_eq!(ids.len(), size, "a batch repeats a row");
                stream.extend(b);
            }
            // Within the first ceil(n/size) rounds every row is seen.
            let first: std::collections::BTreeSet<_> =
                stream[..per_epoch * size].iter().map(|r| r.id().clone()).collect();
            prop_assert_eq!(first.len(), n);
            // Each complete epoch of the stream holds every row exactly once.
            for e in 0..(stream.len() / n) {
                let mut counts = BTreeMap::new();
                for r in &stream[e * n..(e + 1) * n] {
                    *counts.entry(r.id().clone()).or_insert(0) += 1;
                }
                prop_assert_eq!(counts.len(), n);
                prop_assert!(counts.values().all(|&c| c == 1));
            }
        }
    }

    #[test]
    fn resume_continues_with_the_same_batches() {
        let mut a = Minibatches::new(rows(17), 5, 9);
        for _ in 0..3 {
            a.next_batch();
        }
        let mut b = Minibatches::resume(rows(17), 5, 9, a.state());
        for _ in 0..4 {
            assert_eq!(a.next_batch(), b.next_batch());
        }
    }

    #[test]
    fn first_n_takes_a_prefix() {
        let r = rows(5);
        assert_eq!(first_n(&r, 2), r[..2].to_vec());
        assert_eq!(first_n(&r, 9).len(), 5);
    }
}

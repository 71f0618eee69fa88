//! The candidate pool: every candidate that passed its gate, with its per-row val scores, and
//! how parents are drawn from it.
//!
//! The Pareto front follows GEPA: for each val row, the candidates with the top score on it;
//! candidates whose every such row is also topped by another remaining candidate are removed
//! (lowest mean first, repeatedly); a parent is then drawn with weight equal to the number of
//! val rows on which it is (still) top.

use metaprompt_core::Prompt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::{MutationKind, ParentSelection};
use crate::demos::Demo;
use crate::seeded::below;

/// A prompt in the pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Candidate {
    /// Its number (initial prompts first, then children in the order they were made).
    pub(crate) id: u32,
    /// The instructions (what the teacher rewrites).
    pub(crate) prompt: Prompt,
    /// Worked train examples written into the prompt.
    #[serde(default)]
    pub(crate) demos: Vec<Demo>,
    /// The candidates it was made from (none for an initial prompt, two for a merge).
    #[serde(default)]
    pub(crate) parents: Vec<u32>,
    /// How it was made (none for an initial prompt).
    #[serde(default)]
    pub(crate) mutation: Option<MutationKind>,
    /// The round it was made in (0 for initial prompts).
    pub(crate) round: u32,
    /// Its score on each val row, in val order.
    pub(crate) val: Vec<f64>,
    /// The mean of `val`.
    pub(crate) val_mean: f64,
    /// Whether the engine's repair appended inputs the teacher's rewrite had dropped.
    #[serde(default)]
    pub(crate) repaired: bool,
}

/// The front: `(candidate index, weight)` for each non-dominated candidate, in pool order.
pub(crate) fn pareto_front(pool: &[Candidate]) -> Vec<(usize, usize)> {
    if pool.is_empty() {
        return Vec::new();
    }
    let rows = pool.iter().map(|c| c.val.len()).min().unwrap_or(0);
    if rows == 0 {
        // No val rows: the best mean stands alone.
        return vec![(best_index(pool), 1)];
    }
    // The top candidates of each row.
    let mut tops: Vec<Vec<usize>> = (0..rows)
        .map(|j| {
            let top = pool.iter().map(|c| c.val[j]).fold(f64::MIN, f64::max);
            (0..pool.len()).filter(|&i| pool[i].val[j] == top).collect()
        })
        .collect();
    // Remove dominated candidates, lowest mean first, until none is dominated.
    let mut order: Vec<usize> = (0..pool.len())
        .filter(|i| tops.iter().any(|t| t.contains(i)))
        .collect();
    order.sort_by(|a, b| {
        pool[*a]
            .val_mean
            .total_cmp(&pool[*b].val_mean)
            .then(b.cmp(a))
    });
    let mut removed = vec![false; pool.len()];
    loop {
        let dominated = order.iter().copied().find(|&y| {
            !removed[y]
                && tops
                    .iter()
                    .filter(|t| t.contains(&y))
                    .all(|t| t.iter().any(|&o| o != y && !removed[o]))
        });
        match dominated {
            Some(y) => removed[y] = true,
            None => break,
        }
    }
    for t in &mut tops {
        t.retain(|i| !removed[*i]);
    }
    let mut weight = vec![0usize; pool.len()];
    for t in &tops {
        for &i in t {
            weight[i] += 1;
        }
    }
    (0..pool.len())
        .filter(|&i| weight[i] > 0)
        .map(|i| (i, weight[i]))
        .collect()
}

/// The index of the highest mean (the earliest on a tie).
pub(crate) fn best_index(pool: &[Candidate]) -> usize {
    let mut best = 0;
    for (i, c) in pool.iter().enumerate() {
        if c.val_mean > pool[best].val_mean {
            best = i;
        }
    }
    best
}

/// One draw from weighted items.
fn draw(items: &[(usize, usize)], rng: &mut ChaCha8Rng) -> Option<usize> {
    let total: usize = items.iter().map(|(_, w)| *w).sum();
    if total == 0 {
        return None;
    }
    let mut r = below(rng, total);
    for (i, w) in items {
        if r < *w {
            return Some(*i);
        }
        r -= w;
    }
    None
}

/// The parents of a round's `children`: `parents` distinct draws (fewer when the front is
/// smaller), children spread over them in turn. Returns pool indices.
pub(crate) fn parents(
    pool: &[Candidate],
    selection: ParentSelection,
    current: usize,
    parents: usize,
    children: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<usize> {
    let chosen: Vec<usize> = match selection {
        ParentSelection::Current => vec![current],
        ParentSelection::Best => vec![best_index(pool)],
        ParentSelection::Pareto => {
            let mut front = pareto_front(pool);
            let mut out = Vec::new();
            while out.len() < parents.max(1) {
                let Some(i) = draw(&front, rng) else { break };
                out.push(i);
                front.retain(|(j, _)| *j != i);
            }
            if out.is_empty() {
                out.push(best_index(pool));
            }
            out
        }
    };
    (0..children).map(|c| chosen[c % chosen.len()]).collect()
}

/// Two front candidates that each win some val row the other loses, drawn at random, or none.
pub(crate) fn merge_pair(pool: &[Candidate], rng: &mut ChaCha8Rng) -> Option<(usize, usize)> {
    let front: Vec<usize> = pareto_front(pool).into_iter().map(|(i, _)| i).collect();
    let mut pairs = Vec::new();
    for (x, &a) in front.iter().enumerate() {
        for &b in &front[x + 1..] {
            let (va, vb) = (&pool[a].val, &pool[b].val);
            let a_wins = va.iter().zip(vb).any(|(p, q)| p > q);
            let b_wins = va.iter().zip(vb).any(|(p, q)| q > p);
            if a_wins && b_wins {
                pairs.push((a, b));
            }
        }
    }
    if pairs.is_empty() {
        return None;
    }
    Some(pairs[below(rng, pairs.len())])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    fn cand(id: u32, val: &[f64]) -> Candidate {
        Candidate {
            id,
            prompt: Prompt::parse(&format!("p{id} {{text}}")).unwrap(),
            demos: Vec::new(),
            parents: Vec::new(),
            mutation: None,
            round: 0,
            val: val.to_vec(),
            val_mean: val.iter().sum::<f64>() / val.len() as f64,
            repaired: false,
        }
    }

    #[test]
    fn a_candidate_best_on_one_row_only_is_on_the_front() {
        let pool = [
            cand(0, &[1.0, 1.0, 1.0, 0.0]),
            cand(1, &[0.0, 0.0, 0.0, 1.0]),
            cand(2, &[1.0, 1.0, 0.0, 0.0]),
        ];
        let front = pareto_front(&pool);
        assert_eq!(front, vec![(0, 3), (1, 1)]);
    }

    #[test]
    fn dominated_candidates_leave_the_front() {
        // 1 ties 0 on every row 0 tops; 0 has the higher mean, so 1 is removed.
        let pool = [cand(0, &[1.0, 1.0]), cand(1, &[1.0, 0.5])];
        assert_eq!(pareto_front(&pool), vec![(0, 2)]);
    }

    #[test]
    fn parents_are_drawn_by_front_weight() {
        let pool = [
            cand(0, &[1.0, 1.0, 1.0, 0.0]),
            cand(1, &[0.0, 0.0, 0.0, 1.0]),
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut counts = [0usize; 2];
        for _ in 0..8000 {
            let p = parents(&pool, ParentSelection::Pareto, 0, 1, 1, &mut rng);
            counts[p[0]] += 1;
        }
        // Weights 3 and 1: 75% and 25%.
        let share = counts[0] as f64 / 8000.0;
        assert!((share - 0.75).abs() < 0.02, "{counts:?}");
        let again = parents(
            &pool,
            ParentSelection::Pareto,
            0,
            2,
            4,
            &mut ChaCha8Rng::seed_from_u64(1),
        );
        assert_eq!(again.len(), 4);
        assert!(again.contains(&0) && again.contains(&1));
    }

    #[test]
    fn merge_pairs_only_front_members_that_win_on_different_rows() {
        let pool = [
            cand(0, &[1.0, 0.0, 1.0]),
            cand(1, &[0.0, 1.0, 1.0]),
            cand(2, &[0.0, 0.0, 1.0]),
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..50 {
            let (a, b) = merge_pair(&pool, &mut rng).unwrap();
            assert_eq!((a.min(b), a.max(b)), (0, 1));
        }
        assert_eq!(merge_pair(&pool[..1], &mut rng), None);
    }
}

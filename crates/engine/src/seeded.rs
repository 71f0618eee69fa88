//! Small shared helpers: seeded draws (every random choice of a run is reproducible from its
//! seed) and the label a variable name is shown with.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// A uniform integer in `0..n` (`n > 0`), without modulo bias.
pub(crate) fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

/// A Fisher–Yates shuffle driven by `rng`.
pub(crate) fn shuffle_with<T>(items: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..items.len()).rev() {
        let j = below(rng, i + 1);
        items.swap(i, j);
    }
}

/// A Fisher–Yates shuffle seeded by `seed`.
pub(crate) fn shuffle<T>(items: &mut [T], seed: u64) {
    shuffle_with(items, &mut ChaCha8Rng::seed_from_u64(seed));
}

/// A variable name as a label: `user_name` → `User name`.
pub(crate) fn title(name: &str) -> String {
    let words = name.replace(['_', '.', '-'], " ");
    let mut c = words.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_stays_in_range_and_shuffles_are_seeded() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert!((0..1000).all(|_| below(&mut rng, 7) < 7));
        let mut a: Vec<u32> = (0..20).collect();
        let mut b = a.clone();
        shuffle(&mut a, 5);
        shuffle(&mut b, 5);
        assert_eq!(a, b);
        assert_ne!(a, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn titles() {
        assert_eq!(title("user_name"), "User name");
        assert_eq!(title("émoji"), "Émoji");
        assert_eq!(title(""), "");
    }
}

//! Text similarity metrics: Levenshtein, token F1, BLEU, ROUGE-L, and length bounds.

use std::collections::HashMap;

use metaprompt_core::{EvalInput, EvalResult};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::normalize::Normalize;
use crate::util::{clip, expected, local_evaluator, response, scored};

fn pair(input: &EvalInput) -> Result<(String, String), EvalResult> {
    Ok((response(input)?, expected(input)?))
}

/// Normalised Levenshtein similarity: `1 − distance / max(len)` over characters.
#[derive(Debug, Clone, Default)]
pub struct Levenshtein {
    normalize: Normalize,
}

impl Levenshtein {
    /// A Levenshtein similarity metric.
    pub fn new(normalize: Normalize) -> Self {
        Levenshtein { normalize }
    }

    /// Scores one input.
    pub fn score(&self, input: &EvalInput) -> EvalResult {
        let (got, want) = match pair(input) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let s = strsim::normalized_levenshtein(
            &self.normalize.apply(&got),
            &self.normalize.apply(&want),
        );
        scored(
            s,
            format!(
                "edit similarity {s:.3} between `{}` and expected `{}`",
                clip(&got, 60),
                clip(&want, 60)
            ),
        )
    }
}
local_evaluator!(Levenshtein, "levenshtein");

/// SQuAD answer normalisation: lowercase, no punctuation, no articles, single spaces.
fn squad_tokens(text: &str) -> Vec<String> {
    let lowered = Normalize {
        case: true,
        punctuation: true,
        ..Normalize::default()
    }
    .apply(text)
    .into_owned();
    lowered
        .split_whitespace()
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .map(str::to_string)
        .collect()
}

fn counts<T: std::hash::Hash + Eq>(items: impl IntoIterator<Item = T>) -> HashMap<T, usize> {
    let mut m = HashMap::new();
    for i in items {
        *m.entry(i).or_insert(0) += 1;
    }
    m
}

/// SQuAD-style token F1 between response and expected response.
#[derive(Debug, Clone, Default)]
pub struct TokenF1;

impl TokenF1 {
    /// The F1 of two texts.
    pub fn f1(got: &str, want: &str) -> f64 {
        let g = squad_tokens(got);
        let w = squad_tokens(want);
        if g.is_empty() || w.is_empty() {
            return if g.is_empty() && w.is_empty() {
                1.0
            } else {
                0.0
            };
        }
        let wc = counts(w.iter());
        let common: usize = counts(g.iter())
            .iter()
            .map(|(t, c)| (*c).min(wc.get(t).copied().unwrap_or(0)))
            .sum();
        if common == 0 {
            return 0.0;
        }
        let p = common as f64 / g.len() as f64;
        let r = common as f64 / w.len() as f64;
        2.0 * p * r / (p + r)
    }

    /// Scores one input.
    pub fn score(&self, input: &EvalInput) -> EvalResult {
        let (got, want) = match pair(input) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let f = Self::f1(&got, &want);
        scored(
            f,
            format!(
                "token F1 {f:.3}: got `{}`, expected `{}`",
                clip(&got, 60),
                clip(&want, 60)
            ),
        )
    }
}
local_evaluator!(TokenF1, "token_f1");

fn words(text: &str, normalize: &Normalize) -> Vec<String> {
    normalize
        .apply(text)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Sentence BLEU with add-one smoothing for n > 1 (BLEU+1, Lin & Och 2004) and the brevity
/// penalty; tokens are whitespace-separated after normalisation (default: lowercase, no
/// punctuation).
#[derive(Debug, Clone)]
pub struct Bleu {
    max_n: usize,
    normalize: Normalize,
}

impl Default for Bleu {
    fn default() -> Self {
        Bleu::new(4)
    }
}

impl Bleu {
    /// BLEU up to `max_n`-grams (usually 4).
    pub fn new(max_n: usize) -> Self {
        Bleu {
            max_n: max_n.max(1),
            normalize: Normalize {
                case: true,
                punctuation: true,
                whitespace: true,
                unicode: false,
            },
        }
    }

    /// The BLEU of a candidate against one reference.
    pub fn bleu(&self, candidate: &str, reference: &str) -> f64 {
        let c = words(candidate, &self.normalize);
        let r = words(reference, &self.normalize);
        if c.is_empty() || r.is_empty() {
            return if c.is_empty() && r.is_empty() {
                1.0
            } else {
                0.0
            };
        }
        let mut log_sum = 0.0;
        for n in 1..=self.max_n {
            let cn = counts(c.windows(n));
            let rn = counts(r.windows(n));
            let total: usize = cn.values().sum();
            let matches: usize = cn
                .iter()
                .map(|(g, k)| (*k).min(rn.get(g).copied().unwrap_or(0)))
                .sum();
            let p = if n == 1 {
                if matches == 0 {
                    return 0.0;
                }
                matches as f64 / total as f64
            } else {
                (matches as f64 + 1.0) / (total as f64 + 1.0)
            };
            log_sum += p.ln();
        }
        let bp = if c.len() > r.len() {
            1.0
        } else {
            (1.0 - r.len() as f64 / c.len() as f64).exp()
        };
        bp * (log_sum / self.max_n as f64).exp()
    }

    /// Scores one input.
    pub fn score(&self, input: &EvalInput) -> EvalResult {
        let (got, want) = match pair(input) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let b = self.bleu(&got, &want);
        scored(b, format!("BLEU {b:.3} against `{}`", clip(&want, 60)))
    }
}
local_evaluator!(Bleu, "bleu");

/// ROUGE-L: F1 of the longest common subsequence of tokens.
#[derive(Debug, Clone)]
pub struct RougeL {
    normalize: Normalize,
}

impl Default for RougeL {
    fn default() -> Self {
        RougeL {
            normalize: Normalize {
                case: true,
                punctuation: true,
                whitespace: true,
                unicode: false,
            },
        }
    }
}

/// FNV-1a: tokens are short and not attacker-controlled in a way that matters here, so a
/// simple fast hash beats SipHash for interning.
#[derive(Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

type TokenIds<'a> = HashMap<&'a str, u32, std::hash::BuildHasherDefault<Fnv>>;

/// Maps tokens to small integers, shared across calls with the same map.
fn intern<'a>(ids: &mut TokenIds<'a>, tokens: &[&'a str]) -> Vec<u32> {
    let mut out = Vec::with_capacity(tokens.len());
    for w in tokens {
        let next = ids.len() as u32;
        out.push(*ids.entry(*w).or_insert(next));
    }
    out
}

/// Length of the longest common subsequence (two-row dynamic programme).
fn lcs<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                cur[j].max(prev[j + 1])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

impl RougeL {
    /// The ROUGE-L F1 of a candidate against a reference.
    pub fn rouge_l(&self, candidate: &str, reference: &str) -> f64 {
        let (cn, rn) = (
            self.normalize.apply(candidate),
            self.normalize.apply(reference),
        );
        let c: Vec<&str> = cn.split_whitespace().collect();
        let r: Vec<&str> = rn.split_whitespace().collect();
        if c.is_empty() || r.is_empty() {
            return if c.is_empty() && r.is_empty() {
                1.0
            } else {
                0.0
            };
        }
        // Comparing small integers in the quadratic loop is several times cheaper than
        // comparing strings.
        let mut ids = TokenIds::with_capacity_and_hasher(c.len() + r.len(), Default::default());
        let ci = intern(&mut ids, &c);
        let ri = intern(&mut ids, &r);
        let l = lcs(&ci, &ri) as f64;
        if l == 0.0 {
            return 0.0;
        }
        let p = l / c.len() as f64;
        let rc = l / r.len() as f64;
        2.0 * p * rc / (p + rc)
    }

    /// Scores one input.
    pub fn score(&self, input: &EvalInput) -> EvalResult {
        let (got, want) = match pair(input) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let s = self.rouge_l(&got, &want);
        scored(s, format!("ROUGE-L {s:.3} against `{}`", clip(&want, 60)))
    }
}
local_evaluator!(RougeL, "rouge_l");

/// What [`Length`] counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LengthUnit {
    /// Unicode scalar values.
    #[default]
    Chars,
    /// Whitespace-separated words.
    Words,
}

/// 1 when the response's length is within bounds.
#[derive(Debug, Clone, Default)]
pub struct Length {
    unit: LengthUnit,
    min: Option<usize>,
    max: Option<usize>,
}

impl Length {
    /// A length-bounds metric.
    pub fn new(unit: LengthUnit, min: Option<usize>, max: Option<usize>) -> Self {
        Length { unit, min, max }
    }

    /// Scores one input.
    pub fn score(&self, input: &EvalInput) -> EvalResult {
        let got = match response(input) {
            Ok(g) => g,
            Err(e) => return e,
        };
        let (n, unit) = match self.unit {
            LengthUnit::Chars => (got.chars().count(), "chars"),
            LengthUnit::Words => (got.split_whitespace().count(), "words"),
        };
        let low = self.min.is_none_or(|m| n >= m);
        let high = self.max.is_none_or(|m| n <= m);
        let bounds = format!(
            "[{}, {}]",
            self.min.map_or("-".into(), |m| m.to_string()),
            self.max.map_or("-".into(), |m| m.to_string())
        );
        EvalResult::pass_fail(
            low && high,
            format!(
                "{n} {unit}, bounds {bounds} → {}",
                if !low {
                    "too short"
                } else if !high {
                    "too long"
                } else {
                    "within bounds"
                }
            ),
        )
    }
}
local_evaluator!(Length, "length");

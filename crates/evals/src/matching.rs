//! Label and pattern metrics: exact match, contains, one-of, regex.

use metaprompt_core::{EvalInput, EvalResult};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::normalize::Normalize;
use crate::util::{clip, expected, local_evaluator, response};

fn after(n: &Normalize) -> &'static str {
    if n.any() { " after normalisation" } else { "" }
}

/// 1 when the response equals the expected response (after normalisation), else 0.
///
/// ```
/// use metaprompt_core::EvalInput;
/// use metaprompt_evals::{ExactMatch, Normalize};
/// let m = ExactMatch::new(Normalize::all());
/// let r = m.score(&EvalInput::default().with("response", "Positive.").with("expected_response", "positive"));
/// assert_eq!(r.score(), 1.0);
/// assert_eq!(r.reason(), "expected `positive`, got `Positive.` after normalisation → match");
/// ```
#[derive(Debug, Clone, Default)]
pub struct ExactMatch {
    normalize: Normalize,
}

impl ExactMatch {
    /// An exact-match metric.
    pub fn new(normalize: Normalize) -> Self {
        ExactMatch { normalize }
    }

    /// Scores one input.
    pub fn score(&self, input: &EvalInput) -> EvalResult {
        let (got, want) = match (response(input), expected(input)) {
            (Ok(g), Ok(w)) => (g, w),
            (Err(e), _) | (_, Err(e)) => return e,
        };
        let pass = self.normalize.apply(&got) == self.normalize.apply(&want);
        EvalResult::pass_fail(
            pass,
            format!(
                "expected `{}`, got `{}`{} → {}",
                clip(&want, 80),
                clip(&got, 80),
                after(&self.normalize),
                if pass { "match" } else { "no match" }
            ),
        )
    }
}
local_evaluator!(ExactMatch, "exact_match");

/// Whether all or any of the needles must appear.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContainsMode {
    /// At least one.
    #[default]
    Any,
    /// Every one.
    All,
}

/// 1 when the response contains any (or all) of the given strings; with no strings given, the
/// expected response is the one string to look for.
#[derive(Debug, Clone, Default)]
pub struct Contains {
    values: Vec<String>,
    mode: ContainsMode,
    normalize: Normalize,
}

impl Contains {
    /// A contains metric.
    pub fn new(values: Vec<String>, mode: ContainsMode, normalize: Normalize) -> Self {
        Contains {
            values,
            mode,
            normalize,
        }
    }

    /// Scores one input.
    pub fn score(&self, input: &EvalInput) -> EvalResult {
        let got = match response(input) {
            Ok(g) => g,
            Err(e) => return e,
        };
        let needles: Vec<String> = if self.values.is_empty() {
            match expected(input) {
                Ok(w) => vec![w],
                Err(e) => return e,
            }
        } else {
            self.values.clone()
        };
        let hay = self.normalize.apply(&got);
        let (found, missing): (Vec<&String>, Vec<&String>) = needles
            .iter()
            .partition(|n| hay.contains(self.normalize.apply(n).as_ref()));
        let pass = match self.mode {
            ContainsMode::Any => !found.is_empty(),
            ContainsMode::All => missing.is_empty(),
        };
        let list = |v: &[&String]| {
            v.iter()
                .map(|s| format!("`{}`", clip(s, 40)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let reason = match (self.mode, pass) {
            (ContainsMode::Any, true) => format!("found {} in `{}`", list(&found), clip(&got, 80)),
            (ContainsMode::Any, false) => {
                format!("none of {} in `{}`", list(&missing), clip(&got, 80))
            }
            (ContainsMode::All, true) => format!("all of {} present", list(&found)),
            (ContainsMode::All, false) => {
                format!("missing {} in `{}`", list(&missing), clip(&got, 80))
            }
        };
        EvalResult::pass_fail(pass, reason)
    }
}
local_evaluator!(Contains, "contains");

/// For classifiers: the response must be one of the allowed labels, and equal the expected
/// label when there is one.
#[derive(Debug, Clone, Default)]
pub struct OneOf {
    labels: Vec<String>,
    normalize: Normalize,
}

impl OneOf {
    /// A label-set metric.
    pub fn new(labels: Vec<String>, normalize: Normalize) -> Self {
        OneOf { labels, normalize }
    }

    /// Scores one input.
    pub fn score(&self, input: &EvalInput) -> EvalResult {
        let got = match response(input) {
            Ok(g) => g,
            Err(e) => return e,
        };
        let norm = self.normalize.apply(&got);
        let Some(label) = self.labels.iter().find(|l| self.normalize.apply(l) == norm) else {
            return EvalResult::pass_fail(
                false,
                format!(
                    "`{}` is not one of the labels {}{}",
                    clip(&got, 80),
                    self.labels.join(" | "),
                    after(&self.normalize)
                ),
            );
        };
        match input.expected() {
            None => EvalResult::pass_fail(true, format!("valid label `{label}`")),
            Some(want) => {
                let pass = self.normalize.apply(&want) == self.normalize.apply(label);
                EvalResult::pass_fail(
                    pass,
                    format!(
                        "expected `{}`, got label `{label}` → {}",
                        clip(&want, 80),
                        if pass { "match" } else { "wrong label" }
                    ),
                )
            }
        }
    }
}
local_evaluator!(OneOf, "one_of");

/// 1 when the response matches a regular expression (in full, or anywhere).
#[derive(Debug, Clone)]
pub struct Regex {
    pattern: String,
    re: regex::Regex,
    full: bool,
}

impl Regex {
    /// A regex metric; `full` requires the whole response to match.
    pub fn new(pattern: &str, full: bool) -> Result<Self, regex::Error> {
        let source = if full {
            format!("^(?:{pattern})$")
        } else {
            pattern.to_string()
        };
        Ok(Regex {
            pattern: pattern.to_string(),
            re: regex::Regex::new(&source)?,
            full,
        })
    }

    /// Scores one input.
    pub fn score(&self, input: &EvalInput) -> EvalResult {
        let got = match response(input) {
            Ok(g) => g,
            Err(e) => return e,
        };
        let pass = self.re.is_match(&got);
        EvalResult::pass_fail(
            pass,
            format!(
                "`{}` {} /{}/{}",
                clip(&got, 80),
                if pass { "matches" } else { "does not match" },
                self.pattern,
                if self.full { " in full" } else { "" }
            ),
        )
    }
}
local_evaluator!(Regex, "regex");

//! Text normalisation shared by the local metrics.

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// What to normalise before comparing texts. Applied in this order: unicode (NFKC), case,
/// punctuation, whitespace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Normalize {
    /// Lowercase (Unicode-aware).
    #[serde(default)]
    pub case: bool,
    /// Collapse runs of whitespace into one space and trim the ends.
    #[serde(default)]
    pub whitespace: bool,
    /// Remove punctuation (ASCII and Unicode general punctuation).
    #[serde(default)]
    pub punctuation: bool,
    /// Unicode NFKC (full-width letters, ligatures and compatibility forms fold to plain ones).
    #[serde(default)]
    pub unicode: bool,
}

/// `normalize = true` (everything), `false` (nothing) or a table of options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum NormalizeSpec {
    /// All on or all off.
    All(bool),
    /// Chosen options.
    Options(Normalize),
}

impl Default for NormalizeSpec {
    fn default() -> Self {
        NormalizeSpec::All(false)
    }
}

impl From<NormalizeSpec> for Normalize {
    fn from(s: NormalizeSpec) -> Self {
        match s {
            NormalizeSpec::All(true) => Normalize::all(),
            NormalizeSpec::All(false) => Normalize::default(),
            NormalizeSpec::Options(n) => n,
        }
    }
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(c, '\u{2000}'..='\u{206F}' | '\u{3000}'..='\u{303F}' | '¡' | '¿' | '«' | '»' | '·')
}

impl Normalize {
    /// Every option on.
    pub const fn all() -> Self {
        Normalize {
            case: true,
            whitespace: true,
            punctuation: true,
            unicode: true,
        }
    }

    /// Whether any option is on.
    pub fn any(&self) -> bool {
        self.case || self.whitespace || self.punctuation || self.unicode
    }

    /// Applies the options.
    ///
    /// ```
    /// use metaprompt_evals::Normalize;
    /// assert_eq!(Normalize::all().apply("  Ｐositive!! \n"), "positive");
    /// assert_eq!(Normalize::default().apply(" A "), " A ");
    /// ```
    pub fn apply<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if !self.any() {
            return Cow::Borrowed(text);
        }
        // One allocation on the common paths: lowercase straight from the input.
        let mut s: String = match (self.unicode, self.case) {
            (true, true) => text.nfkc().collect::<String>().to_lowercase(),
            (true, false) => text.nfkc().collect(),
            (false, true) => text.to_lowercase(),
            (false, false) => text.to_string(),
        };
        if self.punctuation {
            s.retain(|c| !is_punctuation(c));
        }
        if self.whitespace {
            s = s.split_whitespace().collect::<Vec<_>>().join(" ");
        }
        Cow::Owned(s)
    }
}

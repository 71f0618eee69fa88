//! Cost accounting and budgets.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::usage::Usage;

/// What has been spent so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Spend {
    /// Model calls made (cache hits excluded).
    pub calls: u64,
    /// Tokens used.
    pub usage: Usage,
    /// Money spent.
    pub cost_usd: f64,
    /// Time elapsed.
    pub elapsed: Duration,
}

/// Which budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BudgetKind {
    /// `max_llm_calls`.
    Calls,
    /// `max_tokens`.
    Tokens,
    /// `max_cost_usd`.
    Cost,
    /// `max_duration`.
    Duration,
}

impl std::fmt::Display for BudgetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BudgetKind::Calls => "max_llm_calls",
            BudgetKind::Tokens => "max_tokens",
            BudgetKind::Cost => "max_cost_usd",
            BudgetKind::Duration => "max_duration",
        })
    }
}

/// Limits on a run. `None` means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Maximum model calls.
    #[serde(default)]
    pub max_llm_calls: Option<u64>,
    /// Maximum tokens, input plus output.
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// Maximum spend in USD.
    #[serde(default)]
    pub max_cost_usd: Option<f64>,
    /// Maximum wall time, in seconds.
    #[serde(default, with = "opt_secs")]
    #[schemars(with = "Option<f64>")]
    pub max_duration: Option<Duration>,
}

impl Budget {
    /// The first budget that `spend` has reached, if any.
    pub fn exhausted(&self, spend: &Spend) -> Option<BudgetKind> {
        self.would_exceed(spend, 0)
    }

    /// The first budget that would be passed by making `next_calls` more calls after `spend`.
    /// Token, cost and time budgets are judged on what is spent already, since the next
    /// calls' cost is unknown; so a budget is overshot by at most one batch.
    ///
    /// ```
    /// use metaprompt_core::{Budget, BudgetKind, Spend};
    /// let b = Budget { max_llm_calls: Some(10), ..Budget::default() };
    /// let s = Spend { calls: 8, ..Spend::default() };
    /// assert_eq!(b.would_exceed(&s, 2), None);
    /// assert_eq!(b.would_exceed(&s, 3), Some(BudgetKind::Calls));
    /// ```
    pub fn would_exceed(&self, spend: &Spend, next_calls: u64) -> Option<BudgetKind> {
        if let Some(max) = self.max_llm_calls
            && (spend.calls + next_calls > max || (next_calls == 0 && spend.calls >= max))
        {
            return Some(BudgetKind::Calls);
        }
        if self.max_tokens.is_some_and(|m| spend.usage.total() >= m) {
            return Some(BudgetKind::Tokens);
        }
        if self.max_cost_usd.is_some_and(|m| spend.cost_usd >= m) {
            return Some(BudgetKind::Cost);
        }
        if self.max_duration.is_some_and(|m| spend.elapsed >= m) {
            return Some(BudgetKind::Duration);
        }
        None
    }
}

mod opt_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let secs = Option::<f64>::deserialize(d)?;
        match secs {
            Some(s) if s.is_finite() && s >= 0.0 => Ok(Some(Duration::from_secs_f64(s))),
            Some(s) => Err(serde::de::Error::custom(format!(
                "a duration must be a non-negative number of seconds, got {s}"
            ))),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_budget_is_detected() {
        let spend = Spend {
            calls: 5,
            usage: Usage {
                input_tokens: 900,
                output_tokens: 100,
            },
            cost_usd: 0.5,
            elapsed: Duration::from_secs(60),
        };
        let calls = Budget {
            max_llm_calls: Some(5),
            ..Budget::default()
        };
        assert_eq!(calls.exhausted(&spend), Some(BudgetKind::Calls));
        let tokens = Budget {
            max_tokens: Some(1000),
            ..Budget::default()
        };
        assert_eq!(tokens.exhausted(&spend), Some(BudgetKind::Tokens));
        let cost = Budget {
            max_cost_usd: Some(0.4),
            ..Budget::default()
        };
        assert_eq!(cost.exhausted(&spend), Some(BudgetKind::Cost));
        let time = Budget {
            max_duration: Some(Duration::from_secs(30)),
            ..Budget::default()
        };
        assert_eq!(time.exhausted(&spend), Some(BudgetKind::Duration));
        assert_eq!(Budget::default().exhausted(&spend), None);
    }

    #[test]
    fn duration_serialises_as_seconds() {
        let b = Budget {
            max_duration: Some(Duration::from_millis(1500)),
            ..Budget::default()
        };
        let v = serde_json::to_value(b).unwrap();
        assert_eq!(v["max_duration"], 1.5);
        let back: Budget = serde_json::from_value(v).unwrap();
        assert_eq!(back, b);
        assert!(serde_json::from_str::<Budget>(r#"{"max_duration": -1}"#).is_err());
    }
}

//! What calls used (tokens) and what that costs (prices).

use std::ops::{Add, AddAssign};

use serde::{Deserialize, Serialize};

/// Token counts of one or more calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
}

impl Usage {
    /// Input plus output tokens.
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

impl Add for Usage {
    type Output = Usage;
    fn add(self, o: Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens + o.input_tokens,
            output_tokens: self.output_tokens + o.output_tokens,
        }
    }
}

impl AddAssign for Usage {
    fn add_assign(&mut self, o: Usage) {
        *self = *self + o;
    }
}

/// Prices of a model in US dollars per million tokens (and per call, for services billed by
/// the call such as hosted evaluators).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Price {
    /// USD per 1M input tokens.
    pub input_per_mtok: f64,
    /// USD per 1M output tokens.
    pub output_per_mtok: f64,
    /// USD per call, on top of the token prices.
    #[serde(default)]
    pub per_call: f64,
}

impl Price {
    /// The cost of some usage at this price.
    ///
    /// ```
    /// use metaprompt_core::{Price, Usage};
    /// let p = Price { input_per_mtok: 2.5, output_per_mtok: 10.0, per_call: 0.0 };
    /// let u = Usage { input_tokens: 1_000_000, output_tokens: 500_000 };
    /// assert!((p.cost(u) - 7.5).abs() < 1e-12);
    /// ```
    pub fn cost(&self, usage: Usage) -> f64 {
        (usage.input_tokens as f64 * self.input_per_mtok
            + usage.output_tokens as f64 * self.output_per_mtok)
            / 1_000_000.0
    }

    /// The cost of one call that used `usage`: the token cost plus the per-call price.
    pub fn call_cost(&self, usage: Usage) -> f64 {
        self.cost(usage) + self.per_call
    }

    /// Half of every price: what provider batch engines charge (OpenAI and Azure Batch,
    /// Anthropic Message Batches).
    pub fn halved(&self) -> Price {
        Price {
            input_per_mtok: self.input_per_mtok / 2.0,
            output_per_mtok: self.output_per_mtok / 2.0,
            per_call: self.per_call / 2.0,
        }
    }
}

//! List prices of common models, in USD per million tokens: one table for every provider.

use crate::usage::Price;

/// When the prices below were taken from the providers' public price lists. Override them in
/// configuration when they change.
pub const PRICES_AS_OF: &str = "2025-06 (OpenAI models), 2026-11 (Claude models)";

const TABLE: &[(&str, f64, f64)] = &[
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4o", 2.50, 10.00),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1", 2.00, 8.00),
    ("o4-mini", 1.10, 4.40),
    ("o3-mini", 1.10, 4.40),
    ("o3", 2.00, 8.00),
    ("gpt-3.5-turbo", 0.50, 1.50),
    ("claude-fable-5", 10.00, 50.00),
    ("claude-opus-5-5", 4.00, 20.00),
    ("claude-opus-5", 5.00, 25.00),
    ("claude-sonnet-5-5", 2.00, 10.00),
    ("claude-sonnet-5", 3.00, 15.00),
    ("claude-haiku-5-5", 0.10, 0.50),
    ("claude-opus-4-8", 5.00, 25.00),
    ("claude-opus-4-7", 5.00, 25.00),
    ("claude-opus-4-6", 5.00, 25.00),
    ("claude-opus-4-5", 5.00, 25.00),
    ("claude-opus-4", 15.00, 75.00),
    ("claude-sonnet-4", 3.00, 15.00),
    ("claude-haiku-4-5", 1.00, 5.00),
    ("claude-3-7-sonnet", 3.00, 15.00),
    ("claude-3-5-sonnet", 3.00, 15.00),
    ("claude-3-5-haiku", 0.80, 4.00),
    ("claude-3-opus", 15.00, 75.00),
    ("claude-3-haiku", 0.25, 1.25),
];

/// The list price of a model: the longest table entry that prefixes the name (so dated names
/// like `gpt-4o-2024-08-06` find `gpt-4o`, and `gpt-4o-mini` is not taken for `gpt-4o`).
///
/// ```
/// let p = metaprompt_core::list_price("gpt-4o-mini-2024-07-18").unwrap();
/// assert_eq!(p.input_per_mtok, 0.15);
/// assert_eq!(metaprompt_core::list_price("claude-3-opus-20240229").unwrap().output_per_mtok, 75.0);
/// assert_eq!(metaprompt_core::list_price("claude-opus-4-5-20251101").unwrap().input_per_mtok, 5.0);
/// assert!(metaprompt_core::list_price("llama3:8b").is_none());
/// ```
pub fn list_price(model: &str) -> Option<Price> {
    TABLE
        .iter()
        .filter(|(name, _, _)| model.starts_with(name))
        .max_by_key(|(name, _, _)| name.len())
        .map(|(_, i, o)| Price {
            input_per_mtok: *i,
            output_per_mtok: *o,
            per_call: 0.0,
        })
}

//! List prices of common models, in USD per million tokens.

use metaprompt_core::Price;

/// When the prices below were taken from the providers' public price lists. Override them in
/// configuration when they change.
pub const PRICES_AS_OF: &str = "2025-06";

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
];

/// The list price of a model: the longest table entry that prefixes the name (so dated names
/// like `gpt-4o-2024-08-06` find `gpt-4o`, and `gpt-4o-mini` is not taken for `gpt-4o`).
///
/// ```
/// let p = metaprompt_openai::list_price("gpt-4o-mini-2024-07-18").unwrap();
/// assert_eq!(p.input_per_mtok, 0.15);
/// assert!(metaprompt_openai::list_price("llama3:8b").is_none());
/// ```
pub fn list_price(model: &str) -> Option<Price> {
    TABLE
        .iter()
        .filter(|(name, _, _)| model.starts_with(name))
        .max_by_key(|(name, _, _)| name.len())
        .map(|(_, i, o)| Price {
            input_per_mtok: *i,
            output_per_mtok: *o,
        })
}

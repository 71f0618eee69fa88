//! Datasets for metaprompt: loading JSONL, JSON and CSV files, checking them before any model
//! call, seeded train/val/test splits, minibatches, and data mappers.
//!
//! **Who should depend on this crate:** tools that prepare or inspect datasets without the
//! optimizer. Applications should use the `metaprompt` facade, which re-exports it as
//! `metaprompt::data`.
//!
//! ```no_run
//! use metaprompt_data::{load, LoadOptions, SplitConfig, BasicDataMapper};
//!
//! let ds = load("data/sms.jsonl", &LoadOptions::default())?
//!     .with_label_fields(["label"])?;
//! ds.require_fields(&["text"], "the prompt")?;
//! let splits = ds.split(&SplitConfig { seed: 7, ..SplitConfig::default() })?;
//! let mapper = BasicDataMapper::for_dataset(
//!     [("response", "generated_output"), ("expected_response", "label")],
//!     &ds,
//! )?;
//! # Ok::<(), metaprompt_data::DataError>(())
//! ```
#![deny(missing_docs)]

mod dataset;
mod error;
mod load;
mod mapper;
mod sample;
mod split;

pub use dataset::{Dataset, SchemaSummary};
pub use error::{DataError, Location};
pub use load::{Format, LoadOptions, load};
pub use mapper::{BasicDataMapper, FnMapper, GENERATED_OUTPUT};
pub use sample::{MinibatchState, Minibatches, first_n};
pub use split::{SMALL_DATASET, SplitConfig, Splits};

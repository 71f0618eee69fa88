//! Hosted evaluators (FutureAGI's eval templates): built for `[evaluator] kind = "futureagi"`,
//! their key map checked against the templates they know before any call, and against the
//! live catalogue before a real run.

use std::sync::Arc;
#[cfg(feature = "futureagi")]
use std::sync::Mutex;

use metaprompt::evals::ExternalBuilder;

use crate::models::ModelPool;

/// The hosted evaluators a config built, for their checks before a run.
#[derive(Default, Clone)]
pub(crate) struct Hosted {
    #[cfg(feature = "futureagi")]
    built: Arc<Mutex<Vec<metaprompt::futureagi::FutureAgiEvaluator>>>,
}

impl Hosted {
    /// What `EvaluatorSpec::build` calls for the kinds it leaves to the command line.
    pub(crate) fn builder(&self, pool: Arc<ModelPool>, keys: Vec<String>) -> Arc<ExternalBuilder> {
        #[cfg(feature = "futureagi")]
        {
            let built = self.built.clone();
            Arc::new(move |spec| futureagi::build(spec, &pool, &keys, &built))
        }
        #[cfg(not(feature = "futureagi"))]
        {
            let _ = (pool, keys);
            Arc::new(|spec| {
                match spec {
                metaprompt::evals::EvaluatorSpec::Futureagi { .. } => Some(Err(metaprompt::evals::SpecError {
                    kind: "futureagi".into(),
                    message: "this build of metaprompt has no FutureAGI client (built without the `futureagi` feature); reinstall with it, e.g. `cargo install metaprompt-cli --features futureagi`".into(),
                })),
                _ => None,
            }
            })
        }
    }

    /// Checks every hosted evaluator's key map against its live catalogue (one listing call
    /// each, no evaluation): a mismatch is the user's config being wrong.
    pub(crate) async fn check(&self) -> Result<(), crate::Failure> {
        #[cfg(feature = "futureagi")]
        {
            let all = self
                .built
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            for e in all {
                e.check().await.map_err(|err| match err {
                    metaprompt::futureagi::CheckError::Catalogue(m) => {
                        crate::Failure::Runtime(anyhow::anyhow!("[evaluator]: {m}"))
                    }
                    other => {
                        crate::Failure::Usage(anyhow::anyhow!("[evaluator] / [mapping]: {other}"))
                    }
                })?;
            }
        }
        Ok(())
    }
}

#[cfg(feature = "futureagi")]
mod futureagi {
    use std::sync::{Arc, Mutex};

    use metaprompt::core::Evaluator;
    use metaprompt::evals::{EvaluatorSpec, SpecError};
    use metaprompt::futureagi::{FutureAgiEvaluator, from_spec};

    use crate::models::ModelPool;

    pub(super) fn build(
        spec: &EvaluatorSpec,
        pool: &ModelPool,
        keys: &[String],
        built: &Mutex<Vec<FutureAgiEvaluator>>,
    ) -> Option<Result<Arc<dyn Evaluator>, SpecError>> {
        Some(from_spec(spec, keys)?.map(|made| {
            for s in &made.secrets {
                pool.remember(s);
            }
            built
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(made.evaluator.clone());
            Arc::new(made.evaluator) as Arc<dyn Evaluator>
        }))
    }
}

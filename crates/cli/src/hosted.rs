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
    use std::time::Duration;

    use metaprompt::core::Evaluator;
    use metaprompt::evals::{EvaluatorSpec, SpecError};
    use metaprompt::futureagi::{
        ClientConfig, DEFAULT_MODEL, FutureAgiClient, FutureAgiEvaluator, TemplateKeysView,
        check_keys, known_keys,
    };

    use crate::models::ModelPool;

    fn err(message: impl Into<String>) -> SpecError {
        SpecError {
            kind: "futureagi".into(),
            message: message.into(),
        }
    }

    pub(super) fn build(
        spec: &EvaluatorSpec,
        pool: &ModelPool,
        keys: &[String],
        built: &Mutex<Vec<FutureAgiEvaluator>>,
    ) -> Option<Result<Arc<dyn Evaluator>, SpecError>> {
        let EvaluatorSpec::Futureagi {
            template,
            model,
            base_url,
            api_key_env,
            secret_key_env,
            max_concurrency,
            timeout_secs,
            price_per_call,
            asynchronous,
        } = spec
        else {
            return None;
        };
        Some((|| {
            // The templates this build knows are checked now, before anything is called.
            if let Some((required, optional)) = known_keys(template) {
                check_keys(
                    template,
                    &TemplateKeysView {
                        required: &required,
                        optional: &optional,
                    },
                    keys,
                )
                .map_err(|e| err(e.to_string()))?;
            }
            let mut cfg = ClientConfig::from_env(api_key_env.as_deref(), secret_key_env.as_deref())
                .map_err(|e| err(e.to_string()))?;
            pool.remember(&cfg.api_key);
            pool.remember(&cfg.secret_key);
            cfg.base_url = base_url.clone();
            if let Some(t) = timeout_secs {
                if !(t.is_finite() && *t > 0.0) {
                    return Err(err("`timeout_secs` must be a positive number of seconds"));
                }
                cfg.timeout = Duration::from_secs_f64(*t);
            }
            if let Some(p) = price_per_call {
                if !(p.is_finite() && *p >= 0.0) {
                    return Err(err(
                        "`price_per_call` must be a non-negative number of US dollars",
                    ));
                }
                cfg.price_per_call = *p;
            }
            cfg.asynchronous = *asynchronous;
            let client = FutureAgiClient::new(cfg).map_err(|e| err(e.to_string()))?;
            let e = FutureAgiEvaluator::new(
                client,
                template.clone(),
                model.clone().unwrap_or_else(|| DEFAULT_MODEL.to_string()),
                keys.to_vec(),
            )
            .with_max_concurrency(*max_concurrency);
            built
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(e.clone());
            Ok(Arc::new(e) as Arc<dyn Evaluator>)
        })())
    }
}

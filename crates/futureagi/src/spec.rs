//! A FutureAGI evaluator from its `[evaluator] kind = "futureagi"` spec: the one builder the
//! command and the Python package share.

use std::time::Duration;

use metaprompt_evals::{EvaluatorSpec, SpecError};

use crate::evaluator::{TemplateKeysView, check_keys, known_keys};
use crate::{ClientConfig, DEFAULT_MODEL, FutureAgiClient, FutureAgiEvaluator};

/// What [`from_spec`] built: the evaluator, and the key and secret a store must scrub.
pub struct FromSpec {
    /// The evaluator (check its key map live with [`FutureAgiEvaluator::check`]).
    pub evaluator: FutureAgiEvaluator,
    /// The API key and the secret key, read from their environment variables.
    pub secrets: Vec<String>,
}

fn err(message: impl Into<String>) -> SpecError {
    SpecError {
        kind: "futureagi".into(),
        message: message.into(),
    }
}

/// Builds the evaluator a `futureagi` spec describes (`None` for every other kind), with
/// `keys` (the key map's evaluator keys) checked offline against the templates this crate
/// knows. The keys come from the environment only.
pub fn from_spec(spec: &EvaluatorSpec, keys: &[String]) -> Option<Result<FromSpec, SpecError>> {
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
        let secrets = vec![cfg.api_key.clone(), cfg.secret_key.clone()];
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
        let evaluator = FutureAgiEvaluator::new(
            client,
            template.clone(),
            model.clone().unwrap_or_else(|| DEFAULT_MODEL.to_string()),
            keys.to_vec(),
        )
        .with_max_concurrency(*max_concurrency);
        Ok(FromSpec { evaluator, secrets })
    })())
}

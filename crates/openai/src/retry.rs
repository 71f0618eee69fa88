//! The one retry policy (`metaprompt_core::RetryPolicy`) as a tower service that replaces
//! async-openai's default executor (and with it async-openai's own retry layer, so retries are
//! never stacked).
//!
//! Retries 429 (unless the quota is exhausted), 5xx, connection errors and timeouts, with
//! exponential backoff and full jitter, honouring `Retry-After`. Never retries other 4xx.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use rand::Rng;
use reqwest::{Response, StatusCode};

pub use metaprompt_core::RetryPolicy;

/// The policy's wait with this process's random jitter.
fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    policy.delay(attempt, rand::rng().random::<f64>(), None)
}

fn retry_after(resp: &Response) -> Option<Duration> {
    let v = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    metaprompt_core::parse_retry_after(v, false)
}

#[derive(Clone, Debug)]
pub(crate) struct RetryService {
    pub(crate) client: reqwest::Client,
    pub(crate) policy: RetryPolicy,
    /// Sends no `Authorization` header (Azure's `api-key` authenticates; async-openai's
    /// config always adds a bearer token).
    pub(crate) strip_authorization: bool,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response, OpenAIError>> + Send>>;

impl tower::Service<HttpRequestFactory> for RetryService {
    type Response = Response;
    type Error = OpenAIError;
    type Future = BoxFuture;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, factory: HttpRequestFactory) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.run(factory).await })
    }
}

impl RetryService {
    async fn run(&self, factory: HttpRequestFactory) -> Result<Response, OpenAIError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let last = attempt >= self.policy.max_attempts;
            let mut request = factory.build().await?;
            if self.strip_authorization {
                request.headers_mut().remove(reqwest::header::AUTHORIZATION);
            }
            match self.client.execute(request).await {
                Ok(resp) => {
                    let status = resp.status();
                    let retryable =
                        status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                    if !retryable || last {
                        return Ok(resp);
                    }
                    let wait = retry_after(&resp).map(|d| d.min(self.policy.max_delay));
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        // An exhausted quota is also a 429; retrying it only wastes time.
                        let bytes = resp.bytes().await.map_err(OpenAIError::Reqwest)?;
                        if String::from_utf8_lossy(&bytes).contains("insufficient_quota") {
                            let rebuilt = http::Response::builder()
                                .status(status)
                                .body(bytes)
                                .map_err(|e| OpenAIError::InvalidArgument(e.to_string()))?;
                            return Ok(Response::from(rebuilt));
                        }
                    }
                    let delay = wait.unwrap_or_else(|| backoff(&self.policy, attempt));
                    tracing::debug!(%status, attempt, ?delay, "retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(e)
                    if !last
                        && (e.is_timeout() || e.is_connect() || e.is_request() || e.is_body()) =>
                {
                    let delay = backoff(&self.policy, attempt);
                    tracing::debug!(error = %e, attempt, ?delay, "retrying after a transport error");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(OpenAIError::Reqwest(e)),
            }
        }
    }
}

//! The one retry policy every HTTP provider applies: how many attempts, how long to wait.
//!
//! Each provider decides *which* failures are worth another attempt (its API's status codes);
//! how many attempts and how long to wait between them is decided here, once.

use std::time::Duration;

/// How retries behave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// First backoff.
    pub base_delay: Duration,
    /// Longest backoff (and longest `Retry-After` honoured).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (1-based `attempt` just failed): exponential,
    /// capped, with full jitter (`random` in `[0, 1)`, from the caller's generator) so that
    /// many concurrent callers do not retry in step. A server's `Retry-After` wins when given.
    ///
    /// ```
    /// use std::time::Duration;
    /// use metaprompt_core::RetryPolicy;
    /// let p = RetryPolicy::default();
    /// assert_eq!(p.delay(1, 0.999_999, None), Duration::from_millis(999));
    /// assert_eq!(p.delay(9, 0.5, None), Duration::from_secs(30)); // capped at 60 s, halved
    /// assert_eq!(p.delay(1, 0.5, Some(Duration::from_secs(2))), Duration::from_secs(2));
    /// ```
    pub fn delay(&self, attempt: u32, random: f64, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_delay);
        }
        let cap = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        let ms = (cap.as_millis() as f64 * random.clamp(0.0, 1.0)).floor() as u64;
        Duration::from_millis(ms)
    }
}

/// A `Retry-After` header value in seconds (`"2"`, `"0.5"`), or a `retry-after-ms` value in
/// milliseconds when `millis` is set. HTTP dates are not honoured (the backoff applies).
pub fn parse_retry_after(value: &str, millis: bool) -> Option<Duration> {
    let n = value.trim().parse::<f64>().ok()?;
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    Some(if millis {
        Duration::from_secs_f64(n / 1000.0)
    } else {
        Duration::from_secs_f64(n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_values_parse() {
        assert_eq!(parse_retry_after("2", false), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 1500 ", true),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after("-1", false), None);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", false),
            None
        );
    }
}

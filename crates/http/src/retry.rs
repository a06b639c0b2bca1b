//! When to retry a request and how long to wait: [`RetryPolicy`] (exponential back-off with
//! jitter, capped) and the server's `Retry-After` ([`retry_after`]).

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// When and how often to retry a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Most requests per call, the first included (at least 1).
    pub max_attempts: u32,
    /// Back-off before the second attempt; doubles for each further attempt.
    pub initial_backoff: Duration,
    /// Cap of the exponential back-off.
    pub max_backoff: Duration,
    /// Cap applied to a server's `Retry-After`.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// Five attempts, 1 s doubling up to 20 s (AlignBench: random exponential 1–20 s),
    /// `Retry-After` honoured up to 120 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

fn random_unit() -> f64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

impl RetryPolicy {
    /// The back-off after failed attempt number `attempt` (1-based), "equal jitter": a
    /// uniform draw from `[d/2, d]` where `d = min(max_backoff, initial_backoff · 2^(attempt−1))`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let full = self
            .initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        full.mul_f64(0.5 + 0.5 * random_unit())
    }

    /// The wait before the next attempt: the server's `Retry-After` if it sent one (capped by
    /// `max_retry_after`), else [`RetryPolicy::backoff`].
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(d) => d.min(self.max_retry_after),
            None => self.backoff(attempt),
        }
    }
}

/// A response's `Retry-After` when given in seconds (an HTTP date is ignored).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped_with_jitter() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(5),
        };
        for _ in 0..50 {
            let b1 = p.backoff(1);
            assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100));
            let b3 = p.backoff(3);
            assert!(b3 >= Duration::from_millis(200) && b3 <= Duration::from_millis(400));
            let b9 = p.backoff(9);
            assert!(b9 >= Duration::from_millis(500) && b9 <= Duration::from_millis(1000));
        }
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(60))),
            Duration::from_secs(5)
        );
        assert!(p.backoff(u32::MAX) <= Duration::from_millis(1000));
    }

    #[test]
    fn retry_after_parses_seconds_only() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }
}

//! Retrying what may succeed the second time: exponential backoff with
//! jitter (from 0.25 s, doubling, capped at 30 s, 8 attempts), honouring a
//! server's `Retry-After`. Only [`ClientError::is_transient`] errors are
//! retried; a refusal of the request itself is returned at once.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use crate::api::ClientError;

/// Attempts before giving up.
pub const ATTEMPTS: usize = 8;

fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(30))
        .with_max_times(ATTEMPTS - 1)
        .with_jitter()
}

/// The waits between attempts, one per retry, for loops that retry by
/// hand (a download resumes where it stopped instead of starting over).
pub fn delays() -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder;
    backoff().build()
}

/// Runs `op` until it succeeds, fails for good, or runs out of attempts.
/// `on_retry` hears of each transient failure and the wait before the next
/// attempt.
pub async fn retrying<T, F, Fut>(
    op: F,
    on_retry: impl Fn(&ClientError, Duration),
) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ClientError>>,
{
    op.retry(backoff())
        .when(ClientError::is_transient)
        .adjust(|e: &ClientError, wait: Option<Duration>| match e {
            ClientError::Refused {
                retry_after: Some(after),
                ..
            } => wait.map(|w| w.max(*after)),
            _ => wait,
        })
        .notify(|e: &ClientError, wait| on_retry(e, wait))
        .await
}

//! The retry loop the payment and credit note pushes share: rounds of Xero calls over the jobs
//! still open, each retried within the invocation while a retry can help, until every job has
//! its result.

use std::time::Duration as StdDuration;

use xero_sync_runtime::token_provider::TokenError;
use xero_sync_xero::XeroError;

use super::plan::{PushError, PushPolicy};

/// A job written to Xero in rounds.
pub(crate) trait RoundJob {
    /// Claimed and still without a result.
    fn is_open(&self) -> bool;
    /// Xero refused the grant (`None`: the job waits for a reconnection) or the request
    /// itself (its words), with nothing applied.
    fn refuse(&mut self, reasons: Option<Vec<String>>);
    /// To be tried again later, after the wait in `error`.
    fn wait(&mut self, error: PushError);
}

/// Rounds over the open jobs, driven by the push:
///
/// ```text
/// let mut rounds = Rounds::default();
/// while let Some(open) = rounds.next(jobs) {
///     let round = once(jobs, &open).await;
///     if !rounds.after(policy, jobs, &open, round).await { break }
/// }
/// ```
///
/// A job a round leaves open is tried in the next; a round that settles none of them ends the
/// loop, so no job can keep it spinning.
#[derive(Default)]
pub(crate) struct Rounds {
    attempt: u32,
}

fn open<J: RoundJob>(jobs: &[J]) -> Vec<usize> {
    (0..jobs.len()).filter(|i| jobs[*i].is_open()).collect()
}

impl Rounds {
    /// The jobs the next round is for; `None` once every job has its result.
    pub(crate) fn next<J: RoundJob>(&mut self, jobs: &[J]) -> Option<Vec<usize>> {
        self.attempt += 1;
        Some(open(jobs)).filter(|open| !open.is_empty())
    }

    /// After the round over `before`: whether to go on (after waiting, when it failed in a way a
    /// retry can help); otherwise every job still open has been given its result.
    pub(crate) async fn after<J: RoundJob>(
        &mut self,
        policy: &PushPolicy,
        jobs: &mut [J],
        before: &[usize],
        round: Result<(), TokenError>,
    ) -> bool {
        let e = match round {
            Ok(()) if open(jobs) != before => return true,
            Ok(()) => TokenError::Xero(XeroError::Unexpected("the round settled nothing".into())),
            Err(e) => e,
        };
        let still = open(jobs);
        let refused = match &e {
            TokenError::Reconnect | TokenError::Xero(XeroError::NotGranted) => Some(None),
            TokenError::Xero(XeroError::Validation { messages, .. }) => Some(Some(messages.clone())),
            TokenError::Xero(XeroError::Forbidden(_) | XeroError::NotFound(_)) => Some(Some(vec![e.to_string()])),
            _ => None,
        };
        if let Some(reasons) = refused {
            for i in still {
                jobs[i].refuse(reasons.clone());
            }
            return false;
        }
        let wait = e.retry_after().unwrap_or_else(|| policy.backoff * 2u32.saturating_pow(self.attempt - 1));
        let governed = matches!(e, TokenError::Governed { .. });
        // A round is a few calls; three attempts keep it well inside the jobs' claims.
        if governed || !e.is_retryable() || self.attempt >= policy.attempts.min(3) || wait > policy.max_wait {
            let after = if e.is_retryable() { wait } else { StdDuration::from_secs(30) };
            for i in still {
                jobs[i].wait(PushError::waiting(&e, after.max(StdDuration::from_secs(1))));
            }
            return false;
        }
        tracing::info!(error = %e, attempt = self.attempt, wait_ms = wait.as_millis() as u64, "Xero write retried");
        tokio::time::sleep(wait).await;
        true
    }
}

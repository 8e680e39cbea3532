//! Timing and detached work, shared by every kernel operation.

use std::{future::Future, time::Instant};

use super::KernelError;

/// Runs a multi-step change as its own task: if the caller is dropped (an HTTP client hung
/// up), the change still finishes or rolls back instead of stopping halfway.
pub(crate) async fn run_detached<T: Send + 'static>(
    op: &'static str,
    work: impl Future<Output = Result<T, KernelError>> + Send + 'static,
) -> Result<T, KernelError> {
    tokio::spawn(work)
        .await
        .map_err(|_| KernelError::Worker { op })?
}

pub(crate) fn elapsed_us(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

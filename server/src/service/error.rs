//! The service's errors, classed as Docker's errdefs are, so the HTTP layer can pick the status.

use crate::kernel::KernelError;
use crate::store::StoreError;

/// An operation's failure. The text of the client-facing kinds is Docker's exact message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 400: the request is wrong.
    #[error("{0}")]
    InvalidParameter(String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 403: the request is well-formed but not allowed in this state.
    #[error("{0}")]
    Forbidden(String),
    /// 501: a route that needs processes or images, which netbridge does not have.
    #[error("{0}")]
    NotImplemented(String),
    /// 503: the cluster store is unreachable or without quorum; nothing was changed.
    #[error("{0}")]
    Unavailable(String),
    /// 500 with a message Docker also answers with (Docker's "untyped" errors).
    #[error("{0}")]
    System(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{context}: {source}")]
    Kernel {
        context: String,
        source: KernelError,
    },
}

impl Error {
    pub fn kernel(context: impl Into<String>) -> impl FnOnce(KernelError) -> Error {
        let context = context.into();
        move |source| Error::Kernel { context, source }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

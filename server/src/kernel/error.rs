//! The one error type of the kernel layer.

use std::io;

/// Why a kernel operation failed. Every variant names the operation and the link (or path)
/// it was working on, because "File exists" alone does not tell an operator what to fix.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// A link or namespace of that name is already there; it is left untouched because it
    /// may not be ours.
    #[error("{what} {name:?} already exists")]
    Exists { what: &'static str, name: String },

    /// The link or namespace to work on is not there (any more).
    #[error("{what} {name:?} not found")]
    NotFound { what: &'static str, name: String },

    /// A link with the bridge's name exists but is something else; adopting it would be wrong.
    #[error("link {name:?} exists but is {}, not a bridge", kind.as_deref().unwrap_or("of no kind"))]
    NotBridge { name: String, kind: Option<String> },

    /// The request was refused before reaching the kernel (bad name, prefix length, MAC...).
    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },

    /// A client-given interface sysctl could not be applied (no such knob, or the kernel
    /// refused the value); the text is Docker's, for the client.
    #[error("{detail}")]
    InterfaceSysctl { detail: String },

    /// The kernel (or the netlink connection) refused a request. Boxed: rtnetlink's error
    /// is large, and every caller's `Result` would carry its size.
    #[error("{op} ({link}): {source}")]
    Netlink {
        op: &'static str,
        link: String,
        #[source]
        source: Box<rtnetlink::Error>,
    },

    /// A system call or file operation failed (sysctl, mount, setns, socket...).
    #[error("{op} ({target}): {source}")]
    Os {
        op: &'static str,
        target: String,
        #[source]
        source: io::Error,
    },

    /// The dedicated namespace thread or the background task died before answering
    /// (a panic); what it did was not confirmed.
    /// The caller called the work off before anything was changed.
    #[error("{op}: called off before any change")]
    CalledOff { op: &'static str },

    #[error("{op}: the worker ended without a result")]
    Worker { op: &'static str },

    /// The netlink connection needs a tokio runtime to drive it.
    #[error("{op}: must be called from within a tokio runtime")]
    NoRuntime { op: &'static str },
}

impl KernelError {
    /// The errno behind the failure, if the kernel or the OS gave one; lets callers map e.g.
    /// `EXFULL` (a bridge with 1024 ports) to a clear message.
    pub fn errno(&self) -> Option<i32> {
        match self {
            KernelError::Netlink { source, .. } => netlink_errno(source),
            KernelError::Os { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    pub(crate) fn netlink(
        op: &'static str,
        link: impl Into<String>,
        source: rtnetlink::Error,
    ) -> Self {
        KernelError::Netlink {
            op,
            link: link.into(),
            source: Box::new(source),
        }
    }

    pub(crate) fn os(
        op: &'static str,
        target: impl Into<String>,
        source: impl Into<io::Error>,
    ) -> Self {
        KernelError::Os {
            op,
            target: target.into(),
            source: source.into(),
        }
    }

    pub(crate) fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        KernelError::Invalid {
            what,
            detail: detail.into(),
        }
    }
}

/// The positive errno of a netlink NACK, `None` for other failures.
pub(crate) fn netlink_errno(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|code| -code.get()),
        _ => None,
    }
}

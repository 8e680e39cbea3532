//! Sysctls under /proc/sys. They belong to the network namespace of the thread that opens
//! the file, which is why namespace-side knobs are written from the namespace's own thread.

use std::{fs::OpenOptions, io::Write, path::PathBuf};

use tracing::debug;

use super::KernelError;

/// Writes a sysctl in the calling thread's namespace (e.g. "net/ipv4/ip_forward", "1").
pub fn set_sysctl(key: &str, value: &str) -> Result<(), KernelError> {
    let path = sysctl_path(key)?;
    let mut file = OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| KernelError::os("open sysctl", key, e))?;
    file.write_all(value.as_bytes())
        .map_err(|e| KernelError::os("write sysctl", format!("{key}={value}"), e))
}

/// Like [`set_sysctl`], but a missing IPv6 tree (IPv6 disabled at boot, or on that interface)
/// is not an error: the knob has nothing to protect then.
pub(crate) fn set_ipv6_sysctl(key: &str, value: &str) -> Result<(), KernelError> {
    match set_sysctl(key, value) {
        Err(e) if e.errno() == Some(libc::ENOENT) => {
            debug!(key, "IPv6 sysctl not available, skipped");
            Ok(())
        }
        other => other,
    }
}

/// Keys are internal, but an interface name ends up in them; refuse anything that could
/// leave /proc/sys.
fn sysctl_path(key: &str) -> Result<PathBuf, KernelError> {
    if key.is_empty()
        || key.starts_with('/')
        || key
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(KernelError::invalid("sysctl key", key));
    }
    Ok(PathBuf::from("/proc/sys").join(key))
}

//! Sysctls under /proc/sys. They belong to the network namespace of the thread that opens
//! the file, which is why namespace-side knobs are written from the namespace's own thread.

use std::{
    fs::{File, OpenOptions},
    io::Write,
    os::fd::{AsFd, OwnedFd},
    path::PathBuf,
};

use nix::{
    fcntl::{OFlag, openat},
    sys::stat::Mode,
};

use tracing::debug;

use super::{KernelError, link::validate_link_name};

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

/// A per-interface sysctl a client asked for: `/proc/sys/net/<family>/<group>/<ifname>/<knob>`,
/// the interface being the endpoint's container end, whose name is only known once made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceSysctl {
    /// `ipv4`, `ipv6` or `mpls`.
    pub family: String,
    /// `conf`, `neigh`, …
    pub group: String,
    /// The file under the interface's directory, e.g. `forwarding`.
    pub knob: String,
    pub value: String,
}

impl InterfaceSysctl {
    /// Its path for the interface `ifname`, relative to /proc/sys.
    fn key(&self, ifname: &str) -> String {
        format!("net/{}/{}/{ifname}/{}", self.family, self.group, self.knob)
    }
}

/// Applies client-given sysctls to `ifname` in the calling thread's namespace, as Docker does:
/// the file must exist, and a value already in place is not rewritten (so a read-only
/// /proc/sys with the right values is fine). The messages are Docker's.
pub(crate) fn apply_interface_sysctls(
    ifname: &str,
    sysctls: &[InterfaceSysctl],
) -> Result<(), KernelError> {
    validate_link_name("interface name", ifname)?;
    for s in sysctls {
        // Each part is one path component, so the file stays under the interface's directory.
        if [&s.family, &s.group, &s.knob]
            .iter()
            .any(|part| part.is_empty() || part.contains('/') || *part == "." || *part == "..")
        {
            return Err(KernelError::invalid(
                "interface sysctl",
                format!("{}.{}.IFNAME.{}", s.family, s.group, s.knob),
            ));
        }
        let key = s.key(ifname);
        let path = sysctl_path(&key)?;
        let shown = path.display().to_string();
        let refused = |detail: String| KernelError::InterfaceSysctl { detail };
        if !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            return Err(refused(format!("{shown} is not a sysctl file")));
        }
        let current = std::fs::read_to_string(&path)
            .map_err(|e| refused(format!("unable to read '{shown}': {e}")))?;
        if current.trim() == s.value {
            continue;
        }
        OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(s.value.as_bytes()))
            .map_err(|e| refused(format!("unable to write to '{shown}': {e}")))?;
    }
    Ok(())
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

/// `/proc/sys/net/ipv6/conf` of the namespace the daemon started in, held open. A name looked
/// up under a directory of /proc/sys resolves in that directory's namespace, not in the one of
/// the thread that asks, so a thread inside a container's namespace can still set a knob of a
/// host-side interface through it.
#[derive(Debug)]
pub(crate) struct Ipv6Conf {
    dir: OwnedFd,
}

impl Ipv6Conf {
    /// `None` when the kernel has no IPv6 (booted with ipv6.disable=1): nothing to turn off.
    pub(crate) fn open_here() -> Option<Ipv6Conf> {
        let dir = File::open("/proc/sys/net/ipv6/conf").ok()?;
        Some(Ipv6Conf { dir: dir.into() })
    }

    /// Turns IPv6 off on one interface. Done before the link comes up, this spares the kernel
    /// the link-local address, its routes, and the walk of the whole IPv6 routing table that
    /// every link-up otherwise costs (milliseconds once thousands of veths exist).
    pub(crate) fn disable(&self, ifname: &str) -> Result<(), KernelError> {
        validate_link_name("interface name", ifname)?;
        let key = format!("{ifname}/disable_ipv6");
        let fd = openat(
            self.dir.as_fd(),
            key.as_str(),
            OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            KernelError::os(
                "open sysctl",
                format!("net/ipv6/conf/{key}"),
                std::io::Error::from(e),
            )
        })?;
        File::from(fd)
            .write_all(b"1")
            .map_err(|e| KernelError::os("write sysctl", format!("net/ipv6/conf/{key}=1"), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn knob(group: &str, knob: &str) -> InterfaceSysctl {
        InterfaceSysctl {
            family: "ipv4".into(),
            group: group.into(),
            knob: knob.into(),
            value: "1".into(),
        }
    }

    #[test]
    fn interface_sysctls_never_leave_the_interface_directory() {
        for bad in [
            knob("conf", "a/b"),
            knob("..", "x"),
            knob("conf", ""),
            knob(".", "x"),
        ] {
            let refused = apply_interface_sysctls("eth0", std::slice::from_ref(&bad));
            assert!(
                matches!(refused, Err(KernelError::Invalid { .. })),
                "{bad:?}: {refused:?}"
            );
        }
        assert!(
            apply_interface_sysctls("../x", &[]).is_err(),
            "interface name checked"
        );
    }

    #[test]
    fn a_missing_knob_is_dockers_not_a_sysctl_file() {
        let refused = apply_interface_sysctls("lo", &[knob("conf", "no_such_knob")]);
        assert_eq!(
            refused.map_err(|e| e.to_string()),
            Err("/proc/sys/net/ipv4/conf/lo/no_such_knob is not a sysctl file".to_string())
        );
    }
}

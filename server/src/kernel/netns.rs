//! Network namespaces: holding one open, making and removing named ones, and running work
//! inside one on a dedicated OS thread.
//!
//! `setns` changes the namespace of the calling thread only, and tokio's worker and blocking
//! threads are pooled, so a thread that entered a container's namespace must never run
//! anything else. Each namespace operation therefore gets a fresh `std::thread` that enters
//! the namespace, opens its own netlink socket there (a socket stays bound to the namespace
//! it was opened in), drives it with a current-thread runtime, and ends.

use std::{
    fs::{self, File, OpenOptions},
    future::Future,
    os::{
        fd::{AsFd, AsRawFd, BorrowedFd, RawFd},
        unix::fs::OpenOptionsExt,
    },
    path::{Path, PathBuf},
};

use nix::{
    errno::Errno,
    mount::{MntFlags, MsFlags, mount, umount2},
    sched::{CloneFlags, setns, unshare},
    sys::statfs::{NSFS_MAGIC, fstatfs},
};
use rtnetlink::{Handle, LinkUnspec};
use tracing::debug;

use super::{
    KernelError,
    link::{connect_here, set_link},
};

/// A network namespace held open by fd so it cannot vanish while in use.
#[derive(Debug)]
pub struct Netns {
    file: File,
    path: PathBuf,
}

impl Netns {
    /// Opens `/run/netns/<name>` or `/proc/<pid>/ns/net`. `NotFound` if the path is gone (the
    /// container exited); `Invalid` if it is not a namespace file (e.g. a leftover empty file
    /// under /run/netns whose bind mount is gone).
    pub fn open(path: &Path) -> Result<Netns, KernelError> {
        let file = File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => KernelError::NotFound {
                what: "namespace",
                name: path.display().to_string(),
            },
            _ => KernelError::os("open namespace", path.display().to_string(), e),
        })?;
        let fs = fstatfs(&file)
            .map_err(|e| KernelError::os("stat namespace", path.display().to_string(), e))?;
        if fs.filesystem_type() != NSFS_MAGIC {
            return Err(KernelError::invalid(
                "namespace",
                format!("{} is not a namespace file", path.display()),
            ));
        }
        Ok(Netns {
            file,
            path: path.to_owned(),
        })
    }

    /// The path it was opened from (for messages; the fd is what counts).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes a new named namespace like `ip netns add NAME`: `dir` becomes a shared mount
    /// (so the bind mounts propagate to other mount namespaces, as iproute2 does), `dir/NAME`
    /// is created and a fresh namespace bind-mounted onto it, with `lo` up inside.
    /// `Exists` if the file is already there.
    pub fn create_named(dir: &Path, name: &str) -> Result<Netns, KernelError> {
        validate_ns_name(name)?;
        make_shared_dir(dir)?;
        let path = dir.join(name);
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o000)
            .open(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => KernelError::Exists {
                    what: "namespace",
                    name: path.display().to_string(),
                },
                _ => KernelError::os("create namespace file", path.display().to_string(), e),
            })?;
        let made = bind_new_netns(&path).and_then(|()| Netns::open(&path));
        if made.is_err() {
            // Leave no empty file behind: it would make the name look taken forever.
            let _ = umount2(&path, MntFlags::MNT_DETACH);
            let _ = fs::remove_file(&path);
        }
        made
    }

    /// Undoes `create_named`: detaches the bind mount and removes the file. A namespace that
    /// is already gone is not an error.
    pub fn delete_named(dir: &Path, name: &str) -> Result<(), KernelError> {
        validate_ns_name(name)?;
        let path = dir.join(name);
        match umount2(&path, MntFlags::MNT_DETACH) {
            // EINVAL: not a mount point (any more); ENOENT: no file.
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
            Err(e) => {
                return Err(KernelError::os(
                    "unmount namespace",
                    path.display().to_string(),
                    e,
                ));
            }
        }
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                debug!(path = %path.display(), "namespace file already gone");
                Ok(())
            }
            Err(e) => Err(KernelError::os(
                "remove namespace file",
                path.display().to_string(),
                e,
            )),
        }
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// What work running inside a namespace gets: a netlink handle bound to that namespace, and
/// the namespace's fd (valid for the whole run) for IFLA_NET_NS_FD.
pub(crate) struct InNetns {
    pub(crate) handle: Handle,
    pub(crate) ns_fd: RawFd,
}

/// Runs `work` on a dedicated OS thread that has entered `ns`. The thread runs to the end
/// even if the returned future is dropped, so `work` can always finish its own clean-up.
pub(crate) async fn run_in_netns<T, F, Fut>(
    ns: &Netns,
    op: &'static str,
    work: F,
) -> Result<T, KernelError>
where
    F: FnOnce(InNetns) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, KernelError>>,
    T: Send + 'static,
{
    let target = ns.describe();
    let fd = ns
        .file
        .try_clone()
        .map_err(|e| KernelError::os("duplicate namespace fd", target.clone(), e))?;
    // The kernel takes its routing lock for most of this work anyway: more threads at once
    // would only add memory (a stack each), not speed.
    let permit = NAMESPACE_THREADS
        .acquire()
        .await
        .map_err(|_| KernelError::Worker { op })?;
    let (reply, result) = tokio::sync::oneshot::channel();
    let thread_target = target.clone();
    std::thread::Builder::new()
        .name("netbridge-netns".into())
        .spawn(move || {
            // Nobody listening means the caller gave up; the work is done (or undone) anyway.
            let _ = reply.send(enter_and_run(fd, op, &thread_target, work));
        })
        .map_err(|e| KernelError::os("spawn namespace thread", target, e))?;
    let done = result.await.map_err(|_| KernelError::Worker { op })?;
    drop(permit);
    done
}

/// How many namespace threads may run at once.
static NAMESPACE_THREADS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(8);

fn enter_and_run<T, F, Fut>(
    fd: File,
    op: &'static str,
    target: &str,
    work: F,
) -> Result<T, KernelError>
where
    F: FnOnce(InNetns) -> Fut,
    Fut: Future<Output = Result<T, KernelError>>,
{
    setns(&fd, CloneFlags::CLONE_NEWNET)
        .map_err(|e| KernelError::os("enter namespace", target, e))?;
    let runtime = current_thread_runtime(op)?;
    runtime.block_on(async move {
        let handle = connect_here(op)?;
        let ns_fd = fd.as_raw_fd();
        let result = work(InNetns { handle, ns_fd }).await;
        drop(fd);
        result
    })
}

fn current_thread_runtime(op: &'static str) -> Result<tokio::runtime::Runtime, KernelError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| KernelError::os(op, "tokio runtime", e))
}

/// Ensures `dir` exists and is a shared mount point, the way iproute2 prepares /run/netns:
/// make-shared fails with EINVAL on a plain directory, so bind it onto itself first.
fn make_shared_dir(dir: &Path) -> Result<(), KernelError> {
    let target = || dir.display().to_string();
    fs::create_dir_all(dir)
        .map_err(|e| KernelError::os("create namespace directory", target(), e))?;
    let mut bound = false;
    loop {
        match mount(
            None::<&str>,
            dir,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        ) {
            Ok(()) => return Ok(()),
            Err(Errno::EINVAL) if !bound => {
                mount(
                    Some(dir),
                    dir,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .map_err(|e| {
                    KernelError::os("bind namespace directory onto itself", target(), e)
                })?;
                bound = true;
            }
            Err(e) => {
                return Err(KernelError::os(
                    "make namespace directory shared",
                    target(),
                    e,
                ));
            }
        }
    }
}

/// On a throwaway thread: unshare a fresh namespace, pin it by bind-mounting the thread's
/// namespace file onto `path`, and bring `lo` up inside.
fn bind_new_netns(path: &Path) -> Result<(), KernelError> {
    let target = path.display().to_string();
    let thread_path = path.to_owned();
    let thread_target = target.clone();
    let worker = std::thread::Builder::new()
        .name("netbridge-netns".into())
        .spawn(move || -> Result<(), KernelError> {
            let target = thread_target;
            unshare(CloneFlags::CLONE_NEWNET)
                .map_err(|e| KernelError::os("unshare namespace", target.clone(), e))?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &thread_path,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| KernelError::os("bind-mount namespace", target.clone(), e))?;
            current_thread_runtime("create namespace")?.block_on(async {
                let handle = connect_here("create namespace")?;
                set_link(
                    &handle,
                    LinkUnspec::new_with_index(LOOPBACK_INDEX).up().build(),
                    "set lo up",
                    "lo",
                )
                .await
            })
        })
        .map_err(|e| KernelError::os("spawn namespace thread", target, e))?;
    worker.join().map_err(|_| KernelError::Worker {
        op: "create namespace",
    })?
}

/// `lo` is the first device registered in every network namespace.
pub(crate) const LOOPBACK_INDEX: u32 = 1;

/// A namespace name becomes a file name under the directory: one path component.
fn validate_ns_name(name: &str) -> Result<(), KernelError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(KernelError::invalid("namespace name", format!("{name:?}")));
    }
    Ok(())
}

/// A namespace's identity: the device and inode of its nsfs file. Two references (a named
/// namespace, `/proc/<pid>/ns/net`) reach the same namespace exactly when these are equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NamespaceId {
    pub dev: u64,
    pub ino: u64,
}

impl std::fmt::Display for NamespaceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.dev, self.ino)
    }
}

/// The inode the initial network namespace has on kernels that number initial namespaces
/// statically. Older kernels hand out dynamic inodes from 0xF0000000 up, so no other
/// namespace can ever carry it.
const INITIAL_NET_INO: u64 = 0xEFFF_FFF9;

/// The kernel's flag for its own threads in `/proc/<pid>/stat` (field 9).
const PF_KTHREAD: u64 = 0x0020_0000;

impl Netns {
    /// The identity of the namespace this fd holds.
    pub fn id(&self) -> Result<NamespaceId, KernelError> {
        let st = nix::sys::stat::fstat(&self.file)
            .map_err(|e| KernelError::os("stat namespace", self.describe(), e))?;
        Ok(NamespaceId {
            dev: st.st_dev,
            ino: st.st_ino,
        })
    }
}

/// Namespaces no container may ever be: the daemon's own (the host's, under a host-network
/// deployment) and the initial one. Found by identity, never by trusting a PID's number.
pub fn off_limits_namespaces() -> Result<Vec<NamespaceId>, KernelError> {
    let own = Netns::open(Path::new("/proc/self/ns/net"))?.id()?;
    let mut ids = vec![
        own,
        NamespaceId {
            dev: own.dev,
            ino: INITIAL_NET_INO,
        },
    ];
    // Kernel threads always live in the initial namespace; one visible here names it.
    if let Some(initial) = first_process_where(is_kernel_thread, None) {
        ids.push(initial.1);
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// The namespace of process `pid` and the path that reached it, if the process exists.
pub fn namespace_of_pid(pid: u32) -> Option<(PathBuf, NamespaceId)> {
    let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
    let id = Netns::open(&path).and_then(|ns| ns.id()).ok()?;
    Some((path, id))
}

/// A live process's path to namespace `id`: how a namespace first reached through a PID stays
/// reachable after that process exits, as long as another one lives in it.
pub fn find_process_in(id: NamespaceId) -> Option<PathBuf> {
    first_process_where(|_| true, Some(id)).map(|(path, _)| path)
}

/// The first process (by `/proc` order) whose stat line passes `keep` and, if given, whose
/// namespace is `want`.
fn first_process_where(
    keep: impl Fn(&str) -> bool,
    want: Option<NamespaceId>,
) -> Option<(PathBuf, NamespaceId)> {
    let entries = fs::read_dir("/proc").ok()?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if !keep(&stat) {
            continue;
        }
        if let Some((path, id)) = namespace_of_pid(pid)
            && want.is_none_or(|w| w == id)
        {
            return Some((path, id));
        }
    }
    None
}

/// Whether a `/proc/<pid>/stat` line is a kernel thread's. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted after its last `)`.
pub fn is_kernel_thread(stat: &str) -> bool {
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return false;
    };
    // After the name: state (3), ppid, pgrp, session, tty_nr, tpgid, flags (9).
    rest.split_whitespace()
        .nth(6)
        .and_then(|f| f.parse::<u64>().ok())
        .is_some_and(|flags| flags & PF_KTHREAD != 0)
}

#[cfg(test)]
mod identity_tests {
    use super::*;

    #[test]
    fn kernel_threads_are_told_by_their_flags_not_their_pid() {
        let kthreadd = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 24";
        assert!(is_kernel_thread(kthreadd));
        // A user process whose name holds spaces and parentheses, flags without PF_KTHREAD.
        let user = "4242 (evil) S 0 0 0 0 -1 2129984) S 1 4242 4242 0 -1 4194560 100 0 0";
        assert!(!is_kernel_thread(user));
        let init = "1 (systemd) S 0 1 1 0 -1 4194560 5000 0 0 0";
        assert!(!is_kernel_thread(init));
        assert!(!is_kernel_thread("garbage"));
        assert!(!is_kernel_thread(""));
    }

    #[test]
    fn the_own_and_the_initial_namespace_are_off_limits() {
        let ids = off_limits_namespaces().expect("off-limits namespaces");
        let own = Netns::open(Path::new("/proc/self/ns/net"))
            .and_then(|ns| ns.id())
            .expect("own namespace");
        assert!(ids.contains(&own));
        assert!(ids.contains(&NamespaceId {
            dev: own.dev,
            ino: INITIAL_NET_INO
        }));
        // Where a kernel thread is visible, its namespace (the initial one) is in the list.
        if let Some((_, initial)) = first_process_where(is_kernel_thread, None) {
            assert!(ids.contains(&initial));
        }
    }

    #[test]
    fn a_pid_reaches_its_namespace_by_identity() {
        let own = Netns::open(Path::new("/proc/self/ns/net"))
            .and_then(|ns| ns.id())
            .expect("own namespace");
        let (path, id) = namespace_of_pid(std::process::id()).expect("own pid");
        assert_eq!(id, own);
        assert!(path.ends_with("ns/net"));
        assert!(find_process_in(own).is_some());
        assert!(namespace_of_pid(u32::MAX).is_none());
    }
}

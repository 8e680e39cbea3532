//! The firewall: isolation, NAT and forwarding for netbridge's bridges, with nftables.
//!
//! Everything lives in one table of netbridge's own, `table inet netbridge`, in the namespace
//! the daemon runs in (the calling thread's). Its rules are fixed; each network is a handful of
//! set elements keyed by its bridge's name, so the rule count never grows with the number of
//! networks and creating a network is one small transaction:
//!
//! ```text
//! table inet netbridge {
//!     set bridges  { type ifname; }                 # every bridge of netbridge's
//!     set same     { type ifname . ifname; }        # "br" . "br": in and out the same bridge
//!     set internal { type ifname; }                 # Internal networks
//!     set no_icc   { type ifname; }                 # enable_icc=false
//!     set masq_v4  { type ipv4_addr; flags interval; }  # subnets to masquerade
//!     set masq_v6  { type ipv6_addr; flags interval; }
//!     chain forward {
//!         type filter hook forward priority filter - 10; policy accept;
//!         iifname != @bridges oifname != @bridges accept          # not ours: not our business
//!         iifname . oifname @same jump same_bridge               # inside one bridge
//!         iifname @internal drop                                 # Internal: nothing leaves…
//!         oifname @internal drop                                 # …nothing enters
//!         iifname @bridges oifname @bridges drop                 # network to network
//!         iifname @bridges meta mark set meta mark | 0x01000000 accept   # out to the world
//!         ct state established,related meta mark set meta mark | 0x01000000 accept  # replies
//!     }
//!     chain same_bridge {
//!         iifname @no_icc drop
//!         meta mark set meta mark | 0x01000000 accept
//!     }
//!     chain postrouting {
//!         type nat hook postrouting priority srcnat; policy accept;
//!         ip saddr @masq_v4 oifname != @bridges masquerade
//!         ip6 saddr @masq_v6 oifname != @bridges masquerade
//!     }
//! }
//! ```
//!
//! New connections from elsewhere into a (non-internal) bridge are neither accepted nor dropped
//! here: the host's own forward policy decides, as it does for Docker's bridges.
//!
//! Traffic between two containers of one bridge is bridged, not routed: it passes the `inet`
//! forward hook only through `br_netfilter` (then with the bridge as both `iifname` and
//! `oifname`, which is what `same` matches). The bridge family's `meta ibrname` would avoid
//! that, but needs `CONFIG_NFT_BRIDGE_META`, which kernels do not all have (this machine's does
//! not). So `enable_icc=false` relies on `br_netfilter`, as Docker's does: a network with it
//! makes sure `net.bridge.bridge-nf-call-iptables` (and `-ip6tables`) is 1, loading the module
//! if need be, and is refused if that is impossible.
//!
//! A host firewall whose FORWARD policy drops (Docker sets one; with `br_netfilter` even
//! bridged traffic meets it) would cut netbridge's bridges off; allowed traffic is therefore
//! marked with [`FORWARD_MARK`] and one fixed accept rule for the mark is kept in the host's
//! iptables `filter` table (see [`host`]).
//!
//! `apply_all` (start-up) is one `nft -f -` process with the whole ruleset on stdin. Network
//! create and remove only change set elements, and do it in-process: one nf_tables netlink
//! batch (one transaction) over a socket the calling thread opens (see [`netlink`]). An `nft`
//! process cost ~4 ms per call, and more the more networks there were (nft reads the whole
//! interval set before changing it); a batch is a few hundred bytes whatever the sets hold.
//! This work happens at network create and remove, never per attach. Calls are synchronous;
//! callers on tokio wrap them in `spawn_blocking`.

mod host;
mod netlink;
mod port;
mod script;

#[cfg(test)]
mod tests;

use std::{
    io::{self, Write},
    net::IpAddr,
    path::Path,
    process::{Command, Output, Stdio},
    sync::Mutex,
    time::Instant,
};

use tracing::{debug, error, info, warn};

use super::{KernelError, set_sysctl, sysctl::set_ipv6_sysctl};
pub use port::{PortRule, Proto};
pub use script::FORWARD_MARK;
use script::{Checked, Element, Set};

/// The table netbridge owns, `table inet netbridge`.
pub const DEFAULT_TABLE: &str = "netbridge";

/// What the firewall needs to know of one network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkRules {
    /// The kernel bridge's name.
    pub bridge: String,
    /// The network's subnets (IPv4 and/or IPv6): network address and prefix length. Host bits
    /// are ignored.
    pub subnets: Vec<(IpAddr, u8)>,
    /// `Internal`: nothing leaves or enters across the bridge.
    pub internal: bool,
    /// `com.docker.network.bridge.enable_icc`: false = containers of this bridge cannot talk to
    /// each other.
    pub icc: bool,
    /// `com.docker.network.bridge.enable_ip_masquerade`: source NAT for traffic of the subnets
    /// leaving through an interface that is not one of netbridge's bridges. Ignored for
    /// `Internal` networks, which never leave.
    pub masquerade: bool,
}

/// A firewall backend (nftables today; netavark keeps its firewall behind such a trait too).
pub trait Firewall: Send + Sync {
    /// Forwarding on (`net.ipv4.ip_forward=1`; `net.ipv6.conf.all.forwarding=1`, best effort,
    /// when a network has an IPv6 subnet) and the whole ruleset replaced atomically by exactly
    /// `networks` (start-up, and re-apply). Idempotent.
    fn apply_all(&self, networks: &[NetworkRules]) -> Result<(), KernelError>;
    /// One network's elements added (network create); atomic; idempotent.
    fn add_network(&self, n: &NetworkRules) -> Result<(), KernelError>;
    /// One network's elements removed (network remove); absent elements are not an error.
    fn remove_network(&self, n: &NetworkRules) -> Result<(), KernelError>;
    /// Published ports changed in one transaction: `remove` (exactly as added; absent ones
    /// are not an error) go, then `add` come.
    fn change_ports(&self, remove: &[PortRule], add: &[PortRule]) -> Result<(), KernelError>;
    /// The published ports made exactly `all` (start-up), in one transaction.
    fn replace_ports(&self, all: &[PortRule]) -> Result<(), KernelError>;
}

/// The nftables backend: the `nft` command for the whole ruleset, netlink batches for one
/// network's elements.
#[derive(Debug)]
pub struct Nftables {
    table: String,
    /// Serialises this process's transactions, so that an `apply_all` and an `add_network`
    /// never interleave their steps (the kernel serialises each transaction anyway); holds the
    /// netlink socket kept for add and remove.
    lock: Mutex<Option<netlink::Connection>>,
}

impl Default for Nftables {
    fn default() -> Self {
        Nftables::new()
    }
}

impl Nftables {
    /// The backend for `table inet netbridge`.
    pub fn new() -> Nftables {
        Nftables {
            table: DEFAULT_TABLE.to_string(),
            lock: Mutex::new(None),
        }
    }

    /// The backend for another table name (a plain identifier).
    pub fn with_table(table: &str) -> Result<Nftables, KernelError> {
        script::check_table(table)?;
        Ok(Nftables {
            table: table.to_string(),
            lock: Mutex::new(None),
        })
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn target(&self) -> String {
        format!("table inet {}", self.table)
    }

    /// What a failed add or remove worked on, for its error.
    fn network_target(&self, n: &Checked) -> String {
        format!("{} bridge {}", self.target(), n.bridge)
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, Option<netlink::Connection>> {
        // A panic while holding the lock leaves nothing half-done in the kernel (each step is
        // one transaction), so a poisoned lock is still usable; only the kept socket, which
        // may hold the answers of an interrupted transaction, is dropped.
        self.lock.lock().unwrap_or_else(|poisoned| {
            self.lock.clear_poison();
            let mut guard = poisoned.into_inner();
            *guard = None;
            guard
        })
    }

    /// Whether the table is certainly missing (for telling "not set up" from other failures).
    fn table_missing(&self) -> bool {
        match netlink::table_exists(&self.table) {
            Ok(exists) => !exists,
            Err(e) => {
                debug!(error = %e, "cannot tell whether the firewall table exists");
                false
            }
        }
    }
}

impl Firewall for Nftables {
    fn apply_all(&self, networks: &[NetworkRules]) -> Result<(), KernelError> {
        let checked = networks
            .iter()
            .map(Checked::new)
            .collect::<Result<Vec<_>, _>>()?;
        let _guard = self.guard();
        let started = Instant::now();
        run_nft(
            &script::ruleset(&self.table, &checked),
            "nft replace ruleset",
            self.target(),
        )?;
        // Forwarding only once the rules are in place, so there is no unfiltered moment.
        enable_forwarding(checked.iter().any(Checked::has_ipv6))?;
        checked.iter().for_each(allow_localnet);
        // The remaining steps are independent; all are attempted, the first failure reported.
        let mut result = host::ensure_forward_accept();
        if checked.iter().any(|n| !n.icc) {
            let v6 = checked.iter().any(|n| !n.icc && n.has_ipv6());
            if let Err(e) = ensure_br_netfilter(v6) {
                error!(error = %e, "networks with enable_icc=false are not isolated inside their bridge");
                result = result.and(Err(e));
            }
        }
        info!(
            table = %self.table,
            networks = checked.len(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "firewall ruleset applied"
        );
        result
    }

    fn add_network(&self, n: &NetworkRules) -> Result<(), KernelError> {
        let n = Checked::new(n)?;
        let mut kept = self.guard();
        // Refused before anything changes: an icc=false network that cannot be isolated.
        if !n.icc {
            ensure_br_netfilter(n.has_ipv6())?;
        }
        // All of the network's elements in one transaction.
        let mut batch = netlink::Batch::new();
        for (set, element) in n.elements() {
            batch.add(&self.table, set, &element);
        }
        if let Err(e) = batch.commit(&mut kept, "nf_tables add network", &self.network_target(&n)) {
            if self.table_missing() {
                // apply_all (start-up) makes it.
                return Err(KernelError::NotFound {
                    what: "nftables table",
                    name: format!("inet {}", self.table),
                });
            }
            return Err(e);
        }
        enable_forwarding(n.has_ipv6())?;
        allow_localnet(&n);
        debug!(bridge = %n.bridge, "firewall elements added");
        Ok(())
    }

    fn remove_network(&self, n: &NetworkRules) -> Result<(), KernelError> {
        let n = Checked::new(n)?;
        let mut kept = self.guard();
        // Each element added then deleted in the same transaction: present or not, it is gone
        // afterwards (nftables 1.0.6 has no `destroy element`, and the kernel's DESTROYSETELEM
        // came only in 6.3).
        let mut batch = netlink::Batch::new();
        for (set, element) in n.all_elements() {
            batch.add(&self.table, set, &element);
            batch.delete(&self.table, set, &element);
        }
        match batch.commit(
            &mut kept,
            "nf_tables remove network",
            &self.network_target(&n),
        ) {
            Ok(()) => {
                debug!(bridge = %n.bridge, "firewall elements removed");
                Ok(())
            }
            // No table, no elements: nothing to remove.
            Err(_) if self.table_missing() => {
                debug!(bridge = %n.bridge, table = %self.table, "no firewall table, nothing to remove");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn change_ports(&self, remove: &[PortRule], add: &[PortRule]) -> Result<(), KernelError> {
        let started = Instant::now();
        let mut batch = netlink::Batch::new();
        // Added then deleted: present or not, gone afterwards (see `remove_network`).
        for (set, elements) in port_elements(remove)? {
            for e in &elements {
                batch.add(&self.table, set, e);
                batch.delete(&self.table, set, e);
            }
        }
        for (set, elements) in port_elements(add)? {
            batch.add_all(&self.table, set, &elements);
        }
        self.commit_ports(batch, "nf_tables change published ports")?;
        debug!(
            removed = remove.len(),
            added = add.len(),
            elapsed_us = started.elapsed().as_micros(),
            "published ports changed"
        );
        Ok(())
    }

    fn replace_ports(&self, all: &[PortRule]) -> Result<(), KernelError> {
        let mut batch = netlink::Batch::new();
        for (set, elements) in port_elements(all)? {
            batch.flush(&self.table, set);
            batch.add_all(&self.table, set, &elements);
        }
        self.commit_ports(batch, "nf_tables replace published ports")?;
        info!(ports = all.len(), "published ports applied");
        Ok(())
    }
}

impl Nftables {
    fn commit_ports(&self, batch: netlink::Batch, op: &'static str) -> Result<(), KernelError> {
        let mut kept = self.guard();
        let target = format!("{} published ports", self.target());
        match batch.commit(&mut kept, op, &target) {
            Err(_) if self.table_missing() => Err(KernelError::NotFound {
                what: "nftables table",
                name: format!("inet {}", self.table),
            }),
            other => other,
        }
    }
}

/// Each map's share of `rules`, as elements.
fn port_elements(rules: &[PortRule]) -> Result<Vec<(Set, Vec<Element>)>, KernelError> {
    let mut out: Vec<(Set, Vec<Element>)> = Set::PORTS.iter().map(|s| (*s, Vec::new())).collect();
    for r in rules {
        r.check()?;
        if let Some((_, list)) = out.iter_mut().find(|(s, _)| *s == r.set()) {
            list.push(Element::Port(*r));
        }
    }
    Ok(out)
}

/// Makes every bridge of a non-internal network route loopback-sourced packets, so that a
/// port published on 127.0.0.1 (DNATed in `output`) can leave through it, to be masqueraded.
/// Best effort: without it only the loopback path of published ports fails.
fn allow_localnet(n: &Checked) {
    if n.internal {
        return;
    }
    let key = format!("net/ipv4/conf/{}/route_localnet", n.bridge);
    if let Err(e) = set_sysctl(&key, "1") {
        warn!(error = %e, "published ports will not answer on 127.0.0.1 through this bridge");
    }
}

/// `net.ipv4.ip_forward=1`, and `net.ipv6.conf.all.forwarding=1` when IPv6 subnets exist. IPv6
/// is best effort (IPv6 may be disabled), and only turned on when needed: it also makes every
/// interface with `accept_ra=1` ignore router advertisements, which a SLAAC-configured host
/// would notice (such hosts want `accept_ra=2` on their uplink, as with Docker).
fn enable_forwarding(ipv6: bool) -> Result<(), KernelError> {
    set_sysctl("net/ipv4/ip_forward", "1")?;
    if ipv6 {
        if let Err(e) = set_ipv6_sysctl("net/ipv6/conf/all/forwarding", "1") {
            warn!(error = %e, "cannot turn IPv6 forwarding on; IPv6 subnets will not be forwarded");
        }
    }
    Ok(())
}

/// Makes bridged traffic pass the IP forward hook (see the module documentation): loads
/// `br_netfilter` if its sysctls are missing, and sets them to 1 if they are not. IPv6's is
/// best effort.
fn ensure_br_netfilter(ipv6: bool) -> Result<(), KernelError> {
    const V4: &str = "net/bridge/bridge-nf-call-iptables";
    const V6: &str = "net/bridge/bridge-nf-call-ip6tables";
    let present = || Path::new("/proc/sys").join(V4).exists();
    if !present() {
        match Command::new("modprobe").arg("br_netfilter").output() {
            Ok(out) if out.status.success() => info!("loaded br_netfilter"),
            Ok(out) => {
                debug!(stderr = %String::from_utf8_lossy(&out.stderr).trim(), "modprobe br_netfilter failed")
            }
            Err(e) => debug!(error = %e, "cannot run modprobe"),
        }
        if !present() {
            return Err(KernelError::invalid(
                "com.docker.network.bridge.enable_icc=false",
                "needs the br_netfilter kernel module (modprobe br_netfilter), so that traffic \
                 inside a bridge passes the firewall",
            ));
        }
    }
    set_if_not_one(V4)?;
    if ipv6 {
        if let Err(e) = set_if_not_one(V6) {
            warn!(error = %e, "cannot make bridged IPv6 traffic pass the firewall; enable_icc=false does not hold for IPv6");
        }
    }
    Ok(())
}

fn set_if_not_one(key: &str) -> Result<(), KernelError> {
    let current = std::fs::read_to_string(Path::new("/proc/sys").join(key))
        .map_err(|e| KernelError::os("read sysctl", key, e))?;
    if current.trim() != "1" {
        info!(key, "enabling");
        set_sysctl(key, "1")?;
    }
    Ok(())
}

/// Runs `nft -f -` with `script` on stdin, as one transaction.
pub(super) fn run_nft(
    script: &str,
    op: &'static str,
    target: impl Into<String>,
) -> Result<(), KernelError> {
    let target = target.into();
    debug!(op, %target, script, "nft -f -");
    let out = spawn_nft(&["-f", "-"], Some(script)).map_err(|e| KernelError::os(op, &target, e))?;
    check_status(&out, op, &target)
}

/// Runs `nft -j <args>` and parses its JSON output.
pub(super) fn nft_json(args: &[&str], op: &'static str) -> Result<serde_json::Value, KernelError> {
    let mut full = vec!["-j"];
    full.extend_from_slice(args);
    let target = args.join(" ");
    let out = spawn_nft(&full, None).map_err(|e| KernelError::os(op, &target, e))?;
    check_status(&out, op, &target)?;
    serde_json::from_slice(&out.stdout).map_err(|e| {
        KernelError::os(
            op,
            &target,
            io::Error::new(io::ErrorKind::InvalidData, format!("nft -j output: {e}")),
        )
    })
}

fn spawn_nft(args: &[&str], stdin: Option<&str>) -> io::Result<Output> {
    let mut child = Command::new("nft")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Written from another thread while this one collects the output, so a large script and a
    // chatty nft cannot block each other on full pipes.
    std::thread::scope(|scope| {
        let writer = child
            .stdin
            .take()
            .zip(stdin)
            .map(|(mut pipe, text)| scope.spawn(move || pipe.write_all(text.as_bytes())));
        let out = child.wait_with_output()?;
        if let Some(writer) = writer {
            match writer.join() {
                // nft stopping early (a syntax error) closes the pipe; its stderr says why.
                Ok(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => {}
                Ok(Err(e)) => return Err(e),
                Ok(Ok(())) => {}
                Err(_) => return Err(io::Error::other("the nft stdin writer panicked")),
            }
        }
        Ok(out)
    })
}

fn check_status(out: &Output, op: &'static str, target: &str) -> Result<(), KernelError> {
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(KernelError::os(
        op,
        target,
        io::Error::other(format!("nft {}: {}", out.status, stderr.trim())),
    ))
}

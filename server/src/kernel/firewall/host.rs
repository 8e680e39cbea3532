//! The one rule netbridge keeps in the host's iptables `filter` table, so that a FORWARD drop
//! policy (Docker sets one) does not cut off netbridge's bridges.
//!
//! netbridge's own chain marks the forwarded traffic it allows with [`FORWARD_MARK`]; here a
//! single fixed rule accepting that mark is made present, at the top of `DOCKER-USER` if the
//! chain exists (Docker's place for user rules, evaluated before its own chains and kept across
//! Docker restarts), else at the top of `FORWARD`. Nothing is created where no `filter` table
//! with such a chain exists: then nothing drops forwarded traffic but netbridge itself.
//!
//! How the rule is written, and why:
//! - **iptables-nft** (Debian ≥ 10, Ubuntu ≥ 20.10, RHEL ≥ 8: the common case): its tables are
//!   nftables tables `ip filter` / `ip6 filter`, so the rule is found with `nft -j` and inserted
//!   with `nft` in the very encoding iptables-nft itself uses for `-m mark --mark M/M -m comment
//!   --comment ... -j ACCEPT` (`meta mark & M == M counter accept comment "..."`), which
//!   `iptables -S` parses and shows as such; no iptables binary is needed, and Docker's own
//!   iptables calls keep working on that table.
//! - **iptables-legacy**: those tables live in the kernel's x_tables, invisible to nft. When the
//!   kernel lists a legacy `filter` table (`/proc/net/ip_tables_names`) and `iptables-legacy`
//!   (`ip6tables-legacy`) is installed, the same rule is checked (`-C`) and inserted (`-I`)
//!   with it; without the binary, a warning says what is missing.
//!
//! Docker restarting later keeps `DOCKER-USER` and its contents; a Docker installed after
//! netbridge started gets the rule at netbridge's next start-up (`apply_all`).

use std::{fs, path::PathBuf, process::Command};

use serde_json::Value;
use tracing::{debug, info, warn};

use super::{FORWARD_MARK, nft_json, run_nft};
use crate::kernel::KernelError;

/// The comment that identifies netbridge's rule (iptables shows it as `-m comment`).
pub(super) const COMMENT: &str = "netbridge: accept forwarding of its bridges";

/// Makes the accept rule present in every iptables `filter` table (IPv4 and IPv6, nft and
/// legacy) that has a FORWARD chain in the calling thread's namespace.
pub(super) fn ensure_forward_accept() -> Result<(), KernelError> {
    let result = ensure_nft();
    for (family, names, binary) in [
        ("IPv4", "ip_tables_names", "iptables-legacy"),
        ("IPv6", "ip6_tables_names", "ip6tables-legacy"),
    ] {
        if let Err(e) = ensure_legacy(names, binary) {
            warn!(family, error = %e, "cannot make sure the legacy iptables FORWARD chain accepts netbridge's traffic");
        }
    }
    result
}

/// The iptables-nft side: `ip filter` and `ip6 filter` as nftables tables.
fn ensure_nft() -> Result<(), KernelError> {
    let chains = nft_json(&["list", "chains"], "nft list chains")?;
    let mut script = String::new();
    for family in ["ip", "ip6"] {
        let Some(chain) = target_chain(&chains, family) else {
            continue;
        };
        let rules = nft_json(
            &["list", "chain", family, "filter", chain],
            "nft list host filter chain",
        )?;
        if has_our_rule(&rules) {
            debug!(family, chain, "host FORWARD accept rule already present");
            continue;
        }
        info!(
            family,
            chain, "adding the accept rule for netbridge's bridges to the host filter table"
        );
        script.push_str(&insert_rule(family, chain));
    }
    if script.is_empty() {
        return Ok(());
    }
    run_nft(
        &script,
        "nft insert host accept rule",
        "table ip/ip6 filter",
    )
}

/// `DOCKER-USER` if the family's `filter` table has it, else `FORWARD` if it has that, else
/// none (no iptables-nft filter table in this namespace).
pub(super) fn target_chain(chains: &Value, family: &str) -> Option<&'static str> {
    let names: Vec<&str> = objects(chains, "chain")
        .filter(|c| c["family"] == family && c["table"] == "filter")
        .filter_map(|c| c["name"].as_str())
        .collect();
    ["DOCKER-USER", "FORWARD"]
        .into_iter()
        .find(|wanted| names.contains(wanted))
}

/// Whether a chain listing (`nft -j list chain ...`) holds netbridge's rule, known by its comment.
pub(super) fn has_our_rule(listing: &Value) -> bool {
    objects(listing, "rule").any(|r| r["comment"] == COMMENT)
}

pub(super) fn insert_rule(family: &str, chain: &str) -> String {
    format!(
        "insert rule {family} filter {chain} meta mark & {m:#010x} == {m:#010x} counter accept comment \"{COMMENT}\"\n",
        m = FORWARD_MARK
    )
}

fn objects<'a>(listing: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    listing["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(move |o| o.get(kind))
}

/// The iptables-legacy side of one family: only when the kernel lists a legacy `filter` table
/// (reading the list loads nothing and creates nothing).
fn ensure_legacy(names_file: &str, binary: &str) -> Result<(), KernelError> {
    // thread-self: /proc/net follows the process's first thread, not the calling one.
    let path = format!("/proc/thread-self/net/{names_file}");
    let Ok(names) = fs::read_to_string(&path) else {
        return Ok(());
    };
    if !names.lines().any(|l| l.trim() == "filter") {
        return Ok(());
    }
    let Some(bin) = find_in_path(binary) else {
        warn!(
            binary,
            "a legacy iptables filter table exists, but {binary} is not installed: if its FORWARD policy drops, netbridge's bridges will not forward"
        );
        return Ok(());
    };
    let status = |args: &[&str]| -> Result<Option<i32>, KernelError> {
        Command::new(&bin)
            .args(args)
            .output()
            .map(|o| o.status.code())
            .map_err(|e| KernelError::os("run", binary, e))
    };
    let chain = if status(&["-w", "-n", "-L", "DOCKER-USER"])? == Some(0) {
        "DOCKER-USER"
    } else {
        "FORWARD"
    };
    let mark = format!("{FORWARD_MARK:#x}/{FORWARD_MARK:#x}");
    let spec = [
        "-m",
        "mark",
        "--mark",
        &mark,
        "-m",
        "comment",
        "--comment",
        COMMENT,
        "-j",
        "ACCEPT",
    ];
    let with = |op: &'static str| {
        let mut args = vec!["-w", op, chain];
        args.extend_from_slice(&spec);
        args
    };
    match status(&with("-C"))? {
        Some(0) => Ok(()),
        _ => {
            info!(
                binary,
                chain, "adding the accept rule for netbridge's bridges (legacy iptables)"
            );
            let out = Command::new(&bin)
                .args(with("-I"))
                .output()
                .map_err(|e| KernelError::os("run", binary, e))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(KernelError::os(
                    "insert the FORWARD accept rule",
                    format!("{binary} {chain}"),
                    std::io::Error::other(format!(
                        "{}: {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    )),
                ))
            }
        }
    }
}

fn find_in_path(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file())
}

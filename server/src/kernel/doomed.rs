//! Deferred deletion. Deleting a link waits for an RCU grace period (tens of milliseconds)
//! under the kernel's RTNL lock, so deletions queue behind one another. A link that is cut off
//! (down, off its bridge, its names free) is already gone for every user; it is put into one
//! interface group, and the whole group is deleted later with one RTM_DELLINK carrying
//! IFLA_GROUP (`ip link del group N`), which pays one grace period for all its links.
//!
//! The group is the durable record of what awaits deletion: it is set in the same request
//! that cuts the link off, so no link is ever cut off without being recorded, and it outlives
//! a crash of the daemon exactly as long as the links do.

use rtnetlink::{
    Handle, LinkUnspec,
    packet_route::{
        AddressFamily,
        address::AddressMessage,
        link::{LinkAttribute, LinkMessage},
    },
};
use tracing::debug;

use super::{
    Kernel, KernelError,
    error::netlink_errno,
    link::{connect_here, dump_links, get_link, link_info, validate_link_name},
    netns::{Netns, run_in_netns},
    task::{elapsed_us, run_detached},
};

/// The interface group of links awaiting deletion ("nbd" in ASCII, then 0): nothing else
/// puts links there, and no link of anyone else's is ever deleted by reaping it.
pub const DOOMED_GROUP: u32 = 0x6e62_6400;

/// The alias a doomed link carries instead of netbridge's mark: it is no longer any network's
/// or endpoint's, so nothing takes it for a live object.
pub const DOOMED_ALIAS: &str = "netbridge-doomed";

impl Kernel {
    /// Cuts an endpoint's veth off at once and leaves its deletion to [`Kernel::reap_doomed`]:
    /// host end into the doomed group, in one request; then, inside `ns` (if it is still
    /// there), the container end down (so the host end loses its carrier and the bridge
    /// disables the port) and renamed so its name (`eth0`) is free for the next connect.
    /// `Ok(false)` if the host end was already gone. Runs to the end even if the caller is
    /// dropped.
    pub async fn cut_off(
        &self,
        host_name: &str,
        ns: Option<&Netns>,
        container_name: &str,
    ) -> Result<bool, KernelError> {
        validate_link_name("link name", host_name)?;
        let handle = self.handle.clone();
        let host = host_name.to_owned();
        let inside = ns.filter(|_| !container_name.is_empty());
        // With the container end going down, the host end loses its carrier and the bridge
        // disables the port: it is left up and enslaved, because taking it down or off the
        // bridge waits for a grace period (the reaper's group delete pays that for all).
        // Without a container end to take down, the host end itself goes down.
        let down = inside.is_none();
        let doomed = run_detached(
            "cut off veth",
            async move { doom(&handle, &host, down).await },
        );
        let Some(ns) = inside else {
            return doomed.await;
        };
        // The namespace's thread starts and finds the container end while the host end is
        // cut off; it changes nothing until that is done (a crash in between must leave an
        // endpoint that reconcile sees as broken, which a host end still on its bridge with a
        // renamed peer would not be).
        let (go, host_done) = tokio::sync::oneshot::channel::<bool>();
        let (inner_name, free_name) = (container_name.to_owned(), doomed_name(host_name));
        let inside = run_in_netns(ns, "free container end", move |inner| async move {
            set_aside(&inner.handle, &inner_name, &free_name, host_done).await
        });
        let host = async move {
            let result = doomed.await;
            let _ = go.send(matches!(result, Ok(true)));
            result
        };
        let (host, inside) = tokio::join!(host, inside);
        let cut = host?;
        inside?;
        Ok(cut)
    }

    /// Cuts a bridge off for later deletion: down, into the doomed group, renamed and its IPv4
    /// addresses dropped, so a new network may take its name and (also automatically) its
    /// subnet at once. `Ok(false)` if there is no such link.
    pub async fn doom_bridge(&self, name: &str) -> Result<bool, KernelError> {
        validate_link_name("link name", name)?;
        let handle = self.handle.clone();
        let name = name.to_owned();
        run_detached("doom bridge", async move {
            let Some(msg) = get_link(&handle, &name).await? else {
                return Ok(false);
            };
            let index = msg.header.index;
            let cut = LinkUnspec::new_with_index(index)
                .down()
                .link_group(DOOMED_GROUP)
                .alias(DOOMED_ALIAS)
                .build();
            if !down_and_rename(&handle, cut, &format!("nbd{index:x}"), &name).await? {
                return Ok(false);
            }
            drop_ipv4_addresses(&handle, index, &name).await?;
            Ok(true)
        })
        .await
    }

    /// Deletes every doomed link in one request (one grace period for all), on the daemon's
    /// shared socket: for start-up, when nothing else is in flight. `Ok(false)` when there
    /// was none.
    pub async fn reap_doomed(&self) -> Result<bool, KernelError> {
        reap_group(&self.handle).await
    }

    /// Cuts off the link marked `alias` inside `ns` (an endpoint that lives only in there, a
    /// macvlan): down, into the namespace's doomed group and renamed, in one request, so its
    /// name is free and it carries nothing; [`reap_doomed_in`] deletes it. `Ok(false)` if
    /// there is no such link.
    pub async fn doom_marked_in(&self, ns: &Netns, alias: &str) -> Result<bool, KernelError> {
        let alias = alias.to_owned();
        run_in_netns(ns, "cut off link in namespace", move |inner| async move {
            let links = dump_links(&inner.handle).await?;
            let Some(l) = links
                .iter()
                .map(link_info)
                .find(|l| l.alias.as_deref() == Some(&alias))
            else {
                return Ok(false);
            };
            let cut = LinkUnspec::new_with_index(l.index)
                .down()
                .link_group(DOOMED_GROUP)
                .alias(DOOMED_ALIAS)
                .build();
            down_and_rename(&inner.handle, cut, &format!("nbm{:x}", l.index), &l.name).await
        })
        .await
    }
}

/// Deletes every doomed link inside `ns` in one request, on the namespace's own thread and
/// socket. `Ok(false)` when there was none.
pub async fn reap_doomed_in(ns: &Netns) -> Result<bool, KernelError> {
    run_in_netns(ns, "delete doomed links in namespace", |inner| async move {
        reap_group(&inner.handle).await
    })
    .await
}

/// A netlink socket of the reaper's own. The kernel handles a request in its sender's system
/// call, and a group delete lasts a grace period: on the daemon's shared socket every other
/// request would queue behind it. Open and use it on a thread of its own.
pub struct DoomedLinks {
    handle: Handle,
}

impl DoomedLinks {
    /// Opens the socket in the calling thread's namespace, driven by the current runtime.
    pub fn connect() -> Result<DoomedLinks, KernelError> {
        Ok(DoomedLinks {
            handle: connect_here("connect the reaper to netlink")?,
        })
    }

    /// Deletes every doomed link in one request. `Ok(false)` when there was none.
    pub async fn reap(&self) -> Result<bool, KernelError> {
        reap_group(&self.handle).await
    }
}

async fn reap_group(handle: &Handle) -> Result<bool, KernelError> {
    let started = std::time::Instant::now();
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::Group(DOOMED_GROUP));
    match handle.link().del_with_message(msg).execute().await {
        Ok(()) => {
            debug!(elapsed_us = elapsed_us(started), "doomed links deleted");
            Ok(true)
        }
        Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(false),
        Err(e) => Err(KernelError::netlink("delete doomed links", "group", e)),
    }
}

/// One request: into the doomed group, the mark replaced, and down if `down`.
async fn doom(handle: &Handle, name: &str, down: bool) -> Result<bool, KernelError> {
    let mut cut = LinkUnspec::new_with_name(name)
        .link_group(DOOMED_GROUP)
        .alias(DOOMED_ALIAS);
    if down {
        cut = cut.down();
    }
    let cut = cut.build();
    set_unless_gone(handle, cut, "doom link", name).await
}

/// The container end, down (a link must be down to be renamed) and renamed by its index, once
/// `host_done` says its host end was cut off. Nothing to do if it is gone: the reaper may have
/// deleted the pair already.
async fn set_aside(
    handle: &Handle,
    name: &str,
    free_name: &str,
    host_done: tokio::sync::oneshot::Receiver<bool>,
) -> Result<(), KernelError> {
    let found = get_link(handle, name).await?;
    if !host_done.await.unwrap_or(false) {
        return Ok(());
    }
    let Some(msg) = found else {
        return Ok(());
    };
    let change = LinkUnspec::new_with_index(msg.header.index).down().build();
    down_and_rename(handle, change, free_name, name).await?;
    Ok(())
}

/// `change` (which takes the link down) and a rename, as one request where the kernel renames
/// a link that is up (Linux 6.2 on: it renames first, then applies the flags); as two, down
/// first, where it refuses that (EBUSY). `Ok(false)` if the link is gone.
async fn down_and_rename(
    handle: &Handle,
    change: LinkMessage,
    new_name: &str,
    name: &str,
) -> Result<bool, KernelError> {
    let mut both = change.clone();
    both.attributes
        .push(LinkAttribute::IfName(new_name.to_owned()));
    match handle.link().set(both).execute().await {
        Ok(()) => return Ok(true),
        Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => return Ok(false),
        Err(e) if netlink_errno(&e) == Some(libc::EBUSY) => {}
        Err(e) => return Err(KernelError::netlink("cut off link", name, e)),
    }
    let index = change.header.index;
    if !set_unless_gone(handle, change, "cut off link", name).await? {
        return Ok(false);
    }
    let rename = LinkUnspec::new_with_index(index)
        .name(new_name.to_owned())
        .build();
    set_unless_gone(handle, rename, "rename cut-off link", name).await
}

/// Frees a doomed bridge's IPv4 subnets for automatic allocation at once: going down took its
/// connected routes, but its addresses would stay until the reap. An RTM_DELADDR naming no
/// address deletes the link's first one, so one request per subnet, until none is left.
async fn drop_ipv4_addresses(handle: &Handle, index: u32, name: &str) -> Result<(), KernelError> {
    loop {
        let mut first = AddressMessage::default();
        first.header.family = AddressFamily::Inet;
        first.header.index = index;
        match handle.address().del(first).execute().await {
            Ok(()) => continue,
            // None left, or the reaper took the link meanwhile.
            Err(e) if matches!(netlink_errno(&e), Some(libc::EADDRNOTAVAIL | libc::ENODEV)) => {
                return Ok(());
            }
            Err(e) => {
                return Err(KernelError::netlink(
                    "delete doomed bridge address",
                    name,
                    e,
                ));
            }
        }
    }
}

/// One RTM_SETLINK; `Ok(false)` if the link is gone.
async fn set_unless_gone(
    handle: &Handle,
    change: LinkMessage,
    op: &'static str,
    name: &str,
) -> Result<bool, KernelError> {
    match handle.link().set(change).execute().await {
        Ok(()) => Ok(true),
        Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(false),
        Err(e) => Err(KernelError::netlink(op, name, e)),
    }
}

/// The container end's name while it awaits deletion: unique, as the host end's name is.
fn doomed_name(host_name: &str) -> String {
    format!("nbd{}", host_name.trim_start_matches("veth"))
}

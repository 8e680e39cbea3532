//! The background deleter of doomed links (see `kernel::doomed`). Disconnects and network
//! removals cut links off and wake it; it deletes the whole doomed group in one request, so a
//! grace period is paid once per batch, not once per link. A round waits for a burst of
//! cut-offs to pass (see [`settle`]): a group delete holds the kernel's RTNL lock, which every
//! cut-off needs too. Wake-ups that arrive while it works fold into one more round: however far
//! behind it falls, the backlog of the daemon's namespace lives in the kernel's group (links
//! the kernel would hold anyway).
//!
//! An endpoint that lives only inside its container's namespace (a macvlan) is doomed in that
//! namespace's group; its disconnect leaves its journal entry open and hands the namespace's
//! path here, and the entry is closed once that group is deleted (a crash before that: start-up
//! deletes it). Those hand-overs are the only queue, one path and one number per disconnect.
//!
//! It runs on a thread of its own with a netlink socket of its own: a group delete blocks its
//! sender for the whole grace period, which must stall neither a tokio worker nor the
//! daemon's shared socket.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;

use super::crash;
use crate::kernel::{DoomedLinks, Netns, reap_doomed_in};
use crate::store::Store;

/// A namespace holding a doomed link of its own, and the open journal entry of the disconnect
/// that cut it off.
pub(super) struct Inside {
    pub(super) netns: String,
    pub(super) op: i64,
}

pub(super) struct Reaper {
    store: Store,
    wake: Arc<Notify>,
    inside: Arc<Mutex<Handed>>,
    /// Cut-offs under way (see [`Reaper::cutting`]).
    cutting: Arc<AtomicUsize>,
    started: OnceLock<()>,
}

/// A cut-off under way: no round starts while one is held (up to [`LONGEST_WAIT`]).
pub(super) struct Cutting {
    count: Arc<AtomicUsize>,
    wake: Arc<Notify>,
}

impl Cutting {
    fn begin(count: &Arc<AtomicUsize>, wake: &Arc<Notify>) -> Cutting {
        count.fetch_add(1, Ordering::AcqRel);
        Cutting {
            count: count.clone(),
            wake: wake.clone(),
        }
    }
}

impl Drop for Cutting {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
        self.wake.notify_one();
    }
}

/// Namespaces handed over and not yet reaped, and the journal entries not yet closed.
#[derive(Default)]
struct Handed {
    pending: Vec<Inside>,
    /// Entries a reconcile must leave alone: their disconnect is not interrupted.
    open: HashSet<i64>,
}

impl Reaper {
    pub(super) fn new(store: Store) -> Reaper {
        Reaper {
            store,
            wake: Arc::default(),
            inside: Arc::default(),
            cutting: Arc::default(),
            started: OnceLock::new(),
        }
    }

    /// Marks a disconnect or removal as under way, from before its journal entry until it has
    /// woken the reaper: a round waits until none is.
    pub(super) fn cutting(&self) -> Cutting {
        Cutting::begin(&self.cutting, &self.wake)
    }

    /// Asks for a round soon; starts the thread on first use (from the daemon's runtime, where
    /// journal entries are closed).
    pub(super) fn wake(&self) {
        self.started.get_or_init(|| {
            let round = Round {
                wake: self.wake.clone(),
                cutting: self.cutting.clone(),
                inside: self.inside.clone(),
                store: self.store.clone(),
                daemon: tokio::runtime::Handle::current(),
            };
            let spawned = std::thread::Builder::new()
                .name("netbridge-reaper".into())
                .spawn(move || reap_forever(round));
            if let Err(e) = spawned {
                // The links stay in the group until the next start-up deletes them.
                tracing::error!(error = %e, "cannot start the reaper thread");
            }
        });
        self.wake.notify_one();
    }

    /// Hands over a namespace whose own doomed group holds a link, with the journal entry to
    /// close once it is deleted; then wakes the reaper.
    pub(super) fn reap_inside(&self, netns: String, op: i64) {
        let mut handed = lock(&self.inside);
        handed.pending.push(Inside { netns, op });
        handed.open.insert(op);
        drop(handed);
        self.wake();
    }

    /// Whether the journal entry `op` is the reaper's to close (not an interrupted operation).
    pub(super) fn holds(&self, op: i64) -> bool {
        lock(&self.inside).open.contains(&op)
    }
}

fn lock(inside: &Mutex<Handed>) -> std::sync::MutexGuard<'_, Handed> {
    inside
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the reaper's thread holds.
struct Round {
    wake: Arc<Notify>,
    cutting: Arc<AtomicUsize>,
    inside: Arc<Mutex<Handed>>,
    store: Store,
    daemon: tokio::runtime::Handle,
}

fn reap_forever(round: Round) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "reaper: cannot build its runtime");
            return;
        }
    };
    runtime.block_on(async move {
        let links = match DoomedLinks::connect() {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "reaper: cannot open its netlink socket");
                return;
            }
        };
        loop {
            round.wake.notified().await;
            settle(&round.wake, &round.cutting).await;
            crash::point("reap.started");
            if let Err(e) = links.reap().await {
                // The links stay in the group: the next round, or the next start-up, takes them.
                tracing::warn!(error = %e, "cannot delete doomed links");
            }
            let pending = std::mem::take(&mut lock(&round.inside).pending);
            for i in pending {
                if reap_in(&i.netns).await {
                    let (store, inside) = (round.store.clone(), round.inside.clone());
                    round
                        .daemon
                        .spawn(async move { close(&store, &inside, i.op).await });
                }
            }
        }
    });
}

/// How long no cut-off must be under way before a round, and the longest a round waits for
/// that: a stream of cut-offs that never pauses still gets a round this often, which bounds the
/// backlog to what that stream cuts off in that time.
const QUIET: Duration = Duration::from_millis(5);
const LONGEST_WAIT: Duration = Duration::from_secs(2);

/// Lets a burst of cut-offs finish before a round: a group delete holds the kernel's RTNL lock
/// through its grace periods, and every cut-off of the burst needs that lock too; one group
/// delete after the burst costs no more than several during it. Returns once no cut-off has
/// been under way for [`QUIET`], or after [`LONGEST_WAIT`].
async fn settle(wake: &Notify, cutting: &AtomicUsize) {
    let longest = tokio::time::Instant::now() + LONGEST_WAIT;
    loop {
        let until = if cutting.load(Ordering::Acquire) > 0 {
            longest
        } else {
            longest.min(tokio::time::Instant::now() + QUIET)
        };
        if tokio::time::timeout_at(until, wake.notified())
            .await
            .is_err()
            || tokio::time::Instant::now() >= longest
        {
            return;
        }
    }
}

/// Deletes the doomed links inside the namespace at `netns`; `false` if they may be left (the
/// journal entry then stays open for the next start-up).
async fn reap_in(netns: &str) -> bool {
    // A namespace that is gone took its links with it.
    let Ok(ns) = Netns::open(Path::new(netns)) else {
        return true;
    };
    match reap_doomed_in(&ns).await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(netns, error = %e, "cannot delete doomed links in a namespace");
            false
        }
    }
}

/// Closes a handed-over disconnect's journal entry; left open (for start-up) if that fails.
async fn close(store: &Store, inside: &Mutex<Handed>, op: i64) {
    match store.end_op(op).await {
        Ok(()) => {
            lock(inside).open.remove(&op);
        }
        Err(e) => tracing::warn!(op, error = %e, "cannot close a disconnect's journal entry"),
    }
}

impl super::Daemon {
    /// At shutdown: deletes what disconnects and removals cut off and the reaper has not
    /// deleted yet, so a stopped daemon leaves no doomed link behind (a crash leaves them to
    /// the next start-up).
    pub async fn finish_teardowns(&self) {
        if let Err(e) = self.kernel.reap_doomed().await {
            tracing::warn!(error = %e, "cannot delete doomed links at shutdown");
        }
        let pending = std::mem::take(&mut lock(&self.reaper.inside).pending);
        for i in pending {
            if reap_in(&i.netns).await {
                close(&self.store, &self.reaper.inside, i.op).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_round_waits_while_a_cut_off_is_under_way() {
        let (count, wake) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
        let cutting = Cutting::begin(&count, &wake);
        let settled = {
            let (count, wake) = (count.clone(), wake.clone());
            tokio::spawn(async move { settle(&wake, &count).await })
        };
        // Far longer than QUIET, and wake-ups (other cut-offs ending) do not end the wait.
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            wake.notify_one();
        }
        assert!(!settled.is_finished(), "a round started during a cut-off");
        drop(cutting);
        let done = tokio::time::timeout(Duration::from_secs(1), settled).await;
        assert!(done.is_ok(), "no round once the cut-off ended");
        assert_eq!(count.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn a_round_waits_no_longer_than_its_bound() {
        let (count, wake) = (Arc::new(AtomicUsize::new(0)), Arc::new(Notify::new()));
        let _cutting = Cutting::begin(&count, &wake);
        let started = tokio::time::Instant::now();
        let waited = tokio::time::timeout(LONGEST_WAIT * 3, settle(&wake, &count)).await;
        assert!(waited.is_ok(), "a stream that never pauses got no round");
        assert!(started.elapsed() >= LONGEST_WAIT);
    }
}

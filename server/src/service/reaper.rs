//! The background deleter of doomed links (see `kernel::doomed`). Disconnects and network
//! removals cut links off and wake it; it deletes the whole doomed group in one request, so a
//! grace period is paid once per batch, not once per link. Wake-ups that arrive while it works
//! fold into one more round: however far behind it falls, it holds one flag, not a queue, and
//! the backlog lives in the kernel's group (links the kernel would hold anyway).
//!
//! It runs on a thread of its own with a netlink socket of its own: a group delete blocks its
//! sender for the whole grace period, which must stall neither a tokio worker nor the
//! daemon's shared socket.

use std::sync::{Arc, OnceLock};

use tokio::sync::Notify;

use super::crash;
use crate::kernel::DoomedLinks;

#[derive(Default)]
pub(super) struct Reaper {
    wake: Arc<Notify>,
    started: OnceLock<()>,
}

impl Reaper {
    /// Asks for a round soon; starts the thread on first use.
    pub(super) fn wake(&self) {
        self.started.get_or_init(|| {
            let wake = self.wake.clone();
            let spawned = std::thread::Builder::new()
                .name("netbridge-reaper".into())
                .spawn(move || reap_forever(wake));
            if let Err(e) = spawned {
                // The links stay in the group until the next start-up deletes them.
                tracing::error!(error = %e, "cannot start the reaper thread");
            }
        });
        self.wake.notify_one();
    }
}

fn reap_forever(wake: Arc<Notify>) {
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
            wake.notified().await;
            crash::point("reap.started");
            if let Err(e) = links.reap().await {
                // The links stay in the group: the next round, or the next start-up, takes them.
                tracing::warn!(error = %e, "cannot delete doomed links");
            }
        }
    });
}

impl super::Daemon {
    /// At shutdown: deletes what disconnects and removals cut off and the reaper has not
    /// deleted yet, so a stopped daemon leaves no doomed link behind (a crash leaves them to
    /// the next start-up).
    pub async fn finish_teardowns(&self) {
        if let Err(e) = self.kernel.reap_doomed().await {
            tracing::warn!(error = %e, "cannot delete doomed links at shutdown");
        }
    }
}

//! The background deleter of doomed links (see `kernel::doomed`). Disconnects and network
//! removals cut links off and wake it; it deletes the whole doomed group in one request, so a
//! grace period is paid once per batch, not once per link. Wake-ups that arrive while it works
//! fold into one more round: however far behind it falls, it holds one flag, not a queue, and
//! the backlog lives in the kernel's group (links the kernel would hold anyway).

use std::sync::{Arc, OnceLock};

use tokio::sync::Notify;

use super::crash;
use crate::kernel::Kernel;

#[derive(Default)]
pub(super) struct Reaper {
    wake: Arc<Notify>,
    started: OnceLock<()>,
}

impl Reaper {
    /// Asks for a round soon; starts the task on first use.
    pub(super) fn wake(&self, kernel: &Kernel) {
        self.started.get_or_init(|| {
            let (kernel, wake) = (kernel.clone(), self.wake.clone());
            tokio::spawn(reap_forever(kernel, wake));
        });
        self.wake.notify_one();
    }
}

async fn reap_forever(kernel: Kernel, wake: Arc<Notify>) {
    loop {
        wake.notified().await;
        crash::point("reap.started");
        if let Err(e) = kernel.reap_doomed().await {
            // The links stay in the group: the next round, or the next start-up, takes them.
            tracing::warn!(error = %e, "cannot delete doomed links");
        }
    }
}

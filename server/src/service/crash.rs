//! Crash points: a test-only switch that makes the daemon abort at a named step, so tests can
//! prove that every step of every operation is repaired at the next start-up.
//!
//! `NETBRIDGE_CRASH_AT=<step>` is read once; when an operation reaches that step the process
//! aborts on the spot, as a SIGKILL or a power cut would stop it. [`STEPS`] lists every step.

use std::sync::OnceLock;

/// Every crash point, in the order each operation reaches them.
pub const STEPS: &[&str] = &[
    "network.create.journaled",
    "network.create.row",
    "network.create.bridge",
    "network.create.firewall",
    "network.remove.journaled",
    "network.remove.firewall",
    "network.remove.bridge",
    "network.remove.row",
    "connect.journaled",
    "connect.attached",
    "connect.recorded",
    "disconnect.journaled",
    "disconnect.detached",
    "disconnect.row",
    "sandbox.create.journaled",
    "sandbox.create.row",
    "sandbox.create.netns",
    "sandbox.remove.journaled",
    "sandbox.remove.netns",
    "sandbox.remove.row",
    "container.create.journaled",
    "container.create.sandbox",
    "container.create.recorded",
    "container.start.journaled",
    "container.start.attached",
    "container.start.published",
    "container.start.running",
    "container.stop.journaled",
    "container.stop.released",
    "reap.started",
];

fn armed() -> Option<&'static str> {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    AT.get_or_init(|| {
        std::env::var("NETBRIDGE_CRASH_AT")
            .ok()
            .filter(|s| !s.is_empty())
    })
    .as_deref()
}

/// Aborts the process if the crash switch names `step`.
pub fn point(step: &'static str) {
    debug_assert!(STEPS.contains(&step), "unlisted crash point {step}");
    if armed() == Some(step) {
        tracing::error!(step, "NETBRIDGE_CRASH_AT reached: aborting");
        std::process::abort();
    }
}

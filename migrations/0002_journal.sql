-- The journal of operations that touch the kernel. A row is written before an operation's first
-- kernel call and deleted after its last, so after a crash the table holds exactly the
-- operations that were cut short; start-up reconcile rolls each of them back.
CREATE TABLE journal (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    -- create_network, remove_network, connect, disconnect, create_sandbox, remove_sandbox
    op            TEXT NOT NULL,
    -- the network, endpoint or container the operation is about
    subject       TEXT NOT NULL,
    -- what the kernel work names, as JSON: bridge, host_ifname, netns path, …
    detail        TEXT NOT NULL DEFAULT '{}',
    started_nanos INTEGER NOT NULL
);

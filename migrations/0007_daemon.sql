-- Facts about this daemon that must outlive restarts. One row: its random ID, made on first
-- start. The IPv6 ULA prefix that automatic IPv6 subnets come from is derived from it (as
-- Docker derives its own from the engine ID), so the prefix stays the same for the life of the
-- database and differs between daemons.
CREATE TABLE daemon (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    id        TEXT NOT NULL
);

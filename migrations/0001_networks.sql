-- Networks, their IPAM configuration, the containers (network namespaces) attached to them and the
-- endpoints joining the two. Addresses are unique per network by index, so the store itself refuses
-- to hand one out twice, whatever the code above it does.

CREATE TABLE networks (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    driver         TEXT NOT NULL,
    scope          TEXT NOT NULL DEFAULT 'local',
    created_nanos  INTEGER NOT NULL,
    enable_ipv4    INTEGER NOT NULL,
    enable_ipv6    INTEGER NOT NULL,
    internal       INTEGER NOT NULL DEFAULT 0,
    attachable     INTEGER NOT NULL DEFAULT 0,
    ingress        INTEGER NOT NULL DEFAULT 0,
    config_only    INTEGER NOT NULL DEFAULT 0,
    config_from    TEXT NOT NULL DEFAULT '',
    builtin        INTEGER NOT NULL DEFAULT 0,
    -- Kernel bridge device; NULL for the host and none networks.
    bridge         TEXT UNIQUE,
    -- The bridge existed before the network: it is adopted, never deleted by us.
    bridge_adopted INTEGER NOT NULL DEFAULT 0,
    mtu            INTEGER,
    options        TEXT NOT NULL DEFAULT '{}',
    labels         TEXT NOT NULL DEFAULT '{}',
    ipam_driver    TEXT NOT NULL DEFAULT 'default',
    ipam_options   TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE subnets (
    network_id TEXT NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
    family     INTEGER NOT NULL CHECK (family IN (4, 6)),
    subnet     TEXT NOT NULL,
    ip_range   TEXT,
    gateway    TEXT NOT NULL,
    aux        TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (network_id, family)
);

CREATE TABLE containers (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    -- 'sandbox': made through the API, its namespace is ours to delete;
    -- 'netns': a named namespace someone else made; 'pid': a process's namespace.
    kind          TEXT NOT NULL CHECK (kind IN ('sandbox', 'netns', 'pid')),
    netns_path    TEXT NOT NULL,
    created_nanos INTEGER NOT NULL
);

CREATE TABLE endpoints (
    id            TEXT PRIMARY KEY,
    network_id    TEXT NOT NULL REFERENCES networks(id),
    container_id  TEXT NOT NULL REFERENCES containers(id),
    host_ifname   TEXT NOT NULL UNIQUE,
    ifname        TEXT NOT NULL,
    mac           TEXT NOT NULL,
    ipv4          TEXT,
    ipv6          TEXT,
    aliases       TEXT NOT NULL DEFAULT '[]',
    gw_priority   INTEGER NOT NULL DEFAULT 0,
    created_nanos INTEGER NOT NULL,
    UNIQUE (network_id, container_id)
);
CREATE UNIQUE INDEX endpoints_ipv4 ON endpoints (network_id, ipv4) WHERE ipv4 IS NOT NULL;
CREATE UNIQUE INDEX endpoints_ipv6 ON endpoints (network_id, ipv6) WHERE ipv6 IS NOT NULL;
CREATE INDEX endpoints_container ON endpoints (container_id);

-- Host ports a running container publishes (HostConfig.PortBindings, PublishAllPorts), as
-- chosen at its start (an ephemeral or ranged host port is picked once, then kept until the
-- stop). The firewall's DNAT maps are made from these rows and the container's endpoints;
-- a stop deletes them. One host port of one protocol and host address belongs to one
-- container at most.
CREATE TABLE published_port (
    container_id   TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    proto          TEXT NOT NULL CHECK (proto IN ('tcp', 'udp', 'sctp')),
    -- '0.0.0.0' (every IPv4 address), '::' (every IPv6 address) or one host address.
    host_ip        TEXT NOT NULL,
    host_port      INTEGER NOT NULL CHECK (host_port BETWEEN 1 AND 65535),
    container_port INTEGER NOT NULL CHECK (container_port BETWEEN 1 AND 65535),
    PRIMARY KEY (proto, host_ip, host_port)
);
CREATE INDEX published_port_container ON published_port (container_id);

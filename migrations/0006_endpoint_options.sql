-- What a connect asked for beyond addresses, kept so inspect echoes it (as Docker does) and
-- reconcile can re-apply it: legacy links (JSON list of "name[:alias]"), extra link-local
-- addresses put on the interface (JSON list), and the endpoint's driver options (JSON object,
-- including com.docker.network.endpoint.sysctls).
ALTER TABLE endpoints ADD COLUMN links TEXT NOT NULL DEFAULT '[]';
ALTER TABLE endpoints ADD COLUMN link_local_ips TEXT NOT NULL DEFAULT '[]';
ALTER TABLE endpoints ADD COLUMN driver_opts TEXT NOT NULL DEFAULT '{}';

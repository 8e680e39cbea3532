-- Containers made with Docker's create body (`docker create`, `docker run -d`): what the client
-- sent, echoed by inspect; the networks it joins at each start; and whether it is started.
-- Stopping releases its endpoints but keeps this row, so the next start joins the same
-- networks with the same static addresses. Goes with its container.
CREATE TABLE container_lifecycle (
    container_id   TEXT PRIMARY KEY REFERENCES containers(id) ON DELETE CASCADE,
    -- The create body as sent (Config, HostConfig, NetworkingConfig), JSON.
    body           TEXT NOT NULL,
    -- HostConfig.NetworkMode as Docker reports it: bridge, none, host or a network's name.
    network_mode   TEXT NOT NULL,
    -- The endpoints joined at start, in order, JSON: network and endpoint settings.
    networks       TEXT NOT NULL DEFAULT '[]',
    state          TEXT NOT NULL CHECK (state IN ('created', 'running', 'exited')),
    started_nanos  INTEGER,
    finished_nanos INTEGER,
    exit_code      INTEGER NOT NULL DEFAULT 0
);

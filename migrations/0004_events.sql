-- Events in Docker's shape, kept so `GET /events?since=…` replays across restarts. Bounded: the
-- store keeps the newest 10,000 and drops the oldest.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    time_nanos INTEGER NOT NULL,
    type       TEXT NOT NULL,
    action     TEXT NOT NULL,
    actor_id   TEXT NOT NULL,
    attributes TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_time ON events (time_nanos);

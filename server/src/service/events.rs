//! Events: every completed state change is recorded in the store (so `since` replays across
//! restarts) and broadcast to live `GET /events` streams.

use std::collections::BTreeMap;

use tokio::sync::broadcast;

use super::filters::{self, Filters};
use super::{Daemon, Error, Result};
use crate::model::{self, Container, Event, Network};

/// Live subscribers lagging this far behind lose the oldest events (they are still in the store).
pub const LIVE_BUFFER: usize = 1024;

/// A validated `GET /events` filter.
pub struct EventFilter {
    filters: Filters,
}

impl EventFilter {
    pub fn new(filters: Filters) -> Result<EventFilter> {
        filters.check_keys(&["type", "event", "network", "container", "label"])?;
        Ok(EventFilter { filters })
    }

    pub fn matches(&self, e: &Event) -> bool {
        let f = &self.filters;
        let any = |key: &str, test: &dyn Fn(&str) -> bool| {
            f.get(key).is_none_or(|vs| vs.iter().any(|v| test(v)))
        };
        let names_it = |v: &str, id: Option<&String>, name: Option<&String>| {
            id.is_some_and(|id| id.starts_with(v)) || name.is_some_and(|n| n == v)
        };
        any("type", &|v| v == e.kind)
            && any("event", &|v| v == e.action)
            && any("network", &|v| {
                e.kind == "network" && names_it(v, Some(&e.actor_id), e.attributes.get("name"))
            })
            && any("container", &|v| {
                if e.kind == "container" {
                    names_it(v, Some(&e.actor_id), e.attributes.get("name"))
                } else {
                    names_it(
                        v,
                        e.attributes.get("container"),
                        e.attributes.get("containerName"),
                    )
                }
            })
            && f.get("label")
                .is_none_or(|ls| ls.iter().all(|l| filters::label_matches(l, &e.attributes)))
    }
}

pub(super) fn network_event(action: &str, n: &Network, container: Option<&Container>) -> Event {
    let mut attributes: BTreeMap<String, String> = n.labels.clone();
    attributes.insert("name".to_string(), n.name.clone());
    attributes.insert("type".to_string(), n.driver.clone());
    if let Some(c) = container {
        attributes.insert("container".to_string(), c.id.clone());
        attributes.insert("containerName".to_string(), c.name.clone());
    }
    Event {
        time_nanos: model::now_nanos(),
        kind: "network".to_string(),
        action: action.to_string(),
        actor_id: n.id.clone(),
        attributes,
    }
}

impl Daemon {
    /// Records and broadcasts an event; a failure to record is logged, never fails the
    /// operation that already happened.
    async fn emit(&self, event: Event) {
        if let Err(e) = self.store.insert_event(&event).await {
            tracing::warn!(error = %e, "cannot record an event");
        }
        self.broadcast(event);
    }

    /// Hands an event already recorded (with the operation's last write) to live streams.
    pub(super) fn broadcast(&self, event: Event) {
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _ = self.events.send(event);
    }

    pub(super) async fn emit_network(&self, action: &str, n: &Network, c: Option<&Container>) {
        self.emit(network_event(action, n, c)).await;
    }

    pub(super) async fn emit_container(&self, action: &str, c: &Container) {
        self.emit(Event {
            time_nanos: model::now_nanos(),
            kind: "container".to_string(),
            action: action.to_string(),
            actor_id: c.id.clone(),
            attributes: BTreeMap::from([("name".to_string(), c.name.clone())]),
        })
        .await;
    }

    /// A live feed of events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Recorded events between two times (Unix nanoseconds), oldest first.
    pub async fn recorded_events(&self, since: i64, until: i64) -> Result<Vec<Event>> {
        Ok(self
            .store
            .events_between(since, until)
            .await?
            .into_iter()
            .map(|(_, e)| e)
            .collect())
    }
}

/// Docker's `since`/`until`: Unix seconds (with fraction), an RFC 3339 time, or a Go duration
/// meaning that long ago.
pub fn parse_time(key: &str, value: &str) -> Result<i64> {
    filters::parse_until(value, model::now_nanos()).ok_or_else(|| {
        Error::InvalidParameter(format!(
            "invalid value for {key}: {value}: not a timestamp, date or duration"
        ))
    })
}

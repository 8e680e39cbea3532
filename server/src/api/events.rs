//! `GET /events`: Docker's event stream, JSON objects one per line. `since` replays recorded
//! events (across restarts); without `until` the stream then follows live events.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::QueryMap;
use super::wire::ErrorResponse;
use crate::model::{Event, now_nanos};
use crate::service::filters::Filters;
use crate::service::{Daemon, EventFilter, parse_time};

#[derive(Serialize, ToSchema)]
pub struct EventActor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// One event, as Docker prints it.
#[derive(Serialize, ToSchema)]
pub struct EventMessage {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: EventActor,
    pub scope: String,
    /// Unix seconds.
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

fn line(e: &Event) -> Bytes {
    let msg = EventMessage {
        kind: e.kind.clone(),
        action: e.action.clone(),
        actor: EventActor {
            id: e.actor_id.clone(),
            attributes: e.attributes.clone(),
        },
        scope: "local".to_string(),
        time: e.time_nanos.div_euclid(1_000_000_000),
        time_nano: e.time_nanos,
    };
    let mut out = serde_json::to_vec(&msg).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

/// Stream events. `since`/`until`: Unix seconds, RFC 3339 times or Go durations (that long
/// ago). Filters: `type`, `event`, `network`, `container`, `label`.
#[utoipa::path(get, path = "/events", tag = "System", operation_id = "SystemEvents",
    params(("since" = Option<String>, Query, description = "Show events since this time, then follow live ones"),
        ("until" = Option<String>, Query, description = "Stop at this time"),
        ("filters" = Option<String>, Query, description = "Filters, JSON: `{\"type\":[\"network\"]}` (keys type, event, network, container, label), or `{\"key\":{\"value\":true}}`; `null` is no filter")),
    responses((status = 200, description = "A stream of events, one JSON object per line", body = EventMessage),
        (status = 400, description = "bad parameter", body = ErrorResponse)))]
pub async fn events(State(d): State<Arc<Daemon>>, q: QueryMap) -> Result<Response, ApiError> {
    let filter = EventFilter::new(Filters::parse(q.get("filters").unwrap_or_default())?)?;
    let since = q
        .get("since")
        .filter(|s| !s.is_empty())
        .map(|v| parse_time("since", v))
        .transpose()?;
    let until = q
        .get("until")
        .filter(|s| !s.is_empty())
        .map(|v| parse_time("until", v))
        .transpose()?;
    // Subscribe before replaying, so nothing falls between the two.
    let mut live = d.subscribe();
    let started = now_nanos();
    let replay = match since {
        Some(since) => {
            d.recorded_events(since, until.unwrap_or(started).min(started))
                .await?
        }
        None => Vec::new(),
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        for e in replay.iter().filter(|e| filter.matches(e)) {
            if tx.send(line(e)).await.is_err() {
                return;
            }
        }
        if until.is_some_and(|u| u <= started) {
            return;
        }
        let deadline = until.map(|u| {
            let wait = u.saturating_sub(now_nanos()).max(0) as u64;
            tokio::time::Instant::now() + std::time::Duration::from_nanos(wait)
        });
        loop {
            let next = async {
                match deadline {
                    Some(d) => tokio::time::timeout_at(d, live.recv()).await.ok(),
                    None => Some(live.recv().await),
                }
            };
            tokio::select! {
                got = next => match got {
                    None => return, // until reached
                    Some(Ok(e)) => {
                        if e.time_nanos >= started && filter.matches(&e) && tx.send(line(&e)).await.is_err() {
                            return;
                        }
                    }
                    Some(Err(RecvError::Lagged(n))) => tracing::warn!(missed = n, "an event stream fell behind"),
                    Some(Err(RecvError::Closed)) => return,
                },
                _ = tx.closed() => return,
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        Body::from_stream(stream),
    )
        .into_response())
}

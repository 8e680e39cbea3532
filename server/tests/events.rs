//! `GET /events`: Docker's event stream, replayed from the store and followed live.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Daemon, Value, json};

fn lines(body: &str) -> Vec<Value> {
    body.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad event line {l:?}: {e}")))
        .collect()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Events in the past: `since` and `until` both given, so the stream ends.
fn replay(d: &Daemon, query: &str) -> Vec<Value> {
    let until = now_secs() + 1;
    std::thread::sleep(Duration::from_millis(1100));
    let r = d.get(&format!("/events?since=0&until={until}{query}"));
    assert_eq!(r.status, 200, "{}", r.body);
    lines(&r.body)
}

fn summary(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["Type"].as_str().unwrap_or(""),
                e["Action"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn every_change_is_an_event_in_dockers_shape_and_replays_after_restart() {
    let mut d = Daemon::start();
    let id = d.create_network(&json!({"Name": "evnet", "Labels": {"team": "a"}}));
    let r = d.raw("POST", "/containers/create?name=nbt-ev1", None, None);
    assert_eq!(r.status, 201, "{}", r.body);
    let container = r.json()["Id"].as_str().unwrap().to_string();
    assert_eq!(
        d.post("/networks/evnet/connect", &json!({"Container": "nbt-ev1"}))
            .status,
        200
    );
    assert_eq!(
        d.post(
            "/networks/evnet/disconnect",
            &json!({"Container": "nbt-ev1"})
        )
        .status,
        200
    );
    assert_eq!(d.delete("/containers/nbt-ev1?force=1").status, 204);
    assert_eq!(d.delete("/networks/evnet").status, 204);

    let all = replay(&d, "");
    assert_eq!(
        summary(&all),
        [
            "network create",
            "container create",
            "network connect",
            "network disconnect",
            "container destroy",
            "network destroy"
        ]
    );
    let create = &all[0];
    assert_eq!(create["Actor"]["ID"], id.as_str());
    assert_eq!(create["Actor"]["Attributes"]["name"], "evnet");
    assert_eq!(create["Actor"]["Attributes"]["type"], "bridge");
    assert_eq!(create["Actor"]["Attributes"]["team"], "a");
    assert_eq!(create["scope"], "local");
    let nanos = create["timeNano"].as_i64().unwrap();
    assert_eq!(create["time"].as_i64().unwrap(), nanos / 1_000_000_000);
    assert_eq!(
        all[2]["Actor"]["Attributes"]["container"],
        container.as_str()
    );

    // Filters.
    let f = |filters: Value| {
        let q = format!("&filters={}", urlencode(&filters.to_string()));
        summary(&replay(&d, &q))
    };
    assert_eq!(
        f(json!({"type": ["container"]})),
        ["container create", "container destroy"]
    );
    assert_eq!(
        f(json!({"event": ["connect", "disconnect"]})),
        ["network connect", "network disconnect"]
    );
    assert_eq!(f(json!({"network": {"evnet": true}})).len(), 4);
    assert_eq!(f(json!({"container": ["nbt-ev1"]})).len(), 4);
    assert_eq!(f(json!({"label": ["team=a"]})).len(), 4);
    assert_eq!(f(json!({"label": ["team=b"]})).len(), 0);
    let bad = d.get("/events?filters=%7B%22colour%22%3A%5B%22red%22%5D%7D");
    assert_eq!(bad.status, 400);
    assert_eq!(bad.message(), "invalid filter 'colour'");
    assert_eq!(d.get("/events?since=yesterday").status, 400);

    // Kept in SQLite: a restart replays the same history.
    d.restart();
    assert_eq!(summary(&replay(&d, "")).len(), 6);
}

#[test]
fn docker_events_follows_live_network_events() {
    let d = Daemon::start();
    let mut follower = Command::new("timeout")
        .args([
            "5",
            "docker",
            "events",
            "--filter",
            "type=network",
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ])
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .env("DOCKER_CONFIG", d.dir.join("docker-config"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("docker events");
    std::thread::sleep(Duration::from_millis(800));
    d.create_network(&json!({"Name": "livenet"}));
    assert_eq!(
        d.raw("POST", "/containers/create?name=nbt-ev2", None, None)
            .status,
        201
    );
    assert_eq!(d.delete("/containers/nbt-ev2?force=1").status, 204);
    assert_eq!(d.delete("/networks/livenet").status, 204);
    let out = {
        use std::io::Read;
        let mut s = String::new();
        follower
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        let _ = follower.wait();
        s
    };
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(
        got,
        ["network create livenet", "network destroy livenet"],
        "{out}"
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

//! Crash safety (issue 4), proved by killing the daemon:
//!
//! - the crash-point walk: for every step of `STEPS` in src/service/crash.rs (read from the
//!   source, so a new step cannot be missed), the daemon is started with
//!   `NETBRIDGE_CRASH_AT=<step>`, the operation that reaches the step is issued (the daemon
//!   aborts mid-request), the daemon is restarted without the switch, and then store and kernel
//!   must agree, reconcile must be idempotent, the interrupted operation must be wholly done or
//!   wholly undone, and repeating the client's request must succeed (2xx) — or, where the
//!   operation was wholly done, get the API's "already so" answer (409 on a create, 403 on a
//!   connect, 400 "not connected" on a disconnect, 404 on a removal, 304 on a container start
//!   or stop); the walk prints which;
//! - force-disconnect and network removal work on whatever a crash (or a vanished namespace) left;
//! - the offline `netbridge reconcile` repairs a crashed daemon's state;
//! - the reaper (`reap.started`): the daemon dies after a disconnect or remove answered, before
//!   the links it cut off are deleted; after the restart none is left and nothing live is gone;
//! - random kills: a mixed workload from 4 clients while the daemon is SIGKILLed at random
//!   moments (`NETBRIDGE_KILLS`, default 100), checked after every restart (no doomed link
//!   left either).
//!
//! Every namespace is a throwaway `nbt-…` one (the harness's, or a sandbox the daemon made under
//! that name) and is deleted even when a test fails.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use common::consistency::{assert_consistent, log_tail};
use common::{
    Daemon, Netns, Response, Rng, SandboxNames, Sleeper, Value, eventually, json, request_at, run,
};

const CRASH_ENV: &str = "NETBRIDGE_CRASH_AT";
const CRASH_RS: &str = include_str!("../src/service/crash.rs");
/// The service files that hold the `crash::point` calls.
const SERVICE_SOURCES: [&str; 5] = [
    include_str!("../src/service/networks.rs"),
    include_str!("../src/service/endpoints.rs"),
    include_str!("../src/service/containers.rs"),
    include_str!("../src/service/lifecycle.rs"),
    include_str!("../src/service/reaper.rs"),
];

/// abort() ends the process with SIGABRT.
const SIGABRT: i32 = 6;

const NET: &str = "nbt-crash";
const SUBNET: &str = "10.99.0.0/24";
const GATEWAY: &str = "10.99.0.1";

/// The names in `STEPS`, parsed from crash.rs: every `"…"` between `STEPS: &[&str] = &[` and `];`.
fn steps() -> Vec<&'static str> {
    let start = CRASH_RS
        .find("pub const STEPS")
        .expect("STEPS in src/service/crash.rs");
    let rest = &CRASH_RS[start..];
    let open = rest.find("= &[").expect("STEPS = &[") + 4;
    let close = rest.find("];").expect("end of STEPS");
    let body = &rest[open..close];
    let steps: Vec<&str> = body.split('"').skip(1).step_by(2).collect();
    assert_eq!(
        steps.len() * 2,
        body.matches('"').count(),
        "every STEPS entry is one quoted string"
    );
    steps
}

#[test]
fn every_crash_point_is_listed_and_has_a_scenario() {
    let steps = steps();
    assert!(steps.len() >= 20, "STEPS parsed: {steps:?}");
    let mut called = Vec::new();
    for src in SERVICE_SOURCES {
        for piece in src.split("crash::point(\"").skip(1) {
            called.push(piece.split('"').next().unwrap_or_default());
        }
    }
    for s in &steps {
        assert_eq!(
            called.iter().filter(|c| *c == s).count(),
            1,
            "step {s} is reached by exactly one crash::point call in src/service"
        );
        scenario_of(s);
    }
    for c in &called {
        assert!(steps.contains(c), "crash::point(\"{c}\") is not in STEPS");
    }
    println!("{} crash points listed", steps.len());
}

/// Which operation reaches a step.
#[derive(Clone, Copy, Debug)]
enum Scenario {
    NetworkCreate,
    NetworkRemove,
    /// `true`: a sandbox made through the API; `false`: a namespace netbridge did not make.
    Connect(bool),
    /// Connect by the PID of a process in a namespace; that process exits after the crash,
    /// before a reconcile, while another one lives on in the namespace.
    ConnectByPid,
    Disconnect,
    SandboxCreate,
    /// `true`: the sandbox is connected, removed with `force=1`.
    SandboxRemove(bool),
    /// A macvlan network: `true` without a parent (an isolated one of its own), `false` on
    /// the parent `mvp0`, a veth whose peer holds the gateway in an outside namespace.
    MacvlanCreate(bool),
    MacvlanRemove(bool),
    /// A sandbox connected to (or disconnected from) a macvlan network on `mvp0`.
    MacvlanConnect,
    MacvlanDisconnect,
    /// `POST /containers/create` with Docker's body (NetworkMode: the test network).
    ContainerCreate,
    /// `POST /containers/{id}/start` of such a container: it joins the test network.
    ContainerStart,
    /// `POST /containers/{id}/stop` of such a container, started.
    ContainerStop,
    /// The background deletion of what a disconnect or a network removal cut off: the request
    /// is answered, then the daemon dies before the links are deleted.
    Reap(Reaped),
}

/// What the reaper was to delete when the daemon died.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Reaped {
    /// A bridge endpoint's veth, in the daemon's namespace.
    Disconnect,
    /// A removed network's bridge.
    Remove,
    /// A macvlan, doomed inside the container's namespace.
    MacvlanDisconnect,
}

fn scenario_of(step: &str) -> Vec<Scenario> {
    let prefix = step.rsplit_once('.').map(|(p, _)| p).unwrap_or(step);
    match prefix {
        "network.create" => vec![
            Scenario::NetworkCreate,
            Scenario::MacvlanCreate(true),
            Scenario::MacvlanCreate(false),
        ],
        "network.remove" => vec![
            Scenario::NetworkRemove,
            Scenario::MacvlanRemove(true),
            Scenario::MacvlanRemove(false),
        ],
        "connect" => vec![
            Scenario::Connect(true),
            Scenario::Connect(false),
            Scenario::ConnectByPid,
            Scenario::MacvlanConnect,
        ],
        "disconnect" => vec![Scenario::Disconnect, Scenario::MacvlanDisconnect],
        "sandbox.create" => vec![Scenario::SandboxCreate],
        "sandbox.remove" => vec![
            Scenario::SandboxRemove(false),
            Scenario::SandboxRemove(true),
        ],
        "container.create" => vec![Scenario::ContainerCreate],
        "container.start" => vec![Scenario::ContainerStart],
        "container.stop" => vec![Scenario::ContainerStop],
        "reap" => vec![
            Scenario::Reap(Reaped::Disconnect),
            Scenario::Reap(Reaped::Remove),
            Scenario::Reap(Reaped::MacvlanDisconnect),
        ],
        _ => panic!("crash point {step} has no scenario in tests/crash.rs: add one"),
    }
}

// ---- helpers ----

fn net_body() -> Value {
    json!({"Name": NET, "IPAM": {"Config": [{"Subnet": SUBNET}]}})
}

fn create_net(d: &Daemon) {
    let r = d.post("/networks/create", &net_body());
    assert_eq!(r.status, 201, "create {NET}: {}", r.body);
}

fn create_sandbox(d: &Daemon, name: &str) {
    let r = d.post(&format!("/containers/create?name={name}"), &json!({}));
    assert_eq!(r.status, 201, "create sandbox {name}: {}", r.body);
}

fn connect(d: &Daemon, net: &str, container: &str) -> Response {
    d.post(
        &format!("/networks/{net}/connect"),
        &json!({"Container": container}),
    )
}

fn disconnect(d: &Daemon, net: &str, container: &str, force: bool) -> Response {
    d.post(
        &format!("/networks/{net}/disconnect"),
        &json!({"Container": container, "Force": force}),
    )
}

fn expect(r: &Response, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body);
}

/// The entry of a network's `Containers` whose `Name` is `name`.
fn member(d: &Daemon, net: &str, name: &str) -> Option<Value> {
    let r = d.get(&format!("/networks/{net}"));
    assert_eq!(r.status, 200, "inspect {net}: {}", r.body);
    r.json()["Containers"]
        .as_object()
        .cloned()
        .unwrap_or_default()
        .into_values()
        .find(|v| v["Name"] == name)
}

/// The interfaces of a named namespace other than `lo`.
fn interfaces(ns: &str) -> Vec<String> {
    let out = run("ip", &["-j", "-n", ns, "link", "show"]);
    assert!(out.status.success(), "ip -n {ns} link: {out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("ip -j");
    v.as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|l| l["ifname"].as_str().map(str::to_string))
        .filter(|n| n != "lo")
        .collect()
}

fn netns_exists(name: &str) -> bool {
    std::path::Path::new("/run/netns").join(name).exists()
}

/// In the walk nothing but netbridge makes links in the daemon's namespace, so every bridge
/// and veth there must carry the mark (the checker has verified that marked ones are claimed).
fn no_unmarked_links(d: &Daemon, context: &str) {
    let out = run("ip", &["-j", "-d", "-n", &d.ns.name, "link", "show"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("ip -j");
    for l in v.as_array().cloned().unwrap_or_default() {
        let kind = l["linkinfo"]["info_kind"].as_str().unwrap_or_default();
        let alias = l["ifalias"].as_str().unwrap_or_default();
        // The macvlan scenarios' parent is the test's own.
        if l["ifname"] == MACVLAN_PARENT {
            continue;
        }
        assert!(
            !(kind == "bridge" || kind == "veth") || alias.starts_with("netbridge:"),
            "{context}: unmarked {kind} {} left in the daemon's namespace\n{}",
            l["ifname"],
            log_tail(d, 60)
        );
    }
}

/// Links in the daemon's namespace still awaiting deletion (cut off by a disconnect or remove).
fn doomed_links(d: &Daemon) -> Vec<String> {
    let out = run("ip", &["-j", "-n", &d.ns.name, "link", "show"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("ip -j");
    v.as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|l| l["ifalias"] == "netbridge-doomed")
        .filter_map(|l| l["ifname"].as_str().map(str::to_string))
        .collect()
}

/// Sends a request that is answered (or cut off by the abort) and makes the daemon abort in
/// the background, at `step`; checks it did and restarts it without the switch, then makes
/// the walk's checks and that nothing awaits deletion any more.
fn crash_behind(
    d: &mut Daemon,
    step: &str,
    after: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) {
    let text = body.map(Value::to_string);
    let r = d.try_request(
        method,
        path,
        text.as_ref().map(|_| "application/json"),
        text.as_deref(),
    );
    if let Ok(r) = &r {
        assert!(
            [0, 200, 204].contains(&r.status),
            "{step}: {method} {path} answered {}: {}",
            r.status,
            r.body
        );
    }
    let status = d
        .wait_exit(30)
        .unwrap_or_else(|| panic!("{step}: the daemon did not abort\n{}", log_tail(d, 40)));
    assert_eq!(
        status.signal(),
        Some(SIGABRT),
        "{step}: ended with {status}"
    );
    d.restart_with_env(&[]);
    assert_consistent(d, after);
    no_unmarked_links(d, after);
    assert_eq!(
        doomed_links(d),
        Vec::<String>::new(),
        "{after}: doomed links left"
    );
}

/// A crash in the reaper: what was cut off is deleted at start-up, and nothing live is: a
/// second container stays connected and working, a network re-created at once works.
fn reap_walk(
    d: &mut Daemon,
    names: &SandboxNames,
    step: &str,
    after: &str,
    what: Reaped,
) -> Outcome {
    let _out = (what == Reaped::MacvlanDisconnect).then(|| macvlan_outside(d));
    if what == Reaped::MacvlanDisconnect {
        expect(
            &d.post("/networks/create", &macvlan_body(false)),
            201,
            "create",
        );
    } else {
        create_net(d);
    }
    let (gone, stays) = (names.fresh(), names.fresh());
    create_sandbox(d, &gone);
    create_sandbox(d, &stays);
    if what != Reaped::Remove {
        expect(&connect(d, NET, &gone), 200, "connect");
        expect(&connect(d, NET, &stays), 200, "connect");
        let body = json!({"Container": gone});
        crash_behind(
            d,
            step,
            after,
            "POST",
            &format!("/networks/{NET}/disconnect"),
            Some(&body),
        );
        assert!(
            member(d, NET, &gone).is_none(),
            "{after}: the disconnect was answered, yet undone"
        );
        assert_eq!(
            interfaces(&gone),
            Vec::<String>::new(),
            "{after}: {gone} has interfaces"
        );
        assert!(
            member(d, NET, &stays).is_some(),
            "{after}: {stays} lost its endpoint"
        );
        assert_eq!(
            interfaces(&stays),
            vec!["eth0".to_string()],
            "{after}: {stays}'s eth0"
        );
        assert!(
            eventually(10, || run(
                "ip",
                &["netns", "exec", &stays, "ping", "-c1", "-W1", GATEWAY]
            )
            .status
            .success()),
            "{after}: {stays} cannot reach the gateway"
        );
        expect(
            &disconnect(d, NET, &stays, false),
            200,
            "disconnect the other",
        );
        prove_usable(d, &gone, &gone);
    } else {
        crash_behind(d, step, after, "DELETE", &format!("/networks/{NET}"), None);
        expect(
            &d.get(&format!("/networks/{NET}")),
            404,
            &format!("{after}: inspect"),
        );
        create_net(d);
        prove_usable(d, &stays, &stays);
    }
    Outcome::Done
}

/// Connects `container` to `net`, pings the gateway from its namespace, disconnects: the
/// network and the container are usable.
fn prove_usable(d: &Daemon, ns: &str, container: &str) {
    expect(
        &connect(d, NET, container),
        200,
        &format!("connect {container}"),
    );
    assert!(
        eventually(10, || run(
            "ip",
            &["netns", "exec", ns, "ping", "-c1", "-W1", GATEWAY]
        )
        .status
        .success()),
        "{container} cannot reach the gateway {GATEWAY}"
    );
    expect(
        &disconnect(d, NET, container, false),
        200,
        &format!("disconnect {container}"),
    );
}

/// Issues the request that reaches `step`, checks the daemon aborted there without answering,
/// and restarts it without the crash switch.
fn crash(d: &mut Daemon, step: &str, method: &str, path: &str, body: Option<&Value>) {
    let text = body.map(Value::to_string);
    let r = d.try_request(
        method,
        path,
        text.as_ref().map(|_| "application/json"),
        text.as_deref(),
    );
    if let Ok(r) = &r {
        assert_eq!(
            r.status, 0,
            "{step}: {method} {path} was answered ({}) instead of the daemon aborting: {}",
            r.status, r.body
        );
    }
    let status = d.wait_exit(30).unwrap_or_else(|| {
        panic!(
            "{step}: {method} {path} did not make the daemon abort\n{}",
            log_tail(d, 40)
        )
    });
    assert_eq!(
        status.signal(),
        Some(SIGABRT),
        "{step}: daemon ended with {status}, not by abort()"
    );
    assert!(
        d.log().contains("NETBRIDGE_CRASH_AT reached"),
        "{step}: no crash-point message in the log"
    );
    d.restart_with_env(&[]);
}

/// [`crash`], then the checks every crash-walk step makes: store and kernel agree, and no
/// link without netbridge's mark was left behind.
fn crash_and_check(
    d: &mut Daemon,
    step: &str,
    after: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) {
    crash(d, step, method, path, body);
    assert_consistent(d, after);
    no_unmarked_links(d, after);
}

/// Whether an interrupted operation was wholly done or wholly undone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    Undone,
    /// A forced sandbox removal cut short after its disconnects (each its own journaled
    /// operation) had finished: the sandbox stands, without its endpoints.
    UndoneButDisconnected,
}

/// One crash run: crash at `step` during `scenario`, restart, check. Returns the outcome.
fn walk(step: &str, scenario: Scenario) -> Outcome {
    let names = SandboxNames::new();
    let mut d = Daemon::start_with_env(&[(CRASH_ENV, step)]);
    let after = format!("after a crash at {step} ({scenario:?})");
    let outcome = match scenario {
        Scenario::NetworkCreate => {
            crash_and_check(
                &mut d,
                step,
                &after,
                "POST",
                "/networks/create",
                Some(&net_body()),
            );
            let outcome = match d.get(&format!("/networks/{NET}")).status {
                200 => Outcome::Done,
                404 => Outcome::Undone,
                other => panic!("{after}: inspect {NET} answered {other}"),
            };
            let again = d.post("/networks/create", &net_body());
            match outcome {
                Outcome::Undone | Outcome::UndoneButDisconnected => {
                    expect(&again, 201, &format!("{after}: create again"))
                }
                Outcome::Done => expect(
                    &again,
                    409,
                    &format!("{after}: create again (already done)"),
                ),
            }
            assert_consistent(&d, &format!("{after}, create repeated"));
            let ns = Netns::new("nbt");
            prove_usable(&d, &ns.name, &ns.name);
            outcome
        }
        Scenario::NetworkRemove => {
            create_net(&d);
            crash_and_check(
                &mut d,
                step,
                &after,
                "DELETE",
                &format!("/networks/{NET}"),
                None,
            );
            let outcome = match d.get(&format!("/networks/{NET}")).status {
                200 => Outcome::Undone,
                404 => Outcome::Done,
                other => panic!("{after}: inspect {NET} answered {other}"),
            };
            if outcome == Outcome::Undone {
                // The network is whole: it still works.
                let ns = Netns::new("nbt");
                prove_usable(&d, &ns.name, &ns.name);
            }
            let again = d.delete(&format!("/networks/{NET}"));
            match outcome {
                Outcome::Undone | Outcome::UndoneButDisconnected => {
                    expect(&again, 204, &format!("{after}: remove again"))
                }
                Outcome::Done => expect(
                    &again,
                    404,
                    &format!("{after}: remove again (already done)"),
                ),
            }
            expect(&d.get(&format!("/networks/{NET}")), 404, "removed");
            assert_consistent(&d, &format!("{after}, remove repeated"));
            no_unmarked_links(&d, &after);
            outcome
        }
        Scenario::Connect(sandbox) => {
            create_net(&d);
            let netns;
            let name = if sandbox {
                let name = names.fresh();
                create_sandbox(&d, &name);
                name
            } else {
                netns = Netns::new("nbt");
                netns.name.clone()
            };
            let body = json!({"Container": name});
            crash_and_check(
                &mut d,
                step,
                &after,
                "POST",
                &format!("/networks/{NET}/connect"),
                Some(&body),
            );
            let outcome = if member(&d, NET, &name).is_some() {
                Outcome::Done
            } else {
                assert_eq!(
                    interfaces(&name),
                    Vec::<String>::new(),
                    "{after}: undone, yet {name} has interfaces"
                );
                let c = d.get(&format!("/containers/{name}/json"));
                if sandbox {
                    assert_eq!(c.status, 200, "{after}: the sandbox stays: {}", c.body);
                    assert_eq!(
                        c.json()["NetworkSettings"]["Networks"],
                        json!({}),
                        "{after}: undone, yet the sandbox shows networks"
                    );
                } else {
                    assert_eq!(
                        c.status, 404,
                        "{after}: a namespace netbridge did not make is recorded only while connected: {}",
                        c.body
                    );
                }
                Outcome::Undone
            };
            let again = connect(&d, NET, &name);
            match outcome {
                Outcome::Undone | Outcome::UndoneButDisconnected => {
                    expect(&again, 200, &format!("{after}: connect again"))
                }
                Outcome::Done => expect(
                    &again,
                    403,
                    &format!("{after}: connect again (already done)"),
                ),
            }
            let e = member(&d, NET, &name).expect("connected after the repeat");
            assert_eq!(e["IPv4Address"], "10.99.0.2/24", "{after}: {e}");
            assert_consistent(&d, &format!("{after}, connect repeated"));
            assert!(
                eventually(10, || run(
                    "ip",
                    &["netns", "exec", &name, "ping", "-c1", "-W1", GATEWAY]
                )
                .status
                .success()),
                "{after}: {name} cannot reach the gateway"
            );
            expect(&disconnect(&d, NET, &name, false), 200, "disconnect");
            outcome
        }
        Scenario::ConnectByPid => connect_by_pid(&mut d, step, &after),
        Scenario::MacvlanCreate(_)
        | Scenario::MacvlanRemove(_)
        | Scenario::MacvlanConnect
        | Scenario::MacvlanDisconnect => macvlan_walk(&mut d, step, scenario, &after, &names),
        Scenario::Reap(what) => reap_walk(&mut d, &names, step, &after, what),
        Scenario::Disconnect => {
            create_net(&d);
            let name = names.fresh();
            create_sandbox(&d, &name);
            expect(&connect(&d, NET, &name), 200, "connect");
            let body = json!({"Container": name});
            crash_and_check(
                &mut d,
                step,
                &after,
                "POST",
                &format!("/networks/{NET}/disconnect"),
                Some(&body),
            );
            let outcome = if member(&d, NET, &name).is_some() {
                Outcome::Undone
            } else {
                assert_eq!(
                    interfaces(&name),
                    Vec::<String>::new(),
                    "{after}: done, yet {name} has interfaces"
                );
                Outcome::Done
            };
            let again = disconnect(&d, NET, &name, false);
            match outcome {
                Outcome::Undone | Outcome::UndoneButDisconnected => {
                    expect(&again, 200, &format!("{after}: disconnect again"))
                }
                Outcome::Done => {
                    expect(
                        &again,
                        400,
                        &format!("{after}: disconnect again (already done)"),
                    );
                    assert!(
                        again.message().contains("is not connected"),
                        "{}",
                        again.body
                    );
                }
            }
            assert!(member(&d, NET, &name).is_none());
            // What the repeated disconnect cut off goes with the reaper's next round.
            assert!(
                eventually(10, || interfaces(&name).is_empty()),
                "{after}: interfaces left: {:?}",
                interfaces(&name)
            );
            assert_consistent(&d, &format!("{after}, disconnect repeated"));
            // Its address was freed: connecting again gets the lowest one back.
            expect(&connect(&d, NET, &name), 200, "reconnect");
            let e = member(&d, NET, &name).expect("reconnected");
            assert_eq!(e["IPv4Address"], "10.99.0.2/24", "{after}: {e}");
            assert_consistent(&d, &format!("{after}, reconnected"));
            outcome
        }
        Scenario::SandboxCreate => {
            create_net(&d);
            let name = names.fresh();
            crash_and_check(
                &mut d,
                step,
                &after,
                "POST",
                &format!("/containers/create?name={name}"),
                Some(&json!({})),
            );
            let outcome = match d.get(&format!("/containers/{name}/json")).status {
                200 => Outcome::Done,
                404 => {
                    assert!(
                        !netns_exists(&name),
                        "{after}: undone, yet /run/netns/{name} exists"
                    );
                    Outcome::Undone
                }
                other => panic!("{after}: inspect {name} answered {other}"),
            };
            let again = d.post(&format!("/containers/create?name={name}"), &json!({}));
            match outcome {
                Outcome::Undone | Outcome::UndoneButDisconnected => {
                    expect(&again, 201, &format!("{after}: create again"))
                }
                Outcome::Done => expect(
                    &again,
                    409,
                    &format!("{after}: create again (already done)"),
                ),
            }
            assert!(netns_exists(&name));
            assert_consistent(&d, &format!("{after}, create repeated"));
            prove_usable(&d, &name, &name);
            outcome
        }
        Scenario::SandboxRemove(connected) => {
            let name = names.fresh();
            create_sandbox(&d, &name);
            let path = if connected {
                create_net(&d);
                expect(&connect(&d, NET, &name), 200, "connect");
                format!("/containers/{name}?force=1")
            } else {
                format!("/containers/{name}")
            };
            crash_and_check(&mut d, step, &after, "DELETE", &path, None);
            let outcome = match d.get(&format!("/containers/{name}/json")).status {
                200 => {
                    assert!(netns_exists(&name), "{after}: undone, yet no namespace");
                    if connected && member(&d, NET, &name).is_none() {
                        Outcome::UndoneButDisconnected
                    } else {
                        Outcome::Undone
                    }
                }
                404 => {
                    assert!(
                        !netns_exists(&name),
                        "{after}: done, yet /run/netns/{name} exists"
                    );
                    Outcome::Done
                }
                other => panic!("{after}: inspect {name} answered {other}"),
            };
            let again = d.delete(&path);
            match outcome {
                Outcome::Undone | Outcome::UndoneButDisconnected => {
                    expect(&again, 204, &format!("{after}: remove again"))
                }
                Outcome::Done => expect(
                    &again,
                    404,
                    &format!("{after}: remove again (already done)"),
                ),
            }
            assert!(!netns_exists(&name), "{after}: namespace left");
            assert_consistent(&d, &format!("{after}, remove repeated"));
            outcome
        }
        Scenario::ContainerCreate => container_create(&mut d, &names, step, &after),
        Scenario::ContainerStart => container_start(&mut d, &names, step, &after),
        Scenario::ContainerStop => container_stop(&mut d, &names, step, &after),
    };
    names.remove_all(&d);
    assert_consistent(&d, &format!("{after}, cleaned up"));
    outcome
}

/// The macvlan scenarios' parent in the daemon's namespace.
const MACVLAN_PARENT: &str = "mvp0";

/// The outside network of the macvlan scenarios: `mvp0` in the daemon's namespace, its peer in
/// a throwaway namespace holding the gateway's address.
fn macvlan_outside(d: &Daemon) -> Netns {
    let out = Netns::new("nbt");
    d.ip(&[
        "link",
        "add",
        MACVLAN_PARENT,
        "type",
        "veth",
        "peer",
        "name",
        "out0",
        "netns",
        &out.name,
    ]);
    d.ip(&["link", "set", MACVLAN_PARENT, "up"]);
    out.ip(&["addr", "add", &format!("{GATEWAY}/24"), "dev", "out0"]);
    out.ip(&["link", "set", "out0", "up"]);
    out
}

fn macvlan_body(own_parent: bool) -> Value {
    if own_parent {
        json!({"Name": NET, "Driver": "macvlan", "IPAM": {"Config": [{"Subnet": SUBNET}]}})
    } else {
        json!({"Name": NET, "Driver": "macvlan", "Options": {"parent": MACVLAN_PARENT},
               "IPAM": {"Config": [{"Subnet": SUBNET, "Gateway": GATEWAY}]}})
    }
}

/// Whether the daemon's namespace holds a link named `dm-…`: an isolated macvlan parent.
fn has_isolated_parent(d: &Daemon) -> bool {
    let out = run("ip", &["-j", "-n", &d.ns.name, "link", "show"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v.as_array().is_some_and(|ls| {
        ls.iter()
            .any(|l| l["ifname"].as_str().is_some_and(|n| n.starts_with("dm-")))
    })
}

/// The macvlan scenarios: the same promises as the bridge's (wholly done or undone, repeated
/// requests succeed or get the "already so" answer, store and kernel agree), and an isolated
/// parent exists exactly while its network does.
fn macvlan_walk(
    d: &mut Daemon,
    step: &str,
    scenario: Scenario,
    after: &str,
    names: &SandboxNames,
) -> Outcome {
    let _out = macvlan_outside(d);
    let own = matches!(
        scenario,
        Scenario::MacvlanCreate(true) | Scenario::MacvlanRemove(true)
    );
    let body = macvlan_body(own);
    match scenario {
        Scenario::MacvlanCreate(_) => {
            crash_and_check(d, step, after, "POST", "/networks/create", Some(&body));
            let outcome = match d.get(&format!("/networks/{NET}")).status {
                200 => Outcome::Done,
                404 => Outcome::Undone,
                other => panic!("{after}: inspect {NET} answered {other}"),
            };
            assert_eq!(
                has_isolated_parent(d),
                own && outcome == Outcome::Done,
                "{after}: an isolated parent exists exactly while its network does"
            );
            let again = d.post("/networks/create", &body);
            let want = if outcome == Outcome::Done { 409 } else { 201 };
            expect(&again, want, &format!("{after}: create again"));
            assert_consistent(d, &format!("{after}, create repeated"));
            if !own {
                let name = names.fresh();
                create_sandbox(d, &name);
                prove_usable(d, &name, &name);
            }
            expect(&d.delete(&format!("/networks/{NET}")), 204, "remove");
            assert!(!has_isolated_parent(d), "{after}: isolated parent left");
            outcome
        }
        Scenario::MacvlanRemove(_) => {
            expect(&d.post("/networks/create", &body), 201, "create");
            crash_and_check(d, step, after, "DELETE", &format!("/networks/{NET}"), None);
            let outcome = match d.get(&format!("/networks/{NET}")).status {
                200 => Outcome::Undone,
                404 => Outcome::Done,
                other => panic!("{after}: inspect {NET} answered {other}"),
            };
            assert_eq!(
                has_isolated_parent(d),
                own && outcome == Outcome::Undone,
                "{after}: an isolated parent exists exactly while its network does"
            );
            if outcome == Outcome::Undone && !own {
                let name = names.fresh();
                create_sandbox(d, &name);
                prove_usable(d, &name, &name);
            }
            let again = d.delete(&format!("/networks/{NET}"));
            let want = if outcome == Outcome::Done { 404 } else { 204 };
            expect(&again, want, &format!("{after}: remove again"));
            assert!(!has_isolated_parent(d), "{after}: isolated parent left");
            assert_consistent(d, &format!("{after}, remove repeated"));
            outcome
        }
        Scenario::MacvlanConnect => {
            expect(&d.post("/networks/create", &body), 201, "create");
            let name = names.fresh();
            create_sandbox(d, &name);
            let req = json!({"Container": name});
            let path = format!("/networks/{NET}/connect");
            crash_and_check(d, step, after, "POST", &path, Some(&req));
            let outcome = if member(d, NET, &name).is_some() {
                Outcome::Done
            } else {
                assert_eq!(
                    interfaces(&name),
                    Vec::<String>::new(),
                    "{after}: undone, yet {name} has interfaces"
                );
                Outcome::Undone
            };
            let want = if outcome == Outcome::Done { 403 } else { 200 };
            expect(
                &connect(d, NET, &name),
                want,
                &format!("{after}: connect again"),
            );
            assert_consistent(d, &format!("{after}, connect repeated"));
            assert!(
                eventually(10, || run(
                    "ip",
                    &["netns", "exec", &name, "ping", "-c1", "-W1", GATEWAY]
                )
                .status
                .success()),
                "{after}: {name} cannot reach the gateway"
            );
            expect(&disconnect(d, NET, &name, false), 200, "disconnect");
            outcome
        }
        _ => {
            expect(&d.post("/networks/create", &body), 201, "create");
            let name = names.fresh();
            create_sandbox(d, &name);
            expect(&connect(d, NET, &name), 200, "connect");
            let req = json!({"Container": name});
            let path = format!("/networks/{NET}/disconnect");
            crash_and_check(d, step, after, "POST", &path, Some(&req));
            let outcome = if member(d, NET, &name).is_some() {
                Outcome::Undone
            } else {
                Outcome::Done
            };
            let want = if outcome == Outcome::Done { 400 } else { 200 };
            expect(
                &disconnect(d, NET, &name, false),
                want,
                &format!("{after}: disconnect again"),
            );
            // What the repeated disconnect cut off goes with the reaper's next round.
            assert!(
                eventually(10, || interfaces(&name).is_empty()),
                "{after}: interfaces left: {:?}",
                interfaces(&name)
            );
            assert_consistent(d, &format!("{after}, disconnect repeated"));
            expect(&connect(d, NET, &name), 200, "reconnect");
            let e = member(d, NET, &name).expect("reconnected");
            assert_eq!(e["IPv4Address"], "10.99.0.2/24", "{after}: {e}");
            outcome
        }
    }
}

/// Docker's create body for a container on the test network.
fn container_body() -> Value {
    json!({"Image": "busybox", "Cmd": ["sleep", "1"], "HostConfig": {"NetworkMode": NET}})
}

/// `State.Status` of a container, `None` when there is none.
fn run_state(d: &Daemon, name: &str) -> Option<String> {
    let r = d.get(&format!("/containers/{name}/json"));
    match r.status {
        200 => r.json()["State"]["Status"].as_str().map(str::to_string),
        404 => None,
        other => panic!("inspect {name} answered {other}: {}", r.body),
    }
}

/// A started container on the test network reaches the gateway from 10.99.0.2.
fn prove_started(d: &Daemon, name: &str, after: &str) {
    let e = member(d, NET, name).expect("a member once started");
    assert_eq!(e["IPv4Address"], "10.99.0.2/24", "{after}: {e}");
    assert!(
        eventually(10, || run(
            "ip",
            &["netns", "exec", name, "ping", "-c1", "-W1", GATEWAY]
        )
        .status
        .success()),
        "{after}: {name} cannot reach the gateway"
    );
}

/// [`Scenario::ContainerCreate`]: the container is wholly made (created, nothing attached)
/// or wholly undone (name free, no namespace).
fn container_create(d: &mut Daemon, names: &SandboxNames, step: &str, after: &str) -> Outcome {
    create_net(d);
    let name = names.fresh();
    let path = format!("/containers/create?name={name}");
    crash_and_check(d, step, after, "POST", &path, Some(&container_body()));
    let outcome = match run_state(d, &name).as_deref() {
        Some("created") => Outcome::Done,
        None => {
            assert!(
                !netns_exists(&name),
                "{after}: undone, yet /run/netns/{name} exists"
            );
            Outcome::Undone
        }
        Some(other) => panic!("{after}: {name} is {other}"),
    };
    if outcome == Outcome::Done {
        assert_eq!(
            interfaces(&name),
            Vec::<String>::new(),
            "{after}: nothing before start"
        );
    }
    let again = d.post(&path, &container_body());
    match outcome {
        Outcome::Done => expect(
            &again,
            409,
            &format!("{after}: create again (already done)"),
        ),
        _ => expect(&again, 201, &format!("{after}: create again")),
    }
    assert_consistent(d, &format!("{after}, create repeated"));
    expect(
        &d.post(&format!("/containers/{name}/start"), &json!({})),
        204,
        "start",
    );
    prove_started(d, &name, after);
    outcome
}

/// A container body that publishes host port 8080 (`-p 8080:80`).
fn publishing_body() -> Value {
    json!({"Image": "busybox", "Cmd": ["sleep", "1"], "ExposedPorts": {"80/tcp": {}},
        "HostConfig": {"NetworkMode": NET,
            "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}}})
}

/// The elements of the firewall's map of ports published on every IPv4 address.
fn published(d: &Daemon) -> Vec<String> {
    let out = run(
        "ip",
        &[
            "netns",
            "exec",
            &d.ns.name,
            "nft",
            "-j",
            "list",
            "map",
            "inet",
            "netbridge",
            "ports_v4",
        ],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["map"]["elem"].as_array())
        .flatten()
        .map(Value::to_string)
        .collect()
}

/// Whether another program could bind TCP 8080 in the daemon's namespace.
fn port_free(d: &Daemon) -> bool {
    let script = "import socket\ns=socket.socket()\ns.bind(('0.0.0.0',8080))";
    run(
        "nsenter",
        &[
            &format!("--net=/run/netns/{}", d.ns.name),
            "python3",
            "-c",
            script,
        ],
    )
    .status
    .success()
}

/// A started container publishes exactly its one port, held; one not started publishes none.
fn expect_published(d: &Daemon, started: bool, after: &str) {
    let map = published(d);
    if started {
        assert_eq!(map.len(), 1, "{after}: {map:?}");
        assert!(map[0].contains("10.99.0.2"), "{after}: {map:?}");
        assert!(!port_free(d), "{after}: 8080 is not held");
    } else {
        assert_eq!(
            map,
            Vec::<String>::new(),
            "{after}: published while not started"
        );
        assert!(port_free(d), "{after}: 8080 is still held");
    }
}

/// [`Scenario::ContainerStart`]: started with its endpoint and published port, or still not
/// started with neither.
fn container_start(d: &mut Daemon, names: &SandboxNames, step: &str, after: &str) -> Outcome {
    create_net(d);
    let name = names.fresh();
    let made = d.post(
        &format!("/containers/create?name={name}"),
        &publishing_body(),
    );
    expect(&made, 201, "create");
    let path = format!("/containers/{name}/start");
    crash_and_check(d, step, after, "POST", &path, None);
    let outcome = match run_state(d, &name).as_deref() {
        Some("running") => Outcome::Done,
        Some("created") => {
            assert!(
                member(d, NET, &name).is_none(),
                "{after}: undone, yet a member"
            );
            assert_eq!(interfaces(&name), Vec::<String>::new(), "{after}: undone");
            Outcome::Undone
        }
        other => panic!("{after}: {name} is {other:?}"),
    };
    expect_published(d, outcome == Outcome::Done, after);
    let again = d.post(&path, &json!({}));
    match outcome {
        Outcome::Done => expect(&again, 304, &format!("{after}: start again (already done)")),
        _ => expect(&again, 204, &format!("{after}: start again")),
    }
    assert_consistent(d, &format!("{after}, start repeated"));
    prove_started(d, &name, after);
    expect_published(d, true, &format!("{after}, started again"));
    outcome
}

/// [`Scenario::ContainerStop`]: a stop cut short is finished at start-up (its published port
/// and endpoints are let go, and it is exited); starting it again takes the freed address and
/// publishes again.
fn container_stop(d: &mut Daemon, names: &SandboxNames, step: &str, after: &str) -> Outcome {
    create_net(d);
    let name = names.fresh();
    let made = d.post(
        &format!("/containers/create?name={name}"),
        &publishing_body(),
    );
    expect(&made, 201, "create");
    expect(
        &d.post(&format!("/containers/{name}/start"), &json!({})),
        204,
        "start",
    );
    let path = format!("/containers/{name}/stop");
    crash_and_check(d, step, after, "POST", &path, None);
    assert_eq!(run_state(d, &name).as_deref(), Some("exited"), "{after}");
    assert!(
        member(d, NET, &name).is_none(),
        "{after}: stopped, yet a member"
    );
    assert_eq!(interfaces(&name), Vec::<String>::new(), "{after}: stopped");
    expect_published(d, false, after);
    expect(
        &d.post(&path, &json!({})),
        304,
        &format!("{after}: stop again (already done)"),
    );
    expect(
        &d.post(&format!("/containers/{name}/start"), &json!({})),
        204,
        "start again",
    );
    prove_started(d, &name, after);
    expect_published(d, true, &format!("{after}, started again"));
    Outcome::Done
}

/// One run of the walk: its step, its scenario, its outcome or why it failed.
type RunResult = (&'static str, Scenario, Result<Outcome, String>);

/// [`Scenario::ConnectByPid`]: the namespace stays one container, reachable by the surviving
/// process, through the crash, the first process's exit and a reconcile.
fn connect_by_pid(d: &mut Daemon, step: &str, after: &str) -> Outcome {
    create_net(d);
    let ns = Netns::new("nbt");
    let first = Sleeper::in_netns(&ns.name);
    let second = Sleeper::in_netns(&ns.name);
    let body = json!({"Container": first.pid()});
    crash_and_check(
        d,
        step,
        after,
        "POST",
        &format!("/networks/{NET}/connect"),
        Some(&body),
    );
    drop(first);
    let r = d.post("/netbridge/reconcile", &json!({}));
    expect(
        &r,
        200,
        &format!("{after}: reconcile once the first PID exited"),
    );
    assert_consistent(d, &format!("{after}, the first PID gone"));
    let outcome = if member(d, NET, &ns.name).is_some() || !interfaces(&ns.name).is_empty() {
        let c = d.get(&format!("/containers/{}/json", second.pid()));
        expect(&c, 200, &format!("{after}: inspect by the surviving PID"));
        Outcome::Done
    } else {
        Outcome::Undone
    };
    let again = connect(d, NET, &second.pid());
    let status = if outcome == Outcome::Done { 403 } else { 200 };
    expect(
        &again,
        status,
        &format!("{after}: connect again by the surviving PID"),
    );
    assert!(
        eventually(10, || run(
            "ip",
            &["netns", "exec", &ns.name, "ping", "-c1", "-W1", GATEWAY]
        )
        .status
        .success()),
        "{after}: {} cannot reach the gateway",
        ns.name
    );
    expect(
        &disconnect(d, NET, &second.pid(), false),
        200,
        &format!("{after}: disconnect by the surviving PID"),
    );
    // What the disconnect cut off goes with the reaper's next round.
    assert!(
        eventually(10, || interfaces(&ns.name).is_empty()),
        "{after}: interfaces left: {:?}",
        interfaces(&ns.name)
    );
    assert_consistent(d, &format!("{after}, disconnected"));
    outcome
}

#[test]
fn crash_point_walk() {
    let steps = steps();
    let jobs: Vec<(&'static str, Scenario)> = steps
        .iter()
        .flat_map(|s| scenario_of(s).into_iter().map(move |sc| (*s, sc)))
        .collect();
    let queue = Mutex::new(jobs.clone());
    let results: Mutex<Vec<RunResult>> = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                loop {
                    let Some((step, scenario)) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    // Its own thread, so a failing step is reported and the walk goes on.
                    let r = std::thread::spawn(move || walk(step, scenario))
                        .join()
                        .map_err(|e| {
                            e.downcast_ref::<String>()
                                .cloned()
                                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_default()
                        });
                    results.lock().unwrap().push((step, scenario, r));
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(s, _, _)| steps.iter().position(|x| x == s));
    let mut failed = Vec::new();
    for (step, scenario, r) in &results {
        match r {
            Ok(outcome) => println!("crash at {step:<26} {scenario:?}: {outcome:?}, consistent"),
            Err(e) => {
                println!("crash at {step:<26} {scenario:?}: FAILED");
                failed.push(format!("{step} ({scenario:?}): {e}"));
            }
        }
    }
    let walked: std::collections::BTreeSet<&str> = results
        .iter()
        .filter(|(_, _, r)| r.is_ok())
        .map(|(s, _, _)| *s)
        .collect();
    println!(
        "crash points walked: {}/{} ({} runs, {} failed) in {:.1}s",
        walked.len(),
        steps.len(),
        jobs.len(),
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failed.is_empty(),
        "{} crash runs failed:\n{}",
        failed.len(),
        failed.join("\n\n")
    );
    assert_eq!(walked.len(), steps.len());
}

// ---- force-disconnect and remove on whatever a crash left ----

/// Force-disconnects `name` from `NET`: 200, or — only if the store no longer has it on the
/// network — Docker's "not connected"/"not found" 4xx. Never a 5xx.
fn force_disconnect(d: &Daemon, name: &str, context: &str) {
    let r = disconnect(d, NET, name, true);
    if r.status == 200 {
        assert!(
            member(d, NET, name).is_none(),
            "{context}: {name} still on {NET}"
        );
        return;
    }
    assert!(
        (r.status == 400 || r.status == 404) && member(d, NET, name).is_none(),
        "{context}: force-disconnect {name} answered {} {}\n{}",
        r.status,
        r.body,
        log_tail(d, 40)
    );
}

fn remove_net(d: &Daemon, context: &str) {
    let r = d.delete(&format!("/networks/{NET}"));
    assert_eq!(
        r.status,
        204,
        "{context}: DELETE /networks/{NET}: {}\n{}",
        r.body,
        log_tail(d, 40)
    );
}

/// A sandbox and a foreign namespace connected; crash at `step` during `op` on a second
/// sandbox; after restart, force-disconnect everything and remove the network.
fn force_after_crash(step: &str, op: &str) {
    let names = SandboxNames::new();
    let mut d = Daemon::start();
    create_net(&d);
    let a = names.fresh();
    let b = names.fresh();
    create_sandbox(&d, &a);
    create_sandbox(&d, &b);
    let x = Netns::new("nbt");
    expect(&connect(&d, NET, &a), 200, "connect a");
    expect(&connect(&d, NET, &x.name), 200, "connect x");
    if op == "disconnect" {
        expect(&connect(&d, NET, &b), 200, "connect b");
    }
    d.restart_with_env(&[(CRASH_ENV, step)]);
    let body = json!({"Container": b});
    crash(
        &mut d,
        step,
        "POST",
        &format!("/networks/{NET}/{op}"),
        Some(&body),
    );
    let context = format!("after a crash at {step}");
    assert_consistent(&d, &context);
    for name in [&a, &b, &x.name] {
        force_disconnect(&d, name, &context);
    }
    remove_net(&d, &context);
    assert_consistent(&d, &format!("{context}, all removed"));
    names.remove_all(&d);
    assert_consistent(&d, &format!("{context}, sandboxes removed"));
}

#[test]
fn force_disconnect_and_remove_after_a_crash_at_connect_attached() {
    force_after_crash("connect.attached", "connect");
}

#[test]
fn force_disconnect_and_remove_after_a_crash_at_disconnect_detached() {
    force_after_crash("disconnect.detached", "disconnect");
}

/// Namespaces deleted behind the daemon's back (a sandbox's and a foreign one), while it runs:
/// force-disconnect, network removal and sandbox removal still work.
#[test]
fn force_disconnect_and_remove_after_namespaces_vanish() {
    let names = SandboxNames::new();
    let d = Daemon::start();
    create_net(&d);
    let s = names.fresh();
    create_sandbox(&d, &s);
    let x = Netns::new("nbt");
    let xname = x.name.clone();
    expect(&connect(&d, NET, &s), 200, "connect sandbox");
    expect(&connect(&d, NET, &xname), 200, "connect namespace");
    run("ip", &["netns", "del", &s]);
    drop(x);
    assert!(!netns_exists(&s) && !netns_exists(&xname));
    let context = "namespaces deleted under a running daemon";
    for name in [&s, &xname] {
        force_disconnect(&d, name, context);
    }
    remove_net(&d, context);
    let r = d.delete(&format!("/containers/{s}?force=1"));
    assert!(
        r.status == 204 || r.status == 404,
        "{context}: remove sandbox {s}: {} {}",
        r.status,
        r.body
    );
    assert_consistent(&d, context);
}

/// The same, but the namespaces vanish while the daemon is down and the kernel has finished
/// tearing them down before it starts: start-up drops the foreign namespace's endpoint and
/// re-creates the sandbox's namespace with its interface; everything can then be removed.
#[test]
fn force_disconnect_and_remove_after_namespaces_vanish_while_down() {
    namespaces_vanish_while_down(false);
}

/// The same, but each namespace outlives its name a little, as when the last process of a
/// container is still exiting: its `/run/netns` file is gone before the daemon starts, yet the
/// namespace (and so its veth pair) is freed only once the daemon serves. Start-up must go by
/// the namespace's name, not by the veth still being there.
#[test]
fn force_disconnect_and_remove_after_namespaces_vanish_while_down_lingering() {
    namespaces_vanish_while_down(true);
}

/// `sleep` inside a named namespace, holding it alive after its name is deleted; killed on drop.
struct Holder(std::process::Child);

impl Holder {
    fn new(ns: &str) -> Holder {
        use std::os::unix::fs::MetadataExt;
        let want = std::fs::metadata(format!("/run/netns/{ns}"))
            .expect("namespace file")
            .ino();
        let child = std::process::Command::new("ip")
            .args(["netns", "exec", ns, "sleep", "60"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn sleep");
        let h = Holder(child);
        let link = format!("/proc/{}/ns/net", h.0.id());
        assert!(
            eventually(10, || std::fs::read_link(&link)
                .is_ok_and(|t| t.to_string_lossy() == format!("net:[{want}]"))),
            "sleep never entered {ns}"
        );
        h
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn veths_in(ns: &str) -> usize {
    let out = run("ip", &["-j", "-n", ns, "link", "show", "type", "veth"]);
    serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(0)
}

fn namespaces_vanish_while_down(lingering: bool) {
    let names = SandboxNames::new();
    let mut d = Daemon::start();
    create_net(&d);
    let s = names.fresh();
    create_sandbox(&d, &s);
    let x = Netns::new("nbt");
    let xname = x.name.clone();
    expect(&connect(&d, NET, &s), 200, "connect sandbox");
    expect(&connect(&d, NET, &xname), 200, "connect namespace");
    let holders = lingering.then(|| (Holder::new(&s), Holder::new(&xname)));
    d.kill();
    run("ip", &["netns", "del", &s]);
    drop(x);
    if !lingering {
        assert!(
            eventually(10, || veths_in(&d.ns.name) == 0),
            "the veths of deleted namespaces never went away"
        );
    }
    d.restart();
    if let Some(holders) = holders {
        // The daemon has started; now the namespaces go, and their veths with them.
        drop(holders);
        assert!(
            eventually(10, || veths_in(&d.ns.name) <= 1),
            "the veths of deleted namespaces never went away"
        );
    }
    let context = if lingering {
        "namespaces deleted while the daemon was down, freed once it served"
    } else {
        "namespaces deleted while the daemon was down"
    };
    assert_consistent(&d, context);
    assert!(
        member(&d, NET, &xname).is_none(),
        "{context}: the endpoint of a vanished namespace is dropped"
    );
    for name in [&s, &xname] {
        force_disconnect(&d, name, context);
    }
    remove_net(&d, context);
    names.remove_all(&d);
    assert!(!netns_exists(&s));
    assert_consistent(&d, context);
}

/// `netbridge reconcile` against a crashed daemon's database repairs it; the next start-up
/// then finds nothing to repair.
#[test]
fn offline_reconcile_repairs_a_crash() {
    let names = SandboxNames::new();
    let mut d = Daemon::start_with_env(&[(CRASH_ENV, "connect.attached")]);
    create_net(&d);
    let s = names.fresh();
    create_sandbox(&d, &s);
    let r = d.try_post(
        &format!("/networks/{NET}/connect"),
        &json!({"Container": s}),
    );
    assert!(r.map(|r| r.status == 0).unwrap_or(true), "no answer");
    assert!(d.wait_exit(30).is_some(), "the daemon aborted");
    let db = d.db.display().to_string();
    let socket = d.socket.display().to_string();
    let out = d.run_cli(&["reconcile", "--db", &db, "--socket", &socket]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "netbridge reconcile: {text}");
    assert!(
        text.contains("connect"),
        "the interrupted connect is reported: {text}"
    );
    let again = d.run_cli(&["reconcile", "--db", &db, "--socket", &socket]);
    assert!(again.status.success(), "second reconcile: {again:?}");
    let before = d.log().len();
    d.restart_with_env(&[]);
    let log = d.log();
    assert!(
        !log[before..].contains("start-up reconcile repaired"),
        "start-up found something left to repair after the offline reconcile:\n{}",
        &log[before..]
    );
    assert_consistent(&d, "after the offline reconcile");
    expect(&connect(&d, NET, &s), 200, "connect after the repair");
    names.remove_all(&d);
}

// ---- random kills ----

fn post_at(socket: &Path, path: &str, body: &Value) -> std::io::Result<Response> {
    request_at(
        socket,
        "POST",
        path,
        Some("application/json"),
        Some(&body.to_string()),
    )
}

/// Counts of what the clients saw.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    client_errors: AtomicUsize,
    connection_errors: AtomicUsize,
    server_errors: Mutex<Vec<String>>,
}

impl Tally {
    fn note(&self, what: &str, r: std::io::Result<Response>) -> Option<Response> {
        match r {
            Ok(r) if r.status == 0 => {
                self.connection_errors.fetch_add(1, Ordering::Relaxed);
                None
            }
            Err(_) => {
                self.connection_errors.fetch_add(1, Ordering::Relaxed);
                None
            }
            Ok(r) if r.status >= 500 => {
                self.server_errors
                    .lock()
                    .unwrap()
                    .push(format!("{what}: {} {}", r.status, r.body));
                Some(r)
            }
            Ok(r) if r.status >= 400 => {
                self.client_errors.fetch_add(1, Ordering::Relaxed);
                Some(r)
            }
            Ok(r) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                Some(r)
            }
        }
    }
}

/// What the random-kill clients share.
struct Workload<'a> {
    socket: &'a Path,
    shared: &'a [String],
    names: &'a SandboxNames,
    gate: &'a RwLock<()>,
    stop: &'a AtomicBool,
    tally: &'a Tally,
}

/// One workload client: keeps up to 3 networks and 2 sandboxes of its own, plus its own
/// foreign namespace, and creates, removes, connects and disconnects at random.
fn kill_client(w: &Workload, c: usize, seed: u64, foreign: &str) {
    let Workload {
        socket,
        shared,
        names,
        gate,
        stop,
        tally,
    } = w;
    let mut rng = Rng::new(seed);
    let mut nets: Vec<String> = Vec::new();
    let mut sandboxes: Vec<String> = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let _open = gate.read().unwrap_or_else(|p| p.into_inner());
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let containers: Vec<String> = sandboxes
            .iter()
            .cloned()
            .chain([foreign.to_string()])
            .collect();
        let targets: Vec<String> = nets.iter().chain(shared.iter()).cloned().collect();
        let got = match rng.below(10) {
            0 if nets.len() < 3 => {
                n += 1;
                let name = format!("nbt-k{c}-{n}");
                nets.push(name.clone());
                let r = post_at(socket, "/networks/create", &json!({"Name": name}));
                tally.note(&format!("create network {name}"), r)
            }
            1 if !nets.is_empty() => {
                let i = rng.below(nets.len());
                let name = nets[i].clone();
                let r = request_at(socket, "DELETE", &format!("/networks/{name}"), None, None);
                let r = tally.note(&format!("remove network {name}"), r);
                if r.as_ref()
                    .is_some_and(|r| r.status == 204 || r.status == 404)
                {
                    nets.remove(i);
                }
                r
            }
            2 if sandboxes.len() < 2 => {
                let name = names.fresh();
                sandboxes.push(name.clone());
                let r = request_at(
                    socket,
                    "POST",
                    &format!("/containers/create?name={name}"),
                    Some("application/json"),
                    Some("{}"),
                );
                tally.note(&format!("create sandbox {name}"), r)
            }
            3 if !sandboxes.is_empty() => {
                let i = rng.below(sandboxes.len());
                let name = sandboxes[i].clone();
                let r = request_at(
                    socket,
                    "DELETE",
                    &format!("/containers/{name}?force=1"),
                    None,
                    None,
                );
                let r = tally.note(&format!("remove sandbox {name}"), r);
                if r.as_ref()
                    .is_some_and(|r| r.status == 204 || r.status == 404)
                {
                    sandboxes.remove(i);
                }
                r
            }
            4..=6 => {
                let net = &targets[rng.below(targets.len())];
                let who = &containers[rng.below(containers.len())];
                let r = post_at(
                    socket,
                    &format!("/networks/{net}/connect"),
                    &json!({"Container": who}),
                );
                tally.note(&format!("connect {who} to {net}"), r)
            }
            _ => {
                let net = &targets[rng.below(targets.len())];
                let who = &containers[rng.below(containers.len())];
                let force = rng.chance(50);
                let r = post_at(
                    socket,
                    &format!("/networks/{net}/disconnect"),
                    &json!({"Container": who, "Force": force}),
                );
                tally.note(&format!("disconnect {who} from {net}"), r)
            }
        };
        drop(_open);
        if got.is_none() {
            // The daemon is down: wait for the restart.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Sets the flag when dropped, also while unwinding, so the clients always stop.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn random_kills() {
    let kills: usize = std::env::var("NETBRIDGE_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let (mut rng, seed) = Rng::seeded();
    println!(
        "random kills: {kills} kills, seed {seed} (NETBRIDGE_SEED={seed} replays the choices)"
    );
    let names = SandboxNames::new();
    let mut d = Daemon::start_with(&["--default-address-pool", "base=10.88.0.0/16,size=24"]);
    let shared: Vec<String> = (0..2).map(|i| format!("nbt-shared-{i}")).collect();
    for s in &shared {
        d.create_network(&json!({"Name": s}));
    }
    let foreign: Vec<Netns> = (0..4).map(|_| Netns::new("nbt")).collect();
    let gate = RwLock::new(());
    let stop = AtomicBool::new(false);
    let tally = Tally::default();
    let started = Instant::now();
    let mut survived = 0;
    let mut endpoints_seen = 0;
    let mut doomed_at_kills = 0;
    let client_seeds: Vec<u64> = (0..4).map(|_| rng.next()).collect();
    // The clients only need the socket: a second handle on the same daemon.
    let socket = d.socket.clone();
    let workload = Workload {
        socket: &socket,
        shared: &shared,
        names: &names,
        gate: &gate,
        stop: &stop,
        tally: &tally,
    };
    std::thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        for c in 0..4 {
            let foreign = foreign[c].name.clone();
            let seed = client_seeds[c];
            let workload = &workload;
            scope.spawn(move || kill_client(workload, c, seed, &foreign));
        }
        for k in 1..=kills {
            std::thread::sleep(Duration::from_millis(rng.range(5, 150)));
            d.kill();
            // Clients' requests in flight fail; then they wait at the gate.
            let _closed = gate.write().unwrap_or_else(|p| p.into_inner());
            // Links cut off but not yet deleted when the kill came: start-up deletes them all.
            doomed_at_kills += doomed_links(&d).len();
            d.restart();
            let context = format!("after kill {k} of {kills} (seed {seed})");
            let seen = assert_consistent(&d, &context);
            assert_eq!(
                doomed_links(&d),
                Vec::<String>::new(),
                "{context}: doomed links left"
            );
            endpoints_seen += seen.endpoints;
            survived = k;
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert_consistent(&d, "after the workload");
    names.remove_all(&d);
    for s in &shared {
        let r = d.delete(&format!("/networks/{s}"));
        assert!(r.status == 204 || r.status == 403, "{}", r.body);
    }
    assert_consistent(&d, "after clean-up");
    let server_errors = tally.server_errors.lock().unwrap().clone();
    println!(
        "random kills: {survived} kills survived in {:.1}s; requests: {} ok, {} 4xx, {} cut by kills, {} 5xx; {} endpoints checked; {doomed_at_kills} doomed links found at kills, all deleted at restart",
        started.elapsed().as_secs_f64(),
        tally.ok.load(Ordering::Relaxed),
        tally.client_errors.load(Ordering::Relaxed),
        tally.connection_errors.load(Ordering::Relaxed),
        server_errors.len(),
        endpoints_seen
    );
    assert!(
        server_errors.is_empty(),
        "5xx answers during the random-kill run (seed {seed}):\n{}",
        server_errors.join("\n")
    );
    assert_eq!(survived, kills);
}

// ---- the checker itself ----

/// The checker is no rubber stamp: each kind of disagreement is reported; what reconcile can
/// repair (its own marked objects) is repaired by the reconcile the check ends with.
#[test]
fn the_checker_sees_disagreements() {
    use common::consistency::check;
    let names = SandboxNames::new();
    let d = Daemon::start();
    create_net(&d);
    let s = names.fresh();
    create_sandbox(&d, &s);
    expect(&connect(&d, NET, &s), 200, "connect");
    assert_consistent(&d, "healthy");
    let dns = d.ns.name.clone();
    let problems = |what: &str, want: &str| {
        let p = check(&d).expect_err(&format!("{what} goes unnoticed"));
        assert!(
            p.iter().any(|l| l.contains(want)),
            "{what}: no problem mentions {want:?}: {p:#?}"
        );
    };
    let e = member(&d, NET, &s).expect("endpoint");
    let eid = e["EndpointID"].as_str().expect("EndpointID").to_string();
    let links: Value = serde_json::from_slice(
        &run(
            "ip",
            &["-j", "-d", "-n", &dns, "link", "show", "type", "veth"],
        )
        .stdout,
    )
    .expect("ip -j");
    let host = links
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l["ifalias"] == format!("netbridge:{eid}"))
        .and_then(|l| l["ifname"].as_str())
        .expect("the host veth")
        .to_string();
    let bridge = {
        let n = d.get(&format!("/networks/{NET}")).json();
        format!("br-{}", &n["Id"].as_str().expect("Id")[..12])
    };

    // A veth lost: reported, and re-attached by the check's own reconcile.
    run("ip", &["-n", &dns, "link", "del", &host]);
    problems("a lost veth", "no host veth");
    assert_consistent(&d, "after reconcile re-attached the veth");

    // A marked bridge no network claims: reported, and removed by reconcile.
    run(
        "ip",
        &["-n", &dns, "link", "add", "nbtstray0", "type", "bridge"],
    );
    run(
        "ip",
        &[
            "-n",
            &dns,
            "link",
            "set",
            "nbtstray0",
            "alias",
            "netbridge:0123456789ab",
        ],
    );
    problems("a stray marked bridge", "belongs to no network");
    assert_consistent(&d, "after reconcile removed the stray bridge");
    assert!(!d.has_link("nbtstray0"));

    // Outside netbridge's mark reconcile touches nothing; the checker still sees it.
    run(
        "ip",
        &[
            "-n", &dns, "link", "add", "nbtv0", "type", "veth", "peer", "name", "nbtv1",
        ],
    );
    run(
        "ip",
        &["-n", &dns, "link", "set", "nbtv0", "master", &bridge],
    );
    problems(
        "a foreign port on the bridge",
        "is no endpoint of the network",
    );
    run("ip", &["-n", &dns, "link", "del", "nbtv0"]);

    run("ip", &["-n", &s, "addr", "flush", "dev", "eth0"]);
    problems("an endpoint without its address", "lacks 10.99.0.2/24");
    run(
        "ip",
        &["-n", &s, "addr", "add", "10.99.0.2/24", "dev", "eth0"],
    );

    assert_consistent(&d, "restored");
    names.remove_all(&d);
}

//! Concurrency (issue 4): 16 clients issue mixed operations at once — network creates and
//! removes, connects (some racing for one static address), disconnects, inspects — on shared
//! and short-lived networks. Every answer must be a success or a 4xx the API documents for that
//! route (never a 5xx), no address may be held twice in a network at any inspect, and the final
//! state must pass the consistency checker (store and kernel agree, reconcile idempotent).
//!
//! Namespaces: one `nbt-…` sandbox (made through the API) and one `nbt-…` namespace of the
//! harness per client, all deleted at the end, also when the test fails.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::Instant;

use common::consistency::{assert_consistent, log_tail};
use common::{Daemon, Netns, Response, Rng, SandboxNames, Sleeper, Value, json};

const CLIENTS: usize = 16;
const OPS_PER_CLIENT: usize = 40;
const SHARED: usize = 4;

/// What a client saw that it should not have.
#[derive(Default)]
struct Findings {
    violations: Mutex<Vec<String>>,
    statuses: Mutex<BTreeMap<String, BTreeMap<u16, usize>>>,
    requests: AtomicUsize,
}

impl Findings {
    /// Records an answer: it must be one of `allowed`; an error must carry a JSON message.
    fn check(&self, op: &str, what: &str, r: &Response, allowed: &[u16]) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        *self
            .statuses
            .lock()
            .unwrap()
            .entry(op.to_string())
            .or_default()
            .entry(r.status)
            .or_default() += 1;
        let mut bad = Vec::new();
        if !allowed.contains(&r.status) {
            bad.push(format!(
                "{what}: answered {} (allowed {allowed:?}): {}",
                r.status, r.body
            ));
        } else if r.status >= 400 {
            let json_type = r.header("content-type") == Some("application/json");
            let message = serde_json::from_str::<Value>(&r.body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string));
            if !json_type || message.is_none() {
                bad.push(format!(
                    "{what}: {} without a JSON message: {:?}",
                    r.status, r.body
                ));
            }
        }
        self.violations.lock().unwrap().extend(bad);
    }

    fn violation(&self, text: String) {
        self.violations.lock().unwrap().push(text);
    }
}

/// No address twice among a network's `Containers` (one inspect answer).
fn unique_addresses(inspect: &Value) -> Result<(), String> {
    let mut seen: HashMap<String, String> = HashMap::new();
    for (id, e) in inspect["Containers"]
        .as_object()
        .cloned()
        .unwrap_or_default()
    {
        for key in ["IPv4Address", "IPv6Address"] {
            let ip = e[key].as_str().unwrap_or_default().to_string();
            if ip.is_empty() {
                continue;
            }
            if let Some(other) = seen.insert(ip.clone(), id.clone()) {
                return Err(format!(
                    "network {}: {ip} held by {} and {}",
                    inspect["Name"],
                    &other[..12],
                    &id[..12]
                ));
            }
        }
    }
    Ok(())
}

fn request(d: &Daemon, method: &str, path: &str, body: Option<&Value>) -> Response {
    let text = body.map(Value::to_string);
    d.try_request(
        method,
        path,
        text.as_ref().map(|_| "application/json"),
        text.as_deref(),
    )
    .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", log_tail(d, 40)))
}

struct Client<'a> {
    d: &'a Daemon,
    i: usize,
    /// Its sandbox and its foreign namespace.
    containers: [String; 2],
    shared: &'a [String],
    /// Short-lived networks any client may use or remove.
    ephemeral: &'a Mutex<Vec<String>>,
    findings: &'a Findings,
}

impl Client<'_> {
    fn any_network(&self, rng: &mut Rng) -> (String, bool) {
        let eph = self.ephemeral.lock().unwrap().clone();
        if !eph.is_empty() && rng.chance(30) {
            (eph[rng.below(eph.len())].clone(), true)
        } else {
            (self.shared[rng.below(self.shared.len())].clone(), false)
        }
    }

    fn run(&self, seed: u64) {
        let mut rng = Rng::new(seed);
        let f = self.findings;
        let mut created = 0;
        for _ in 0..OPS_PER_CLIENT {
            let who = &self.containers[rng.below(2)];
            let (net, eph) = self.any_network(&mut rng);
            // A removed short-lived network is a 404 for anything naming it.
            let gone: &[u16] = if eph { &[404] } else { &[] };
            let allow = |base: &[u16]| -> Vec<u16> { base.iter().chain(gone).copied().collect() };
            match rng.below(10) {
                0..=2 => {
                    let r = request(
                        self.d,
                        "POST",
                        &format!("/networks/{net}/connect"),
                        Some(&json!({"Container": who})),
                    );
                    f.check(
                        "connect",
                        &format!("connect {who} to {net}"),
                        &r,
                        &allow(&[200, 403]),
                    );
                }
                3..=4 => {
                    let force = rng.chance(50);
                    let r = request(
                        self.d,
                        "POST",
                        &format!("/networks/{net}/disconnect"),
                        Some(&json!({"Container": who, "Force": force})),
                    );
                    f.check(
                        "disconnect",
                        &format!("disconnect {who} from {net} (force {force})"),
                        &r,
                        &allow(&[200, 400]),
                    );
                }
                5 => {
                    let r = request(self.d, "GET", &format!("/networks/{net}"), None);
                    f.check(
                        "inspect network",
                        &format!("inspect {net}"),
                        &r,
                        &allow(&[200]),
                    );
                    if r.status == 200
                        && let Err(e) = unique_addresses(&r.json())
                    {
                        f.violation(e);
                    }
                }
                6 if created < 4 => {
                    created += 1;
                    let name = format!("nbt-e{}-{created}", self.i);
                    let r = request(
                        self.d,
                        "POST",
                        "/networks/create",
                        Some(&json!({"Name": name})),
                    );
                    f.check("create network", &format!("create {name}"), &r, &[201]);
                    if r.status == 201 {
                        self.ephemeral.lock().unwrap().push(name);
                    }
                }
                7 if eph => {
                    let r = request(self.d, "DELETE", &format!("/networks/{net}"), None);
                    f.check(
                        "remove network",
                        &format!("remove {net}"),
                        &r,
                        &[204, 403, 404],
                    );
                    if r.status == 204 {
                        self.ephemeral.lock().unwrap().retain(|n| *n != net);
                    }
                }
                8 => {
                    let r = request(self.d, "GET", &format!("/containers/{who}/json"), None);
                    // The foreign namespace is recorded only while connected.
                    let allowed: &[u16] = if *who == self.containers[0] {
                        &[200]
                    } else {
                        &[200, 404]
                    };
                    f.check("inspect container", &format!("inspect {who}"), &r, allowed);
                }
                _ => {
                    let r = request(self.d, "GET", "/networks", None);
                    f.check("list networks", "list networks", &r, &[200]);
                }
            }
        }
    }
}

#[test]
fn sixteen_clients_at_once() {
    let (mut rng, seed) = Rng::seeded();
    println!("concurrency: {CLIENTS} clients x {OPS_PER_CLIENT} operations, seed {seed}");
    let names = SandboxNames::new();
    let d = Daemon::start_with(&["--default-address-pool", "base=10.67.0.0/16,size=24"]);
    let shared: Vec<String> = (0..SHARED).map(|i| format!("nbt-cc-{i}")).collect();
    for (i, n) in shared.iter().enumerate() {
        d.create_network(
            &json!({"Name": n, "IPAM": {"Config": [{"Subnet": format!("10.66.{i}.0/24")}]}}),
        );
    }
    let foreign: Vec<Netns> = (0..CLIENTS).map(|_| Netns::new("nbt")).collect();
    let sandboxes: Vec<String> = (0..CLIENTS).map(|_| names.fresh()).collect();
    let ephemeral = Mutex::new(Vec::new());
    let findings = Findings::default();
    let barrier = Barrier::new(CLIENTS);
    let winners = AtomicUsize::new(0);
    let seeds: Vec<u64> = (0..CLIENTS).map(|_| rng.next()).collect();
    let started = Instant::now();

    std::thread::scope(|scope| {
        for i in 0..CLIENTS {
            let client = Client {
                d: &d,
                i,
                containers: [sandboxes[i].clone(), foreign[i].name.clone()],
                shared: &shared,
                ephemeral: &ephemeral,
                findings: &findings,
            };
            let (barrier, winners, seed) = (&barrier, &winners, seeds[i]);
            scope.spawn(move || {
                let f = client.findings;
                // All sandboxes made at once.
                barrier.wait();
                let sb = &client.containers[0];
                let r = request(client.d, "POST", &format!("/containers/create?name={sb}"), Some(&json!({})));
                f.check("create sandbox", &format!("create sandbox {sb}"), &r, &[201]);
                // All race for one static address: one wins, the others are told it is taken.
                barrier.wait();
                let x = &client.containers[1];
                let r = request(
                    client.d,
                    "POST",
                    "/networks/nbt-cc-0/connect",
                    Some(&json!({"Container": x, "EndpointConfig": {"IPAMConfig": {"IPv4Address": "10.66.0.200"}}})),
                );
                f.check("connect static", &format!("connect {x} at 10.66.0.200"), &r, &[200, 403]);
                if r.status == 200 {
                    winners.fetch_add(1, Ordering::SeqCst);
                }
                // Then everything at once.
                barrier.wait();
                client.run(seed);
            });
        }
    });
    let elapsed = started.elapsed();

    let violations = findings.violations.lock().unwrap().clone();
    let statuses = findings.statuses.lock().unwrap().clone();
    for (op, counts) in &statuses {
        println!("  {op:<18} {counts:?}");
    }
    println!(
        "concurrency: {} requests in {:.1}s, {} violations",
        findings.requests.load(Ordering::Relaxed),
        elapsed.as_secs_f64(),
        violations.len()
    );
    assert_eq!(
        winners.load(Ordering::SeqCst),
        1,
        "exactly one client gets 10.66.0.200"
    );
    let seen = assert_consistent(
        &d,
        &format!("after {CLIENTS} concurrent clients (seed {seed})"),
    );
    println!(
        "final state: {} networks, {} endpoints, {} containers, consistent",
        seen.networks, seen.endpoints, seen.containers
    );

    // Clean up: every sandbox force-removed, every namespace disconnected, every network gone.
    names.remove_all(&d);
    for ns in &foreign {
        let r = d.get(&format!("/containers/{}/json", ns.name));
        if r.status == 404 {
            continue;
        }
        assert_eq!(r.status, 200, "inspect {}: {}", ns.name, r.body);
        let nets = r.json()["NetworkSettings"]["Networks"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for n in nets.keys() {
            let r = request(
                &d,
                "POST",
                &format!("/networks/{n}/disconnect"),
                Some(&json!({"Container": ns.name, "Force": true})),
            );
            assert_eq!(
                r.status, 200,
                "force-disconnect {} from {n}: {}",
                ns.name, r.body
            );
        }
    }
    for n in shared.iter().chain(ephemeral.lock().unwrap().iter()) {
        let r = d.delete(&format!("/networks/{n}"));
        assert_eq!(r.status, 204, "remove {n}: {}", r.body);
    }
    assert_consistent(&d, "after clean-up");
    assert!(
        violations.is_empty(),
        "{} answers outside the documented ones (seed {seed}):\n{}",
        violations.len(),
        violations.join("\n")
    );
}

/// Issue 11's workload: four clients connect and disconnect (30 % forced) six containers of
/// every kind (named namespaces, PIDs, sandboxes), some reached by two references at once,
/// across three networks. A namespace netbridge did not make is forgotten by its last
/// disconnect while another request is recording an endpoint for it: never a 5xx.
#[test]
fn namespaces_forgotten_under_contention() {
    const WORKERS: usize = 4;
    let (mut rng, seed) = Rng::seeded();
    let secs: u64 = std::env::var("NETBRIDGE_CONTENTION_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    println!("contention: {WORKERS} clients for {secs}s, seed {seed}");
    let names = SandboxNames::new();
    let d = Daemon::start();
    let networks: Vec<String> = (0..3).map(|i| format!("nbt-fg-{i}")).collect();
    for (i, n) in networks.iter().enumerate() {
        d.create_network(
            &json!({"Name": n, "IPAM": {"Config": [{"Subnet": format!("10.68.{i}.0/24")}]}}),
        );
    }
    let named: Vec<Netns> = (0..4).map(|_| Netns::new("nbt-fg")).collect();
    // The last two named namespaces are reached by the PID of a process inside, and also by
    // name: two references to one container.
    let sleepers: Vec<Sleeper> = named[2..]
        .iter()
        .map(|ns| Sleeper::in_netns(&ns.name))
        .collect();
    let sandboxes: Vec<String> = (0..2).map(|_| names.fresh()).collect();
    for s in &sandboxes {
        let r = d.post(&format!("/containers/create?name={s}"), &json!({}));
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let mut references: Vec<String> = named.iter().map(|n| n.name.clone()).collect();
    references.extend(sleepers.iter().map(Sleeper::pid));
    references.extend(sandboxes.iter().cloned());

    let findings = Findings::default();
    let deadline = Instant::now() + std::time::Duration::from_secs(secs);
    let seeds: Vec<u64> = (0..WORKERS).map(|_| rng.next()).collect();
    std::thread::scope(|scope| {
        for seed in seeds {
            let (d, f, refs, nets) = (&d, &findings, &references, &networks);
            scope.spawn(move || {
                let mut rng = Rng::new(seed);
                while Instant::now() < deadline {
                    let who = &refs[rng.below(refs.len())];
                    let net = &nets[rng.below(nets.len())];
                    match rng.below(10) {
                        0..=4 => {
                            let r = request(
                                d,
                                "POST",
                                &format!("/networks/{net}/connect"),
                                Some(&json!({"Container": who})),
                            );
                            f.check(
                                "connect",
                                &format!("connect {who} to {net}"),
                                &r,
                                &[200, 403],
                            );
                        }
                        5..=8 => {
                            let force = rng.chance(30);
                            let r = request(
                                d,
                                "POST",
                                &format!("/networks/{net}/disconnect"),
                                Some(&json!({"Container": who, "Force": force})),
                            );
                            f.check(
                                "disconnect",
                                &format!("disconnect {who} from {net} (force {force})"),
                                &r,
                                &[200, 400],
                            );
                        }
                        _ => {
                            let r = request(d, "GET", &format!("/containers/{who}/json"), None);
                            f.check(
                                "inspect container",
                                &format!("inspect {who}"),
                                &r,
                                &[200, 404],
                            );
                        }
                    }
                }
            });
        }
    });
    for (op, counts) in findings.statuses.lock().unwrap().iter() {
        println!("  {op:<18} {counts:?}");
    }
    println!(
        "contention: {} requests",
        findings.requests.load(Ordering::Relaxed)
    );
    let seen = assert_consistent(&d, &format!("after the contention workload (seed {seed})"));
    println!(
        "final state: {} endpoints, {} containers, consistent",
        seen.endpoints, seen.containers
    );
    // No namespace is two containers.
    let list = d.get("/containers/json?all=1").json();
    let count = list.as_array().map(Vec::len).unwrap_or_default();
    assert!(
        count <= references.len() - 2,
        "{count} containers for 6 namespaces: {list}"
    );

    names.remove_all(&d);
    for n in &networks {
        for who in &references {
            let _ = d.post(
                &format!("/networks/{n}/disconnect"),
                &json!({"Container": who, "Force": true}),
            );
        }
    }
    drop(sleepers);
    let violations = findings.violations.lock().unwrap().clone();
    assert!(
        violations.is_empty(),
        "{} answers outside the documented ones (seed {seed}):\n{}",
        violations.len(),
        violations.join("\n")
    );
}

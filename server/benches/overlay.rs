//! The overlay benchmark: `cargo bench --bench overlay` (quick: `NETBRIDGE_BENCH_QUICK=1`).
//!
//! Three namespace-hosts with a three-member etcd, as the overlay tests make them (the same
//! harness: everything in throwaway namespaces and temp dirs, removed on drop). It measures:
//! connect latency on an overlay against a local bridge on the same daemon; convergence, the
//! time from a connect on host A until a pinger on host B that started with the connect gets
//! its first answer (a lost first ARP would show as ~1 s); 30 concurrent connects from the
//! three hosts; and, with two etcd members stopped, how fast global operations answer 503,
//! whether local ones slow down and whether the list still shows the global network. It
//! reports; a missed target is not a failure.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/multihost/mod.rs"]
mod multihost;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon, Netns, json};
use multihost::*;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Median and p99 of a sample, in ms.
fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |q: f64| ms(v[((v.len() as f64 - 1.0) * q).round() as usize]);
    (at(0.5), at(0.99))
}

fn timed_connect(d: &Daemon, net: &str, c: &Netns, ip: Option<&str>) -> Duration {
    let mut body = json!({ "Container": c.name });
    if let Some(ip) = ip {
        body["EndpointConfig"] = json!({"IPAMConfig": {"IPv4Address": ip}});
    }
    let t = Instant::now();
    let r = d.post(&format!("/networks/{net}/connect"), &body);
    let took = t.elapsed();
    assert_eq!(r.status, 200, "connect: {}", r.body);
    took
}

fn disconnect(d: &Daemon, net: &str, c: &Netns) {
    let r = d.post(
        &format!("/networks/{net}/disconnect"),
        &json!({ "Container": c.name }),
    );
    assert_eq!(r.status, 200, "disconnect: {}", r.body);
}

/// Wall time of `waves` rounds of `per` concurrent connects from each host to `net`.
fn waves_of(h: &Hosts, net: &str, per: usize, waves: usize) -> Vec<Duration> {
    let mut times = Vec::new();
    for _ in 0..waves {
        let cs: Vec<Vec<Netns>> = h
            .hosts
            .iter()
            .map(|d| (0..per).map(|_| container(d)).collect())
            .collect();
        let t = Instant::now();
        std::thread::scope(|s| {
            for (d, list) in h.hosts.iter().zip(&cs) {
                for c in list {
                    s.spawn(move || timed_connect(d, net, c, None));
                }
            }
        });
        times.push(t.elapsed());
        for (d, list) in h.hosts.iter().zip(&cs) {
            for c in list {
                disconnect(d, net, c);
            }
        }
    }
    times
}

/// The daemon's operation timings from `/metrics`: (layer, op) → (seconds, calls).
fn operation_totals(d: &Daemon) -> BTreeMap<String, (f64, f64)> {
    let text = d.get("/metrics").body;
    let mut totals: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("netbridge_operation_duration_seconds_") else {
            continue;
        };
        let Some((kind, rest)) = rest.split_once('{') else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let entry = totals.entry(labels.replace('"', "")).or_default();
        match kind {
            "sum" => entry.0 = value,
            "count" => entry.1 = value,
            _ => {}
        }
    }
    totals
}

/// The mean of the etcd, netlink-attach and SQLite connect operations between two readings.
fn operation_means(
    before: &BTreeMap<String, (f64, f64)>,
    after: &BTreeMap<String, (f64, f64)>,
) -> String {
    let wanted = [
        ("etcd /v3/kv/txn", "layer=etcd,op=/v3/kv/txn"),
        ("netlink attach", "layer=netlink,op=attach"),
        ("SQLite begin_connect", "layer=sqlite,op=begin_connect"),
        ("SQLite finish_connect", "layer=sqlite,op=finish_connect"),
    ];
    let mut parts = Vec::new();
    for (name, key) in wanted {
        let (s0, n0) = before.get(key).copied().unwrap_or_default();
        let Some((s1, n1)) = after.get(key).copied() else {
            continue;
        };
        if n1 > n0 {
            parts.push(format!("{name} {:.2} ms", (s1 - s0) / (n1 - n0) * 1000.0));
        }
    }
    parts.join(", ")
}

fn main() {
    let quick = std::env::var("NETBRIDGE_BENCH_QUICK").is_ok_and(|v| v == "1");
    let reps = if quick { 15 } else { 200 };
    let conv_reps = if quick { 10 } else { 100 };
    let waves = if quick { 2 } else { 10 };
    let h = Hosts::new();
    let (a, b) = (&h.hosts[0], &h.hosts[1]);
    a.create_network(&json!({"Name": "ov", "Driver": "overlay",
        "IPAM": {"Config": [{"Subnet": "10.240.0.0/16"}]}}));
    a.create_network(&json!({"Name": "br", "IPAM": {"Config": [{"Subnet": "10.241.0.0/24"}]}}));
    for d in &h.hosts {
        assert!(common::eventually(10, || d.get("/networks/ov").status == 200));
    }

    // Connect latency: overlay vs bridge, same daemon, alternating.
    let c = container(a);
    let (mut ov, mut br) = (Vec::new(), Vec::new());
    let before = operation_totals(a);
    for _ in 0..reps {
        ov.push(timed_connect(a, "ov", &c, None));
        disconnect(a, "ov", &c);
        br.push(timed_connect(a, "br", &c, None));
        disconnect(a, "br", &c);
    }
    let spent = operation_means(&before, &operation_totals(a));
    let (ov50, ov99) = stats(ov);
    let (br50, br99) = stats(br);

    // Convergence: B pings a fixed address from the moment A's connect starts.
    let pinger = container(b);
    timed_connect(b, "ov", &pinger, None);
    let target = container(a);
    let mut conv = Vec::new();
    let mut lost_first = 0;
    for i in 0..conv_reps {
        let ip = format!("10.240.1.{}", 10 + i % 200);
        let start = Instant::now();
        let mut ping = Command::new("ip")
            .args([
                "netns",
                "exec",
                &pinger.name,
                "ping",
                "-n",
                "-q",
                "-c",
                "1",
                "-i",
                "0.002",
                "-w",
                "5",
                &ip,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ping");
        timed_connect(a, "ov", &target, Some(&ip));
        let ok = ping.wait().map(|s| s.success()).unwrap_or(false);
        let took = start.elapsed();
        assert!(ok, "no answer from {ip}");
        if took > Duration::from_millis(900) {
            lost_first += 1;
        }
        conv.push(took);
        disconnect(a, "ov", &target);
    }
    let (cv50, cv99) = stats(conv);

    // 30 concurrent connects, 10 from each host: to the overlay, and (the baseline) to a
    // local bridge on each host.
    let per = 10;
    for (i, d) in h.hosts.iter().enumerate() {
        d.create_network(&json!({"Name": "wave",
            "IPAM": {"Config": [{"Subnet": format!("10.242.{i}.0/24")}]}}));
    }
    let (w50, w99) = stats(waves_of(&h, "ov", per, waves));
    let (bw50, bw99) = stats(waves_of(&h, "wave", per, waves));

    // etcd stalled: two members stopped.
    let local_before: Vec<Duration> = (0..5)
        .map(|i| {
            let t = Instant::now();
            a.create_network(&json!({"Name": format!("pre{i}")}));
            t.elapsed()
        })
        .collect();
    h.etcd[1].pause();
    h.etcd[2].pause();
    let t = Instant::now();
    let create = a.post(
        "/networks/create",
        &json!({"Name": "ov2", "Driver": "overlay"}),
    );
    let create_503 = t.elapsed();
    let spare = container(a);
    let t = Instant::now();
    let conn = a.post("/networks/ov/connect", &json!({"Container": spare.name}));
    let connect_503 = t.elapsed();
    let local_during: Vec<Duration> = (0..5)
        .map(|i| {
            let t = Instant::now();
            a.create_network(&json!({"Name": format!("during{i}")}));
            t.elapsed()
        })
        .collect();
    let t = Instant::now();
    let list = a.get("/networks").json();
    let list_time = t.elapsed();
    let listed = list
        .as_array()
        .is_some_and(|l| l.iter().any(|n| n["Name"] == "ov"));
    h.etcd[1].resume();
    h.etcd[2].resume();
    let (lb50, _) = stats(local_before);
    let (ld50, _) = stats(local_during);

    println!(
        "overlay benchmark ({} mode): 3 namespace-hosts, 3-member etcd, debug/release as built",
        if quick { "quick" } else { "full" }
    );
    println!("| measure | median | p99 | target |");
    println!("|---|---|---|---|");
    println!("| connect, local bridge ({reps}×) | {br50:.1} ms | {br99:.1} ms | |");
    println!(
        "| connect, overlay ({reps}×) | {ov50:.1} ms | {ov99:.1} ms | ≤ 2× bridge ({:.2}×) |",
        ov50 / br50
    );
    println!("| of which (mean per call, connects and disconnects of both kinds): {spent} | | | |");
    println!(
        "| convergence A connect → B first answer ({conv_reps}×, {lost_first} over 900 ms) | {cv50:.1} ms | {cv99:.1} ms | p99 < 100 ms |"
    );
    println!(
        "| 30 concurrent connects from 3 hosts, overlay ({waves} waves) | {w50:.1} ms | {w99:.1} ms | < 300 ms |"
    );
    println!(
        "| 30 concurrent connects from 3 hosts, local bridges (baseline) | {bw50:.1} ms | {bw99:.1} ms | |"
    );
    println!(
        "| etcd stalled: overlay create → {} | {:.0} ms | | 503 < 1 s |",
        create.status,
        ms(create_503)
    );
    println!(
        "| etcd stalled: overlay connect → {} | {:.0} ms | | 503 < 1 s |",
        conn.status,
        ms(connect_503)
    );
    println!(
        "| local bridge create, etcd fine / stalled | {lb50:.1} / {ld50:.1} ms | | not slowed |"
    );
    println!(
        "| etcd stalled: list ({:.1} ms) shows the overlay | {listed} | | true |",
        ms(list_time)
    );
}

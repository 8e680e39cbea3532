//! The embedded DNS server (issue 15): names between containers on user-defined networks,
//! scoped to the networks they share; forwarding to an upstream server that the test itself
//! runs in a namespace of its own (never a real resolver); restarts and crashes; hostile
//! messages; the docker CLI. Every query is sent from inside a test namespace.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::{Daemon, Netns, SandboxNames, rand_hex, run};
use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use nix::sched::{CloneFlags, setns};
use serde_json::json;

const RESOLVER: &str = "127.0.0.11:53";

/// Runs `work` on a thread that entered the named namespace `ns`.
fn in_netns<T: Send + 'static>(ns: &str, work: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = File::open(&path).expect("open namespace");
        setns(&file, CloneFlags::CLONE_NEWNET).expect("enter namespace");
        work()
    })
    .join()
    .expect("namespace thread")
}

fn query_bytes(name: &str, qtype: RecordType) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    m.to_vec().expect("encode")
}

/// One query over UDP from inside `ns` to the resolver; `None` if no answer in `wait`.
fn ask_udp(ns: &str, name: &str, qtype: RecordType, wait: Duration) -> Option<Message> {
    let bytes = query_bytes(name, qtype);
    in_netns(ns, move || {
        let s = UdpSocket::bind("127.0.0.1:0").ok()?;
        s.set_read_timeout(Some(wait)).ok()?;
        s.send_to(&bytes, RESOLVER).ok()?;
        let mut buf = [0u8; 65535];
        let n = s.recv(&mut buf).ok()?;
        Message::from_vec(&buf[..n]).ok()
    })
}

fn ask(ns: &str, name: &str, qtype: RecordType) -> Message {
    ask_udp(ns, name, qtype, Duration::from_secs(6))
        .unwrap_or_else(|| panic!("no answer from the resolver in {ns} for {name} {qtype}"))
}

/// One query over TCP from inside `ns`.
fn ask_tcp(ns: &str, name: &str, qtype: RecordType) -> Message {
    let bytes = query_bytes(name, qtype);
    in_netns(ns, move || {
        let mut s = TcpStream::connect(RESOLVER).expect("connect over TCP");
        s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        s.write_all(&framed).unwrap();
        let mut len = [0u8; 2];
        s.read_exact(&mut len).expect("answer length");
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut buf).expect("answer");
        Message::from_vec(&buf).expect("decode")
    })
}

fn addresses(m: &Message) -> Vec<IpAddr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

/// `getent hosts NAME` inside a namespace (through /etc/netns/<ns>/resolv.conf).
fn getent(ns: &str, name: &str) -> Option<String> {
    let out = run("ip", &["netns", "exec", ns, "getent", "hosts", name]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn sandbox(d: &Daemon, names: &SandboxNames) -> String {
    let name = names.fresh();
    let r = d.post(&format!("/containers/create?name={name}"), &json!({}));
    assert_eq!(r.status, 201, "{}", r.body);
    name
}

fn connect(d: &Daemon, net: &str, container: &str, aliases: &[&str]) {
    let r = d.post(
        &format!("/networks/{net}/connect"),
        &json!({"Container": container, "EndpointConfig": {"Aliases": aliases}}),
    );
    assert_eq!(r.status, 200, "connect {container} to {net}: {}", r.body);
}

fn disconnect(d: &Daemon, net: &str, container: &str) {
    let r = d.post(
        &format!("/networks/{net}/disconnect"),
        &json!({"Container": container}),
    );
    assert_eq!(r.status, 200, "disconnect {container}: {}", r.body);
}

fn ipv4_of(d: &Daemon, container: &str, net: &str) -> IpAddr {
    let j = d.get(&format!("/containers/{container}/json")).json();
    j["NetworkSettings"]["Networks"][net]["IPAddress"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no address of {container} on {net}: {j}"))
}

/// No upstream is reachable: a documentation address the daemon's namespace has no route to.
const NO_UPSTREAM: &str = "192.0.2.53";

#[test]
fn names_between_sandboxes_follow_the_api() {
    let d = Daemon::start_with(&["--dns", NO_UPSTREAM]);
    let names = SandboxNames::new();
    let (a, b, c, lone) = (
        sandbox(&d, &names),
        sandbox(&d, &names),
        sandbox(&d, &names),
        sandbox(&d, &names),
    );
    let net = format!("nbt-net-{}", rand_hex(6));
    let other = format!("nbt-other-{}", rand_hex(6));
    d.create_network(&json!({"Name": net}));
    d.create_network(&json!({"Name": other}));
    connect(&d, &net, &a, &[]);
    connect(&d, &net, &b, &["web", "Api"]);
    connect(&d, &other, &c, &[]);
    connect(&d, "bridge", &lone, &[]);
    connect(&d, "bridge", &a, &[]);
    let b_ip = ipv4_of(&d, &b, &net);

    // The file `ip netns exec` shows, and inspect's ResolvConfPath.
    let inspect = d.get(&format!("/containers/{a}/json")).json();
    let path = inspect["ResolvConfPath"].as_str().unwrap().to_string();
    assert_eq!(path, format!("/etc/netns/{a}/resolv.conf"));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("nameserver 127.0.0.11\n"), "{text}");
    assert!(text.contains("ndots:0"), "{text}");

    // getent and ping by name, as `ip netns exec test1 ping test2`.
    let hosts = getent(&a, &b).unwrap_or_else(|| panic!("getent {b}:\n{}", d.log()));
    assert!(hosts.starts_with(&b_ip.to_string()), "{hosts}");
    let ping = run("ip", &["netns", "exec", &a, "ping", "-c1", "-W2", &b]);
    assert!(ping.status.success(), "ping {b} by name failed");

    // Aliases, the short ID, DNSNames, case, <name>.<network>, a trailing dot.
    let b_id = d.get(&format!("/containers/{b}/json")).json()["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let dns_names = inspect["NetworkSettings"]["Networks"][&net]["DNSNames"].clone();
    assert_eq!(dns_names[0], a.as_str());
    for name in [
        "web".to_string(),
        "API".to_string(),
        b_id[..12].to_string(),
        b.to_uppercase(),
        format!("{b}.{net}"),
        format!("web.{net}."),
    ] {
        let m = ask(&a, &name, RecordType::A);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
        assert_eq!(addresses(&m), [b_ip], "{name}");
        assert_eq!(m.answers[0].ttl, 600);
    }
    // No IPv6 on the network: the name exists, with no AAAA.
    let m = ask(&a, &b, RecordType::AAAA);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    // PTR: <name>.<network>.
    let arpa = Name::from(b_ip).to_ascii();
    let m = ask(&a, &arpa, RecordType::PTR);
    let ptr = m.answers.first().map(|r| r.data.to_string());
    assert_eq!(ptr, Some(format!("{b}.{net}.")), "{m:?}");

    // Over TCP too.
    assert_eq!(addresses(&ask_tcp(&a, "web", RecordType::A)), [b_ip]);

    // A container on another network: NXDOMAIN for names it does not share.
    let m = ask(&c, &b, RecordType::A);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(
        ask(&c, "web", RecordType::A).metadata.response_code,
        ResponseCode::NXDomain
    );

    // The predefined bridge: no resolver, no names.
    assert!(ask_udp(&lone, &a, RecordType::A, Duration::from_millis(500)).is_none());
    let text = std::fs::read_to_string(format!("/etc/netns/{lone}/resolv.conf")).unwrap();
    assert!(!text.contains("127.0.0.11"), "{text}");
    assert!(addresses(&ask(&a, &lone, RecordType::A)).is_empty());

    // Several holders of one name: all addresses.
    connect(&d, &net, &c, &["web"]);
    let c_ip = ipv4_of(&d, &c, &net);
    let mut both = addresses(&ask(&a, "web", RecordType::A));
    both.sort();
    let mut want = vec![b_ip, c_ip];
    want.sort();
    assert_eq!(both, want);

    // Disconnect: the name is gone at once, and the resolver with the last network.
    disconnect(&d, &net, &b);
    let m = ask(&a, "web", RecordType::A);
    assert_eq!(addresses(&m), [c_ip]);
    assert!(addresses(&ask(&a, &b, RecordType::A)).is_empty());
    assert!(getent(&a, &b).is_none());
    assert!(ask_udp(&b, &a, RecordType::A, Duration::from_millis(500)).is_none());
    let text = std::fs::read_to_string(format!("/etc/netns/{b}/resolv.conf")).unwrap();
    assert!(!text.contains("127.0.0.11"), "{text}");

    names.remove_all(&d);
    assert!(!std::path::Path::new(&format!("/etc/netns/{a}")).exists());
}

/// A DNS server the test runs in a namespace of its own, reached from the daemon's namespace
/// through a veth: `a.example` has A and AAAA, `big.example` a TXT answer too long for UDP,
/// `silent.example` is never answered, anything else is NXDOMAIN.
struct Upstream {
    _ns: Netns,
}

fn upstream_answer(bytes: &[u8], udp: bool) -> Option<Vec<u8>> {
    let q = Message::from_vec(bytes).ok()?;
    let query = q.queries.first()?.clone();
    let name = query.name().to_ascii().to_ascii_lowercase();
    let mut r = Message::response(q.metadata.id, OpCode::Query);
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.recursion_available = true;
    r.add_query(query.clone());
    let owner = query.name().clone();
    match (name.as_str(), query.query_type()) {
        ("silent.example.", _) => return None,
        ("a.example.", RecordType::A) => {
            r.add_answer(Record::from_rdata(
                owner,
                30,
                RData::A(A::new(192, 0, 2, 10)),
            ));
        }
        ("a.example.", RecordType::AAAA) => {
            let v6 = "2001:db8::10".parse().unwrap();
            r.add_answer(Record::from_rdata(owner, 30, RData::AAAA(AAAA(v6))));
        }
        ("big.example.", RecordType::TXT) if udp => {
            r.metadata.truncation = true;
        }
        ("big.example.", RecordType::TXT) => {
            for i in 0..40 {
                let txt = TXT::new(vec![format!("{i:03}-{}", "x".repeat(96))]);
                r.add_answer(Record::from_rdata(owner.clone(), 30, RData::TXT(txt)));
            }
        }
        _ => r.metadata.response_code = ResponseCode::NXDomain,
    }
    r.to_vec().ok()
}

impl Upstream {
    fn start(d: &Daemon, ip: Ipv4Addr) -> Upstream {
        let ns = Netns::new("nbt-up");
        let host_end = format!("nbtu{}", rand_hex(6));
        common::must(
            "ip",
            &[
                "-n", &d.ns.name, "link", "add", &host_end, "type", "veth", "peer", "name", "eth0",
                "netns", &ns.name,
            ],
        );
        let near = Ipv4Addr::from(u32::from(ip) - 1);
        d.ip(&["addr", "add", &format!("{near}/30"), "dev", &host_end]);
        d.ip(&["link", "set", &host_end, "up"]);
        ns.ip(&["addr", "add", &format!("{ip}/30"), "dev", "eth0"]);
        ns.ip(&["link", "set", "eth0", "up"]);
        let path = format!("/run/netns/{}", ns.name);
        let bound = std::sync::Arc::new(std::sync::Barrier::new(3));
        for tcp in [false, true] {
            let (path, bound) = (path.clone(), bound.clone());
            std::thread::spawn(move || {
                let file = File::open(&path).expect("open namespace");
                setns(&file, CloneFlags::CLONE_NEWNET).expect("enter namespace");
                if tcp {
                    let l = TcpListener::bind("0.0.0.0:53").expect("upstream TCP");
                    bound.wait();
                    for mut s in l.incoming().flatten() {
                        let mut len = [0u8; 2];
                        if s.read_exact(&mut len).is_err() {
                            continue;
                        }
                        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
                        if s.read_exact(&mut buf).is_err() {
                            continue;
                        }
                        if let Some(answer) = upstream_answer(&buf, false) {
                            let mut framed = (answer.len() as u16).to_be_bytes().to_vec();
                            framed.extend_from_slice(&answer);
                            let _ = s.write_all(&framed);
                        }
                    }
                } else {
                    let s = UdpSocket::bind("0.0.0.0:53").expect("upstream UDP");
                    bound.wait();
                    let mut buf = [0u8; 4096];
                    while let Ok((n, peer)) = s.recv_from(&mut buf) {
                        if let Some(answer) = upstream_answer(&buf[..n], true) {
                            let _ = s.send_to(&answer, peer);
                        }
                    }
                }
            });
        }
        bound.wait();
        Upstream { _ns: ns }
    }
}

/// A random 10.253.x.y/30's far end, for an upstream's veth.
fn upstream_ip() -> Ipv4Addr {
    let n = u32::from_str_radix(&rand_hex(4), 16).unwrap() & 0x3fff;
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 253, 0, 0)) + n * 4 + 2)
}

#[test]
fn other_names_are_forwarded_upstream() {
    let ip = upstream_ip();
    let d = Daemon::start_with(&["--dns", &ip.to_string()]);
    let _up = Upstream::start(&d, ip);
    let names = SandboxNames::new();
    let a = sandbox(&d, &names);
    let net = format!("nbt-net-{}", rand_hex(6));
    d.create_network(&json!({"Name": net}));
    connect(&d, &net, &a, &[]);
    let text = std::fs::read_to_string(format!("/etc/netns/{a}/resolv.conf")).unwrap();
    assert!(
        text.contains(&format!("# ExtServers: [host({ip})]")),
        "{text}"
    );

    let m = ask(&a, "a.example", RecordType::A);
    assert_eq!(addresses(&m), ["192.0.2.10".parse::<IpAddr>().unwrap()]);
    let m = ask(&a, "A.Example.", RecordType::AAAA);
    assert_eq!(addresses(&m), ["2001:db8::10".parse::<IpAddr>().unwrap()]);
    assert_eq!(
        ask(&a, "nothing.example", RecordType::A)
            .metadata
            .response_code,
        ResponseCode::NXDomain
    );
    let hosts = getent(&a, "a.example").unwrap_or_else(|| panic!("getent:\n{}", d.log()));
    // getent prefers the AAAA answer when there is one.
    assert!(
        hosts.contains("2001:db8::10") || hosts.contains("192.0.2.10"),
        "{hosts}"
    );

    // Too big for UDP: TC, then the same over TCP in full.
    let m = ask(&a, "big.example", RecordType::TXT);
    assert!(m.metadata.truncation, "{m:?}");
    let m = ask_tcp(&a, "big.example", RecordType::TXT);
    assert_eq!(m.answers.len(), 40);
    assert!(m.to_vec().unwrap().len() > 4096);

    // An upstream that never answers: SERVFAIL in bounded time, over UDP and TCP.
    for tcp in [false, true] {
        let started = Instant::now();
        let m = if tcp {
            ask_tcp(&a, "silent.example", RecordType::A)
        } else {
            ask(&a, "silent.example", RecordType::A)
        };
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
    names.remove_all(&d);
}

#[test]
fn names_match_the_store_after_restart_and_crashes() {
    let mut d = Daemon::start_with(&["--dns", NO_UPSTREAM]);
    let names = SandboxNames::new();
    let (a, b, c) = (
        sandbox(&d, &names),
        sandbox(&d, &names),
        sandbox(&d, &names),
    );
    let net = format!("nbt-net-{}", rand_hex(6));
    d.create_network(&json!({"Name": net}));
    connect(&d, &net, &a, &[]);
    connect(&d, &net, &b, &["web"]);
    let b_ip = ipv4_of(&d, &b, &net);

    d.restart();
    assert_eq!(addresses(&ask(&a, "web", RecordType::A)), [b_ip]);

    // Killed after the kernel work of a connect: rolled back, so c has no name.
    d.restart_with_env(&[("NETBRIDGE_CRASH_AT", "connect.attached")]);
    let body = json!({"Container": c, "EndpointConfig": {"Aliases": ["late"]}}).to_string();
    let _ = d.try_request(
        "POST",
        &format!("/networks/{net}/connect"),
        Some("application/json"),
        Some(&body),
    );
    assert!(d.wait_exit(30).is_some(), "no crash at connect.attached");
    d.restart_with_env(&[]);
    let connected = d.get(&format!("/networks/{net}")).json()["Containers"]
        .as_object()
        .map(|m| m.len())
        .unwrap_or(0);
    assert_eq!(connected, 2);
    assert!(addresses(&ask(&a, "late", RecordType::A)).is_empty());
    assert!(addresses(&ask(&a, &c, RecordType::A)).is_empty());

    // Killed after the interface of a disconnect went, before its row: the row stands, the
    // endpoint is re-made, and the name still answers, as the store says.
    d.restart_with_env(&[("NETBRIDGE_CRASH_AT", "disconnect.detached")]);
    let body = json!({"Container": b}).to_string();
    let _ = d.try_request(
        "POST",
        &format!("/networks/{net}/disconnect"),
        Some("application/json"),
        Some(&body),
    );
    assert!(d.wait_exit(30).is_some(), "no crash at disconnect.detached");
    d.restart_with_env(&[]);
    let still = d.get(&format!("/containers/{b}/json")).json();
    assert!(
        still["NetworkSettings"]["Networks"][&net].is_object(),
        "{still}"
    );
    assert_eq!(addresses(&ask(&a, "web", RecordType::A)), [b_ip]);
    disconnect(&d, &net, &b);
    assert!(addresses(&ask(&a, "web", RecordType::A)).is_empty());
    names.remove_all(&d);
}

#[test]
fn hostile_messages_cost_bounded_work() {
    let d = Daemon::start_with(&["--dns", NO_UPSTREAM]);
    let names = SandboxNames::new();
    let (a, b) = (sandbox(&d, &names), sandbox(&d, &names));
    let net = format!("nbt-net-{}", rand_hex(6));
    d.create_network(&json!({"Name": net}));
    connect(&d, &net, &a, &[]);
    connect(&d, &net, &b, &[]);
    let b_ip = ipv4_of(&d, &b, &net);

    let (mut rng, seed) = common::Rng::seeded();
    eprintln!("seed {seed}");
    let valid = query_bytes(&b, RecordType::A);
    let mut messages: Vec<Vec<u8>> = Vec::new();
    for _ in 0..3000 {
        let mut m = if rng.chance(50) {
            let cut = rng.below(valid.len() + 1);
            valid[..cut].to_vec()
        } else {
            (0..rng.below(600)).map(|_| rng.next() as u8).collect()
        };
        if rng.chance(30) && m.len() > 4 {
            let at = rng.below(m.len());
            m[at] ^= rng.next() as u8;
        }
        messages.push(m);
    }
    // A compression pointer to itself, and a chain of pointers.
    let mut looped = valid[..12].to_vec();
    looped[5] = 1;
    looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    messages.push(looped);
    let started = Instant::now();
    let sent = messages.clone();
    in_netns(&a, move || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        for m in &sent {
            let _ = s.send_to(m, RESOLVER);
        }
        // TCP: a 64 KiB message, a length with nothing after it, garbage.
        let big = vec![0xffu8; 65535];
        for framed in [
            [&[0xff, 0xff][..], &big[..]].concat(),
            vec![0x40, 0x00],
            sent[0].clone(),
        ] {
            if let Ok(mut t) = TcpStream::connect(RESOLVER) {
                let _ = t.write_all(&framed);
            }
        }
    });
    // Still answering, and the API too. A flood may fill the socket's buffer, so a query
    // may be dropped: retried, as stub resolvers do.
    let m = (0..5)
        .find_map(|_| ask_udp(&a, &b, RecordType::A, Duration::from_secs(3)))
        .expect("the resolver stopped answering");
    assert_eq!(addresses(&m), [b_ip]);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(d.get("/_ping").status, 200);
    let addr: SocketAddr = RESOLVER.parse().unwrap();
    assert_eq!(addr.port(), 53);
    names.remove_all(&d);
}

#[test]
fn queries_in_flight_from_many_sockets_each_get_their_own_answer() {
    let d = Daemon::start_with(&["--dns", NO_UPSTREAM]);
    let names = SandboxNames::new();
    let asker = sandbox(&d, &names);
    let holders: Vec<String> = (0..4).map(|_| sandbox(&d, &names)).collect();
    let net = format!("nbt-net-{}", rand_hex(6));
    d.create_network(&json!({"Name": net}));
    connect(&d, &net, &asker, &[]);
    for h in &holders {
        connect(&d, &net, h, &[]);
    }
    let expected: Vec<(String, IpAddr)> = holders
        .iter()
        .map(|h| (h.clone(), ipv4_of(&d, h, &net)))
        .collect();
    // Several sockets each send a burst before reading, so the resolver reads and answers
    // them in batches: every answer must reach its own sender, for its own question.
    let unanswered = in_netns(&asker, move || {
        let sockets: Vec<UdpSocket> = (0..4)
            .map(|_| {
                let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                s
            })
            .collect();
        let mut unanswered = 0;
        for round in 0..5u16 {
            for (k, s) in sockets.iter().enumerate() {
                for i in 0..50u16 {
                    let (name, _) = &expected[usize::from(i) % expected.len()];
                    let mut q = query_bytes(name, RecordType::A);
                    let id = round * 1000 + (k as u16) * 100 + i;
                    q[..2].copy_from_slice(&id.to_be_bytes());
                    s.send_to(&q, RESOLVER).unwrap();
                }
            }
            for (k, s) in sockets.iter().enumerate() {
                let mut seen = std::collections::HashSet::new();
                let mut buf = [0u8; 4096];
                while seen.len() < 50 {
                    let Ok(n) = s.recv(&mut buf) else { break };
                    let m = Message::from_vec(&buf[..n]).expect("an answer that decodes");
                    let i = m.metadata.id - round * 1000 - (k as u16) * 100;
                    assert!(i < 50, "answer {} on socket {k}", m.metadata.id);
                    let (name, ip) = &expected[usize::from(i) % expected.len()];
                    let asked = m.queries[0].name().to_ascii();
                    assert_eq!(asked.trim_end_matches('.'), name.as_str());
                    assert_eq!(addresses(&m), [*ip]);
                    seen.insert(i);
                }
                unanswered += 50 - seen.len();
            }
        }
        unanswered
    });
    // Loopback drops nothing unless a buffer overflows; 200 queries fit in the default ones.
    assert_eq!(unanswered, 0);
    names.remove_all(&d);
}

#[test]
fn docker_cli_alias_resolves() {
    let d = Daemon::start_with(&["--dns", NO_UPSTREAM]);
    let names = SandboxNames::new();
    let (x, y) = (sandbox(&d, &names), sandbox(&d, &names));
    let net = format!("nbt-net-{}", rand_hex(6));
    d.docker_ok(&["network", "create", &net]);
    d.docker_ok(&["network", "connect", &net, &y]);
    d.docker_ok(&["network", "connect", "--alias", "web", &net, &x]);
    let x_ip = ipv4_of(&d, &x, &net);
    let hosts = getent(&y, "web").unwrap_or_else(|| panic!("getent web:\n{}", d.log()));
    assert!(hosts.starts_with(&x_ip.to_string()), "{hosts}");
    let path = d.docker_ok(&["inspect", "-f", "{{.ResolvConfPath}}", &x]);
    assert_eq!(path.trim(), format!("/etc/netns/{x}/resolv.conf"));
    d.docker_ok(&["network", "disconnect", &net, &x]);
    assert!(getent(&y, "web").is_none());
    names.remove_all(&d);
}

#[test]
fn names_on_a_macvlan_network() {
    // No host-side gateway to listen on: the resolver in the namespace still answers.
    let d = Daemon::start_with(&["--dns", NO_UPSTREAM]);
    let names = SandboxNames::new();
    let (a, b) = (sandbox(&d, &names), sandbox(&d, &names));
    let net = format!("nbt-mv-{}", rand_hex(6));
    d.create_network(&json!({"Name": net, "Driver": "macvlan"}));
    connect(&d, &net, &a, &[]);
    connect(&d, &net, &b, &["db"]);
    let b_ip = ipv4_of(&d, &b, &net);
    assert_eq!(addresses(&ask(&a, "db", RecordType::A)), [b_ip]);
    let ping = run("ip", &["netns", "exec", &a, "ping", "-c1", "-W2", "db"]);
    assert!(ping.status.success(), "ping db over macvlan failed");
    names.remove_all(&d);
    let r = d.delete(&format!("/networks/{net}"));
    assert_eq!(r.status, 204, "{}", r.body);
}

#[test]
fn the_hosts_resolv_conf_is_followed() {
    let dir = std::env::temp_dir().join(format!("nbt-resolv-{}", rand_hex(8)));
    std::fs::create_dir_all(&dir).unwrap();
    let host = dir.join("resolv.conf");
    std::fs::write(&host, format!("nameserver {NO_UPSTREAM}\n")).unwrap();
    let d = Daemon::start_with(&["--host-resolv-conf", host.to_str().unwrap()]);
    let names = SandboxNames::new();
    let (a, b) = (sandbox(&d, &names), sandbox(&d, &names));
    let net = format!("nbt-net-{}", rand_hex(6));
    d.create_network(&json!({"Name": net}));
    connect(&d, &net, &a, &[]);
    connect(&d, &net, &b, &[]);
    let file = format!("/etc/netns/{a}/resolv.conf");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(&format!("host({NO_UPSTREAM})")), "{text}");

    // A new search domain and option: the sandbox's file follows, and a name with the
    // search domain appended still matches the container.
    std::fs::write(
        &host,
        "nameserver 192.0.2.54\nsearch corp.example\noptions timeout:1\n",
    )
    .unwrap();
    let followed = common::eventually(10, || {
        std::fs::read_to_string(&file)
            .is_ok_and(|t| t.contains("search corp.example\n") && t.contains("host(192.0.2.54)"))
    });
    assert!(
        followed,
        "{}",
        std::fs::read_to_string(&file).unwrap_or_default()
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("options timeout:1 ndots:0\n"), "{text}");
    let b_ip = ipv4_of(&d, &b, &net);
    let m = ask(&a, &format!("{b}.corp.example"), RecordType::A);
    assert_eq!(addresses(&m), [b_ip]);
    names.remove_all(&d);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_namespace_netbridge_did_not_make_gets_a_resolver_but_no_file() {
    let d = Daemon::start_with(&["--dns", NO_UPSTREAM]);
    let names = SandboxNames::new();
    let peer = sandbox(&d, &names);
    // `ip netns add` leaves lo down: the resolver brings it up.
    let foreign = format!("nbt-foreign-{}", rand_hex(8));
    common::must("ip", &["netns", "add", &foreign]);
    let _cleanup = Netns {
        name: foreign.clone(),
    };
    let net = format!("nbt-net-{}", rand_hex(6));
    d.create_network(&json!({"Name": net}));
    connect(&d, &net, &peer, &[]);
    connect(&d, &net, &foreign, &[]);
    let peer_ip = ipv4_of(&d, &peer, &net);
    assert_eq!(addresses(&ask(&foreign, &peer, RecordType::A)), [peer_ip]);
    assert!(!std::path::Path::new("/etc/netns").join(&foreign).exists());
    let inspect = d.get(&format!("/containers/{foreign}/json")).json();
    assert_eq!(inspect["ResolvConfPath"], "");
    disconnect(&d, &net, &foreign);
    assert!(ask_udp(&foreign, &peer, RecordType::A, Duration::from_millis(500)).is_none());
    names.remove_all(&d);
}

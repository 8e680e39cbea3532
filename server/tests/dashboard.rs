//! The dashboard's API and access (issue 16): `GET /netbridge/topology`, `POST
//! /netbridge/diagnose` with its in-namespace ICMP probe, and the browser login on the TCP
//! listener (one-time codes, the token form, session cookies, CSRF, CSP). The browser itself is
//! driven in `dashboard_browser.rs`.
//!
//! TCP clients run inside the daemon's throwaway namespace (curl through `nsenter`), and every
//! probe goes to an address in a namespace the test made.

mod common;

use std::process::Command;

use common::*;
use serde_json::{Value, json};

const PORT: u16 = 2375;

/// Two sandboxes on one network, as the seed's experiment has them.
fn seed(d: &Daemon) -> (String, String) {
    let (a, b) = (format!("a{}", rand_hex(6)), format!("b{}", rand_hex(6)));
    for name in [&a, &b] {
        let r = d.raw(
            "POST",
            &format!("/containers/create?name={name}"),
            None,
            None,
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    d.create_network(&json!({"Name": "mynet", "IPAM": {"Config": [{"Subnet": "172.30.0.0/24"}]}}));
    for (name, ip) in [(&a, None), (&b, Some("172.30.0.20"))] {
        let mut body = json!({"Container": name});
        if let Some(ip) = ip {
            body["EndpointConfig"] = json!({"IPAMConfig": {"IPv4Address": ip}});
        }
        let r = d.post("/networks/mynet/connect", &body);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    (a, b)
}

fn diagnose(d: &Daemon, body: Value) -> Response {
    d.post("/netbridge/diagnose", &body)
}

fn codes(v: &Value) -> Vec<String> {
    v["Reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["Code"].as_str().map(str::to_string))
        .collect()
}

fn cleanup(d: &Daemon, names: &[&str]) {
    for n in names {
        d.delete(&format!("/containers/{n}?force=1"));
    }
}

#[test]
fn topology_is_the_whole_picture_in_one_request() {
    let d = Daemon::start();
    let (a, b) = seed(&d);
    let t = d.get("/netbridge/topology");
    assert_eq!(t.status, 200, "{}", t.body);
    let t = t.json();
    let net = t["Networks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["Name"] == "mynet")
        .expect("mynet in the topology")
        .clone();
    assert_eq!(net["Subnets"][0]["Gateway"], "172.30.0.1");
    let bridge = net["Bridge"].as_str().unwrap().to_string();
    let eps: Vec<&Value> = t["Endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["NetworkId"] == net["Id"])
        .collect();
    assert_eq!(eps.len(), 2, "{t}");
    for e in &eps {
        assert_eq!(e["Interface"], "eth0");
        let host = e["HostInterface"].as_str().unwrap();
        let master = d.ip(&["-o", "link", "show", "dev", host]);
        assert!(master.contains(&format!("master {bridge}")), "{master}");
    }
    let names: Vec<&str> = t["Containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["Name"].as_str())
        .collect();
    assert!(names.contains(&a.as_str()) && names.contains(&b.as_str()));

    // One network's part, as the page fetches after an event naming it.
    let part = d.get("/netbridge/topology?network=mynet");
    assert_eq!(part.status, 200, "{}", part.body);
    let part = part.json();
    assert_eq!(part["Networks"].as_array().unwrap().len(), 1);
    assert_eq!(part["Networks"][0]["Id"], net["Id"]);
    assert_eq!(part["Endpoints"].as_array().unwrap().len(), 2);
    assert_eq!(part["Containers"].as_array().unwrap().len(), 2);
    let gone = d.get("/netbridge/topology?network=nosuch");
    assert_eq!(gone.status, 404, "{}", gone.body);
    assert_eq!(gone.message(), "network nosuch not found");
    cleanup(&d, &[&a, &b]);
}

#[test]
fn diagnose_explains_then_probes_from_inside_the_source() {
    let d = Daemon::start();
    let (a, b) = seed(&d);
    let r = diagnose(&d, json!({"Source": a, "Target": b, "Count": 3}));
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["Verdict"], "reachable", "{v}");
    assert_eq!(v["SharedNetworks"], json!(["mynet"]));
    assert_eq!(v["Address"], "172.30.0.20");
    assert_eq!(codes(&v), ["shared-network"]);
    assert_eq!(v["Probe"]["Sent"], 3);
    assert_eq!(v["Probe"]["Received"], 3, "{v}");
    assert_eq!(v["Probe"]["RttMs"].as_array().unwrap().len(), 3);
    // The gateway, by address.
    let r = diagnose(&d, json!({"Source": a, "Target": "172.30.0.1", "Count": 1}));
    assert_eq!(r.json()["Verdict"], "reachable", "{}", r.body);
    assert_eq!(codes(&r.json()), ["gateway"]);
    assert_eq!(r.json()["Probe"]["Received"], 1, "{}", r.body);

    // b moves to another network: isolation, and the probe is lost.
    d.create_network(&json!({"Name": "other"}));
    assert_eq!(
        d.post("/networks/mynet/disconnect", &json!({"Container": b}))
            .status,
        200
    );
    assert_eq!(
        d.post("/networks/other/connect", &json!({"Container": b}))
            .status,
        200
    );
    let r = diagnose(
        &d,
        json!({"Source": a, "Target": b, "Count": 2, "TimeoutMs": 1000}),
    );
    let v = r.json();
    assert_eq!(v["Verdict"], "blocked", "{v}");
    assert!(codes(&v).contains(&"isolated".to_string()), "{v}");
    assert_eq!(v["Probe"]["Received"], 0, "{v}");
    assert_eq!(v["Probe"]["Loss"], 100.0);

    // ICC off: on one bridge, and still blocked.
    d.create_network(&json!({"Name": "quiet",
        "Options": {"com.docker.network.bridge.enable_icc": "false"}}));
    for c in [&a, &b] {
        assert_eq!(
            d.post("/networks/quiet/connect", &json!({"Container": c}))
                .status,
            200
        );
    }
    let v = diagnose(&d, json!({"Source": a, "Target": b, "Count": 0})).json();
    assert_eq!(v["Verdict"], "blocked", "{v}");
    assert!(codes(&v).contains(&"icc-disabled".to_string()), "{v}");
    assert!(v["Probe"].is_null(), "Count 0 sends nothing: {v}");

    // Attached to nothing: no route.
    let lonely = format!("c{}", rand_hex(6));
    d.raw(
        "POST",
        &format!("/containers/create?name={lonely}"),
        None,
        None,
    );
    let v = diagnose(
        &d,
        json!({"Source": lonely, "Target": "172.30.0.20", "Count": 1, "TimeoutMs": 300}),
    )
    .json();
    assert_eq!(v["Verdict"], "blocked", "{v}");
    assert!(codes(&v).contains(&"no-route".to_string()), "{v}");
    assert_eq!(v["Probe"]["Received"], 0);
    assert!(
        v["Probe"]["Error"].as_str().is_some(),
        "sendto fails without a route: {v}"
    );
    cleanup(&d, &[&a, &b, &lonely]);
}

#[test]
fn diagnose_refuses_what_it_cannot_do() {
    let d = Daemon::start();
    let (a, b) = seed(&d);
    let r = diagnose(&d, json!({"Source": "nosuch", "Target": b}));
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.message(), "No such container: nosuch");
    let r = diagnose(&d, json!({"Source": a, "Target": "nosuch"}));
    assert_eq!(r.status, 404, "{}", r.body);
    let r = diagnose(&d, json!({"Source": a, "Target": b, "Count": 11}));
    assert_eq!(r.status, 400, "{}", r.body);
    let r = diagnose(&d, json!({"Source": a, "Target": b, "TimeoutMs": 5001}));
    assert_eq!(r.status, 400, "{}", r.body);
    let r = diagnose(&d, json!({"Source": a}));
    assert_eq!(r.status, 400, "{}", r.body);
    let r = d.raw(
        "POST",
        "/netbridge/diagnose",
        Some("application/json"),
        Some("{nope"),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    let r = diagnose(&d, json!({"Source": a, "Target": b, "Bogus": 1}));
    assert_eq!(r.status, 400, "{}", r.body);
    // At most 10 echoes in at most 5 s, whatever answers.
    let started = std::time::Instant::now();
    let r = diagnose(
        &d,
        json!({"Source": a, "Target": "172.30.0.99", "Count": 10, "TimeoutMs": 5000}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(started.elapsed().as_secs_f64() < 6.0);
    assert_eq!(r.json()["Probe"]["Sent"], 10);
    assert_eq!(r.json()["Verdict"], "unknown");
    assert_eq!(codes(&r.json()), ["unassigned"]);
    cleanup(&d, &[&a, &b]);
}

// ---------------------------------------------------------------------------------------------
// Browser access on the TCP listener
// ---------------------------------------------------------------------------------------------

/// A daemon with a loopback TCP listener and one token, and the token.
fn tcp_daemon() -> (Daemon, String) {
    let token = format!("tok-{}", rand_hex(24));
    let dir = std::env::temp_dir().join(format!("nbt-dash-{}", rand_hex(8)));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let file = dir.join("tokens");
    std::fs::write(&file, format!("{token}\n")).expect("token file");
    let listen = format!("127.0.0.1:{PORT}");
    let d = Daemon::start_with(&[
        "--tcp",
        &listen,
        "--token-file",
        &file.display().to_string(),
    ]);
    // The daemon has read it; the token lives on in the test only.
    let _ = std::fs::remove_dir_all(&dir);
    (d, token)
}

/// `curl -i` inside the daemon's namespace.
fn curl(d: &Daemon, args: &[&str]) -> Response {
    let out = Command::new("nsenter")
        .arg(format!("--net=/run/netns/{}", d.ns.name))
        .args([
            "--",
            "curl",
            "-sS",
            "-i",
            "--max-time",
            "20",
            "-H",
            "Expect:",
        ])
        .args(args)
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw = out.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: String::from_utf8_lossy(raw.get(split + 4..).unwrap_or_default()).into_owned(),
    }
}

fn url(path: &str) -> String {
    format!("http://127.0.0.1:{PORT}{path}")
}

/// `netbridge login-url` against this daemon.
fn login_url(d: &Daemon) -> String {
    let out = d.run_cli(&["login-url", "--socket", &d.socket.display().to_string()]);
    assert!(
        out.status.success(),
        "login-url: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn session_cookie(r: &Response) -> String {
    let c = r
        .header("set-cookie")
        .unwrap_or_else(|| panic!("no cookie: {r:?}"));
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(c.contains(flag), "cookie without {flag}: {c}");
    }
    c.split(';').next().unwrap().to_string()
}

#[test]
fn a_browser_logs_in_once_and_keeps_a_session() {
    let (d, token) = tcp_daemon();
    // A browser with nothing is sent to the login page, for the dashboard and the docs alike;
    // an API client still gets 401.
    for page in ["/ui/", "/docs/"] {
        let r = curl(&d, &[&url(page)]);
        assert_eq!(r.status, 303, "{page}: {r:?}");
        assert_eq!(r.header("location"), Some("/ui/login"));
    }
    assert_eq!(curl(&d, &[&url("/networks")]).status, 401);
    let form = curl(&d, &[&url("/ui/login")]);
    assert_eq!(form.status, 200);
    assert!(form.body.contains("name=\"token\""), "{}", form.body);

    // A one-time login URL works once.
    let link = login_url(&d);
    assert!(link.starts_with(&url("/ui/login?code=")), "{link}");
    let first = curl(&d, &[&link]);
    assert_eq!(first.status, 303, "{first:?}");
    assert_eq!(first.header("location"), Some("/ui/"));
    let cookie = session_cookie(&first);
    let again = curl(&d, &[&link]);
    assert_eq!(again.status, 401, "a spent code: {again:?}");
    assert!(again.header("set-cookie").is_none());

    // The session opens the dashboard and the docs, each under a Content-Security-Policy.
    for page in ["/ui/", "/docs/", "/ui/app.js"] {
        let r = curl(&d, &["-b", &cookie, &url(page)]);
        assert_eq!(r.status, 200, "{page}: {r:?}");
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
            "{csp}"
        );
        assert_eq!(r.header("referrer-policy"), Some("same-origin"));
    }
    let topo = curl(&d, &["-b", &cookie, &url("/netbridge/topology")]);
    assert_eq!(topo.status, 200, "{topo:?}");

    // Changing state needs the CSRF header; a foreign origin is refused even with it.
    let create = |extra: &[&str], name: &str| {
        let body = json!({"Name": name}).to_string();
        let mut args = vec![
            "-b",
            cookie.as_str(),
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
        ];
        args.extend_from_slice(extra);
        let u = url("/networks/create");
        args.extend_from_slice(&["-d", &body, &u]);
        curl(&d, &args)
    };
    let r = create(&[], "nocsrf");
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.body.contains("x-netbridge-csrf"), "{}", r.body);
    let r = create(
        &[
            "-H",
            "X-Netbridge-Csrf: 1",
            "-H",
            "Origin: http://evil.example",
        ],
        "evil",
    );
    assert_eq!(r.status, 403, "{r:?}");
    let own = url("");
    let origin = format!("Origin: {own}");
    let r = create(&["-H", "X-Netbridge-Csrf: 1", "-H", &origin], "fromui");
    assert_eq!(r.status, 201, "{r:?}");
    let names = d.get("/networks").body;
    assert!(names.contains("fromui") && !names.contains("nocsrf") && !names.contains("evil"));

    // Logging out ends the session.
    let out = curl(&d, &["-b", &cookie, "-X", "POST", &url("/ui/logout")]);
    assert_eq!(out.status, 303);
    assert_eq!(
        curl(&d, &["-b", &cookie, &url("/netbridge/topology")]).status,
        401
    );

    // The token form: a wrong token says so and opens nothing; the right one logs in.
    let wrong = curl(&d, &["--data-urlencode", "token=wrong", &url("/ui/login")]);
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Invalid token."), "{}", wrong.body);
    assert!(wrong.header("set-cookie").is_none());
    let right = curl(
        &d,
        &[
            "--data-urlencode",
            &format!("token={token}"),
            &url("/ui/login"),
        ],
    );
    assert_eq!(right.status, 303, "{right:?}");
    let cookie = session_cookie(&right);
    assert_eq!(curl(&d, &["-b", &cookie, &url("/ui/")]).status, 200);

    // A bogus session is no session.
    let r = curl(
        &d,
        &["-b", "netbridge_session=0000", &url("/netbridge/topology")],
    );
    assert_eq!(r.status, 401);
    // The long-lived token never reaches the log.
    assert!(
        !d.log().contains(&token),
        "the token is in the daemon's log"
    );
}

#[test]
fn login_codes_need_a_tcp_listener() {
    let d = Daemon::start();
    let r = d.raw("POST", "/netbridge/login-code", None, None);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.message().contains("--tcp"), "{}", r.body);
    let out = d.run_cli(&["login-url", "--socket", &d.socket.display().to_string()]);
    assert!(!out.status.success());
}

//! The Docker network API over raw HTTP on the daemon's Unix socket: versioning, `/_ping`,
//! `/version`, list filters, inspect, create (and its errors), delete, prune, restart
//! persistence, signals and the `--tcp` listener. Every test runs its own daemon in its own
//! network namespace and checks the kernel state there as well as the HTTP answers.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon, Netns, Response, Value, inet, json, rand_hex};

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

/// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `GET /networks` with a `filters` JSON text (empty = no parameter).
fn list_with(d: &Daemon, filters: &str) -> Response {
    if filters.is_empty() {
        d.get("/networks")
    } else {
        d.get(&format!("/networks?filters={}", enc(filters)))
    }
}

/// The names `GET /networks?filters=…` returns, which must succeed with a JSON array.
fn names(d: &Daemon, filters: &str) -> BTreeSet<String> {
    let r = list_with(d, filters);
    assert_eq!(r.status, 200, "list {filters}: {}", r.body);
    r.json()
        .as_array()
        .unwrap_or_else(|| panic!("list is not an array: {}", r.body))
        .iter()
        .map(|n| n["Name"].as_str().expect("Name").to_string())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Every link name in the daemon's namespace.
fn links(d: &Daemon) -> BTreeSet<String> {
    d.ip(&["-o", "link", "show"])
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// The kernel bridge Docker names after a network ID.
fn br(id: &str) -> String {
    format!("br-{}", &id[..12])
}

/// `GET /networks/{id}`, which must succeed.
fn inspect(d: &Daemon, term: &str) -> Value {
    let r = d.get(&format!("/networks/{term}"));
    assert_eq!(r.status, 200, "inspect {term}: {}", r.body);
    r.json()
}

/// A POST with a raw body and Content-Type.
fn post_raw(d: &Daemon, path: &str, ct: Option<&str>, body: &str) -> Response {
    d.raw("POST", path, ct, Some(body))
}

/// Asserts an error answer: status and exact Docker message.
fn assert_error(r: &Response, status: u16, message: &str) {
    assert_eq!(r.status, status, "expected {status} {message:?}, got {r:?}");
    assert_eq!(r.message(), message, "status {status}");
}

/// IPv6 global addresses (with prefix) on a link.
fn inet6(d: &Daemon, dev: &str) -> Vec<String> {
    d.ip(&["-6", "addr", "show", "dev", dev])
        .lines()
        .filter_map(|l| l.trim().strip_prefix("inet6 "))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|a| !a.starts_with("fe80:"))
        .map(str::to_string)
        .collect()
}

fn mtu(d: &Daemon, dev: &str) -> u32 {
    let out = d.ip(&["link", "show", "dev", dev]);
    let mut words = out.split_whitespace();
    while let Some(w) = words.next() {
        if w == "mtu" {
            return words
                .next()
                .and_then(|m| m.parse().ok())
                .expect("mtu value");
        }
    }
    panic!("no mtu in {out}")
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` or with a numeric offset: RFC 3339.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let head = digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !head {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return false;
        }
        rest = &frac[n..];
    }
    rest == "Z"
        || (rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && rest.as_bytes()[3] == b':')
}

fn is_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// The state that a failed create must leave untouched.
fn snapshot(d: &Daemon) -> (BTreeSet<String>, BTreeSet<String>) {
    (names(d, ""), links(d))
}

/// Docker's common headers on every answer from a registered route.
fn assert_common_headers(r: &Response) {
    assert_eq!(r.header("Api-Version"), Some("1.55"), "{r:?}");
    assert_eq!(r.header("Ostype"), Some("linux"), "{r:?}");
    assert_eq!(r.header("Docker-Experimental"), Some("false"), "{r:?}");
    let server = r.header("Server").unwrap_or_default();
    assert!(server.ends_with("(linux)"), "Server header {server:?}");
}

// ---------------------------------------------------------------------------------------------
// /_ping, /version, versioning, routing
// ---------------------------------------------------------------------------------------------

#[test]
fn ping_get_and_head_carry_the_negotiation_headers() {
    let d = Daemon::start();
    for path in ["/_ping", "/v1.55/_ping", "/v1.40/_ping"] {
        let r = d.get(path);
        assert_eq!(r.status, 200, "GET {path}: {r:?}");
        assert_eq!(r.body, "OK");
        assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
        assert_eq!(
            r.header("Cache-Control"),
            Some("no-cache, no-store, must-revalidate")
        );
        assert_eq!(r.header("Pragma"), Some("no-cache"));
        assert_eq!(r.header("Builder-Version"), Some("2"));
        assert_eq!(r.header("Swarm"), Some("inactive"));
        assert_common_headers(&r);
    }

    let r = d.raw("HEAD", "/_ping", None, None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("Content-Length"), Some("0"), "{r:?}");
    assert_eq!(r.body, "");
    assert_eq!(
        r.header("Cache-Control"),
        Some("no-cache, no-store, must-revalidate")
    );
    assert_eq!(r.header("Pragma"), Some("no-cache"));
    assert_eq!(r.header("Builder-Version"), Some("2"));
    assert_eq!(r.header("Swarm"), Some("inactive"));
    assert_common_headers(&r);
}

#[test]
fn version_describes_the_server() {
    let d = Daemon::start();
    for path in ["/version", "/v1.55/version", "/v1.41/version"] {
        let r = d.get(path);
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert_common_headers(&r);
        assert!(
            r.header("Content-Type")
                .unwrap_or_default()
                .starts_with("application/json")
        );
        let v = r.json();
        assert_eq!(v["ApiVersion"], "1.55");
        assert_eq!(v["MinAPIVersion"], "1.40");
        assert_eq!(v["Os"], "linux");
        assert_eq!(v["Platform"]["Name"], "netbridge");
        for key in [
            "Version",
            "GitCommit",
            "GoVersion",
            "Arch",
            "KernelVersion",
            "BuildTime",
        ] {
            assert!(v[key].is_string(), "{key} missing: {v}");
        }
        assert!(!v["Version"].as_str().unwrap().is_empty());
        assert!(!v["KernelVersion"].as_str().unwrap().is_empty());
        let engine = &v["Components"][0];
        assert_eq!(engine["Name"], "Engine", "{v}");
        assert_eq!(engine["Version"], v["Version"]);
        assert_eq!(engine["Details"]["ApiVersion"], "1.55");
        assert_eq!(engine["Details"]["MinAPIVersion"], "1.40");
        assert_eq!(engine["Details"]["Os"], "linux");
    }
}

#[test]
fn every_endpoint_exists_bare_and_under_supported_prefixes() {
    let d = Daemon::start();
    for prefix in [
        "", "/v1.40", "/v1.44", "/v1.48", "/v1.51", "/v1.52", "/v1.55",
    ] {
        let tag = match prefix {
            "" => "bare".to_string(),
            p => p.trim_start_matches("/v").replace('.', ""),
        };
        let name = format!("ver{tag}");
        let r = d.get(&format!("{prefix}/_ping"));
        assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{prefix}/_ping");
        let r = d.raw("HEAD", &format!("{prefix}/_ping"), None, None);
        assert_eq!(r.status, 200, "HEAD {prefix}/_ping");
        let r = d.get(&format!("{prefix}/version"));
        assert_eq!(r.status, 200, "{prefix}/version");
        assert_eq!(r.json()["ApiVersion"], "1.55");

        let r = d.post(
            &format!("{prefix}/networks/create"),
            &json!({"Name": name, "Labels": {"prefix": tag}}),
        );
        assert_eq!(r.status, 201, "{prefix}/networks/create: {r:?}");
        assert_common_headers(&r);
        let id = r.json()["Id"].as_str().unwrap().to_string();
        assert!(is_id(&id));
        assert!(d.has_link(&br(&id)), "{prefix}: bridge missing");

        let r = d.get(&format!("{prefix}/networks"));
        assert_eq!(r.status, 200, "{prefix}/networks");
        assert!(
            r.json()
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["Id"] == id.as_str())
        );
        let filtered = format!(
            "{prefix}/networks?filters={}",
            enc(&format!(r#"{{"label":{{"prefix={tag}":true}}}}"#))
        );
        let r = d.get(&filtered);
        assert_eq!(r.status, 200, "{filtered}");
        let listed: Vec<Value> = r.json().as_array().unwrap().clone();
        assert_eq!(listed.len(), 1, "{prefix}: {listed:?}");
        assert_eq!(listed[0]["Name"], name.as_str());

        for term in [name.as_str(), id.as_str(), &id[..12]] {
            let r = d.get(&format!("{prefix}/networks/{term}"));
            assert_eq!(r.status, 200, "{prefix}/networks/{term}: {r:?}");
            assert_eq!(r.json()["Id"], id.as_str());
        }

        let r = d.delete(&format!("{prefix}/networks/{name}"));
        assert_eq!(r.status, 204, "DELETE {prefix}/networks/{name}: {r:?}");
        assert_eq!(r.body, "");
        assert!(!d.has_link(&br(&id)), "{prefix}: bridge left behind");

        let r = d.post(&format!("{prefix}/networks/prune"), &json!({}));
        assert_eq!(r.status, 200, "{prefix}/networks/prune: {r:?}");
        assert_eq!(r.json(), json!({"NetworksDeleted": null}));
    }
}

#[test]
fn version_prefixes_outside_1_40_to_1_55_are_refused() {
    let d = Daemon::start();
    let too_old = "client version 1.39 is too old. Minimum supported API version is 1.40, please upgrade your client to a newer version";
    for path in [
        "/v1.39/networks",
        "/v1.39/version",
        "/v1.39/networks/bridge",
    ] {
        assert_error(&d.get(path), 400, too_old);
    }
    assert_error(
        &d.post("/v1.39/networks/create", &json!({"Name": "old"})),
        400,
        too_old,
    );
    assert_error(
        &d.get("/v1.25/networks"),
        400,
        "client version 1.25 is too old. Minimum supported API version is 1.40, please upgrade your client to a newer version",
    );
    let too_new = "client version 1.56 is too new. Maximum supported API version is 1.55";
    for path in [
        "/v1.56/networks",
        "/v1.56/version",
        "/v1.56/networks/bridge",
    ] {
        assert_error(&d.get(path), 400, too_new);
    }
    assert_error(
        &d.post("/v1.56/networks/create", &json!({"Name": "new"})),
        400,
        too_new,
    );
    assert_error(
        &d.get("/v2.0/networks"),
        400,
        "client version 2.0 is too new. Maximum supported API version is 1.55",
    );
    // Nothing was created by the refused requests.
    assert_eq!(names(&d, ""), set(&["bridge", "host", "none"]));
}

#[test]
fn unknown_paths_and_wrong_methods_are_page_not_found_and_options_is_ok() {
    let d = Daemon::start();
    for (method, path) in [
        ("GET", "/nope"),
        ("GET", "/v1.44/nope"),
        // (GET /networks/bridge/extra is network `bridge/extra`, as on Docker: names may hold /)
        ("POST", "/networks/bridge/extra"),
        ("GET", "/containers/json/x/y"),
        ("PUT", "/networks"),
        ("DELETE", "/networks"),
        ("POST", "/networks"),
        ("PUT", "/networks/bridge"),
        ("POST", "/version"),
        ("DELETE", "/_ping"),
        ("PATCH", "/v1.55/networks/bridge"),
    ] {
        let r = d.raw(method, path, None, None);
        assert_eq!(r.status, 404, "{method} {path}: {r:?}");
        assert_eq!(r.message(), "page not found", "{method} {path}");
    }
    for path in [
        "/networks",
        "/v1.44/networks/create",
        "/whatever/at/all",
        "/_ping",
    ] {
        let r = d.raw("OPTIONS", path, None, None);
        assert_eq!(r.status, 200, "OPTIONS {path}: {r:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// GET /networks and its filters
// ---------------------------------------------------------------------------------------------

/// `alpha` {team=a, env=prod}, `beta` {team=a, env=dev}, `gamma` unlabelled.
fn three_networks(d: &Daemon) -> (String, String, String) {
    let a = d.create_network(&json!({"Name": "alpha", "Labels": {"team": "a", "env": "prod"}}));
    let b = d.create_network(&json!({"Name": "beta", "Labels": {"team": "a", "env": "dev"}}));
    let g = d.create_network(&json!({"Name": "gamma"}));
    (a, b, g)
}

/// Both encodings of a filter: `{"k":{"v":true,…}}` and `{"k":["v",…]}`.
fn both_encodings(pairs: &[(&str, &[&str])]) -> [String; 2] {
    let mut current = serde_json::Map::new();
    let mut legacy = serde_json::Map::new();
    for (k, vs) in pairs {
        let on: serde_json::Map<String, Value> =
            vs.iter().map(|v| (v.to_string(), json!(true))).collect();
        current.insert(k.to_string(), Value::Object(on));
        legacy.insert(k.to_string(), json!(vs));
    }
    [
        Value::Object(current).to_string(),
        Value::Object(legacy).to_string(),
    ]
}

#[test]
fn list_returns_summaries_and_accepts_empty_filters() {
    let d = Daemon::start();
    let (a, _, _) = three_networks(&d);
    let all = set(&["bridge", "host", "none", "alpha", "beta", "gamma"]);
    assert_eq!(names(&d, ""), all);
    assert_eq!(names(&d, "{}"), all);
    let r = d.get("/networks?filters=");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json().as_array().unwrap().len(), 6);

    let r = d.get("/networks");
    assert!(
        r.header("Content-Type")
            .unwrap_or_default()
            .starts_with("application/json")
    );
    for item in r.json().as_array().unwrap() {
        assert!(
            item.get("Containers").is_none(),
            "list item with Containers: {item}"
        );
        assert!(
            item.get("Status").is_none(),
            "list item with Status: {item}"
        );
        assert!(is_id(item["Id"].as_str().unwrap()), "{item}");
    }
    let alpha = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["Id"] == a.as_str())
        .cloned()
        .expect("alpha listed");
    assert_eq!(alpha["Labels"], json!({"team": "a", "env": "prod"}));
    assert_eq!(alpha["IPAM"]["Config"][0]["Subnet"], "172.18.0.0/16");

    // An empty result is [], never null.
    let r = list_with(&d, r#"{"name":{"nothing-is-called-this":true}}"#);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.trim(), "[]");
}

#[test]
fn list_filters_each_key_in_both_encodings() {
    let d = Daemon::start();
    let (a, b, _g) = three_networks(&d);
    let builtin = ["bridge", "host", "none"];
    let custom = ["alpha", "beta", "gamma"];
    let everything = [builtin.as_slice(), custom.as_slice()].concat();
    let alpha_mid = a[20..30].to_string();
    let beta_prefix = b[..10].to_string();
    // (filter key → values, expected names)
    type Case<'a> = (Vec<(&'a str, Vec<&'a str>)>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            vec![("driver", vec!["bridge"])],
            vec!["bridge", "alpha", "beta", "gamma"],
        ),
        (vec![("driver", vec!["null"])], vec!["none"]),
        (vec![("driver", vec!["host", "null"])], vec!["host", "none"]),
        (vec![("driver", vec!["bridg"])], vec![]),
        (vec![("id", vec![a.as_str()])], vec!["alpha"]),
        (vec![("id", vec![alpha_mid.as_str()])], vec!["alpha"]),
        (vec![("id", vec![beta_prefix.as_str()])], vec!["beta"]),
        (
            vec![("id", vec![alpha_mid.as_str(), beta_prefix.as_str()])],
            vec!["alpha", "beta"],
        ),
        (vec![("label", vec!["team"])], vec!["alpha", "beta"]),
        (vec![("label", vec!["team=a"])], vec!["alpha", "beta"]),
        (vec![("label", vec!["env=prod"])], vec!["alpha"]),
        (vec![("label", vec!["team=a", "env=dev"])], vec!["beta"]),
        (vec![("label", vec!["env=prod", "env=dev"])], vec![]),
        (vec![("label", vec!["team=b"])], vec![]),
        (vec![("label", vec!["nokey"])], vec![]),
        (vec![("name", vec!["alpha"])], vec!["alpha"]),
        (vec![("name", vec!["lph"])], vec!["alpha"]),
        (vec![("name", vec!["^a"])], vec!["alpha"]),
        (vec![("name", vec!["a$"])], vec!["alpha", "beta", "gamma"]),
        (
            vec![("name", vec!["^(alpha|gamma)$"])],
            vec!["alpha", "gamma"],
        ),
        (vec![("name", vec!["^lph"])], vec![]),
        (vec![("name", vec!["(("])], vec![]),
        (vec![("name", vec!["beta", "none"])], vec!["beta", "none"]),
        (vec![("scope", vec!["local"])], everything.clone()),
        (vec![("scope", vec!["swarm"])], vec![]),
        (vec![("type", vec!["builtin"])], builtin.to_vec()),
        (vec![("type", vec!["custom"])], custom.to_vec()),
        (
            vec![("type", vec!["builtin", "custom"])],
            everything.clone(),
        ),
        (vec![("dangling", vec!["true"])], custom.to_vec()),
        (vec![("dangling", vec!["1"])], custom.to_vec()),
        (vec![("dangling", vec!["false"])], builtin.to_vec()),
        (vec![("dangling", vec!["0"])], builtin.to_vec()),
        // Different keys AND.
        (
            vec![
                ("driver", vec!["bridge"]),
                ("type", vec!["custom"]),
                ("label", vec!["team=a"]),
            ],
            vec!["alpha", "beta"],
        ),
        (
            vec![("driver", vec!["bridge"]), ("type", vec!["builtin"])],
            vec!["bridge"],
        ),
        (
            vec![("name", vec!["o"]), ("dangling", vec!["false"])],
            vec!["host", "none"],
        ),
        (
            vec![("label", vec!["team"]), ("name", vec!["gamma"])],
            vec![],
        ),
    ];
    for (pairs, expected) in &cases {
        let pairs: Vec<(&str, &[&str])> = pairs.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        for filters in both_encodings(&pairs) {
            assert_eq!(names(&d, &filters), set(expected), "filters {filters}");
        }
    }
    // A value switched off in the current encoding is no filter at all.
    assert_eq!(names(&d, r#"{"name":{"alpha":false}}"#), set(&everything));
}

#[test]
fn list_filter_errors() {
    let d = Daemon::start();
    for filters in [r#"{"x":{"y":true}}"#, r#"{"x":["y"]}"#] {
        assert_error(&list_with(&d, filters), 400, "invalid filter 'x'");
    }
    assert_error(
        &list_with(&d, r#"{"name":["a"],"until":["1h"]}"#),
        400,
        "invalid filter 'until'",
    );
    for bad in ["notjson", "{", r#"{"name":"alpha"}"#, "[1,2]"] {
        assert_error(&list_with(&d, bad), 400, "invalid filter");
    }
    for filters in both_encodings(&[("type", &["odd"])]) {
        let r = list_with(&d, &filters);
        assert_eq!(r.status, 400, "{filters}: {r:?}");
        assert_eq!(r.message(), "invalid filter: 'type'='odd'");
    }
    for filters in both_encodings(&[("dangling", &["true", "false"])]) {
        assert_error(
            &list_with(&d, &filters),
            400,
            "got more than one value for filter key \"dangling\"",
        );
    }
    for filters in both_encodings(&[("dangling", &["maybe"])]) {
        assert_error(
            &list_with(&d, &filters),
            400,
            "invalid value for filter 'dangling', must be \"true\" (or \"1\"), or \"false\" (or \"0\")",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// GET /networks/{id}
// ---------------------------------------------------------------------------------------------

#[test]
fn inspect_resolves_full_id_name_and_unique_prefix() {
    let d = Daemon::start();
    let a = d.create_network(&json!({"Name": "first"}));
    let b = d.create_network(&json!({"Name": "second"}));
    assert_eq!(inspect(&d, &a)["Name"], "first");
    assert_eq!(inspect(&d, "first")["Id"], a.as_str());
    assert_eq!(inspect(&d, &b[..12])["Name"], "second");
    assert_eq!(inspect(&d, &b[..20])["Name"], "second");
    // Names are case-sensitive.
    assert_error(&d.get("/networks/FIRST"), 404, "network FIRST not found");
    assert_error(
        &d.get("/networks/missing"),
        404,
        "network missing not found",
    );
    assert_error(
        &d.get("/v1.44/networks/missing"),
        404,
        "network missing not found",
    );

    // A full-ID hit wins even when another network is named like that ID; an exact name wins
    // over an ID prefix.
    let c = d.create_network(&json!({"Name": a}));
    assert_eq!(inspect(&d, &a)["Id"], a.as_str());
    assert_eq!(inspect(&d, &a)["Name"], "first");
    let prefix_name = b[..8].to_string();
    let p = d.create_network(&json!({"Name": prefix_name}));
    assert_eq!(inspect(&d, &prefix_name)["Id"], p.as_str());
    assert_ne!(c, a);
}

#[test]
fn ambiguous_id_prefix_is_refused_with_dockers_text() {
    let d = Daemon::start();
    let ids = |d: &Daemon| -> Vec<String> {
        d.get("/networks")
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["Id"].as_str().unwrap().to_string())
            .collect()
    };
    let mut made = 0;
    let (prefix, count) = loop {
        let all = ids(&d);
        let shared = "0123456789abcdef"
            .chars()
            .map(|c| (c, all.iter().filter(|id| id.starts_with(c)).count()))
            .find(|(_, n)| *n >= 2);
        if let Some(found) = shared {
            break found;
        }
        assert!(
            made < 17,
            "17 IDs over 16 hex digits must share a first one"
        );
        d.create_network(&json!({"Name": format!("amb{made}")}));
        made += 1;
    };
    let term = prefix.to_string();
    assert_error(
        &d.get(&format!("/networks/{term}")),
        400,
        &format!("{count} matches found based on ID prefix: network {term} is ambiguous"),
    );
    assert_error(
        &d.delete(&format!("/networks/{term}")),
        400,
        &format!("network {term} is ambiguous ({count} matches found based on ID prefix)"),
    );
    // Nothing was removed by the refused delete.
    assert_eq!(ids(&d).len(), 3 + made);
}

#[test]
fn inspect_query_parameters_and_status_by_version() {
    let d = Daemon::start();
    let id = d.create_network(&json!({"Name": "st"}));
    for v in [
        "1", "t", "T", "true", "TRUE", "True", "0", "f", "F", "false", "FALSE", "False",
    ] {
        let r = d.get(&format!("/networks/st?verbose={v}"));
        assert_eq!(r.status, 200, "verbose={v}: {r:?}");
        assert_eq!(r.json()["Id"], id.as_str());
    }
    for v in ["maybe", "yes", "2"] {
        assert_error(
            &d.get(&format!("/networks/st?verbose={v}")),
            400,
            &format!(
                "invalid value for verbose: {v}: strconv.ParseBool: parsing \"{v}\": invalid syntax"
            ),
        );
    }
    assert_error(
        &d.get("/networks/st?scope=swarm"),
        404,
        "network st not found",
    );
    assert_error(
        &d.get("/networks/st?scope=global"),
        404,
        "network st not found",
    );
    assert_eq!(inspect(&d, "st?scope=local")["Id"], id.as_str());

    let expected_status = json!({"IPAM": {"Subnets": {"172.18.0.0/16": {"IPsInUse": 3, "DynamicIPsAvailable": 65533}}}});
    for prefix in ["", "/v1.55", "/v1.52"] {
        let v = d.get(&format!("{prefix}/networks/st")).json();
        assert_eq!(v["Status"], expected_status, "{prefix}: {v}");
    }
    for prefix in ["/v1.51", "/v1.44", "/v1.40"] {
        let v = d.get(&format!("{prefix}/networks/st")).json();
        assert!(v.get("Status").is_none(), "{prefix} shows Status: {v}");
        assert_eq!(v["Containers"], json!({}));
    }
}

#[test]
fn inspect_shows_every_field_of_a_created_network() {
    let d = Daemon::start();
    let body = json!({
        "Name": "full",
        "Driver": "bridge",
        "IPAM": {"Driver": "default", "Config": [{
            "Subnet": "172.30.0.0/24",
            "Gateway": "172.30.0.254",
            "IPRange": "172.30.0.128/25",
            "AuxiliaryAddresses": {"router": "172.30.0.10"}
        }]},
        "Internal": true,
        "Attachable": true,
        "Options": {"com.example.unknown": "kept", "com.docker.network.bridge.enable_icc": "false"},
        "Labels": {"team": "a", "empty": ""}
    });
    let r = d.post("/networks/create", &body);
    assert_eq!(r.status, 201, "{r:?}");
    assert_common_headers(&r);
    let created = r.json();
    assert_eq!(created["Warning"], "");
    let id = created["Id"].as_str().unwrap().to_string();
    assert!(is_id(&id), "{id}");
    assert!(!id[..12].bytes().all(|c| c.is_ascii_digit()));

    let v = inspect(&d, &id);
    assert_eq!(v["Name"], "full");
    assert_eq!(v["Id"], id.as_str());
    assert!(
        is_rfc3339(v["Created"].as_str().unwrap()),
        "Created {}",
        v["Created"]
    );
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Driver"], "bridge");
    assert_eq!(v["EnableIPv4"], true);
    assert_eq!(v["EnableIPv6"], false);
    assert_eq!(
        v["IPAM"],
        json!({"Driver": "default", "Options": null, "Config": [{
            "Subnet": "172.30.0.0/24",
            "Gateway": "172.30.0.254",
            "IPRange": "172.30.0.128/25",
            "AuxiliaryAddresses": {"router": "172.30.0.10"}
        }]})
    );
    assert_eq!(v["Internal"], true);
    assert_eq!(v["Attachable"], true);
    assert_eq!(v["Ingress"], false);
    assert_eq!(v["ConfigFrom"], json!({"Network": ""}));
    assert_eq!(v["ConfigOnly"], false);
    assert_eq!(
        v["Options"],
        json!({"com.example.unknown": "kept", "com.docker.network.bridge.enable_icc": "false"})
    );
    assert_eq!(v["Labels"], json!({"team": "a", "empty": ""}));
    assert_eq!(v["Containers"], json!({}));
    // network, broadcast, gateway and aux in use; the range holds 128 addresses, two of them
    // (gateway .254 and broadcast .255) taken.
    assert_eq!(
        v["Status"],
        json!({"IPAM": {"Subnets": {"172.30.0.0/24": {"IPsInUse": 4, "DynamicIPsAvailable": 126}}}})
    );

    // A network created without IPAM shows the allocated subnet and gateway, nothing more.
    let auto = inspect(&d, &d.create_network(&json!({"Name": "auto"})));
    assert_eq!(
        auto["IPAM"],
        json!({"Driver": "default", "Options": null, "Config": [{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}]})
    );
    assert_eq!(auto["Options"], json!({}));
    assert_eq!(auto["Labels"], json!({}));
    assert_eq!(auto["Internal"], false);
    assert_eq!(auto["Attachable"], false);

    // The list item is the same object without Containers/Status.
    let listed = d.get("/networks").json();
    let item = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["Id"] == id.as_str())
        .cloned()
        .unwrap();
    let mut expected = v.clone();
    let obj = expected.as_object_mut().unwrap();
    obj.remove("Containers");
    obj.remove("Status");
    assert_eq!(item, expected);
}

// ---------------------------------------------------------------------------------------------
// predefined networks
// ---------------------------------------------------------------------------------------------

#[test]
fn predefined_networks_exist_from_first_start() {
    let d = Daemon::start();
    assert_eq!(names(&d, ""), set(&["bridge", "host", "none"]));

    let bridge = inspect(&d, "bridge");
    assert!(is_id(bridge["Id"].as_str().unwrap()));
    assert!(is_rfc3339(bridge["Created"].as_str().unwrap()));
    assert_eq!(bridge["Driver"], "bridge");
    assert_eq!(bridge["Scope"], "local");
    assert_eq!(bridge["EnableIPv4"], true);
    assert_eq!(bridge["EnableIPv6"], false);
    assert_eq!(
        bridge["IPAM"],
        json!({"Driver": "default", "Options": null, "Config": [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}]})
    );
    assert_eq!(
        bridge["Options"],
        json!({
            "com.docker.network.bridge.default_bridge": "true",
            "com.docker.network.bridge.enable_icc": "true",
            "com.docker.network.bridge.enable_ip_masquerade": "true",
            "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
            "com.docker.network.bridge.name": "nb0",
            "com.docker.network.driver.mtu": "1500"
        })
    );
    assert_eq!(bridge["Labels"], json!({}));
    assert_eq!(bridge["Containers"], json!({}));
    assert!(d.has_link("nb0"), "kernel bridge nb0 missing");
    assert_eq!(inet(&d, "nb0"), vec!["172.17.0.1/16".to_string()]);
    assert!(
        d.ip(&["-d", "link", "show", "dev", "nb0"])
            .contains("bridge"),
        "nb0 is not a bridge"
    );
    assert!(!links(&d).iter().any(|l| l == "docker0"));

    for (name, driver) in [("host", "host"), ("none", "null")] {
        let v = inspect(&d, name);
        assert_eq!(v["Name"], name);
        assert_eq!(v["Driver"], driver);
        assert_eq!(v["Scope"], "local");
        assert!(is_id(v["Id"].as_str().unwrap()));
        let config = &v["IPAM"]["Config"];
        assert!(
            config.is_null() || config == &json!([]),
            "{name} IPAM.Config {config}"
        );
        assert_eq!(v["Options"], json!({}));
        assert_eq!(v["Containers"], json!({}));
    }
}

#[test]
fn predefined_networks_cannot_be_removed_or_recreated() {
    let d = Daemon::start();
    let before = snapshot(&d);
    for name in ["bridge", "host", "none"] {
        let id = inspect(&d, name)["Id"].as_str().unwrap().to_string();
        for term in [name, id.as_str(), &id[..12]] {
            assert_error(
                &d.delete(&format!("/networks/{term}")),
                403,
                &format!("{name} is a pre-defined network and cannot be removed"),
            );
        }
    }
    for name in ["bridge", "host", "none", "default"] {
        for driver in ["bridge", "", "host", "null"] {
            assert_error(
                &d.post("/networks/create", &json!({"Name": name, "Driver": driver})),
                403,
                &format!("operation is not permitted on predefined {name} network "),
            );
        }
    }
    // Prune never takes them.
    let r = d.post("/networks/prune", &json!({}));
    assert_eq!(r.json(), json!({"NetworksDeleted": null}));
    assert_eq!(snapshot(&d), before);
    assert!(d.has_link("nb0"));
}

// ---------------------------------------------------------------------------------------------
// POST /networks/create
// ---------------------------------------------------------------------------------------------

#[test]
fn create_picks_subnets_from_the_default_pools() {
    let d = Daemon::start();
    let expected = [
        ("auto1", "172.18.0.0/16", "172.18.0.1"),
        ("auto2", "172.19.0.0/16", "172.19.0.1"),
        ("auto3", "172.20.0.0/16", "172.20.0.1"),
    ];
    let mut ids = Vec::new();
    for (name, subnet, gateway) in expected {
        let id = d.create_network(&json!({"Name": name}));
        let v = inspect(&d, name);
        assert_eq!(
            v["IPAM"]["Config"],
            json!([{"Subnet": subnet, "Gateway": gateway}]),
            "{name}"
        );
        let dev = br(&id);
        assert!(d.has_link(&dev), "{dev} missing");
        let prefix = subnet.split('/').nth(1).unwrap();
        assert_eq!(inet(&d, &dev), vec![format!("{gateway}/{prefix}")]);
        assert!(
            d.ip(&["link", "show", "dev", &dev]).contains(",UP"),
            "{dev} is not up"
        );
        ids.push(id);
    }
    // A deleted network's subnet is handed out again first.
    assert_eq!(d.delete("/networks/auto2").status, 204);
    assert!(!d.has_link(&br(&ids[1])));
    d.create_network(&json!({"Name": "auto4"}));
    assert_eq!(
        inspect(&d, "auto4")["IPAM"]["Config"][0]["Subnet"],
        "172.19.0.0/16"
    );
    // Auto subnets avoid explicit ones.
    d.create_network(
        &json!({"Name": "explicit", "IPAM": {"Config": [{"Subnet": "172.21.0.0/16"}]}}),
    );
    d.create_network(&json!({"Name": "auto5"}));
    assert_eq!(
        inspect(&d, "auto5")["IPAM"]["Config"][0]["Subnet"],
        "172.22.0.0/16"
    );
}

#[test]
fn create_with_explicit_ipam_configures_the_bridge() {
    let d = Daemon::start();
    let id = d.create_network(&json!({
        "Name": "exp",
        "IPAM": {"Config": [{
            "Subnet": "10.77.0.0/24", "Gateway": "10.77.0.254",
            "IPRange": "10.77.0.64/26", "AuxiliaryAddresses": {"a": "10.77.0.5", "b": "10.77.0.6"}
        }]},
        "Labels": {"k": "v"}
    }));
    let v = inspect(&d, "exp");
    assert_eq!(
        v["IPAM"]["Config"],
        json!([{"Subnet": "10.77.0.0/24", "Gateway": "10.77.0.254", "IPRange": "10.77.0.64/26",
                "AuxiliaryAddresses": {"a": "10.77.0.5", "b": "10.77.0.6"}}])
    );
    assert_eq!(v["Labels"], json!({"k": "v"}));
    assert_eq!(inet(&d, &br(&id)), vec!["10.77.0.254/24".to_string()]);

    // A subnet alone gets its first host address as gateway; "" means unset.
    let id2 = d.create_network(&json!({
        "Name": "empties",
        "IPAM": {"Driver": "", "Config": [{"Subnet": "10.78.0.0/16", "Gateway": "", "IPRange": ""}]}
    }));
    assert_eq!(
        inspect(&d, "empties")["IPAM"]["Config"],
        json!([{"Subnet": "10.78.0.0/16", "Gateway": "10.78.0.1"}])
    );
    assert_eq!(inet(&d, &br(&id2)), vec!["10.78.0.1/16".to_string()]);

    // With an ip-range and no gateway, the gateway is the range's first address.
    d.create_network(&json!({
        "Name": "ranged",
        "IPAM": {"Config": [{"Subnet": "10.79.0.0/24", "IPRange": "10.79.0.128/25"}]}
    }));
    assert_eq!(
        inspect(&d, "ranged")["IPAM"]["Config"][0]["Gateway"],
        "10.79.0.128"
    );

    // Old CLIs' body: empty strings, CheckDuplicate, EnableIPv6 false, Config [] = auto.
    d.create_network(&json!({
        "Name": "oldcli", "CheckDuplicate": true, "Driver": "bridge", "EnableIPv6": false,
        "Scope": "", "Internal": false, "Attachable": false, "Ingress": false, "ConfigOnly": false,
        "ConfigFrom": null, "IPAM": {"Driver": "default", "Options": {}, "Config": []},
        "Options": {}, "Labels": {}, "SomethingUnknown": 1
    }));
    assert_eq!(
        inspect(&d, "oldcli")["IPAM"]["Config"],
        json!([{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}])
    );
}

#[test]
fn create_dual_stack_with_an_ipv6_subnet() {
    let d = Daemon::start();
    let id = d.create_network(&json!({
        "Name": "v6",
        "EnableIPv6": true,
        "IPAM": {"Config": [{"Subnet": "fd00:1234:5678::/64"}]}
    }));
    let v = inspect(&d, "v6");
    assert_eq!(v["EnableIPv4"], true);
    assert_eq!(v["EnableIPv6"], true);
    assert_eq!(
        v["IPAM"]["Config"],
        json!([
            {"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"},
            {"Subnet": "fd00:1234:5678::/64", "Gateway": "fd00:1234:5678::1"}
        ])
    );
    let dev = br(&id);
    assert_eq!(inet(&d, &dev), vec!["172.18.0.1/16".to_string()]);
    assert_eq!(inet6(&d, &dev), vec!["fd00:1234:5678::1/64".to_string()]);

    // Both subnets explicit, with an IPv6 gateway.
    let id2 = d.create_network(&json!({
        "Name": "v6b",
        "EnableIPv6": true,
        "IPAM": {"Config": [
            {"Subnet": "10.60.0.0/24", "Gateway": "10.60.0.1"},
            {"Subnet": "fd00:99::/64", "Gateway": "fd00:99::fe"}
        ]}
    }));
    assert_eq!(inet(&d, &br(&id2)), vec!["10.60.0.1/24".to_string()]);
    assert_eq!(inet6(&d, &br(&id2)), vec!["fd00:99::fe/64".to_string()]);

    // An IPv6 entry on a network without IPv6 is skipped.
    let id3 = d.create_network(&json!({
        "Name": "v4only",
        "IPAM": {"Config": [{"Subnet": "fd00:98::/64"}]}
    }));
    let v = inspect(&d, "v4only");
    assert_eq!(v["EnableIPv6"], false);
    assert_eq!(
        v["IPAM"]["Config"],
        json!([{"Subnet": "172.19.0.0/16", "Gateway": "172.19.0.1"}])
    );
    assert!(inet6(&d, &br(&id3)).is_empty());
}

#[test]
fn create_honours_bridge_name_and_mtu_options() {
    let d = Daemon::start();
    let options = json!({"com.docker.network.bridge.name": "nbtest0", "com.docker.network.driver.mtu": "1400"});
    let id = d.create_network(&json!({"Name": "named", "Options": options}));
    assert!(d.has_link("nbtest0"));
    assert!(!d.has_link(&br(&id)));
    assert_eq!(mtu(&d, "nbtest0"), 1400);
    assert_eq!(inet(&d, "nbtest0"), vec!["172.18.0.1/16".to_string()]);
    // Options are echoed verbatim.
    assert_eq!(inspect(&d, "named")["Options"], options);

    // Default MTU when absent.
    let id2 = d.create_network(&json!({"Name": "plain"}));
    assert_eq!(mtu(&d, &br(&id2)), 1500);

    // A second network may not take the same bridge name; nothing is left behind.
    let before = snapshot(&d);
    let r = d.post(
        "/networks/create",
        &json!({"Name": "clash", "Options": {"com.docker.network.bridge.name": "nbtest0"}}),
    );
    assert_eq!(r.status, 403, "{r:?}");
    let msg = r.message();
    assert!(
        msg.starts_with("cannot create network ")
            && msg.ends_with("networks have same bridge name"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("conflicts with network {id} (nbtest0)")),
        "{msg}"
    );
    assert_eq!(snapshot(&d), before);

    // Deleting removes the named bridge.
    assert_eq!(d.delete("/networks/named").status, 204);
    assert!(!d.has_link("nbtest0"));
}

#[test]
fn default_address_pool_flag_replaces_the_pools() {
    let d = Daemon::start_with(&["--default-address-pool", "base=10.123.0.0/16,size=24"]);
    // The predefined bridge network is the first automatic subnet, cut from the given pool.
    let bridge = inspect(&d, "bridge");
    assert_eq!(
        bridge["IPAM"]["Config"],
        json!([{"Subnet": "10.123.0.0/24", "Gateway": "10.123.0.1"}])
    );
    assert_eq!(inet(&d, "nb0"), vec!["10.123.0.1/24".to_string()]);
    let id = d.create_network(&json!({"Name": "p1"}));
    assert_eq!(
        inspect(&d, "p1")["IPAM"]["Config"],
        json!([{"Subnet": "10.123.1.0/24", "Gateway": "10.123.1.1"}])
    );
    assert_eq!(inet(&d, &br(&id)), vec!["10.123.1.1/24".to_string()]);
    d.create_network(&json!({"Name": "p2"}));
    assert_eq!(
        inspect(&d, "p2")["IPAM"]["Config"][0]["Subnet"],
        "10.123.2.0/24"
    );
    // Explicit subnets outside the pool are still fine.
    d.create_network(&json!({"Name": "p3", "IPAM": {"Config": [{"Subnet": "172.18.0.0/16"}]}}));
}

#[test]
fn exhausted_pools_are_reported_and_leave_nothing_behind() {
    // Two /24s: the bridge network takes one, the first user network the other.
    let d = Daemon::start_with(&["--default-address-pool", "base=10.124.0.0/23,size=24"]);
    assert_eq!(
        inspect(&d, "bridge")["IPAM"]["Config"][0]["Subnet"],
        "10.124.0.0/24"
    );
    d.create_network(&json!({"Name": "last"}));
    assert_eq!(
        inspect(&d, "last")["IPAM"]["Config"][0]["Subnet"],
        "10.124.1.0/24"
    );
    let before = snapshot(&d);
    let r = d.post("/networks/create", &json!({"Name": "none-left"}));
    assert_eq!(r.status, 400, "{r:?}");
    let msg = r.message();
    assert!(
        msg.starts_with("all predefined address pools have been fully subnetted"),
        "{msg}"
    );
    assert!(msg.contains("--default-address-pool"), "{msg}");
    assert_eq!(snapshot(&d), before);
    // An explicit subnet still works, and freeing a pool subnet makes room again.
    d.create_network(&json!({"Name": "manual", "IPAM": {"Config": [{"Subnet": "10.200.0.0/24"}]}}));
    assert_eq!(d.delete("/networks/last").status, 204);
    d.create_network(&json!({"Name": "again"}));
    assert_eq!(
        inspect(&d, "again")["IPAM"]["Config"][0]["Subnet"],
        "10.124.1.0/24"
    );
}

#[test]
fn create_errors_use_dockers_status_and_text_and_leave_nothing_behind() {
    let d = Daemon::start();
    d.create_network(&json!({"Name": "taken", "IPAM": {"Config": [{"Subnet": "172.30.0.0/24"}]}}));
    let before = snapshot(&d);
    let json_ct = Some("application/json");

    // (content type, body, status, exact message or prefix ending in '…')
    let cases: Vec<(Option<&str>, String, u16, String)> = vec![
        (json_ct, "{".into(), 400, "invalid JSON: …".into()),
        (json_ct, r#"{"Name": 5}"#.into(), 400, "invalid JSON: …".into()),
        (json_ct, r#"{"Name":"x"} {}"#.into(), 400, "unexpected content after JSON".into()),
        (json_ct, r#"{"Name":"x"}garbage"#.into(), 400, "unexpected content after JSON".into()),
        (
            Some("text/plain"),
            r#"{"Name":"x"}"#.into(),
            400,
            "unsupported Content-Type header (text/plain): must be 'application/json'".into(),
        ),
        (json_ct, r#"{"Name":""}"#.into(), 400, "invalid name: name is empty".into()),
        (json_ct, r#"{"Name":"   "}"#.into(), 400, "invalid name: name is empty".into()),
        (json_ct, "{}".into(), 400, "invalid name: name is empty".into()),
        (json_ct, "".into(), 400, "invalid name: name is empty".into()),
        (
            json_ct,
            r#"{"Name":"taken"}"#.into(),
            409,
            "network with name taken already exists".into(),
        ),
        (
            json_ct,
            r#"{"Name":"taken","CheckDuplicate":false}"#.into(),
            409,
            "network with name taken already exists".into(),
        ),
        (json_ct, r#"{"Name":"x","Driver":"foo"}"#.into(), 404, r#"plugin "foo" not found"#.into()),
        (
            json_ct,
            r#"{"Name":"x","Driver":"host"}"#.into(),
            403,
            r#"only one instance of "host" network is allowed"#.into(),
        ),
        (
            json_ct,
            r#"{"Name":"x","Driver":"null"}"#.into(),
            403,
            r#"only one instance of "null" network is allowed"#.into(),
        ),
        (
            json_ct,
            r#"{"Name":"x","IPAM":{"Config":[{"Subnet":"172.31.0.5/24"}]}}"#.into(),
            400,
            "invalid network config:\ninvalid subnet 172.31.0.5/24: it should be 172.31.0.0/24"
                .into(),
        ),
        (
            json_ct,
            r#"{"Name":"x","IPAM":{"Config":[{"Subnet":"172.31.0.0/24","Gateway":"172.31.1.1"}]}}"#
                .into(),
            400,
            "invalid network config:\ninvalid gateway 172.31.1.1: parent subnet 172.31.0.0/24 doesn't contain this address".into(),
        ),
        (
            json_ct,
            r#"{"Name":"x","IPAM":{"Config":[{"Subnet":"172.31.0.0/24","IPRange":"172.31.1.0/25"}]}}"#
                .into(),
            400,
            "invalid network config:\ninvalid ip-range 172.31.1.0/25: parent subnet 172.31.0.0/24 doesn't contain ip-range".into(),
        ),
        (
            json_ct,
            r#"{"Name":"x","IPAM":{"Config":[{"Subnet":"172.31.0.0/24","IPRange":"172.31.0.0/16"}]}}"#
                .into(),
            400,
            "invalid network config:\ninvalid ip-range 172.31.0.0/16: CIDR block is bigger than its parent subnet 172.31.0.0/24".into(),
        ),
        (
            json_ct,
            r#"{"Name":"x","IPAM":{"Config":[{"Subnet":"172.31.0.0/24","AuxiliaryAddresses":{"r":"172.31.2.2"}}]}}"#
                .into(),
            400,
            "invalid network config:\ninvalid auxiliary address r: parent subnet 172.31.0.0/24 doesn't contain this address".into(),
        ),
        (
            json_ct,
            r#"{"Name":"x","IPAM":{"Config":[{"Subnet":"172.31.0.0/24","IPRange":"172.31.1.0/25","Gateway":"172.31.1.1"}]}}"#
                .into(),
            400,
            "invalid network config:\n* invalid ip-range 172.31.1.0/25: parent subnet 172.31.0.0/24 doesn't contain ip-range\n* invalid gateway 172.31.1.1: parent subnet 172.31.0.0/24 doesn't contain this address".into(),
        ),
        (
            json_ct,
            r#"{"Name":"x","IPAM":{"Config":[{"Subnet":"172.17.5.0/24"}]}}"#.into(),
            403,
            "invalid pool request: Pool overlaps with other one on this address space".into(),
        ),
        (
            json_ct,
            r#"{"Name":"x","IPAM":{"Config":[{"Subnet":"172.30.0.0/16"}]}}"#.into(),
            403,
            "invalid pool request: Pool overlaps with other one on this address space".into(),
        ),
        (
            json_ct,
            r#"{"Name":"x","IPAM":{"Config":[{"Subnet":"172.30.0.128/25"}]}}"#.into(),
            403,
            "invalid pool request: Pool overlaps with other one on this address space".into(),
        ),
        (
            json_ct,
            r#"{"Name":"x","IPAM":{"Config":[{"Subnet":"foo"}]}}"#.into(),
            400,
            "invalid JSON: …".into(),
        ),
        (
            json_ct,
            r#"{"Name":"x","IPAM":{"Config":[{"Subnet":"10.0.0.0/33"}]}}"#.into(),
            400,
            "invalid JSON: …".into(),
        ),
        (
            json_ct,
            r#"{"Name":"x","IPAM":{"Config":[{"Subnet":"10.0.0.0/24","Gateway":"10.0.0"}]}}"#
                .into(),
            400,
            "invalid JSON: …".into(),
        ),
        (
            json_ct,
            r#"{"Name":"x","Options":{"com.docker.network.driver.mtu":"abc"}}"#.into(),
            400,
            "failed to parse com.docker.network.driver.mtu value: abc (…".into(),
        ),
        (
            json_ct,
            r#"{"Name":"x","Options":{"com.docker.network.driver.mtu":"-5"}}"#.into(),
            400,
            "invalid MTU number: -5".into(),
        ),
        (
            json_ct,
            r#"{"Name":"x","Options":{"com.docker.network.bridge.enable_icc":"maybe"}}"#.into(),
            400,
            "failed to parse com.docker.network.bridge.enable_icc value: maybe (…".into(),
        ),
        (
            json_ct,
            r#"{"Name":"x","Options":{"com.docker.network.enable_ipv6":"yes"}}"#.into(),
            400,
            r#"driver-opt "com.docker.network.enable_ipv6" is not a valid bool"#.into(),
        ),
        (
            json_ct,
            r#"{"Name":"x","IPAM":{"Config":[{"Subnet":"10.1.0.0/24"},{"Subnet":"10.2.0.0/24"}]}}"#
                .into(),
            403,
            "bridge driver doesn't support multiple subnets".into(),
        ),
    ];
    for (ct, body, status, message) in &cases {
        let r = post_raw(&d, "/networks/create", *ct, body);
        assert_eq!(r.status, *status, "body {body:?}: {r:?}");
        let got = r.message();
        match message.strip_suffix('…') {
            Some(prefix) => assert!(
                got.starts_with(prefix) && got.len() > prefix.len(),
                "body {body:?}: {got:?} should start with {prefix:?}"
            ),
            None => assert_eq!(&got, message, "body {body:?}"),
        }
        assert_eq!(snapshot(&d), before, "body {body:?} left something behind");
    }
    // Errors are also served under a version prefix.
    assert_error(
        &d.post("/v1.44/networks/create", &json!({"Name": "taken"})),
        409,
        "network with name taken already exists",
    );
    assert_eq!(snapshot(&d), before);
}

#[test]
fn create_accepts_content_type_parameters_and_an_unlabelled_empty_body_is_no_name() {
    let d = Daemon::start();
    let r = post_raw(
        &d,
        "/networks/create",
        Some("application/json; charset=utf-8"),
        r#"{"Name":"ct"}"#,
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert!(d.has_link(&br(r.json()["Id"].as_str().unwrap())));
    // No Content-Type and no body is accepted as {} (and then fails on the name).
    let r = d.raw("POST", "/networks/create", None, None);
    assert_error(&r, 400, "invalid name: name is empty");
}

// ---------------------------------------------------------------------------------------------
// DELETE /networks/{id}
// ---------------------------------------------------------------------------------------------

#[test]
fn delete_removes_the_network_and_its_bridge() {
    let d = Daemon::start();
    for how in ["name", "id", "prefix"] {
        let name = format!("del-{how}");
        let id = d.create_network(&json!({"Name": name}));
        let dev = br(&id);
        assert!(d.has_link(&dev));
        let term = match how {
            "name" => name.clone(),
            "id" => id.clone(),
            _ => id[..12].to_string(),
        };
        let r = d.delete(&format!("/networks/{term}"));
        assert_eq!(r.status, 204, "{how}: {r:?}");
        assert_eq!(r.body, "");
        assert!(
            !d.has_link(&dev),
            "{dev} still exists after delete by {how}"
        );
        assert_error(
            &d.get(&format!("/networks/{id}")),
            404,
            &format!("network {id} not found"),
        );
        assert!(!names(&d, "").contains(&name));
        // Twice: now unknown.
        assert_error(
            &d.delete(&format!("/networks/{term}")),
            404,
            &format!("network {term} not found"),
        );
    }
    assert_error(
        &d.delete("/networks/missing"),
        404,
        "network missing not found",
    );
    assert_error(
        &d.delete("/v1.41/networks/missing"),
        404,
        "network missing not found",
    );
    assert_eq!(names(&d, ""), set(&["bridge", "host", "none"]));
}

// ---------------------------------------------------------------------------------------------
// POST /networks/prune
// ---------------------------------------------------------------------------------------------

fn prune(d: &Daemon, filters: &str) -> Response {
    if filters.is_empty() {
        d.raw("POST", "/networks/prune", None, None)
    } else {
        d.raw(
            "POST",
            &format!("/networks/prune?filters={}", enc(filters)),
            None,
            None,
        )
    }
}

fn pruned(d: &Daemon, filters: &str) -> Option<BTreeSet<String>> {
    let r = prune(d, filters);
    assert_eq!(r.status, 200, "prune {filters}: {r:?}");
    let v = r.json();
    let obj = v.as_object().unwrap_or_else(|| panic!("prune answer {v}"));
    assert_eq!(obj.len(), 1, "prune answer {v}");
    match &v["NetworksDeleted"] {
        Value::Null => None,
        Value::Array(items) => Some(
            items
                .iter()
                .map(|n| n.as_str().expect("a name").to_string())
                .collect(),
        ),
        other => panic!("NetworksDeleted is {other}"),
    }
}

#[test]
fn prune_with_filters_removes_matching_networks_and_their_bridges() {
    let d = Daemon::start();
    let keep = d.create_network(&json!({"Name": "keep", "Labels": {"keep": "yes"}}));
    let teamx = d.create_network(&json!({"Name": "teamx", "Labels": {"team": "x"}}));
    let teamy = d.create_network(&json!({"Name": "teamy", "Labels": {"team": "y"}}));
    let plain = d.create_network(&json!({"Name": "plain"}));

    // label: key=value (current encoding).
    assert_eq!(
        pruned(&d, r#"{"label":{"team=x":true}}"#),
        Some(set(&["teamx"]))
    );
    assert!(!d.has_link(&br(&teamx)));
    assert!(d.has_link(&br(&teamy)));

    // until as a duration: everything was created less than an hour ago.
    assert_eq!(pruned(&d, r#"{"until":["1h"]}"#), None);
    // until as Unix seconds long past.
    assert_eq!(pruned(&d, r#"{"until":["1000000000"]}"#), None);
    // label that matches nothing.
    assert_eq!(pruned(&d, r#"{"label":["nobody"]}"#), None);

    // label! (legacy encoding): all but the one labelled keep.
    assert_eq!(
        pruned(&d, r#"{"label!":["keep"]}"#),
        Some(set(&["teamy", "plain"]))
    );
    assert!(!d.has_link(&br(&teamy)));
    assert!(!d.has_link(&br(&plain)));
    assert!(d.has_link(&br(&keep)));
    assert_eq!(names(&d, ""), set(&["bridge", "host", "none", "keep"]));

    // label!=k=v spares only that value.
    d.create_network(&json!({"Name": "keepno", "Labels": {"keep": "no"}}));
    assert_eq!(
        pruned(&d, r#"{"label!":{"keep=yes":true}}"#),
        Some(set(&["keepno"]))
    );

    // until as a future RFC 3339 time: everything older goes.
    assert_eq!(
        pruned(&d, r#"{"until":["2100-01-01T00:00:00Z"]}"#),
        Some(set(&["keep"]))
    );
    assert!(!d.has_link(&br(&keep)));
    assert_eq!(names(&d, ""), set(&["bridge", "host", "none"]));
    assert!(d.has_link("nb0"));

    // Nothing left: null, with and without filters; under a prefix too.
    assert_eq!(pruned(&d, ""), None);
    let r = d.raw("POST", "/v1.44/networks/prune", None, None);
    assert_eq!(r.status, 200);
    assert_eq!(r.body.trim(), r#"{"NetworksDeleted":null}"#);
}

/// SERVER BUG (see the report): Docker turns `until` into a Go `time.Time`, so any RFC 3339
/// time is accepted; netbridge keeps it as i64 nanoseconds and refuses times after 2262.
#[test]
fn prune_until_accepts_far_future_times() {
    let d = Daemon::start();
    d.create_network(&json!({"Name": "old"}));
    assert_eq!(
        pruned(&d, r#"{"until":["2999-01-01T00:00:00Z"]}"#),
        Some(set(&["old"]))
    );
    assert_eq!(names(&d, ""), set(&["bridge", "host", "none"]));
}

#[test]
fn prune_without_filters_removes_every_custom_network() {
    let d = Daemon::start();
    let a = d.create_network(&json!({"Name": "pa"}));
    let b = d.create_network(
        &json!({"Name": "pb", "Options": {"com.docker.network.bridge.name": "nbprune0"}}),
    );
    assert_eq!(pruned(&d, ""), Some(set(&["pa", "pb"])));
    assert!(!d.has_link(&br(&a)));
    assert!(!d.has_link("nbprune0"));
    assert_ne!(a, b);
    assert_eq!(names(&d, ""), set(&["bridge", "host", "none"]));
    assert_eq!(pruned(&d, "{}"), None);
}

#[test]
fn prune_filter_errors() {
    let d = Daemon::start();
    d.create_network(&json!({"Name": "survivor"}));
    for filters in [r#"{"driver":["bridge"]}"#, r#"{"driver":{"bridge":true}}"#] {
        assert_error(&prune(&d, filters), 400, "invalid filter 'driver'");
    }
    assert_error(
        &prune(&d, r#"{"name":["survivor"]}"#),
        400,
        "invalid filter 'name'",
    );
    assert_error(&prune(&d, "notjson"), 400, "invalid filter");
    assert_error(
        &prune(&d, r#"{"until":["1h","2h"]}"#),
        400,
        "more than one until filter specified",
    );
    let r = prune(&d, r#"{"until":["soon"]}"#);
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(names(&d, ""), set(&["bridge", "host", "none", "survivor"]));
}

// ---------------------------------------------------------------------------------------------
// restart, signals, TCP
// ---------------------------------------------------------------------------------------------

#[test]
fn networks_survive_a_restart_and_lost_bridges_come_back() {
    let mut d = Daemon::start();
    let kept = d.create_network(&json!({
        "Name": "kept",
        "IPAM": {"Config": [{"Subnet": "10.90.0.0/24", "Gateway": "10.90.0.254",
                             "IPRange": "10.90.0.128/25", "AuxiliaryAddresses": {"r": "10.90.0.2"}}]},
        "Options": {"com.docker.network.bridge.name": "nbkeep0", "com.docker.network.driver.mtu": "1400",
                    "com.example.x": "y"},
        "Labels": {"team": "a", "tier": "db"}
    }));
    let auto = d.create_network(&json!({"Name": "auto", "Labels": {"x": "1"}}));
    let dual = d.create_network(&json!({
        "Name": "dual", "EnableIPv6": true, "IPAM": {"Config": [{"Subnet": "fd00:42::/64"}]}
    }));
    let before: Vec<Value> = ["bridge", "host", "none", "kept", "auto", "dual"]
        .iter()
        .map(|n| inspect(&d, n))
        .collect();

    assert_eq!(d.stop(), Some(0));
    // Bridges lost while the daemon was down.
    d.ip(&["link", "del", "nbkeep0"]);
    d.ip(&["link", "del", &br(&auto)]);
    assert!(!d.has_link("nbkeep0"));
    d.restart();

    let after: Vec<Value> = ["bridge", "host", "none", "kept", "auto", "dual"]
        .iter()
        .map(|n| inspect(&d, n))
        .collect();
    assert_eq!(after, before);
    assert_eq!(after[3]["Id"], kept.as_str());

    assert!(d.has_link("nbkeep0"), "nbkeep0 not restored");
    assert_eq!(inet(&d, "nbkeep0"), vec!["10.90.0.254/24".to_string()]);
    assert_eq!(mtu(&d, "nbkeep0"), 1400);
    assert!(d.has_link(&br(&auto)), "auto's bridge not restored");
    assert_eq!(inet(&d, &br(&auto)), vec!["172.18.0.1/16".to_string()]);
    assert_eq!(inet(&d, &br(&dual)), vec!["172.19.0.1/16".to_string()]);
    assert_eq!(inet6(&d, &br(&dual)), vec!["fd00:42::1/64".to_string()]);
    assert_eq!(inet(&d, "nb0"), vec!["172.17.0.1/16".to_string()]);
    assert!(
        d.ip(&["link", "show", "dev", "nbkeep0"]).contains(",UP"),
        "restored bridge is down"
    );

    // Allocations were re-reserved: the next automatic subnet is a fresh one, names still taken.
    d.create_network(&json!({"Name": "new"}));
    assert_eq!(
        inspect(&d, "new")["IPAM"]["Config"][0]["Subnet"],
        "172.20.0.0/16"
    );
    assert_error(
        &d.post("/networks/create", &json!({"Name": "kept"})),
        409,
        "network with name kept already exists",
    );
    assert_error(
        &d.post(
            "/networks/create",
            &json!({"Name": "y", "IPAM": {"Config": [{"Subnet": "10.90.0.0/24"}]}}),
        ),
        403,
        "invalid pool request: Pool overlaps with other one on this address space",
    );
    // Labels still filter after the restart.
    assert_eq!(
        names(&d, r#"{"label":["team=a","tier=db"]}"#),
        set(&["kept"])
    );
    // A second restart with nothing changed keeps everything too.
    d.restart();
    assert_eq!(inspect(&d, "kept"), before[3]);
    assert_eq!(names(&d, "").len(), 7);
}

#[test]
fn sigterm_stops_cleanly_and_removes_the_socket() {
    let mut d = Daemon::start();
    d.create_network(&json!({"Name": "x"}));
    assert!(d.socket.exists());
    assert_eq!(d.stop(), Some(0), "exit status on SIGTERM\n{}", d.log());
    assert!(!d.socket.exists(), "socket left behind");
}

/// Runs `netbridge serve` directly in `ns` with extra args; waits (bounded) for it to exit.
fn serve_directly(ns: &Netns, dir: &std::path::Path, extra: &[&str]) -> (Option<i32>, String) {
    let socket = dir.join("s.sock").display().to_string();
    let db = dir.join("db/n.db").display().to_string();
    let mut args = vec![
        "netns",
        "exec",
        ns.name.as_str(),
        common::binary(),
        "serve",
        "--socket",
        &socket,
        "--db",
        &db,
    ];
    args.extend_from_slice(extra);
    let mut child = Command::new("ip")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn netbridge");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("netbridge {extra:?} did not exit: it must refuse to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut out);
    }
    (status.code(), out)
}

#[test]
fn tcp_on_a_non_loopback_address_is_refused() {
    let ns = Netns::new("nbt");
    let dir = std::env::temp_dir().join(format!("netbridge-test-{}", ns.name));
    std::fs::create_dir_all(&dir).unwrap();
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(dir.clone());
    for addr in ["0.0.0.0:2375", "[::]:2375"] {
        let (code, out) = serve_directly(&ns, &dir, &["--tcp", addr]);
        assert!(
            code.is_some_and(|c| c != 0),
            "exit {code:?} for --tcp {addr}: {out}"
        );
        assert!(
            out.contains(&format!("refusing to serve plain TCP on {addr}"))
                && out.contains("non-loopback address needs --tls-cert"),
            "unclear error for --tcp {addr}: {out}"
        );
        assert!(
            !dir.join("s.sock").exists(),
            "socket made despite the refusal"
        );
    }
    let listening = ns.exec(&["ss", "-ltn"]);
    assert!(!String::from_utf8_lossy(&listening.stdout).contains(":2375"));
}

/// Enters the network namespace `ns` on a fresh thread and runs `f` there.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    use std::os::fd::AsRawFd;
    unsafe extern "C" {
        fn setns(fd: i32, nstype: i32) -> i32;
    }
    const CLONE_NEWNET: i32 = 0x4000_0000;
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("open netns");
        // SAFETY: setns on a valid namespace fd affects only this thread, which we own.
        let rc = unsafe { setns(file.as_raw_fd(), CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("netns thread")
}

fn tcp_get(addr: &str, path: &str) -> String {
    tcp_get_with(addr, path, "Authorization: Bearer loopback-token\r\n")
}

fn tcp_get_with(addr: &str, path: &str, headers: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect over TCP");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{headers}\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn tcp_without_a_token_file_is_refused() {
    let ns = Netns::new("nbt");
    let dir = std::env::temp_dir().join(format!("netbridge-test-{}", ns.name));
    std::fs::create_dir_all(&dir).unwrap();
    let (code, out) = serve_directly(&ns, &dir, &["--tcp", "127.0.0.1:2375"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(code.is_some_and(|c| c != 0), "exit {code:?}: {out}");
    assert!(out.contains("without --token-file"), "unclear error: {out}");
}

#[test]
fn tcp_on_loopback_serves_the_api() {
    let tokens = std::env::temp_dir().join(format!("nbt-tokens-{}", rand_hex(8)));
    std::fs::write(&tokens, "# test\nloopback-token\n").unwrap();
    let tokens_arg = tokens.display().to_string();
    let d = Daemon::start_with(&["--tcp", "127.0.0.1:2375", "--token-file", &tokens_arg]);
    let _ = std::fs::remove_file(&tokens);
    let ss = d.ns.exec(&["ss", "-ltn"]);
    assert!(ss.status.success());
    assert!(
        String::from_utf8_lossy(&ss.stdout).contains("127.0.0.1:2375"),
        "not listening: {}",
        String::from_utf8_lossy(&ss.stdout)
    );
    d.create_network(&json!({"Name": "viaunix"}));
    let (ping, list) = in_netns(&d.ns.name, || {
        (
            tcp_get("127.0.0.1:2375", "/_ping"),
            tcp_get("127.0.0.1:2375", "/v1.44/networks"),
        )
    });
    assert!(ping.starts_with("HTTP/1.1 200"), "{ping}");
    assert!(
        ping.to_ascii_lowercase().contains("api-version: 1.55"),
        "{ping}"
    );
    assert!(ping.ends_with("OK"), "{ping}");
    assert!(list.starts_with("HTTP/1.1 200"), "{list}");
    assert!(list.contains("\"Name\":\"viaunix\""), "{list}");
    // Without a token, or with a wrong one: 401 with a JSON message and WWW-Authenticate.
    let (none, wrong) = in_netns(&d.ns.name, || {
        (
            tcp_get_with("127.0.0.1:2375", "/networks", ""),
            tcp_get_with(
                "127.0.0.1:2375",
                "/networks",
                "Authorization: Bearer nope\r\n",
            ),
        )
    });
    for r in [&none, &wrong] {
        assert!(r.starts_with("HTTP/1.1 401"), "{r}");
        assert!(
            r.to_ascii_lowercase().contains("www-authenticate: bearer"),
            "{r}"
        );
        assert!(r.contains("{\"message\":"), "{r}");
    }
    // The Unix socket needs no token: its file mode is its authentication.
    assert_eq!(d.get("/networks").status, 200);
}

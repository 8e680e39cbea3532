//! Smaller compatibility gaps (issue 11, item 6), each checked against what Docker answers:
//! swarm routes, `filters=null`, malformed version prefixes, names holding `/`, and logs that
//! a file or a log shipper can read.

mod common;

use common::*;

/// Docker's answer to every swarm route (but leave) on a node outside a swarm.
const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \
                             \"docker swarm join\" to connect this node to swarm and try again.";

#[test]
fn swarm_routes_answer_503_not_in_a_swarm() {
    let d = Daemon::start();
    let leave = d.raw("POST", "/swarm/leave", None, None);
    assert_eq!(leave.status, 503, "{leave:?}");
    assert_eq!(leave.message(), "This node is not part of a swarm");
    let leave = d.raw("POST", "/v1.44/swarm/leave?force=1", None, None);
    assert_eq!(leave.status, 503, "{leave:?}");

    for (method, path) in [
        ("GET", "/swarm"),
        ("GET", "/v1.40/swarm"),
        ("GET", "/swarm/unlockkey"),
        ("POST", "/swarm/update?version=1"),
        ("POST", "/swarm/unlock"),
        ("GET", "/nodes"),
        ("GET", "/nodes/n1"),
        ("DELETE", "/nodes/n1"),
        ("POST", "/nodes/n1/update?version=1"),
        ("GET", "/services"),
        ("GET", "/services?filters=null"),
        ("POST", "/services/create"),
        ("GET", "/services/s1"),
        ("POST", "/services/s1/update?version=1"),
        ("DELETE", "/services/s1"),
        ("GET", "/services/s1/logs?stdout=1"),
        ("GET", "/tasks"),
        ("GET", "/tasks/t1"),
        ("GET", "/tasks/t1/logs?stdout=1"),
        ("GET", "/secrets"),
        ("POST", "/secrets/create"),
        ("GET", "/secrets/x"),
        ("POST", "/secrets/x/update?version=1"),
        ("DELETE", "/secrets/x"),
        ("GET", "/configs"),
        ("POST", "/configs/create"),
        ("GET", "/configs/x"),
        ("POST", "/configs/x/update?version=1"),
        ("DELETE", "/v1.55/configs/x"),
    ] {
        let body = (method == "POST").then_some("{}");
        let r = d.raw(method, path, body.map(|_| "application/json"), body);
        assert_eq!(r.status, 503, "{method} {path}: {r:?}");
        assert_eq!(r.message(), NOT_A_MANAGER, "{method} {path}");
    }
    // Joining or making a swarm cannot work here: 503 too, saying why.
    for path in ["/swarm/init", "/swarm/join"] {
        let r = d.post(path, &json!({}));
        assert_eq!(r.status, 503, "{path}: {r:?}");
        assert!(r.message().contains("swarm"), "{path}: {r:?}");
    }
    // `docker swarm leave` gets Docker's answer.
    let out = d.docker(&["swarm", "leave"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("This node is not part of a swarm"), "{err}");
}

#[test]
fn filters_null_means_no_filter() {
    let d = Daemon::start();
    let all = d.get("/networks");
    assert_eq!(all.status, 200);
    for path in [
        "/networks?filters=null",
        "/v1.44/networks?filters=null",
        "/networks?filters=%20null%20",
    ] {
        let r = d.get(path);
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert_eq!(
            r.json().as_array().map(Vec::len),
            all.json().as_array().map(Vec::len),
            "{path}"
        );
    }
    let r = d.raw("POST", "/networks/prune?filters=null", None, None);
    assert_eq!(r.status, 200, "{r:?}");
    let r = d.get("/events?filters=null&since=0&until=1");
    assert_eq!(r.status, 200, "{r:?}");
    // A null value for one key is no value for it, as Go decodes it.
    let r = d.get("/networks?filters=%7B%22name%22%3Anull%7D");
    assert_eq!(r.status, 200, "{r:?}");
    // Still refused: JSON that is not an object.
    for bad in ["%5B%5D", "1", "%22x%22"] {
        let r = d.get(&format!("/networks?filters={bad}"));
        assert_eq!(r.status, 400, "filters={bad}: {r:?}");
    }
}

#[test]
fn version_prefixes_parse_as_docker_does() {
    let d = Daemon::start();
    let too_new =
        |v: &str| format!("client version {v} is too new. Maximum supported API version is 1.55");
    let too_old = |v: &str| {
        format!(
            "client version {v} is too old. Minimum supported API version is 1.40, please upgrade your client to a newer version"
        )
    };
    for v in ["1.55.1", "1.56", "2", "1.99999999999999999999"] {
        let r = d.get(&format!("/v{v}/networks"));
        assert_eq!(r.status, 400, "/v{v}: {r:?}");
        assert_eq!(r.message(), too_new(v), "/v{v}");
    }
    // Between 1.24 and the minimum, a JSON error; below 1.24, Docker answers in plain text.
    let r = d.get("/v1.39/networks");
    assert_eq!((r.status, r.message()), (400, too_old("1.39")));
    for v in ["1", "1..41", ".1.41", "1.23"] {
        let r = d.get(&format!("/v{v}/networks"));
        assert_eq!(r.status, 400, "/v{v}: {r:?}");
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with("text/plain")),
            "/v{v}: {r:?}"
        );
        assert_eq!(r.body.trim_end(), too_old(v), "/v{v}");
    }
    // Missing parts count as 0: these are within the range.
    for v in ["1.55.0", "1.41.", "1.40.5", "1.44.0.0"] {
        let r = d.get(&format!("/v{v}/networks"));
        assert_eq!(r.status, 200, "/v{v}: {r:?}");
    }
    // Not a version prefix at all, and an unknown route under a bad version: page not found.
    for path in [
        "/v1.x/networks",
        "/v/networks",
        "/v1.55.1/nonexistent",
        "/v1/nope",
    ] {
        let r = d.get(path);
        assert_eq!(
            (r.status, r.message()),
            (404, "page not found".into()),
            "{path}"
        );
    }
}

#[test]
fn delete_by_ambiguous_prefix_is_400_and_documented() {
    let d = Daemon::start();
    // Enough networks that two IDs share a first hex digit.
    let mut ids: Vec<String> = Vec::new();
    let prefix = loop {
        let id = d.create_network(&json!({"Name": format!("amb-{}", ids.len())}));
        if let Some(twin) = ids.iter().find(|i| i[..1] == id[..1]) {
            break twin[..1].to_string();
        }
        ids.push(id);
    };
    let r = d.delete(&format!("/networks/{prefix}"));
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.message().contains("is ambiguous"), "{r:?}");
    let doc = d.get("/openapi.json").json();
    let responses = &doc["paths"]["/networks/{id}"]["delete"]["responses"];
    assert!(responses.get("400").is_some(), "{responses}");
}

#[test]
fn openapi_describes_filters_as_json_and_the_sandbox_name_pattern() {
    let d = Daemon::start();
    let doc = d.get("/openapi.json").json();
    for (path, method) in [
        ("/networks", "get"),
        ("/networks/prune", "post"),
        ("/events", "get"),
    ] {
        let params = doc["paths"][path][method]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path}: no parameters"));
        let filters = params
            .iter()
            .find(|p| p["name"] == "filters")
            .unwrap_or_else(|| panic!("{method} {path}: no filters"));
        assert!(filters.get("schema").is_none(), "{filters}");
        let schema = &filters["content"]["application/json"]["schema"];
        assert!(schema.is_object(), "{method} {path}: {filters}");
        assert!(
            schema.to_string().contains("additionalProperties"),
            "{schema}"
        );
    }
    let params = doc["paths"]["/containers/create"]["post"]["parameters"]
        .as_array()
        .expect("parameters");
    let name = params.iter().find(|p| p["name"] == "name").expect("name");
    assert_eq!(
        name["schema"]["pattern"],
        json!("^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$"),
        "{name}"
    );
}

#[test]
fn logs_to_a_file_carry_no_colour_and_json_is_one_object_a_line() {
    let d = Daemon::start();
    assert_eq!(d.get("/networks").status, 200);
    let log = d.log();
    assert!(!log.is_empty());
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escapes in a log file:\n{log}"
    );
    drop(d);

    let d = Daemon::start_with(&["--log-format", "json"]);
    assert_eq!(d.get("/networks").status, 200);
    let log = d.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in lines {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object a line ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
    }
    drop(d);

    let out = std::process::Command::new(binary())
        .args(["serve", "--log-format", "xml"])
        .output()
        .expect("run netbridge");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("xml"));
}

#[test]
fn names_holding_a_slash_work_encoded_and_raw() {
    let d = Daemon::start();
    let sb = format!("sl{}", rand_hex(6));
    assert_eq!(
        d.raw("POST", &format!("/containers/create?name={sb}"), None, None)
            .status,
        201
    );
    let id = d.create_network(&json!({"Name": "a/b"}));
    let connect_named = d.create_network(&json!({"Name": "x/connect"}));
    let plain = d.create_network(&json!({"Name": "x"}));

    for path in ["/networks/a%2Fb", "/networks/a/b", "/v1.44/networks/a/b"] {
        let r = d.get(path);
        assert_eq!(r.status, 200, "GET {path}: {r:?}");
        assert_eq!(r.json()["Id"], json!(id), "GET {path}");
    }
    // The network literally named `x/connect`: inspect reaches it; connect needs its own
    // `/connect` after the name, as on Docker.
    let r = d.get("/networks/x/connect");
    assert_eq!(r.json()["Id"], json!(connect_named), "{r:?}");
    let r = d.get("/networks/a/");
    assert_eq!(
        (r.status, r.message()),
        (404, "network a/ not found".into())
    );
    assert_eq!(d.get("/networks/").status, 200);
    let r = d.post("/networks/a/b", &json!({}));
    assert_eq!((r.status, r.message()), (404, "page not found".into()));

    let r = d.post("/networks/a/b/connect", &json!({"Container": sb}));
    assert_eq!(r.status, 200, "{r:?}");
    let r = d.post("/networks/x/connect/connect", &json!({"Container": sb}));
    assert_eq!(r.status, 200, "{r:?}");
    let r = d.post("/networks/x/connect", &json!({"Container": sb}));
    assert_eq!(r.status, 200, "{r:?}");
    for (name, nid) in [("a/b", &id), ("x/connect", &connect_named), ("x", &plain)] {
        let inspect = d.get(&format!("/networks/{nid}")).json();
        assert_eq!(
            inspect["Containers"].as_object().map(|c| c.len()),
            Some(1),
            "{name}: {inspect}"
        );
    }
    let r = d.post("/networks/a%2Fb/disconnect", &json!({"Container": sb}));
    assert_eq!(r.status, 200, "{r:?}");
    let r = d.post("/networks/x/connect/disconnect", &json!({"Container": sb}));
    assert_eq!(r.status, 200, "{r:?}");
    let r = d.post("/networks/x/disconnect", &json!({"Container": sb}));
    assert_eq!(r.status, 200, "{r:?}");

    // The stock docker CLI, which puts the name in the path as it is.
    let out = d.docker_ok(&["network", "inspect", "-f", "{{.Id}}", "a/b"]);
    assert_eq!(out.trim(), id);

    assert_eq!(d.delete("/networks/a/b").status, 204);
    assert_eq!(d.delete("/networks/x%2Fconnect").status, 204);
    assert_eq!(d.delete("/networks/x").status, 204);
    assert_eq!(d.delete(&format!("/containers/{sb}?force=1")).status, 204);
}

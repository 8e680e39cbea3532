//! The checked-in OpenAPI document must be exactly what the code generates.

use std::process::Command;

#[test]
fn checked_in_openapi_matches_the_code() {
    let out = Command::new(env!("CARGO_BIN_EXE_netbridge"))
        .arg("openapi")
        .output()
        .expect("run netbridge openapi");
    assert!(out.status.success(), "netbridge openapi failed");
    let generated = String::from_utf8(out.stdout).expect("utf-8");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/netbridge.json");
    let checked_in = std::fs::read_to_string(path).expect("openapi/netbridge.json");
    assert!(
        generated.trim_end() == checked_in.trim_end(),
        "openapi/netbridge.json is stale: regenerate it with\n    cargo run -q -- openapi > openapi/netbridge.json"
    );
}

#[test]
fn document_is_openapi_3_1_with_every_route() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/netbridge.json");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("JSON");
    assert!(
        doc["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3.1")
    );
    let paths = doc["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/_ping", "get"),
        ("/_ping", "head"),
        ("/version", "get"),
        ("/networks", "get"),
        ("/networks/{id}", "get"),
        ("/networks/{id}", "delete"),
        ("/networks/create", "post"),
        ("/networks/prune", "post"),
        ("/networks/{id}/connect", "post"),
        ("/networks/{id}/disconnect", "post"),
        ("/containers/create", "post"),
        ("/containers/json", "get"),
        ("/containers/{id}/json", "get"),
        ("/containers/{id}", "delete"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
}

//! `openapi/netbridge.json` against Docker's own contract, `../shared/docker-api/networks.swagger.yaml`
//! (Swagger 2.0, Engine API 1.55): every route, parameter, status code, response header and schema
//! field of Docker's must be in ours with a compatible type, or be listed in
//! `openapi/DIFFERENCES.md`, the one place deliberate differences are written down. Each entry
//! there must still be a real difference, so the list stays true; our additions (extra routes,
//! status codes, fields) are listed there too, under "Additions".
//!
//! Schemas are compared by walking both documents in step from each route's request body and
//! responses, so a Docker definition is compared with whatever schema of ours stands in the same
//! place, whatever its name; the resulting name mapping is pinned in `EXPECTED_MAPPING` below.
//! Then each Docker definition is also compared with our schema of the same name, if any.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use yaml_rust2::{Yaml, YamlLoader};

const OURS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/netbridge.json");
const LIST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/DIFFERENCES.md");
/// `shared/` sits beside the repository, on a developer's machine and in CI alike.
const DOCKER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/docker-api/networks.swagger.yaml"
);

/// Docker definition (or inline schema named by its `title`/`x-go-name`) → the schema of ours
/// compared with it. Where the names differ, ours is a request type: every field optional and
/// nullable so that a missing field gets Docker's own error message rather than serde's.
const EXPECTED_MAPPING: &[(&str, &str)] = &[
    // `SystemVersion.Components[]`, inline in Docker's document (x-go-name ComponentVersion).
    ("ComponentVersion", "ComponentVersion"),
    ("ConfigReference", "ConfigReference"),
    // `ConfigFrom` in the create body.
    ("ConfigReference", "ConfigReferenceRequest"),
    ("EndpointIPAMConfig", "EndpointIPAMConfig"),
    ("EndpointResource", "EndpointResource"),
    // Same name: ours is what container inspect reports in `NetworkSettings.Networks`.
    ("EndpointSettings", "EndpointSettings"),
    // `EndpointConfig` in the connect body: the configuration part of EndpointSettings.
    ("EndpointSettings", "EndpointSettingsRequest"),
    ("ErrorResponse", "ErrorResponse"),
    ("IPAM", "IPAM"),
    // `IPAM` in the create body.
    ("IPAM", "IpamRequest"),
    ("IPAMConfig", "IPAMConfig"),
    ("IPAMStatus", "IPAMStatus"),
    ("NetworkConnectRequest", "NetworkConnectRequest"),
    // The create body, inline in Docker's document (title NetworkCreateRequest).
    ("NetworkCreateRequest", "NetworkCreateRequest"),
    // `Peers` of a global (overlay) network's inspect.
    ("PeerInfo", "PeerInfo"),
    ("NetworkCreateResponse", "NetworkCreateResponse"),
    ("NetworkDisconnectRequest", "NetworkDisconnectRequest"),
    // Docker's NetworkInspect and NetworkSummary are allOf its `Network`; so are ours, in effect
    // (NetworkInspect is allOf our NetworkSummary, which has the fields of Docker's `Network`).
    ("NetworkInspect", "NetworkInspect"),
    // The prune response, inline in Docker's document (title NetworkPruneResponse).
    ("NetworkPruneResponse", "NetworkPruneResponse"),
    ("NetworkStatus", "NetworkStatus"),
    ("NetworkSummary", "NetworkSummary"),
    ("SubnetStatus", "SubnetStatus"),
    ("SystemVersion", "SystemVersion"),
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

#[test]
fn matches_docker_except_the_listed_differences() {
    let docker = docker_document();
    let ours = our_document();
    let mut cmp = Compare::new(&docker, &ours);
    cmp.routes();
    cmp.same_named_definitions();
    cmp.unreached_definitions();

    let mut problems = Vec::new();
    let mapping: BTreeSet<(String, String)> = EXPECTED_MAPPING
        .iter()
        .map(|(d, o)| (d.to_string(), o.to_string()))
        .collect();
    if cmp.pairs != mapping {
        for (d, o) in cmp.pairs.difference(&mapping) {
            problems.push(format!(
                "Docker's {d} is now compared with our {o}: add it to EXPECTED_MAPPING"
            ));
        }
        for (d, o) in mapping.difference(&cmp.pairs) {
            problems.push(format!(
                "Docker's {d} is no longer compared with our {o}: drop it from EXPECTED_MAPPING"
            ));
        }
    }

    let listed = listed_differences();
    let found: BTreeSet<&(String, String)> = cmp.diffs.keys().collect();
    let known: BTreeSet<&(String, String)> = listed.keys().collect();
    for key in found.difference(&known) {
        problems.push(format!(
            "not in openapi/DIFFERENCES.md: `{}: {}` ({}); fix the server or list it with a reason",
            key.0, key.1, cmp.diffs[*key]
        ));
    }
    for key in known.difference(&found) {
        problems.push(format!(
            "openapi/DIFFERENCES.md line {}: `{}: {}` is no longer a difference; remove it",
            listed[*key], key.0, key.1
        ));
    }
    assert!(
        problems.is_empty(),
        "netbridge.json vs Docker's networks.swagger.yaml:\n  {}",
        problems.join("\n  ")
    );
}

/// The create, connect and disconnect bodies carry examples, taken from the README's seed
/// experiment, and each example only uses fields its schema declares.
#[test]
fn request_bodies_carry_the_seed_experiment_as_examples() {
    let ours = our_document();
    for (path, seed) in [
        (
            "/networks/create",
            &[
                ("/Name", "mynet"),
                ("/IPAM/Config/0/Subnet", "172.30.0.0/24"),
            ][..],
        ),
        (
            "/networks/{id}/connect",
            &[
                ("/Container", "test2"),
                ("/EndpointConfig/IPAMConfig/IPv4Address", "172.30.0.20"),
            ][..],
        ),
        ("/networks/{id}/disconnect", &[("/Container", "test1")][..]),
    ] {
        let media = &ours["paths"][path]["post"]["requestBody"]["content"]["application/json"];
        let schema = &media["schema"];
        assert!(schema.is_object(), "POST {path}: no JSON request body");
        let schema_example = view(&ours, schema).example;
        let example = media
            .get("example")
            .or_else(|| {
                media
                    .get("examples")
                    .and_then(Value::as_object)
                    .and_then(|e| e.values().next())
                    .and_then(|e| e.get("value"))
            })
            .or(schema_example.as_ref())
            .unwrap_or_else(|| panic!("POST {path}: the request body has no example"));
        for (pointer, value) in seed {
            assert_eq!(
                example.pointer(pointer),
                Some(&json!(value)),
                "POST {path}: example {example} should hold the seed experiment's {pointer} = {value}"
            );
        }
        conforms(&ours, schema, example, &format!("POST {path} example"));
    }
}

/// Fails if `example` uses a field `schema` does not declare.
fn conforms(doc: &Value, schema: &Value, example: &Value, at: &str) {
    let v = view(doc, schema);
    match example {
        Value::Object(fields) if !v.props.is_empty() => {
            for (k, value) in fields {
                let field = v
                    .props
                    .get(k)
                    .unwrap_or_else(|| panic!("{at}: `{k}` is not a field of the schema"));
                conforms(doc, field, value, &format!("{at}.{k}"));
            }
        }
        Value::Array(items) => {
            if let Some(item) = &v.items {
                for (i, value) in items.iter().enumerate() {
                    conforms(doc, item, value, &format!("{at}[{i}]"));
                }
            }
        }
        _ => {}
    }
}

fn our_document() -> Value {
    serde_json::from_str(&std::fs::read_to_string(OURS).expect("read openapi/netbridge.json"))
        .expect("openapi/netbridge.json is JSON")
}

fn docker_document() -> Value {
    let text = std::fs::read_to_string(DOCKER).unwrap_or_else(|e| {
        panic!("read Docker's contract {DOCKER} (shared/ beside the repository): {e}")
    });
    let docs = YamlLoader::load_from_str(&text).expect("networks.swagger.yaml is YAML");
    let doc = yaml_to_json(&docs[0]);
    assert_eq!(doc["swagger"], "2.0");
    doc
}

fn yaml_to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Real(s) => s
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| Value::String(s.clone()), Value::Number),
        Yaml::Integer(i) => json!(i),
        Yaml::String(s) => json!(s),
        Yaml::Boolean(b) => json!(b),
        Yaml::Null => Value::Null,
        Yaml::Array(items) => items.iter().map(yaml_to_json).collect(),
        Yaml::Hash(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    // Status codes are integer keys in YAML; JSON keys are strings.
                    let key = match k {
                        Yaml::String(s) | Yaml::Real(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        Yaml::Boolean(b) => b.to_string(),
                        other => panic!("unexpected YAML key {other:?}"),
                    };
                    (key, yaml_to_json(v))
                })
                .collect(),
        ),
        Yaml::Alias(_) | Yaml::BadValue => panic!("unsupported YAML node {y:?}"),
    }
}

/// `(key, verdict)` → line number, from the ```differences blocks of openapi/DIFFERENCES.md.
/// A line is `KEY: VERDICT — reason`; entries whose verdict is `added` belong under a heading
/// that says "Additions", the others not.
fn listed_differences() -> BTreeMap<(String, String), usize> {
    let text = std::fs::read_to_string(LIST).expect("read openapi/DIFFERENCES.md");
    let mut listed = BTreeMap::new();
    let mut heading = String::new();
    let mut in_block = false;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_block = !in_block && trimmed == "```differences";
            continue;
        }
        if !in_block {
            if trimmed.starts_with('#') {
                heading = trimmed.to_string();
            }
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with("//") {
            continue;
        }
        let (key, rest) = trimmed
            .split_once(": ")
            .unwrap_or_else(|| panic!("DIFFERENCES.md line {n}: want `KEY: VERDICT — reason`"));
        let verdict = rest.split_whitespace().next().unwrap_or_default();
        assert!(
            ["omitted", "added", "optional", "required", "type"].contains(&verdict),
            "DIFFERENCES.md line {n}: verdict `{verdict}` is not one of omitted, added, optional, required, type"
        );
        let reason = rest[verdict.len()..].trim_start_matches([' ', '—', '-', ':']);
        assert!(
            !reason.trim().is_empty(),
            "DIFFERENCES.md line {n}: `{key}` needs a reason"
        );
        assert_eq!(
            verdict == "added",
            heading.contains("Additions"),
            "DIFFERENCES.md line {n}: `added` entries go under the Additions heading, and only they"
        );
        let previous = listed.insert((key.to_string(), verdict.to_string()), n);
        assert!(
            previous.is_none(),
            "DIFFERENCES.md line {n}: `{key}` listed twice"
        );
    }
    listed
}

/// A schema seen through `$ref`, `allOf` and `oneOf: [T, null]`: what the comparison looks at.
#[derive(Default)]
struct View {
    /// The definition or component name, or an inline schema's `title`/`x-go-name`.
    name: Option<String>,
    /// JSON types, `null` left out (nullable is fine either way).
    types: BTreeSet<String>,
    props: BTreeMap<String, Value>,
    required: BTreeSet<String>,
    items: Option<Value>,
    additional: Option<Value>,
    /// Definitions passed through on the way (Docker's `Network` via `allOf`, say).
    refs: Vec<String>,
    example: Option<Value>,
}

fn view(doc: &Value, schema: &Value) -> View {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let target = doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("dangling $ref {r}"));
        let name = r.rsplit('/').next().unwrap_or(r).to_string();
        let mut v = view(doc, target);
        v.refs.push(name.clone());
        v.name = Some(name);
        return v;
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alternatives) = schema.get(key).and_then(Value::as_array) {
            let real: Vec<&Value> = alternatives
                .iter()
                .filter(|a| a.get("type") != Some(&json!("null")))
                .collect();
            assert_eq!(real.len(), 1, "only `{key}: [T, null]` is understood");
            return view(doc, real[0]);
        }
    }
    let mut v = View {
        name: ["title", "x-go-name"]
            .iter()
            .find_map(|k| schema.get(*k).and_then(Value::as_str))
            .map(str::to_string),
        example: schema.get("example").cloned(),
        ..View::default()
    };
    for part in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let p = view(doc, part);
        v.types.extend(p.types);
        v.props.extend(p.props);
        v.required.extend(p.required);
        v.refs.extend(p.refs);
        v.items = v.items.or(p.items);
        v.additional = v.additional.or(p.additional);
    }
    match schema.get("type") {
        Some(Value::String(t)) => {
            v.types.insert(t.clone());
        }
        Some(Value::Array(ts)) => v
            .types
            .extend(ts.iter().filter_map(Value::as_str).map(str::to_string)),
        _ => {}
    }
    v.types.remove("null");
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        v.props
            .extend(props.iter().map(|(k, s)| (k.clone(), s.clone())));
    }
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        v.required.extend(
            required
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string),
        );
    }
    v.items = v.items.or_else(|| schema.get("items").cloned());
    v.additional = v.additional.or_else(|| {
        schema
            .get("additionalProperties")
            .filter(|a| a.is_object())
            .cloned()
    });
    if v.types.is_empty() && (!v.props.is_empty() || schema.get("allOf").is_some()) {
        v.types.insert("object".to_string());
    }
    v
}

/// Types are compatible when they share one (an integer is a number); an untyped side (Docker's
/// free-form `x-go-type` maps) goes with anything.
fn compatible(docker: &BTreeSet<String>, ours: &BTreeSet<String>) -> bool {
    docker.is_empty()
        || ours.is_empty()
        || docker
            .iter()
            .any(|t| ours.contains(t) || (t == "number" && ours.contains("integer")))
}

fn types(v: &View) -> String {
    v.types.iter().cloned().collect::<Vec<_>>().join("|")
}

struct Compare<'a> {
    docker: &'a Value,
    ours: &'a Value,
    /// `(key, verdict)` → what was seen, for the failure message.
    diffs: BTreeMap<(String, String), String>,
    /// (Docker name, our name) of every pair of named schemas compared.
    pairs: BTreeSet<(String, String)>,
    /// Docker definitions compared.
    reached: BTreeSet<String>,
    done: BTreeSet<(String, bool)>,
}

impl<'a> Compare<'a> {
    fn new(docker: &'a Value, ours: &'a Value) -> Self {
        Compare {
            docker,
            ours,
            diffs: BTreeMap::new(),
            pairs: BTreeSet::new(),
            reached: BTreeSet::new(),
            done: BTreeSet::new(),
        }
    }

    fn diff(&mut self, key: String, verdict: &str, seen: String) {
        self.diffs.insert((key, verdict.to_string()), seen);
    }

    fn routes(&mut self) {
        let empty = serde_json::Map::new();
        let (docker, ours): (&'a Value, &'a Value) = (self.docker, self.ours);
        let docker_paths = docker["paths"].as_object().expect("Docker paths");
        let our_paths = ours["paths"].as_object().expect("our paths");
        for (path, item) in docker_paths {
            for (method, op) in item.as_object().unwrap_or(&empty) {
                if !METHODS.contains(&method.as_str()) {
                    continue;
                }
                let m = method.to_uppercase();
                match our_paths.get(path).and_then(|i| i.get(method)) {
                    None => self.diff(
                        format!("route {m} {path}"),
                        "omitted",
                        "Docker has the route, ours not".into(),
                    ),
                    Some(ours) => self.operation(&m, path, item, op, &our_paths[path], ours),
                }
            }
        }
        for (path, item) in our_paths {
            for method in item.as_object().unwrap_or(&empty).keys() {
                let in_docker = docker_paths.get(path).and_then(|i| i.get(method));
                if METHODS.contains(&method.as_str()) && in_docker.is_none() {
                    let m = method.to_uppercase();
                    self.diff(
                        format!("route {m} {path}"),
                        "added",
                        "ours has the route, Docker's document not".into(),
                    );
                }
            }
        }
    }

    fn operation(
        &mut self,
        m: &str,
        path: &str,
        docker_item: &Value,
        docker_op: &Value,
        our_item: &Value,
        our_op: &Value,
    ) {
        let params = |item: &Value, op: &Value| -> Vec<Value> {
            [item, op]
                .iter()
                .filter_map(|x| x.get("parameters").and_then(Value::as_array))
                .flatten()
                .cloned()
                .collect()
        };
        let docker_params = params(docker_item, docker_op);
        let our_params = params(our_item, our_op);
        let key = |p: &Value| {
            format!(
                "param {m} {path} {} {}",
                p["in"].as_str().unwrap_or_default(),
                p["name"].as_str().unwrap_or_default()
            )
        };
        let required = |p: &Value| p.get("required").and_then(Value::as_bool).unwrap_or(false);

        let mut docker_body = None;
        for dp in &docker_params {
            if dp["in"] == "body" {
                docker_body = Some(dp);
                continue;
            }
            let Some(op) = our_params
                .iter()
                .find(|op| op["in"] == dp["in"] && op["name"] == dp["name"])
            else {
                self.diff(key(dp), "omitted", "Docker has the parameter".into());
                continue;
            };
            match (required(dp), required(op)) {
                (true, false) => self.diff(key(dp), "optional", "Docker requires it".into()),
                (false, true) => {
                    self.diff(key(dp), "required", "Docker does not require it".into())
                }
                _ => {}
            }
            let dt: BTreeSet<String> = dp["type"]
                .as_str()
                .map(str::to_string)
                .into_iter()
                .collect();
            let ot = view(self.ours, &op["schema"]);
            if !compatible(&dt, &ot.types) {
                let seen = format!("Docker {dt:?}, ours {}", types(&ot));
                self.diff(key(dp), "type", seen);
            }
        }
        for op in &our_params {
            if !docker_params
                .iter()
                .any(|dp| dp["in"] == op["in"] && dp["name"] == op["name"])
            {
                self.diff(
                    key(op),
                    "added",
                    "Docker's document has no such parameter".into(),
                );
            }
        }

        let body_key = format!("body {m} {path} request");
        match (docker_body, our_op.get("requestBody")) {
            (None, None) => {}
            (Some(_), None) => self.diff(body_key, "omitted", "Docker takes a body".into()),
            (None, Some(_)) => self.diff(body_key, "added", "Docker takes no body".into()),
            (Some(dp), Some(ob)) => {
                match (required(dp), required(ob)) {
                    (true, false) => {
                        self.diff(body_key.clone(), "optional", "Docker requires it".into())
                    }
                    (false, true) => self.diff(
                        body_key.clone(),
                        "required",
                        "Docker does not require it".into(),
                    ),
                    _ => {}
                }
                match media_schema(ob) {
                    Some(os) => {
                        let loc = format!("{m} {path} request");
                        self.schema(&dp["schema"], os, &loc, true);
                    }
                    None => self.diff(body_key, "omitted", "our body has no schema".into()),
                }
            }
        }

        let empty = serde_json::Map::new();
        let docker_responses = docker_op["responses"].as_object().unwrap_or(&empty);
        let our_responses = our_op["responses"].as_object().unwrap_or(&empty);
        for (code, dr) in docker_responses {
            let Some(or) = our_responses.get(code) else {
                self.diff(
                    format!("status {m} {path} {code}"),
                    "omitted",
                    format!("Docker: {}", dr["description"].as_str().unwrap_or_default()),
                );
                continue;
            };
            let body_key = format!("body {m} {path} {code}");
            match (dr.get("schema"), media_schema(or)) {
                (Some(ds), Some(os)) => self.schema(ds, os, &format!("{m} {path} {code}"), false),
                (Some(_), None) => self.diff(body_key, "omitted", "Docker has a body".into()),
                (None, Some(_)) => self.diff(body_key, "added", "Docker has no body".into()),
                (None, None) => {}
            }
            let docker_headers = dr
                .get("headers")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            let our_headers = or
                .get("headers")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            for (name, dh) in docker_headers {
                let key = format!("header {m} {path} {code} {name}");
                match find(our_headers, name) {
                    None => self.diff(key, "omitted", "Docker documents the header".into()),
                    Some(oh) => {
                        let dt: BTreeSet<String> = dh["type"]
                            .as_str()
                            .map(str::to_string)
                            .into_iter()
                            .collect();
                        let ot = view(self.ours, &oh["schema"]);
                        if !compatible(&dt, &ot.types) {
                            let seen = format!("Docker {dt:?}, ours {}", types(&ot));
                            self.diff(key, "type", seen);
                        }
                    }
                }
            }
            for name in our_headers.keys() {
                if find(docker_headers, name).is_none() {
                    self.diff(
                        format!("header {m} {path} {code} {name}"),
                        "added",
                        "Docker does not document the header".into(),
                    );
                }
            }
        }
        for (code, or) in our_responses {
            if !docker_responses.contains_key(code) {
                self.diff(
                    format!("status {m} {path} {code}"),
                    "added",
                    format!("ours: {}", or["description"].as_str().unwrap_or_default()),
                );
            }
        }
    }

    /// Compares Docker's schema `d` with ours `o`, found at `loc`. `request`: a body a client
    /// sends, where requiring more than Docker is the difference that matters.
    fn schema(&mut self, d: &Value, o: &Value, loc: &str, request: bool) {
        let dv = view(self.docker, d);
        let ov = view(self.ours, o);
        self.reached.extend(dv.refs.iter().cloned());
        if !compatible(&dv.types, &ov.types) {
            let seen = format!("Docker {}, ours {}", types(&dv), types(&ov));
            self.diff(format!("schema {loc}"), "type", seen);
            return;
        }
        // Where the fields of this schema are reported: Docker's name for it, `=ours` where our
        // schema in that place is named differently.
        let here = match (&dv.name, &ov.name) {
            (Some(dn), Some(on)) => {
                self.pairs.insert((dn.clone(), on.clone()));
                if dn == on {
                    dn.clone()
                } else {
                    format!("{dn}={on}")
                }
            }
            (Some(dn), None) => dn.clone(),
            (None, _) => loc.to_string(),
        };
        if !self.done.insert((here.clone(), request)) {
            return;
        }
        if !dv.props.is_empty() {
            for (p, ds) in &dv.props {
                match ov.props.get(p) {
                    Some(os) => self.schema(ds, os, &format!("{here}.{p}"), request),
                    None => self.diff(
                        format!("schema {here}.{p}"),
                        "omitted",
                        "Docker has the field".into(),
                    ),
                }
            }
            for p in ov.props.keys().filter(|p| !dv.props.contains_key(*p)) {
                self.diff(
                    format!("schema {here}.{p}"),
                    "added",
                    "Docker has no such field".into(),
                );
            }
            for r in &dv.required {
                if ov.props.contains_key(r) && !ov.required.contains(r) {
                    self.diff(
                        format!("required {here}.{r}"),
                        "optional",
                        "Docker requires the field".into(),
                    );
                }
            }
            if request {
                for r in &ov.required {
                    if dv.props.contains_key(r) && !dv.required.contains(r) {
                        self.diff(
                            format!("required {here}.{r}"),
                            "required",
                            "Docker does not require the field".into(),
                        );
                    }
                }
            }
        }
        if let (Some(di), Some(oi)) = (&dv.items, &ov.items) {
            self.schema(di, oi, &format!("{here}[]"), request);
        }
        if let (Some(da), Some(oa)) = (&dv.additional, &ov.additional) {
            self.schema(da, oa, &format!("{here}.*"), request);
        }
    }

    /// Each Docker definition against our schema of the same name, where not already compared
    /// that way (our EndpointSettings, which the walk from the routes does not meet).
    fn same_named_definitions(&mut self) {
        let names: Vec<String> = self.docker["definitions"]
            .as_object()
            .expect("Docker definitions")
            .keys()
            .cloned()
            .collect();
        for name in names {
            let ours_has = self.ours["components"]["schemas"].get(&name).is_some();
            if ours_has && !self.pairs.contains(&(name.clone(), name.clone())) {
                let d = json!({ "$ref": format!("#/definitions/{name}") });
                let o = json!({ "$ref": format!("#/components/schemas/{name}") });
                self.schema(&d, &o, &name, false);
            }
        }
    }

    fn unreached_definitions(&mut self) {
        let names: Vec<String> = self.docker["definitions"]
            .as_object()
            .expect("Docker definitions")
            .keys()
            .filter(|n| !self.reached.contains(*n))
            .cloned()
            .collect();
        for name in names {
            self.diff(
                format!("definition {name}"),
                "omitted",
                "no schema of ours was compared with it".into(),
            );
        }
    }
}

/// A header by name, case-insensitively.
fn find<'m>(headers: &'m serde_json::Map<String, Value>, name: &str) -> Option<&'m Value> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, h)| h)
}

/// The schema of a request body or response: JSON if there, else the first media type's.
fn media_schema(x: &Value) -> Option<&Value> {
    let content = x.get("content")?.as_object()?;
    content
        .get("application/json")
        .or_else(|| content.values().next())?
        .get("schema")
}

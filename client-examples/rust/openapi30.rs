//! Turns netbridge's OpenAPI 3.1 document into OpenAPI 3.0.3, which progenitor (through the
//! `openapiv3` crate) reads. Used by `build.rs`; also runnable on its own:
//! `cargo run --bin to-openapi30 -- ../../openapi/netbridge.json > netbridge-3.0.json`.
//!
//! What differs between the two, for what the document uses:
//! - `"type": ["T", "null"]` becomes `"type": "T", "nullable": true`;
//! - `oneOf`/`anyOf` of something and `{"type": "null"}` becomes that something, nullable (a
//!   `$ref` is wrapped in `allOf`, since 3.0 ignores a `$ref`'s siblings);
//! - `const` becomes a one-value `enum`, `examples` the first `example`, a numeric
//!   `exclusiveMinimum`/`exclusiveMaximum` the 3.0 boolean form;
//! - JSON Schema keywords 3.0 lacks (`propertyNames`, `$schema`, `contentMediaType`, …) and the
//!   license's SPDX `identifier` are dropped: they only constrain or describe, so a 3.0 client
//!   built without them accepts the same documents.
//!
//! A 3.1 construct with no 3.0 equivalent (`prefixItems`, `if`/`then`/`else`, a type array of
//! two non-null types, …) is an error, not a silent loss.

use serde_json::{Value, json};

const DROPPED: &[&str] = &[
    "propertyNames",
    "$schema",
    "$id",
    "$comment",
    "contentMediaType",
    "contentEncoding",
    "unevaluatedProperties",
    "dependentRequired",
];
const UNSUPPORTED: &[&str] = &[
    "prefixItems",
    "if",
    "then",
    "else",
    "dependentSchemas",
    "unevaluatedItems",
    "$dynamicRef",
    "patternProperties",
];

pub fn convert(doc: &Value) -> Result<Value, String> {
    let mut doc = doc.clone();
    let version = doc["openapi"].as_str().unwrap_or_default();
    if !version.starts_with("3.1") {
        return Err(format!(
            "expected an OpenAPI 3.1 document, found {version:?}"
        ));
    }
    doc["openapi"] = json!("3.0.3");
    let top = doc.as_object_mut().ok_or("document is not an object")?;
    top.remove("jsonSchemaDialect");
    top.remove("webhooks");
    if let Some(license) = top
        .get_mut("info")
        .and_then(|i| i.get_mut("license"))
        .and_then(Value::as_object_mut)
    {
        license.remove("identifier");
    }
    for section in ["paths", "components"] {
        if let Some(v) = top.get_mut(section) {
            walk(v, section)?;
        }
    }
    Ok(doc)
}

/// Walks every value; every object that sits where a schema may is converted as one.
fn walk(v: &mut Value, at: &str) -> Result<(), String> {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                let here = format!("{at}/{k}");
                if k == "schema" || (k == "schemas" && at.ends_with("components")) {
                    if k == "schema" {
                        schema(child, &here)?;
                    } else if let Some(all) = child.as_object_mut() {
                        for (name, s) in all.iter_mut() {
                            schema(s, &format!("{here}/{name}"))?;
                        }
                    }
                } else {
                    walk(child, &here)?;
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                walk(child, &format!("{at}/{i}"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn is_null_schema(v: &Value) -> bool {
    v.get("type") == Some(&json!("null")) && v.as_object().is_some_and(|m| m.len() <= 2)
}

/// Converts one schema object, and then its subschemas.
fn schema(v: &mut Value, at: &str) -> Result<(), String> {
    let Some(map) = v.as_object_mut() else {
        return Ok(()); // `true`/`false` schemas and the like pass as they are
    };
    for k in UNSUPPORTED {
        if map.contains_key(*k) {
            return Err(format!("{at}: `{k}` has no OpenAPI 3.0 equivalent"));
        }
    }
    for k in DROPPED {
        map.remove(*k);
    }

    // type: [T, "null"] -> type: T, nullable: true
    if let Some(Value::Array(types)) = map.get("type").cloned() {
        let mut non_null: Vec<Value> = types.into_iter().filter(|t| t != "null").collect();
        let nullable = map["type"].as_array().map_or(0, Vec::len) != non_null.len();
        match non_null.len() {
            0 => return Err(format!("{at}: a schema of type null alone")),
            1 => {
                map.insert("type".into(), non_null.remove(0));
            }
            _ => return Err(format!("{at}: type {non_null:?} has no OpenAPI 3.0 form")),
        }
        if nullable {
            map.insert("nullable".into(), json!(true));
        }
    }

    // oneOf/anyOf: [X, {type: null}] -> X, nullable
    for key in ["oneOf", "anyOf"] {
        let Some(Value::Array(alts)) = map.get(key) else {
            continue;
        };
        if !alts.iter().any(is_null_schema) {
            continue;
        }
        let mut rest: Vec<Value> = alts
            .iter()
            .filter(|a| !is_null_schema(a))
            .cloned()
            .collect();
        map.remove(key);
        map.insert("nullable".into(), json!(true));
        if rest.len() == 1 {
            let only = rest.remove(0);
            if only.get("$ref").is_some() {
                map.insert("allOf".into(), json!([only]));
            } else if let Value::Object(inner) = only {
                for (k, x) in inner {
                    map.entry(k).or_insert(x);
                }
            }
        } else {
            map.insert(key.into(), Value::Array(rest));
        }
    }

    // a $ref with siblings: 3.0 ignores the siblings, so keep them around an allOf
    if map.contains_key("$ref") && map.len() > 1 {
        let r = map.remove("$ref").unwrap_or_default();
        map.insert("allOf".into(), json!([{ "$ref": r }]));
    }

    if let Some(c) = map.remove("const") {
        map.insert("enum".into(), json!([c]));
    }
    if let Some(Value::Array(mut examples)) = map.remove("examples")
        && !examples.is_empty()
    {
        map.entry("example").or_insert(examples.remove(0));
    }
    for (exclusive, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if let Some(n) = map.get(exclusive).filter(|n| n.is_number()).cloned() {
            map.insert(bound.into(), n);
            map.insert(exclusive.into(), json!(true));
        }
    }

    // subschemas
    for key in ["items", "additionalProperties", "not"] {
        if let Some(s) = map.get_mut(key) {
            schema(s, &format!("{at}/{key}"))?;
        }
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(Value::Array(list)) = map.get_mut(key) {
            for (i, s) in list.iter_mut().enumerate() {
                schema(s, &format!("{at}/{key}/{i}"))?;
            }
        }
    }
    if let Some(Value::Object(props)) = map.get_mut("properties") {
        for (name, s) in props.iter_mut() {
            schema(s, &format!("{at}/properties/{name}"))?;
        }
    }
    Ok(())
}

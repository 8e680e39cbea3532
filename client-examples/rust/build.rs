//! Generates the client at build time: netbridge's OpenAPI 3.1 document -> OpenAPI 3.0
//! (`openapi30.rs`) -> progenitor -> `$OUT_DIR/netbridge_client.rs`, included by `src/main.rs`.

#[path = "openapi30.rs"]
mod openapi30;

use std::path::PathBuf;

fn main() {
    let spec = std::env::var("NETBRIDGE_OPENAPI")
        .unwrap_or_else(|_| "../../openapi/netbridge.json".to_string());
    println!("cargo:rerun-if-changed={spec}");
    println!("cargo:rerun-if-changed=openapi30.rs");
    println!("cargo:rerun-if-env-changed=NETBRIDGE_OPENAPI");
    let text = std::fs::read_to_string(&spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
    let doc31: serde_json::Value = serde_json::from_str(&text).expect("the document is JSON");
    let mut doc30 = openapi30::convert(&doc31).unwrap_or_else(|e| panic!("{spec}: {e}"));
    json_params_as_text(&mut doc30);

    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let pretty = serde_json::to_string_pretty(&doc30).expect("JSON");
    std::fs::write(out.join("netbridge-3.0.json"), pretty).expect("write");

    let api: openapiv3::OpenAPI = serde_json::from_value(doc30)
        .unwrap_or_else(|e| panic!("the 3.0 form is not OpenAPI 3.0: {e}"));
    let mut settings = progenitor::GenerationSettings::default();
    settings.with_interface(progenitor::InterfaceStyle::Builder);
    let mut generator = progenitor::Generator::new(&settings);
    let tokens = generator
        .generate_tokens(&api)
        .unwrap_or_else(|e| panic!("progenitor: {e}"));
    let file: syn::File = syn::parse2(tokens).expect("progenitor's output parses");
    std::fs::write(
        out.join("netbridge_client.rs"),
        prettyplease::unparse(&file),
    )
    .expect("write");
}

/// progenitor reads only parameters with a `schema`, not ones with `content` (netbridge's
/// `filters`, a JSON object in the query string): such a parameter becomes a string, the JSON
/// text the caller serialises, as the document's description says.
fn json_params_as_text(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for item in paths.values_mut() {
        let Some(ops) = item.as_object_mut() else {
            continue;
        };
        for op in ops.values_mut() {
            let Some(params) = op.get_mut("parameters").and_then(|p| p.as_array_mut()) else {
                continue;
            };
            for p in params.iter_mut().filter_map(|p| p.as_object_mut()) {
                if p.remove("content").is_some() {
                    p.insert("schema".into(), serde_json::json!({"type": "string"}));
                }
            }
        }
    }
}

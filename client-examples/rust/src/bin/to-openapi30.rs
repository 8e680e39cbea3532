//! Prints the OpenAPI 3.0 form of a 3.1 document (the one `build.rs` hands progenitor):
//! `cargo run -q --bin to-openapi30 -- ../../openapi/netbridge.json`.

#[path = "../../openapi30.rs"]
mod openapi30;

fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../../openapi/netbridge.json".into());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    match openapi30::convert(&doc) {
        Ok(v) => println!("{}", serde_json::to_string_pretty(&v).expect("JSON")),
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    }
}

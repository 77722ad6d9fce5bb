//! Prints the OpenAPI document: `cargo run -p writ-api --example openapi > openapi.json`.

fn main() {
    println!(
        "{}",
        serde_json::to_string_pretty(&writ_api::openapi()).unwrap_or_default()
    );
}

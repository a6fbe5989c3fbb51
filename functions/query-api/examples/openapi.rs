//! Prints the OpenAPI description; `functions/query-api/openapi.json` is its output:
//! `cargo run -q -p query-api --example openapi > functions/query-api/openapi.json`

fn main() {
    let document = query_api::openapi::document();
    println!("{}", serde_json::to_string_pretty(&document).unwrap_or_default());
}

//! envgate's own formats have JSON Schemas under schemas/, generated from
//! the code. Run with ENVGATE_BLESS=1 to rewrite them after a change.

#[test]
fn checked_in_schemas_match_the_code() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    for (name, schema) in envgate::schemas::all() {
        let text = format!("{}\n", serde_json::to_string_pretty(&schema).unwrap());
        let path = dir.join(name);
        if std::env::var_os("ENVGATE_BLESS").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == text,
            "schemas/{name} is out of date: run `ENVGATE_BLESS=1 cargo test --test schemas`"
        );
        // and it is itself a valid JSON Schema
        assert!(jsonschema::meta::is_valid(&schema), "{name} is not a valid JSON Schema");
    }
}

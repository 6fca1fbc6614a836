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

#[test]
fn the_worked_example_matches_its_format_schemas() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let check = |schema: serde_json::Value, file: &str| {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let doc: toml::Value = toml::from_str(&text).unwrap();
        let doc = serde_json::to_value(doc).unwrap();
        let v = jsonschema::validator_for(&schema).unwrap();
        let errors: Vec<String> = v.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{file}: {errors:?}");
    };
    check(envgate::schemas::manifest(), "envgate.toml");
    check(envgate::schemas::checks(), "checks/rules.toml");
    check(envgate::schemas::checks(), "checks/probes.toml");
}

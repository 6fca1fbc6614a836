//! `envgate schema infer`: adopting envgate on a project that has no schema.

use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn envgate(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_envgate"))
        .current_dir(dir)
        .env_clear()
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn the_inferred_schema_validates_the_bundled_example_it_came_from() {
    let dir = TempDir::new().unwrap();
    assert_eq!(envgate(dir.path(), &["init"]).code, 0);
    // The example without its schema: what a project adopting envgate has.
    let manifest = std::fs::read_to_string(dir.path().join("envgate.toml")).unwrap();
    let without: String = manifest
        .lines()
        .filter(|l| !l.starts_with("schema = "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(without, manifest);
    std::fs::write(dir.path().join("envgate.toml"), &without).unwrap();
    std::fs::remove_file(dir.path().join("schemas/orders-api.schema.json")).unwrap();

    let r = envgate(dir.path(), &["schema", "infer"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let schema: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    let http = &schema["properties"]["http"]["properties"];
    assert_eq!(http["request_timeout"]["x-unit"], "duration");
    assert_eq!(http["max_body"]["x-unit"], "bytes");
    let db = &schema["properties"]["database"];
    assert_eq!(db["properties"]["statement_timeout_ms"]["x-unit"], "ms");
    assert_eq!(
        db["properties"]["url"]["writeOnly"], true,
        "the URL holds a ${{secret:...}}"
    );
    assert!(db["required"].as_array().unwrap().contains(&"pool_size".into()));
    assert_eq!(
        schema["properties"]["service"]["properties"]["log_level"]["enum"],
        serde_json::json!(["debug", "info"])
    );
    assert!(!r.stdout.contains("localdev"), "a secret's value was written out");

    write(dir.path(), "schemas/inferred.schema.json", &r.stdout);
    std::fs::write(
        dir.path().join("envgate.toml"),
        without.replacen(
            "[project]\n",
            "[project]\nschema = \"schemas/inferred.schema.json\"\n",
            1,
        ),
    )
    .unwrap();
    let v = envgate(dir.path(), &["validate", "--format", "json"]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    let report: serde_json::Value = serde_json::from_str(&v.stdout).unwrap();
    for env in report["environments"].as_array().unwrap() {
        assert_eq!(env["summary"]["fail"], 0, "{env}");
    }
}

#[test]
fn keys_missing_somewhere_are_optional_and_secret_names_are_write_only() {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        "envgate.toml",
        "[project]\nname = \"billing\"\nenvironments = [\"dev\", \"prod\"]\n",
    );
    write(
        dir.path(),
        "environments/base.toml",
        "[api]\ntoken = \"t0\"\nretry_after_seconds = 5\nratio = 1\nhosts = [\"a\", \"b\"]\n",
    );
    write(
        dir.path(),
        "environments/dev.toml",
        "[api]\nratio = 0.5\ndebug = true\n",
    );
    write(dir.path(), "environments/prod.toml", "");
    let r = envgate(dir.path(), &["schema", "infer"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let api = &s["properties"]["api"];
    assert_eq!(api["properties"]["token"]["writeOnly"], true);
    assert!(!r.stdout.contains("t0"), "a secret's value was written out");
    assert_eq!(api["properties"]["retry_after_seconds"]["x-unit"], "s");
    assert_eq!(api["properties"]["ratio"]["type"], "number");
    assert_eq!(api["properties"]["hosts"]["items"]["type"], "string");
    assert_eq!(api["properties"]["debug"]["type"], "boolean");
    let required: Vec<&str> = api["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(!required.contains(&"debug"), "only dev sets it: {required:?}");
    assert!(required.contains(&"token"));

    let only_prod = envgate(dir.path(), &["schema", "infer", "--env", "prod"]);
    assert_eq!(only_prod.code, 0);
    assert!(!only_prod.stdout.contains("\"debug\""), "{}", only_prod.stdout);
    let unknown = envgate(dir.path(), &["schema", "infer", "--env", "prd"]);
    assert_eq!(unknown.code, 2);
    assert!(unknown.stderr.contains("prod"), "{}", unknown.stderr);
}

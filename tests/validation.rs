//! Validation on any schema, through the CLI: JSON Schema's own semantics
//! in every draft, strictness on top of it, YAML read as YAML 1.2, errors
//! located inside arrays, schemas that refer to others offline, and schemas
//! or files that would otherwise crash or hang envgate.

use std::path::Path;

use assert_cmd::Command;
use serde_json::{Value as Json, json};
use tempfile::TempDir;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A project whose configuration is one YAML (or other) file, `config.yaml`
/// by default, read by a `[[source]]` named `ci`, against `schema.json`.
fn project(schema: &str, manifest_extra: &str, source_extra: &str, files: &[(&str, &str)]) -> TempDir {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        "envgate.toml",
        &format!(
            "[project]\nname = \"svc\"\nschema = \"schema.json\"\nenvironments = [\"prod\"]\n{manifest_extra}\n[[source]]\nname = \"ci\"\nkind = \"file\"\npath = \"config.yaml\"\n{source_extra}\n"
        ),
    );
    write(dir.path(), "schema.json", schema);
    write(dir.path(), "environments/prod.toml", "");
    for (rel, text) in files {
        write(dir.path(), rel, text);
    }
    dir
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn envgate(dir: &Path, args: &[&str]) -> Run {
    let out = Command::cargo_bin("envgate")
        .unwrap()
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

/// The failing results of `validate --format json`.
fn failures(dir: &Path) -> Vec<Json> {
    let r = envgate(dir, &["validate", "--format", "json"]);
    let report: Json = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", r.stdout, r.stderr));
    report["environments"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "fail")
        .cloned()
        .collect()
}

fn at(f: &Json) -> (String, u64, u64) {
    (
        f["location"]["file"].as_str().unwrap_or_default().to_string(),
        f["location"]["line"].as_u64().unwrap_or(0),
        f["location"]["column"].as_u64().unwrap_or(0),
    )
}

const STEPS: &str = r#"{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {
    "steps": {
      "type": "array",
      "items": {
        "type": "object",
        "properties": {"run": {"type": "string"}, "name": {"type": "string"}, "timeout": {"type": "integer"}},
        "additionalProperties": false
      }
    }
  }
}"#;

// ---- JSON Schema semantics --------------------------------------------------

#[test]
fn an_unknown_key_inside_an_array_fails_at_its_line() {
    let dir = project(
        STEPS,
        "",
        "",
        &[("config.yaml", "steps:\n  - run: make\n  - run: test\n    bogus: 1\n")],
    );
    let f = failures(dir.path());
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["message"], "unknown key `steps[1].bogus`");
    assert_eq!(at(&f[0]), ("config.yaml".into(), 4, 5));
}

#[test]
fn a_wrong_type_inside_an_array_points_at_the_item_value() {
    let dir = project(
        STEPS,
        "",
        "",
        &[("config.yaml", "steps:\n  - run: make\n    timeout: soon\n")],
    );
    let f = failures(dir.path());
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(
        f[0]["message"],
        "`steps[0].timeout`: \"soon\" is not of type \"integer\""
    );
    assert_eq!(at(&f[0]), ("config.yaml".into(), 3, 14));
}

#[test]
fn keys_declared_in_any_of_all_of_or_beside_a_ref_are_not_unknown() {
    let schema = r##"{
      "type": "object",
      "properties": {
        "cache": {
          "anyOf": [
            {"properties": {"url": {"type": "string"}}, "required": ["url"]},
            {"properties": {"host": {"type": "string"}, "port": {"type": "integer"}}, "required": ["host"]}
          ]
        },
        "db": {"allOf": [{"$ref": "#/$defs/conn"}, {"properties": {"pool": {"type": "integer"}}}]},
        "api": {"$ref": "#/$defs/conn", "properties": {"token": {"type": "string"}}},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}}
      },
      "$defs": {"conn": {"type": "object", "properties": {"dsn": {"type": "string"}}}}
    }"##;
    let dir = project(
        schema,
        "",
        "",
        &[(
            "config.yaml",
            "cache: {host: redis, port: 6379}\ndb: {dsn: postgres://db, pool: 5}\napi: {dsn: https://api, token: t}\nlabels: {team: core}\n",
        )],
    );
    assert_eq!(failures(dir.path()), Vec::<Json>::new());
    // a real typo is still caught, with a suggestion from every branch
    write(dir.path(), "config.yaml", "cache: {hots: redis}\n");
    let f = failures(dir.path());
    let unknown: Vec<_> = f
        .iter()
        .filter(|f| f["message"] == "unknown key `cache.hots`")
        .collect();
    assert_eq!(unknown.len(), 1, "{f:?}");
}

#[test]
fn strict_false_leaves_the_verdict_to_the_schema() {
    let schema = r#"{"type": "object", "properties": {"a": {"type": "integer"}}}"#;
    let dir = project(schema, "strict = false", "", &[("config.yaml", "a: 1\nextra: 2\n")]);
    assert_eq!(failures(dir.path()), Vec::<Json>::new());
    let dir = project(schema, "", "", &[("config.yaml", "a: 1\nextra: 2\n")]);
    assert_eq!(failures(dir.path())[0]["message"], "unknown key `extra`");
}

#[test]
fn draft_07_tuple_items_and_ref_siblings_follow_draft_07() {
    let schema = r##"{
      "$schema": "http://json-schema.org/draft-07/schema#",
      "type": "object",
      "definitions": {"name": {"type": "string"}},
      "properties": {
        "pair": {"type": "array", "items": [{"type": "string"}, {"type": "integer"}], "additionalItems": false},
        "name": {"$ref": "#/definitions/name", "maxLength": 1}
      }
    }"##;
    let dir = project(
        schema,
        "",
        "",
        &[("config.yaml", "pair: [a, 1]\nname: longer than one\n")],
    );
    assert_eq!(failures(dir.path()), Vec::<Json>::new());
    write(dir.path(), "config.yaml", "pair: [a, b]\n");
    let f = failures(dir.path());
    assert_eq!(f[0]["message"], "`pair[1]`: \"b\" is not of type \"integer\"");
    assert_eq!(at(&f[0]), ("config.yaml".into(), 1, 11));
}

#[test]
fn draft_04_boolean_exclusive_maximum_is_understood() {
    let schema = r#"{"$schema": "http://json-schema.org/draft-04/schema#", "type": "object",
        "properties": {"replicas": {"type": "integer", "maximum": 10, "exclusiveMaximum": true}}}"#;
    let dir = project(schema, "", "", &[("config.yaml", "replicas: 9\n")]);
    assert_eq!(failures(dir.path()), Vec::<Json>::new());
    write(dir.path(), "config.yaml", "replicas: 10\n");
    let f = failures(dir.path());
    assert_eq!(
        f[0]["message"],
        "`replicas`: 10 is greater than or equal to the maximum of 10"
    );
}

#[test]
fn formats_annotate_makes_format_a_note() {
    let schema = r#"{"type": "object", "properties": {"at": {"type": "string", "format": "date-time"}}}"#;
    let dir = project(schema, "", "", &[("config.yaml", "at: yesterday\n")]);
    assert_eq!(
        failures(dir.path())[0]["message"],
        "`at`: \"yesterday\" is not a \"date-time\""
    );
    let dir = project(
        schema,
        "formats = \"annotate\"",
        "",
        &[("config.yaml", "at: yesterday\n")],
    );
    assert_eq!(failures(dir.path()), Vec::<Json>::new());
}

// ---- schemas that refer to others, offline ----------------------------------

const REMOTE: &str = r#"{
  "type": "object",
  "properties": {
    "name": {"type": "string"},
    "pod": {"$ref": "https://schemas.example.com/k8s.json#/definitions/pod"}
  }
}"#;

#[test]
fn a_remote_ref_fails_only_the_values_that_reach_it() {
    let dir = project(REMOTE, "", "", &[("config.yaml", "name: web\n")]);
    assert_eq!(failures(dir.path()), Vec::<Json>::new());
    write(dir.path(), "config.yaml", "name: web\npod: {image: nginx}\n");
    let f = failures(dir.path());
    assert_eq!(f.len(), 1, "{f:?}");
    let msg = f[0]["message"].as_str().unwrap();
    assert!(
        msg.contains("https://schemas.example.com/k8s.json#/definitions/pod"),
        "{msg}"
    );
    assert!(f[0]["help"].as_str().unwrap().contains("schema_dirs"), "{f:?}");
    assert_eq!(at(&f[0]), ("config.yaml".into(), 2, 1));
}

#[test]
fn schema_dirs_answer_refs_by_id_without_the_network() {
    let k8s = r#"{"$schema": "http://json-schema.org/draft-07/schema#", "$id": "https://schemas.example.com/k8s.json",
        "definitions": {"pod": {"type": "object", "required": ["image"],
            "properties": {"image": {"type": "string"}, "replicas": {"type": "integer"}}}}}"#;
    let dir = project(
        REMOTE,
        "schema_dirs = [\"vendor\"]",
        "",
        &[
            ("vendor/k8s.json", k8s),
            ("config.yaml", "pod: {image: nginx, replicas: 2}\n"),
        ],
    );
    assert_eq!(failures(dir.path()), Vec::<Json>::new());
    write(dir.path(), "config.yaml", "pod:\n  image: nginx\n  replicas: many\n");
    let f = failures(dir.path());
    assert_eq!(f[0]["message"], "`pod.replicas`: \"many\" is not of type \"integer\"");
    assert_eq!(at(&f[0]), ("config.yaml".into(), 3, 13));
    // by file name when the copy has no `$id`
    write(
        dir.path(),
        "vendor/k8s.json",
        &k8s.replace("\"$id\": \"https://schemas.example.com/k8s.json\",", ""),
    );
    assert_eq!(failures(dir.path()).len(), 1);
}

#[test]
fn a_relative_ref_reads_the_file_beside_the_schema() {
    let dir = project(
        r#"{"type": "object", "properties": {"db": {"$ref": "common/db.json"}}}"#,
        "",
        "",
        &[
            (
                "common/db.json",
                r#"{"type": "object", "properties": {"pool": {"type": "integer"}}}"#,
            ),
            ("config.yaml", "db: {pool: 5, extra: 1}\n"),
        ],
    );
    let f = failures(dir.path());
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["message"], "unknown key `db.extra`");
}

// ---- schemas that would hang or crash a validator ------------------------------

#[test]
fn a_schema_whose_all_of_refers_to_itself_is_exit_2_at_the_ref() {
    let dir = project(
        "{\n  \"type\": \"object\",\n  \"allOf\": [{\"$ref\": \"#\"}]\n}\n",
        "",
        "",
        &[("config.yaml", "a: 1\n")],
    );
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    insta::assert_snapshot!(r.stderr);
}

#[test]
fn a_cyclic_ref_with_no_constraints_is_exit_2() {
    let schema = r##"{"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}"##;
    let dir = project(schema, "", "", &[("config.yaml", "a: 1\n")]);
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("envgate::schema::cycle"), "{}", r.stderr);
    assert!(r.stderr.contains("would never end"), "{}", r.stderr);
}

#[test]
fn a_regex_error_in_the_schema_is_exit_2_at_the_pattern() {
    let schema =
        "{\n  \"type\": \"object\",\n  \"properties\": {\"a\": {\"type\": \"string\", \"pattern\": \"([a-z]\"}}\n}\n";
    let dir = project(schema, "", "", &[("config.yaml", "a: x\n")]);
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(!r.stderr.contains("$ref"), "{}", r.stderr);
    insta::assert_snapshot!(r.stderr);
}

#[test]
fn an_unknown_meta_schema_is_exit_2_at_dollar_schema() {
    let dir = project(
        "{\n  \"$schema\": \"https://example.com/my-meta\",\n  \"type\": \"object\"\n}\n",
        "",
        "",
        &[("config.yaml", "a: 1\n")],
    );
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unknown meta-schema"), "{}", r.stderr);
    assert!(r.stderr.contains("schema.json:2:14"), "{}", r.stderr);
}

// ---- YAML, TOML and JSON as they are written ------------------------------------

#[test]
fn a_4_kb_yaml_file_of_nested_sequences_is_exit_2_at_its_line() {
    let deep = format!("a:\n{}x\n", "- ".repeat(2100));
    assert!(deep.len() > 4096);
    let dir = project(r#"{"type": "object"}"#, "", "", &[("config.yaml", &deep)]);
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("nested more than 128 levels deep"), "{}", r.stderr);
    assert!(r.stderr.contains("config.yaml:2:"), "{}", r.stderr);
}

#[test]
fn yaml_anchors_aliases_and_merge_keys_are_read() {
    let schema = r#"{"type": "object", "properties": {"services": {"type": "object", "additionalProperties": {
        "type": "object", "properties": {"image": {"type": "string"}, "restart": {"enum": ["always", "no"]}, "env": {"type": "object"}}}}},
        "patternProperties": {"^x-": {}}}"#;
    let yaml = "x-common: &common\n  restart: always\n  env: {TZ: UTC}\nservices:\n  web:\n    <<: *common\n    image: nginx\n  worker:\n    <<: *common\n    restart: sometimes\n";
    let dir = project(schema, "", "", &[("config.yaml", yaml)]);
    let r = envgate(dir.path(), &["render", "--env", "prod", "--format", "json"]);
    let v: Json = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stderr));
    assert_eq!(
        v["services"]["web"],
        json!({"restart": "always", "env": {"TZ": "UTC"}, "image": "nginx"})
    );
    let f = failures(dir.path());
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(at(&f[0]), ("config.yaml".into(), 10, 14));
}

#[test]
fn yaml_1_2_values_have_their_types() {
    let schema = r#"{"type": "object", "properties": {"mode": {"type": "string"}, "mask": {"type": "integer"}, "label": {"type": "string"}}}"#;
    let dir = project(
        schema,
        "",
        "",
        &[("config.yaml", "mode: 0o755\nmask: 0x1F\nlabel: !!str 123\n")],
    );
    let f = failures(dir.path());
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["message"], "`mode`: 493 is not of type \"string\"");
}

#[test]
fn a_yaml_file_with_two_documents_is_exit_2_at_the_second() {
    let dir = project(r#"{"type": "object"}"#, "", "", &[("config.yaml", "a: 1\n---\nb: 2\n")]);
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("one document per file"), "{}", r.stderr);
    assert!(r.stderr.contains("config.yaml:2:1"), "{}", r.stderr);
}

#[test]
fn toml_minus_infinity_is_exit_2_not_a_pass() {
    let dir = project(
        r#"{"type": "object", "properties": {"limit": {"type": "number", "minimum": 0}}}"#,
        "",
        "",
        &[("config.yaml", "{}\n"), ("environments/prod.toml", "limit = -inf\n")],
    );
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("`-inf` is not a finite number"), "{}", r.stderr);
    assert!(r.stderr.contains("environments/prod.toml:1:9"), "{}", r.stderr);
}

// ---- other tools' `${...}` --------------------------------------------------------

const WORKFLOW: &str = "steps:\n  - run: echo hi\n    name: build ${{ inputs.version }}\nname: ${{ github.ref }}\n";

#[test]
fn interpolate_false_keeps_other_tools_expressions_as_text() {
    let schema = r#"{"type": "object", "properties": {"name": {"type": "string"}, "steps": {"type": "array"}}}"#;
    let dir = project(schema, "", "interpolate = false", &[("config.yaml", WORKFLOW)]);
    let r = envgate(dir.path(), &["render", "--env", "prod", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Json = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["name"], "${{ github.ref }}");
    assert_eq!(v["steps"][0]["name"], "build ${{ inputs.version }}");
    assert_eq!(failures(dir.path()), Vec::<Json>::new());
}

#[test]
fn other_tools_expressions_in_an_interpolating_source_are_named_at_their_line() {
    let schema = r#"{"type": "object", "properties": {"name": {"type": "string"}, "home": {"type": "string"}}}"#;
    let dir = project(
        schema,
        "",
        "",
        &[("config.yaml", "name: ${{ github.ref }}\nhome: ${HOME:-/root}\n")],
    );
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    insta::assert_snapshot!(r.stdout);
}

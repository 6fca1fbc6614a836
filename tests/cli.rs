//! CLI tests: each runs the real binary in its own temp dir with a cleared
//! environment, and snapshots what the user sees.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tempfile::TempDir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[path = "cli/hostile.rs"]
mod hostile;
#[path = "cli/leaks.rs"]
mod leaks;
#[path = "cli/roundtrip.rs"]
mod roundtrip;
#[path = "cli/secret_cmd.rs"]
mod secret_cmd;

/// The worked example at the repository root, copied into a temp dir.
fn example() -> TempDir {
    let dir = TempDir::new().unwrap();
    for rel in [
        "envgate.toml",
        "environments/base.toml",
        "environments/local.toml",
        "environments/staging.toml",
        "environments/prod.toml",
        "schemas/orders-api.schema.json",
        "checks/rules.toml",
    ] {
        write(
            dir.path(),
            rel,
            &std::fs::read_to_string(Path::new(ROOT).join(rel)).unwrap(),
        );
    }
    dir
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A minimal project: one schema, base + the given overlays.
fn project(files: &[(&str, &str)]) -> TempDir {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        "envgate.toml",
        "[project]\nname = \"svc\"\nschema = \"schema.json\"\n",
    );
    write(
        dir.path(),
        "schema.json",
        r#"{
  "type": "object",
  "required": ["http", "database"],
  "properties": {
    "http": {"type": "object", "required": ["timeout"], "properties": {
      "timeout": {"type": "string", "x-unit": "duration", "x-minimum": "100ms", "x-maximum": "60s"},
      "port": {"type": "integer"}
    }},
    "database": {"type": "object", "required": ["url", "pool_size"], "properties": {
      "url": {"type": "string"},
      "password": {"type": "string", "writeOnly": true},
      "pool_size": {"type": "integer", "minimum": 1}
    }}
  }
}"#,
    );
    write(
        dir.path(),
        "environments/base.toml",
        "[http]\ntimeout = \"5s\"\nport = 8080\n\n[database]\nurl = \"postgres://db.internal/app\"\npool_size = 5\n",
    );
    for (rel, text) in files {
        write(dir.path(), rel, text);
    }
    dir
}

/// The minimal project's manifest with one `file` source named `console`.
fn with_file_source(dir: &Path, path: &str) {
    write(
        dir,
        "envgate.toml",
        &format!(
            "[project]\nname = \"svc\"\nschema = \"schema.json\"\n\n[[source]]\nname = \"console\"\nkind = \"file\"\npath = \"{path}\"\n"
        ),
    );
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn envgate(dir: &Path, args: &[&str]) -> Run {
    envgate_with(dir, args, &[])
}

fn envgate_with(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let out = Command::cargo_bin("envgate")
        .unwrap()
        .current_dir(dir)
        .env_clear()
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .envs(vars.iter().copied())
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn stable(s: &str) -> String {
    let re = regex::Regex::new(r#""duration_ms": \d+"#).unwrap();
    re.replace_all(s, "\"duration_ms\": \"[ms]\"")
        .replace(env!("CARGO_PKG_VERSION"), "[version]")
}

fn validate_report(json: &str) -> serde_json::Value {
    let report: serde_json::Value = serde_json::from_str(json).expect("report is JSON");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(Path::new(ROOT).join("schemas/report.schema.json")).unwrap())
            .unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = v.iter_errors(&report).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "report does not match schemas/report.schema.json: {errors:?}"
    );
    report
}

// ---- the worked example -------------------------------------------------

#[test]
fn validate_passes_on_the_worked_example_with_secret_warnings() {
    let dir = example();
    let r = envgate(dir.path(), &["validate", "--all-envs"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    insta::assert_snapshot!(r.stdout);
}

#[test]
fn check_offline_json_report_matches_the_schema_and_has_locations() {
    let dir = example();
    let r = envgate(dir.path(), &["check", "--env", "prod", "--offline", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let report = validate_report(&r.stdout);
    let results = report["environments"][0]["results"].as_array().unwrap();
    for res in results
        .iter()
        .filter(|r| r["status"] == "fail" || r["status"] == "warn")
    {
        assert!(res["location"]["file"].is_string(), "finding without a location: {res}");
    }
    insta::assert_snapshot!(stable(&r.stdout));
}

#[test]
fn offline_unset_secrets_are_one_line_per_environment_not_a_warning() {
    let dir = example();
    // Pull-request CI has no production secrets: --fail-on warn stays usable.
    let r = envgate(dir.path(), &["validate", "--env", "prod", "--fail-on", "warn"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let info: Vec<&str> = r.stdout.lines().filter(|l| l.contains("ℹ")).collect();
    assert_eq!(
        info,
        [
            "  ℹ [prod] offline: 2 secrets not set, not checked: ORDERS_DB_PASSWORD (`database.url`, environments/prod.toml:8:7), ORDERS_AMQP_PASSWORD (`queue.url`, environments/prod.toml:16:7)"
        ]
    );
    assert!(!r.stdout.contains("⚠"), "{}", r.stdout);
    // --require-secrets makes each one an error at its line.
    let r = envgate(dir.path(), &["validate", "--env", "prod", "--require-secrets"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.contains("secret ORDERS_DB_PASSWORD is not set"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("environments/prod.toml:8:7"), "{}", r.stdout);
}

#[test]
fn check_online_requires_the_secrets_offline_validation_only_warns_about() {
    let dir = example();
    let r = envgate(dir.path(), &["check", "--env", "prod", "--format", "json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let report = validate_report(&r.stdout);
    let msgs: Vec<&str> = report["environments"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "fail")
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("environment variable ORDERS_DB_PASSWORD is not set")),
        "{msgs:?}"
    );
}

#[test]
fn check_needs_an_environment_choice() {
    let dir = example();
    let r = envgate(dir.path(), &["check"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--env NAME or --all-envs"), "{}", r.stderr);
}

#[test]
fn report_flag_writes_several_formats_from_one_run() {
    let dir = example();
    let out = dir.path().join("out/report.json");
    let r = envgate(
        dir.path(),
        &["validate", "--report", &format!("json={}", out.display())],
    );
    assert_eq!(r.code, 0);
    validate_report(&std::fs::read_to_string(out).unwrap());
    assert!(r.stdout.contains("3 environments ready"));
}

#[test]
fn render_shows_the_final_configuration_with_secrets_redacted() {
    let dir = example();
    for format in ["toml", "json", "yaml", "env"] {
        let r = envgate(dir.path(), &["render", "--env", "local", "--format", format]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(!r.stdout.contains("localdev"), "secret default leaked in {format}");
        insta::assert_snapshot!(format!("render_{format}"), r.stdout);
    }
}

#[test]
fn render_show_origin_names_the_file_line_and_column_of_each_leaf() {
    let dir = example();
    let r = envgate(dir.path(), &["render", "--env", "prod", "--show-origin"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("prod     environments/prod.toml:9:13      database.pool_size = 40"),
        "{}",
        r.stdout
    );
    insta::assert_snapshot!(r.stdout);
    let r = envgate(
        dir.path(),
        &["render", "--env", "prod", "--show-origin", "--format", "json"],
    );
    insta::assert_snapshot!("render_show_origin_json", r.stdout);
}

#[test]
fn explain_lists_every_layer_in_precedence_order_and_the_winner() {
    let dir = example();
    let r = envgate_with(
        dir.path(),
        &["explain", "--env", "prod", "database.pool_size"],
        &[("ORDERS__DATABASE__POOL_SIZE", "60")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!(r.stdout);
}

#[test]
fn explain_suggests_a_near_miss_key() {
    let dir = example();
    let r = envgate(dir.path(), &["explain", "--env", "prod", "database.pool_szie"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("did you mean `database.pool_size`?"), "{}", r.stderr);
}

#[test]
fn diff_shows_changed_keys_with_both_origins_and_never_prints_secrets() {
    let dir = example();
    let r = envgate_with(
        dir.path(),
        &["diff", "staging", "prod"],
        &[("ORDERS_DB_PASSWORD", "CANARY-hunter2")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains("CANARY"));
    insta::assert_snapshot!(r.stdout);
    let r = envgate_with(
        dir.path(),
        &["diff", "local", "prod", "--format", "json"],
        &[("ORDERS_DB_PASSWORD", "CANARY-hunter2")],
    );
    assert!(!r.stdout.contains("CANARY"));
    insta::assert_snapshot!("diff_json", r.stdout);
}

#[test]
fn list_shows_environments_layers_and_units() {
    let dir = example();
    let r = envgate(dir.path(), &["list"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!(r.stdout);
}

#[test]
fn init_scaffolds_a_project_that_validates() {
    let dir = TempDir::new().unwrap();
    let r = envgate(dir.path(), &["init"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!(r.stdout);
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let list = envgate(dir.path(), &["list"]);
    assert!(list.stdout.contains("retry-budget-within-timeout"), "{}", list.stdout);
    assert!(list.stdout.contains("payments-api"), "{}", list.stdout);
    let again = envgate(dir.path(), &["init"]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("refusing to"), "{}", again.stderr);
}

// ---- The incidents envgate exists for (examples/broken) -------------------

fn broken() -> PathBuf {
    Path::new(ROOT).join("examples/broken")
}

#[test]
fn incident_1_bare_number_timeouts_fail_with_both_readings() {
    let r = envgate(&broken(), &["validate", "--env", "staging"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout
            .contains("bare number 30 for a duration: write \"30s\" or \"30ms\"")
    );
    assert!(r.stdout.contains("if 30 was meant as seconds (30s), write 30000"));
    insta::assert_snapshot!(r.stdout);
}

#[test]
fn incident_3_config_errors_are_shown_at_their_lines_before_merge() {
    let r = envgate(&broken(), &["validate", "--env", "prod", "--format", "json"]);
    assert_eq!(r.code, 1);
    let report = validate_report(&r.stdout);
    insta::assert_snapshot!(stable(&r.stdout));
    let fails: Vec<_> = report["environments"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "fail")
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_string(),
                r["location"]["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        fails,
        [
            ("database.pool_szie".to_string(), 9),
            ("http.port".to_string(), 5),
            ("storage.bucket".to_string(), 17)
        ]
    );
}

#[test]
fn broken_example_fails_every_environment_in_one_run() {
    let r = envgate(&broken(), &["validate"]);
    assert_eq!(r.code, 1);
    insta::assert_snapshot!(r.stdout);
}

// ---- bad input ----------------------------------------------------------

#[test]
fn malformed_toml_is_exit_2_with_line_and_column() {
    let dir = project(&[("environments/prod.toml", "[http]\ntimeout = \"5s\nport = 1\n")]);
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!(r.stderr);
}

#[test]
fn malformed_json_source_is_exit_2_with_line_and_column() {
    let dir = project(&[
        ("environments/prod.toml", ""),
        ("console/prod.json", "{\n  \"http\": {\"port\": 80,}\n}\n"),
    ]);
    with_file_source(dir.path(), "console/{env}.json");
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!(r.stderr);
}

#[test]
fn malformed_yaml_source_is_exit_2_with_line_and_column() {
    let dir = project(&[
        ("environments/prod.toml", ""),
        ("console/prod.yaml", "http:\n  port: 80\n   timeout: 5s\n"),
    ]);
    with_file_source(dir.path(), "console/{env}.yaml");
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!(r.stderr);
}

#[test]
fn yaml_source_overrides_with_its_own_line_numbers() {
    let dir = project(&[
        ("environments/prod.toml", ""),
        ("console/prod.yaml", "database:\n  pool_size: 0\n"),
    ]);
    with_file_source(dir.path(), "console/{env}.yaml");
    let r = envgate(dir.path(), &["validate", "--format", "json"]);
    assert_eq!(r.code, 1);
    let report = validate_report(&r.stdout);
    let fail = report["environments"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == "fail")
        .unwrap()
        .clone();
    assert_eq!(
        fail["location"],
        serde_json::json!({"file": "console/prod.yaml", "line": 2, "column": 14})
    );
}

#[test]
fn a_file_that_is_not_utf8_is_exit_2() {
    let dir = project(&[]);
    std::fs::write(
        dir.path().join("environments/prod.toml"),
        b"[http]\nport = \"\xff\xfe\"\n",
    )
    .unwrap();
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!(r.stderr);
}

#[test]
fn an_empty_overlay_inherits_base_and_an_empty_schema_is_exit_2() {
    let dir = project(&[("environments/prod.toml", "")]);
    assert_eq!(envgate(dir.path(), &["validate"]).code, 0);
    write(dir.path(), "schema.json", "");
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("schema schema.json is empty"), "{}", r.stderr);
}

#[test]
fn a_missing_required_source_file_is_exit_2() {
    let dir = project(&[("environments/prod.toml", "")]);
    with_file_source(dir.path(), "console/{env}.yaml");
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("source `console`: console/prod.yaml does not exist"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_missing_manifest_is_exit_2_and_suggests_init() {
    let dir = TempDir::new().unwrap();
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("envgate init"), "{}", r.stderr);
}

#[test]
fn an_unknown_manifest_key_is_exit_2_at_its_line() {
    let dir = project(&[("environments/prod.toml", "")]);
    write(
        dir.path(),
        "envgate.toml",
        "[project]\nname = \"svc\"\nshema = \"schema.json\"\n",
    );
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!(r.stderr);
}

#[test]
fn a_file_source_without_a_path_is_exit_2_at_its_table() {
    let dir = project(&[("environments/prod.toml", "")]);
    write(
        dir.path(),
        "envgate.toml",
        "[project]\nname = \"svc\"\n\n[[source]]\nname = \"console\"\nkind = \"file\"\nurl = \"console.yaml\"\n",
    );
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!(r.stderr);
}

#[test]
fn an_extends_cycle_is_exit_2_naming_the_chain() {
    let dir = project(&[
        ("environments/staging.toml", "extends = \"prod\"\n"),
        ("environments/prod.toml", "extends = \"staging\"\n"),
    ]);
    let r = envgate(dir.path(), &["validate", "--env", "prod"]);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!(r.stderr);
}

#[test]
fn an_interpolation_cycle_fails_naming_the_chain_and_line() {
    let dir = project(&[(
        "environments/prod.toml",
        "[database]\nurl = \"postgres://${http.host}/app\"\n\n[http]\nhost = \"${database.url}\"\n",
    )]);
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout
            .contains("interpolation cycle: http.host → database.url → http.host"),
        "{}",
        r.stdout
    );
    insta::assert_snapshot!(r.stdout);
}

#[test]
fn a_dangling_reference_suggests_the_key_meant() {
    let dir = project(&[(
        "environments/prod.toml",
        "[database]\nurl = \"postgres://${http.prot}/app\"\n",
    )]);
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("reference to missing key `http.prot`"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("did you mean `${http.port}`?"), "{}", r.stdout);
}

#[test]
fn interpolation_takes_the_type_of_a_whole_reference() {
    let dir = project(&[(
        "environments/prod.toml",
        "[database]\npool_size = \"${env:POOL:-7}\"\nurl = \"postgres://db:${http.port}/app\"\n",
    )]);
    let r = envgate(dir.path(), &["render", "--env", "prod", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["database"]["pool_size"], 7);
    assert_eq!(v["database"]["url"], "postgres://db:8080/app");
}

#[test]
fn an_unknown_environment_is_exit_2_with_a_suggestion() {
    let dir = project(&[("environments/prod.toml", "")]);
    let r = envgate(dir.path(), &["check", "--env", "prdo", "--offline"]);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!(r.stderr);
}

#[test]
fn an_unknown_key_with_a_near_miss_name_suggests_it() {
    let dir = project(&[("environments/prod.toml", "[database]\npool_szie = 3\n")]);
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("unknown key `database.pool_szie`"));
    assert!(r.stdout.contains("did you mean `pool_size`?"));
}

#[test]
fn a_wrong_type_points_at_the_value() {
    let dir = project(&[("environments/prod.toml", "[database]\npool_size = \"five\"\n")]);
    let r = envgate(dir.path(), &["validate", "--format", "json"]);
    assert_eq!(r.code, 1);
    let report = validate_report(&r.stdout);
    let fail = report["environments"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == "fail")
        .unwrap()
        .clone();
    assert_eq!(
        fail["message"],
        "`database.pool_size`: \"five\" is not of type \"integer\""
    );
    assert_eq!(
        fail["location"],
        serde_json::json!({"file": "environments/prod.toml", "line": 2, "column": 13})
    );
}

#[test]
fn a_required_key_missing_in_one_environment_only_points_at_its_table() {
    let dir = project(&[
        ("environments/base.toml", "[http]\ntimeout = \"5s\"\n"),
        (
            "environments/staging.toml",
            "[database]\nurl = \"postgres://db/app\"\npool_size = 2\n",
        ),
        ("environments/prod.toml", "[database]\nurl = \"postgres://db/app\"\n"),
    ]);
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 1);
    insta::assert_snapshot!(r.stdout);
}

#[test]
fn an_invalid_schema_is_exit_2_at_its_line() {
    let dir = project(&[("environments/prod.toml", "")]);
    write(
        dir.path(),
        "schema.json",
        "{\n  \"type\": \"object\",\n  \"properties\": {\"a\": {\"type\": \"strnig\"}}\n}\n",
    );
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!(r.stderr);
}

#[test]
fn unknown_keys_are_allowed_where_the_schema_says_so() {
    let dir = project(&[("environments/prod.toml", "[database]\nextra = 1\n")]);
    let schema = std::fs::read_to_string(dir.path().join("schema.json")).unwrap();
    write(
        dir.path(),
        "schema.json",
        &schema.replace(
            "\"required\": [\"url\", \"pool_size\"],",
            "\"required\": [\"url\", \"pool_size\"], \"additionalProperties\": true,",
        ),
    );
    assert_eq!(envgate(dir.path(), &["validate"]).code, 0);
}

#[test]
fn bad_arguments_are_exit_2() {
    let dir = project(&[("environments/prod.toml", "")]);
    assert_eq!(envgate(dir.path(), &["validate", "--bogus"]).code, 2);
    assert_eq!(envgate(dir.path(), &["validate", "--set", "novalue"]).code, 2);
    assert_eq!(envgate(dir.path(), &["validate", "--report", "xml=a.xml"]).code, 2);
}

// ---- layers and sources ---------------------------------------------------

#[test]
fn precedence_is_base_overlay_sources_then_set() {
    let dir = project(&[
        ("environments/prod.toml", "[database]\npool_size = 10\n"),
        ("console/prod.yaml", "database:\n  pool_size: 20\n"),
        ("local.env", "export SVC__DATABASE__POOL_SIZE=25\n"),
    ]);
    write(
        dir.path(),
        "envgate.toml",
        "[project]\nname = \"svc\"\nschema = \"schema.json\"\n\n[[source]]\nname = \"console\"\nkind = \"file\"\npath = \"console/{env}.yaml\"\n\n[[source]]\nname = \"dotenv\"\nkind = \"dotenv\"\npath = \"local.env\"\nprefix = \"SVC__\"\n\n[[source]]\nname = \"process-env\"\nkind = \"env\"\nprefix = \"SVC__\"\n",
    );
    let explain = |vars: &[(&str, &str)], extra: &[&str]| {
        let mut args = vec!["explain", "--env", "prod", "database.pool_size"];
        args.extend_from_slice(extra);
        envgate_with(dir.path(), &args, vars).stdout
    };
    let out = explain(
        &[("SVC__DATABASE__POOL_SIZE", "30")],
        &["--set", "database.pool_size=40"],
    );
    insta::assert_snapshot!(out);
    let out = explain(&[], &[]);
    assert!(out.starts_with("database.pool_size in prod = 25\n"), "{out}");
}

#[tokio::test]
async fn http_source_is_fetched_with_the_url_as_origin() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/config/prod"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"database": {"pool_size": 33}}"#))
        .mount(&server)
        .await;
    let dir = project(&[("environments/prod.toml", "")]);
    write(
        dir.path(),
        "envgate.toml",
        &format!(
            "[project]\nname = \"svc\"\nschema = \"schema.json\"\n\n[[source]]\nname = \"config-server\"\nkind = \"http\"\nurl = \"{}/config/{{env}}\"\ntimeout = \"2s\"\n",
            server.uri()
        ),
    );
    let d = dir.path().to_path_buf();
    let r = tokio::task::spawn_blocking(move || envgate(&d, &["explain", "--env", "prod", "database.pool_size"]))
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("config-server") && r.stdout.contains("/config/prod") && r.stdout.contains("33  ← wins"),
        "{}",
        r.stdout
    );
    // offline, the config server is not asked
    let d = dir.path().to_path_buf();
    let r = tokio::task::spawn_blocking(move || envgate(&d, &["validate"]))
        .await
        .unwrap();
    assert_eq!(r.code, 0);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[test]
fn an_unreachable_http_source_is_exit_2_within_its_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = project(&[("environments/prod.toml", "")]);
    write(
        dir.path(),
        "envgate.toml",
        &format!(
            "[project]\nname = \"svc\"\nschema = \"schema.json\"\n\n[[source]]\nname = \"cfg\"\nkind = \"http\"\nurl = \"http://u:topsecret@127.0.0.1:{port}/x\"\ntimeout = \"300ms\"\n"
        ),
    );
    let start = std::time::Instant::now();
    let r = envgate(dir.path(), &["check", "--env", "prod"]);
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("timed out after 300ms"), "{}", r.stderr);
    assert!(!r.stderr.contains("topsecret"));
    drop(listener);
}

#[test]
fn env_vars_are_typed_by_the_schema() {
    let dir = project(&[("environments/prod.toml", "")]);
    write(
        dir.path(),
        "envgate.toml",
        "[project]\nname = \"svc\"\nschema = \"schema.json\"\n\n[[source]]\nname = \"process-env\"\nkind = \"env\"\nprefix = \"SVC__\"\n",
    );
    let r = envgate_with(
        dir.path(),
        &["render", "--env", "prod", "--format", "json"],
        &[("SVC__DATABASE__POOL_SIZE", "20")],
    );
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["database"]["pool_size"], 20);
    let r = envgate_with(
        dir.path(),
        &["validate", "--format", "json"],
        &[("SVC__DATABASE__POOL_SIZE", "twenty")],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("\"env:SVC__DATABASE__POOL_SIZE\"") || r.stdout.contains("not of type"),
        "{}",
        r.stdout
    );
}

// ---- secrets ------------------------------------------------------------

#[test]
fn a_secret_canary_never_appears_in_any_output() {
    const CANARY: &str = "CANARY-7f3e9a";
    let dir = example();
    // a secret via ${secret:env:...}, a writeOnly key set in a file, and a URL password
    write(
        dir.path(),
        "environments/local.toml",
        &std::fs::read_to_string(dir.path().join("environments/local.toml"))
            .unwrap()
            .replace(
                "bucket = \"orders-local\"",
                &format!("bucket = \"orders-local\"\nsecret_key = \"{CANARY}-file\"\naccess_key = \"ak\""),
            ),
    );
    let vars = [("ORDERS_DB_PASSWORD", CANARY), ("ORDERS_AMQP_PASSWORD", CANARY)];
    let mut outputs = Vec::new();
    for args in [
        vec!["validate"],
        vec!["validate", "--format", "json"],
        vec!["validate", "--format", "junit"],
        vec!["validate", "--format", "markdown"],
        vec!["validate", "--format", "sarif"],
        vec!["validate", "--format", "github"],
        vec!["validate", "--format", "html"],
        vec!["validate", "--format", "prometheus"],
        vec!["validate", "--format", "tap"],
        vec!["check", "--all-envs", "--offline"],
        vec!["check", "--all-envs", "--offline", "--format", "json"],
        vec!["render", "--env", "local"],
        vec!["render", "--env", "local", "--show-origin"],
        vec!["render", "--env", "local", "--format", "json"],
        vec!["render", "--env", "local", "--format", "yaml"],
        vec!["render", "--env", "local", "--format", "env"],
        vec!["render", "--env", "prod", "--show-origin", "--format", "yaml"],
        vec!["explain", "--env", "local", "database.url"],
        vec!["explain", "--env", "local", "storage.secret_key"],
        vec!["diff", "local", "prod"],
        vec!["diff", "local", "prod", "--format", "json"],
        vec!["list"],
    ] {
        let r = envgate_with(dir.path(), &args, &vars);
        outputs.push((args.join(" "), r.code, r.stdout + &r.stderr));
    }
    // and in errors: a schema failure on the secret key itself
    write(
        dir.path(),
        "environments/staging.toml",
        &format!(
            "{}\n",
            std::fs::read_to_string(dir.path().join("environments/staging.toml"))
                .unwrap()
                .replace(
                    "bucket = \"orders-staging\"",
                    &format!("bucket = \"orders-staging\"\nsecret_key = 42\naccess_key = \"{CANARY}x\"")
                )
        ),
    );
    for format in [
        "human",
        "json",
        "junit",
        "markdown",
        "sarif",
        "github",
        "html",
        "prometheus",
        "tap",
    ] {
        let r = envgate_with(dir.path(), &["validate", "--env", "staging", "--format", format], &vars);
        outputs.push((
            format!("validate staging --format {format} (schema error)"),
            r.code,
            r.stdout + &r.stderr,
        ));
    }
    for (cmd, code, text) in &outputs {
        assert!(*code <= 1, "{cmd} exited {code}: {text}");
        assert!(
            !text.contains(CANARY) || cmd.contains("schema error") && !text.contains(&format!("{CANARY}-file")),
            "{cmd} leaked the secret:\n{text}"
        );
    }
    assert!(outputs.iter().any(|(_, _, t)| t.contains("***")));
    // the schema-error runs really fail on the secret key, so they exercise error paths
    for (cmd, code, text) in outputs.iter().filter(|(c, _, _)| c.contains("schema error")) {
        assert!(*code == 1 && text.contains("secret_key"), "{cmd}: {code}\n{text}");
    }
}

// ---- rules: isolation, CEL, parity ----------------------------------------

const ISOLATION: &str = "[project]\nname = \"svc\"\nschema = \"schema.json\"\n\n[isolation.prod]\nhosts = [\"*.prod.example.com\", \"10.20.0.0/16\", \"fd00:20::/32\"]\n\n[isolation.staging]\nhosts = [\"*.stg.example.com\"]\n";

fn results(r: &Run) -> Vec<serde_json::Value> {
    let report = validate_report(&r.stdout);
    report["environments"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| {
            e["results"].as_array().unwrap().iter().map(move |x| {
                let mut x = x.clone();
                x["env"] = e["name"].clone();
                x
            })
        })
        .collect()
}

#[test]
fn fails_when_staging_names_a_prod_host() {
    let dir = project(&[
        (
            "environments/staging.toml",
            "[database]\nurl = \"postgres://app:hunter2@db.prod.example.com:5432/app\"\n",
        ),
        (
            "environments/prod.toml",
            "[database]\nurl = \"postgres://app:hunter2@db.prod.example.com:5432/app\"\n",
        ),
    ]);
    write(dir.path(), "envgate.toml", ISOLATION);
    let r = envgate(dir.path(), &["validate", "--format", "json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!r.stdout.contains("hunter2"));
    let fails: Vec<_> = results(&r).into_iter().filter(|x| x["status"] == "fail").collect();
    assert_eq!(fails.len(), 1, "{fails:?}");
    let f = &fails[0];
    assert_eq!(
        (f["env"].as_str(), f["category"].as_str(), f["key"].as_str()),
        (Some("staging"), Some("isolation"), Some("database.url"))
    );
    assert_eq!(
        f["location"],
        serde_json::json!({"file": "environments/staging.toml", "line": 2, "column": 7})
    );
    assert!(f["message"].as_str().unwrap().contains("*.prod.example.com"));
    let human = envgate(dir.path(), &["validate"]);
    assert!(!human.stdout.contains("hunter2"));
    insta::assert_snapshot!(human.stdout);
}

#[test]
fn an_ipv6_literal_in_a_prod_cidr_is_caught() {
    let dir = project(&[
        (
            "environments/staging.toml",
            "[database]\nurl = \"postgres://[fd00:20::7]:5432/app\"\n",
        ),
        ("environments/prod.toml", ""),
    ]);
    write(dir.path(), "envgate.toml", ISOLATION);
    let r = envgate(dir.path(), &["validate", "--env", "staging", "--format", "json"]);
    assert_eq!(r.code, 1);
    assert!(
        results(&r)
            .iter()
            .any(|x| x["category"] == "isolation" && x["message"].as_str().unwrap().contains("fd00:20::/32"))
    );
}

#[test]
fn deny_unknown_hosts_fails_hosts_of_no_environment_and_local_may_opt_out() {
    let dir = project(&[
        (
            "environments/staging.toml",
            "[database]\nurl = \"postgres://db.elsewhere.net/app\"\n",
        ),
        (
            "environments/local.toml",
            "[database]\nurl = \"postgres://db.prod.example.com/app\"\n",
        ),
        ("environments/prod.toml", ""),
    ]);
    write(
        dir.path(),
        "envgate.toml",
        &format!(
            "{ISOLATION}deny_unknown_hosts = true\n\n[isolation.local]\nhosts = [\"localhost\"]\nenforce = false\n"
        ),
    );
    let r = envgate(dir.path(), &["validate", "--format", "json"]);
    let fails: Vec<_> = results(&r)
        .into_iter()
        .filter(|x| x["status"] == "fail")
        .map(|x| {
            (
                x["env"].as_str().unwrap().to_string(),
                x["category"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(fails, [("staging".to_string(), "isolation".to_string())]);
}

fn rules_project(rules: &str) -> TempDir {
    project(&[
        ("environments/staging.toml", "[database]\npool_size = 10\n"),
        ("environments/prod.toml", "[database]\npool_size = 4\n"),
        ("checks/rules.toml", rules),
    ])
}

#[test]
fn cel_rules_pass_fail_and_skip_with_when() {
    let dir = rules_project(
        "[[rule]]\nid = \"timeout-sane\"\nmessage = \"timeout at least 1s\"\nassert = \"config.http.timeout >= duration('1s')\"\n\n\
         [[rule]]\nid = \"big-pool-in-prod\"\nmessage = \"prod needs 8+ connections\"\nwhen = \"env == 'prod'\"\nassert = \"config.database.pool_size >= 8\"\n",
    );
    let r = envgate(dir.path(), &["validate", "--format", "json"]);
    assert_eq!(r.code, 1);
    let statuses: Vec<_> = results(&r)
        .into_iter()
        .filter(|x| x["category"] == "rule")
        .map(|x| {
            format!(
                "{} {} {}",
                x["env"].as_str().unwrap(),
                x["name"].as_str().unwrap(),
                x["status"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            "prod timeout-sane pass",
            "prod big-pool-in-prod fail",
            "staging timeout-sane pass",
            "staging big-pool-in-prod skipped"
        ]
    );
    let human = envgate(dir.path(), &["validate", "--env", "prod"]);
    insta::assert_snapshot!(human.stdout);
}

#[test]
fn a_rule_that_does_not_compile_is_exit_2_at_its_line_and_column() {
    let dir =
        rules_project("[[rule]]\nid = \"broken\"\nmessage = \"m\"\nassert = \"config.database.pool_size >= >= 8\"\n");
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("checks/rules.toml:4:"), "{}", r.stderr);
    insta::assert_snapshot!(r.stderr);
}

#[test]
fn a_rule_that_reads_a_missing_key_names_it() {
    let dir =
        rules_project("[[rule]]\nid = \"replicas\"\nmessage = \"m\"\nassert = \"config.database.replicas > 0\"\n");
    let r = envgate(dir.path(), &["validate", "--env", "prod", "--format", "json"]);
    assert_eq!(r.code, 1);
    let f = results(&r).into_iter().find(|x| x["category"] == "rule").unwrap();
    assert_eq!(f["status"], "fail");
    assert_eq!(
        f["message"],
        "rule `replicas` reads `database.replicas`, which is not set in `prod`"
    );
}

#[test]
fn a_cross_environment_rule_sees_every_environment() {
    let dir = rules_project(
        "[[rule]]\nid = \"prod-pool\"\nscope = \"all-envs\"\nmessage = \"prod pool >= staging pool\"\nassert = \"envs.prod.database.pool_size >= envs.staging.database.pool_size\"\n",
    );
    let r = envgate(dir.path(), &["validate", "--format", "json"]);
    assert_eq!(r.code, 1);
    let f: Vec<_> = results(&r)
        .into_iter()
        .filter(|x| x["category"] == "rule")
        .map(|x| {
            (
                x["env"].as_str().unwrap().to_string(),
                x["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        f,
        [
            ("prod".to_string(), "fail".to_string()),
            ("staging".to_string(), "fail".to_string())
        ]
    );
    // checking one environment alone cannot evaluate it
    let r = envgate(dir.path(), &["validate", "--env", "prod", "--format", "json"]);
    assert_eq!(r.code, 0);
    assert!(
        results(&r)
            .iter()
            .any(|x| x["status"] == "skipped" && x["message"].as_str().unwrap().contains("staging"))
    );
}

#[test]
fn parity_lists_the_keys_one_environment_lacks() {
    let dir = project(&[
        ("environments/staging.toml", "[database]\npool_size = 10\n"),
        (
            "environments/prod.toml",
            "[database]\npool_size = 4\npassword = \"p\"\n",
        ),
    ]);
    write(
        dir.path(),
        "envgate.toml",
        "[project]\nname = \"svc\"\nschema = \"schema.json\"\n\n[parity]\nrequired = [\"database\"]\n",
    );
    let r = envgate(dir.path(), &["validate"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout
            .contains("parity: `staging` lacks 1 key other environments set: database.password"),
        "{}",
        r.stdout
    );
    insta::assert_snapshot!(r.stdout);
}

#[test]
fn only_skip_and_tag_select_rules() {
    let dir = rules_project(
        "[[rule]]\nid = \"a\"\nmessage = \"m\"\nassert = \"false\"\ntags = [\"db\"]\n\n[[rule]]\nid = \"b\"\nmessage = \"m\"\nassert = \"true\"\n",
    );
    let count = |args: &[&str]| {
        let mut all = vec!["validate", "--env", "prod", "--format", "json"];
        all.extend_from_slice(args);
        results(&envgate(dir.path(), &all))
            .iter()
            .filter(|x| x["category"] == "rule")
            .count()
    };
    assert_eq!(count(&[]), 2);
    assert_eq!(count(&["--only", "a"]), 1);
    assert_eq!(count(&["--skip", "a"]), 1);
    assert_eq!(count(&["--tag", "db"]), 1);
    assert_eq!(envgate(dir.path(), &["validate", "--skip", "a"]).code, 0);
}

#[test]
fn incident_2_staging_pointing_at_prod_fails_isolation() {
    let r = envgate(&broken(), &["validate", "--env", "staging", "--format", "json"]);
    assert_eq!(r.code, 1);
    assert!(!r.stdout.contains("s3cret"));
    let iso: Vec<_> = results(&r)
        .into_iter()
        .filter(|x| x["category"] == "isolation")
        .collect();
    assert_eq!(iso.len(), 1);
    assert_eq!(iso[0]["key"], "cache.url");
    assert_eq!(iso[0]["location"]["line"], 12);
}

#[path = "cli/trust.rs"]
mod trust;

#[path = "cli/origins.rs"]
mod origins;

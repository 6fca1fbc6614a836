//! Small things a new user trips over: `list --format json`, `diff
//! --exit-code`, `render --format env` with the project's prefix, `--report`
//! with an unknown format, a failing HTTP probe naming the URL it requested.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn envgate(dir: &Path, args: &[&str], vars: &[(String, String)]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_envgate"))
        .current_dir(dir)
        .env_clear()
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
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
fn list_format_json_names_environments_rules_and_probes() {
    let r = envgate(Path::new(ROOT), &["list", "--format", "json"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["project"], "orders-api");
    let envs: Vec<&str> = v["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(envs, ["local", "staging", "prod"]);
    assert_eq!(v["environments"][2]["extends"], "staging");
    assert!(
        v["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "retry-budget-within-timeout")
    );
    assert!(
        v["probes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "database" && p["kind"] == "postgres")
    );
    assert!(v["probe_kinds"].as_array().unwrap().contains(&"http".into()));
    assert!(
        v["units"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["key"] == "http.request_timeout" && u["unit"] == "duration")
    );
    assert_eq!(v["layers"]["sources"][1]["prefix"], "ORDERS__");
}

#[test]
fn diff_exit_code_is_1_when_environments_differ_and_0_when_they_do_not() {
    let root = Path::new(ROOT);
    let differ = envgate(root, &["diff", "staging", "prod", "--exit-code"], &[]);
    assert_eq!(differ.code, 1, "{}", differ.stderr);
    assert!(differ.stdout.contains("changed"), "{}", differ.stdout);
    let same = envgate(root, &["diff", "prod", "prod", "--exit-code", "--format", "json"], &[]);
    assert_eq!(same.code, 0, "{}", same.stderr);
    let without = envgate(root, &["diff", "staging", "prod"], &[]);
    assert_eq!(without.code, 0, "without --exit-code a diff is a success");
}

#[test]
fn render_env_uses_the_manifest_prefix_and_reads_back_as_the_same_configuration() {
    let root = Path::new(ROOT);
    let r = envgate(root, &["render", "--env", "staging", "--format", "env"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.lines().all(|l| l.starts_with("ORDERS__")), "{}", r.stdout);
    assert!(r.stdout.contains("ORDERS__DATABASE__POOL_SIZE=10\n"), "{}", r.stdout);
    // Given back as the environment (the env source reads ORDERS__*), the
    // file reproduces the configuration: change one value and see it win.
    let mut vars: Vec<(String, String)> = r
        .stdout
        .lines()
        .filter(|l| !l.contains("***"))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    vars.retain(|(k, _)| k != "ORDERS__DATABASE__POOL_SIZE");
    vars.push(("ORDERS__DATABASE__POOL_SIZE".into(), "77".into()));
    let again = envgate(root, &["render", "--env", "staging", "--format", "json"], &vars);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let v: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(v["database"]["pool_size"], 77);
    assert_eq!(v["http"]["request_timeout"], "10s");
    let origins = envgate(
        root,
        &["render", "--env", "staging", "--format", "env", "--show-origin"],
        &[],
    );
    assert!(origins.stdout.contains("ORDERS__HTTP__PORT=8080"), "{}", origins.stdout);
}

#[test]
fn report_with_an_unknown_format_lists_the_valid_ones() {
    let r = envgate(Path::new(ROOT), &["validate", "--report", "xml=out.xml"], &[]);
    assert_eq!(r.code, 2);
    // The terminal output wraps; read it as words.
    let words = r
        .stderr
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        words.contains(
            "unknown format `xml`; valid formats: human, json, junit, markdown, sarif, github, html, prometheus, tap"
        ),
        "{}",
        r.stderr
    );
    let r = envgate(Path::new(ROOT), &["validate", "--report", "out.xml"], &[]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("formats: human, json"), "{}", r.stderr);
}

#[tokio::test]
async fn a_failing_http_probe_names_the_full_url_with_its_path() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/health"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        "envgate.toml",
        "[project]\nname = \"svc\"\nenvironments = [\"dev\"]\n",
    );
    write(
        dir.path(),
        "environments/base.toml",
        &format!("[api]\nurl = \"{}/api\"\n", server.uri()),
    );
    write(dir.path(), "environments/dev.toml", "");
    write(
        dir.path(),
        "checks/probes.toml",
        "[[probe]]\nname = \"api\"\nkind = \"http\"\ntarget = \"${api.url}\"\npath = \"/health\"\ntimeout = \"2s\"\n",
    );
    let d: PathBuf = dir.path().to_path_buf();
    let r = tokio::task::spawn_blocking(move || envgate(&d, &["check", "--env", "dev", "--format", "json"], &[]))
        .await
        .unwrap();
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let result = &v["environments"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "probe/api")
        .unwrap()
        .clone();
    let message = result["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("status: GET {}/api/health: ", server.uri())),
        "{message}"
    );
    assert!(message.contains("got 503 Service Unavailable"), "{message}");
}

#[test]
fn render_masks_only_the_secret_part_of_a_value() {
    let root = Path::new(ROOT);
    let vars = [("ORDERS_DB_PASSWORD".to_string(), "hunter2-db".to_string())];
    for args in [
        &["render", "--env", "staging"][..],
        &["render", "--env", "staging", "--format", "json"],
        &["render", "--env", "staging", "--show-origin"],
        &["explain", "--env", "staging", "database.url"],
        &["diff", "staging", "prod", "--format", "json"],
    ] {
        let r = envgate(root, args, &vars);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert!(
            !r.stdout.contains("hunter2-db"),
            "{args:?} leaked the secret:\n{}",
            r.stdout
        );
        assert!(
            r.stdout
                .contains("postgres://orders:***@db.stg.example.com:5432/orders"),
            "{args:?}:\n{}",
            r.stdout
        );
    }
    // A value the schema calls secret (writeOnly) stays masked whole, even
    // one too short for the redactor to look for elsewhere.
    for value in ["s3cr3t/with:parts@x", "ab"] {
        let set = format!("storage.secret_key={value}");
        let r = envgate(
            root,
            &["render", "--env", "local", "--format", "json", "--set", &set],
            &vars,
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["storage"]["secret_key"], "***", "{}", r.stdout);
    }
}

#[test]
fn render_show_secrets_prints_real_values_and_warns_on_stderr() {
    let root = Path::new(ROOT);
    let vars = [
        ("ORDERS_DB_PASSWORD".to_string(), "hunter2-db".to_string()),
        ("ORDERS_AMQP_PASSWORD".to_string(), "rabbit-pw".to_string()),
    ];
    let r = envgate(
        root,
        &["render", "--env", "staging", "--format", "json", "--show-secrets"],
        &vars,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("postgres://orders:hunter2-db@db.stg.example.com"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr
            .contains("warning: --show-secrets prints secret values in clear"),
        "{}",
        r.stderr
    );
    assert!(!r.stdout.contains("warning"), "the warning goes to stderr only");
    // An unset secret cannot be shown: exit 2 naming it, no placeholder printed.
    let r = envgate(root, &["render", "--env", "staging", "--show-secrets"], &vars[..1]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stderr.contains("ORDERS_AMQP_PASSWORD"), "{}", r.stderr);
    assert!(!r.stdout.contains("unset-secret"), "{}", r.stdout);
}

#[test]
fn markdown_links_each_origin_to_its_line_on_github() {
    let broken = Path::new(ROOT).join("examples/broken");
    let vars: Vec<(String, String)> = [
        ("GITHUB_REPOSITORY", "acme/orders"),
        ("GITHUB_SHA", "0123abcd"),
        ("GITHUB_SERVER_URL", "https://github.example.com"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let r = envgate(&broken, &["validate", "--format", "markdown"], &vars);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stdout.contains(
            "[`environments/staging.toml:5`](https://github.example.com/acme/orders/blob/0123abcd/environments/staging.toml#L5)"
        ),
        "{}",
        r.stdout
    );
    // Without the variables, the origin is plain text.
    let r = envgate(&broken, &["validate", "--format", "markdown"], &[]);
    assert!(r.stdout.contains("| `environments/staging.toml:5` |"), "{}", r.stdout);
    assert!(!r.stdout.contains("/blob/"), "{}", r.stdout);
}

#[test]
fn html_report_shows_inline_code_as_code() {
    let broken = Path::new(ROOT).join("examples/broken");
    let r = envgate(&broken, &["validate", "--format", "html"], &[]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("<code>http.request_timeout</code>"), "no inline code");
    let messages: Vec<&str> = r
        .stdout
        .split("<div class=\"msg\">")
        .skip(1)
        .map(|s| s.split("</div>").next().unwrap())
        .collect();
    assert!(!messages.is_empty());
    for m in messages {
        assert!(!m.contains('`'), "literal backticks in {m}");
    }
}

#[test]
fn markdown_report_with_links_matches_snapshot() {
    use envgate::report::{Format, Style, fixture};
    let style = Style {
        source_links: Some("https://github.com/acme/orders/blob/0123abcd/"),
        ..fixture::style()
    };
    let out = Format::Markdown.reporter().render(&fixture::report(), style);
    assert!(
        out.contains(
            "[`environments/prod.toml:2`](https://github.com/acme/orders/blob/0123abcd/environments/prod.toml#L2)"
        ),
        "{out}"
    );
    insta::assert_snapshot!(out);
}

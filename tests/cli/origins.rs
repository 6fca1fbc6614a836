//! Every finding says where its value came from, whatever the layer: a file
//! line, an environment variable, a dotenv line, an http source or `--set`.

use super::*;

fn origin_of(r: &Run, id: &str) -> serde_json::Value {
    let found = results(r).into_iter().find(|x| x["id"] == id);
    found.unwrap_or_else(|| panic!("no {id} in {}", r.stdout))["origin"].clone()
}

fn with_sources(dir: &Path, sources: &str) {
    write(
        dir,
        "envgate.toml",
        &format!("[project]\nname = \"svc\"\nschema = \"schema.json\"\n\n{sources}"),
    );
}

#[test]
fn a_bad_value_from_an_environment_variable_names_the_variable() {
    let dir = project(&[("environments/prod.toml", "")]);
    with_sources(
        dir.path(),
        "[[source]]\nname = \"process-env\"\nkind = \"env\"\nprefix = \"SVC__\"\n",
    );
    let vars = [("SVC__HTTP__PORT", "eighty")];
    let r = envgate_with(dir.path(), &["validate", "--format", "json"], &vars);
    assert_eq!(r.code, 1);
    assert_eq!(
        origin_of(&r, "schema/http.port"),
        serde_json::json!({"layer": "process-env", "kind": "env", "name": "SVC__HTTP__PORT"})
    );
    let human = envgate_with(dir.path(), &["validate"], &vars);
    // The diagnostic wraps at the terminal's width: read it as one line.
    let flat = human
        .stdout
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        flat.contains("(set by environment variable SVC__HTTP__PORT)"),
        "{}",
        human.stdout
    );
}

#[test]
fn a_bad_value_from_set_names_the_argument() {
    let dir = project(&[("environments/prod.toml", "")]);
    let r = envgate(
        dir.path(),
        &["validate", "--set", "database.pool_size=0", "--format", "json"],
    );
    assert_eq!(r.code, 1);
    assert_eq!(
        origin_of(&r, "schema/database.pool_size"),
        serde_json::json!({"layer": "--set", "kind": "cli", "name": "--set database.pool_size=0"})
    );
}

#[test]
fn a_bad_value_from_a_dotenv_source_names_its_file_and_line() {
    let dir = project(&[("environments/prod.toml", "")]);
    with_sources(
        dir.path(),
        "[[source]]\nname = \"dot\"\nkind = \"dotenv\"\npath = \"{env}.env\"\nprefix = \"SVC__\"\n",
    );
    write(dir.path(), "prod.env", "# deploy overrides\nSVC__HTTP__PORT=eighty\n");
    let r = envgate(dir.path(), &["validate", "--format", "json"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        origin_of(&r, "schema/http.port"),
        serde_json::json!({"layer": "dot", "kind": "dotenv", "name": "prod.env"})
    );
    let f = results(&r).into_iter().find(|x| x["id"] == "schema/http.port").unwrap();
    assert_eq!(f["location"]["file"], "prod.env");
    assert_eq!(f["location"]["line"], 2);
}

#[tokio::test]
async fn a_bad_value_from_an_http_source_names_the_url_and_json_pointer() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/config/prod"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"http": {"port": "eighty"}}"#))
        .mount(&server)
        .await;
    let dir = project(&[("environments/prod.toml", "")]);
    with_sources(
        dir.path(),
        &format!(
            "[[source]]\nname = \"config-server\"\nkind = \"http\"\nurl = \"{}/config/{{env}}\"\n",
            server.uri()
        ),
    );
    let d = dir.path().to_path_buf();
    let r = tokio::task::spawn_blocking(move || envgate(&d, &["check", "--env", "prod", "--format", "json"]))
        .await
        .unwrap();
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let o = origin_of(&r, "schema/http.port");
    assert_eq!(o["kind"], "http");
    assert_eq!(o["layer"], "config-server");
    assert_eq!(o["name"], format!("{}/config/prod#/http/port", server.uri()));
}

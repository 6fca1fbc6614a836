//! Secrets that used to leak (a dotenv error's neighbouring lines, a
//! `--set` origin, a table marked secret, URLs clients read differently)
//! and dotenv files read as docker compose and the dotenv libraries read them.

use std::net::TcpListener;

use super::hostile::{all, wide, with_source};
use super::*;

// ---- secrets that used to leak ------------------------------------------

#[test]
fn a_dotenv_parse_error_never_shows_the_values_of_its_lines() {
    let dir = project(&[("environments/prod.toml", "")]);
    write(
        dir.path(),
        "secrets.env",
        "# DB_PASSWORD=old-canary\nDB_USER=app-canary\nDB_PASSWORD=\"pw-canary\" junk\nAPI_TOKEN=tok-canary\n",
    );
    with_source(dir.path(), "dotenv", "secrets.env");
    for args in [
        &["validate"][..],
        &["validate", "--format", "json"],
        &["validate", "--format", "sarif"],
        &["render", "--env", "prod"],
        &["explain", "--env", "prod", "http.port"],
    ] {
        let r = wide(dir.path(), args);
        assert_eq!(r.code, 2, "{args:?}: {}", all(&r));
        assert!(!all(&r).contains("canary"), "{args:?}: {}", all(&r));
        assert!(
            r.stderr.contains(
                "cannot parse secrets.env as dotenv: unexpected text after the closing quote (line 3, column 25)"
            ),
            "{}",
            r.stderr
        );
    }
    insta::assert_snapshot!(envgate(dir.path(), &["validate"]).stderr);
}

#[test]
fn a_secret_set_on_the_command_line_is_masked_in_its_origin() {
    let dir = project(&[("environments/prod.toml", "")]);
    let set = ["--set", "database.password=987654321"];
    for args in [
        &["explain", "--env", "prod", "database.password"][..],
        &["render", "--env", "prod", "--show-origin"],
        &["render", "--env", "prod", "--show-origin", "--format", "json"],
        &["validate", "--env", "prod", "--format", "json"],
    ] {
        let mut a = args.to_vec();
        a.extend(set);
        let r = wide(dir.path(), &a);
        assert!(!all(&r).contains("987654321"), "{a:?}: {}", all(&r));
    }
    let r = envgate(
        dir.path(),
        &[
            "explain",
            "--env",
            "prod",
            "database.password",
            "--set",
            "database.password=987654321",
        ],
    );
    assert!(r.stdout.contains("--set database.password=***"), "{}", r.stdout);
}

#[test]
fn a_set_value_that_does_not_parse_is_not_echoed() {
    let dir = project(&[("environments/prod.toml", "")]);
    let r = wide(
        dir.path(),
        &["render", "--env", "prod", "--set", "database.password={hunter2-canary"],
    );
    assert_eq!(r.code, 2);
    assert!(!all(&r).contains("canary"), "{}", all(&r));
    assert!(
        r.stderr
            .contains("--set database.password: the value starts like a TOML"),
        "{}",
        r.stderr
    );
}

#[test]
fn x_secret_on_a_table_masks_every_value_under_it() {
    let dir = project(&[
        (
            "environments/staging.toml",
            "[creds]\nuser = \"u\"\ntoken = \"staging-canary\"\n",
        ),
        (
            "environments/prod.toml",
            "[creds]\nuser = \"u\"\ntoken = \"prod-canary\"\n[creds.nested]\nkey = \"deep-canary\"\n",
        ),
    ]);
    let schema = std::fs::read_to_string(dir.path().join("schema.json"))
        .unwrap()
        .replacen(
            "\"properties\": {",
            "\"properties\": {\n    \"creds\": {\"type\": \"object\", \"x-secret\": true},",
            1,
        );
    write(dir.path(), "schema.json", &schema);
    for args in [
        &["render", "--env", "prod"][..],
        &["render", "--env", "prod", "--format", "json"],
        &["render", "--env", "prod", "--format", "yaml"],
        &["render", "--env", "prod", "--format", "env"],
        &["render", "--env", "prod", "--show-origin"],
        &["explain", "--env", "prod", "creds.token"],
        &["explain", "--env", "prod", "creds.nested.key"],
        &["diff", "staging", "prod"],
        &["validate", "--format", "json"],
    ] {
        let r = wide(dir.path(), args);
        assert_ne!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(!all(&r).contains("canary"), "{args:?}: {}", all(&r));
    }
}

/// A loopback port where nothing listens.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn probe_never_prints_the_password_of_a_target_it_cannot_parse() {
    let dir = TempDir::new().unwrap();
    let r = wide(dir.path(), &["probe", "http://u:PASSWORD-canary@[::1/"]);
    assert_eq!(r.code, 2);
    assert!(!all(&r).contains("canary"), "{}", all(&r));
    assert!(r.stderr.contains("http://u:***@[::1/"), "{}", r.stderr);
}

#[test]
fn probe_result_names_mask_passwords_with_slashes_at_signs_and_tokens() {
    let dir = TempDir::new().unwrap();
    let port = closed_port();
    let targets = [
        format!("postgres://u:pa/ss-canary@127.0.0.1:{port}"),
        format!("redis://:a@b-canary@127.0.0.1:{port}"),
        format!("nats://TOKEN-canary@127.0.0.1:{port}"),
        format!("amqp://guest:guest@127.0.0.1:{port}/"),
    ];
    let mut args = vec!["probe", "--timeout", "2s", "--format", "json"];
    args.extend(targets.iter().map(String::as_str));
    let r = wide(dir.path(), &args);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!all(&r).contains("canary"), "{}", all(&r));
    let names: Vec<String> = results(&r)
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            format!("postgres://u:***@127.0.0.1:{port}"),
            format!("redis://:***@127.0.0.1:{port}"),
            format!("nats://***@127.0.0.1:{port}"),
            format!("amqp://guest:***@127.0.0.1:{port}/"),
        ]
    );
}

#[test]
fn passwords_are_masked_with_a_fixed_mask_that_keeps_the_user_name() {
    let dir = project(&[(
        "environments/prod.toml",
        "[database]\nurl = \"postgres://guest:a-long-password-canary@db/x\"\npool_size = \"postgres://guest:a-long-password-canary@db/x\"\n",
    )]);
    for args in [&["validate", "--env", "prod"][..], &["render", "--env", "prod"]] {
        let r = wide(dir.path(), args);
        let out = all(&r);
        assert!(!out.contains("canary") && !out.contains("****"), "{args:?}: {out}");
        assert!(out.contains("postgres://guest:***@db/x"), "{args:?}: {out}");
    }
}

// ---- dotenv as docker compose and the dotenv libraries read it ------------

#[test]
fn dotenv_quotes_escapes_export_and_comments_read_as_docker_compose_reads_them() {
    let dir = project(&[("environments/prod.toml", "")]);
    write(
        dir.path(),
        "app.env",
        "\u{feff}# comment\nexport HTTP__PORT=8081\nDATABASE__URL=\"postgres://db/x\" # trailing comment\nDATABASE__PASSWORD=\"pa\\\"ss word\"\nEXTRA__SINGLE='it\\'s $literal'\nEXTRA__MULTI=\"line one\\nline two\"\nEXTRA__PLAIN = spaced value  # comment\n",
    );
    with_source(dir.path(), "dotenv", "app.env");
    let r = wide(dir.path(), &["render", "--env", "prod", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["http"]["port"], 8081);
    assert_eq!(v["database"]["url"], "postgres://db/x");
    assert_eq!(v["database"]["password"], "***");
    assert_eq!(v["extra"]["single"], "it's $literal");
    assert_eq!(v["extra"]["multi"], "line one\nline two");
    assert_eq!(v["extra"]["plain"], "spaced value");
}

#[test]
fn dotenv_text_after_a_closing_quote_is_exit_2_at_its_column() {
    let dir = project(&[("environments/prod.toml", "")]);
    for (text, at) in [
        ("K='it''s'\n", "(line 1, column 7)"),
        ("A=1\nK=\"abc\" junk\n", "(line 2, column 9)"),
    ] {
        write(dir.path(), "app.env", text);
        with_source(dir.path(), "dotenv", "app.env");
        let r = wide(dir.path(), &["validate"]);
        assert_eq!(r.code, 2);
        assert!(
            r.stderr
                .contains(&format!("unexpected text after the closing quote {at}")),
            "{}",
            r.stderr
        );
    }
}

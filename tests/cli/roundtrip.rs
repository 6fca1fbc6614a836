//! What `envgate render` prints, read back by the ecosystem's own readers
//! (PyYAML, tomllib, json, python-dotenv and docker's env-file rules; see
//! tests/consumers/render_roundtrip.py), for generated configurations:
//! every value a format can hold reads back exactly, and a value it cannot
//! hold is refused by key, never written wrong. Installed by
//! scripts/setup/render.sh. `PROPTEST_CASES=100000` runs them longer.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::sync::{LazyLock, Mutex};

use envgate::commands::formats;
use proptest::prelude::*;
use serde_json::{Value as Json, json};

use super::ROOT;

/// One Python reader for the whole test binary, asked one line at a time.
struct Reader {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

static READER: LazyLock<Mutex<Reader>> = LazyLock::new(|| {
    let mut child = std::process::Command::new("python3")
        .arg(format!("{ROOT}/tests/consumers/render_roundtrip.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs (scripts/setup/render.sh installs its modules)");
    let stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    Mutex::new(Reader {
        _child: child,
        stdin,
        stdout,
    })
});

fn read_back(format: &str, text: &str) -> Json {
    let mut r = READER.lock().unwrap_or_else(|e| e.into_inner());
    let request = json!({"format": format, "text": text}).to_string();
    writeln!(r.stdin, "{request}").unwrap();
    r.stdin.flush().unwrap();
    let mut line = String::new();
    r.stdout.read_line(&mut line).unwrap();
    assert!(
        !line.is_empty(),
        "the Python reader stopped (is PyYAML / python-dotenv installed?)"
    );
    serde_json::from_str(&line).unwrap()
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,10}",
        // what YAML, TOML and env files give meaning to
        "[\\x00-\\x20\\x7f-\\u{a0}\\u{2028}\\u{2029}\\u{feff}\\u{fffe}#:'\"\\\\{}\\[\\],&*!|>%@`$=~?-]{0,8}",
        "[0-9._eExXoObB+:-]{1,8}",
        prop_oneof![
            Just("0b101"),
            Just("1_0"),
            Just("yes"),
            Just("No"),
            Just("on"),
            Just("y"),
            Just("null"),
            Just("~"),
            Just(".inf"),
            Just("-.NaN"),
            Just("0x1F"),
            Just("0o17"),
            Just("2001-12-14"),
            Just("12:30:00"),
            Just("1e3"),
            Just("<<"),
            Just("="),
            Just("${X}"),
            Just("a #b"),
            Just("'q'"),
            Just(" pad ")
        ]
        .prop_map(String::from),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z_][a-z0-9_-]{0,6}", text()]
}

fn leaf() -> impl Strategy<Value = Json> {
    prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Json::from),
        text().prop_map(Json::from),
    ]
}

fn config() -> impl Strategy<Value = Json> {
    let value = leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            proptest::collection::vec((key(), inner), 0..4).prop_map(|kv| Json::Object(kv.into_iter().collect())),
        ]
    });
    proptest::collection::vec((key(), value), 0..6).prop_map(|kv| Json::Object(kv.into_iter().collect()))
}

/// What an env file should hold: each leaf under its variable name, as text.
fn env_expected(v: &Json) -> Json {
    let mut out = serde_json::Map::new();
    for (path, leaf) in formats::leaves(v) {
        let text = match leaf {
            Json::String(s) => s.clone(),
            Json::Array(_) | Json::Object(_) => serde_json::to_string(leaf).unwrap(),
            other => other.to_string(),
        };
        out.insert(formats::env_name(&path).unwrap(), Json::String(text));
    }
    Json::Object(out)
}

fn holds(v: &Json, pred: &dyn Fn(&Json) -> bool) -> bool {
    pred(v)
        || match v {
            Json::Array(a) => a.iter().any(|x| holds(x, pred)),
            Json::Object(o) => o.values().any(|x| holds(x, pred)),
            _ => false,
        }
}

proptest! {
    #[test]
    fn render_yaml_reads_back_in_pyyaml_as_the_same_configuration(v in config()) {
        let text = formats::yaml(&v);
        let got = read_back("yaml", &text);
        prop_assert_eq!(&got["value"], &v, "{}\n{:?}", text, got);
    }

    #[test]
    fn render_json_reads_back_in_python_as_the_same_configuration(v in config()) {
        let text = formats::json(&v);
        let got = read_back("json", &text);
        prop_assert_eq!(&got["value"], &v, "{}\n{:?}", text, got);
    }

    #[test]
    fn render_toml_reads_back_in_tomllib_or_names_what_toml_cannot_hold(v in config()) {
        match formats::toml(&v) {
            Ok(text) => {
                let got = read_back("toml", &text);
                prop_assert_eq!(&got["value"], &v, "{}\n{:?}", text, got);
            }
            Err(refusals) => {
                prop_assert!(!refusals.is_empty());
                let unholdable = |x: &Json| x.is_null() || (x.is_u64() && x.as_i64().is_none());
                prop_assert!(holds(&v, &unholdable), "{:?} refused {:?}", v, refusals);
            }
        }
    }

    #[test]
    fn render_env_reads_back_alike_in_python_dotenv_and_docker_or_is_refused(v in config()) {
        match formats::env(&v) {
            Ok(text) => {
                let got = read_back("env", &text);
                let want = env_expected(&v);
                prop_assert!(got.get("error").is_none(), "{}\n{:?}", text, got);
                prop_assert_eq!(&got["dotenv"], &want, "python-dotenv read {:?}", text);
                prop_assert_eq!(&got["docker"], &want, "docker read {:?}", text);
            }
            Err(refusals) => prop_assert!(refusals.iter().all(|r| !r.reason.is_empty())),
        }
    }

    #[test]
    fn render_env_never_refuses_plain_names_and_values(
        kv in proptest::collection::btree_map("[a-z][a-z0-9]{0,6}", "[A-Za-z0-9_./:@%+,-]{1,20}( [a-z]{1,4})?", 0..8),
    ) {
        let v = Json::Object(kv.into_iter().map(|(k, s)| (k, Json::String(s))).collect());
        let text = formats::env(&v).map_err(|r| TestCaseError::fail(format!("{r:?}")))?;
        let got = read_back("env", &text);
        prop_assert_eq!(&got["docker"], &env_expected(&v));
        prop_assert_eq!(&got["dotenv"], &env_expected(&v));
    }
}

#[test]
fn render_yaml_of_del_line_separator_0b101_and_1_0_reads_back_as_text() {
    let long_key = "k".repeat(1500);
    let v = json!({"del": "a\u{7f}b", "ls": "a\u{2028}b", "bin": "0b101", "under": "1_0", long_key: {"x": [1.5e300, -0.0]}});
    let text = formats::yaml(&v);
    assert_eq!(read_back("yaml", &text)["value"], v, "{text}");
}

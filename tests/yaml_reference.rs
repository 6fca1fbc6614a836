//! envgate's YAML reader against the reference readers, on generated
//! documents: ruamel.yaml as check-jsonschema configures it (YAML 1.2) must
//! give the same value for every document; PyYAML (YAML 1.1) too, for
//! documents whose scalars mean the same in both versions. The documented
//! differences are pinned by their own test. One Python process per reader.
//!
//! More cases: `ENVGATE_YAML_CASES=5000 ENVGATE_YAML_SEED=9 cargo test --test yaml_reference`.

use std::path::{Path, PathBuf};

use envgate::config::parse;
use envgate::config::tree::Format;
use envgate::source::SourceFile;
use serde_json::{Value as Json, json};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// What a reference reader makes of each file: `Ok(value)` or `Err(error name)`.
fn reference(reader: &str, files: &[PathBuf]) -> Vec<Result<Json, String>> {
    let out = std::process::Command::new(python())
        .arg(Path::new(ROOT).join("tests/schema_reference/yaml_load.py"))
        .arg(reader)
        .args(files)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the reference YAML readers are not installed: run `bash scripts/setup/schema.sh`\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all: Vec<Json> = serde_json::from_slice(&out.stdout).unwrap();
    all.into_iter()
        .map(|r| match r.get("ok") {
            Some(v) => Ok(v.clone()),
            None => Err(r["error"].as_str().unwrap_or_default().to_string()),
        })
        .collect()
}

fn envgate(text: &str) -> Result<Json, String> {
    let file = SourceFile::new("doc.yaml", text);
    match parse::document(&file, Format::Yaml) {
        Ok(doc) => Ok(doc.map_or(Json::Null, |d| d.to_json())),
        Err(e) => Err(e.message),
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Scalars as written, and whether YAML 1.1 (PyYAML) reads them as 1.2 does.
/// Every form here is read the same by ruamel and envgate.
const SCALARS: &[(&str, bool)] = &[
    ("0", true),
    ("-12", true),
    ("+7", true),
    ("42", true),
    ("0x1F", true),
    ("0o17", false),
    ("0755", false),
    ("1.5", true),
    ("-0.25", true),
    ("1.0e+3", true),
    ("1e3", false),
    (".5", true),
    ("+.5", false),
    ("true", true),
    ("False", true),
    ("TRUE", true),
    ("~", true),
    ("null", true),
    ("NULL", true),
    ("hello", true),
    ("two words", true),
    ("yes", false),
    ("off", false),
    ("x-y_z", true),
    ("a:b", true),
    ("12:30", false),
    ("2001-12-14", false),
    ("\"a\\tb\"", true),
    ("'it''s'", true),
    ("\"\\u00e9t\\u00e9\"", true),
    ("\"123\"", true),
    ("'true'", true),
    ("\"\"", true),
    ("!!str 12", true),
    ("!!int \"5\"", true),
    ("!!float 3", true),
    ("!!bool \"false\"", true),
    ("!!null \"\"", true),
];

/// Scalars that are safe inside flow collections too.
fn flow_safe(s: &str) -> bool {
    !s.contains(':') && !s.contains(' ') || s.starts_with('"') || s.starts_with('\'')
}

const KEYS: &[&str] = &[
    "name",
    "image",
    "a",
    "b2",
    "svc_x",
    "with-dash",
    "x.y",
    "\"quoted key\"",
    "'single'",
    "42",
    "on_off",
];

struct Gen {
    rng: Rng,
    out: String,
    anchors: Vec<String>,
    next_anchor: usize,
    /// Every scalar so far reads the same in YAML 1.1.
    pyyaml: bool,
}

impl Gen {
    fn scalar(&mut self, flow: bool) -> String {
        loop {
            let (s, same) = SCALARS[self.rng.below(SCALARS.len())];
            if flow && !flow_safe(s) {
                continue;
            }
            self.pyyaml &= same;
            return s.to_string();
        }
    }

    fn keys(&mut self, n: usize) -> Vec<&'static str> {
        let mut keys: Vec<&str> = Vec::new();
        while keys.len() < n {
            let k = KEYS[self.rng.below(KEYS.len())];
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        keys
    }

    fn flow(&mut self, depth: usize) -> String {
        match self.rng.below(if depth >= 3 { 1 } else { 3 }) {
            0 => self.scalar(true),
            1 => {
                let n = self.rng.below(4);
                let items: Vec<String> = (0..n).map(|_| self.flow(depth + 1)).collect();
                format!("[{}]", items.join(", "))
            }
            _ => {
                let n = self.rng.below(4);
                let keys = self.keys(n);
                let items: Vec<String> = keys
                    .iter()
                    .filter(|k| flow_safe(k))
                    .map(|k| format!("{k}: {}", self.flow(depth + 1)))
                    .collect();
                format!("{{{}}}", items.join(", "))
            }
        }
    }

    /// A value after `key:` or `-`: inline, or on the following lines.
    fn value(&mut self, indent: usize, depth: usize) -> String {
        let pad = " ".repeat(indent);
        let choice = if depth >= 4 {
            self.rng.below(2)
        } else {
            self.rng.below(7)
        };
        match choice {
            0 => format!(" {}\n", self.scalar(false)),
            1 => format!(" {}\n", self.flow(depth)),
            2 if !self.anchors.is_empty() => {
                let a = self.anchors[self.rng.below(self.anchors.len())].clone();
                format!(" *{a}\n")
            }
            3 => {
                let lines = 1 + self.rng.below(3);
                let style = if self.rng.chance(50) { "|" } else { ">" };
                let mut s = format!(" {style}\n");
                for i in 0..lines {
                    s.push_str(&format!("{pad}  line {i} of text\n"));
                }
                s
            }
            4 | 5 => {
                let anchor = self.rng.chance(30).then(|| {
                    self.next_anchor += 1;
                    format!("a{}", self.next_anchor)
                });
                let body = self.map(indent + 2, depth + 1);
                let head = match &anchor {
                    Some(a) => format!(" &{a}\n"),
                    None => "\n".to_string(),
                };
                if let Some(a) = anchor {
                    self.anchors.push(a);
                }
                head + &body
            }
            _ => format!("\n{}", self.seq(indent + 2, depth + 1)),
        }
    }

    fn map(&mut self, indent: usize, depth: usize) -> String {
        let pad = " ".repeat(indent);
        let mut s = String::new();
        if !self.anchors.is_empty() && self.rng.chance(20) {
            let a = self.anchors[self.rng.below(self.anchors.len())].clone();
            s.push_str(&format!("{pad}<<: *{a}\n"));
        }
        let n = 1 + self.rng.below(4);
        for k in self.keys(n) {
            let v = self.value(indent, depth);
            s.push_str(&format!("{pad}{k}:{v}"));
        }
        s
    }

    fn seq(&mut self, indent: usize, depth: usize) -> String {
        let pad = " ".repeat(indent);
        let mut s = String::new();
        for _ in 0..1 + self.rng.below(3) {
            if depth < 4 && self.rng.chance(30) {
                // `- key: value` with the rest of the mapping below it
                let body = self.map(indent + 2, depth + 1);
                s.push_str(&format!("{pad}- {}", &body[indent + 2..]));
            } else {
                let v = self.value(indent, depth);
                s.push_str(&format!("{pad}-{v}"));
            }
        }
        s
    }
}

fn generate(seed: u64) -> (String, bool) {
    let mut g = Gen {
        rng: Rng(seed),
        out: String::new(),
        anchors: Vec::new(),
        next_anchor: 0,
        pyyaml: true,
    };
    let doc = if g.rng.chance(10) {
        format!("{}\n", g.flow(0))
    } else {
        g.map(0, 0)
    };
    g.out = doc;
    (g.out, g.pyyaml)
}

#[test]
fn the_reader_agrees_with_ruamel_and_pyyaml_on_generated_documents() {
    let cases: usize = std::env::var("ENVGATE_YAML_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let seed: u64 = std::env::var("ENVGATE_YAML_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let tmp = tempfile::TempDir::new().unwrap();
    let docs: Vec<(PathBuf, String, bool)> = (0..cases)
        .map(|i| {
            let (text, pyyaml) = generate(seed.wrapping_mul(1_000_003).wrapping_add(i as u64));
            let p = tmp.path().join(format!("doc-{i}.yaml"));
            std::fs::write(&p, &text).unwrap();
            (p, text, pyyaml)
        })
        .collect();
    let files: Vec<PathBuf> = docs.iter().map(|d| d.0.clone()).collect();
    let ruamel = reference("ruamel", &files);
    let pyyaml = reference("pyyaml", &files);
    let (mut read, mut compared_pyyaml) = (0, 0);
    for ((path, text, same_in_1_1), (r, p)) in docs.iter().zip(ruamel.iter().zip(&pyyaml)) {
        let ours = envgate(text);
        match (&ours, r) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, b, "ruamel reads {} differently:\n{text}", path.display());
                read += 1;
            }
            (Err(_), Err(_)) => {}
            _ => panic!("envgate {ours:?}, ruamel {r:?} for {}:\n{text}", path.display()),
        }
        if *same_in_1_1 && let (Ok(a), Ok(b)) = (&ours, p) {
            assert_eq!(a, b, "PyYAML reads {} differently:\n{text}", path.display());
            compared_pyyaml += 1;
        }
    }
    assert!(
        read * 10 >= cases * 9,
        "only {read} of {cases} generated documents were read"
    );
    assert!(
        compared_pyyaml * 10 >= cases,
        "only {compared_pyyaml} compared with PyYAML"
    );
}

/// The differences the README documents, each pinned: YAML 1.2 (envgate,
/// ruamel) against YAML 1.1 (PyYAML), ruamel's own 1.1 leftovers, and the
/// values envgate refuses because JSON cannot hold them.
#[test]
fn documented_differences_are_exactly_these() {
    let err = json!("error");
    let nonfinite = |r: &str| json!({"$nonfinite": r});
    // scalar, envgate, ruamel (as check-jsonschema reads), PyYAML
    let table: Vec<(&str, Json, Json, Json)> = vec![
        ("0o755", json!(493), json!(493), json!("0o755")),
        ("0755", json!(755), json!(755), json!(493)),
        ("yes", json!("yes"), json!("yes"), json!(true)),
        ("off", json!("off"), json!("off"), json!(false)),
        ("1e3", json!(1000.0), json!(1000.0), json!("1e3")),
        ("+.5", json!(0.5), json!(0.5), json!("+.5")),
        ("12:30:00", json!("12:30:00"), json!("12:30:00"), json!(45000)),
        (
            "2001-12-14",
            json!("2001-12-14"),
            json!("2001-12-14"),
            json!({"$date": "2001-12-14"}),
        ),
        ("0b101", json!("0b101"), json!(5), json!(5)),
        ("1_000", json!("1_000"), json!(1000), json!(1000)),
        ("+0x1F", json!("+0x1F"), json!(31), json!(31)),
        ("._1", json!("._1"), json!(0.1), json!("._1")),
        (".inf", err.clone(), nonfinite("inf"), nonfinite("inf")),
        ("-.inf", err.clone(), nonfinite("-inf"), nonfinite("-inf")),
        (".nan", err.clone(), nonfinite("nan"), nonfinite("nan")),
    ];
    let tmp = tempfile::TempDir::new().unwrap();
    let files: Vec<PathBuf> = table
        .iter()
        .enumerate()
        .map(|(i, (s, ..))| {
            let p = tmp.path().join(format!("d{i}.yaml"));
            std::fs::write(&p, format!("v: {s}\n")).unwrap();
            p
        })
        .collect();
    let ruamel = reference("ruamel", &files);
    let pyyaml = reference("pyyaml", &files);
    let value = |r: &Result<Json, String>| r.as_ref().map_or(json!("error"), |v| v["v"].clone());
    for (i, (s, ours, r, p)) in table.iter().enumerate() {
        assert_eq!(&value(&envgate(&format!("v: {s}\n"))), ours, "envgate reads `{s}`");
        assert_eq!(&value(&ruamel[i]), r, "ruamel reads `{s}`");
        assert_eq!(&value(&pyyaml[i]), p, "PyYAML reads `{s}`");
    }
    // keys: check-jsonschema turns a boolean or null key into Python's text for it
    let p = tmp.path().join("keys.yaml");
    std::fs::write(&p, "true: 1\n~: 2\n").unwrap();
    assert_eq!(envgate("true: 1\n~: 2\n"), Ok(json!({"true": 1, "null": 2})));
    assert_eq!(reference("ruamel", &[p])[0], Ok(json!({"True": 1, "None": 2})));
}

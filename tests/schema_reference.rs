//! envgate's verdict against an established validator's: check-jsonschema
//! (from PyPI; `scripts/setup/schema.sh` installs it) on the schemas its
//! package vendors (GitHub workflows and actions, GitLab CI, Drone, Azure
//! Pipelines, Renovate, Mergify, compose, issue forms, Dependabot, Read the
//! Docs) and on small schemas of each draft. The documents under
//! `tests/schema_reference/` are written for these tests; each is then
//! mutated (a key inserted at any depth, inside arrays too; a value of another
//! type; a key dropped; an item appended) by a seeded generator, and every
//! document is judged by both. One check-jsonschema process per schema.
//!
//! With strictness off the verdicts must be equal. With strictness on,
//! envgate may only add unknown-key failures, each for a name that no
//! subschema anywhere in the schema declares.
//!
//! More cases: `ENVGATE_MUTATIONS=200 ENVGATE_MUTATION_SEED=7 cargo test --test schema_reference`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use envgate::config::manifest::FormatMode;
use envgate::config::schema::{Schema, SchemaOptions};
use envgate::source::SourceFile;
use serde_json::{Value as Json, json};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// One schema and the folder of documents written for it.
struct Set {
    dir: &'static str,
    schema: Source,
    /// check-jsonschema's `--regex-variant`.
    regex: &'static str,
}

enum Source {
    /// A schema check-jsonschema vendors, by file stem.
    Vendor(&'static str),
    /// A schema in this repository's test folder.
    Local(&'static str),
}

const SETS: &[Set] = &[
    Set {
        dir: "github-workflows",
        schema: Source::Vendor("github-workflows"),
        regex: "default",
    },
    Set {
        dir: "github-actions",
        schema: Source::Vendor("github-actions"),
        regex: "default",
    },
    Set {
        dir: "gitlab-ci",
        schema: Source::Vendor("gitlab-ci"),
        regex: "default",
    },
    Set {
        dir: "drone-ci",
        schema: Source::Vendor("drone-ci"),
        regex: "default",
    },
    // Its patterns use escapes ECMA-262 allows only without the `u` flag.
    Set {
        dir: "azure-pipelines",
        schema: Source::Vendor("azure-pipelines"),
        regex: "nonunicode",
    },
    Set {
        dir: "renovate",
        schema: Source::Vendor("renovate"),
        regex: "default",
    },
    Set {
        dir: "mergify",
        schema: Source::Vendor("mergify"),
        regex: "default",
    },
    Set {
        dir: "compose-spec",
        schema: Source::Vendor("compose-spec"),
        regex: "default",
    },
    Set {
        dir: "github-issue-forms",
        schema: Source::Vendor("github-issue-forms"),
        regex: "default",
    },
    Set {
        dir: "dependabot",
        schema: Source::Vendor("dependabot"),
        regex: "default",
    },
    Set {
        dir: "readthedocs",
        schema: Source::Vendor("readthedocs"),
        regex: "default",
    },
    Set {
        dir: "draft4",
        schema: Source::Local("draft4/schema.json"),
        regex: "default",
    },
    Set {
        dir: "draft6",
        schema: Source::Local("draft6/schema.json"),
        regex: "default",
    },
    Set {
        dir: "draft201909",
        schema: Source::Local("draft201909/schema.json"),
        regex: "default",
    },
    Set {
        dir: "draft202012",
        schema: Source::Local("draft202012/schema.json"),
        regex: "default",
    },
];

fn cases_dir() -> PathBuf {
    Path::new(ROOT).join("tests/schema_reference")
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// check-jsonschema's vendored schemas.
fn vendor() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = std::process::Command::new(python())
            .args([
                "-c",
                "import check_jsonschema, os; print(os.path.join(os.path.dirname(check_jsonschema.__file__), 'builtin_schemas', 'vendor'))",
            ])
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "check-jsonschema is not installed: run `bash scripts/setup/schema.sh`\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

fn schema_path(set: &Set) -> PathBuf {
    match set.schema {
        Source::Vendor(stem) => vendor().join(format!("{stem}.json")),
        Source::Local(rel) => cases_dir().join(rel),
    }
}

/// Which of `files` check-jsonschema finds valid.
fn reference(schema: &Path, files: &[PathBuf], regex: &str, formats: bool) -> HashMap<PathBuf, bool> {
    let mut cmd = std::process::Command::new(python());
    cmd.args(["-m", "check_jsonschema", "--schemafile"]).arg(schema).args([
        "--regex-variant",
        regex,
        "-o",
        "json",
        "--traceback-mode",
        "short",
    ]);
    if !formats {
        cmd.args(["--disable-formats", "*"]);
    }
    let out = cmd.args(files).output().expect("check-jsonschema runs");
    let report: Json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check-jsonschema on {}: {e}\n{}\n{}",
            schema.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let parse_errors = report["parse_errors"].as_array().cloned().unwrap_or_default();
    assert!(
        parse_errors.is_empty(),
        "check-jsonschema could not read: {parse_errors:?}"
    );
    let invalid: BTreeSet<PathBuf> = report["errors"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e["filename"].as_str().map(PathBuf::from))
        .collect();
    files.iter().map(|f| (f.clone(), !invalid.contains(f))).collect()
}

fn compile(set: &Set, strict: bool, formats: FormatMode) -> Schema {
    let path = schema_path(set);
    let file = SourceFile::new(path.to_string_lossy(), std::fs::read_to_string(&path).unwrap());
    let options = SchemaOptions {
        strict,
        formats,
        schema_dirs: Vec::new(),
    };
    match Schema::from_file(Path::new(ROOT), file, &options) {
        Ok(s) => s,
        Err(ps) => panic!(
            "{}: {:?}",
            path.display(),
            ps.iter().map(|p| &p.message).collect::<Vec<_>>()
        ),
    }
}

/// envgate's findings for one document: (code, key) pairs.
fn judge(schema: &Schema, path: &Path) -> Vec<(String, String, String)> {
    let file = SourceFile::new(path.to_string_lossy(), std::fs::read_to_string(path).unwrap());
    let findings = schema
        .check_document(&file)
        .unwrap_or_else(|p| panic!("{}: {}", path.display(), p.message));
    findings
        .into_iter()
        .map(|f| (f.problem.code, f.key.unwrap_or_default(), f.problem.message))
        .collect()
}

/// A tiny deterministic generator (splitmix64): the same seed, the same cases.
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
}

/// Every location in a value: (pointer segments, is object, is array).
fn locations(v: &Json, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, bool, bool)>) {
    out.push((path.clone(), v.is_object(), v.is_array()));
    match v {
        Json::Object(o) => {
            for (k, c) in o {
                path.push(k.clone());
                locations(c, path, out);
                path.pop();
            }
        }
        Json::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                path.push(i.to_string());
                locations(c, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn at<'a>(v: &'a mut Json, path: &[String]) -> &'a mut Json {
    path.iter().fold(v, |cur, seg| match cur {
        Json::Object(o) => o.get_mut(seg).unwrap(),
        Json::Array(a) => &mut a[seg.parse::<usize>().unwrap()],
        _ => unreachable!("locations lead to containers"),
    })
}

/// Names a mutation inserts: unknown ones, and names declared elsewhere in
/// most schemas (so "declared, but not here" is exercised too).
const NAMES: &[&str] = &[
    "zz_unknown",
    "bogus",
    "nmae",
    "name",
    "image",
    "type",
    "enabled",
    "steps",
    "x-extra",
];

fn values(rng: &mut Rng) -> Json {
    [
        json!(1),
        json!("text"),
        json!(true),
        json!(null),
        json!([]),
        json!({}),
        json!(2.5),
        json!(["a"]),
    ][rng.below(8)]
    .clone()
}

/// One mutation of a valid document.
fn mutate(doc: &Json, rng: &mut Rng) -> Json {
    let mut doc = doc.clone();
    let mut locs = Vec::new();
    locations(&doc, &mut Vec::new(), &mut locs);
    for _ in 0..20 {
        match rng.below(4) {
            0 => {
                let objects: Vec<_> = locs.iter().filter(|l| l.1).collect();
                let (path, ..) = objects[rng.below(objects.len())];
                let name = NAMES[rng.below(NAMES.len())];
                if let Json::Object(o) = at(&mut doc, path)
                    && !o.contains_key(name)
                {
                    o.insert(name.into(), values(rng));
                    return doc;
                }
            }
            1 => {
                let (path, ..) = &locs[1 + rng.below(locs.len() - 1)];
                let slot = at(&mut doc, path);
                let new = values(rng);
                if std::mem::discriminant(slot) != std::mem::discriminant(&new) {
                    *slot = new;
                    return doc;
                }
            }
            2 => {
                let objects: Vec<_> = locs.iter().filter(|l| l.1).collect();
                let (path, ..) = objects[rng.below(objects.len())];
                if let Json::Object(o) = at(&mut doc, path)
                    && !o.is_empty()
                {
                    let k = o.keys().nth(rng.below(o.len())).unwrap().clone();
                    o.shift_remove(&k);
                    return doc;
                }
            }
            _ => {
                let arrays: Vec<_> = locs.iter().filter(|l| l.2).collect();
                if !arrays.is_empty() {
                    let (path, ..) = arrays[rng.below(arrays.len())];
                    if let Json::Array(a) = at(&mut doc, path) {
                        let item = if !a.is_empty() && rng.below(2) == 0 {
                            let mut copy = a[rng.below(a.len())].clone();
                            if let Json::Object(o) = &mut copy {
                                o.insert(NAMES[rng.below(NAMES.len())].into(), values(rng));
                            }
                            copy
                        } else {
                            values(rng)
                        };
                        a.push(item);
                        return doc;
                    }
                }
            }
        }
    }
    doc
}

/// A key as envgate displays it (`a.b[0]."x.y"`) back into segments, each
/// with whether it is an array index.
fn segments(key: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut chars = key.chars().peekable();
    let mut cur = String::new();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                for d in chars.by_ref() {
                    if d == '"' {
                        break;
                    }
                    cur.push(d);
                }
            }
            '.' => out.push((std::mem::take(&mut cur), false)),
            '[' => {
                if !cur.is_empty() {
                    out.push((std::mem::take(&mut cur), false));
                }
                let index: String = chars.by_ref().take_while(|&d| d != ']').collect();
                out.push((index, true));
                if chars.peek() == Some(&'.') {
                    chars.next();
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push((cur, false));
    }
    out
}

/// For each unknown key, whether some subschema at its location declares
/// (or admits) it, by an oracle written apart from envgate (declared.py).
fn declared_where_reported(schema: &Path, keys: &[String]) -> Vec<bool> {
    if keys.is_empty() {
        return Vec::new();
    }
    let queries: Vec<Json> = keys
        .iter()
        .map(|k| {
            let mut segs = segments(k);
            let (name, _) = segs.pop().unwrap();
            json!({"parent": segs, "name": name})
        })
        .collect();
    let mut child = std::process::Command::new(python())
        .arg(cases_dir().join("declared.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let request = json!({"schema": schema, "queries": queries}).to_string();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), request.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "declared.py failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

struct Judged {
    set: usize,
    path: PathBuf,
    written: bool,
    reference: bool,
    lenient: Vec<(String, String, String)>,
    strict: Vec<(String, String, String)>,
}

/// Every document of every set, judged by check-jsonschema and by envgate
/// with strictness off and on (formats off on both sides).
fn judged() -> &'static Vec<Judged> {
    static ALL: OnceLock<Vec<Judged>> = OnceLock::new();
    ALL.get_or_init(|| {
        let per_doc: usize = std::env::var("ENVGATE_MUTATIONS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(25);
        let seed: u64 = std::env::var("ENVGATE_MUTATION_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        let tmp = Box::leak(Box::new(tempfile::TempDir::new().unwrap()));
        let mut all = Vec::new();
        let results: Vec<Vec<Judged>> = std::thread::scope(|scope| {
            let handles: Vec<_> = SETS
                .iter()
                .enumerate()
                .map(|(i, set)| {
                    let tmp = tmp.path().join(set.dir);
                    scope.spawn(move || judge_set(i, set, &tmp, per_doc, seed))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in results {
            all.extend(r);
        }
        all
    })
}

fn judge_set(i: usize, set: &Set, tmp: &Path, per_doc: usize, seed: u64) -> Vec<Judged> {
    std::fs::create_dir_all(tmp).unwrap();
    let lenient = compile(set, false, FormatMode::Annotate);
    let strict = compile(set, true, FormatMode::Annotate);
    let mut written: Vec<PathBuf> = std::fs::read_dir(cases_dir().join(set.dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                n.to_string_lossy().starts_with("valid-") || n.to_string_lossy().starts_with("invalid-")
            })
        })
        .collect();
    written.sort();
    let mut rng = Rng(seed ^ (i as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut files = written.clone();
    for w in written
        .iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("valid-"))
    {
        let text = std::fs::read_to_string(w).unwrap();
        let format = envgate::config::tree::Format::from_path(&w.to_string_lossy()).unwrap();
        let doc = envgate::config::parse::document(&SourceFile::new("d", text), format)
            .unwrap()
            .unwrap()
            .to_json();
        let stem = w.file_stem().unwrap().to_string_lossy().into_owned();
        for m in 0..per_doc {
            let p = tmp.join(format!("{stem}-m{m}.json"));
            std::fs::write(&p, serde_json::to_string_pretty(&mutate(&doc, &mut rng)).unwrap()).unwrap();
            files.push(p);
        }
    }
    let verdicts = reference(&schema_path(set), &files, set.regex, false);
    files
        .iter()
        .map(|f| Judged {
            set: i,
            path: f.clone(),
            written: written.contains(f),
            reference: verdicts[f],
            lenient: judge(&lenient, f),
            strict: judge(&strict, f),
        })
        .collect()
}

fn name(j: &Judged) -> String {
    let text = std::fs::read_to_string(&j.path).unwrap_or_default();
    format!("{} ({})\n{text}", j.path.display(), SETS[j.set].dir)
}

#[test]
fn written_documents_are_judged_as_their_names_say() {
    for j in judged().iter().filter(|j| j.written) {
        let valid = j.path.file_name().unwrap().to_string_lossy().starts_with("valid-");
        assert_eq!(
            j.reference,
            valid,
            "check-jsonschema disagrees with the file name: {}",
            name(j)
        );
    }
}

#[test]
fn verdicts_equal_check_jsonschema_with_strictness_off() {
    let all = judged();
    let mut wrong = Vec::new();
    for j in all {
        let envgate_valid = j.lenient.is_empty();
        if envgate_valid != j.reference {
            wrong.push(format!(
                "{}: check-jsonschema says {}, envgate {:?}",
                name(j),
                if j.reference { "valid" } else { "invalid" },
                j.lenient
            ));
        }
    }
    assert!(all.len() > 700, "only {} documents", all.len());
    assert!(
        wrong.is_empty(),
        "{} of {} verdicts differ:\n{}",
        wrong.len(),
        all.len(),
        wrong.join("\n\n")
    );
}

#[test]
fn strictness_only_adds_unknown_keys_that_no_subschema_declares() {
    let all = judged();
    let mut wrong = Vec::new();
    let mut unknown: HashMap<usize, Vec<(usize, String)>> = HashMap::new();
    for (i, j) in all.iter().enumerate() {
        if !j.reference && j.strict.is_empty() {
            wrong.push(format!("{}: a false pass with strictness on", name(j)));
        }
        for (code, key, _) in j.strict.iter().chain(&j.lenient) {
            if code == "envgate::schema::unknown-key" {
                unknown.entry(j.set).or_default().push((i, key.clone()));
            }
        }
        if j.reference && j.strict.iter().any(|(code, ..)| code != "envgate::schema::unknown-key") {
            wrong.push(format!("{}: strictness added {:?}", name(j), j.strict));
        }
        if j.written && j.reference && !j.strict.is_empty() {
            wrong.push(format!(
                "{}: a valid document fails with strictness on: {:?}",
                name(j),
                j.strict
            ));
        }
    }
    let mut checked = 0;
    for (set, reports) in &unknown {
        let keys: Vec<String> = reports.iter().map(|(_, k)| k.clone()).collect();
        let answers = declared_where_reported(&schema_path(&SETS[*set]), &keys);
        for ((i, key), declared) in reports.iter().zip(answers) {
            checked += 1;
            if declared {
                wrong.push(format!(
                    "{}: unknown key `{key}`, but the schema declares it there",
                    name(&all[*i])
                ));
            }
        }
    }
    assert!(checked > 100, "only {checked} unknown keys reported");
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn formats_assert_agrees_with_check_jsonschema_on_the_formats_it_checks() {
    let schema_file = cases_dir().join("formats/schema.json");
    let set = Set {
        dir: "formats",
        schema: Source::Local("formats/schema.json"),
        regex: "default",
    };
    let cases: &[(&str, Json)] = &[
        ("date", json!("2026-11-28")),
        ("date", json!("2026-13-01")),
        ("date_time", json!("2026-11-28T14:30:00Z")),
        ("date_time", json!("2026-11-28 14:30")),
        ("email", json!("ops@example.com")),
        ("email", json!("ops.example.com")),
        ("ipv4", json!("10.20.0.1")),
        ("ipv4", json!("10.20.0.256")),
        ("ipv6", json!("fd00::1")),
        ("ipv6", json!("fd00:::1")),
        ("regex", json!("^[a-z]+$")),
        ("regex", json!("([a-z]")),
        ("uuid", json!("123e4567-e89b-12d3-a456-426614174000")),
        ("uuid", json!("123e4567-e89b-12d3-a456")),
    ];
    let tmp = tempfile::TempDir::new().unwrap();
    let files: Vec<PathBuf> = cases
        .iter()
        .enumerate()
        .map(|(i, (key, value))| {
            let p = tmp.path().join(format!("case-{i}.json"));
            std::fs::write(&p, json!({ *key: value }).to_string()).unwrap();
            p
        })
        .collect();
    let verdicts = reference(&schema_file, &files, "default", true);
    let assert = compile(&set, true, FormatMode::Assert);
    let annotate = compile(&set, true, FormatMode::Annotate);
    let mut invalid = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert_eq!(
            judge(&assert, f).is_empty(),
            verdicts[f],
            "formats = \"assert\": {text}"
        );
        assert!(judge(&annotate, f).is_empty(), "formats = \"annotate\": {text}");
        invalid += usize::from(!verdicts[f]);
    }
    assert_eq!(invalid, cases.len() / 2);
}

#[test]
fn every_vendored_schema_compiles() {
    let mut failed = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(vendor())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    for p in &names {
        let file = SourceFile::new(p.to_string_lossy(), std::fs::read_to_string(p).unwrap());
        if let Err(ps) = Schema::from_file(Path::new(ROOT), Arc::clone(&file), &SchemaOptions::default()) {
            failed.push(format!(
                "{}: {:?}",
                p.display(),
                ps.iter().map(|p| &p.message).collect::<Vec<_>>()
            ));
        }
    }
    assert!(names.len() >= 20);
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

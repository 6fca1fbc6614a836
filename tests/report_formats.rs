//! Every report format, rendered from the one shared fixture
//! (`envgate::report::fixture`) and held as a golden file, plus the real
//! consumers of each machine format: junitparser, the SARIF multitool and
//! the SARIF 2.1.0 schema, prometheus_client's parser, headless Chromium.
//! A missing consumer fails its test: run `scripts/setup/reports.sh`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use envgate::config::secrets::Redactor;
use envgate::outcome::{Report, Status};
use envgate::report::{Format, fixture};
use envgate::source::SourceFile;
use serde_json::Value;

fn render(format: Format) -> String {
    render_report(format, &fixture::report())
}

fn render_report(format: Format, report: &Report) -> String {
    format.reporter().render(report, fixture::style())
}

fn snapshot(format: Format) {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(&regex::escape(env!("CARGO_PKG_VERSION")), "[VERSION]");
    settings.bind(|| insta::assert_snapshot!(format.name(), render(format)));
}

fn snapshot_path(format: Format) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/snapshots/report_formats__{}.snap", format.name()))
}

#[test]
fn human_matches_snapshot() {
    snapshot(Format::Human);
}
#[test]
fn json_matches_snapshot() {
    snapshot(Format::Json);
}
#[test]
fn junit_matches_snapshot() {
    snapshot(Format::Junit);
}
#[test]
fn markdown_matches_snapshot() {
    snapshot(Format::Markdown);
}
#[test]
fn sarif_matches_snapshot() {
    snapshot(Format::Sarif);
}
#[test]
fn github_matches_snapshot() {
    snapshot(Format::Github);
}
#[test]
fn html_matches_snapshot() {
    snapshot(Format::Html);
}
#[test]
fn prometheus_matches_snapshot() {
    snapshot(Format::Prometheus);
}
#[test]
fn tap_matches_snapshot() {
    snapshot(Format::Tap);
}

#[test]
fn every_format_is_registered_named_once_and_snapshotted() {
    let mut names = HashSet::new();
    for &format in Format::ALL {
        let name = format.name();
        assert!(names.insert(name), "two formats are named {name}");
        assert_eq!(Format::parse(name), Some(format), "{name} does not parse back");
        assert!(
            snapshot_path(format).exists(),
            "no golden file for --format {name}: add a `{name}_matches_snapshot` test and accept it with `cargo insta review`"
        );
        assert!(!render(format).trim().is_empty(), "--format {name} renders nothing");
    }
    let values = <Format as clap::ValueEnum>::value_variants();
    assert_eq!(values.len(), Format::ALL.len(), "Format::ALL misses a variant");
}

/// The fixture with a secret written into every field a secret could reach
/// (message, help, target, the source file behind a snippet), unredacted.
fn leaking_report(secret: &str) -> Report {
    let mut report = fixture::report();
    for env in &mut report.environments {
        for r in &mut env.results {
            r.message = format!("{} (got {secret})", r.message);
            r.help = Some(format!("connect with password={secret}"));
            r.target = Some(format!("postgres://app:{secret}@db.prod.example.com:5432/orders"));
            if let Some(p) = &mut r.problem {
                p.message = r.message.clone();
                p.help = r.help.clone();
                p.label = Some(format!("value {secret}"));
                // Same length, so the fixture's spans still point where they did.
                let text = fixture::PROD_TOML.replace("${secret:env:DATABASE_URL}", &format!("{secret:<26}"));
                assert!(text.contains(secret));
                p.src = Some(SourceFile::new("environments/prod.toml", text));
            }
        }
    }
    report
}

#[test]
fn no_format_shows_a_secret_once_the_pipeline_redacted_it() {
    const CANARY: &str = "CANARY-SECRET-123";
    let mut report = leaking_report(CANARY);
    for &format in Format::ALL {
        // Prometheus prints no free text: nothing there for a secret to ride.
        if format != Format::Prometheus {
            assert!(
                render_report(format, &report).contains(CANARY),
                "the canary never reaches --format {}",
                format.name()
            );
        }
    }
    let mut redactor = Redactor::default();
    redactor.add(CANARY);
    report.redact(&redactor);
    for &format in Format::ALL {
        let out = render_report(format, &report);
        assert!(
            !out.contains(CANARY),
            "--format {} shows the secret:\n{out}",
            format.name()
        );
        assert!(
            !out.contains("CANARY"),
            "--format {} shows part of the secret:\n{out}",
            format.name()
        );
    }
    let human = render_report(Format::Human, &report);
    assert!(
        human.contains("url = \"***") && !human.contains("****"),
        "the snippet masks the secret in place with a mask that does not tell its length:\n{human}"
    );
}

// ---- external consumers -------------------------------------------------

const SETUP: &str = "run `sudo bash scripts/setup/reports.sh` to install the report consumers";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Run a consumer; a missing program fails the test with the setup hint.
fn run(program: &str, args: &[&str]) -> Output {
    match Command::new(program).args(args).current_dir(repo()).output() {
        Ok(out) => out,
        Err(e) => panic!("cannot run {program} ({e}): {SETUP}"),
    }
}

fn run_ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("ModuleNotFoundError") {
        panic!("{program} {args:?}: a Python package is missing: {SETUP}\n{stderr}");
    }
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{}\n{stderr}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).expect("consumer output is UTF-8")
}

fn write_report(dir: &Path, format: Format, file: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, render(format)).unwrap();
    path
}

fn python(script: &str, args: &[&Path]) -> Value {
    let script = repo().join("tests/consumers").join(script);
    let mut all = vec![script.to_str().unwrap()];
    all.extend(args.iter().map(|p| p.to_str().unwrap()));
    serde_json::from_str(&run_ok("python3", &all)).expect("consumer prints JSON")
}

#[test]
fn junitparser_reads_suites_cases_and_failures() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_report(dir.path(), Format::Junit, "envgate.xml");
    let parsed = python("junit_parse.py", &[&path]);
    let report = fixture::report();

    let suites = parsed["suites"].as_array().unwrap();
    let names: Vec<_> = suites.iter().map(|s| s["name"].as_str().unwrap()).collect();
    let envs: Vec<_> = report.environments.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, envs);
    for (suite, env) in suites.iter().zip(&report.environments) {
        assert_eq!(suite["tests"], env.results.len(), "{suite}");
        assert_eq!(suite["cases"].as_array().unwrap().len(), env.results.len());
        assert_eq!(suite["failures"], env.summary.fail, "{suite}");
        assert_eq!(suite["skipped"], env.summary.skipped + env.summary.blocked, "{suite}");
        assert_eq!(suite["errors"], 0);
    }
    let total: usize = report.environments.iter().map(|e| e.results.len()).sum();
    assert_eq!(parsed["tests"], total);

    let prod = &suites[0]["cases"];
    let case = |name: &str| {
        prod.as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no case {name}"))
    };
    let timeout = case("schema/http.client.timeout");
    assert_eq!(timeout["classname"], "schema");
    assert_eq!(timeout["results"][0]["tag"], "failure");
    assert_eq!(
        timeout["results"][0]["message"],
        "bare number 30 for a duration: write \"30s\" or \"30ms\""
    );
    assert!(
        timeout["results"][0]["text"]
            .as_str()
            .unwrap()
            .contains("at: environments/prod.toml:2:11")
    );
    let db = case("probe/orders-db");
    let text = db["results"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("target: postgres://app:***@db.prod.example.com:5432/orders"),
        "{text}"
    );
    assert!(
        text.contains("attempts: 3") && text.contains("duration: 2004ms"),
        "{text}"
    );
    assert_eq!(db["time"], 2.004);
    assert_eq!(case("probe/orders-api")["results"][0]["tag"], "skipped");
    assert!(
        case("rule/min-pool-size")["system_out"]
            .as_str()
            .unwrap()
            .starts_with("warning: ")
    );
    assert_eq!(
        case("probe/cache")["results"].as_array().unwrap().len(),
        0,
        "flaky is a pass"
    );
}

#[test]
fn prometheus_client_parses_every_family() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_report(dir.path(), Format::Prometheus, "envgate.prom");
    let families = python("prometheus_parse.py", &[&path]);
    let report = fixture::report();

    for name in [
        "envgate_check_status",
        "envgate_check_duration_seconds",
        "envgate_env_success",
        "envgate_run_success",
        "envgate_run_duration_seconds",
        "envgate_run_timestamp_seconds",
    ] {
        assert_eq!(families[name]["type"], "gauge", "{name}: {families}");
        assert!(!families[name]["help"].as_str().unwrap().is_empty());
    }
    let status = families["envgate_check_status"]["samples"].as_array().unwrap();
    let total: usize = report.environments.iter().map(|e| e.results.len()).sum();
    assert_eq!(status.len(), total);
    let db = status
        .iter()
        .find(|s| s["labels"]["env"] == "prod" && s["labels"]["check"] == "probe/orders-db")
        .expect("prod orders-db series");
    assert_eq!(db["labels"]["status"], "fail");
    assert_eq!(db["labels"]["kind"], "postgres");
    assert_eq!(db["value"], 1.0);
    let durations = &families["envgate_check_duration_seconds"]["samples"];
    assert!(
        durations
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["labels"]["check"] == "probe/orders-db" && s["value"] == 2.004)
    );
    assert_eq!(families["envgate_run_success"]["samples"][0]["value"], 0.0);
    assert_eq!(
        families["envgate_run_timestamp_seconds"]["samples"][0]["value"],
        1_700_000_000.0
    );
}

#[test]
fn sarif_passes_the_multitool_and_the_official_schema() {
    let tool = repo().join(".tools/node_modules/@microsoft/sarif-multitool-linux");
    assert!(
        tool.join("Sarif.Multitool").exists(),
        "no SARIF multitool under .tools: {SETUP}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_report(dir.path(), Format::Sarif, "envgate.sarif");

    // The official schema, as shipped inside the multitool's package.
    let schema = tool.join("sarif-2.1.0.json");
    let out = run(
        "python3",
        &[
            repo().join("tests/consumers/sarif_schema.py").to_str().unwrap(),
            schema.to_str().unwrap(),
            path.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "SARIF does not match the 2.1.0 schema:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The multitool's validator: the schema again plus SARIF's own rules
    // (SARIF1xxx must hold, SARIF2xxx are advice). It exits 0 either way and
    // writes its findings as SARIF.
    let findings = dir.path().join("validation.sarif");
    run_ok(
        tool.join("Sarif.Multitool").to_str().unwrap(),
        &[
            "validate",
            path.to_str().unwrap(),
            "--output",
            findings.to_str().unwrap(),
            "--log",
            "ForceOverwrite",
        ],
    );
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&findings).unwrap()).unwrap();
    let problems: Vec<String> = v["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        // SARIF's default level is `warning`.
        .filter(|r| r["level"] != "note" && r["level"] != "none")
        // envgate has no home page to name in `informationUri` until the
        // package declares a repository.
        .filter(|r| {
            !(env!("CARGO_PKG_REPOSITORY").is_empty() && r["message"]["id"] == "Warning_ProvideToolnformationUri")
        })
        .map(|r| format!("{} {} {}", r["level"], r["ruleId"], r["message"]))
        .collect();
    assert!(
        problems.is_empty(),
        "the SARIF multitool objects:\n{}",
        problems.join("\n")
    );
    assert_eq!(v["runs"][0]["invocations"][0]["executionSuccessful"], true);
}

/// Headless Chromium, isolated from the network and the user's profile.
fn chromium(profile: &Path, args: &[&str]) -> String {
    let mut all = vec![
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
    ];
    let profile = format!("--user-data-dir={}", profile.display());
    all.push(&profile);
    all.extend(args);
    run_ok("chromium", &all)
}

/// `(status, hidden)` of every check row in a DOM dump.
fn rows(dom: &str) -> Vec<(String, bool)> {
    let re = regex::Regex::new(r#"<tr [^>]*data-status="(\w+)"[^>]*>"#).unwrap();
    re.captures_iter(dom)
        .map(|c| (c[1].to_string(), c[0].contains(" hidden")))
        .collect()
}

#[test]
fn chromium_shows_failures_and_filters_from_the_url() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_report(dir.path(), Format::Html, "envgate.html");
    let url = format!("file://{}", path.display());
    let report = fixture::report();
    let total: usize = report.environments.iter().map(|e| e.results.len()).sum();

    let all = chromium(&dir.path().join("p1"), &["--dump-dom", &url]);
    let shown = rows(&all);
    assert_eq!(shown.len(), total, "{all}");
    assert!(shown.iter().all(|(_, hidden)| !hidden), "no filter, every row shows");
    assert_eq!(shown[0].0, "fail", "failures come first");
    assert!(
        all.contains(&format!("{total} of {total} checks shown")),
        "the script ran"
    );

    let fails = chromium(
        &dir.path().join("p2"),
        &["--dump-dom", &format!("{url}#status=fail&env=prod")],
    );
    let fail_count = report.environments[0]
        .results
        .iter()
        .filter(|r| r.status == Status::Fail)
        .count();
    for (status, hidden) in rows(&fails) {
        assert_eq!(
            hidden,
            status != "fail",
            "status={status} hidden={hidden} under #status=fail"
        );
    }
    assert!(
        fails.contains(&format!("{fail_count} of {total} checks shown")),
        "{fails}"
    );

    let search = chromium(&dir.path().join("p3"), &["--dump-dom", &format!("{url}#q=ORDERS-DB")]);
    let visible = rows(&search).iter().filter(|(_, hidden)| !hidden).count();
    // orders-db in prod and staging, plus orders-api whose message names it.
    assert_eq!(visible, 3, "{search}");

    // For a person to look at: target/tmp/report-html.png.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-html.png");
    chromium(
        &dir.path().join("p4"),
        &[
            "--window-size=1280,1400",
            &format!("--screenshot={}", shot.display()),
            &url,
        ],
    );
    assert!(
        std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false),
        "no screenshot at {}",
        shot.display()
    );
}

#[test]
fn github_format_appends_the_markdown_report_to_the_step_summary() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("step-summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let envgate = |args: &[&str]| {
        assert_cmd::Command::cargo_bin("envgate")
            .unwrap()
            .current_dir(repo())
            .env_clear()
            .env("GITHUB_STEP_SUMMARY", &summary)
            .args(args)
            .output()
            .unwrap()
    };

    let out = envgate(&["validate", "--format", "json"]);
    assert!(
        out.status.code().is_some_and(|c| c < 2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&summary).unwrap(),
        "earlier step\n",
        "only the github format writes the summary"
    );

    let out = envgate(&["validate", "--format", "github"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .last()
            .unwrap_or("")
            .starts_with("::notice title=envgate::"),
        "{stdout}"
    );
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(
        text.starts_with("earlier step\n### "),
        "appended, not overwritten:\n{text}"
    );
    assert!(
        text.contains(" envgate: ") && text.contains("| status | check |"),
        "{text}"
    );
}

//! `action.yml`: parsed as a runner would, and its shell steps run here
//! with the variables a GitHub runner sets.

use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn action() -> Yaml {
    let text = std::fs::read_to_string(Path::new(ROOT).join("action.yml")).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

fn step<'a>(a: &'a Yaml, name: &str) -> &'a Yaml {
    a["runs"]["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no step {name}"))
}

#[test]
fn action_yml_is_a_composite_action_with_its_inputs_and_outputs() {
    let a = action();
    assert_eq!(a["runs"]["using"].as_str(), Some("composite"));
    for input in ["command", "args", "sarif"] {
        assert!(!a["inputs"][input]["description"].is_badvalue(), "input {input}");
    }
    assert_eq!(a["inputs"]["command"]["default"].as_str(), Some("validate"));
    for output in ["exit-code", "sarif"] {
        assert!(
            a["outputs"][output]["value"]
                .as_str()
                .unwrap()
                .contains("steps.run.outputs")
        );
    }
    assert_eq!(step(&a, "Cache envgate")["uses"].as_str(), Some("actions/cache@v4"));
    assert_eq!(
        step(&a, "Upload SARIF")["uses"].as_str(),
        Some("github/codeql-action/upload-sarif@v3")
    );
    for s in a["runs"]["steps"].as_vec().unwrap() {
        if let Some(run) = s["run"].as_str() {
            assert_eq!(s["shell"].as_str(), Some("bash"), "a composite run step needs a shell");
            assert!(
                !run.contains("${{"),
                "inputs reach scripts through env, never spliced into code: {run}"
            );
            let script = run.split('"').nth(1).unwrap().replace("$GITHUB_ACTION_PATH/", "");
            assert!(Path::new(ROOT).join(&script).is_file(), "{script}");
        }
    }
}

struct Runner {
    dir: tempfile::TempDir,
    root: PathBuf,
}

/// A runner's files and a tool cache already holding this envgate (what
/// actions/cache restores).
fn runner() -> Runner {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("toolcache/envgate/v0");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_envgate"), root.join("bin/envgate")).unwrap();
    for f in ["summary.md", "output", "path"] {
        std::fs::write(dir.path().join(f), "").unwrap();
    }
    Runner { dir, root }
}

/// Runs a step's `run:` with its `env:` resolved as a runner would.
fn run_step(r: &Runner, name: &str, cwd: &Path, inputs: &[(&str, &str)]) -> (i32, String) {
    let a = action();
    let s = step(&a, name);
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(s["run"].as_str().unwrap())
        .current_dir(cwd)
        .env_remove("NO_COLOR")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_ACTION_PATH", ROOT)
        .env("GITHUB_WORKSPACE", cwd)
        .env("GITHUB_STEP_SUMMARY", r.dir.path().join("summary.md"))
        .env("GITHUB_OUTPUT", r.dir.path().join("output"))
        .env("GITHUB_PATH", r.dir.path().join("path"))
        .env("ENVGATE_ROOT", &r.root);
    for (k, v) in inputs {
        cmd.env(format!("INPUT_{}", k.to_uppercase()), v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn read(r: &Runner, f: &str) -> String {
    std::fs::read_to_string(r.dir.path().join(f)).unwrap()
}

#[test]
fn the_install_step_uses_the_cached_binary_and_puts_it_on_the_path() {
    let r = runner();
    let (code, out) = run_step(&r, "Install envgate", Path::new(ROOT), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "envgate: using the cached envgate {}",
            env!("CARGO_PKG_VERSION")
        )),
        "{out}"
    );
    assert_eq!(read(&r, "path").trim(), r.root.join("bin").display().to_string());
}

#[test]
fn the_run_step_annotates_summarises_writes_sarif_and_reports_the_exit_code() {
    let r = runner();
    let broken = Path::new(ROOT).join("examples/broken");
    let sarif = r.dir.path().join("envgate.sarif");
    let (code, out) = run_step(
        &r,
        "Run envgate",
        &broken,
        &[
            ("command", "validate"),
            ("args", "--env staging"),
            ("sarif", sarif.to_str().unwrap()),
        ],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("::error file=environments/staging.toml,line=5"), "{out}");
    let summary = read(&r, "summary.md");
    assert!(summary.starts_with("### ❌ envgate"), "{summary}");
    let outputs = read(&r, "output");
    assert!(outputs.contains("exit-code=1\n"), "{outputs}");
    assert!(outputs.contains(&format!("sarif={}\n", sarif.display())), "{outputs}");
    let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    assert_eq!(s["version"], "2.1.0");

    let r = runner();
    let (code, out) = run_step(
        &r,
        "Run envgate",
        Path::new(ROOT),
        &[("command", "validate"), ("args", "")],
    );
    assert_eq!(code, 0, "{out}");
    assert!(read(&r, "output").contains("exit-code=0\n"));
    assert!(
        read(&r, "summary.md").starts_with("### ✅ envgate"),
        "{}",
        read(&r, "summary.md")
    );

    let (code, out) = run_step(&r, "Run envgate", Path::new(ROOT), &[("command", "rm -rf /")]);
    assert_eq!(code, 2);
    assert!(
        out.contains("::error title=envgate::command must be validate or check"),
        "{out}"
    );
}

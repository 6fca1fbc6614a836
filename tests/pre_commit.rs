//! The pre-commit hook, run by the real `pre-commit` (PyPI;
//! scripts/setup/precommit.sh) with `try-repo` against a temporary git
//! repository: a bad overlay is refused with the diagnostic, a good one passes.

use std::path::{Path, PathBuf};
use std::process::Command;

const PRE_COMMIT: &str = "/opt/envgate-tools/precommit-venv/bin/pre-commit";

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git").current_dir(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn try_repo(dir: &Path, home: &Path) -> (i32, String) {
    assert!(
        Path::new(PRE_COMMIT).exists(),
        "no pre-commit at {PRE_COMMIT}: run `sudo bash scripts/setup/precommit.sh`"
    );
    let bin_dir = PathBuf::from(env!("CARGO_BIN_EXE_envgate"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new(PRE_COMMIT)
        .current_dir(dir)
        .args([
            "try-repo",
            env!("CARGO_MANIFEST_DIR"),
            "envgate-validate-system",
            "--all-files",
            "--color",
            "never",
        ])
        .env("PATH", path)
        .env("PRE_COMMIT_HOME", home)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn the_hook_passes_a_good_project_and_blocks_a_bad_overlay_with_the_diagnostic() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let home = tmp.path().join("pre-commit-home");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    let init = Command::new(env!("CARGO_BIN_EXE_envgate"))
        .current_dir(&repo)
        .args(["init", "--minimal", "--name", "shop"])
        .arg(".")
        .output()
        .unwrap();
    assert!(init.status.success());
    git(&repo, &["add", "-A"]);

    let (code, out) = try_repo(&repo, &home);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("envgate validate") && out.contains("Passed"), "{out}");

    std::fs::write(repo.join("environments/prod.toml"), "[http]\nrequest_timeout = 30\n").unwrap();
    git(&repo, &["add", "-A"]);
    let (code, out) = try_repo(&repo, &home);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("Failed"), "{out}");
    assert!(out.contains("bare number 30 for a duration"), "{out}");
    assert!(out.contains("environments/prod.toml:2"), "{out}");
}

#[test]
fn the_hooks_file_declares_both_hooks_for_the_project_files() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(".pre-commit-hooks.yaml")).unwrap();
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).unwrap();
    let hooks = docs[0].as_vec().unwrap();
    let ids: Vec<&str> = hooks.iter().map(|h| h["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["envgate-validate", "envgate-validate-system"]);
    let re = regex::Regex::new(hooks[0]["files"].as_str().unwrap()).unwrap();
    for f in [
        "envgate.toml",
        "environments/prod.toml",
        "schemas/a.json",
        "checks/rules.toml",
        "svc/envgate.toml",
    ] {
        assert!(re.is_match(f), "{f}");
    }
    assert!(!re.is_match("src/main.rs"));
    assert_eq!(hooks[0]["language"].as_str(), Some("rust"));
    assert_eq!(hooks[0]["pass_filenames"].as_bool(), Some(false));
}

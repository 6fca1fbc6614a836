//! Getting envgate: the package that would be published, the installed
//! binary's version, shell completions and the manual page, used as a user
//! uses them (a real bash, a real `man`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_envgate")
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_built_binary_reports_the_package_version() {
    let out = Command::new(bin()).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("envgate {}", env!("CARGO_PKG_VERSION"))
    );
}

/// Built for the machine it runs on with glibc 2.36 or later, the binary
/// packs its relative relocations (a few kilobytes instead of 1.5 MB); on
/// an older glibc, which could not load such a binary, it does not.
#[test]
fn the_binary_packs_its_relocations_where_the_host_glibc_reads_them() {
    let ldd = Command::new("ldd").arg("--version").output().unwrap();
    let first = String::from_utf8_lossy(&ldd.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let version: Vec<u32> = first
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .split('.')
        .filter_map(|p| p.parse().ok())
        .collect();
    let portable = option_env!("ENVGATE_PORTABLE_LINK").is_some_and(|v| !v.is_empty());
    // A position-dependent build has no relative relocations left to pack.
    let packed = version.as_slice() >= [2, 36].as_slice() && !portable && !no_pie();
    let dynamic = Command::new("readelf").args(["--dynamic", bin()]).output().unwrap();
    assert!(dynamic.status.success());
    let text = String::from_utf8_lossy(&dynamic.stdout);
    assert_eq!(text.contains("(RELR)"), packed, "{first}\n{text}");
    let sections = Command::new("readelf")
        .args(["--section-headers", "--wide", bin()])
        .output()
        .unwrap();
    let sections = String::from_utf8_lossy(&sections.stdout);
    assert_eq!(sections.contains(".relr.dyn"), packed, "{sections}");
}

/// Whether this build asked for a position-dependent executable.
fn no_pie() -> bool {
    option_env!("ENVGATE_NO_PIE").is_some_and(|v| !v.is_empty() && v != "0")
}

#[test]
fn the_binary_is_position_independent_unless_built_with_envgate_no_pie() {
    let header = Command::new("readelf").args(["--file-header", bin()]).output().unwrap();
    assert!(header.status.success());
    let text = String::from_utf8_lossy(&header.stdout);
    let kind = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Type:"))
        .map(str::trim)
        .unwrap_or_default()
        .to_string();
    let expected = if no_pie() { "EXEC" } else { "DYN" };
    assert!(kind.starts_with(expected), "Type: {kind}\n{text}");
}

#[test]
fn the_published_package_ships_code_example_and_licence_but_no_tests() {
    let out = Command::new(env!("CARGO"))
        .args([
            "package",
            "--locked",
            "--allow-dirty",
            "--no-verify",
            "--offline",
            "--list",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list = String::from_utf8_lossy(&out.stdout);
    let files: Vec<&str> = list.lines().collect();
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "LICENSE",
        "README.md",
        "src/main.rs",
        "src/report/html.css",
        "envgate.toml",
        "environments/base.toml",
        "schemas/orders-api.schema.json",
        "checks/probes.toml",
    ] {
        assert!(files.contains(&needed), "{needed} missing from the package:\n{list}");
    }
    for f in &files {
        assert!(
            !f.starts_with("tests/")
                && !f.starts_with("bench/")
                && !f.starts_with("examples/")
                && !f.starts_with("scripts/"),
            "{f} should not ship:\n{list}"
        );
    }
}

#[test]
fn cargo_toml_has_what_a_registry_page_needs() {
    let manifest: toml::Table = std::fs::read_to_string(root().join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let package = manifest["package"].as_table().unwrap();
    for key in [
        "description",
        "license",
        "repository",
        "homepage",
        "keywords",
        "categories",
        "readme",
    ] {
        assert!(package.contains_key(key), "package.{key} missing");
    }
    assert!(
        package["keywords"].as_array().unwrap().len() <= 5,
        "crates.io takes at most 5 keywords"
    );
    assert!(root().join("LICENSE").is_file());
}

/// Runs `script` in a real, non-interactive bash with the completion for
/// envgate loaded and the built binary first on PATH.
fn bash(dir: &Path, script: &str) -> String {
    let completion = Command::new(bin()).args(["completions", "bash"]).output().unwrap();
    assert!(completion.status.success());
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("envgate.bash");
    std::fs::write(&file, &completion.stdout).unwrap();
    let bin_dir = PathBuf::from(bin()).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash")
        .arg("--norc")
        .arg("--noprofile")
        .arg("-c")
        .arg(format!("source {}\n{script}", file.display()))
        .env("PATH", path)
        .current_dir(dir)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "bash failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What bash offers after typing `line` (the last word is the one being completed).
fn complete(dir: &Path, line: &str) -> Vec<String> {
    let mut words: Vec<String> = line.split(' ').map(|w| format!("'{w}'")).collect();
    if words.is_empty() {
        words.push("''".into());
    }
    let script = format!(
        "COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}\n\
         f=$(complete -p envgate | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p')\n\
         \"$f\" envgate \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        words = words.join(" "),
        cword = words.len() - 1,
    );
    let mut got: Vec<String> = bash(dir, &script)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect();
    got.sort();
    got
}

#[test]
fn bash_completion_is_registered_for_envgate() {
    let out = bash(root(), "complete -p envgate");
    assert!(out.contains("-F _envgate_with_project"), "{out}");
    assert!(out.trim_end().ends_with(" envgate"), "{out}");
}

#[test]
fn bash_completes_subcommands() {
    assert_eq!(complete(root(), "envgate val"), ["validate"]);
    let all = complete(root(), "envgate ");
    for sub in ["check", "validate", "render", "diff", "completions", "man", "probe"] {
        assert!(all.contains(&sub.to_string()), "{sub} not offered: {all:?}");
    }
    assert!(
        !all.iter().any(|w| w.starts_with("__")),
        "hidden subcommand offered: {all:?}"
    );
}

#[test]
fn bash_completes_options_of_a_subcommand() {
    assert_eq!(complete(root(), "envgate validate --fa"), ["--fail-on"]);
    assert_eq!(complete(root(), "envgate check --fail-on "), ["fail", "warn"]);
}

#[test]
fn bash_completes_this_projects_environment_names() {
    assert_eq!(complete(root(), "envgate check --env "), ["local", "prod", "staging"]);
    assert_eq!(complete(root(), "envgate render -e st"), ["staging"]);
    assert_eq!(complete(root(), "envgate diff staging p"), ["prod"]);
}

#[test]
fn bash_completes_probe_names_and_rule_ids_for_only() {
    let got = complete(root(), "envgate check --only ");
    assert!(got.contains(&"database".to_string()), "{got:?}");
    assert!(got.contains(&"retry-budget-within-timeout".to_string()), "{got:?}");
}

#[test]
fn bash_completes_the_environments_of_the_project_named_by_dash_c() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("proj");
    std::fs::create_dir_all(project.join("environments")).unwrap();
    std::fs::write(project.join("envgate.toml"), "[project]\nname = \"tiny\"\n").unwrap();
    std::fs::write(project.join("environments/base.toml"), "").unwrap();
    std::fs::write(project.join("environments/qa-eu.toml"), "").unwrap();
    std::fs::write(project.join("environments/qa-us.toml"), "").unwrap();
    // Outside any project: nothing to offer, and no error on the terminal.
    let outside = tmp.path();
    assert_eq!(complete(outside, "envgate check --env "), Vec::<String>::new());
    assert_eq!(
        complete(outside, &format!("envgate -C {} check --env qa", project.display())),
        ["qa-eu", "qa-us"]
    );
}

#[test]
fn every_shell_gets_a_completion_script() {
    for (shell, marker) in [
        ("bash", "_envgate_with_project"),
        ("zsh", "_envgate_envs"),
        ("fish", "__complete envs"),
        ("powershell", "Register-ArgumentCompleter"),
        ("elvish", "edit:completion:arg-completer[envgate]"),
    ] {
        let out = Command::new(bin()).args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(marker), "{shell} script lacks {marker}");
    }
    let out = Command::new(bin()).args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values"));
}

#[test]
fn the_manual_page_renders_with_man() {
    let tmp = tempfile::tempdir().unwrap();
    let page = tmp.path().join("envgate.1");
    let out = Command::new(bin()).arg("man").output().unwrap();
    assert!(out.status.success());
    std::fs::write(&page, &out.stdout).unwrap();
    let man = Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
        .expect("man-db is installed (scripts/setup/install.sh)");
    assert!(man.status.success(), "{}", String::from_utf8_lossy(&man.stderr));
    let text = String::from_utf8_lossy(&man.stdout);
    assert!(text.contains("NAME"), "{text}");
    assert!(text.contains("envgate"), "{text}");
    assert!(text.contains("SUBCOMMANDS"), "{text}");
    assert!(text.contains("validate"), "{text}");
    assert!(text.contains("--project"), "{text}");
    assert!(!text.contains("__complete"), "hidden subcommand in the page: {text}");
}

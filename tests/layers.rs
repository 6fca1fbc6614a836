//! The crate's modules form layers and data flows one way: files →
//! assembled configuration with origins → findings → probes → events →
//! reporters. A module may use only modules of its own or a lower layer; this
//! test reads every `crate::` path in `src/` and fails on an upward edge.

use std::collections::BTreeSet;
use std::path::Path;

/// Bottom up. A module not listed here fails the test: place it.
const LAYERS: &[&[&str]] = &[
    &["source", "exit_codes", "net"],
    &["diagnostic"],
    &["findings", "select"],
    &["config"],
    &["outcome"],
    &["rules", "probes"],
    &["runner"],
    &["plan", "check"],
    &["report", "schemas"],
    &["audit"],
    &["serve"],
    &["cli"],
    &["commands"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level module a file under `src/` belongs to.
fn owner(rel: &Path) -> String {
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.trim_end_matches(".rs").to_string()
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every top-level module named after `crate::` in `text`, outside comments.
fn uses(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            if let Some(group) = after.strip_prefix('{') {
                // `crate::{config::units, probes}`: the first name of each part.
                let mut depth = 0;
                let mut start = true;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => start = true,
                        c if start && (c.is_alphanumeric() || c == '_') => {
                            let name: String = group[i..]
                                .chars()
                                .take_while(|c| c.is_alphanumeric() || *c == '_')
                                .collect();
                            out.insert(name);
                            start = false;
                        }
                        _ => {}
                    }
                }
            }
            let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                out.insert(name);
            }
            rest = after;
        }
    }
    out
}

#[test]
fn no_module_uses_a_module_of_a_higher_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut upward = Vec::new();
    for path in all {
        let rel = path.strip_prefix(&src).unwrap();
        let from = owner(rel);
        if matches!(from.as_str(), "lib" | "main") {
            continue;
        }
        let from_layer =
            layer(&from).unwrap_or_else(|| panic!("src/{} is in no layer: add `{from}` to LAYERS", rel.display()));
        let text = std::fs::read_to_string(&path).unwrap();
        for to in uses(&text) {
            if to == from {
                continue;
            }
            let to_layer =
                layer(&to).unwrap_or_else(|| panic!("`{to}` (used by src/{}) is in no layer", rel.display()));
            if to_layer > from_layer {
                upward.push(format!("src/{} uses crate::{to}", rel.display()));
            }
        }
    }
    assert!(upward.is_empty(), "upward edges:\n{}", upward.join("\n"));
}

#[test]
fn the_layer_check_sees_an_upward_edge() {
    let found = uses("use crate::report::Format; // crate::ignored\nlet x = crate::config::units::parse(s);");
    assert_eq!(found.into_iter().collect::<Vec<_>>(), ["config", "report"]);
    let found = uses("use crate::{outcome::Status, probes};");
    assert_eq!(found.into_iter().collect::<Vec<_>>(), ["outcome", "probes"]);
    assert!(layer("report") > layer("config"));
}

/// The sibling files a file under `src/` names: `super::NAME` or
/// `crate::<its module path>::NAME`, where `NAME.rs` or `NAME/` is beside it.
fn sibling_uses(path: &Path, src: &Path) -> BTreeSet<String> {
    let dir = path.parent().unwrap();
    let me = path.file_stem().unwrap().to_string_lossy().into_owned();
    let module: Vec<String> = dir
        .strip_prefix(src)
        .unwrap()
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let prefixes = ["super::".to_string(), format!("crate::{}::", module.join("::"))];
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        for prefix in &prefixes {
            let mut rest = code;
            while let Some(i) = rest.find(prefix.as_str()) {
                let after = &rest[i + prefix.len()..];
                let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                let sibling = dir.join(format!("{name}.rs")).exists() || dir.join(&name).is_dir();
                if !name.is_empty() && name != me && name != "mod" && sibling {
                    out.insert(name);
                }
                rest = after;
            }
        }
    }
    out
}

#[test]
fn no_files_of_one_module_use_each_other_in_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    // Within each directory: file stem → the siblings it uses.
    let mut graph: std::collections::BTreeMap<(std::path::PathBuf, String), BTreeSet<String>> = Default::default();
    for path in &all {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.parent() == Some(src.as_path()) || stem == "mod" {
            continue;
        }
        graph.insert((path.parent().unwrap().to_path_buf(), stem), sibling_uses(path, &src));
    }
    // A depth-first walk from every file; a file met again on the current
    // path closes a circle.
    fn walk(
        graph: &std::collections::BTreeMap<(std::path::PathBuf, String), BTreeSet<String>>,
        dir: &Path,
        at: &str,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == at) {
            let mut circle = path[i..].to_vec();
            circle.push(at.to_string());
            return Some(circle);
        }
        path.push(at.to_string());
        for next in graph.get(&(dir.to_path_buf(), at.to_string())).into_iter().flatten() {
            if let Some(c) = walk(graph, dir, next, path) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    for (dir, stem) in graph.keys() {
        if let Some(circle) = walk(&graph, dir, stem, &mut Vec::new()) {
            panic!(
                "files in src/{} use each other in a circle: {}",
                dir.strip_prefix(&src).unwrap().display(),
                circle.join(" -> ")
            );
        }
    }
}

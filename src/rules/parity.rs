//! `[parity]`: key paths present in one environment must exist in every
//! other (`required = ["database", ...]` prefixes, or `all = true`).

use std::collections::BTreeSet;

use crate::config::assemble::Assembled;
use crate::config::manifest::Parity;
use crate::config::merge::{Node, key_string};
use crate::diagnostic::Problem;
use crate::findings::{Category, Finding};
use crate::outcome::{CheckResult, Severity, Status};

/// One result per environment: pass, or fail listing exactly what it lacks
/// and where the other environments set it.
pub fn check(parity: &Parity, envs: &[&Assembled], reported: &super::Reported) -> Vec<(String, CheckResult)> {
    let already = |env: &str, path: &[String]| reported.get(env).is_some_and(|keys| keys.contains(&key_string(path)));
    let in_scope = |path: &[String]| {
        parity.all
            || parity.required.iter().any(|r| {
                let pre: Vec<&str> = r.split('.').collect();
                path.len() >= pre.len() && path.iter().zip(&pre).all(|(a, b)| a == b)
            })
    };
    // A key an environment's own checks reject (a typo the schema does not
    // know) is not one the others lack: it is reported once, where it is.
    let keys: Vec<BTreeSet<Vec<String>>> = envs
        .iter()
        .map(|a| {
            a.root
                .leaf_paths()
                .into_iter()
                .filter(|p| in_scope(p) && !already(&a.env, p))
                .collect()
        })
        .collect();
    let union: BTreeSet<Vec<String>> = keys.iter().flatten().cloned().collect();
    let mut out = Vec::new();
    for (i, a) in envs.iter().enumerate() {
        // A missing key the schema already reports (required) is not
        // reported again as a parity failure.
        let missing: Vec<&Vec<String>> = union
            .iter()
            .filter(|k| !keys[i].contains(*k) && !already(&a.env, k))
            .collect();
        if missing.is_empty() {
            out.push((
                a.env.clone(),
                CheckResult::pass(
                    Category::Rule,
                    "parity",
                    "parity",
                    format!("all {} parity keys present", union.len()),
                ),
            ));
            continue;
        }
        let described: Vec<String> = missing
            .iter()
            .map(|k| {
                let holders: Vec<String> = envs
                    .iter()
                    .zip(&keys)
                    .filter(|(_, ks)| ks.contains(*k))
                    .map(|(e, _)| match e.root.leaf(k) {
                        Some(l) => format!("{} ({})", e.env, l.origin),
                        None => e.env.clone(),
                    })
                    .collect();
                format!("{} (set in {})", key_string(k), holders.join(", "))
            })
            .collect();
        let first = missing[0];
        let table = &first[..first.len() - 1];
        let mut p = Problem::new(
            "envgate::rule::parity",
            format!(
                "parity: `{}` lacks {} key{} other environments set: {}",
                a.env,
                missing.len(),
                if missing.len() == 1 { "" } else { "s" },
                missing.iter().map(|k| key_string(k)).collect::<Vec<_>>().join(", ")
            ),
        )
        .label("missing keys belong here")
        .help(described.join("; "));
        p = match a.root.get(table) {
            Some(Node::Table { origins, .. }) if !origins.is_empty() => {
                let o = origins
                    .iter()
                    .rev()
                    .find(|o| o.layer == a.env)
                    .unwrap_or(origins.last().expect("non-empty"));
                p.at_origin(o)
            }
            _ => p.at(&a.overlay, 0, 0),
        };
        out.push((
            a.env.clone(),
            CheckResult::from_finding(
                Finding::new(Category::Rule, "parity".into(), Some(key_string(first)), p),
                Status::Fail,
                Severity::Error,
            ),
        ));
    }
    out
}

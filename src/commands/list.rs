//! `envgate list`: the environments, layers, schema units, rules, probes,
//! probe kinds, isolation and parity a project defines.

use std::io::Write;

use super::io;
use crate::config::manifest::SourceDef;
use crate::config::project::Project;
use crate::diagnostic::Problems;
use crate::exit_codes;
use crate::probes::def::Located;
use crate::rules::checks::{RuleSeverity, Scope};

/// Everything a project defines, one section after another.
pub fn list(p: &Project, out: &mut dyn Write) -> Result<i32, Problems> {
    let checks = crate::plan::Checks::load(p)?;
    let rules = crate::rules::Rules::new(p, checks.rules)?;
    let mut s = format!("project {}\n", p.manifest.project.name);
    environments(p, &mut s);
    layers(p, &mut s);
    schema(p, &mut s);
    rule_list(p, &rules, &mut s);
    probe_list(p, &checks.probes, &mut s);
    isolation_and_parity(p, &mut s);
    out.write_all(s.as_bytes()).map_err(io)?;
    Ok(exit_codes::OK)
}

/// The same, as one JSON document for scripts.
pub fn list_json(p: &Project, out: &mut dyn Write) -> Result<i32, Problems> {
    use serde_json::json;
    let checks = crate::plan::Checks::load(p)?;
    let rules = crate::rules::Rules::new(p, checks.rules)?;
    let environments: Vec<_> = p
        .environments
        .iter()
        .map(|env| {
            let rel = p.env_file(env);
            let extends = p.parsed(&rel, env).ok().flatten().and_then(|f| {
                f.table
                    .get("extends")
                    .and_then(|e| e.node.to_json().as_str().map(str::to_string))
            });
            json!({"name": env, "file": rel, "extends": extends})
        })
        .collect();
    let sources: Vec<_> = p
        .manifest
        .source
        .iter()
        .map(|src| {
            let (path, prefix, url) = match src {
                SourceDef::File { path, .. } => (Some(path.as_str()), None, None),
                SourceDef::Dotenv { path, prefix, .. } => (Some(path.as_str()), prefix.as_deref(), None),
                SourceDef::Env { prefix, .. } => (None, Some(prefix.as_str()), None),
                SourceDef::Http { url, .. } => (None, None, Some(crate::config::secrets::redact_url_passwords(url))),
            };
            json!({
                "name": src.name(),
                "kind": src.kind(),
                "path": path,
                "prefix": prefix,
                "url": url,
                "optional": src.optional(),
            })
        })
        .collect();
    let mut units = Vec::new();
    if let Some(schema) = &p.schema {
        collect_units(&schema.json, &mut Vec::new(), &mut units);
    }
    let rule_list: Vec<_> = rules
        .compiled
        .iter()
        .map(|c| {
            let d = &c.rule.def;
            json!({
                "id": c.id(),
                "severity": match d.severity { RuleSeverity::Error => "error", RuleSeverity::Warning => "warning" },
                "scope": match d.scope { Scope::Env => "env", Scope::AllEnvs => "all-envs" },
                "tags": d.tags,
                "message": d.message,
            })
        })
        .collect();
    let probes: Vec<_> = checks
        .probes
        .iter()
        .map(|l| {
            let d = &l.def;
            json!({
                "name": l.name,
                "kind": d.kind,
                "target": d.target.clone().or_else(|| l.schema_key.as_ref().map(|k| format!("${{{}}}", crate::config::merge::key_string(k)))),
                "envs": d.envs,
                "warn_in": d.warn_in,
                "depends_on": d.depends_on,
                "tags": d.tags,
            })
        })
        .collect();
    let isolation: serde_json::Map<String, serde_json::Value> = p
        .manifest
        .isolation
        .iter()
        .map(|(env, iso)| {
            (
                env.clone(),
                json!({"hosts": iso.hosts, "deny_unknown_hosts": iso.deny_unknown_hosts, "enforce": iso.enforce}),
            )
        })
        .collect();
    let doc = json!({
        "project": p.manifest.project.name,
        "environments": environments,
        "layers": {
            "base": p.base_file(),
            "environment": p.env_file("<env>"),
            "sources": sources,
        },
        "schema": p.schema.as_ref().map(|s| s.file.name.clone()),
        "units": units.into_iter().map(|(key, unit)| json!({"key": key, "unit": unit})).collect::<Vec<_>>(),
        "rules": rule_list,
        "probes": probes,
        "probe_kinds": crate::probes::KINDS.iter().map(|k| k.name).collect::<Vec<_>>(),
        "isolation": isolation,
        "parity": p.manifest.parity.as_ref().map(|par| json!({"all": par.all, "required": par.required})),
    });
    let mut text = serde_json::to_string_pretty(&doc).expect("json");
    text.push('\n');
    out.write_all(text.as_bytes()).map_err(io)?;
    Ok(exit_codes::OK)
}

fn environments(p: &Project, s: &mut String) {
    s.push_str("\nenvironments:\n");
    for env in &p.environments {
        let rel = p.env_file(env);
        let extends = p.parsed(&rel, env).ok().flatten().and_then(|f| {
            f.table
                .get("extends")
                .and_then(|e| e.node.to_json().as_str().map(str::to_string))
        });
        match extends {
            Some(parent) => s.push_str(&format!("  {env:<12} {rel} (extends {parent})\n")),
            None => s.push_str(&format!("  {env:<12} {rel}\n")),
        }
    }
}

fn layers(p: &Project, s: &mut String) {
    s.push_str("\nlayers, lowest precedence first:\n");
    s.push_str(&format!("  base          {}\n", p.base_file()));
    s.push_str(&format!("  <env>         {}\n", p.env_file("<env>")));
    for src in &p.manifest.source {
        let what = match src {
            SourceDef::File { path, .. } | SourceDef::Dotenv { path, .. } => path.clone(),
            SourceDef::Env { prefix, .. } => format!("{prefix}*"),
            SourceDef::Http { url, .. } => crate::config::secrets::redact_url_passwords(url),
        };
        let kind = src.kind();
        let opt = if src.optional() { " (optional)" } else { "" };
        s.push_str(&format!("  {:<13} {kind} {what}{opt}\n", src.name()));
    }
    s.push_str("  --set         command line\n");
}

fn schema(p: &Project, s: &mut String) {
    let Some(schema) = &p.schema else {
        s.push_str("\nschema: none (set project.schema in envgate.toml)\n");
        return;
    };
    let mut units = Vec::new();
    collect_units(&schema.json, &mut Vec::new(), &mut units);
    s.push_str(&format!("\nschema {}\n", schema.file.name));
    if !units.is_empty() {
        s.push_str("  keys with units:\n");
        for (k, u) in units {
            s.push_str(&format!("    {k:<36} {u}\n"));
        }
    }
}

fn rule_list(p: &Project, rules: &crate::rules::Rules, s: &mut String) {
    if rules.compiled.is_empty() {
        s.push_str(&format!("\nrules: none ({}/*.toml)\n", p.manifest.project.checks_dir));
        return;
    }
    s.push_str("\nrules:\n");
    for c in &rules.compiled {
        let d = &c.rule.def;
        let scope = match d.scope {
            Scope::Env => "",
            Scope::AllEnvs => " [all-envs]",
        };
        let sev = match d.severity {
            RuleSeverity::Error => "error",
            RuleSeverity::Warning => "warning",
        };
        let tags = if d.tags.is_empty() {
            String::new()
        } else {
            format!(" #{}", d.tags.join(" #"))
        };
        s.push_str(&format!("  {:<32} {sev:<8}{scope}{tags}  {}\n", c.id(), d.message));
    }
}

fn probe_list(p: &Project, probes: &[Located], s: &mut String) {
    if probes.is_empty() {
        s.push_str(&format!(
            "\nprobes: none ({}/*.toml or \"x-probe\" in the schema)\n",
            p.manifest.project.checks_dir
        ));
    } else {
        s.push_str("\nprobes:\n");
        for l in probes {
            s.push_str(&probe_line(l));
        }
    }
    let kinds: Vec<&str> = crate::probes::KINDS.iter().map(|k| k.name).collect();
    s.push_str(&format!("\nprobe kinds: {}\n", kinds.join(", ")));
}

/// `  orders-db            postgres  ${database.url}  (only prod; after dns-db)`
fn probe_line(l: &Located) -> String {
    let d = &l.def;
    let mut notes = Vec::new();
    if let Some(envs) = &d.envs {
        notes.push(format!("only {}", envs.join(", ")));
    }
    if !d.warn_in.is_empty() {
        notes.push(format!("warning in {}", d.warn_in.join(", ")));
    }
    if !d.depends_on.is_empty() {
        notes.push(format!("after {}", d.depends_on.join(", ")));
    }
    let target = d.target.clone().unwrap_or_else(|| match &l.schema_key {
        Some(k) => format!("${{{}}}", crate::config::merge::key_string(k)),
        None => String::new(),
    });
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!("  ({})", notes.join("; "))
    };
    format!("  {:<20} {:<9} {target}{notes}\n", l.name, d.kind)
}

fn isolation_and_parity(p: &Project, s: &mut String) {
    if !p.manifest.isolation.is_empty() {
        s.push_str("\nisolation:\n");
        for (env, iso) in &p.manifest.isolation {
            let mut extra = String::new();
            if iso.deny_unknown_hosts {
                extra.push_str(" (deny unknown hosts)");
            }
            if !iso.enforce {
                extra.push_str(" (not enforced)");
            }
            s.push_str(&format!("  {env:<12} {}{extra}\n", iso.hosts.join(", ")));
        }
    }
    if let Some(par) = &p.manifest.parity {
        let what = if par.all {
            "every key".to_string()
        } else {
            par.required.join(", ")
        };
        s.push_str(&format!("\nparity: {what}\n"));
    }
}

fn collect_units(s: &serde_json::Value, path: &mut Vec<String>, out: &mut Vec<(String, String)>) {
    if let Some(u) = s.get("x-unit").and_then(|u| u.as_str()) {
        out.push((path.join("."), u.to_string()));
    }
    if let Some(props) = s.get("properties").and_then(|p| p.as_object()) {
        for (k, v) in props {
            path.push(k.clone());
            collect_units(v, path, out);
            path.pop();
        }
    }
}

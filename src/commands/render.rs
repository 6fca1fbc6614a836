use std::io::Write;

use serde_json::Value as Json;

use super::formats::{self, Refusal};
use super::io;
use crate::cli::{RenderArgs, RenderFormat};
use crate::config::merge::{Leaf, Node, key_string};
use crate::config::project::Project;
use crate::config::secrets::{Redactor, mask_value};
use crate::diagnostic::{Problem, Problems};
use crate::exit_codes;

pub fn render(p: &Project, a: &RenderArgs, out: &mut dyn Write, err: &mut dyn Write) -> Result<i32, Problems> {
    if a.show_secrets {
        writeln!(
            err,
            "warning: --show-secrets prints secret values in clear; keep this output out of logs and terminals others can see"
        )
        .map_err(io)?;
    }
    let mut asm = p.assemble(&a.env, &a.sets)?;
    asm.require_resolved()?;
    if let Some(s) = &p.schema {
        s.coerce(&mut asm);
    }
    let r = &asm.redactor;
    let prefix = env_prefix(p);
    let text = if a.show_origin {
        with_origins(&asm.root, a.format, r, &prefix, a.show_secrets)
    } else {
        plain(&masked(&asm.root, r, a.show_secrets), a.format).map(|t| match a.format {
            RenderFormat::Env => t.lines().map(|l| format!("{prefix}{l}\n")).collect(),
            _ => t,
        })
    };
    let text = text.map_err(|refusals| cannot_render(&a.env, a.format, &refusals))?;
    out.write_all(text.as_bytes()).map_err(io)?;
    Ok(exit_codes::OK)
}

/// The prefix of the manifest's first `kind = "env"` source (`ORDERS__`), so
/// a rendered env file, given back as the environment, sets the same keys.
fn env_prefix(p: &Project) -> String {
    p.manifest
        .source
        .iter()
        .find_map(|s| match s {
            crate::config::manifest::SourceDef::Env { prefix, .. } => Some(prefix.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

fn format_name(f: RenderFormat) -> &'static str {
    match f {
        RenderFormat::Toml => "TOML",
        RenderFormat::Json => "JSON",
        RenderFormat::Yaml => "YAML",
        RenderFormat::Env => "an env file",
    }
}

/// Values the format cannot hold: exit 2, naming each key and why.
fn cannot_render(env: &str, f: RenderFormat, refusals: &[Refusal]) -> Problems {
    const SHOWN: usize = 10;
    let message = match refusals {
        [one] => format!(
            "cannot render `{env}` as {}: `{}` {}",
            format_name(f),
            one.key,
            one.reason
        ),
        many => format!(
            "cannot render `{env}` as {}: {} values cannot be written in it",
            format_name(f),
            many.len()
        ),
    };
    let mut help: Vec<String> = if refusals.len() > 1 {
        refusals
            .iter()
            .take(SHOWN)
            .map(|r| format!("`{}` {}", r.key, r.reason))
            .collect()
    } else {
        Vec::new()
    };
    if refusals.len() > SHOWN {
        help.push(format!("and {} more", refusals.len() - SHOWN));
    }
    help.push("`--format json` and `--format yaml` can hold every value".into());
    Problem::new("envgate::render::unrepresentable", message)
        .help(help.join("\n"))
        .into()
}

fn shown(l: &Leaf, r: &Redactor, show_secrets: bool) -> Json {
    if show_secrets {
        l.value.clone()
    } else {
        mask_value(&l.value, l.secret, r)
    }
}

/// The whole configuration, each leaf as [`shown`].
fn masked(n: &Node, r: &Redactor, show_secrets: bool) -> Json {
    match n {
        Node::Leaf(l) => shown(l, r, show_secrets),
        Node::Table { children, .. } => Json::Object(
            children
                .iter()
                .map(|(k, c)| (k.clone(), masked(c, r, show_secrets)))
                .collect(),
        ),
    }
}

fn plain(v: &Json, f: RenderFormat) -> Result<String, Vec<Refusal>> {
    match f {
        RenderFormat::Toml => formats::toml(v),
        RenderFormat::Json => Ok(formats::json(v)),
        RenderFormat::Yaml => Ok(formats::yaml(v)),
        RenderFormat::Env => formats::env(v),
    }
}

fn with_origins(
    root: &Node,
    f: RenderFormat,
    r: &Redactor,
    prefix: &str,
    show_secrets: bool,
) -> Result<String, Vec<Refusal>> {
    let leaves = root.leaves();
    match f {
        RenderFormat::Toml | RenderFormat::Env => {
            let mut rows = Vec::new();
            let mut refusals = Vec::new();
            for (p, l) in &leaves {
                let v = shown(l, r, show_secrets);
                let line = if f == RenderFormat::Toml {
                    formats::toml_value(p, &v).map(|t| format!("{} = {t}", key_string(p)))
                } else {
                    formats::env_line(p, &v)
                        .map(|l| format!("{prefix}{l}"))
                        .map_err(|r| vec![r])
                };
                match line {
                    Ok(line) => rows.push((l.origin.layer.clone(), l.origin.to_string(), line)),
                    Err(mut rs) => refusals.append(&mut rs),
                }
            }
            if !refusals.is_empty() {
                return Err(refusals);
            }
            let wl = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
            let wo = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
            Ok(rows
                .into_iter()
                .map(|(layer, o, l)| format!("{layer:<wl$}  {o:<wo$}  {l}\n"))
                .collect())
        }
        RenderFormat::Json | RenderFormat::Yaml => {
            let obj: serde_json::Map<String, Json> = leaves
                .iter()
                .map(|(p, l)| {
                    (
                        key_string(p),
                        serde_json::json!({"value": shown(l, r, show_secrets), "layer": l.origin.layer, "origin": l.origin.to_string()}),
                    )
                })
                .collect();
            let v = Json::Object(obj);
            Ok(if f == RenderFormat::Json {
                formats::json(&v)
            } else {
                formats::yaml(&v)
            })
        }
    }
}

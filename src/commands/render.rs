use std::io::Write;

use serde_json::Value as Json;

use super::io;
use crate::cli::{RenderArgs, RenderFormat};
use crate::config::merge::{Leaf, Node, key_string};
use crate::config::project::Project;
use crate::config::secrets::{MASK, Redactor};
use crate::diagnostic::Problems;
use crate::exit_codes;

pub fn render(p: &Project, a: &RenderArgs, out: &mut dyn Write) -> Result<i32, Problems> {
    let mut asm = p.assemble(&a.env, &a.sets)?;
    asm.require_resolved()?;
    if let Some(s) = &p.schema {
        s.coerce(&mut asm);
    }
    let r = &asm.redactor;
    let text = if a.show_origin {
        with_origins(&asm.root, a.format, r)
    } else {
        plain(&asm.root.to_redacted_json(), a.format, r)
    };
    out.write_all(text.as_bytes()).map_err(io)?;
    Ok(exit_codes::OK)
}

fn shown(l: &Leaf, r: &Redactor) -> Json {
    if l.secret {
        Json::String(MASK.into())
    } else {
        scrub(&l.value, r)
    }
}

fn scrub(v: &Json, r: &Redactor) -> Json {
    r.scrub_json(v)
}

fn plain(v: &Json, f: RenderFormat, r: &Redactor) -> String {
    let v = scrub(v, r);
    match f {
        RenderFormat::Toml => toml::to_string_pretty(&v).unwrap_or_default(),
        RenderFormat::Json => format!("{}\n", serde_json::to_string_pretty(&v).expect("json")),
        RenderFormat::Yaml => yaml(&v),
        RenderFormat::Env => {
            let mut s = String::new();
            flat(&v, &mut Vec::new(), &mut |path, val| {
                s.push_str(&format!("{}={}\n", env_name(path), env_value(val)));
            });
            s
        }
    }
}

fn with_origins(root: &Node, f: RenderFormat, r: &Redactor) -> String {
    let leaves = root.leaves();
    match f {
        RenderFormat::Toml | RenderFormat::Env => {
            let rows: Vec<(String, String, String)> = leaves
                .iter()
                .map(|(p, l)| {
                    let v = shown(l, r);
                    let line = if f == RenderFormat::Toml {
                        format!("{} = {}", key_string(p), toml_value(&v))
                    } else {
                        format!("{}={}", env_name(p), env_value(&v))
                    };
                    (l.origin.layer.clone(), l.origin.to_string(), line)
                })
                .collect();
            let wl = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
            let wo = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
            rows.into_iter()
                .map(|(layer, o, l)| format!("{layer:<wl$}  {o:<wo$}  {l}\n"))
                .collect()
        }
        RenderFormat::Json | RenderFormat::Yaml => {
            let obj: serde_json::Map<String, Json> = leaves
                .iter()
                .map(|(p, l)| {
                    (
                        key_string(p),
                        serde_json::json!({"value": shown(l, r), "layer": l.origin.layer, "origin": l.origin.to_string()}),
                    )
                })
                .collect();
            let v = Json::Object(obj);
            if f == RenderFormat::Json {
                format!("{}\n", serde_json::to_string_pretty(&v).expect("json"))
            } else {
                yaml(&v)
            }
        }
    }
}

fn toml_value(v: &Json) -> String {
    let t = toml::to_string(&serde_json::json!({ "v": v })).unwrap_or_default();
    t.trim_start_matches("v = ").trim_end().to_string()
}

fn env_name(path: &[String]) -> String {
    path.iter()
        .map(|s| s.to_uppercase().replace(['-', '.'], "_"))
        .collect::<Vec<_>>()
        .join("__")
}

fn env_value(v: &Json) -> String {
    match v {
        Json::String(s) if s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:@*".contains(c)) => s.clone(),
        Json::String(s) => format!("'{}'", s.replace('\'', "'\\''")),
        other => other.to_string(),
    }
}

fn flat(v: &Json, path: &mut Vec<String>, f: &mut dyn FnMut(&[String], &Json)) {
    match v {
        Json::Object(o) => {
            for (k, c) in o {
                path.push(k.clone());
                flat(c, path, f);
                path.pop();
            }
        }
        other => f(path, other),
    }
}

/// YAML via yaml-rust2's emitter.
fn yaml(v: &Json) -> String {
    use yaml_rust2::{Yaml, YamlEmitter, yaml::Hash};
    fn conv(v: &Json) -> Yaml {
        match v {
            Json::Null => Yaml::Null,
            Json::Bool(b) => Yaml::Boolean(*b),
            Json::Number(n) if n.is_i64() => Yaml::Integer(n.as_i64().expect("i64")),
            Json::Number(n) => Yaml::Real(n.to_string()),
            Json::String(s) => Yaml::String(s.clone()),
            Json::Array(a) => Yaml::Array(a.iter().map(conv).collect()),
            Json::Object(o) => {
                let mut h = Hash::new();
                for (k, v) in o {
                    h.insert(Yaml::String(k.clone()), conv(v));
                }
                Yaml::Hash(h)
            }
        }
    }
    let mut s = String::new();
    YamlEmitter::new(&mut s).dump(&conv(v)).expect("yaml");
    let s = s.strip_prefix("---\n").unwrap_or(&s).to_string();
    format!("{s}\n")
}

use std::io::Write;

use serde_json::Value as Json;

use super::io;
use crate::cli::ExplainArgs;
use crate::config::merge::{Node, key_string, parse_key};
use crate::config::project::Project;
use crate::config::secrets::mask_value;
use crate::config::suggest::did_you_mean;
use crate::diagnostic::{Problem, Problems};
use crate::exit_codes;

pub fn explain(p: &Project, a: &ExplainArgs, out: &mut dyn Write) -> Result<i32, Problems> {
    let mut asm = p.assemble(&a.env, &a.sets)?;
    asm.require_resolved()?;
    if let Some(s) = &p.schema {
        s.coerce(&mut asm);
    }
    let path = parse_key(&a.key);
    let leaf = match asm.root.get(&path) {
        Some(Node::Leaf(l)) => l,
        Some(Node::Table { .. }) => {
            let keys: Vec<String> = asm
                .root
                .get(&path)
                .map(|n| n.leaves())
                .unwrap_or_default()
                .iter()
                .take(8)
                .map(|(k, _)| {
                    let mut full = path.clone();
                    full.extend(k.iter().cloned());
                    key_string(&full)
                })
                .collect();
            return Err(Problem::new(
                "envgate::explain::table",
                format!("`{}` is a table, not a value", a.key),
            )
            .help(format!("explain one of its keys: {}", keys.join(", ")))
            .into());
        }
        None => {
            let all: Vec<String> = asm.root.leaf_paths().iter().map(|p| key_string(p)).collect();
            let mut pr = Problem::new(
                "envgate::explain::unknown-key",
                format!("`{}` is not set in `{}`", a.key, a.env),
            );
            if let Some(b) = did_you_mean(&a.key, all.iter().map(String::as_str)) {
                pr = pr.help(format!("did you mean `{b}`?"));
            }
            return Err(pr.into());
        }
    };
    let r = &asm.redactor;
    let show = |v: &Json| -> String {
        match mask_value(v, leaf.secret, r) {
            Json::String(s) if leaf.secret => s,
            other => other.to_string(),
        }
    };
    let mut s = String::new();
    s.push_str(&format!("{} in {} = {}\n", key_string(&path), a.env, show(&leaf.value)));
    if leaf.secret {
        s.push_str("  (secret: values are redacted)\n");
    }
    s.push_str(&format!(
        "layers, lowest precedence first ({}):\n",
        asm.layers.join(" → ")
    ));
    let mut rows: Vec<(String, String, String)> = leaf
        .history
        .iter()
        .map(|(v, o)| (o.layer.clone(), o.to_string(), show(v)))
        .collect();
    rows.push((leaf.origin.layer.clone(), leaf.origin.to_string(), show(&leaf.value)));
    let wl = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let wo = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    let n = rows.len();
    for (i, (layer, origin, value)) in rows.iter().enumerate() {
        let mark = if i + 1 == n {
            if n > 1 {
                format!("  ← wins, overrides {}", rows[i - 1].0)
            } else {
                "  ← wins".to_string()
            }
        } else {
            String::new()
        };
        s.push_str(&format!("  {}. {layer:<wl$}  {origin:<wo$}  {value}{mark}\n", i + 1));
    }
    if let Some(unit) = p.schema.as_ref().and_then(|sc| sc.unit_of(&path)) {
        s.push_str(&format!("unit: {}\n", unit_name(unit)));
    }
    out.write_all(s.as_bytes()).map_err(io)?;
    Ok(exit_codes::OK)
}

fn unit_name(u: crate::config::units::Unit) -> String {
    use crate::config::units::Unit;
    match u {
        Unit::Duration => "duration (\"250ms\", \"30s\", \"5m\")".into(),
        Unit::Bytes => "byte size (\"512MiB\", \"1GB\")".into(),
        Unit::TimeInt(n, _) | Unit::ByteInt(n, _) => format!("integer number of {n}"),
    }
}

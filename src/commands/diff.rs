use std::io::Write;

use comfy_table::{ContentArrangement, Table, presets};
use serde_json::Value as Json;

use super::io;
use crate::cli::{DiffArgs, DiffFormat};
use crate::config::merge::{Leaf, key_string};
use crate::config::project::Project;
use crate::config::secrets::{Redactor, mask_value};
use crate::diagnostic::Problems;
use crate::exit_codes;
use crate::report::Style;

fn find<'a>(v: &[(Vec<String>, &'a Leaf)], k: &[String]) -> Option<&'a Leaf> {
    v.iter().find(|(p, _)| p == k).map(|(_, l)| *l)
}

pub fn diff(p: &Project, a: &DiffArgs, style: Style, out: &mut dyn Write) -> Result<i32, Problems> {
    let assemble = |env: &str| {
        let mut asm = p.assemble(env, &[])?;
        asm.require_resolved()?;
        if let Some(s) = &p.schema {
            s.coerce(&mut asm);
        }
        Ok::<_, Problems>(asm)
    };
    let (l, r) = match (assemble(&a.left), assemble(&a.right)) {
        (Ok(l), Ok(r)) => (l, r),
        (Err(Problems(mut x)), Err(Problems(y))) => {
            x.extend(y);
            return Err(Problems(x));
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let mut red = Redactor::default();
    red.extend(&l.redactor);
    red.extend(&r.redactor);
    let ll = l.root.leaves();
    let rl = r.root.leaves();
    let mut keys: Vec<Vec<String>> = ll.iter().map(|(k, _)| k.clone()).collect();
    for (k, _) in &rl {
        if !keys.contains(k) {
            keys.push(k.clone());
        }
    }
    let mut rows = Vec::new();
    for k in &keys {
        let (lv, rv) = (find(&ll, k), find(&rl, k));
        let change = match (lv, rv) {
            (Some(x), Some(y)) if x.value == y.value => continue,
            (Some(_), Some(_)) => "changed",
            (Some(_), None) => "only-left",
            (None, Some(_)) => "only-right",
            (None, None) => continue,
        };
        rows.push((key_string(k), change, lv, rv));
    }
    let show = |l: Option<&Leaf>| -> (Json, String) {
        match l {
            None => (Json::Null, String::new()),
            Some(l) => (mask_value(&l.value, l.secret, &red), l.origin.to_string()),
        }
    };
    let text = match a.format {
        DiffFormat::Json => {
            let items: Vec<Json> = rows
                .iter()
                .map(|(k, c, lv, rv)| {
                    let (lval, lo) = show(*lv);
                    let (rval, ro) = show(*rv);
                    let secret = lv.is_some_and(|x| x.secret) || rv.is_some_and(|x| x.secret);
                    serde_json::json!({
                        "key": k, "change": c, "secret": secret,
                        "left": lv.map(|_| serde_json::json!({"value": lval, "origin": lo})),
                        "right": rv.map(|_| serde_json::json!({"value": rval, "origin": ro})),
                    })
                })
                .collect();
            format!(
                "{}\n",
                serde_json::to_string_pretty(
                    &serde_json::json!({"left": a.left, "right": a.right, "differences": items})
                )
                .expect("json")
            )
        }
        DiffFormat::Human => {
            if rows.is_empty() {
                format!(
                    "{} and {} have the same configuration ({} keys)\n",
                    a.left,
                    a.right,
                    keys.len()
                )
            } else {
                let mut t = Table::new();
                t.load_style(presets::UTF8_FULL_CONDENSED)
                    .set_content_arrangement(ContentArrangement::Dynamic)
                    .set_width(style.width as u16);
                if !style.color {
                    t.force_no_tty();
                }
                t.set_header(vec!["key".to_string(), a.left.clone(), a.right.clone()]);
                for (k, _, lv, rv) in &rows {
                    let cell = |l: Option<&Leaf>| match l {
                        None => "(not set)".to_string(),
                        Some(x) => {
                            let (v, o) = show(Some(x));
                            let v = match v {
                                Json::String(s) if x.secret => format!("{s} (secret, differs)"),
                                Json::String(s) => s,
                                other => other.to_string(),
                            };
                            format!("{v}\n{o}")
                        }
                    };
                    t.add_row(vec![k.clone(), cell(*lv), cell(*rv)]);
                }
                let only_l = rows.iter().filter(|r| r.1 == "only-left").count();
                let only_r = rows.iter().filter(|r| r.1 == "only-right").count();
                let changed = rows.iter().filter(|r| r.1 == "changed").count();
                format!(
                    "{t}\n{changed} changed, {only_l} only in {}, {only_r} only in {}\n",
                    a.left, a.right
                )
            }
        }
    };
    out.write_all(text.as_bytes()).map_err(io)?;
    if a.exit_code && !rows.is_empty() {
        return Ok(exit_codes::NOT_READY);
    }
    Ok(exit_codes::OK)
}

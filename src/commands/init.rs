use std::io::Write;
use std::path::PathBuf;

use super::{Context, io};
use crate::cli::InitArgs;
use crate::diagnostic::{Problem, Problems};
use crate::exit_codes;

/// The worked example at the repository root, embedded so `init` scaffolds
/// exactly what the repository's own tests validate.
const FILES: &[(&str, &str)] = &[
    ("envgate.toml", include_str!("../../envgate.toml")),
    ("environments/base.toml", include_str!("../../environments/base.toml")),
    ("environments/local.toml", include_str!("../../environments/local.toml")),
    (
        "environments/staging.toml",
        include_str!("../../environments/staging.toml"),
    ),
    ("environments/prod.toml", include_str!("../../environments/prod.toml")),
    (
        "schemas/orders-api.schema.json",
        include_str!("../../schemas/orders-api.schema.json"),
    ),
    ("checks/rules.toml", include_str!("../../checks/rules.toml")),
    ("checks/probes.toml", include_str!("../../checks/probes.toml")),
];

/// `--minimal`: a manifest, two environments and a schema of four keys.
const MINIMAL: &[(&str, &str)] = &[
    (
        "envgate.toml",
        r#"# envgate manifest for orders-api.
# `envgate validate` checks every environment below offline.

[project]
name = "orders-api"
schema = "schemas/orders-api.schema.json"
environments = ["local", "prod"]

# Deploy-time overrides: ORDERS__HTTP__PORT=8081 sets http.port.
[[source]]
name = "process-env"
kind = "env"
prefix = "ORDERS__"
"#,
    ),
    (
        "environments/base.toml",
        r#"# Defaults shipped with every build of orders-api.
[service]
name = "orders-api"
log_level = "info"

[http]
port = 8080
request_timeout = "10s"
"#,
    ),
    ("environments/local.toml", "[service]\nlog_level = \"debug\"\n"),
    ("environments/prod.toml", "[http]\nrequest_timeout = \"5s\"\n"),
    (
        "schemas/orders-api.schema.json",
        r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "orders-api configuration",
  "type": "object",
  "required": ["service", "http"],
  "properties": {
    "service": {
      "type": "object",
      "required": ["name", "log_level"],
      "properties": {
        "name": {"type": "string"},
        "log_level": {"enum": ["debug", "info", "warn", "error"]}
      }
    },
    "http": {
      "type": "object",
      "required": ["port", "request_timeout"],
      "properties": {
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "request_timeout": {"type": "string", "x-unit": "duration", "x-minimum": "100ms", "x-maximum": "60s"}
      }
    }
  }
}
"#,
    ),
];

/// The example's names, and what `--name` turns them into.
struct Naming {
    name: String,
    /// `BILLING` for `billing-api`: the env-source prefix and secret variables.
    prefix: String,
    /// `billing`: databases, buckets, exchanges.
    stem: String,
}

impl Naming {
    fn new(name: &str) -> Result<Naming, Problems> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(Problem::new(
                "envgate::init::name",
                format!(
                    "--name {name:?}: a project name starts with a letter and holds letters, digits, `-`, `_` or `.`"
                ),
            )
            .help("e.g. `envgate init --name billing-api`")
            .into());
        }
        let lower = name.to_ascii_lowercase();
        let stem = ["-api", "_api", "-service", "_service", "-svc", "-server", "-app"]
            .iter()
            .find_map(|s| lower.strip_suffix(s))
            .filter(|s| !s.is_empty())
            .unwrap_or(&lower)
            .to_string();
        let prefix = stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        Ok(Naming {
            name: name.to_string(),
            prefix,
            stem,
        })
    }

    /// One pass, so a name that contains `orders` is not renamed twice.
    fn apply(&self, text: &str) -> String {
        let re = regex::Regex::new("orders-api|ORDERS_|orders").expect("a fixed pattern");
        re.replace_all(text, |c: &regex::Captures| match &c[0] {
            "orders-api" => self.name.clone(),
            "ORDERS_" => format!("{}_", self.prefix),
            _ => self.stem.clone(),
        })
        .into_owned()
    }
}

pub fn init(ctx: &Context, a: &InitArgs, out: &mut dyn Write) -> Result<i32, Problems> {
    let naming = a.name.as_deref().map(Naming::new).transpose()?;
    // `init --name billing-api` creates ./billing-api, as `cargo new` does.
    let given: Option<PathBuf> = a
        .dir
        .clone()
        .or_else(|| naming.as_ref().map(|n| PathBuf::from(&n.name)));
    let dir = match &given {
        Some(d) if d.is_absolute() => d.clone(),
        Some(d) => ctx.cwd.join(d),
        None => ctx.cwd.clone(),
    };
    let files: Vec<(String, String)> = if a.minimal { MINIMAL } else { FILES }
        .iter()
        .map(|(rel, text)| match &naming {
            Some(n) => (n.apply(rel), n.apply(text)),
            None => (rel.to_string(), text.to_string()),
        })
        .collect();
    let existing: Vec<&str> = files
        .iter()
        .map(|(p, _)| p.as_str())
        .filter(|p| dir.join(p).exists())
        .collect();
    if !existing.is_empty() {
        return Err(Problem::new(
            "envgate::init::exists",
            format!(
                "{} already has {}: refusing to overwrite",
                dir.display(),
                existing.join(", ")
            ),
        )
        .help("run `envgate init` in an empty directory, or `envgate init NEW_DIR`")
        .into());
    }
    for (rel, text) in &files {
        let path = dir.join(rel);
        let fail = |e: std::io::Error| {
            Problems::from(Problem::new(
                "envgate::io",
                format!("cannot write {}: {e}", path.display()),
            ))
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(fail)?;
        }
        std::fs::write(&path, text).map_err(fail)?;
        match &given {
            Some(d) => writeln!(out, "created {}", d.join(rel).display()),
            None => writeln!(out, "created {rel}"),
        }
        .map_err(io)?;
    }
    let cd = match &given {
        Some(d) if dir != ctx.cwd => format!("`cd {}`, then ", shell_word(&d.display().to_string())),
        _ => String::new(),
    };
    writeln!(
        out,
        "\nnext: {cd}`envgate validate` checks every environment; `envgate render --env local` shows the result"
    )
    .map_err(io)?;
    Ok(exit_codes::OK)
}

/// A path as a shell would need it typed.
fn shell_word(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '-' | '_'))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_comes_from_the_name_without_its_api_suffix() {
        let n = Naming::new("billing-api").unwrap();
        assert_eq!((n.prefix.as_str(), n.stem.as_str()), ("BILLING", "billing"));
        let n = Naming::new("Payment.Gateway").unwrap();
        assert_eq!(n.prefix, "PAYMENT_GATEWAY");
        assert_eq!(Naming::new("api").unwrap().prefix, "API");
        assert!(Naming::new("9lives").is_err());
        assert!(Naming::new("a b").is_err());
    }

    #[test]
    fn a_name_holding_orders_is_not_renamed_twice() {
        let n = Naming::new("orders-sync").unwrap();
        assert_eq!(
            n.apply("orders-api ORDERS__X orders"),
            "orders-sync ORDERS_SYNC__X orders-sync"
        );
    }
}

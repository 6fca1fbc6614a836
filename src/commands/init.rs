use std::io::Write;

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

pub fn init(ctx: &Context, a: &InitArgs, out: &mut dyn Write) -> Result<i32, Problems> {
    let dir = match &a.dir {
        Some(d) if d.is_absolute() => d.clone(),
        Some(d) => ctx.cwd.join(d),
        None => ctx.cwd.clone(),
    };
    let existing: Vec<&str> = FILES.iter().map(|(p, _)| *p).filter(|p| dir.join(p).exists()).collect();
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
    for (rel, text) in FILES {
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
        writeln!(out, "created {rel}").map_err(io)?;
    }
    writeln!(
        out,
        "\nnext: `envgate validate` checks every environment; `envgate render --env local` shows the result"
    )
    .map_err(io)?;
    Ok(exit_codes::OK)
}

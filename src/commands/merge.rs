//! `envgate report merge FILE.json...`: the JSON reports of `--shard K/N`
//! runs (a CI matrix), or of runs over different environments (one CronJob
//! per region), combined into one report in any format.
//!
//! Refused: reports of different envgate versions, report versions or
//! projects; shards that do not add up (one missing, one given twice, counts
//! that differ); an environment reported twice outside shards.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::check::{parse_reports, verdict};
use super::{Context, io};
use crate::cli::{FailOn, MergeArgs};
use crate::diagnostic::{Problem, Problems};
use crate::outcome::{CheckResult, EnvReport, Report, ShardInfo, Status};
use crate::report::{Format, Style};
use crate::select::Shard;

/// A JSON report larger than this is not one envgate wrote.
const MAX_REPORT_BYTES: u64 = 256 * 1024 * 1024;

pub fn merge(ctx: &Context, a: &MergeArgs, style: Style, out: &mut dyn Write) -> Result<i32, Problems> {
    let outputs = parse_reports(&a.output.reports)?;
    let mut inputs = Vec::new();
    for f in &a.files {
        let path = if f.is_absolute() { f.clone() } else { ctx.cwd.join(f) };
        inputs.push((f.clone(), read(&path, f)?));
    }
    let report = combine(inputs)?;
    for (format, path) in &outputs {
        super::report_file::write_report(
            path,
            &format.reporter().render(&report, Style { color: false, ..style }),
        )?;
    }
    let format = a.output.format.unwrap_or(Format::Human);
    out.write_all(format.reporter().render(&report, style).as_bytes())
        .map_err(io)?;
    Ok(verdict(&report, a.output.fail_on == FailOn::Warn))
}

fn problem(message: String) -> Problems {
    Problem::new("envgate::report::merge", message).into()
}

fn read(path: &Path, shown: &Path) -> Result<Report, Problems> {
    let file = std::fs::File::open(path).map_err(|e| problem(format!("cannot read {}: {e}", shown.display())))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > MAX_REPORT_BYTES {
        return Err(problem(format!(
            "{} is {len} bytes: larger than any envgate report ({MAX_REPORT_BYTES} bytes at most)",
            shown.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| problem(format!("cannot read {}: {e}", shown.display())))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Problems::from(
            Problem::new(
                "envgate::report::merge",
                format!("{}:{}:{}: not JSON: {e}", shown.display(), e.line(), e.column()),
            )
            .help("give the files `--format json` or `--report json=PATH` wrote"),
        )
    })?;
    let version = value.get("version").and_then(|v| v.as_u64());
    if version != Some(u64::from(crate::outcome::REPORT_VERSION)) {
        return Err(problem(format!(
            "{}: report version {} is not {} (this envgate's): merge with the envgate that wrote it",
            shown.display(),
            version.map_or("(none)".to_string(), |v| v.to_string()),
            crate::outcome::REPORT_VERSION
        )));
    }
    serde_json::from_value(value).map_err(|e| {
        Problems::from(
            Problem::new(
                "envgate::report::merge",
                format!("{}: not an envgate JSON report: {e}", shown.display()),
            )
            .help("give the files `--format json` or `--report json=PATH` wrote"),
        )
    })
}

/// The reports, checked to belong together, as one.
pub fn combine(inputs: Vec<(PathBuf, Report)>) -> Result<Report, Problems> {
    let Some((first_path, first)) = inputs.first() else {
        return Err(problem("no reports to merge".into()));
    };
    for (path, r) in &inputs[1..] {
        if r.tool.version != first.tool.version {
            return Err(problem(format!(
                "{} was written by envgate {} but {} by envgate {}: run every shard with the same version",
                path.display(),
                r.tool.version,
                first_path.display(),
                first.tool.version
            )));
        }
        if r.project != first.project {
            let name = |p: &Option<String>| p.clone().unwrap_or_else(|| "(none)".into());
            return Err(problem(format!(
                "{} is a report of project `{}` but {} of project `{}`: only one project's reports merge",
                path.display(),
                name(&r.project),
                first_path.display(),
                name(&first.project)
            )));
        }
    }
    let sharded: Vec<&(PathBuf, Report)> = inputs.iter().filter(|(_, r)| r.shard.is_some()).collect();
    let merged = if sharded.is_empty() {
        disjoint(&inputs)?
    } else if sharded.len() != inputs.len() {
        let (p, _) = inputs
            .iter()
            .find(|(_, r)| r.shard.is_none())
            .expect("one is unsharded");
        return Err(problem(format!(
            "{} is not a shard (no --shard) but {} is: merge the shards of one run",
            p.display(),
            sharded[0].0.display()
        )));
    } else {
        shards(&inputs)?
    };
    let mut report = Report::new(merged, inputs.iter().map(|(_, r)| r.duration_ms).max().unwrap_or(0));
    report.tool = first.tool.clone();
    report.project = first.project.clone();
    Ok(report)
}

/// Unsharded runs over different environments: each environment once.
fn disjoint(inputs: &[(PathBuf, Report)]) -> Result<Vec<EnvReport>, Problems> {
    let mut seen: BTreeMap<&str, &Path> = BTreeMap::new();
    let mut envs = Vec::new();
    for (path, r) in inputs {
        for e in &r.environments {
            if let Some(other) = seen.insert(&e.name, path) {
                return Err(problem(format!(
                    "environment `{}` is in both {} and {}: reports of the same environment merge only as shards (--shard K/N)",
                    e.name,
                    other.display(),
                    path.display()
                )));
            }
            envs.push(EnvReport::new(e.name.clone(), e.results.clone()));
        }
    }
    Ok(envs)
}

/// `--shard K/N` runs: every K from 1 to N exactly once, the same
/// environments in each; each probe is taken from the shard that ran it.
fn shards(inputs: &[(PathBuf, Report)]) -> Result<Vec<EnvReport>, Problems> {
    let count = inputs[0].1.shard.expect("sharded").count;
    let mut by_index: BTreeMap<u32, &Path> = BTreeMap::new();
    for (path, r) in inputs {
        let ShardInfo { index, count: n } = r.shard.expect("sharded");
        if n == 0 || index == 0 || index > n {
            return Err(problem(format!(
                "{} says it is shard {index}/{n}, which no `--shard K/N` run writes (1 <= K <= N)",
                path.display()
            )));
        }
        if n != count {
            return Err(problem(format!(
                "{} is shard {index}/{n} but {} is of {count} shards: merge the shards of one run",
                path.display(),
                inputs[0].0.display()
            )));
        }
        if let Some(other) = by_index.insert(index, path) {
            return Err(problem(format!(
                "shard {index}/{count} is given twice: {} and {}",
                other.display(),
                path.display()
            )));
        }
    }
    let missing: Vec<String> = (1..=count)
        .filter(|k| !by_index.contains_key(k))
        .map(|k| format!("{k}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(problem(format!(
            "{} {} {} missing: its probes would be missing from the merged report",
            if missing.len() == 1 { "shard" } else { "shards" },
            missing.join(", "),
            if missing.len() == 1 { "is" } else { "are" }
        )));
    }
    let (first_path, first) = &inputs[0];
    let mut envs = Vec::new();
    for e in &first.environments {
        let mut results: Vec<CheckResult> = Vec::with_capacity(e.results.len());
        for r in &e.results {
            let Some(probe) = r.id.strip_prefix("probe/") else {
                // Validation and rules run in every shard: the first says it.
                results.push(r.clone());
                continue;
            };
            let index = (1..=count)
                .find(|k| Shard { index: *k, count }.contains(probe))
                .expect("a name lands in one shard");
            let (path, owner) = inputs
                .iter()
                .find(|(_, rep)| rep.shard.is_some_and(|s| s.index == index))
                .expect("every shard is present");
            let env = owner.environments.iter().find(|x| x.name == e.name).ok_or_else(|| {
                problem(format!(
                    "environment `{}` is in {} but not in {} (shard {index}/{count})",
                    e.name,
                    first_path.display(),
                    path.display()
                ))
            })?;
            let ran = env.results.iter().find(|x| x.id == r.id).ok_or_else(|| {
                problem(format!(
                    "`{}` of `{}` is missing from {} (shard {index}/{count}), which should have run it",
                    r.id,
                    e.name,
                    path.display()
                ))
            })?;
            if ran.status == Status::Skipped && ran.message.starts_with("runs in another shard") {
                return Err(problem(format!(
                    "`{}` of `{}` ran in no shard: {} (shard {index}/{count}) says it runs in another",
                    r.id,
                    e.name,
                    path.display()
                )));
            }
            results.push(ran.clone());
        }
        envs.push(EnvReport::new(e.name.clone(), results));
    }
    for (path, r) in &inputs[1..] {
        if let Some(extra) = r
            .environments
            .iter()
            .find(|x| !first.environments.iter().any(|e| e.name == x.name))
        {
            return Err(problem(format!(
                "environment `{}` is in {} but not in {}: every shard must check the same environments",
                extra.name,
                path.display(),
                first_path.display()
            )));
        }
    }
    Ok(envs)
}

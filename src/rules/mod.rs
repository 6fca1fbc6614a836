//! Rules over the assembled configuration: environment isolation, CEL
//! assertions (per environment and across environments) and parity. They
//! read assembled configurations and produce results; they never probe.

pub mod cel;
pub mod checks;
mod explain;
pub mod isolation;
pub mod parity;

use crate::config::assemble::Assembled;
use crate::config::project::Project;
use crate::diagnostic::{Problem, Problems};
use crate::findings::Category;
use crate::outcome::{CheckResult, Severity, Status};
use checks::Scope;

/// Everything rule-shaped in a project, loaded and compiled once per run.
pub struct Rules {
    pub compiled: Vec<cel::Compiled>,
    pub hosts: isolation::HostMap,
}

impl Rules {
    /// Compile the project's rules (read from its check files by the plan)
    /// and its isolation map. Every problem is reported at once.
    pub fn new(project: &Project, rules: Vec<checks::Rule>) -> Result<Rules, Problems> {
        let hosts = isolation::HostMap::from_manifest(&project.manifest).map_err(Problems)?;
        let compiled = cel::compile(rules).map_err(Problems)?;
        let unknown: Vec<Problem> = compiled
            .iter()
            .flat_map(|c| {
                c.envs_named()
                    .into_iter()
                    .filter(|e| !project.environments.contains(e))
                    .map(move |e| unknown_env(project, c, &e))
            })
            .collect();
        if !unknown.is_empty() {
            return Err(Problems(unknown));
        }
        Ok(Rules { compiled, hosts })
    }

    /// Keep only the rules a selection names.
    pub fn retain(&mut self, keep: impl Fn(&str, &[String]) -> bool) {
        self.compiled.retain(|c| keep(c.id(), &c.rule.def.tags));
    }

    /// Isolation and env-scoped rules for one environment. Returns the
    /// results and the configuration as a CEL value for cross-env rules.
    pub fn per_env(&self, project: &Project, a: &Assembled) -> Result<(Vec<CheckResult>, ::cel::Value), Problems> {
        let mut results = Vec::new();
        if !self.hosts.is_empty() && self.hosts.enforced(&a.env) {
            let findings = isolation::check_config(&self.hosts, a);
            if findings.is_empty() {
                results.push(CheckResult::pass(
                    Category::Isolation,
                    "isolation",
                    "isolation",
                    format!(
                        "no value names a host of another environment ({} keys)",
                        a.root.leaf_count()
                    ),
                ));
            }
            results.extend(
                findings
                    .into_iter()
                    .map(|f| CheckResult::from_finding(f, Status::Fail, Severity::Error)),
            );
        }
        // Only rules read the CEL value: don't build it for none.
        let value = if self.compiled.is_empty() {
            ::cel::Value::Null
        } else {
            cel::to_cel(&a.root, project.schema.as_ref())
        };
        results.extend(cel::eval_env(&self.compiled, a, &value).map_err(Problems)?);
        Ok((results, value))
    }

    /// Whether `cross_env` has anything to do.
    pub fn needs_all_envs(&self, project: &Project) -> bool {
        project.manifest.parity.is_some() || self.compiled.iter().any(|c| c.scope() == Scope::AllEnvs)
    }

    /// All-envs rules and parity, once per run; each result goes to the
    /// environments it concerns.
    pub fn cross_env(
        &self,
        project: &Project,
        envs: &[(&Assembled, ::cel::Value)],
        reported: &Reported,
    ) -> Result<Vec<(String, CheckResult)>, Problems> {
        let mut out = Vec::new();
        let names: Vec<&str> = envs.iter().map(|(a, _)| a.env.as_str()).collect();
        for c in self.compiled.iter().filter(|c| c.scope() == Scope::AllEnvs) {
            let named = c.envs_named();
            let targets: Vec<String> = if named.is_empty() {
                names.iter().map(|s| s.to_string()).collect()
            } else {
                named.clone()
            };
            let absent: Vec<&String> = named.iter().filter(|n| !names.contains(&n.as_str())).collect();
            let result = if absent.is_empty() {
                cel::eval_all(c, envs).map_err(Problems::from)?
            } else {
                let mut r = CheckResult::pass(
                    Category::Rule,
                    &format!("rule/{}", c.id()),
                    c.id(),
                    format!(
                        "skipped: reads {}, which this run does not check (use --all-envs)",
                        absent.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                );
                r.status = Status::Skipped;
                r
            };
            for t in targets.iter().filter(|t| names.contains(&t.as_str())) {
                out.push((t.clone(), result.clone()));
            }
        }
        if let Some(parity) = &project.manifest.parity
            && envs.len() > 1
        {
            let list: Vec<&Assembled> = envs.iter().map(|(a, _)| *a).collect();
            out.extend(parity::check(parity, &list, reported));
        }
        Ok(out)
    }
}

/// Keys each environment's own checks already report as wrong (unknown,
/// missing, mistyped): parity does not report them a second time.
pub type Reported = std::collections::HashMap<String, std::collections::HashSet<String>>;

/// An all-envs rule that names an environment the project does not have:
/// the rule is wrong, so the run cannot be evaluated.
fn unknown_env(project: &Project, c: &cel::Compiled, env: &str) -> Problem {
    let s = c.rule.def.assert.span();
    let (line, col) = c.rule.file.line_col(s.start);
    let mut p = Problem::new(
        "envgate::rule::environment",
        format!(
            "rule `{}` reads `envs.{env}`, but there is no environment `{env}` ({}:{line}:{col})",
            c.id(),
            c.rule.file.name
        ),
    )
    .label(format!("no environment `{env}`"))
    .at(&c.rule.file, s.start, s.len());
    let names = project.environments.iter().map(String::as_str);
    p = match crate::config::suggest::did_you_mean(env, names) {
        Some(b) => p.help(format!(
            "did you mean `envs.{b}`? environments: {}",
            project.environments.join(", ")
        )),
        None => p.help(format!("environments: {}", project.environments.join(", "))),
    };
    p
}

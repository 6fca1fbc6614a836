//! `checks/*.toml`, read and parsed once per run into rules and probes
//! together, plus the schema's `x-probe` annotations. Every problem of every
//! file is reported at once, each at its file:line:column.

use std::sync::Arc;

use serde::Deserialize;

use crate::config::project::Project;
use crate::diagnostic::{Problem, Problems};
use crate::probes::def::{self, Located, SpannedTable};
use crate::rules::checks::{Rule, RuleDef};
use crate::source::SourceFile;

/// One check file: `[[rule]]` and `[[probe]]` tables, nothing else.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChecksFile {
    #[serde(default)]
    rule: Vec<RuleDef>,
    #[serde(default)]
    probe: Vec<SpannedTable>,
}

/// Every rule and probe of a project.
#[derive(Debug, Default)]
pub struct Checks {
    pub rules: Vec<Rule>,
    pub probes: Vec<Located>,
}

impl Checks {
    /// `checks/*.toml` in name order, then the schema's `x-probe`s.
    pub fn load(project: &Project) -> Result<Checks, Problems> {
        let (files, mut problems) = project.check_files();
        let mut checks = Checks::default();
        for file in files {
            parse_file(&file, &mut checks, &mut problems);
        }
        if let Some(schema) = &project.schema {
            checks
                .probes
                .extend(def::from_schema(&schema.json, &schema.file, &mut problems));
        }
        crate::rules::checks::check_ids(&checks.rules, &mut problems);
        def::check_all(&checks.probes, &mut problems);
        if problems.is_empty() {
            Ok(checks)
        } else {
            Err(Problems(problems))
        }
    }
}

/// One file, parsed once: the spanned document gives rules their spans and
/// probes the span of every key and value.
pub fn parse_file(file: &Arc<SourceFile>, into: &mut Checks, problems: &mut Vec<Problem>) {
    let parsed =
        toml::de::DeTable::parse(&file.text).and_then(|doc| ChecksFile::deserialize(toml::de::Deserializer::from(doc)));
    match parsed {
        Ok(doc) => {
            into.rules.extend(doc.rule.into_iter().map(|def| Rule {
                def,
                file: file.clone(),
            }));
            for t in doc.probe {
                into.probes.extend(def::from_table(file, t, problems));
            }
        }
        Err(e) => problems.push(crate::diagnostic::toml_problem(
            file,
            &e,
            "envgate::checks::invalid",
            "a check file holds [[rule]] and [[probe]] tables; schemas/checks.schema.json describes them",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Checks, Vec<Problem>) {
        let f = SourceFile::new("checks/a.toml", text);
        let (mut c, mut p) = (Checks::default(), Vec::new());
        parse_file(&f, &mut c, &mut p);
        (c, p)
    }

    #[test]
    fn probes_and_rules_share_a_file_and_stay_strict() {
        let (c, p) = parse(
            "[[rule]]\nid = \"r\"\nmessage = \"m\"\nassert = \"true\"\n\n[[probe]]\nname = \"p\"\nkind = \"tcp\"\ntarget = \"h:1\"\n",
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(c.rules.len(), 1);
        assert_eq!(c.probes[0].name, "p");
        let f = &c.probes[0].file;
        assert_eq!(f.line_col(c.probes[0].keys["target"].1.start), (9, 10));
        let (_, p) = parse("[[probes]]\nname = \"p\"\n");
        assert!(p[0].message.contains("checks/a.toml:1:"), "{}", p[0].message);
    }

    #[test]
    fn a_misspelt_probe_parameter_gets_a_did_you_mean_at_its_line() {
        let (c, mut p) = parse("[[probe]]\nname = \"p\"\nkind = \"tcp\"\ntarget = \"h:1\"\ntimout = \"2s\"\n");
        def::check_all(&c.probes, &mut p);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].message
                .contains("`timout` is not a parameter of tcp probes (checks/a.toml:5:1)"),
            "{}",
            p[0].message
        );
        assert_eq!(p[0].help.as_deref(), Some("did you mean `timeout`?"));
    }

    #[test]
    fn a_timeout_without_a_unit_gets_both_readings() {
        let (_, p) = parse("[[probe]]\nname = \"p\"\nkind = \"tcp\"\ntarget = \"h:1\"\ntimeout = 2\n");
        assert!(p[0].message.contains("write \"2s\" or \"2ms\""), "{}", p[0].message);
        assert!(p[0].message.contains("checks/a.toml:5:11"), "{}", p[0].message);
    }
}

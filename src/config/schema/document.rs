//! Validating one document on its own, as if it were a project's only
//! layer: what `check-jsonschema` does for a file, with envgate's readers,
//! strictness and locations. The differential tests use it to compare
//! envgate's verdict with an established validator's on many documents
//! without a project for each.

use std::sync::Arc;

use super::load::Schema;
use crate::config::assemble::Assembled;
use crate::config::merge::Node;
use crate::config::parse;
use crate::config::project::parse_problem;
use crate::config::secrets::Redactor;
use crate::config::tree::Format;
use crate::diagnostic::Problem;
use crate::findings::Finding;
use crate::source::SourceFile;

impl Schema {
    /// Every schema finding for `file` (TOML, JSON or YAML by its name), or
    /// the parse problem that stops it from being read.
    pub fn check_document(&self, file: &Arc<SourceFile>) -> Result<Vec<Finding>, Problem> {
        let format = Format::from_path(&file.name).unwrap_or(Format::Json);
        let table = parse::table(file, format, "document").map_err(|f| parse_problem(file, format, f))?;
        let mut root = Node::default();
        root.merge_table(&table);
        let mut a = Assembled {
            env: "document".into(),
            root,
            overlay: file.clone(),
            layers: vec!["document".into()],
            problems: Vec::new(),
            redactor: Redactor::default(),
            unresolved: Default::default(),
        };
        self.mark_secrets(&mut a);
        Ok(self.validate(&a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::SchemaOptions;

    fn findings(schema: &str, doc: &str) -> Vec<(String, String)> {
        let s = Schema::from_file(
            std::path::Path::new("."),
            SourceFile::new("s.json", schema),
            &SchemaOptions::default(),
        )
        .unwrap_or_else(|ps| panic!("{:?}", ps.iter().map(|p| &p.message).collect::<Vec<_>>()));
        s.check_document(&SourceFile::new("d.yaml", doc))
            .unwrap()
            .into_iter()
            .map(|f| (f.problem.code, f.problem.message))
            .collect()
    }

    #[test]
    fn keys_of_any_branch_inside_array_items_are_declared() {
        let schema = r#"{"type": "object", "properties": {"steps": {"type": "array", "items": {
            "oneOf": [{"properties": {"run": {"type": "string"}}, "required": ["run"]},
                      {"properties": {"uses": {"type": "string"}, "with": {"type": "object"}}, "required": ["uses"]}]}}}}"#;
        assert_eq!(
            findings(schema, "steps:\n  - run: make\n  - uses: a/b\n    with: {x: 1}\n"),
            vec![]
        );
        let f = findings(schema, "steps:\n  - run: make\n    bogus: 1\n");
        assert_eq!(
            f,
            vec![(
                "envgate::schema::unknown-key".into(),
                "unknown key `steps[0].bogus`".into()
            )]
        );
    }

    #[test]
    fn additional_properties_true_beside_a_ref_admits_any_key() {
        let schema = r##"{"type": "object", "properties": {"labels": {"$ref": "#/$defs/l", "additionalProperties": true}},
            "$defs": {"l": {"properties": {"team": {"type": "string"}}}}}"##;
        assert_eq!(findings(schema, "labels: {team: core, tier: gold}\n"), vec![]);
    }

    #[test]
    fn a_name_declared_only_by_a_failing_branch_is_not_called_unknown() {
        let schema = r#"{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "anyOf": [{"properties": {"a": {"type": "string"}}}, {}], "unevaluatedProperties": false}"#;
        let f = findings(schema, "a: 1\n");
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].0, "envgate::schema::unevaluatedProperties");
        assert_eq!(f[0].1, "`a` is not allowed here (unevaluatedProperties)");
    }

    #[test]
    fn units_apply_inside_arrays_and_through_refs() {
        let schema = r##"{"type": "object", "properties": {"timeouts": {"type": "array", "items": {"$ref": "#/$defs/d"}}},
            "$defs": {"d": {"type": "string", "x-unit": "duration"}}}"##;
        let f = findings(schema, "timeouts: [1s, 30]\n");
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(
            f[0].1,
            "`timeouts[1]`: bare number 30 for a duration: write \"30s\" or \"30ms\""
        );
    }
}

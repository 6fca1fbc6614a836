//! Validating one document on its own, as if it were a project's only
//! layer: what `check-jsonschema` does for a file, with envgate's readers,
//! strictness and locations. The differential tests use it to compare
//! envgate's verdict with an established validator's on many documents
//! without a project for each.

use std::sync::Arc;

use super::load::Schema;
use crate::config::assemble::Assembled;
use crate::config::merge::Node;
use crate::config::project::parse_problem;
use crate::config::secrets::Redactor;
use crate::config::tree::{self, Format, SourceFile};
use crate::diagnostic::Problem;
use crate::findings::Finding;

impl Schema {
    /// Every schema finding for `file` (TOML, JSON or YAML by its name), or
    /// the parse problem that stops it from being read.
    pub fn check_document(&self, file: &Arc<SourceFile>) -> Result<Vec<Finding>, Problem> {
        let format = Format::from_path(&file.name).unwrap_or(Format::Json);
        let table = tree::parse(file, format, "document").map_err(|f| parse_problem(file, format, f))?;
        let mut root = Node::default();
        root.merge_table(&table);
        let mut a = Assembled {
            env: "document".into(),
            root,
            overlay: file.clone(),
            layers: vec!["document".into()],
            problems: Vec::new(),
            redactor: Redactor::default(),
        };
        self.mark_secrets(&mut a);
        Ok(self.validate(&a))
    }
}

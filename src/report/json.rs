//! `--format json`: the JSON report, version 1 (`schemas/report.schema.json`).

use super::{Reporter, Style};
use crate::outcome::Report;

pub struct Json;

impl Reporter for Json {
    fn render(&self, report: &Report, _style: Style) -> String {
        let mut s = serde_json::to_string_pretty(report).expect("report serializes");
        s.push('\n');
        s
    }
}

//! Reporters: one file per output format, each turning a [`Report`]
//! into text. Adding a format is one file plus one arm in [`Format::reporter`].

#[cfg(any(test, feature = "test-fixture"))]
pub mod fixture;
pub mod github;
pub mod html;
pub mod human;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod prometheus;
pub mod sarif;
pub mod tap;
mod text;

use std::time::SystemTime;

use crate::outcome::Report;

/// Rendering options every reporter receives.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
    /// Terminal width for wrapping diagnostics.
    pub width: usize,
    /// "Now", for reporters that print a timestamp. Reporters never read the
    /// clock themselves, so tests can fix it and snapshots stay stable.
    pub now: SystemTime,
    /// Where a file of the project is shown on the forge, when known:
    /// `https://github.com/OWNER/REPO/blob/SHA/` (from the variables GitHub
    /// Actions sets). The Markdown report links each origin there.
    pub source_links: Option<&'static str>,
}

pub trait Reporter {
    fn render(&self, report: &Report, style: Style) -> String;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Diagnostics with source snippets and a summary table.
    Human,
    /// The JSON report, version 1 (schemas/report.schema.json).
    Json,
    /// JUnit XML: one testsuite per environment, one testcase per check.
    Junit,
    /// A pull-request comment: summary line, problems table, passes folded.
    Markdown,
    /// SARIF 2.1.0 for code-scanning tools.
    Sarif,
    /// GitHub Actions workflow commands (annotations on the changed lines).
    Github,
    /// One self-contained HTML page with a filterable table.
    Html,
    /// Prometheus text exposition, for node_exporter's textfile collector.
    Prometheus,
    /// TAP version 14.
    Tap,
}

impl Format {
    pub const ALL: &'static [Format] = &[
        Format::Human,
        Format::Json,
        Format::Junit,
        Format::Markdown,
        Format::Sarif,
        Format::Github,
        Format::Html,
        Format::Prometheus,
        Format::Tap,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Human => "human",
            Format::Json => "json",
            Format::Junit => "junit",
            Format::Markdown => "markdown",
            Format::Sarif => "sarif",
            Format::Github => "github",
            Format::Html => "html",
            Format::Prometheus => "prometheus",
            Format::Tap => "tap",
        }
    }

    pub fn reporter(self) -> Box<dyn Reporter> {
        match self {
            Format::Human => Box::new(human::Human),
            Format::Json => Box::new(json::Json),
            Format::Junit => Box::new(junit::Junit),
            Format::Markdown => Box::new(markdown::Markdown),
            Format::Sarif => Box::new(sarif::Sarif),
            Format::Github => Box::new(github::Github),
            Format::Html => Box::new(html::Html),
            Format::Prometheus => Box::new(prometheus::Prometheus),
            Format::Tap => Box::new(tap::Tap),
        }
    }

    pub fn parse(name: &str) -> Option<Format> {
        Self::ALL.iter().copied().find(|f| f.name() == name)
    }
}

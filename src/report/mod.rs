//! Reporters: one file per output format, each turning a [`model::Report`]
//! into text. Adding a format is one file plus one arm in [`Format::reporter`].

pub mod human;
pub mod json;
pub mod model;

use model::Report;

/// Rendering options every reporter receives.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
    /// Terminal width for wrapping diagnostics.
    pub width: usize,
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
}

impl Format {
    pub const ALL: &'static [Format] = &[Format::Human, Format::Json];

    pub fn name(self) -> &'static str {
        match self {
            Format::Human => "human",
            Format::Json => "json",
        }
    }

    pub fn reporter(self) -> Box<dyn Reporter> {
        match self {
            Format::Human => Box::new(human::Human),
            Format::Json => Box::new(json::Json),
        }
    }

    pub fn parse(name: &str) -> Option<Format> {
        Self::ALL.iter().copied().find(|f| f.name() == name)
    }
}

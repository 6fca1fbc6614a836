//! One diagnostic type for everything envgate shows with a source snippet:
//! load errors (exit 2) and findings (exit 1). Codes are dynamic
//! (`envgate::schema::unknown-key`), which `#[derive(Diagnostic)]` cannot
//! express, so `Diagnostic` is implemented by hand here, once.

use std::fmt;
use std::sync::Arc;

use miette::{Diagnostic, LabeledSpan, Severity, SourceCode};

use crate::source::{Loc, Origin, SourceFile};

#[derive(Debug, Clone)]
pub struct Problem {
    pub code: String,
    pub message: String,
    pub label: Option<String>,
    pub help: Option<String>,
    pub severity: Severity,
    pub src: Option<Arc<SourceFile>>,
    pub span: Option<(usize, usize)>,
    /// Secondary locations, e.g. every layer that set a key.
    pub related: Vec<Problem>,
}

impl Problem {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            label: None,
            help: None,
            severity: Severity::Error,
            src: None,
            span: None,
            related: Vec::new(),
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn at(mut self, file: &Arc<SourceFile>, offset: usize, len: usize) -> Self {
        self.src = Some(file.clone());
        self.span = Some((offset, len));
        self
    }

    pub fn at_origin(self, origin: &Origin) -> Self {
        match &origin.loc {
            Loc::File { file, offset, len } => self.at(file, *offset, *len),
            _ => self,
        }
    }

    /// `file:line:column` when a file is to blame.
    pub fn position(&self) -> Option<(String, u32, u32)> {
        let (src, (off, _)) = (self.src.as_ref()?, self.span?);
        let (l, c) = src.line_col(off);
        Some((src.name.clone(), l, c))
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}

impl Diagnostic for Problem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(&self.code))
    }
    fn severity(&self) -> Option<Severity> {
        Some(self.severity)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.src.as_ref().map(|s| s.as_ref() as &dyn SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let (off, len) = self.span?;
        Some(Box::new(std::iter::once(LabeledSpan::new(
            self.label.clone(),
            off,
            len,
        ))))
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(self.related.iter().map(|p| p as &dyn Diagnostic)))
        }
    }
}

/// A TOML error in one of envgate's own files (manifest, checks), in one
/// wording everywhere: what is wrong, at file:line:column, with a hint.
pub fn toml_problem(file: &Arc<SourceFile>, e: &toml::de::Error, code: &str, help: &str) -> Problem {
    let span = e.span().unwrap_or(0..0);
    let msg = e.message().trim().replace('\n', "; ");
    let (line, col) = file.line_col(span.start);
    Problem::new(
        code,
        format!("invalid {}: {msg} ({}:{line}:{col})", file.name, file.name),
    )
    .label(msg)
    .help(help)
    .at(file, span.start, span.len().max(1))
}

/// Every load error of a run, reported together (exit 2).
#[derive(Debug)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.len() {
            1 => write!(f, "{}", self.0[0]),
            n => write!(f, "{n} problems stop envgate from evaluating this project"),
        }
    }
}

impl std::error::Error for Problems {}

impl From<Problem> for Problems {
    fn from(p: Problem) -> Self {
        Problems(vec![p])
    }
}

impl SourceCode for SourceFile {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let inner = self.text.read_span(span, context_lines_before, context_lines_after)?;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line(),
            inner.column(),
            inner.line_count(),
        )))
    }
}

//! One diagnostic type for everything envgate shows with a source snippet:
//! load errors (exit 2) and findings (exit 1). Codes are dynamic
//! (`envgate::schema::unknown-key`), which `#[derive(Diagnostic)]` cannot
//! express, so `Diagnostic` is implemented by hand here, once.

use std::fmt;
use std::ops::Range;
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

/// The longest message or help shown (in characters): a value of megabytes
/// quoted in a message is cut in its middle.
pub const MESSAGE_MAX: usize = 1200;
/// The longest label shown under a snippet.
pub const LABEL_MAX: usize = 240;

/// An operating system's error message as a clause: `Connection refused
/// (os error 111)` → `connection refused`.
pub fn plain(s: &str) -> String {
    let s = s.split(" (os error").next().unwrap_or(s);
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// `text` cut in its middle to at most about `max` characters.
pub fn readable(text: String, max: usize) -> String {
    let tail = max / 6;
    if text.len() <= max || text.chars().nth(max).is_none() {
        return text;
    }
    let total = text.chars().count();
    let head: String = text.chars().take(max - tail).collect();
    let end: String = text.chars().skip(total - tail).collect();
    format!("{head} … ({} characters cut) … {end}", total - max)
}

impl Problem {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: readable(message.into(), MESSAGE_MAX),
            label: None,
            help: None,
            severity: Severity::Error,
            src: None,
            span: None,
            related: Vec::new(),
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(readable(help.into(), MESSAGE_MAX));
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(readable(label.into(), LABEL_MAX));
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
        // The underline stays on one readable line, however long the value.
        let (off, len) = match &self.src {
            Some(src) => shown_span(&src.text, off, len),
            None => (off, len),
        };
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

/// A line longer than this (in characters) is not shown whole in a snippet.
pub const SNIPPET_WIDTH: usize = 160;
/// Characters shown before the span when its line is cut.
const SNIPPET_LEAD: usize = 40;

/// Byte range of the line holding `offset`, without its line break.
fn line_around(text: &str, offset: usize) -> Range<usize> {
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let end = if text[..end].ends_with('\r') { end - 1 } else { end };
    start..end.max(start)
}

/// Is this line too long to show whole? Counts at most `SNIPPET_WIDTH + 1` characters.
fn is_long(line: &str) -> bool {
    line.len() > SNIPPET_WIDTH && line.chars().nth(SNIPPET_WIDTH).is_some()
}

/// The byte offset `n` characters after (or, negative, before) `from`, within `bounds`.
fn chars_from(text: &str, from: usize, n: isize, bounds: &Range<usize>) -> usize {
    if n >= 0 {
        text[from..bounds.end]
            .char_indices()
            .nth(n as usize)
            .map_or(bounds.end, |(i, _)| from + i)
    } else {
        text[bounds.start..from]
            .char_indices()
            .rev()
            .nth(n.unsigned_abs() - 1)
            .map_or(bounds.start, |(i, _)| bounds.start + i)
    }
}

/// The part of a long line a snippet shows: the span's start with some
/// characters before it, at most `SNIPPET_WIDTH` characters in all.
fn window(text: &str, offset: usize, line: &Range<usize>) -> Range<usize> {
    let start = chars_from(text, offset, -(SNIPPET_LEAD as isize), line);
    let end = chars_from(text, start, SNIPPET_WIDTH as isize, line);
    start..end
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The span a label underlines: on the span's first line, and inside the
/// window shown when that line is long.
fn shown_span(text: &str, offset: usize, len: usize) -> (usize, usize) {
    let offset = floor_boundary(text, offset);
    let line = line_around(text, offset);
    let limit = if is_long(&text[line.clone()]) {
        window(text, offset, &line).end
    } else {
        line.end
    };
    let mut end = (offset + len).min(limit);
    if len > 0 && end <= offset {
        // A span at the end of a line (a missing quote) marks the line break.
        end = offset + 1;
    }
    (offset, ceil_boundary(text, end) - offset)
}

fn ceil_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// What a snippet shows, borrowed from the file.
struct Excerpt<'a> {
    name: &'a str,
    data: &'a [u8],
    span: miette::SourceSpan,
    line: usize,
    column: usize,
    line_count: usize,
}

impl<'a> miette::SpanContents<'a> for Excerpt<'a> {
    fn data(&self) -> &'a [u8] {
        self.data
    }
    fn span(&self) -> &miette::SourceSpan {
        &self.span
    }
    fn name(&self) -> Option<&str> {
        Some(self.name)
    }
    fn line(&self) -> usize {
        self.line
    }
    fn column(&self) -> usize {
        self.column
    }
    fn line_count(&self) -> usize {
        self.line_count
    }
}

/// Snippets read only the lines around a span, and never print a long line
/// whole: a long line holding the span is cut to a window around it (and
/// shown alone), a long neighbouring line is left out. A file with a
/// 25 MB line prints a snippet a person can read.
impl SourceCode for SourceFile {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let text = self.text.as_str();
        if span.offset() > text.len() {
            return Err(miette::MietteError::OutOfBounds);
        }
        let offset = floor_boundary(text, span.offset());
        let (first_line, column) = {
            let (l, c) = self.line_col(offset);
            (l as usize - 1, c as usize - 1)
        };
        let here = line_around(text, offset);
        let (range, first, count) = if is_long(&text[here.clone()]) {
            (window(text, offset, &here), first_line, 1)
        } else {
            let mut range = here.clone();
            let mut first = first_line;
            let mut count = 1;
            // The span's last line, when it runs on (never past a long line).
            let last = floor_boundary(text, (offset + span.len()).saturating_sub(1).max(offset));
            while range.end < last {
                let next = line_around(text, range.end + 1);
                if is_long(&text[next.clone()]) {
                    break;
                }
                range.end = next.end;
                count += 1;
            }
            for _ in 0..context_lines_before {
                if range.start == 0 {
                    break;
                }
                let prev = line_around(text, range.start - 1);
                if is_long(&text[prev.clone()]) {
                    break;
                }
                range.start = prev.start;
                first -= 1;
                count += 1;
            }
            for _ in 0..context_lines_after {
                let after = text[range.end..].find('\n').map(|i| range.end + i + 1);
                // The empty "line" after a final line break is not shown.
                let Some(next_start) = after.filter(|&n| n < text.len()) else {
                    break;
                };
                let next = line_around(text, next_start);
                if is_long(&text[next.clone()]) {
                    break;
                }
                range.end = next.end;
                count += 1;
            }
            (range, first, count)
        };
        // Like miette's own reader, the data ends after the last line's break.
        let range = match &text.as_bytes()[range.end..] {
            [b'\r', b'\n', ..] => range.start..range.end + 2,
            [b'\n', ..] => range.start..range.end + 1,
            _ => range,
        };
        Ok(Box::new(Excerpt {
            name: &self.name,
            data: &text.as_bytes()[range.clone()],
            span: (range.start, range.len()).into(),
            line: first,
            column: if context_lines_before == 0 { column } else { 0 },
            line_count: count,
        }))
    }
}

//! Where a value came from: the source documents envgate read (kept in
//! memory so a diagnostic can show the offending line without re-reading
//! anything) and the place inside them. The bottom of the crate: it knows
//! nothing of configuration, checks or reports.

use std::fmt;
use std::sync::Arc;

/// A source document kept in memory so diagnostics can show the offending
/// line without a reporter ever re-reading the file.
#[derive(Debug)]
pub struct SourceFile {
    /// Path as shown to the user (relative to the project root).
    pub name: String,
    pub text: String,
    /// Byte offset of each line's start, built on first use.
    lines: std::sync::OnceLock<Vec<usize>>,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            text: text.into(),
            lines: std::sync::OnceLock::new(),
        })
    }

    fn line_starts(&self) -> &[usize] {
        self.lines.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        })
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (u32, u32) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let starts = self.line_starts();
        let line = starts.partition_point(|&s| s <= offset).max(1);
        let column = self.text[starts[line - 1]..offset].chars().count() + 1;
        (line as u32, column as u32)
    }

    /// Byte offset of a 1-based line and 0-based character column.
    pub fn offset_of(&self, line: usize, col0: usize) -> usize {
        let starts = self.line_starts();
        let Some(&start) = starts.get(line.max(1) - 1) else {
            return self.text.len();
        };
        let end = starts.get(line).copied().unwrap_or(self.text.len());
        let l = &self.text[start..end];
        start
            + l.char_indices()
                .nth(col0)
                .map_or(l.trim_end_matches('\n').len(), |(b, _)| b)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Where a value was set.
#[derive(Debug, Clone)]
pub enum Loc {
    File {
        file: Arc<SourceFile>,
        offset: usize,
        len: usize,
    },
    EnvVar(String),
    Url(String),
    Cli(String),
}

/// The layer a value came from and the exact place inside it.
#[derive(Debug, Clone)]
pub struct Origin {
    /// Layer name: `base`, `prod`, a `[[source]]` name, or `--set`.
    pub layer: String,
    pub loc: Loc,
    /// The value arrived as text with no type of its own (environment
    /// variables, dotenv, `--set`, interpolation), so the schema decides its type.
    pub untyped: bool,
}

impl Origin {
    pub fn file_pos(&self) -> Option<(&str, u32, u32)> {
        match &self.loc {
            Loc::File { file, offset, .. } => {
                let (l, c) = file.line_col(*offset);
                Some((&file.name, l, c))
            }
            _ => None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.loc {
            Loc::File { .. } => {
                let (file, line, col) = self.file_pos().expect("file loc");
                write!(f, "{file}:{line}:{col}")
            }
            Loc::EnvVar(v) => write!(f, "env:{v}"),
            // Stored redacted: whoever makes a `Loc::Url` masks its password first.
            Loc::Url(u) => write!(f, "{u}"),
            Loc::Cli(a) => write!(f, "--set {a}"),
        }
    }
}

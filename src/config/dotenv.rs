//! The dotenv reader: `KEY=value` lines as docker compose and the dotenv
//! libraries (python-dotenv, compose-go) read them alike, and an error, at
//! its line and column, for what they read differently.
//!
//! - a UTF-8 byte order mark is skipped; lines end in `\n` or `\r\n`;
//! - blank lines and lines starting with `#` are skipped; `export ` may
//!   precede a binding;
//! - names are letters, digits, `_`, `.` and `-`; spaces may surround `=`;
//! - an unquoted value runs to the end of the line, without surrounding
//!   blanks and without a ` #` comment;
//! - a single-quoted value is literal (`\'` is a quote), a double-quoted one
//!   knows `\\ \" \n \r \t \a \b \f \v`; both may span lines;
//! - after a closing quote only blanks and a `# comment` may follow.
//!
//! Dotenv files hold secrets: every value and comment is masked (`***`) in
//! the file that snippets show, and no message repeats a value.

use std::ops::Range;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value as Json;

use super::secrets::Masked;
use super::tree::{Entry, ParseFailure, Tree};
use crate::diagnostic::Problem;
use crate::source::{Loc, Origin, SourceFile};

/// One `KEY=value` binding.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub key: String,
    pub value: String,
    /// The value as written, quotes included.
    pub raw: Range<usize>,
}

/// What a scan found: the bindings read, the ranges to mask, and the error
/// that stopped it.
pub struct Scan {
    pub bindings: Vec<Binding>,
    pub sensitive: Vec<Range<usize>>,
    pub error: Option<ParseFailure>,
}

struct Scanner<'t> {
    text: &'t str,
    at: usize,
}

type Step<T> = Result<T, ParseFailure>;

impl Scanner<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.at..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += c.len_utf8();
        Some(c)
    }

    fn blanks(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.at += 1;
        }
    }

    fn fail<T>(&self, at: usize, message: impl Into<String>) -> Step<T> {
        let len = self.text[at..].chars().next().map_or(0, char::len_utf8);
        Err(ParseFailure {
            message: message.into(),
            offset: at,
            len,
        })
    }

    /// At the end of a line (or of the file): consume the line break.
    fn end_of_line(&mut self) -> Option<()> {
        match self.peek() {
            None => Some(()),
            Some('\n') => {
                self.at += 1;
                Some(())
            }
            Some('\r') if self.text[self.at + 1..].starts_with('\n') => {
                self.at += 2;
                Some(())
            }
            _ => None,
        }
    }

    /// The end of the current line, before its line break.
    fn line_end(&self) -> usize {
        let end = self.text[self.at..].find('\n').map_or(self.text.len(), |i| self.at + i);
        if self.text[..end].ends_with('\r') { end - 1 } else { end }
    }

    fn name(&mut self) -> Step<String> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            self.at += 1;
        }
        let name = &self.text[start..self.at];
        let after = self.at;
        self.blanks();
        match self.peek() {
            Some('=') if name.is_empty() => self.fail(after, "missing variable name before `=`"),
            Some('=') => {
                self.at += 1;
                Ok(name.to_string())
            }
            _ if name.is_empty() => self.fail(start, format!("{} cannot start a variable name", describe(self.peek()))),
            Some(':') => self.fail(self.at, "expected `=` after the variable name, found `:`"),
            None | Some('\n' | '\r') => self.fail(after, "expected `=` after the variable name"),
            Some(_) if self.at > after => self.fail(after, "a variable name cannot contain blanks"),
            c => self.fail(self.at, format!("{} cannot be in a variable name", describe(c))),
        }
    }

    fn double_quoted(&mut self) -> Step<String> {
        let open = self.at;
        self.at += 1;
        let mut out = String::new();
        let mut escaped_backslash_last = false;
        loop {
            let here = self.at;
            match self.bump() {
                None => return self.fail(open, "unterminated double quote"),
                Some('"') if escaped_backslash_last => {
                    return self.fail(
                        here - 2,
                        "`\\\\` right before the closing quote: dotenv readers disagree on where this value ends",
                    );
                }
                Some('"') => return Ok(out),
                Some('\\') => {
                    let c = match self.bump() {
                        Some('\\') => '\\',
                        Some('"') => '"',
                        Some('n') => '\n',
                        Some('r') => '\r',
                        Some('t') => '\t',
                        Some('a') => '\u{7}',
                        Some('b') => '\u{8}',
                        Some('f') => '\u{c}',
                        Some('v') => '\u{b}',
                        None => return self.fail(open, "unterminated double quote"),
                        Some(other) => {
                            return self.fail(
                                here,
                                format!(
                                    "unknown escape `\\{}` in double quotes (known: \\\\ \\\" \\n \\r \\t \\a \\b \\f \\v)",
                                    other.escape_default()
                                ),
                            );
                        }
                    };
                    escaped_backslash_last = c == '\\';
                    out.push(c);
                    continue;
                }
                Some(c) => out.push(c),
            }
            escaped_backslash_last = false;
        }
    }

    fn single_quoted(&mut self) -> Step<String> {
        let open = self.at;
        self.at += 1;
        let mut out = String::new();
        loop {
            let here = self.at;
            match self.bump() {
                None => return self.fail(open, "unterminated single quote"),
                Some('\'') => return Ok(out),
                Some('\\') if self.peek() == Some('\'') => {
                    self.at += 1;
                    out.push('\'');
                }
                Some('\\') if self.peek() == Some('\\') => {
                    return self.fail(
                        here,
                        "`\\\\` inside single quotes is one backslash to some dotenv readers and two to others: use double quotes",
                    );
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn unquoted(&mut self, after_blank: bool) -> Step<(String, usize)> {
        let start = self.at;
        let end = self.line_end();
        let line = &self.text[start..end];
        if let Some(cr) = line.find('\r') {
            return self.fail(start + cr, "a carriage return without a line feed");
        }
        if after_blank && line.starts_with('#') {
            return self.fail(
                start,
                "a value that starts with `#` after a blank is a comment to some dotenv readers and text to others: quote it",
            );
        }
        let mut cut = line.len();
        let mut prev_blank: Option<char> = None;
        for (i, c) in line.char_indices() {
            if c == '#'
                && let Some(b) = prev_blank
            {
                if b != ' ' {
                    return self.fail(
                        start + i - b.len_utf8(),
                        "only a space before `#` starts a comment for every dotenv reader: use a space, or quote the value",
                    );
                }
                cut = i;
                break;
            }
            prev_blank = c.is_whitespace().then_some(c);
        }
        let value = line[..cut].trim_end();
        self.at = end;
        Ok((value.to_string(), start + value.len()))
    }

    /// A `# comment` (or nothing) and the end of the line, after a value.
    fn rest_of_line(&mut self, sensitive: &mut Vec<Range<usize>>) -> Step<()> {
        self.blanks();
        if self.peek() == Some('#') {
            let end = self.line_end();
            sensitive.push(self.at..end);
            self.at = end;
        }
        if self.end_of_line().is_none() {
            return self.fail(self.at, "unexpected text after the closing quote");
        }
        Ok(())
    }

    fn binding(&mut self, sensitive: &mut Vec<Range<usize>>) -> Step<Binding> {
        if self.text[self.at..].starts_with("export")
            && matches!(self.text[self.at + 6..].chars().next(), Some(' ' | '\t'))
        {
            self.at += 6;
            self.blanks();
        }
        let key = self.name()?;
        let eq = self.at;
        self.blanks();
        let start = self.at;
        // From here on, a failure masks the rest of the file: it was not read.
        let (value, end) = match self.peek() {
            Some('"') => {
                let v = self.double_quoted()?;
                (v, self.at)
            }
            Some('\'') => {
                let v = self.single_quoted()?;
                (v, self.at)
            }
            _ => {
                let v = self.unquoted(start > eq)?;
                // The comment after an unquoted value is masked with it.
                sensitive.push(start..self.at);
                v
            }
        };
        sensitive.push(start..end);
        self.rest_of_line(sensitive)?;
        Ok(Binding {
            key,
            value,
            raw: start..end,
        })
    }
}

fn describe(c: Option<char>) -> String {
    match c {
        Some(c) if c.is_ascii_graphic() || c == ' ' => format!("`{c}`"),
        Some('\t') => "a tab".into(),
        Some(c) => format!("the character U+{:04X}", c as u32),
        None => "the end of the file".into(),
    }
}

/// Read every binding of a dotenv text, stopping at the first error.
pub fn scan(text: &str) -> Scan {
    let mut s = Scanner { text, at: 0 };
    if text.starts_with('\u{feff}') {
        s.at = '\u{feff}'.len_utf8();
    }
    let mut bindings = Vec::new();
    let mut sensitive = Vec::new();
    loop {
        s.blanks();
        if s.end_of_line().is_some() {
            if s.at >= text.len() {
                break;
            }
            continue;
        }
        match s.peek() {
            Some('#') => {
                let end = s.line_end();
                sensitive.push(s.at..end);
                s.at = end;
            }
            Some('\r') => {
                let at = s.at;
                let error = s.fail::<()>(at, "a carriage return without a line feed").unwrap_err();
                sensitive.push(at..text.len());
                return Scan {
                    bindings,
                    sensitive,
                    error: Some(error),
                };
            }
            _ => {
                let line_start = s.at;
                match s.binding(&mut sensitive) {
                    Ok(b) => bindings.push(b),
                    Err(e) => {
                        // Nothing after the name is known not to be a secret;
                        // before an `=`, the "name" may be one too.
                        let from = match text[line_start..e.offset].find('=') {
                            Some(eq) => line_start + eq + 1,
                            None => line_start,
                        };
                        sensitive.push(from.min(e.offset)..text.len());
                        return Scan {
                            bindings,
                            sensitive,
                            error: Some(e),
                        };
                    }
                }
            }
        }
    }
    Scan {
        bindings,
        sensitive,
        error: None,
    }
}

/// The bindings as a flat table of text leaves (keys keep their case; the
/// source decides what they become), with origins in the masked file.
fn table(scan: &Scan, masked: &Masked, shown: &Arc<SourceFile>, layer: &str) -> IndexMap<String, Entry> {
    let mut map = IndexMap::new();
    for b in &scan.bindings {
        let (offset, len) = masked.map_span((b.raw.start, b.raw.len().max(1)));
        map.insert(
            b.key.clone(),
            Entry {
                node: Tree::Leaf(Json::String(b.value.clone())),
                origin: Origin {
                    layer: layer.to_string(),
                    loc: Loc::File {
                        file: shown.clone(),
                        offset,
                        len,
                    },
                    untyped: true,
                },
            },
        );
    }
    map
}

/// Parse a dotenv file. Returns the masked file (what snippets show) and
/// the table, or the located problem.
pub fn load(file: &Arc<SourceFile>, layer: &str) -> Result<(Arc<SourceFile>, IndexMap<String, Entry>), Problem> {
    let scan = scan(&file.text);
    let masked = Masked::new(&file.text, scan.sensitive.clone());
    let shown = SourceFile::new(file.name.clone(), masked.text.clone());
    if let Some(e) = &scan.error {
        let (line, col) = file.line_col(e.offset);
        let (offset, len) = masked.map_span((e.offset, e.len));
        return Err(Problem::new(
            "envgate::parse::syntax",
            format!(
                "cannot parse {} as dotenv: {} (line {line}, column {col})",
                file.name, e.message
            ),
        )
        .label(e.message.clone())
        .help("values show as *** here; the line and column in the message are those of the file")
        .at(&shown, offset, len.max(1)));
    }
    let t = table(&scan, &masked, &shown, layer);
    Ok((shown, t))
}

/// [`load`] for callers that want a tree and a plain failure (offsets in
/// the file as written).
pub fn parse(file: &Arc<SourceFile>, layer: &str) -> Result<Tree, ParseFailure> {
    let scan = scan(&file.text);
    let masked = Masked::new(&file.text, scan.sensitive.clone());
    let shown = SourceFile::new(file.name.clone(), masked.text.clone());
    if let Some(e) = scan.error {
        return Err(e);
    }
    Ok(Tree::Table(table(&scan, &masked, &shown, layer)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read(text: &str) -> Result<Vec<(String, String)>, String> {
        let s = scan(text);
        match s.error {
            Some(e) => {
                let f = SourceFile::new("a.env", text);
                let (l, c) = f.line_col(e.offset);
                Err(format!("{l}:{c} {}", e.message))
            }
            None => Ok(s.bindings.into_iter().map(|b| (b.key, b.value)).collect()),
        }
    }

    fn one(text: &str) -> String {
        let r = read(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(r.len(), 1, "{text:?}");
        r[0].1.clone()
    }

    #[test]
    fn quotes_escapes_export_and_comments_read_as_compose_and_python_dotenv_do() {
        assert_eq!(one("K=\"pa\\\"ss word\"\n"), "pa\"ss word");
        assert_eq!(one("K='it\\'s'"), "it's");
        assert_eq!(one("K='a \\n $x'"), "a \\n $x");
        assert_eq!(one("K=\"a\\nb\\tc\\\\d\""), "a\nb\tc\\d");
        assert_eq!(one("export K=v # comment"), "v");
        assert_eq!(one("  K = value with spaces  \r\n"), "value with spaces");
        assert_eq!(one("K=a#b"), "a#b");
        assert_eq!(one("K=#b"), "#b");
        assert_eq!(one("K=\"multi\nline\" # c\n"), "multi\nline");
        assert_eq!(one("K="), "");
        assert_eq!(one("\u{feff}KEY=1"), "1");
        assert_eq!(read("\u{feff}KEY=1").unwrap()[0].0, "KEY");
        assert_eq!(read("# c\n\nA=1\nB=2\n").unwrap().len(), 2);
    }

    #[test]
    fn what_dotenv_readers_disagree_on_is_an_error_at_its_column() {
        for (text, want) in [
            ("K=\"abc\" junk", "1:9 unexpected text after the closing quote"),
            ("K='it''s'", "1:7 unexpected text after the closing quote"),
            ("K=\"unterminated\nX=1\n", "1:3 unterminated double quote"),
            ("K='a", "1:3 unterminated single quote"),
            ("K=\"a\\'b\"", "1:5 unknown escape"),
            ("K=\"a\\\\\"", "1:5 `\\\\` right before the closing quote"),
            ("K='a\\\\b'", "1:5 `\\\\` inside single quotes"),
            ("K= #x", "1:4 a value that starts with `#` after a blank"),
            ("K=a\t#x", "1:4 only a space before `#`"),
            ("MY KEY=1", "1:3 a variable name cannot contain blanks"),
            ("KEY: 1", "1:4 expected `=` after the variable name, found `:`"),
            ("=1", "1:1 missing variable name"),
            ("A=1\nsecret\n", "2:7 expected `=` after the variable name"),
            ("K=a\rb", "1:4 a carriage return"),
        ] {
            let got = read(text).unwrap_err();
            assert!(got.starts_with(want), "{text:?}: {got}");
        }
    }

    #[test]
    fn values_comments_and_unread_text_are_masked_in_the_shown_file() {
        let f = SourceFile::new(
            "a.env",
            "# DB_PASSWORD=old\nUSER=app\nDB_PASSWORD=\"hunter2\" junk\nNEXT=s3cr3t\n",
        );
        let p = load(&f, "d").unwrap_err();
        let shown = &p.src.as_ref().unwrap().text;
        assert!(
            !shown.contains("old") && !shown.contains("hunter2") && !shown.contains("s3cr3t"),
            "{shown}"
        );
        assert!(!shown.contains("app"), "{shown}");
        assert!(shown.contains("DB_PASSWORD=***"), "{shown}");
        assert_eq!(shown.lines().count(), 4);
        assert!(p.message.contains("line 3, column 23"), "{}", p.message);
        let f = SourceFile::new("a.env", "A=1\nB='two'\n");
        let (shown, t) = load(&f, "d").unwrap();
        assert_eq!(shown.text, "A=***\nB=***\n");
        assert_eq!(t["B"].origin.file_pos().map(|p| (p.1, p.2)), Some((2, 3)));
    }

    /// A value as a dotenv file may spell it: unquoted when plain, else in
    /// double quotes with escapes, or in single quotes when that is literal.
    fn write_value(v: &str, style: u8) -> Option<String> {
        let plain = !v.is_empty()
            && !v.starts_with(['"', '\'', '#'])
            && v.trim() == v
            && !v.contains(|c: char| c.is_whitespace() || c.is_control());
        match style % 3 {
            0 if plain => Some(v.to_string()),
            1 if !v.contains('\\') => Some(format!("'{}'", v.replace('\'', "\\'"))),
            // Readers disagree on `\\` right before a closing quote.
            _ if v.ends_with('\\') => None,
            _ => {
                let mut s = String::from("\"");
                for c in v.chars() {
                    match c {
                        '\\' => s.push_str("\\\\"),
                        '"' => s.push_str("\\\""),
                        '\n' => s.push_str("\\n"),
                        '\r' => s.push_str("\\r"),
                        '\t' => s.push_str("\\t"),
                        c => s.push(c),
                    }
                }
                s.push('"');
                Some(s)
            }
        }
    }

    proptest! {
        // Whatever the bytes, the reader answers (bindings or a located
        // error) and never panics; every value it read is masked.
        #[test]
        fn any_text_is_read_or_refused_without_panic(text in "(\\PC|\n|\r|\t|[\"'#=\\\\ ]){0,80}") {
            let s = scan(&text);
            let masked = Masked::new(&text, s.sensitive.clone());
            if let Some(e) = &s.error {
                prop_assert!(e.offset <= text.len());
            }
            for b in &s.bindings {
                prop_assert!(b.raw.end <= text.len());
                if b.value.len() >= 3 {
                    let shown = format!("={}", &text[b.raw.clone()]);
                    prop_assert!(!masked.text.contains(&shown));
                }
            }
        }

        // Written by the rules above, any value reads back exactly.
        #[test]
        fn any_value_written_by_the_rules_reads_back(
            entries in proptest::collection::vec(("[A-Za-z_][A-Za-z0-9_.-]{0,8}", "\\PC{0,12}|[ \t\n\"'#\\\\]{0,6}", 0u8..3), 1..6),
        ) {
            let mut text = String::new();
            let mut want = IndexMap::new();
            for (k, v, style) in &entries {
                let Some(written) = write_value(v, *style) else { return Ok(()) };
                text.push_str(&format!("{k}={written}\n"));
                want.insert(k.clone(), v.clone());
            }
            let got: IndexMap<String, String> = read(&text).map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?.into_iter().collect();
            prop_assert_eq!(got, want, "{:?}", text);
        }
    }
}

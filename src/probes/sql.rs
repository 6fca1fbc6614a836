//! A database probe's `query`, checked when the probe is built (no I/O):
//! exactly one statement, and one that reads. This is the first of three
//! guards: the probes also send the query as one prepared statement (a
//! server refuses a second statement there) inside a read-only transaction
//! that is rolled back.

/// Which quoting and comment rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Mysql,
}

/// Statements that only read.
const READS: &[&str] = &["SELECT", "WITH", "VALUES", "TABLE", "SHOW"];

/// `Ok` for one statement that reads; otherwise what is wrong with it, in
/// words for the `query` parameter.
pub fn single_read(query: &str, dialect: Dialect) -> Result<(), String> {
    let words = words(query, dialect)?;
    let Some(first) = words.first() else {
        return Err("`query` is empty: write one SELECT".into());
    };
    let first = first.to_ascii_uppercase();
    if !READS.contains(&first.as_str()) {
        return Err(format!(
            "`query` starts with {first}: a probe only reads, write one SELECT (or WITH, VALUES, TABLE, SHOW)"
        ));
    }
    if words.iter().any(|w| w.eq_ignore_ascii_case("INTO")) {
        return Err("`query` says INTO, which writes (a table, a variable or a file): a probe only reads".into());
    }
    Ok(())
}

/// The statement's words outside quotes and comments, with a `;` that is
/// followed by anything but space and comments refused.
fn words(q: &str, dialect: Dialect) -> Result<Vec<String>, String> {
    let b = q.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut ended = false;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'-' && next == Some(b'-') || c == b'#' && dialect == Dialect::Mysql {
            i = b[i..].iter().position(|&x| x == b'\n').map_or(b.len(), |p| i + p + 1);
        } else if c == b'/' && next == Some(b'*') && dialect == Dialect::Mysql && executable(&b[i..]) {
            // `/*! ... */` and `/*M! ... */` are code to MySQL and MariaDB:
            // read on inside them.
            i += 3;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'!') {
                i += 1;
            }
        } else if c == b'/' && next == Some(b'*') {
            i = block_comment_end(b, i, dialect);
        } else if ended {
            return Err("`query` holds more than one statement: a probe runs exactly one".into());
        } else if c == b';' {
            ended = true;
            i += 1;
        } else if c == b'\'' || c == b'"' || c == b'`' && dialect == Dialect::Mysql {
            i = quote_end(b, i, c, dialect);
        } else if c == b'$'
            && dialect == Dialect::Postgres
            && let Some(end) = dollar_quote_end(b, i)
        {
            i = end;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$') {
                i += 1;
            }
            out.push(q[start..i].to_string());
        } else {
            // Numbers, operators, parentheses, multi-byte characters:
            // none of them is a keyword.
            i += 1;
        }
    }
    Ok(out)
}

fn executable(b: &[u8]) -> bool {
    b.starts_with(b"/*!") || b.starts_with(b"/*M!")
}

/// Past a quoted string or identifier starting at `i`. Doubled quotes
/// escape; MySQL strings also take a backslash escape.
fn quote_end(b: &[u8], i: usize, quote: u8, dialect: Dialect) -> usize {
    let mut j = i + 1;
    while j < b.len() {
        let escaped = b[j] == b'\\' && dialect == Dialect::Mysql && quote != b'`';
        if escaped || b[j] == quote && b.get(j + 1) == Some(&quote) {
            j += 2;
        } else if b[j] == quote {
            return j + 1;
        } else {
            j += 1;
        }
    }
    b.len()
}

/// Past a `/* */` comment; PostgreSQL's nest.
fn block_comment_end(b: &[u8], i: usize, dialect: Dialect) -> usize {
    let mut depth = 0;
    let mut j = i;
    while j + 1 < b.len() {
        if b[j] == b'/' && b[j + 1] == b'*' {
            depth += if dialect == Dialect::Postgres || depth == 0 {
                1
            } else {
                0
            };
            j += 2;
        } else if b[j] == b'*' && b[j + 1] == b'/' {
            depth -= 1;
            j += 2;
            if depth == 0 {
                return j;
            }
        } else {
            j += 1;
        }
    }
    b.len()
}

/// Past a `$tag$ ... $tag$` string, when `i` starts one.
fn dollar_quote_end(b: &[u8], i: usize) -> Option<usize> {
    let tag_len = b[i + 1..]
        .iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_'))?;
    if b.get(i + 1 + tag_len) != Some(&b'$') || b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let tag = &b[i..i + tag_len + 2];
    let body = i + tag.len();
    let end = b[body..].windows(tag.len()).position(|w| w == tag)?;
    Some(body + end + tag.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Dialect::{Mysql, Postgres};

    #[test]
    fn one_read_passes() {
        for q in [
            "SELECT max(v) FROM schema_version",
            "  select 1;  -- done",
            "WITH x AS (SELECT 1) SELECT * FROM x;",
            "SELECT ';' AS semi, $$ ; DROP TABLE x $$ AS s",
            "SELECT 1 /* ; CREATE /* nested ; */ TABLE */",
            "SELECT \"INTO\" FROM t",
            "SHOW server_version",
        ] {
            assert_eq!(single_read(q, Postgres), Ok(()), "{q}");
        }
        for q in ["SELECT 'it''s; fine', `a;b` FROM t # ; DELETE", "SELECT 'a\\';b'"] {
            assert_eq!(single_read(q, Mysql), Ok(()), "{q}");
        }
    }

    #[test]
    fn writes_and_chains_are_refused_with_a_reason() {
        let e = single_read("SELECT 1; COMMIT; CREATE TABLE x (i int)", Postgres).unwrap_err();
        assert!(e.contains("more than one statement"), "{e}");
        let e = single_read("CREATE TABLE x (i int)", Postgres).unwrap_err();
        assert!(e.contains("starts with CREATE"), "{e}");
        let e = single_read("SELECT * INTO copy FROM t", Postgres).unwrap_err();
        assert!(e.contains("INTO"), "{e}");
        let e = single_read("SELECT 1 INTO OUTFILE '/tmp/x'", Mysql).unwrap_err();
        assert!(e.contains("INTO"), "{e}");
        // MySQL comments do not nest: the statement goes on after `*/`.
        let e = single_read("SELECT 1 /* /* */ ; DROP TABLE t", Mysql).unwrap_err();
        assert!(e.contains("more than one"), "{e}");
        // Executable comments are code to MySQL.
        let e = single_read("SELECT 1 /*!50000 INTO OUTFILE '/tmp/x' */", Mysql).unwrap_err();
        assert!(e.contains("INTO"), "{e}");
        assert!(single_read("  -- nothing", Postgres).is_err());
    }
}

//! The little SQL both stores speak: statements are written once with
//! `$1`-style placeholders, every number is a 64-bit integer and every other
//! value text (JSON as text), so SQLite and PostgreSQL run the same queries.

use std::fmt;

/// A bound parameter or a column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Int(Option<i64>),
    Text(Option<String>),
}

pub type Row = Vec<Val>;

impl Val {
    pub fn i(&self) -> i64 {
        self.oi().unwrap_or(0)
    }

    pub fn oi(&self) -> Option<i64> {
        match self {
            Val::Int(v) => *v,
            Val::Text(v) => v.as_deref().and_then(|s| s.parse().ok()),
        }
    }

    pub fn t(&self) -> String {
        self.ot().unwrap_or_default()
    }

    pub fn ot(&self) -> Option<String> {
        match self {
            Val::Text(v) => v.clone(),
            Val::Int(v) => v.map(|n| n.to_string()),
        }
    }
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(Some(v))
    }
}
impl From<u32> for Val {
    fn from(v: u32) -> Val {
        Val::Int(Some(i64::from(v)))
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Val {
        Val::Int(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(Some(v.to_string()))
    }
}
impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::Text(Some(v))
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Val {
        Val::Text(Some(v.clone()))
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Val {
        Val::Text(v)
    }
}
impl From<Option<&str>> for Val {
    fn from(v: Option<&str>) -> Val {
        Val::Text(v.map(String::from))
    }
}

/// What went wrong talking to the store; the text never holds a password
/// (the URL is shown redacted by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StoreError {
    pub fn new(s: impl Into<String>) -> StoreError {
        StoreError(crate::config::secrets::redact_url_passwords(&s.into()))
    }
}

/// A connection, or a transaction on one.
pub trait Conn {
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, StoreError>;
    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, StoreError>;
    /// Several statements, no parameters (migrations).
    fn batch(&mut self, sql: &str) -> Result<(), StoreError>;
}

/// One backend: SQLite or PostgreSQL.
pub trait Backend: Send {
    /// `sqlite` or `postgres`.
    fn kind(&self) -> &'static str;
    /// Autocommit statements.
    fn conn(&mut self) -> &mut dyn Conn;
    /// `f` in one transaction that no other writer interleaves with:
    /// committed when it returns `Ok`, rolled back otherwise.
    fn transaction(&mut self, f: &mut dyn FnMut(&mut dyn Conn) -> Result<(), StoreError>) -> Result<(), StoreError>;
    /// Try to become the only runner auditing `env`; `false` when another
    /// holds it. Released by [`Backend::unlock`], or when the process dies.
    fn try_lock(&mut self, env: &str) -> Result<bool, StoreError>;
    fn unlock(&mut self, env: &str) -> Result<(), StoreError>;
    /// Claim up to `limit` due notifications of `envs` for `runner` until
    /// `lease_until`, atomically: no two runners get the same one. Returns
    /// the outbox rows (columns of [`super::outbox::COLUMNS`]).
    fn claim(
        &mut self,
        envs: &[String],
        now: i64,
        runner: &str,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<Row>, StoreError>;
    /// Give freed pages back to the file system.
    fn vacuum(&mut self) -> Result<(), StoreError>;
    /// Leave this connection's write-ahead log in place when it closes, for
    /// the next run's [`Backend::fold_log`]; a database without one ignores it.
    fn keep_log_on_close(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Fold what earlier runs left in the write-ahead log into the database.
    fn fold_log(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// `$1`, `$2`, … in order, for building `IN (...)` lists.
pub fn placeholders(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

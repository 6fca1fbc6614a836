//! The embedded store: one SQLite file in WAL mode (readers never wait for
//! the writer), written in `BEGIN IMMEDIATE` transactions so two processes
//! on one file serialise instead of deadlocking. A runner's hold on an
//! environment is an OS file lock, released by the kernel if it dies.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags};

use super::sql::{Backend, Conn, Row, StoreError, Val};

pub struct Sqlite {
    conn: Connection,
    path: PathBuf,
    locks: HashMap<String, File>,
}

impl Sqlite {
    pub fn open(path: &Path) -> Result<Sqlite, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::new(format!("cannot create {}: {e}", dir.display())))?;
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::new(format!("cannot open {}: {e}", path.display())))?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(err)?;
        // WAL: a reader (`envgate history`, a server) never blocks the
        // writer; NORMAL sync is durable across a process kill (only power
        // loss may drop the last transaction, never corrupt the file).
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "OFF").map_err(err)?;
        // Each connection caches at most 1 MiB of pages (SQLite's default is
        // 2 MiB): a server holds two connections for days, and the file keeps
        // growing under them; the OS caches the file anyway.
        conn.pragma_update(None, "cache_size", -1024).map_err(err)?;
        // The WAL is checkpointed into the database and removed when the
        // last connection closes (SQLite's default, kept on purpose): a cron
        // run is a fresh process, and a fresh process rebuilds its WAL index
        // by reading the whole WAL, which, left in place, grows with every
        // run that cannot restart it (each is one write transaction). A
        // long-running server checkpoints as it goes: at 256 pages.
        conn.pragma_update(None, "wal_autocheckpoint", 256).map_err(err)?;
        // After a checkpoint the WAL file is cut back to 4 MiB, so it does
        // not keep the size of the largest run ever recorded.
        conn.pragma_update(None, "journal_size_limit", 4i64 << 20)
            .map_err(err)?;
        Ok(Sqlite {
            conn,
            path: path.to_path_buf(),
            locks: HashMap::new(),
        })
    }

    fn lock_path(&self, env: &str) -> PathBuf {
        let safe: String = env
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let name = format!(
            "{}.{safe}-{:x}.lock",
            self.path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
            crate::select::stable_hash(env) & 0xffff
        );
        self.path.with_file_name(name)
    }
}

fn err(e: rusqlite::Error) -> StoreError {
    StoreError::new(e.to_string())
}

/// `$1` → `?1`: SQLite numbers `?NNN` parameters by their number, while
/// `$name` ones are numbered by first appearance.
fn sqlite_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

fn to_sql(v: &Val) -> SqlValue {
    match v {
        Val::Int(Some(i)) => SqlValue::Integer(*i),
        Val::Text(Some(s)) => SqlValue::Text(s.clone()),
        Val::Int(None) | Val::Text(None) => SqlValue::Null,
    }
}

fn from_sql(v: ValueRef<'_>) -> Val {
    match v {
        ValueRef::Null => Val::Int(None),
        ValueRef::Integer(i) => Val::Int(Some(i)),
        ValueRef::Real(f) => Val::Int(Some(f as i64)),
        ValueRef::Text(t) | ValueRef::Blob(t) => Val::Text(Some(String::from_utf8_lossy(t).into_owned())),
    }
}

fn exec(c: &Connection, sql: &str, params: &[Val]) -> Result<u64, StoreError> {
    let mut st = c.prepare_cached(&sqlite_sql(sql)).map_err(err)?;
    let params: Vec<SqlValue> = params.iter().map(to_sql).collect();
    let n = st.execute(rusqlite::params_from_iter(params)).map_err(err)?;
    Ok(n as u64)
}

fn query(c: &Connection, sql: &str, params: &[Val]) -> Result<Vec<Row>, StoreError> {
    let mut st = c.prepare_cached(&sqlite_sql(sql)).map_err(err)?;
    let n = st.column_count();
    let params: Vec<SqlValue> = params.iter().map(to_sql).collect();
    let mut rows = st.query(rusqlite::params_from_iter(params)).map_err(err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(err)? {
        out.push(
            (0..n)
                .map(|i| r.get_ref(i).map(from_sql).unwrap_or(Val::Int(None)))
                .collect(),
        );
    }
    Ok(out)
}

impl Conn for Connection {
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, StoreError> {
        exec(self, sql, params)
    }
    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, StoreError> {
        query(self, sql, params)
    }
    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.execute_batch(sql).map_err(err)
    }
}

impl Backend for Sqlite {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn conn(&mut self) -> &mut dyn Conn {
        &mut self.conn
    }

    fn transaction(&mut self, f: &mut dyn FnMut(&mut dyn Conn) -> Result<(), StoreError>) -> Result<(), StoreError> {
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
        match f(&mut self.conn) {
            Ok(()) => self.conn.execute_batch("COMMIT").map_err(|e| {
                let _ = self.conn.execute_batch("ROLLBACK");
                err(e)
            }),
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    fn try_lock(&mut self, env: &str) -> Result<bool, StoreError> {
        let path = self.lock_path(env);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::new(format!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {
                self.locks.insert(env.to_string(), file);
                Ok(true)
            }
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(StoreError::new(format!("cannot lock {}: {e}", path.display())))
            }
        }
    }

    fn unlock(&mut self, env: &str) -> Result<(), StoreError> {
        // Closing the file releases the lock.
        self.locks.remove(env);
        Ok(())
    }

    fn claim(
        &mut self,
        envs: &[String],
        now: i64,
        runner: &str,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<Row>, StoreError> {
        // One writer at a time: the UPDATE ... RETURNING is the claim.
        let mut params: Vec<Val> = vec![runner.into(), lease_until.into(), now.into(), limit.into()];
        params.extend(envs.iter().map(Val::from));
        let sql = format!(
            "UPDATE outbox SET claimed_by = $1, claimed_until = $2 WHERE id IN (SELECT id FROM outbox \
             WHERE state = 'pending' AND next_at <= $3 AND claimed_until <= $3 AND env IN ({}) ORDER BY id LIMIT $4) \
             RETURNING {}",
            super::sql::placeholders(5, envs.len()),
            super::outbox::COLUMNS
        );
        let mut rows = Vec::new();
        self.transaction(&mut |c| {
            rows = c.query(&sql, &params)?;
            Ok(())
        })?;
        rows.sort_by_key(|r| r[0].i());
        Ok(rows)
    }

    fn vacuum(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch("VACUUM").map_err(err)
    }

    fn keep_log_on_close(&mut self) -> Result<(), StoreError> {
        self.conn
            .set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map(|_| ())
            .map_err(err)
    }

    fn fold_log(&mut self) -> Result<(), StoreError> {
        // PASSIVE: never waits for another runner's reader or writer; once
        // every frame is in the database, the next write starts the log over
        // from its beginning, so it holds at most one run.
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_numbered_question_marks() {
        assert_eq!(sqlite_sql("a = $1 AND b = $12"), "a = ?1 AND b = ?12");
    }

    /// The store's SQLite is built without the extensions the bundled build
    /// turns on by default (`.cargo/config.toml`): no code can be loaded
    /// into it at run time, and the binary does not carry full-text search.
    #[test]
    fn the_compiled_in_sqlite_cannot_load_extensions_and_has_no_full_text_search() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Sqlite::open(&dir.path().join("h.db")).expect("store opens");
        let mut stmt = store.conn.prepare("PRAGMA compile_options").expect("pragma");
        let options: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .expect("options")
            .collect::<Result<_, _>>()
            .expect("options read");
        assert!(options.iter().any(|o| o == "OMIT_LOAD_EXTENSION"), "{options:?}");
        assert!(options.iter().any(|o| o == "THREADSAFE=1"), "{options:?}");
        for gone in ["ENABLE_FTS3", "ENABLE_FTS5", "ENABLE_RTREE", "ENABLE_DBSTAT_VTAB"] {
            assert!(!options.iter().any(|o| o == gone), "{gone} in {options:?}");
        }
    }
}

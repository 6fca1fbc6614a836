//! The store's schema, versioned. Each migration runs once, in order, in a
//! transaction, when a store is opened; the version reached is kept in
//! `meta`. A store whose version is higher than this build knows was written
//! by a newer envgate and is refused, never touched.
//!
//! Written once for both databases: `{ID}` is the auto-increment key,
//! `{INT}` a 64-bit integer, `{WR}` SQLite's `WITHOUT ROWID` where it saves
//! space.

use super::sql::{Conn, StoreError};

pub const MIGRATIONS: &[&str] = &[
    // 1: runs, results, per-check state, incidents, outbox, silences,
    // configuration snapshots, daily roll-ups, the latest report.
    r#"
CREATE TABLE runs (
  id {ID},
  env TEXT NOT NULL,
  started_at {INT} NOT NULL,
  finished_at {INT} NOT NULL,
  version TEXT NOT NULL,
  host TEXT NOT NULL,
  config_digest TEXT NOT NULL,
  trigger_kind TEXT NOT NULL,
  status TEXT NOT NULL,
  summary TEXT NOT NULL
);
CREATE INDEX runs_env_time ON runs (env, started_at);
CREATE TABLE checks (
  id {ID},
  env TEXT NOT NULL,
  check_id TEXT NOT NULL,
  kind TEXT,
  health TEXT NOT NULL,
  since {INT} NOT NULL,
  consecutive_failures {INT} NOT NULL,
  consecutive_passes {INT} NOT NULL,
  recent TEXT NOT NULL,
  last_pass_at {INT},
  last_fail_at {INT},
  failing_since {INT},
  passing_since {INT},
  last_pass_config TEXT,
  incident_id TEXT,
  incident_opened_at {INT},
  told TEXT,
  told_at {INT},
  incident_resolved_at {INT},
  last_run {INT},
  last_status TEXT,
  last_class TEXT,
  last_message TEXT,
  last_duration_ms {INT},
  not_after {INT},
  UNIQUE (env, check_id)
);
CREATE TABLE results (
  check_ref {INT} NOT NULL,
  run_id {INT} NOT NULL,
  at {INT} NOT NULL,
  status TEXT NOT NULL,
  class TEXT,
  message TEXT NOT NULL,
  duration_ms {INT},
  attempts {INT},
  target TEXT,
  not_after {INT},
  PRIMARY KEY (check_ref, run_id)
){WR};
CREATE TABLE incidents (
  id TEXT PRIMARY KEY,
  env TEXT NOT NULL,
  check_id TEXT NOT NULL,
  opened_at {INT} NOT NULL,
  resolved_at {INT},
  flapping {INT} NOT NULL,
  status TEXT NOT NULL,
  class TEXT,
  message TEXT NOT NULL,
  location TEXT,
  origin TEXT,
  target TEXT,
  blocks TEXT NOT NULL,
  config_changed TEXT NOT NULL,
  consecutive_failures {INT} NOT NULL
);
CREATE INDEX incidents_env ON incidents (env, opened_at);
CREATE TABLE outbox (
  id {ID},
  event_id TEXT NOT NULL,
  channel TEXT NOT NULL,
  env TEXT NOT NULL,
  incident_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  payload TEXT NOT NULL,
  created_at {INT} NOT NULL,
  state TEXT NOT NULL,
  attempts {INT} NOT NULL,
  next_at {INT} NOT NULL,
  claimed_by TEXT,
  claimed_until {INT} NOT NULL,
  last_error TEXT,
  done_at {INT},
  UNIQUE (event_id, channel)
);
CREATE INDEX outbox_due ON outbox (state, next_at);
CREATE TABLE silences (
  id {ID},
  env TEXT NOT NULL,
  pattern TEXT NOT NULL,
  starts_at {INT} NOT NULL,
  ends_at {INT} NOT NULL,
  reason TEXT NOT NULL,
  created_by TEXT NOT NULL
);
CREATE TABLE snapshots (
  digest TEXT PRIMARY KEY,
  keys TEXT NOT NULL,
  last_used {INT} NOT NULL
);
CREATE TABLE rollups (
  check_ref {INT} NOT NULL,
  day {INT} NOT NULL,
  up {INT} NOT NULL,
  down {INT} NOT NULL,
  PRIMARY KEY (check_ref, day)
){WR};
CREATE TABLE latest (
  env TEXT PRIMARY KEY,
  run_id {INT} NOT NULL,
  report TEXT NOT NULL
);
"#,
    // 2: results and roll-ups kept in the order they are written. Each run
    // adds one result per check and bumps one roll-up per check for today;
    // clustered by check, those rows landed on a different page per check
    // (a hundred checks: a hundred pages read, written and checkpointed per
    // run). Clustered by run and by day, a run appends to the last page or
    // two, and retention drops whole old pages. The history reads them by
    // run and day ranges.
    r#"
CREATE TABLE results_by_run (
  check_ref {INT} NOT NULL,
  run_id {INT} NOT NULL,
  at {INT} NOT NULL,
  status TEXT NOT NULL,
  class TEXT,
  message TEXT NOT NULL,
  duration_ms {INT},
  attempts {INT},
  target TEXT,
  not_after {INT},
  PRIMARY KEY (run_id, check_ref)
){WR};
INSERT INTO results_by_run (check_ref, run_id, at, status, class, message, duration_ms, attempts, target, not_after)
  SELECT check_ref, run_id, at, status, class, message, duration_ms, attempts, target, not_after FROM results;
DROP TABLE results;
ALTER TABLE results_by_run RENAME TO results;
CREATE TABLE rollups_by_day (
  check_ref {INT} NOT NULL,
  day {INT} NOT NULL,
  up {INT} NOT NULL,
  down {INT} NOT NULL,
  PRIMARY KEY (day, check_ref)
){WR};
INSERT INTO rollups_by_day (check_ref, day, up, down) SELECT check_ref, day, up, down FROM rollups;
DROP TABLE rollups;
ALTER TABLE rollups_by_day RENAME TO rollups;
"#,
];

/// The schema version this build writes.
pub fn current() -> i64 {
    MIGRATIONS.len() as i64
}

/// Bring the store to [`current`]: called inside a transaction that no
/// other runner interleaves with. `dialect` fills the template.
pub fn migrate(c: &mut dyn Conn, dialect: &Dialect, project: &str, key: &str, now: i64) -> Result<(), StoreError> {
    c.batch("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")?;
    let rows = c.query("SELECT key, value FROM meta", &[])?;
    let get = |k: &str| rows.iter().find(|r| r[0].t() == k).map(|r| r[1].t());
    let version: i64 = get("schema_version").and_then(|v| v.parse().ok()).unwrap_or(0);
    if version > current() {
        return Err(StoreError(format!(
            "the store was written by a newer envgate ({}, schema version {version}); this envgate {} knows \
             schema versions up to {}: upgrade envgate, or point --store at another store",
            get("written_by").unwrap_or_else(|| "unknown version".into()),
            env!("CARGO_PKG_VERSION"),
            current()
        )));
    }
    if let Some(p) = get("project")
        && p != project
    {
        return Err(StoreError(format!(
            "the store belongs to project `{p}`, not `{project}`: give each project its own store"
        )));
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        c.batch(&dialect.fill(m))?;
        set(c, "schema_version", &(i as i64 + 1).to_string())?;
    }
    if version < current() {
        set(c, "written_by", env!("CARGO_PKG_VERSION"))?;
    }
    if get("project").is_none() {
        set(c, "project", project)?;
        set(c, "created_at", &now.to_string())?;
    }
    if get("hmac_key").is_none() {
        set(c, "hmac_key", key)?;
    }
    Ok(())
}

fn set(c: &mut dyn Conn, k: &str, v: &str) -> Result<(), StoreError> {
    c.exec(
        "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[k.into(), v.into()],
    )?;
    Ok(())
}

pub struct Dialect {
    pub id: &'static str,
    pub int: &'static str,
    pub without_rowid: &'static str,
}

impl Dialect {
    pub const SQLITE: Dialect = Dialect {
        id: "INTEGER PRIMARY KEY AUTOINCREMENT",
        int: "INTEGER",
        without_rowid: " WITHOUT ROWID",
    };
    pub const POSTGRES: Dialect = Dialect {
        id: "BIGSERIAL PRIMARY KEY",
        int: "BIGINT",
        without_rowid: "",
    };

    fn fill(&self, sql: &str) -> String {
        sql.replace("{ID}", self.id)
            .replace("{INT}", self.int)
            .replace("{WR}", self.without_rowid)
    }
}

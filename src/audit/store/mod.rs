//! The audit's history store: SQLite in one file by default, PostgreSQL when
//! many runners share it; the same schema, migrations and queries on both.
//!
//! Writes happen in [`Store::transaction`] (one per audit run: the run, its
//! results, states, incidents and outbox together, or nothing). Reads are
//! cheap, indexed queries a server can answer per request: the latest run
//! and report, each check's state, history, incidents.

mod migrations;
pub mod ops;
pub mod outbox;
mod postgres;
pub mod sql;
mod sqlite;

use std::collections::HashMap;
use std::path::Path;

pub use migrations::current as schema_version;
pub use ops::{IncidentRow, Last, ResultRow, RunRow, StoredCheck, Tx};
pub use outbox::{Delivery, OutboxItem};
pub use sql::StoreError;

use self::sql::{Backend, Val};
use crate::audit::digest::Digester;

pub struct Store {
    backend: Box<dyn Backend>,
    digester: Digester,
    /// The store's address with any password masked, for messages.
    pub shown: String,
}

/// A silence: notify nothing for the matching checks until `ends_at`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Silence {
    pub id: i64,
    pub env: String,
    pub pattern: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub reason: String,
    pub created_by: String,
}

/// A check's passes and failures over a window; `None` with no runs in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Uptime {
    pub up: i64,
    pub down: i64,
}

impl Uptime {
    pub fn ratio(&self) -> Option<f64> {
        let total = self.up + self.down;
        (total > 0).then(|| self.up as f64 / total as f64)
    }
}

impl Store {
    /// Open (and create or migrate) the store at `url`: `sqlite:PATH`
    /// (relative to `root`) or `postgres://...`.
    pub fn open(url: &str, root: &Path, project: &str, now: i64) -> Result<Store, StoreError> {
        let shown = crate::config::secrets::redact_url_passwords(url);
        let (mut backend, dialect): (Box<dyn Backend>, _) = if let Some(path) = url.strip_prefix("sqlite:") {
            let path = root.join(path.trim_start_matches("//"));
            (Box::new(sqlite::Sqlite::open(&path)?), migrations::Dialect::SQLITE)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Box::new(postgres::Postgres::open(url)?), migrations::Dialect::POSTGRES)
        } else {
            return Err(StoreError(format!(
                "`{shown}` is not a store: write sqlite:PATH or postgres://USER@HOST/DATABASE"
            )));
        };
        let fresh = Digester::random_key().map_err(StoreError)?;
        let mut key = String::new();
        backend.transaction(&mut |c| {
            migrations::migrate(c, &dialect, project, &fresh, now)?;
            key = c
                .query("SELECT value FROM meta WHERE key = 'hmac_key'", &[])?
                .first()
                .map(|r| r[0].t())
                .unwrap_or_default();
            Ok(())
        })?;
        Ok(Store {
            backend,
            digester: Digester::new(key.as_bytes()),
            shown,
        })
    }

    pub fn kind(&self) -> &'static str {
        self.backend.kind()
    }

    pub fn digester(&self) -> &Digester {
        &self.digester
    }

    /// A cron run's store: its write-ahead log is not folded into the
    /// database when the process exits (that costs the run two fsyncs at
    /// its end) but by the next run's [`Store::fold_log`], which runs while
    /// that run's probes do. A run's record is durable when it commits
    /// across a process kill, and across power loss once the next run
    /// folds it in.
    pub fn keep_log_on_close(&mut self) -> Result<(), StoreError> {
        self.backend.keep_log_on_close()
    }

    /// Fold what earlier runs left in the write-ahead log into the database.
    pub fn fold_log(&mut self) -> Result<(), StoreError> {
        self.backend.fold_log()
    }

    /// Become the only runner auditing `env` until [`Store::unlock`].
    pub fn try_lock(&mut self, env: &str) -> Result<bool, StoreError> {
        self.backend.try_lock(env)
    }

    pub fn unlock(&mut self, env: &str) -> Result<(), StoreError> {
        self.backend.unlock(env)
    }

    /// `f` in one transaction: all of it is recorded, or none.
    pub fn transaction(&mut self, mut f: impl FnMut(&mut Tx<'_>) -> Result<(), StoreError>) -> Result<(), StoreError> {
        self.backend.transaction(&mut |c| f(&mut Tx { c }))
    }

    /// Claim due notifications of `envs` for this runner (see [`outbox`]).
    pub fn claim(
        &mut self,
        envs: &[String],
        now: i64,
        runner: &str,
        lease_until: i64,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        if envs.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .backend
            .claim(envs, now, runner, lease_until, 500)?
            .iter()
            .map(outbox::item)
            .collect())
    }

    pub fn finish(&mut self, id: i64, d: &Delivery, now: i64) -> Result<(), StoreError> {
        outbox::finish(self.backend.conn(), id, d, now)
    }

    pub fn undelivered(&mut self, env: Option<&str>) -> Result<Vec<OutboxItem>, StoreError> {
        outbox::undelivered(self.backend.conn(), env)
    }

    pub fn outbox(&mut self, env: &str) -> Result<Vec<OutboxItem>, StoreError> {
        outbox::all(self.backend.conn(), env)
    }

    /// Environments with recorded checks, sorted.
    pub fn envs(&mut self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .backend
            .conn()
            .query("SELECT DISTINCT env FROM checks ORDER BY env", &[])?
            .iter()
            .map(|r| r[0].t())
            .collect())
    }

    /// Every check of `env` (or of every environment) with its state and last result.
    pub fn checks(&mut self, env: Option<&str>) -> Result<Vec<StoredCheck>, StoreError> {
        let c = self.backend.conn();
        let rows = match env {
            Some(e) => c.query(&ops::check_select("WHERE env = $1 ORDER BY env, check_id"), &[e.into()])?,
            None => c.query(&ops::check_select("ORDER BY env, check_id"), &[])?,
        };
        Ok(rows.iter().map(ops::stored_check).collect())
    }

    /// The latest run of `env`.
    pub fn latest_run(&mut self, env: &str) -> Result<Option<RunRow>, StoreError> {
        Ok(self
            .backend
            .conn()
            .query(
                "SELECT id, env, started_at, finished_at, version, host, config_digest, trigger_kind, status, summary \
                 FROM runs WHERE env = $1 ORDER BY started_at DESC, id DESC LIMIT 1",
                &[env.into()],
            )?
            .first()
            .map(|r| RunRow {
                id: r[0].i(),
                env: r[1].t(),
                started_at: r[2].i(),
                finished_at: r[3].i(),
                version: r[4].t(),
                host: r[5].t(),
                config_digest: r[6].t(),
                trigger: r[7].t(),
                status: r[8].t(),
                summary: r[9].t(),
            }))
    }

    /// The JSON report (already redacted) of `env`'s latest run.
    pub fn latest_report(&mut self, env: &str) -> Result<Option<(i64, String)>, StoreError> {
        Ok(self
            .backend
            .conn()
            .query("SELECT run_id, report FROM latest WHERE env = $1", &[env.into()])?
            .first()
            .map(|r| (r[0].i(), r[1].t())))
    }

    /// Runs of `env` recorded since `since`.
    pub fn run_count(&mut self, env: &str, since: i64) -> Result<i64, StoreError> {
        Ok(self
            .backend
            .conn()
            .query(
                "SELECT COUNT(*) FROM runs WHERE env = $1 AND started_at >= $2",
                &[env.into(), since.into()],
            )?
            .first()
            .map_or(0, |r| r[0].i()))
    }

    /// The results of `env`'s last `runs` runs, per check, newest first:
    /// `(at, status)`. One range read of the results, which are kept in run
    /// order.
    pub fn recent(&mut self, env: &str, runs: i64) -> Result<HashMap<i64, Vec<(i64, String)>>, StoreError> {
        let c = self.backend.conn();
        let from = c.query(
            "SELECT MIN(id) FROM (SELECT id FROM runs WHERE env = $1 ORDER BY started_at DESC, id DESC LIMIT $2) AS last",
            &[env.into(), runs.into()],
        )?;
        let Some(from) = from.first().and_then(|r| r[0].oi()) else {
            return Ok(HashMap::new());
        };
        let rows = c.query(
            "SELECT check_ref, at, status FROM results WHERE run_id >= $2 AND check_ref IN \
             (SELECT id FROM checks WHERE env = $1) ORDER BY run_id DESC",
            &[env.into(), from.into()],
        )?;
        let mut out: HashMap<i64, Vec<(i64, String)>> = HashMap::new();
        for r in rows {
            out.entry(r[0].i()).or_default().push((r[1].i(), r[2].t()));
        }
        Ok(out)
    }

    /// Uptime of every check of `env` over the last day (from the raw
    /// results) and over whole days back to `days_since` (from roll-ups).
    pub fn uptime_raw(&mut self, env: &str, since: i64) -> Result<Vec<(i64, Uptime)>, StoreError> {
        let c = self.backend.conn();
        let first = c.query(
            "SELECT id FROM runs WHERE env = $1 AND started_at >= $2 ORDER BY started_at LIMIT 1",
            &[env.into(), since.into()],
        )?;
        let Some(first) = first.first().map(|r| r[0].i()) else {
            return Ok(Vec::new());
        };
        let rows = c.query(
            "SELECT check_ref, status, COUNT(*) FROM results WHERE check_ref IN (SELECT id FROM checks WHERE env = $1) \
             AND run_id >= $2 GROUP BY check_ref, status",
            &[env.into(), first.into()],
        )?;
        let mut out: Vec<(i64, Uptime)> = Vec::new();
        for r in rows {
            let id = r[0].i();
            let i = match out.iter().position(|(c, _)| *c == id) {
                Some(i) => i,
                None => {
                    out.push((id, Uptime::default()));
                    out.len() - 1
                }
            };
            match r[1].t().as_str() {
                "pass" | "flaky" | "warn" => out[i].1.up += r[2].i(),
                "fail" | "blocked" => out[i].1.down += r[2].i(),
                _ => {}
            }
        }
        Ok(out)
    }

    /// Uptime of every check of `env` from the daily roll-ups since `day`.
    pub fn uptime_days(&mut self, env: &str, day: i64) -> Result<Vec<(i64, Uptime)>, StoreError> {
        Ok(self
            .backend
            .conn()
            .query(
                "SELECT check_ref, CAST(SUM(up) AS BIGINT), CAST(SUM(down) AS BIGINT) FROM rollups WHERE check_ref IN \
                 (SELECT id FROM checks WHERE env = $1) AND day >= $2 GROUP BY check_ref",
                &[env.into(), day.into()],
            )?
            .iter()
            .map(|r| {
                (
                    r[0].i(),
                    Uptime {
                        up: r[1].i(),
                        down: r[2].i(),
                    },
                )
            })
            .collect())
    }

    /// Incidents of `env` (or every environment) open now or resolved
    /// since `since`, newest first.
    pub fn incidents(&mut self, env: Option<&str>, since: i64) -> Result<Vec<IncidentRow>, StoreError> {
        let c = self.backend.conn();
        let rows = match env {
            Some(e) => c.query(
                &ops::incident_select(
                    "WHERE env = $1 AND (resolved_at IS NULL OR resolved_at >= $2) ORDER BY opened_at DESC, id",
                ),
                &[e.into(), since.into()],
            )?,
            None => c.query(
                &ops::incident_select("WHERE resolved_at IS NULL OR resolved_at >= $1 ORDER BY opened_at DESC, id"),
                &[since.into()],
            )?,
        };
        Ok(rows.iter().map(ops::incident_row).collect())
    }

    /// [`Store::incidents`] of one environment with at most `resolved`
    /// resolved ones, the newest: every open one is listed still. A check
    /// that flaps for a week must not make every page build read (and hold)
    /// thousands of rows.
    pub fn incidents_recent(&mut self, env: &str, since: i64, resolved: usize) -> Result<Vec<IncidentRow>, StoreError> {
        let c = self.backend.conn();
        let mut rows = c.query(
            &ops::incident_select("WHERE env = $1 AND resolved_at IS NULL ORDER BY opened_at DESC, id"),
            &[env.into()],
        )?;
        rows.extend(c.query(
            &ops::incident_select(
                "WHERE env = $1 AND resolved_at IS NOT NULL AND resolved_at >= $2 ORDER BY opened_at DESC, id LIMIT $3",
            ),
            &[env.into(), since.into(), (resolved as i64).into()],
        )?);
        let mut out: Vec<IncidentRow> = rows.iter().map(ops::incident_row).collect();
        out.sort_by(|a, b| b.opened_at.cmp(&a.opened_at).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    pub fn add_silence(&mut self, s: &Silence) -> Result<i64, StoreError> {
        let mut id = 0;
        self.transaction(|tx| {
            id =
                tx.c.query(
                    "INSERT INTO silences (env, pattern, starts_at, ends_at, reason, created_by) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    &[
                        (&s.env).into(),
                        (&s.pattern).into(),
                        s.starts_at.into(),
                        s.ends_at.into(),
                        (&s.reason).into(),
                        (&s.created_by).into(),
                    ],
                )?
                .first()
                .map_or(0, |r| r[0].i());
            Ok(())
        })?;
        Ok(id)
    }

    /// Silences in force at `now` or later, soonest first.
    pub fn silences(&mut self, now: i64) -> Result<Vec<Silence>, StoreError> {
        Ok(self
            .backend
            .conn()
            .query(
                "SELECT id, env, pattern, starts_at, ends_at, reason, created_by FROM silences WHERE ends_at > $1 \
                 ORDER BY ends_at, id",
                &[now.into()],
            )?
            .iter()
            .map(|r| Silence {
                id: r[0].i(),
                env: r[1].t(),
                pattern: r[2].t(),
                starts_at: r[3].i(),
                ends_at: r[4].i(),
                reason: r[5].t(),
                created_by: r[6].t(),
            })
            .collect())
    }

    /// End a silence now.
    pub fn expire_silence(&mut self, id: i64, now: i64) -> Result<bool, StoreError> {
        let mut n = 0;
        self.transaction(|tx| {
            n = tx.c.exec(
                "UPDATE silences SET ends_at = $2 WHERE id = $1 AND ends_at > $2",
                &[id.into(), now.into()],
            )?;
            Ok(())
        })?;
        Ok(n > 0)
    }

    /// Retention on demand: what [`Tx::prune_env`] and [`Tx::prune_store`]
    /// do inside runs, for every environment; then, with `vacuum`, give
    /// the freed space back.
    pub fn prune(&mut self, results_before: i64, rollups_before: i64, vacuum: bool) -> Result<u64, StoreError> {
        let envs: Vec<String> = self
            .backend
            .conn()
            .query("SELECT DISTINCT env FROM runs", &[])?
            .iter()
            .map(|r| r[0].t())
            .collect();
        let mut n = 0;
        self.transaction(|tx| {
            n = 0;
            for e in &envs {
                n += tx.prune_env(e, results_before)?;
            }
            n += tx.prune_store(results_before, rollups_before)?;
            Ok(())
        })?;
        if vacuum {
            self.backend.vacuum()?;
        }
        Ok(n)
    }

    /// A raw query, for tests and the benchmark's checks.
    pub fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<sql::Row>, StoreError> {
        self.backend.conn().query(sql, params)
    }
}

//! What one audit run writes, inside its single transaction: the run, its
//! results, each check's state, incidents, configuration snapshots, roll-ups
//! and the outbox; and retention. Typed wrappers over [`Conn`], the same for
//! both databases.

use std::collections::HashMap;

use super::sql::{Conn, Row, StoreError, Val};
use crate::audit::digest::Snapshot;
use crate::audit::state::{CheckState, Health, Incident, Told};

/// A check as the store keeps it: its state and what its last run said.
#[derive(Debug, Clone)]
pub struct StoredCheck {
    /// The row's id, which results and roll-ups refer to.
    pub id: i64,
    pub env: String,
    pub check: String,
    pub kind: Option<String>,
    pub state: CheckState,
    pub last: Last,
}

/// The latest result of a check.
#[derive(Debug, Clone, Default)]
pub struct Last {
    pub run: Option<i64>,
    pub status: Option<String>,
    pub class: Option<String>,
    pub message: Option<String>,
    pub duration_ms: Option<i64>,
    /// Certificate not-after, unix seconds.
    pub not_after: Option<i64>,
}

/// One run, as recorded.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub id: i64,
    pub env: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub version: String,
    pub host: String,
    pub config_digest: String,
    /// `cron`, `manual`, `serve`: who started it.
    pub trigger: String,
    pub status: String,
    /// The report's summary, JSON.
    pub summary: String,
}

/// One check's result in one run.
#[derive(Debug, Clone)]
pub struct ResultRow {
    pub status: String,
    pub class: Option<String>,
    pub message: String,
    pub duration_ms: Option<i64>,
    pub attempts: Option<i64>,
    pub target: Option<String>,
    pub not_after: Option<i64>,
}

/// An incident, open or resolved.
#[derive(Debug, Clone)]
pub struct IncidentRow {
    pub id: String,
    pub env: String,
    pub check: String,
    pub opened_at: i64,
    pub resolved_at: Option<i64>,
    pub flapping: bool,
    pub status: String,
    pub class: Option<String>,
    pub message: String,
    /// JSON `{"file", "line", "column"}`.
    pub location: Option<String>,
    /// How the blamed value's origin reads: `environment variable X`.
    pub origin: Option<String>,
    pub target: Option<String>,
    pub blocks: Vec<String>,
    pub config_changed: Vec<String>,
    pub consecutive_failures: i64,
}

pub struct Tx<'a> {
    pub(crate) c: &'a mut dyn Conn,
}

const CHECK_COLUMNS: &str = "id, env, check_id, kind, health, since, consecutive_failures, consecutive_passes, recent, \
     last_pass_at, last_fail_at, failing_since, passing_since, last_pass_config, incident_id, incident_opened_at, told, \
     told_at, incident_resolved_at, last_run, last_status, last_class, last_message, last_duration_ms, not_after";

pub(crate) fn check_select(filter: &str) -> String {
    format!("SELECT {CHECK_COLUMNS} FROM checks {filter}")
}

pub(crate) fn stored_check(r: &Row) -> StoredCheck {
    let incident = r[14].ot().map(|id| Incident {
        id,
        opened_at: r[15].i(),
        told: Told::parse(&r[16].t()),
        told_at: r[17].oi(),
        resolved_at: r[18].oi(),
    });
    StoredCheck {
        id: r[0].i(),
        env: r[1].t(),
        check: r[2].t(),
        kind: r[3].ot(),
        state: CheckState {
            health: Health::parse(&r[4].t()),
            since: r[5].i(),
            consecutive_failures: r[6].i() as u32,
            consecutive_passes: r[7].i() as u32,
            recent: r[8].t(),
            last_pass_at: r[9].oi(),
            last_fail_at: r[10].oi(),
            failing_since: r[11].oi(),
            passing_since: r[12].oi(),
            last_pass_config: r[13].ot(),
            incident,
        },
        last: Last {
            run: r[19].oi(),
            status: r[20].ot(),
            class: r[21].ot(),
            message: r[22].ot(),
            duration_ms: r[23].oi(),
            not_after: r[24].oi(),
        },
    }
}

impl Tx<'_> {
    pub fn states(&mut self, env: &str) -> Result<HashMap<String, StoredCheck>, StoreError> {
        Ok(self
            .c
            .query(&check_select("WHERE env = $1"), &[env.into()])?
            .iter()
            .map(stored_check)
            .map(|s| (s.check.clone(), s))
            .collect())
    }

    /// No run of `env` was ever recorded.
    pub fn first_run(&mut self, env: &str) -> Result<bool, StoreError> {
        Ok(self
            .c
            .query("SELECT id FROM runs WHERE env = $1 LIMIT 1", &[env.into()])?
            .is_empty())
    }

    pub fn insert_run(&mut self, r: &RunRow) -> Result<i64, StoreError> {
        let rows = self.c.query(
            "INSERT INTO runs (env, started_at, finished_at, version, host, config_digest, trigger_kind, status, summary) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
            &[
                (&r.env).into(),
                r.started_at.into(),
                r.finished_at.into(),
                (&r.version).into(),
                (&r.host).into(),
                (&r.config_digest).into(),
                (&r.trigger).into(),
                (&r.status).into(),
                (&r.summary).into(),
            ],
        )?;
        Ok(rows.first().map_or(0, |r| r[0].i()))
    }

    /// Insert or update a check's state and last result; returns its id.
    pub fn save_check(
        &mut self,
        env: &str,
        check: &str,
        kind: Option<&str>,
        s: &CheckState,
        last: &Last,
    ) -> Result<i64, StoreError> {
        let ids = self.save_checks(env, &[(check, kind, s, last)])?;
        Ok(ids.get(check).copied().unwrap_or(0))
    }

    /// [`Tx::save_check`] for many checks, `(check, kind, state, last)`, in
    /// multi-row upserts (a statement per hundred checks rather than per
    /// check); returns each check's id. A check listed twice keeps its last
    /// entry (one statement may not update a row twice).
    pub fn save_checks(
        &mut self,
        env: &str,
        rows: &[(&str, Option<&str>, &CheckState, &Last)],
    ) -> Result<HashMap<String, i64>, StoreError> {
        let mut seen = std::collections::HashSet::new();
        let mut unique: Vec<_> = rows.iter().rev().filter(|r| seen.insert(r.0)).collect();
        unique.reverse();
        let mut ids = HashMap::with_capacity(unique.len());
        for chunk in unique.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO checks (env, check_id, kind, health, since, consecutive_failures, consecutive_passes, \
                 recent, last_pass_at, last_fail_at, failing_since, passing_since, last_pass_config, incident_id, \
                 incident_opened_at, told, told_at, incident_resolved_at, last_run, last_status, last_class, \
                 last_message, last_duration_ms, not_after) VALUES {} ON CONFLICT (env, check_id) DO UPDATE SET \
                 kind = excluded.kind, health = excluded.health, since = excluded.since, \
                 consecutive_failures = excluded.consecutive_failures, \
                 consecutive_passes = excluded.consecutive_passes, recent = excluded.recent, \
                 last_pass_at = excluded.last_pass_at, last_fail_at = excluded.last_fail_at, \
                 failing_since = excluded.failing_since, passing_since = excluded.passing_since, \
                 last_pass_config = excluded.last_pass_config, incident_id = excluded.incident_id, \
                 incident_opened_at = excluded.incident_opened_at, told = excluded.told, told_at = excluded.told_at, \
                 incident_resolved_at = excluded.incident_resolved_at, last_run = excluded.last_run, \
                 last_status = excluded.last_status, last_class = excluded.last_class, \
                 last_message = excluded.last_message, last_duration_ms = excluded.last_duration_ms, \
                 not_after = excluded.not_after RETURNING check_id, id",
                placeholders(chunk.len(), 24)
            );
            let mut params: Vec<Val> = Vec::with_capacity(chunk.len() * 24);
            for (check, kind, s, last) in chunk {
                let inc = s.incident.as_ref();
                params.extend([
                    env.into(),
                    (*check).into(),
                    (*kind).into(),
                    s.health.as_str().into(),
                    s.since.into(),
                    s.consecutive_failures.into(),
                    s.consecutive_passes.into(),
                    (&s.recent).into(),
                    s.last_pass_at.into(),
                    s.last_fail_at.into(),
                    s.failing_since.into(),
                    s.passing_since.into(),
                    s.last_pass_config.clone().into(),
                    inc.map(|i| i.id.clone()).into(),
                    inc.map(|i| i.opened_at).into(),
                    inc.map(|i| i.told.as_str()).into(),
                    inc.and_then(|i| i.told_at).into(),
                    inc.and_then(|i| i.resolved_at).into(),
                    last.run.into(),
                    last.status.clone().into(),
                    last.class.clone().into(),
                    last.message.clone().into(),
                    last.duration_ms.into(),
                    last.not_after.into(),
                ]);
            }
            for row in self.c.query(&sql, &params)? {
                ids.insert(row[0].t(), row[1].i());
            }
        }
        Ok(ids)
    }

    /// A check gone from the checks files: its state, results and roll-ups.
    pub fn delete_check(&mut self, id: i64) -> Result<(), StoreError> {
        self.c.exec("DELETE FROM results WHERE check_ref = $1", &[id.into()])?;
        self.c.exec("DELETE FROM rollups WHERE check_ref = $1", &[id.into()])?;
        self.c.exec("DELETE FROM checks WHERE id = $1", &[id.into()])?;
        Ok(())
    }

    /// A run's results, `(check, run, at, result)`, in multi-row inserts: a
    /// statement per hundred checks rather than per check.
    pub fn insert_results(&mut self, rows: &[(i64, i64, i64, ResultRow)]) -> Result<(), StoreError> {
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO results (check_ref, run_id, at, status, class, message, duration_ms, attempts, target, \
                 not_after) VALUES {}",
                placeholders(chunk.len(), 10)
            );
            let mut params: Vec<Val> = Vec::with_capacity(chunk.len() * 10);
            for (check, run, at, r) in chunk {
                params.extend([
                    (*check).into(),
                    (*run).into(),
                    (*at).into(),
                    (&r.status).into(),
                    r.class.clone().into(),
                    (&r.message).into(),
                    r.duration_ms.into(),
                    r.attempts.into(),
                    r.target.clone().into(),
                    r.not_after.into(),
                ]);
            }
            self.c.exec(&sql, &params)?;
        }
        Ok(())
    }

    /// Count one run in each check's daily roll-up, `(check, up)`: each
    /// check at most once.
    pub fn rollups(&mut self, day: i64, rows: &[(i64, bool)]) -> Result<(), StoreError> {
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO rollups (check_ref, day, up, down) VALUES {} ON CONFLICT (check_ref, day) \
                 DO UPDATE SET up = rollups.up + excluded.up, down = rollups.down + excluded.down",
                placeholders(chunk.len(), 4)
            );
            let mut params: Vec<Val> = Vec::with_capacity(chunk.len() * 4);
            for (check, up) in chunk {
                let (u, d) = if *up { (1i64, 0i64) } else { (0, 1) };
                params.extend([(*check).into(), day.into(), u.into(), d.into()]);
            }
            self.c.exec(&sql, &params)?;
        }
        Ok(())
    }

    pub fn save_incident(&mut self, i: &IncidentRow) -> Result<(), StoreError> {
        let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        self.c.exec(
            "INSERT INTO incidents (id, env, check_id, opened_at, resolved_at, flapping, status, class, message, \
             location, origin, target, blocks, config_changed, consecutive_failures) VALUES ($1, $2, $3, $4, $5, $6, \
             $7, $8, $9, $10, $11, $12, $13, $14, $15) ON CONFLICT (id) DO UPDATE SET resolved_at = \
             excluded.resolved_at, flapping = excluded.flapping, status = excluded.status, class = excluded.class, \
             message = excluded.message, location = excluded.location, origin = excluded.origin, \
             target = excluded.target, blocks = excluded.blocks, consecutive_failures = excluded.consecutive_failures",
            &[
                (&i.id).into(),
                (&i.env).into(),
                (&i.check).into(),
                i.opened_at.into(),
                i.resolved_at.into(),
                i64::from(i.flapping).into(),
                (&i.status).into(),
                i.class.clone().into(),
                (&i.message).into(),
                i.location.clone().into(),
                i.origin.clone().into(),
                i.target.clone().into(),
                json(&i.blocks).into(),
                json(&i.config_changed).into(),
                i.consecutive_failures.into(),
            ],
        )?;
        Ok(())
    }

    pub fn incident(&mut self, id: &str) -> Result<Option<IncidentRow>, StoreError> {
        Ok(self
            .c
            .query(&incident_select("WHERE id = $1"), &[id.into()])?
            .first()
            .map(incident_row))
    }

    pub fn close_incident(&mut self, id: &str, at: i64) -> Result<(), StoreError> {
        self.c.exec(
            "UPDATE incidents SET resolved_at = $2 WHERE id = $1",
            &[id.into(), at.into()],
        )?;
        Ok(())
    }

    /// Queue one event for one channel; the same event is never queued twice.
    #[expect(clippy::too_many_arguments, reason = "one row's columns")]
    pub fn enqueue(
        &mut self,
        event_id: &str,
        channel: &str,
        env: &str,
        incident: &str,
        kind: &str,
        payload: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.c.exec(
            "INSERT INTO outbox (event_id, channel, env, incident_id, kind, payload, created_at, state, attempts, \
             next_at, claimed_until) VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $7, 0) \
             ON CONFLICT (event_id, channel) DO NOTHING",
            &[
                event_id.into(),
                channel.into(),
                env.into(),
                incident.into(),
                kind.into(),
                payload.into(),
                now.into(),
            ],
        )?;
        Ok(())
    }

    /// Remember a configuration snapshot (once per distinct configuration).
    pub fn save_snapshot(&mut self, digest: &str, s: &Snapshot, now: i64) -> Result<(), StoreError> {
        let keys = serde_json::to_string(s).unwrap_or_else(|_| "{}".into());
        self.c.exec(
            "INSERT INTO snapshots (digest, keys, last_used) VALUES ($1, $2, $3) ON CONFLICT (digest) \
             DO UPDATE SET last_used = excluded.last_used",
            &[digest.into(), keys.into(), now.into()],
        )?;
        Ok(())
    }

    pub fn snapshot(&mut self, digest: &str) -> Result<Option<Snapshot>, StoreError> {
        Ok(self
            .c
            .query("SELECT keys FROM snapshots WHERE digest = $1", &[digest.into()])?
            .first()
            .and_then(|r| serde_json::from_str(&r[0].t()).ok()))
    }

    pub fn set_latest(&mut self, env: &str, run: i64, report: &str) -> Result<(), StoreError> {
        self.c.exec(
            "INSERT INTO latest (env, run_id, report) VALUES ($1, $2, $3) ON CONFLICT (env) \
             DO UPDATE SET run_id = excluded.run_id, report = excluded.report",
            &[env.into(), run.into(), report.into()],
        )?;
        Ok(())
    }

    /// Patterns of the silences of `env` in force at `now`.
    pub fn silenced(&mut self, env: &str, now: i64) -> Result<Vec<String>, StoreError> {
        Ok(self
            .c
            .query(
                "SELECT pattern FROM silences WHERE env = $1 AND starts_at <= $2 AND ends_at > $2",
                &[env.into(), now.into()],
            )?
            .iter()
            .map(|r| r[0].t())
            .collect())
    }

    /// Drop what retention no longer keeps for `env`: results and runs
    /// older than `results_before` (the latest run always stays). Cheap
    /// enough for every run: it walks the results' key from the start.
    pub fn prune_env(&mut self, env: &str, results_before: i64) -> Result<u64, StoreError> {
        let keep = self.c.query(
            "SELECT id FROM runs WHERE env = $1 AND started_at >= $2 ORDER BY started_at LIMIT 1",
            &[env.into(), results_before.into()],
        )?;
        let keep_from = match keep.first() {
            Some(r) => r[0].i(),
            None => match self
                .c
                .query("SELECT run_id FROM latest WHERE env = $1", &[env.into()])?
                .first()
            {
                Some(r) => r[0].i(),
                None => return Ok(0),
            },
        };
        let mut n = self.c.exec(
            "DELETE FROM results WHERE check_ref IN (SELECT id FROM checks WHERE env = $1) AND run_id < $2",
            &[env.into(), keep_from.into()],
        )?;
        n += self.c.exec(
            "DELETE FROM runs WHERE env = $1 AND started_at < $2 AND id < $3",
            &[env.into(), results_before.into(), keep_from.into()],
        )?;
        Ok(n)
    }

    /// Drop roll-ups older than `rollups_before`, incidents resolved before
    /// it, finished notifications, ended silences and unused configuration
    /// snapshots older than `results_before`.
    pub fn prune_store(&mut self, results_before: i64, rollups_before: i64) -> Result<u64, StoreError> {
        let day = rollups_before.div_euclid(86_400);
        let mut n = self.c.exec("DELETE FROM rollups WHERE day < $1", &[day.into()])?;
        n += self.c.exec(
            "DELETE FROM incidents WHERE resolved_at IS NOT NULL AND resolved_at < $1",
            &[rollups_before.into()],
        )?;
        n += self.c.exec(
            "DELETE FROM outbox WHERE state <> 'pending' AND done_at < $1",
            &[results_before.into()],
        )?;
        n += self
            .c
            .exec("DELETE FROM silences WHERE ends_at < $1", &[results_before.into()])?;
        n += self.c.exec(
            "DELETE FROM snapshots WHERE last_used < $1 AND digest NOT IN \
             (SELECT last_pass_config FROM checks WHERE last_pass_config IS NOT NULL)",
            &[results_before.into()],
        )?;
        Ok(n)
    }

    pub fn meta(&mut self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .c
            .query("SELECT value FROM meta WHERE key = $1", &[key.into()])?
            .first()
            .map(|r| r[0].t()))
    }

    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<(), StoreError> {
        self.c.exec(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[key.into(), value.into()],
        )?;
        Ok(())
    }
}

pub(crate) fn incident_select(filter: &str) -> String {
    format!(
        "SELECT id, env, check_id, opened_at, resolved_at, flapping, status, class, message, location, origin, \
         target, blocks, config_changed, consecutive_failures FROM incidents {filter}"
    )
}

pub(crate) fn incident_row(r: &Row) -> IncidentRow {
    let list = |v: &Val| serde_json::from_str::<Vec<String>>(&v.t()).unwrap_or_default();
    IncidentRow {
        id: r[0].t(),
        env: r[1].t(),
        check: r[2].t(),
        opened_at: r[3].i(),
        resolved_at: r[4].oi(),
        flapping: r[5].i() != 0,
        status: r[6].t(),
        class: r[7].ot(),
        message: r[8].t(),
        location: r[9].ot(),
        origin: r[10].ot(),
        target: r[11].ot(),
        blocks: list(&r[12]),
        config_changed: list(&r[13]),
        consecutive_failures: r[14].i(),
    }
}

/// Rows per multi-row statement: 100 results are 1,000 parameters, well
/// within SQLite's and PostgreSQL's limits.
const ROWS_PER_STATEMENT: usize = 100;

/// `($1, $2), ($3, $4)` for `rows` rows of `cols` columns.
fn placeholders(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| {
            let cells: Vec<String> = (1..=cols).map(|c| format!("${}", r * cols + c)).collect();
            format!("({})", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_number_every_cell_of_every_row() {
        assert_eq!(super::placeholders(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(super::placeholders(1, 1), "($1)");
    }
}

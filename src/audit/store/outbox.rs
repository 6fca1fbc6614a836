//! The notification outbox as stored: each (event, channel) pair is one row,
//! written in the run's transaction, then claimed by exactly one runner,
//! sent, and marked `sent`, `rejected` (the channel said no: 4xx) or put
//! back with a later `next_at` (the channel was down). Rows hold the event,
//! never a channel's URL or key.

use super::sql::{Conn, Row, StoreError};

pub const COLUMNS: &str =
    "id, event_id, channel, env, incident_id, kind, payload, created_at, state, attempts, next_at, last_error, done_at";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: i64,
    pub event_id: String,
    pub channel: String,
    pub env: String,
    pub incident: String,
    pub kind: String,
    /// The event, JSON (the generic webhook body).
    pub payload: String,
    pub created_at: i64,
    /// `pending`, `sent`, `rejected` or `dropped`.
    pub state: String,
    pub attempts: i64,
    pub next_at: i64,
    pub last_error: Option<String>,
    pub done_at: Option<i64>,
}

pub fn item(r: &Row) -> OutboxItem {
    OutboxItem {
        id: r[0].i(),
        event_id: r[1].t(),
        channel: r[2].t(),
        env: r[3].t(),
        incident: r[4].t(),
        kind: r[5].t(),
        payload: r[6].t(),
        created_at: r[7].i(),
        state: r[8].t(),
        attempts: r[9].i(),
        next_at: r[10].i(),
        last_error: r[11].ot(),
        done_at: r[12].oi(),
    }
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// The channel refused the event for good (a 4xx): kept, and shown.
    Rejected(String),
    /// The channel could not be reached or failed (5xx, timeout): try again
    /// at the given time.
    Retry(String, i64),
    /// The channel is no longer configured.
    Dropped(String),
}

pub fn finish(c: &mut dyn Conn, id: i64, d: &Delivery, now: i64) -> Result<(), StoreError> {
    let (state, err, next) = match d {
        Delivery::Sent => ("sent", None, None),
        Delivery::Rejected(e) => ("rejected", Some(e.clone()), None),
        Delivery::Dropped(e) => ("dropped", Some(e.clone()), None),
        Delivery::Retry(e, at) => ("pending", Some(e.clone()), Some(*at)),
    };
    let done = if next.is_none() { Some(now) } else { None };
    c.exec(
        "UPDATE outbox SET state = $2, attempts = attempts + 1, last_error = $3, next_at = COALESCE($4, next_at), \
         done_at = $5, claimed_by = NULL, claimed_until = 0 WHERE id = $1",
        &[id.into(), state.into(), err.into(), next.into(), done.into()],
    )?;
    Ok(())
}

/// Notifications not delivered (pending or rejected), for `env` or every
/// environment, oldest first.
pub fn undelivered(c: &mut dyn Conn, env: Option<&str>) -> Result<Vec<OutboxItem>, StoreError> {
    let rows = match env {
        Some(e) => c.query(
            &format!("SELECT {COLUMNS} FROM outbox WHERE state IN ('pending', 'rejected') AND env = $1 ORDER BY id"),
            &[e.into()],
        )?,
        None => c.query(
            &format!("SELECT {COLUMNS} FROM outbox WHERE state IN ('pending', 'rejected') ORDER BY id"),
            &[],
        )?,
    };
    Ok(rows.iter().map(item).collect())
}

/// Every outbox row of `env`, oldest first (tests and `history --format json`).
pub fn all(c: &mut dyn Conn, env: &str) -> Result<Vec<OutboxItem>, StoreError> {
    Ok(c.query(
        &format!("SELECT {COLUMNS} FROM outbox WHERE env = $1 ORDER BY id"),
        &[env.into()],
    )?
    .iter()
    .map(item)
    .collect())
}

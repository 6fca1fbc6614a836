//! The cron health audit: runs the checks, remembers every run in a history
//! store, keeps each check's state across runs (streaks, flapping), opens
//! and resolves incidents, and tells the configured channels about each
//! incident event exactly once.
//!
//! Uses the layers below it (check, config, outcome, report) and is used
//! only by commands: nothing below may depend on it. The pure rules live in
//! [`state`]; the store in [`store`]; one run in [`cycle`].

pub mod classify;
pub mod clock;
pub mod cycle;
pub mod digest;
pub mod event;
pub mod history;
pub mod metrics;
pub mod notify;
pub mod render;
pub mod settings;
pub mod state;
pub mod store;

pub use clock::{Clock, FixedClock, SystemClock};
pub use cycle::{AuditOptions, CycleOutcome, Settings, Trouble, cycle, cycle_opening};
pub use store::Store;

//! The cron health audit end to end: a real SQLite file and this machine's
//! PostgreSQL as stores, real HTTP receivers (a recorder, and Prometheus
//! Alertmanager), the real binary for what cron runs, headless Chromium
//! for the history page, and the deploy recipes checked by their tools.

#[path = "common/ports.rs"]
mod ports;
#[path = "audit/recorder.rs"]
mod recorder;
#[path = "audit/support.rs"]
mod support;

#[path = "audit/channels.rs"]
mod channels;
#[path = "audit/cli.rs"]
mod cli;
#[path = "audit/deploy.rs"]
mod deploy;
#[path = "audit/postgres.rs"]
mod postgres;
#[path = "audit/scenarios.rs"]
mod scenarios;

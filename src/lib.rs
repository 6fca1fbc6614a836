//! envgate: assemble a service's configuration for one environment from
//! layered files, validate it, and report what is wrong and where it was set.
//!
//! Data flows one way: files → assembled config (with origins) → findings →
//! report → reporters. Nothing downstream reaches back upstream.

pub mod audit;
pub mod check;
pub mod cli;
pub mod commands;
pub mod config;
pub mod diagnostic;
pub mod exit_codes;
pub mod findings;
pub mod net;
pub mod outcome;
pub mod plan;
pub mod probes;
pub mod report;
pub mod rules;
pub mod runner;
pub mod schemas;
pub mod select;
pub mod serve;
pub mod source;

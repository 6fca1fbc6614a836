//! From a project and a selection to work: the check files read once, and
//! each environment's probes turned into jobs for the one runner of the run.

pub mod checks;
mod origin;
mod probes;

pub use checks::Checks;
pub use origin::origin_info;
pub use probes::{Choice, Planned, plan_env};
